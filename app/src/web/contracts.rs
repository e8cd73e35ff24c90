//! The advertiser's pages: "My contracts" and a contract's page (balance, history, revision
//! requests, buying a pack). Every server function checks that the contract is the signed-in
//! advertiser's: another contract id is "not found", with no data.
use super::checkout::{BuyRevisionModal, PendingPaymentModal};
use super::error::AppError;
use super::ErrorView;
use crate::domain::artwork::{RequestProblem, ACCEPTED, MAX_NOTES_CHARS};
use crate::domain::{PackTerms, RevisionBalance};
#[cfg(feature = "ssr")]
use crate::web::access::{caller, Advertiser};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractSummary {
    pub id: i64,
    pub advertiser_email: String,
    pub publication: String,
    pub ad_size: String,
    pub balance: RevisionBalance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseLine {
    pub payment_intent_id: String,
    pub amount: String,
    pub revisions: i64,
    pub status: String,
    pub credited: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    pub id: i64,
    pub contract_id: i64,
    pub notes: String,
    pub artwork_name: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractDetail {
    pub contract: ContractSummary,
    pub purchases: Vec<PurchaseLine>,
    pub requests: Vec<RequestLine>,
    pub terms: PackTerms,
    /// Notes of a revision request that was just refused (a wrong file, say), given back so the
    /// form shows them again instead of losing what the user typed.
    pub draft_notes: Option<String>,
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use super::*;
    use crate::services::statement::ContractStatement;
    use crate::services::Services;
    use crate::store::contracts::ContractBalanceRow;
    use crate::web::fmt_time;

    pub fn summary(r: ContractBalanceRow) -> ContractSummary {
        ContractSummary {
            balance: r.balance(),
            id: r.id,
            advertiser_email: r.advertiser_email,
            publication: r.publication,
            ad_size: r.ad_size,
        }
    }

    /// The contract page's data, for its owner; not found for anyone else.
    pub async fn detail(svc: &Services, contract_id: i64, advertiser_id: i64) -> Result<ContractDetail, AppError> {
        use crate::services::statement::{contract_statement, Reader};
        let statement = contract_statement(&svc.db, contract_id, Reader::Owner(advertiser_id))
            .await
            .map_err(|e| AppError::unavailable("The contract's history could not be loaded", e))?
            .ok_or_else(|| AppError::NotFound.with_status())?;
        Ok(detail_of(svc, &statement))
    }

    /// The contract page's data from the contract's statement.
    pub fn detail_of(svc: &Services, statement: &ContractStatement) -> ContractDetail {
        let credited = |id: &str| statement.credited(id);
        let purchases = statement
            .purchases
            .iter()
            .rev()
            // A purchase that never got past the card form is noise in a history.
            .filter(|p| p.status != "requires_payment_method" || credited(&p.payment_intent_id))
            .map(|p| PurchaseLine {
                payment_intent_id: p.payment_intent_id.clone(),
                amount: crate::web::money_text(p.amount, &p.currency),
                revisions: p.revisions,
                status: p.status.clone(),
                credited: credited(&p.payment_intent_id),
                created_at: fmt_time(p.created_at),
            })
            .collect();
        let requests = statement
            .requests
            .iter()
            .rev()
            .map(|r| RequestLine {
                id: r.id,
                contract_id: r.contract_id,
                notes: r.notes.clone(),
                artwork_name: r.artwork_name.clone(),
                created_at: fmt_time(r.created_at),
            })
            .collect();
        ContractDetail {
            contract: summary(statement.contract.clone()),
            purchases,
            requests,
            terms: svc.terms.clone(),
            draft_notes: None,
        }
    }
}

#[server]
pub async fn my_contracts() -> Result<Vec<ContractSummary>, AppError> {
    use crate::store::contracts::{balance_rows, ContractQuery};
    let svc = super::services()?;
    let Advertiser(user) = caller::<Advertiser>(&svc).await?;
    let q = ContractQuery { advertiser_id: Some(user.id), limit: 1000, ..Default::default() };
    let rows =
        balance_rows(&svc.db, &q).await.map_err(|e| AppError::unavailable("Your contracts could not be loaded", e))?;
    Ok(rows.into_iter().map(server::summary).collect())
}

#[server]
pub async fn load_contract(contract_id: i64) -> Result<ContractDetail, AppError> {
    let svc = super::services()?;
    let Advertiser(user) = caller::<Advertiser>(&svc).await?;
    let mut detail = server::detail(&svc, contract_id, user.id).await?;
    if let Some(snapshot) = super::auth::server::snapshot().await {
        detail.draft_notes = snapshot.draft.filter(|(id, _)| *id == contract_id).map(|(_, notes)| notes);
    }
    Ok(detail)
}

#[component]
pub fn ContractsPage() -> impl IntoView {
    let contracts = Resource::new(|| (), |_| my_contracts());
    view! {
        <h1>"My contracts"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || contracts.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <p>"You have no contracts yet. Your publisher adds them."</p>
                }.into_any(),
                Ok(list) => view! {
                    <ul class="cards">
                        {list.into_iter().map(|c| view! {
                            <li class="card">
                                <a href=format!("/contracts/{}", c.id)>
                                    <strong>{c.publication.clone()}</strong>
                                    " · " {c.ad_size.clone()}
                                </a>
                                <p class="available" data-testid="available">
                                    {format!("{} available", c.balance.available().max(0))}
                                </p>
                                <p class="muted">{c.balance.explain()}</p>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
pub fn ContractPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let detail = Resource::new(id, |id| async move {
        match id {
            Some(id) => load_contract(id).await,
            None => Err(AppError::NotFound),
        }
    });
    // What the address asks for is read here, on the server: the island gets plain values.
    let (notice, returned) = query.with_untracked(|q| {
        let notice = if q.get("requested").is_some() {
            Some(Notice {
                class: "notice".into(),
                text: "Your revision request was sent. It used one revision.".into(),
            })
        } else {
            // A code, never text from the address: a link cannot make this page say anything else.
            q.get("error")
                .and_then(|code| RequestProblem::from_code(&code))
                .map(|p| Notice { class: "error".into(), text: p.message() })
        };
        // Back from a redirect-based payment: Stripe appends the PaymentIntent and its secret.
        let returned = q.get("payment_intent").filter(|_| q.get("payment_intent_client_secret").is_some());
        (notice, returned)
    });
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || detail.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(detail) => {
                    // "No revisions left" says why from the balance itself (used, refunded, or
                    // held by a dispute), not only that.
                    let notice = match (&notice, detail.contract.balance.check_can_request()) {
                        (Some(n), Err(refusal)) if n.text == RequestProblem::NoRevisionsLeft.message() => {
                            Some(Notice { class: n.class.clone(), text: capitalise(&refusal.to_string()) })
                        }
                        _ => notice.clone(),
                    };
                    // Paying runs Stripe's card form, which is JavaScript: without it "Purchase
                    // revisions" cannot do anything, so the page says so. Outside the island,
                    // which hydration walks (a <noscript> there would not match the DOM).
                    view! {
                        <ContractIsland detail notice returned=returned.clone()/>
                        <noscript><p class="notice warn" data-testid="needs-js">
                            "Paying for revisions needs JavaScript: Stripe's secure card form runs in your browser. Turn JavaScript on to buy a pack; everything else on this page works without it."
                        </p></noscript>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A message the page shows once, after a revision request's form post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub class: String,
    pub text: String,
}

/// The interactive part of the contract page (an island: only this, not the whole app, is sent
/// to the browser as wasm). It holds the contract's data so that a credited purchase refreshes
/// the balance and history in place, under the open payment modal.
#[island]
fn ContractIsland(detail: ContractDetail, notice: Option<Notice>, returned: Option<String>) -> impl IntoView {
    let contract_id = detail.contract.id;
    let detail = RwSignal::new(detail);
    let refresh = move || {
        leptos::task::spawn_local(async move {
            // On failure the modal still shows the new balance; the page catches up on reload.
            if let Ok(d) = load_contract(contract_id).await {
                detail.set(d);
            }
        })
    };
    let buying = RwSignal::new(false);
    // The pending modal opens after an inline confirm, or on returning from a redirect (the
    // modal then cleans the address so a reload cannot re-trigger it).
    let pending = RwSignal::new(returned);
    view! {
        {move || view! { <ContractView detail=detail.get() buying notice=notice.clone()/> }}
        <Show when=move || buying.get()>
            <BuyRevisionModal
                contract_id
                on_close=Callback::new(move |_| buying.set(false))
                on_paid=Callback::new(move |pi: String| {
                    buying.set(false);
                    pending.set(Some(pi));
                })
            />
        </Show>
        {move || pending.get().map(|pi| view! {
            <PendingPaymentModal
                payment_intent_id=pi
                on_credited=Callback::new(move |_| refresh())
                on_close=Callback::new(move |_| pending.set(None))
                on_retry=Callback::new(move |_| {
                    pending.set(None);
                    buying.set(true);
                })
            />
        })}
    }
}

/// A request's artwork: its name, opening it (images show in the browser), and a download.
#[component]
pub fn ArtworkLinks(r: RequestLine) -> impl IntoView {
    r.artwork_name.map(|name| {
        let href = format!("/contracts/{}/revisions/{}/artwork", r.contract_id, r.id);
        view! {
            <p class="muted">
                "Artwork: " <a href=href.clone() target="_blank" rel="noopener" data-testid="artwork-link">{name}</a>
                " · " <a href=format!("{href}?download=1") download>"download"</a>
            </p>
        }
    })
}

#[component]
fn ContractView(detail: ContractDetail, buying: RwSignal<bool>, notice: Option<Notice>) -> impl IntoView {
    let c = detail.contract.clone();
    let contract_id = c.id;
    // Below zero (revisions used, then their payment refunded) the advertiser sees 0 and why;
    // requests need a revision that is neither used nor held by a dispute.
    let available = c.balance.available().max(0);
    let spendable = c.balance.spendable();
    let (refunding, disputed) = (c.balance.refunding, c.balance.disputed);
    let advisory = c.balance.advisory();
    let revoked = c.balance.revoked;
    let terms = detail.terms.clone();
    let price_line = format!("{} revisions for {}", terms.revisions_per_pack, terms.price);
    view! {
        <p><a href="/contracts">"← My contracts"</a></p>
        <h1>{c.publication.clone()} " · " {c.ad_size.clone()}</h1>
        {notice.map(|n| view! { <p class=n.class role="status">{n.text}</p> })}
        <section class="balance" aria-labelledby="balance-h">
            <h2 id="balance-h">"Revisions"</h2>
            <p class="big"><span data-testid="available">{available}</span>" available"</p>
            <dl class="sums">
                <div><dt>"Included"</dt><dd data-testid="base">{c.balance.base}</dd></div>
                <div><dt>"Purchased"</dt><dd data-testid="purchased">{c.balance.purchased}</dd></div>
                {(revoked != 0).then(|| view! {
                    <div><dt>"Refunded or charged back"</dt><dd data-testid="revoked">{revoked}</dd></div>
                })}
                <div><dt>"Requested"</dt><dd data-testid="requested">{c.balance.requested}</dd></div>
            </dl>
            {advisory.map(|a| view! { <p class="notice warn" data-testid="advisory">{a}</p> })}
            <p class="muted">
                "Available is what your contract includes, plus what you bought, less what was refunded, minus what you have requested: "
                {c.balance.explain()} "."
            </p>
            <button type="button" class="primary" on:click=move |_| buying.set(true)>"Purchase revisions"</button>
            <span class="muted">" " {price_line}</span>
        </section>
        <section aria-labelledby="request-h">
            <h2 id="request-h">"Request a revision"</h2>
            <form method="post" action=format!("/contracts/{contract_id}/revisions") enctype="multipart/form-data" class="stack">
                <label for="notes">"What should change?"</label>
                <textarea id="notes" name="notes" required maxlength=MAX_NOTES_CHARS rows="4" disabled=spendable <= 0>{detail.draft_notes.clone().unwrap_or_default()}</textarea>
                <label for="artwork">"Artwork file (optional: " {ACCEPTED} ")"</label>
                <input id="artwork" name="artwork" type="file" accept=".png,.jpg,.jpeg,.pdf,.tif,.tiff,image/png,image/jpeg,application/pdf,image/tiff" disabled=spendable <= 0/>
                <button type="submit" disabled=spendable <= 0>"Request a revision"</button>
                {(spendable <= 0).then(|| view! {
                    <p class="muted" id="no-revisions">{if available > 0 && refunding > 0 && disputed == 0 {
                        "No revisions can be used while a refund is pending: purchase a revision pack to request more."
                    } else if available > 0 {
                        "No revisions can be used while a payment is disputed: purchase a revision pack to request more."
                    } else {
                        "No revisions left: purchase a revision pack to request more."
                    }}</p>
                })}
            </form>
        </section>
        <PurchaseHistory purchases=detail.purchases/>
        <RequestHistory requests=detail.requests/>
    }
}

/// The contract's purchases, newest first, as the advertiser sees them.
#[component]
fn PurchaseHistory(purchases: Vec<PurchaseLine>) -> impl IntoView {
    view! {
        <section aria-labelledby="purchases-h">
            <h2 id="purchases-h">"Purchases"</h2>
            {if purchases.is_empty() {
                view! { <p class="muted">"No purchases yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="purchases">
                        <thead><tr><th>"Date"</th><th>"Revisions"</th><th>"Amount"</th><th>"Status"</th></tr></thead>
                        <tbody>
                            {purchases.iter().map(|p| view! {
                                <tr>
                                    <td>{p.created_at.clone()}</td>
                                    <td>{format!("+{}", p.revisions)}</td>
                                    <td>{p.amount.clone()}</td>
                                    <td class="status">{if p.credited { "credited".to_string() } else { p.status.replace('_', " ") }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

/// The contract's revision requests, with their artwork.
#[component]
fn RequestHistory(requests: Vec<RequestLine>) -> impl IntoView {
    view! {
        <section aria-labelledby="requests-h">
            <h2 id="requests-h">"Revision requests"</h2>
            {if requests.is_empty() {
                view! { <p class="muted">"No revision requests yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="history">
                        {requests.iter().map(|r| view! {
                            <li>
                                <span class="muted">{r.created_at.clone()}</span>
                                <p>{r.notes.clone()}</p>
                                <ArtworkLinks r=r.clone()/>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}
