//! The admin's Stripe events: the search (with its exports) and one event as received
//! (status, failure reason, raw payload). The contract page lists a payment's events with
//! `EventRows`.
use super::AdminNav;
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub received_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    pub line: EventLine,
    pub api_version: Option<String>,
    pub signature_header: String,
    /// The body as received, pretty-printed when it is JSON.
    pub payload: String,
}

#[cfg(feature = "ssr")]
pub(super) fn event_line(e: crate::store::events::EventSummary) -> EventLine {
    EventLine {
        event_id: e.event_id,
        event_type: e.event_type,
        livemode: e.livemode,
        status: e.status,
        attempts: e.attempts,
        last_error: e.last_error,
        outcome: e.outcome,
        received_at: crate::web::fmt_time(e.received_at),
    }
}

/// One page of an event search, with the links that continue it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventResults {
    pub hits: Vec<crate::domain::event_search::Hit>,
    /// The query string of the next page; None on the last one.
    pub next: Option<String>,
    /// The query string of the whole search (no page position), for the exports and page 1.
    pub search: String,
    /// Stored events not indexed yet, so not in these results.
    pub unindexed: i64,
}

/// The events page's search: `query` is the page's own query string (the filter's fields as
/// `domain::event_search::PARAMS` names them, `after` and `limit`).
#[server]
pub async fn admin_events(query: String) -> Result<EventResults, AppError> {
    use crate::domain::event_search::parse_page;
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.trim_start_matches('?').as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // A mistyped filter is the asker's to fix: 422 with the field named, and the page keeps the form.
    let (filter, after, limit) = parse_page(get).map_err(|m| AppError::Invalid(m).with_status())?;
    let page = crate::services::event_search::page(&svc.db, &filter, after.as_ref(), limit)
        .await
        .map_err(|e| AppError::unavailable("Events could not be loaded", e))?;
    let keep_limit: Vec<(&str, String)> = get("limit").map(|l| ("limit", l.to_string())).into_iter().collect();
    let next = page.next.map(|c| {
        let mut extra = keep_limit.clone();
        extra.push(("after", c.encode()));
        filter.query_string(&extra)
    });
    Ok(EventResults { hits: page.hits, next, search: filter.query_string(&keep_limit), unindexed: page.unindexed })
}

#[server]
pub async fn admin_event(event_id: String) -> Result<EventDetail, AppError> {
    use crate::store::events;
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let load = |e| AppError::unavailable("The event could not be loaded", e);
    let summary =
        events::summary(&svc.db, &event_id).await.map_err(load)?.ok_or_else(|| AppError::NotFound.with_status())?;
    let raw =
        events::evidence(&svc.db, &event_id).await.map_err(load)?.ok_or_else(|| AppError::NotFound.with_status())?;
    let payload = serde_json::from_slice::<serde_json::Value>(&raw.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&raw.payload).into_owned());
    Ok(EventDetail {
        api_version: summary.api_version.clone(),
        line: event_line(summary),
        signature_header: raw.signature_header,
        payload,
    })
}

#[component]
pub(super) fn EventRows(events: Vec<EventLine>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="events">
            <thead><tr><th>"Received"</th><th class="wide">"Event"</th><th>"Type"</th><th>"Status"</th><th class="wide">"Detail"</th></tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        <td>{e.received_at}</td>
                        <td class="wide"><a href=format!("/admin/events/{}", e.event_id)><code>{e.event_id.clone()}</code></a></td>
                        // The type links to the event too: on a phone the id column gives way.
                        <td class="wrap-any"><a href=format!("/admin/events/{}", e.event_id)>{e.event_type}</a>{(!e.livemode).then_some(" (test)")}</td>
                        <td class=format!("status {}", e.status)>{e.status.clone()}
                            {(e.attempts > 1).then(|| format!(" after {} attempts", e.attempts))}</td>
                        <td class="wide">{e.last_error.or(e.outcome).unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

#[component]
pub fn AdminEventsPage() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let query = use_query_map();
    let results = Resource::new(move || location.search.get(), admin_events);
    let paged = move || query.with(|q| !q.get("after").unwrap_or_default().is_empty());
    view! {
        <h1>"Events"</h1>
        <AdminNav/>
        <EventSearchForm/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || results.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(r) => view! { <EventResultsView r paged=paged()/> }.into_any(),
            })}
        </Transition>
    }
}

/// The events page's filter, filled in from the page's query string.
#[component]
fn EventSearchForm() -> impl IntoView {
    let query = use_query_map();
    let field = move |name: &'static str| move || query.with(|q| q.get(name).unwrap_or_default());
    let text_field = move |name: &'static str, label: &'static str, hint: &'static str| {
        view! {
            <div class="field">
                <label for=format!("f-{name}")>{label}</label>
                <input id=format!("f-{name}") name=name placeholder=hint value=field(name)/>
            </div>
        }
    };
    let choice = move |name: &'static str, label: &'static str, options: &'static [(&'static str, &'static str)]| {
        view! {
            <div class="field">
                <label for=format!("f-{name}")>{label}</label>
                <select id=format!("f-{name}") name=name>
                    {options.iter().map(|(value, text)| view! {
                        <option value=*value selected=move || field(name)() == *value>{*text}</option>
                    }).collect_view()}
                </select>
            </div>
        }
    };
    view! {
        <form method="get" action="/admin/events" class="search event-search" role="search" aria-label="Search events">
            {text_field("from", "Received from", "YYYY-MM-DD")}
            {text_field("to", "to (inclusive)", "YYYY-MM-DD")}
            {text_field("type", "Type starts with", "charge.dispute.")}
            {choice("status", "Status", &[("", "any"), ("pending", "pending"), ("processed", "processed"), ("ignored", "ignored"), ("failed", "failed")])}
            {text_field("min", "Amount from", "100.00")}
            {text_field("max", "to", "150.00")}
            {text_field("currency", "Currency", "usd")}
            {choice("mode", "Mode", &[("", "any"), ("live", "live"), ("test", "test")])}
            {text_field("payment", "PaymentIntent", "pi_...")}
            {text_field("contract", "Contract", "12")}
            {text_field("email", "Advertiser email", "ann@example.com")}
            {text_field("q", "Text in payload", "card_declined")}
            {text_field("source", "Source", "stripe")}
            <div class="actions">
                <button type="submit">"Search"</button>
                <a href="/admin/events">"Clear"</a>
            </div>
        </form>
    }
}

/// One page of results: the exports, the hits, and the links to the newest and older pages
/// (`paged`: this is not the first page).
#[component]
fn EventResultsView(r: EventResults, paged: bool) -> impl IntoView {
    let search = if r.search.is_empty() { String::new() } else { format!("?{}", r.search) };
    view! {
        <p class="exports">
            "Download this search: "
            <a href=format!("/admin/events.csv{search}") download>"CSV"</a>
            " · "
            <a href=format!("/admin/events.ndjson{search}") download>"NDJSON"</a>
        </p>
        {(r.unindexed > 0).then(|| view! {
            <p class="notice" role="status">{format!(
                "{} recently stored events are still being indexed and are not in these results yet.",
                r.unindexed
            )}</p>
        })}
        {if r.hits.is_empty() {
            view! { <p class="muted">"No events match."</p> }.into_any()
        } else {
            view! { <HitRows hits=r.hits/> }.into_any()
        }}
        <nav class="pager" aria-label="Pages">
            {paged.then(|| view! {
                <a href=format!("/admin/events{search}")>"Newest"</a>
            })}
            {r.next.map(|next| view! { <a href=format!("/admin/events?{next}") rel="next">"Older"</a> })}
        </nav>
    }
}

#[component]
fn HitRows(hits: Vec<crate::domain::event_search::Hit>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="events" data-testid="event-results">
            <thead><tr>
                <th>"Received"</th><th>"Event"</th><th>"Type"</th><th>"Status"</th>
                <th>"PaymentIntent"</th><th class="num">"Amount"</th><th>"Contract"</th><th>"Detail"</th>
            </tr></thead>
            <tbody>
                {hits.into_iter().map(|h| {
                    let amount = h.amount_text().unwrap_or_default();
                    // A gateway source's event has its own page (headers and signature check).
                    let href = if h.source == "stripe" {
                        format!("/admin/events/{}", h.event_id)
                    } else {
                        let id: String = form_urlencoded::byte_serialize(h.event_id.as_bytes()).collect();
                        format!("/admin/sources/{}/events/{id}", h.source)
                    };
                    view! {
                        <tr>
                            <td>{crate::web::fmt_time(h.received_at)}</td>
                            <td><a href=href><code>{h.event_id.clone()}</code></a></td>
                            <td>{h.event_type}{(!h.livemode).then_some(" (test)")}</td>
                            <td class=format!("status {}", h.status)>{h.status.clone()}</td>
                            <td>{h.payment_intent.map(|pi| view! { <code>{pi}</code> })}</td>
                            <td class="num">{amount}</td>
                            <td>{h.contract_id.map(|c| view! { <a href=format!("/admin/contracts/{c}")>{format!("#{c}")}</a> })}</td>
                            <td>{h.note.unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

#[component]
pub fn AdminEventPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let event = Resource::new(id, admin_event);
    view! {
        <AdminNav/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || event.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(e) => view! {
                    <h1><code>{e.line.event_id.clone()}</code></h1>
                    <dl class="facts">
                        <div><dt>"Type"</dt><dd>{e.line.event_type.clone()}</dd></div>
                        <div><dt>"Mode"</dt><dd>{if e.line.livemode { "live" } else { "test" }}</dd></div>
                        <div><dt>"API version"</dt><dd>{e.api_version.clone().unwrap_or_default()}</dd></div>
                        <div><dt>"Received"</dt><dd>{e.line.received_at.clone()}</dd></div>
                        <div><dt>"Status"</dt><dd data-testid="event-status">{e.line.status.clone()}</dd></div>
                        <div><dt>"Attempts"</dt><dd>{e.line.attempts}</dd></div>
                        <div><dt>"Failure reason"</dt><dd>{e.line.last_error.clone().unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>"Outcome"</dt><dd>{e.line.outcome.clone().unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>"Stripe-Signature"</dt><dd><code class="wrap">{e.signature_header.clone()}</code></dd></div>
                    </dl>
                    <h2>"Raw payload, as received"</h2>
                    <pre class="payload" data-testid="payload">{e.payload}</pre>
                }.into_any(),
            })}
        </Suspense>
    }
}
