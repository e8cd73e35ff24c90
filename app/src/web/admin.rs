//! The admin pages: every contract's balance, a contract's money trail, and the Stripe events
//! as received (status, failure reason, raw payload). Every server function needs the admin role.
use super::contracts::{ContractDetail, ContractSummary};
use super::error::AppError;
use super::ErrorView;
use crate::domain::listing::ContractSort;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

pub const PER_PAGE: i64 = 25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractList {
    pub rows: Vec<ContractSummary>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

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
pub struct CreditLine {
    pub payment_id: String,
    pub revisions: i64,
    pub amount: String,
    /// The event that credited it; None when the return page or reconciliation did.
    pub event_id: Option<String>,
    pub credited_by: Option<String>,
    pub created_at: String,
    /// Revisions of this pack not yet revoked (what a refund can still take back).
    pub remaining: i64,
    /// A dispute is open on it (Stripe refuses refunds meanwhile).
    pub disputed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminContract {
    pub detail: ContractDetail,
    pub credits: Vec<CreditLine>,
    /// Every payment attempt, newest first, failed ones included (a person asking "my payment
    /// failed" is answered here), with the events that mention its PaymentIntent.
    pub attempts: Vec<Attempt>,
    pub money_back: super::admin_money::MoneyBack,
}

/// One payment attempt (a PaymentIntent we created for this contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub payment_intent_id: String,
    pub created_at: String,
    pub amount: String,
    /// Stripe's status of the PaymentIntent as we last heard it.
    pub status: String,
    pub credited: bool,
    /// Why its last try failed, in Stripe's words (declined, 3-D Secure failed), if it did and
    /// was not paid since.
    pub failure: Option<String>,
    pub events: Vec<EventLine>,
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
fn event_line(e: crate::store::events::EventSummary) -> EventLine {
    EventLine {
        event_id: e.event_id,
        event_type: e.event_type,
        livemode: e.livemode,
        status: e.status,
        attempts: e.attempts,
        last_error: e.last_error,
        outcome: e.outcome,
        received_at: super::fmt_time(e.received_at),
    }
}

#[server]
pub async fn admin_contracts(search: String, sort: ContractSort, page: i64) -> Result<ContractList, AppError> {
    use crate::store::contracts::{balances, ContractQuery};
    super::auth::server::require_admin().await?;
    let svc = super::services()?;
    let page = page.max(1);
    let q = ContractQuery { search, sort, limit: PER_PAGE, offset: (page - 1) * PER_PAGE, ..Default::default() };
    let (rows, total) =
        balances(&svc.db, &q).await.map_err(|e| AppError::unavailable("Contracts could not be loaded", e))?;
    Ok(ContractList {
        rows: rows.into_iter().map(super::contracts::server::summary).collect(),
        total,
        page,
        pages: ((total + PER_PAGE - 1) / PER_PAGE).max(1),
    })
}

#[server]
pub async fn load_admin_contract(contract_id: i64) -> Result<AdminContract, AppError> {
    use crate::store::{events, ledger};
    super::auth::server::require_admin().await?;
    let svc = super::services()?;
    let detail = super::contracts::server::detail(&svc, contract_id, None).await?;
    let load = |e| AppError::unavailable("The ledger could not be loaded", e);
    let credits = ledger::credits(&svc.db, contract_id).await.map_err(load)?;
    // Every attempt, not the advertiser's history (which leaves out cards never paid with).
    let mut attempts = Vec::new();
    for p in crate::store::purchases::for_contract(&svc.db, contract_id).await.map_err(load)?.into_iter().rev() {
        let found = events::about_payment(&svc.db, &p.payment_intent_id, 50).await.map_err(load)?;
        let credited = credits.iter().any(|c| c.payment_id == p.payment_intent_id);
        // The newest failure says why, unless the attempt was paid after it.
        let failure = match found.iter().find(|e| e.event_type == "payment_intent.payment_failed") {
            Some(e) if !credited && p.status != "succeeded" => events::evidence(&svc.db, &e.event_id)
                .await
                .map_err(load)?
                .and_then(|ev| crate::domain::events::payment_failure(&ev.payload)),
            _ => None,
        };
        attempts.push(Attempt {
            amount: super::money_text(p.amount, &p.currency),
            created_at: super::fmt_time(p.created_at),
            status: p.status,
            credited,
            failure,
            events: found.into_iter().map(event_line).collect(),
            payment_intent_id: p.payment_intent_id,
        });
    }
    let money_back = super::admin_money::money_back(&svc, contract_id).await?;
    let mut lines = Vec::with_capacity(credits.len());
    for c in credits {
        let revoked: i64 =
            money_back.adjustments.iter().filter(|a| a.payment_id == c.payment_id).map(|a| -a.change).sum();
        lines.push(CreditLine {
            amount: super::money_text(c.amount, &c.currency),
            remaining: c.revisions - revoked,
            disputed: money_back.disputes.iter().any(|d| d.payment_id == c.payment_id && d.is_open),
            payment_id: c.payment_id,
            revisions: c.revisions,
            event_id: c.stripe_event_id,
            credited_by: c.credited_by,
            created_at: super::fmt_time(c.created_at),
        });
    }
    Ok(AdminContract { credits: lines, attempts, detail, money_back })
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
    super::auth::server::require_admin().await?;
    let svc = super::services()?;
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
    super::auth::server::require_admin().await?;
    let svc = super::services()?;
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

fn sort_from(s: &str) -> ContractSort {
    match s {
        "advertiser" => ContractSort::Advertiser,
        "publication" => ContractSort::Publication,
        "available" => ContractSort::AvailableAsc,
        "-available" => ContractSort::AvailableDesc,
        _ => ContractSort::Id,
    }
}

#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Admin">
            <a href="/admin">"Contracts"</a>
            <a href="/admin/events">"Stripe events"</a>
            <a href="/admin/reconciliation">"Reconciliation"</a>
            <a href="/admin/revenue">"Revenue"</a>
            <a href="/admin/people">"People"</a>
        </nav>
        <super::admin_money::FindingsBanner/>
    }
}

#[component]
pub fn AdminContractsPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        query.with(|q| {
            (
                q.get("q").unwrap_or_default(),
                q.get("sort").unwrap_or_default(),
                q.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1),
            )
        })
    };
    let list = Resource::new(args, |(search, sort, page)| admin_contracts(search, sort_from(&sort), page));
    let link = move |sort: &str, page: i64| {
        let (search, _, _) = args();
        let mut url = format!("/admin?sort={sort}&page={page}");
        if !search.is_empty() {
            url.push_str("&q=");
            url.push_str(&super::url_encode(&search));
        }
        url
    };
    view! {
        <h1>"All contracts"</h1>
        <AdminNav/>
        <form method="get" action="/admin" class="search" role="search">
            <label for="q">"Search by advertiser or publication"</label>
            <input id="q" name="q" type="search" value=move || args().0/>
            <input type="hidden" name="sort" value=move || args().1/>
            <button type="submit">"Search"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || list.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(l) => {
                    let sort = args().1;
                    let avail_sort = if sort == "available" { "-available" } else { "available" };
                    view! {
                        <p class="muted">{format!("{} contracts", l.total)}</p>
                        <div class="table-wrap"><table class="contracts">
                            <thead><tr>
                                <th><a href=link("id", 1)>"#"</a></th>
                                <th><a href=link("advertiser", 1)>"Advertiser"</a></th>
                                <th><a href=link("publication", 1)>"Publication"</a></th>
                                // On a phone these give way to Available, the column the page is for.
                                <th class="wide">"Size"</th>
                                <th class="wide">"Included"</th><th class="wide">"Purchased"</th><th class="wide">"Revoked"</th><th class="wide">"Requested"</th>
                                <th><a href=link(avail_sort, 1)>"Available"</a></th>
                            </tr></thead>
                            <tbody>
                                {l.rows.into_iter().map(|c| view! {
                                    <tr>
                                        <td><a href=format!("/admin/contracts/{}", c.id)>{c.id}</a></td>
                                        <td class="wrap-any">{c.advertiser_email}</td>
                                        <td class="wrap-any">{c.publication}</td>
                                        <td class="wide">{c.ad_size}</td>
                                        <td class="wide">{c.balance.base}</td>
                                        <td class="wide">{c.balance.purchased}</td>
                                        <td class="wide">{c.balance.revoked}</td>
                                        <td class="wide">{c.balance.requested}</td>
                                        <td><strong data-testid="available">{c.balance.available()}</strong>
                                            {(c.balance.owed() > 0).then(|| format!(" (owes {})", c.balance.owed()))}
                                            {(c.balance.held() > 0).then(|| format!(" ({} held)", c.balance.held()))}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                        <nav class="pager" aria-label="Pages">
                            {(l.page > 1).then(|| view! { <a href=link(&sort, l.page - 1)>"← Previous"</a> })}
                            <span>{format!("Page {} of {}", l.page, l.pages)}</span>
                            {(l.page < l.pages).then(|| view! { <a href=link(&sort, l.page + 1)>"Next →"</a> })}
                        </nav>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn EventRows(events: Vec<EventLine>) -> impl IntoView {
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
pub fn AdminContractPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let data = Resource::new(id, |id| async move {
        match id {
            Some(id) => load_admin_contract(id).await,
            None => Err(AppError::NotFound),
        }
    });
    view! {
        <AdminNav/>
        // Outside the page's Suspense: a resource made inside it would not be waited for.
        <super::admin_money::FlashMessage/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(a) => {
                    let c = a.detail.contract.clone();
                    view! {
                        <h1>{format!("Contract #{} · {} · {}", c.id, c.publication, c.ad_size)}</h1>
                        <p>"Advertiser: " {c.advertiser_email.clone()}</p>
                        <p class="big"><span data-testid="available">{c.balance.available()}</span>" available"
                            {(c.balance.owed() > 0).then(|| view! { " · " <span class="warn" data-testid="owes">{format!("owes {}", c.balance.owed())}</span> })}
                            {(c.balance.held() > 0).then(|| view! { " · " <span class="warn" data-testid="held">{format!("{} held by a dispute", c.balance.held())}</span> })}
                        </p>
                        <p class="muted" data-testid="formula">{c.balance.explain()}</p>
                        <h2>"Ledger: credited packs"</h2>
                        {if a.credits.is_empty() { view! { <p class="muted">"No credits."</p> }.into_any() } else { view! {
                            <div class="table-wrap"><table>
                                <thead><tr><th class="wide">"Credited"</th><th>"PaymentIntent"</th><th>"Revisions"</th><th>"Amount"</th><th class="wide">"Evidence"</th><th>"Refund"</th></tr></thead>
                                <tbody>{a.credits.into_iter().map(|cr| {
                                    let refund = if cr.disputed {
                                        view! { <span class="muted">"disputed: answer the dispute in Stripe"</span> }.into_any()
                                    } else if cr.remaining > 0 {
                                        view! { <super::admin_money::RefundForm contract_id=c.id payment_id=cr.payment_id.clone() remaining=cr.remaining/> }.into_any()
                                    } else {
                                        view! { <span class="muted">"fully revoked"</span> }.into_any()
                                    };
                                    let payment = cr.payment_id.clone();
                                    view! {
                                    <tr data-testid="credit" data-payment=payment.clone()>
                                        <td class="wide">{cr.created_at}</td>
                                        <td><code>{cr.payment_id}</code></td>
                                        <td>{format!("+{}", cr.revisions)}</td>
                                        <td class="amount">{cr.amount}</td>
                                        <td class="wide">{match (cr.event_id, cr.credited_by.as_deref()) {
                                            (Some(id), _) => view! { <a href=format!("/admin/events/{id}")>"webhook " <code>{id.clone()}</code></a> }.into_any(),
                                            (None, Some("reconciliation")) => view! { <span>"paid at Stripe, credited by reconciliation"</span> }.into_any(),
                                            (None, _) => view! { <span>"confirmed with Stripe by the return page"</span> }.into_any(),
                                        }}
                                        " · " <a href=format!("/admin/payments/{payment}/evidence.tar") download>"evidence bundle"</a></td>
                                        <td>{refund}</td>
                                    </tr>
                                }}).collect_view()}</tbody>
                            </table></div>
                        }.into_any() }}
                        <super::admin_money::MoneyBackSection m=a.money_back.clone()/>
                        <h2>"Payment attempts and their Stripe events"</h2>
                        {if a.attempts.is_empty() { Some(view! { <p class="muted">"No payment attempts."</p> }) } else { None }}
                        {a.attempts.into_iter().map(|t| {
                            let status = if t.credited { "credited".to_string() } else { t.status.replace('_', " ") };
                            view! {
                                <div class="attempt" data-testid="attempt">
                                    <h3><code>{t.payment_intent_id}</code></h3>
                                    <p class="muted">{format!("{} · {} · ", t.created_at, t.amount)}<span data-testid="attempt-status">{status}</span></p>
                                    {t.failure.map(|f| view! { <p class="failure" data-testid="attempt-failure">"Failed: " {f}</p> })}
                                    {if t.events.is_empty() { view! { <p class="muted">"No events received for it."</p> }.into_any() } else { let events = t.events; view! { <EventRows events/> }.into_any() }}
                                </div>
                            }
                        }).collect_view()}
                        <h2>"Revision requests"</h2>
                        {if a.detail.requests.is_empty() { Some(view! { <p class="muted">"None."</p> }) } else { None }}
                        <ul class="history">{a.detail.requests.into_iter().map(|r| view! {
                            <li><span class="muted">{r.created_at.clone()}</span><p>{r.notes.clone()}</p>
                            <super::contracts::ArtworkLinks r/></li>
                        }).collect_view()}</ul>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn AdminEventsPage() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let query = use_query_map();
    let field = move |name: &'static str| move || query.with(|q| q.get(name).unwrap_or_default());
    let results = Resource::new(move || location.search.get(), admin_events);
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
        <h1>"Stripe events"</h1>
        <AdminNav/>
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
            <div class="actions">
                <button type="submit">"Search"</button>
                <a href="/admin/events">"Clear"</a>
            </div>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || results.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(r) => {
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
                            {(!field("after")().is_empty()).then(|| view! {
                                <a href=format!("/admin/events{search}")>"Newest"</a>
                            })}
                            {r.next.map(|next| view! { <a href=format!("/admin/events?{next}") rel="next">"Older"</a> })}
                        </nav>
                    }.into_any()
                }
            })}
        </Transition>
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
                    view! {
                        <tr>
                            <td>{super::fmt_time(h.received_at)}</td>
                            <td><a href=format!("/admin/events/{}", h.event_id)><code>{h.event_id.clone()}</code></a></td>
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
