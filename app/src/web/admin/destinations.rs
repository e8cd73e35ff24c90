//! Forwarding destinations: every destination with its state and deliveries counted
//! (`/admin/destinations`), and one destination's deliveries with filters, each attempt logged
//! (time, answer, latency, the answer's first bytes), and its actions: replay one delivery,
//! replay every failed one in a window, pause and resume, enable after a 410, rotate the
//! signing secret with an overlap (plain form posts, `server::routes::destinations`).
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::admin::{AdminNav, FlashMessage};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationLine {
    pub name: String,
    pub url: String,
    /// "sending", "paused since …", "disabled …: why".
    pub state: String,
    pub sending: bool,
    pub paused: bool,
    pub disabled: bool,
    /// The filter in words: sources, type prefixes, metadata.
    pub filter: String,
    pub limits: String,
    pub secrets: usize,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptLine {
    pub at: String,
    pub answer: String,
    pub latency_ms: i64,
    pub head: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLine {
    pub id: i64,
    pub source: String,
    pub event_id: String,
    pub event_type: String,
    pub received_at: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
    pub log: Vec<AttemptLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationView {
    pub line: DestinationLine,
    pub deliveries: Vec<DeliveryLine>,
}

/// Deliveries shown on a destination's page (the newest of the filter's).
#[cfg(feature = "ssr")]
const PAGE_DELIVERIES: i64 = 100;

#[cfg(feature = "ssr")]
fn destination_line(s: crate::services::forwarding::DestinationSummary) -> DestinationLine {
    use crate::web::fmt_time;
    let d = &s.destination;
    let state = match (&d.disabled_at, &d.paused_at) {
        (Some(t), _) => format!("disabled {}: {}", fmt_time(*t), d.disabled_reason.clone().unwrap_or_default()),
        (None, Some(t)) => format!("paused since {}", fmt_time(*t)),
        (None, None) => "sending".to_string(),
    };
    let filter = crate::services::forwarding::filter_of(d).map_or_else(|e| e.to_string(), |f| f.describe());
    DestinationLine {
        name: d.name.clone(),
        url: d.url.clone(),
        state,
        sending: d.sending(),
        paused: d.paused_at.is_some(),
        disabled: d.disabled_at.is_some(),
        filter,
        limits: format!("{} a second, {} at once", d.rate_per_second, d.max_in_flight),
        secrets: s.active_secrets,
        pending: s.pending,
        delivered: s.delivered,
        dead: s.dead,
    }
}

#[server]
pub async fn admin_destinations() -> Result<Vec<DestinationLine>, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let all = crate::services::forwarding::list(&svc.db, chrono::Utc::now())
        .await
        .map_err(|e| AppError::unavailable("The destinations could not be read", e))?;
    Ok(all.into_iter().map(destination_line).collect())
}

/// One destination's page: its deliveries of one `status` (any when empty), for events received
/// from `from` to `to` (dates or RFC 3339 times, as on the Events page; empty: unbounded).
#[server]
pub async fn admin_destination(
    name: String,
    status: String,
    from: String,
    to: String,
) -> Result<DestinationView, AppError> {
    use crate::services::forwarding::{self, ForwardingError};
    use crate::web::fmt_time;
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    // The window is read as the Events page reads it.
    let window = crate::domain::event_search::EventFilter::parse(|k| match k {
        "from" => Some(from.as_str()),
        "to" => Some(to.as_str()),
        _ => None,
    })
    .map_err(|m| AppError::Invalid(m).with_status())?;
    let status = Some(status.as_str()).filter(|s| !s.is_empty());
    let invalid = |e: ForwardingError| match e {
        ForwardingError::Unknown(_) => AppError::NotFound.with_status(),
        ForwardingError::Store(e) => AppError::unavailable("The deliveries could not be read", e),
        other => AppError::Invalid(other.to_string()).with_status(),
    };
    let summary = forwarding::list(&svc.db, chrono::Utc::now())
        .await
        .map_err(invalid)?
        .into_iter()
        .find(|s| s.destination.name == name)
        .ok_or_else(|| AppError::NotFound.with_status())?;
    let rows = forwarding::deliveries(&svc.db, &name, status, (window.from, window.to), PAGE_DELIVERIES)
        .await
        .map_err(invalid)?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for d in rows {
        let log = crate::store::delivery_attempts::for_delivery(&svc.db, d.id)
            .await
            .map_err(|e| AppError::unavailable("The attempts could not be read", e))?
            .into_iter()
            .map(|a| AttemptLine {
                at: a.attempted_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                answer: a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string()),
                latency_ms: a.latency_ms,
                head: a.answer,
            })
            .collect();
        deliveries.push(DeliveryLine {
            id: d.id,
            next_attempt: (d.status == "pending").then(|| fmt_time(d.next_attempt_at)),
            received_at: fmt_time(d.received_at),
            event_type: d.event_type.unwrap_or_default(),
            source: d.source,
            event_id: d.event_id,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            log,
        });
    }
    Ok(DestinationView { line: destination_line(summary), deliveries })
}

#[component]
pub fn AdminDestinationsPage() -> impl IntoView {
    let all = Resource::new(|| (), |_| admin_destinations());
    view! {
        <h1>"Forwarding"</h1>
        <AdminNav/>
        <FlashMessage/>
        <p class="muted">"Stored events passed on to the publisher's own systems, signed with the Standard Webhooks scheme, at least once each, retried with backoff. Add one here or with "<code>"revision-store destinations add"</code>"."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || all.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(lines) if lines.is_empty() => view! { <p class="muted">"No destinations yet."</p> }.into_any(),
                Ok(lines) => view! {
                    <div class="table-wrap"><table data-testid="destinations">
                        <thead><tr><th>"Destination"</th><th>"URL"</th><th>"State"</th><th>"Events"</th>
                            <th class="num">"Waiting"</th><th class="num">"Delivered"</th><th class="num">"Dead"</th></tr></thead>
                        <tbody>{lines.into_iter().map(|d| view! {
                            <tr>
                                <td><a href=format!("/admin/destinations/{}", d.name)><strong>{d.name.clone()}</strong></a></td>
                                <td><code class="wrap">{d.url}</code></td>
                                <td class={if d.sending { "status processed" } else { "status failed" }}>{d.state}</td>
                                <td>{d.filter}</td>
                                <td class="num">{d.pending}</td>
                                <td class="num">{d.delivered}</td>
                                <td class="num">{d.dead}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any(),
            })}
        </Suspense>
        <AddDestinationForm/>
    }
}

/// The add form: a plain post (`server::routes::destinations`). A refused one comes back here
/// with what was typed in the address, so nothing typed is lost.
#[component]
fn AddDestinationForm() -> impl IntoView {
    let query = use_query_map();
    let typed = move |name: &'static str, default: String| query.with(|q| q.get(name)).unwrap_or(default);
    use crate::domain::forwarding::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_RATE_PER_SECOND};
    let rate_card = query.with(|q| q.get("rate_card").is_some());
    view! {
        <section class="card narrow">
            <h2>"Add a destination"</h2>
            <p class="muted">"Events stored from now on that it takes are delivered to it. Its signing secret is shown once, when it is added."</p>
            <form method="post" action="/admin/destinations" class="stack" data-testid="add-destination">
                <label for="dest-name">"Name (lowercase letters, digits and dashes)"</label>
                <input id="dest-name" name="name" required maxlength="64" autocomplete="off" value=typed("name", String::new())/>
                <label for="dest-url">"URL (https://, or http:// to this machine)"</label>
                <input id="dest-url" name="url" type="url" required value=typed("url", String::new())/>
                <label for="dest-sources">"Sources (comma-separated: stripe, or gateway sources)"</label>
                <input id="dest-sources" name="sources" required value=typed("sources", "stripe".into())/>
                <label for="dest-types">"Only event types starting with (comma-separated; empty: every type)"</label>
                <input id="dest-types" name="type_prefixes" value=typed("type_prefixes", String::new())/>
                <label for="dest-metadata">"Stripe metadata that must be there: key or key=value, comma-separated"</label>
                <input id="dest-metadata" name="metadata" value=typed("metadata", String::new())/>
                <label class="checkbox"><input type="checkbox" name="rate_card" checked=rate_card/>" Only the Rate Card's payments"</label>
                <label for="dest-rate">"Deliveries a second, at most"</label>
                <input id="dest-rate" name="rate" inputmode="numeric" required value=typed("rate", DEFAULT_RATE_PER_SECOND.to_string())/>
                <label for="dest-in-flight">"Deliveries at once, at most"</label>
                <input id="dest-in-flight" name="in_flight" inputmode="numeric" required value=typed("in_flight", DEFAULT_MAX_IN_FLIGHT.to_string())/>
                <button type="submit" class="primary">"Add destination"</button>
            </form>
        </section>
    }
}

#[component]
pub fn AdminDestinationPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || {
        let q = |k: &str| query.with(|q| q.get(k).unwrap_or_default());
        (params.with(|p| p.get("name").unwrap_or_default()), q("status"), q("from"), q("to"))
    };
    let view_data = Resource::new(key, |(name, status, from, to)| admin_destination(name, status, from, to));
    view! {
        <AdminNav/>
        <FlashMessage/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || view_data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(v) => view! { <DestinationDetail v/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn DestinationDetail(v: DestinationView) -> impl IntoView {
    let d = v.line;
    let base = format!("/admin/destinations/{}", d.name);
    view! {
        <h1>{d.name.clone()}</h1>
        <dl class="facts">
            <div><dt>"URL"</dt><dd><code class="wrap">{d.url.clone()}</code></dd></div>
            <div><dt>"State"</dt><dd data-testid="destination-state">{d.state.clone()}</dd></div>
            <div><dt>"Events"</dt><dd>{d.filter.clone()}</dd></div>
            <div><dt>"Pace"</dt><dd>{d.limits.clone()}</dd></div>
            <div><dt>"Signing secrets in use"</dt><dd>{d.secrets}</dd></div>
        </dl>
        <DestinationActions base=base.clone() paused=d.paused disabled=d.disabled/>
        <h2>"Deliveries"</h2>
        <DeliveryFilter base=base.clone()/>
        {if v.deliveries.is_empty() {
            view! { <p class="muted">"No deliveries match."</p> }.into_any()
        } else {
            view! { <DeliveryRows base deliveries=v.deliveries/> }.into_any()
        }}
    }
}

#[component]
fn DestinationActions(base: String, paused: bool, disabled: bool) -> impl IntoView {
    view! {
        <div class="actions destination-actions">
            {if paused {
                view! { <form method="post" action=format!("{base}/resume")><button type="submit">"Resume"</button></form> }.into_any()
            } else {
                view! { <form method="post" action=format!("{base}/pause")><button type="submit">"Pause"</button></form> }.into_any()
            }}
            {disabled.then(|| view! {
                <form method="post" action=format!("{base}/enable")><button type="submit">"Enable again"</button></form>
            })}
            <form method="post" action=format!("{base}/rotate")>
                <label for="overlap">"Old secret works for (hours)"</label>
                <input id="overlap" name="overlap_hours" value="24" size="3" inputmode="numeric"/>
                <button type="submit">"Rotate the signing secret"</button>
            </form>
            <form method="post" action=format!("{base}/replay-failed")>
                <label for="rf-from">"Replay every failed delivery received from"</label>
                <input id="rf-from" name="from" placeholder="YYYY-MM-DD" required/>
                <label for="rf-to">"to (inclusive)"</label>
                <input id="rf-to" name="to" placeholder="YYYY-MM-DD" required/>
                <button type="submit">"Replay failed"</button>
            </form>
        </div>
    }
}

#[component]
fn DeliveryFilter(base: String) -> impl IntoView {
    let query = use_query_map();
    let field = move |name: &'static str| move || query.with(|q| q.get(name).unwrap_or_default());
    let clear = base.clone();
    view! {
        <form method="get" action=base class="search event-search" role="search" aria-label="Filter deliveries">
            <div class="field">
                <label for="d-status">"Status"</label>
                <select id="d-status" name="status">
                    {[("", "any"), ("pending", "waiting"), ("failing", "failing"), ("delivered", "delivered"), ("dead", "dead")]
                        .into_iter()
                        .map(|(value, text)| view! { <option value=value selected=move || field("status")() == value>{text}</option> })
                        .collect_view()}
                </select>
            </div>
            <div class="field"><label for="d-from">"Received from"</label><input id="d-from" name="from" placeholder="YYYY-MM-DD" value=field("from")/></div>
            <div class="field"><label for="d-to">"to (inclusive)"</label><input id="d-to" name="to" placeholder="YYYY-MM-DD" value=field("to")/></div>
            <div class="actions"><button type="submit">"Show"</button><a href=clear>"Clear"</a></div>
        </form>
    }
}

#[component]
fn DeliveryRows(base: String, deliveries: Vec<DeliveryLine>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table data-testid="deliveries">
            <thead><tr><th>"Received"</th><th>"Event"</th><th>"Status"</th><th class="num">"Attempts"</th><th>"Attempts' log"</th><th></th></tr></thead>
            <tbody>{deliveries.into_iter().map(|d| {
                let replay = format!("{base}/deliveries/{}/replay", d.id);
                view! {
                    <tr id=format!("delivery-{}", d.id)>
                        <td>{d.received_at}</td>
                        <td><code>{d.event_id}</code><br/>{d.source}" · "{d.event_type}</td>
                        <td class=format!("status {}", d.status)>{d.status.clone()}
                            {d.next_attempt.map(|t| view! { <br/><span class="muted">{format!("next {t}")}</span> })}
                            {d.last_error.map(|e| view! { <br/><span class="error">{e}</span> })}</td>
                        <td class="num">{d.attempts}</td>
                        <td><ol class="attempts">{d.log.into_iter().map(|a| view! {
                            <li>{format!("{} · {} · {} ms", a.at, a.answer, a.latency_ms)}
                                {(!a.head.is_empty()).then(|| view! { <br/><code class="wrap">{a.head}</code> })}</li>
                        }).collect_view()}</ol></td>
                        <td><form method="post" action=replay><button type="submit">"Replay"</button></form></td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}
