//! The admin's contract pages: every contract's balance (searchable, sortable, paged) and one
//! contract's money trail: credited packs, what was revoked or given back, every payment attempt
//! with its Stripe events, and the revision requests.
use super::events::{EventLine, EventRows};
use super::AdminNav;
use crate::domain::listing::ContractSort;
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::contracts::{ContractDetail, ContractSummary};
use crate::web::error::AppError;
use crate::web::ErrorView;
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
    pub money_back: super::refunds::MoneyBack,
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

#[server]
pub async fn admin_contracts(search: String, sort: ContractSort, page: i64) -> Result<ContractList, AppError> {
    use crate::store::contracts::{balances, ContractQuery};
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let page = page.max(1);
    let q = ContractQuery { search, sort, limit: PER_PAGE, offset: (page - 1) * PER_PAGE, ..Default::default() };
    let (rows, total) =
        balances(&svc.db, &q).await.map_err(|e| AppError::unavailable("Contracts could not be loaded", e))?;
    Ok(ContractList {
        rows: rows.into_iter().map(crate::web::contracts::server::summary).collect(),
        total,
        page,
        pages: ((total + PER_PAGE - 1) / PER_PAGE).max(1),
    })
}

#[server]
pub async fn load_admin_contract(contract_id: i64) -> Result<AdminContract, AppError> {
    use crate::services::statement::{contract_statement, Reader};
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let statement = contract_statement(&svc.db, contract_id, Reader::Admin)
        .await
        .map_err(|e| AppError::unavailable("The ledger could not be loaded", e))?
        .ok_or_else(|| AppError::NotFound.with_status())?;
    let admin = statement.admin.as_ref().expect("an admin's statement has the admin's detail");
    // Every attempt, not the advertiser's history (which leaves out cards never paid with).
    let attempts = statement
        .purchases
        .iter()
        .rev()
        .map(|p| Attempt {
            amount: crate::web::money_text(p.amount, &p.currency),
            created_at: crate::web::fmt_time(p.created_at),
            status: p.status.clone(),
            credited: statement.credited(&p.payment_intent_id),
            failure: admin.failures.get(&p.payment_intent_id).cloned(),
            events: admin
                .events
                .get(&p.payment_intent_id)
                .map(|found| found.iter().cloned().map(super::events::event_line).collect())
                .unwrap_or_default(),
            payment_intent_id: p.payment_intent_id.clone(),
        })
        .collect();
    let credits = statement
        .credits
        .iter()
        .map(|c| CreditLine {
            amount: crate::web::money_text(c.amount, &c.currency),
            remaining: c.revisions - statement.revoked(&c.payment_id),
            disputed: statement.disputed(&c.payment_id),
            payment_id: c.payment_id.clone(),
            revisions: c.revisions,
            event_id: c.stripe_event_id.clone(),
            credited_by: c.credited_by.clone(),
            created_at: crate::web::fmt_time(c.created_at),
        })
        .collect();
    Ok(AdminContract {
        credits,
        attempts,
        detail: crate::web::contracts::server::detail_of(&svc, &statement),
        money_back: super::refunds::money_back(admin),
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
            url.push_str(&crate::web::url_encode(&search));
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
        <super::FlashMessage/>
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
                        <CreditsTable contract_id=c.id credits=a.credits/>
                        <super::refunds::MoneyBackSection m=a.money_back.clone()/>
                        <h2>"Payment attempts and their Stripe events"</h2>
                        {if a.attempts.is_empty() { Some(view! { <p class="muted">"No payment attempts."</p> }) } else { None }}
                        <AttemptList attempts=a.attempts/>
                        <h2>"Revision requests"</h2>
                        {if a.detail.requests.is_empty() { Some(view! { <p class="muted">"None."</p> }) } else { None }}
                        <ul class="history">{a.detail.requests.into_iter().map(|r| view! {
                            <li><span class="muted">{r.created_at.clone()}</span><p>{r.notes.clone()}</p>
                            <crate::web::contracts::ArtworkLinks r/></li>
                        }).collect_view()}</ul>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// The contract's credited packs, each with its evidence and what a refund can still take back.
#[component]
fn CreditsTable(contract_id: i64, credits: Vec<CreditLine>) -> impl IntoView {
    if credits.is_empty() {
        return view! { <p class="muted">"No credits."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table>
            <thead><tr><th class="wide">"Credited"</th><th>"PaymentIntent"</th><th>"Revisions"</th><th>"Amount"</th><th class="wide">"Evidence"</th><th>"Refund"</th></tr></thead>
            <tbody>{credits.into_iter().map(|cr| {
                let refund = if cr.disputed {
                    view! { <span class="muted">"disputed: answer the dispute in Stripe"</span> }.into_any()
                } else if cr.remaining > 0 {
                    view! { <super::refunds::RefundForm contract_id=contract_id payment_id=cr.payment_id.clone() remaining=cr.remaining/> }.into_any()
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
    }
    .into_any()
}

/// Every payment attempt with its Stripe events, newest first.
#[component]
fn AttemptList(attempts: Vec<Attempt>) -> impl IntoView {
    attempts
        .into_iter()
        .map(|t| {
            let status = if t.credited { "credited".to_string() } else { t.status.replace('_', " ") };
            view! {
                <div class="attempt" data-testid="attempt">
                    <h3><code>{t.payment_intent_id}</code></h3>
                    <p class="muted">{format!("{} · {} · ", t.created_at, t.amount)}<span data-testid="attempt-status">{status}</span></p>
                    {t.failure.map(|f| view! { <p class="failure" data-testid="attempt-failure">"Failed: " {f}</p> })}
                    {if t.events.is_empty() { view! { <p class="muted">"No events received for it."</p> }.into_any() } else { let events = t.events; view! { <EventRows events/> }.into_any() }}
                </div>
            }
        })
        .collect_view()
}
