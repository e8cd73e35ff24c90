//! The webhook gateway's other senders: every source with its URL, state, secrets and events
//! (`/admin/sources`), and one stored event as received, with the headers and what its
//! signature check found (`/admin/sources/{source}/events/{id}`). Sources are managed from the
//! CLI (`revision-store sources`); their events are searched on the Events page (`source=`).
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::admin::AdminNav;
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceLine {
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub secrets: usize,
    pub events: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayEventView {
    pub source: String,
    pub event_id: String,
    pub event_type: String,
    pub received_at: String,
    pub occurred_at: Option<String>,
    pub payload_sha256: String,
    pub headers: String,
    pub verification: String,
    pub payload: String,
}

#[server]
pub async fn admin_sources() -> Result<Vec<SourceLine>, AppError> {
    use crate::store::{gateway_events, webhook_sources};
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let load = |e| AppError::unavailable("The sources could not be read", e);
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    for row in webhook_sources::list(&svc.db).await.map_err(load)? {
        let secrets = webhook_sources::active_secrets(&svc.db, &row.name, now).await.map_err(load)?.len();
        let events = gateway_events::count(&svc.db, &row.name).await.map_err(load)?;
        lines.push(SourceLine {
            enabled: row.disabled_at.is_none(),
            created_at: crate::web::fmt_time(row.created_at),
            name: row.name,
            kind: row.kind,
            secrets,
            events,
        });
    }
    Ok(lines)
}

#[server]
pub async fn admin_gateway_event(source: String, event_id: String) -> Result<GatewayEventView, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let e = crate::store::gateway_events::get(&svc.db, &source, &event_id)
        .await
        .map_err(|e| AppError::unavailable("The event could not be loaded", e))?
        .ok_or_else(|| AppError::NotFound.with_status())?;
    let pretty = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| text.to_string())
    };
    Ok(GatewayEventView {
        payload: pretty(&String::from_utf8_lossy(&e.payload)),
        headers: pretty(&e.headers),
        verification: pretty(&e.verification),
        received_at: crate::web::fmt_time(e.received_at),
        occurred_at: e.occurred_at.map(crate::web::fmt_time),
        event_type: e.event_type.unwrap_or_default(),
        payload_sha256: e.payload_sha256,
        source: e.source,
        event_id: e.event_id,
    })
}

#[component]
pub fn AdminSourcesPage() -> impl IntoView {
    let sources = Resource::new(|| (), |_| admin_sources());
    view! {
        <h1>"Webhook sources"</h1>
        <AdminNav/>
        <p class="muted">"Senders other than Stripe. Each posts to its own URL; its deliveries are verified, stored as received and deduplicated like Stripe's. Add and rotate them with "<code>"revision-store sources"</code>"."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || sources.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(lines) if lines.is_empty() => view! { <p class="muted">"No sources yet."</p> }.into_any(),
                Ok(lines) => view! { <SourceRows lines/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn SourceRows(lines: Vec<SourceLine>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table data-testid="sources">
            <thead><tr><th>"Source"</th><th>"Kind"</th><th>"URL"</th><th>"State"</th><th class="num">"Secrets"</th><th class="num">"Events"</th><th>"Added"</th></tr></thead>
            <tbody>{lines.into_iter().map(|s| view! {
                <tr>
                    <td><strong>{s.name.clone()}</strong></td>
                    <td>{s.kind}</td>
                    <td><code>{format!("/webhooks/{}", s.name)}</code></td>
                    <td class={if s.enabled { "status processed" } else { "status failed" }}>{if s.enabled { "enabled" } else { "disabled" }}</td>
                    <td class="num">{s.secrets}</td>
                    <td class="num"><a href=format!("/admin/events?source={}", s.name)>{s.events}</a></td>
                    <td>{s.created_at}" "<a href=format!("/admin/sources/{}/evidence.tar", s.name) download>"Evidence, last day"</a></td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
pub fn AdminSourceEventPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || params.with(|p| (p.get("source").unwrap_or_default(), p.get("id").unwrap_or_default()));
    let event = Resource::new(key, |(source, id)| admin_gateway_event(source, id));
    view! {
        <AdminNav/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || event.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(e) => view! {
                    <h1><code>{e.event_id.clone()}</code></h1>
                    <dl class="facts">
                        <div><dt>"Source"</dt><dd><a href=format!("/admin/events?source={}", e.source)>{e.source.clone()}</a></dd></div>
                        <div><dt>"Type"</dt><dd>{e.event_type.clone()}</dd></div>
                        <div><dt>"Received"</dt><dd>{e.received_at.clone()}</dd></div>
                        <div><dt>"Happened (as the sender says)"</dt><dd>{e.occurred_at.clone().unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>"SHA-256 of the payload"</dt><dd><code class="wrap">{e.payload_sha256.clone()}</code></dd></div>
                    </dl>
                    <h2>"Signature check"</h2>
                    <pre class="payload" data-testid="verification">{e.verification}</pre>
                    <h2>"Headers, as received"</h2>
                    <pre class="payload" data-testid="headers">{e.headers}</pre>
                    <h2>"Raw payload, as received"</h2>
                    <pre class="payload" data-testid="payload">{e.payload}</pre>
                }.into_any(),
            })}
        </Suspense>
    }
}
