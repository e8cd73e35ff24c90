//! The admin's view of money moving back: a contract's refunds, disputes and fraud warnings,
//! the refund form and its confirmation step. Pages render on the server; the refund form posts
//! to a plain route (`server::admin_actions`) so it works without JavaScript.
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustmentLine {
    pub payment_id: String,
    pub kind: String,
    /// Signed as the balance sees it: −2 revoked, +2 given back.
    pub change: i64,
    pub amount: String,
    pub booked_by: String,
    pub note: String,
    pub event_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundLine {
    pub refund_id: String,
    pub payment_id: String,
    pub amount: String,
    pub status: String,
    pub requested_by: Option<String>,
    pub note: Option<String>,
    pub first_seen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputeLine {
    pub dispute_id: String,
    pub payment_id: String,
    pub amount: String,
    pub status: String,
    pub is_open: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningLine {
    pub warning_id: String,
    pub payment_id: Option<String>,
    pub fraud_type: String,
    pub actionable: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyBack {
    pub adjustments: Vec<AdjustmentLine>,
    pub refunds: Vec<RefundLine>,
    pub disputes: Vec<DisputeLine>,
    pub warnings: Vec<WarningLine>,
}

#[cfg(feature = "ssr")]
use crate::domain::money::format_amount as money;

/// The money that went back, as the admin's contract page shows it, from the contract's
/// statement (`services::statement`).
#[cfg(feature = "ssr")]
pub(crate) fn money_back(a: &crate::services::statement::AdminDetail) -> MoneyBack {
    MoneyBack {
        adjustments: a
            .adjustments
            .iter()
            .map(|x| AdjustmentLine {
                change: -x.revoked,
                amount: money(x.amount, &x.currency),
                payment_id: x.payment_id.clone(),
                kind: x.kind.replace('_', " "),
                booked_by: x.booked_by.clone(),
                note: x.note.clone(),
                event_id: x.stripe_event_id.clone(),
                created_at: crate::web::fmt_time(x.created_at),
            })
            .collect(),
        refunds: a
            .refunds
            .iter()
            .map(|r| RefundLine {
                amount: money(r.amount, &r.currency),
                refund_id: r.refund_id.clone(),
                payment_id: r.payment_id.clone(),
                status: r.status.clone(),
                requested_by: r.requested_by.clone(),
                note: r.note.clone(),
                first_seen: crate::web::fmt_time(r.first_seen),
            })
            .collect(),
        disputes: a
            .disputes
            .iter()
            .map(|d| DisputeLine {
                amount: money(d.amount, &d.currency),
                dispute_id: d.dispute_id.clone(),
                payment_id: d.payment_id.clone(),
                status: d.status.replace('_', " "),
                is_open: d.is_open,
                reason: d.reason.clone(),
            })
            .collect(),
        warnings: a
            .warnings
            .iter()
            .map(|w| WarningLine {
                warning_id: w.warning_id.clone(),
                payment_id: w.payment_id.clone(),
                fraud_type: w.fraud_type.replace('_', " "),
                actionable: w.actionable,
                created_at: crate::web::fmt_time(w.created_at),
            })
            .collect(),
    }
}

#[component]
pub fn MoneyBackSection(m: MoneyBack) -> impl IntoView {
    view! {
        <h2>"Ledger: revoked and given back"</h2>
        {if m.adjustments.is_empty() { view! { <p class="muted">"Nothing revoked."</p> }.into_any() } else { view! {
            <div class="table-wrap"><table data-testid="adjustments">
                <thead><tr><th>"Booked"</th><th>"PaymentIntent"</th><th>"Why"</th><th>"Revisions"</th><th>"Money"</th><th>"By"</th><th>"Detail"</th></tr></thead>
                <tbody>{m.adjustments.into_iter().map(|a| view! {
                    <tr>
                        <td>{a.created_at}</td>
                        <td><code>{a.payment_id}</code></td>
                        <td>{a.kind}</td>
                        <td>{format!("{:+}", a.change)}</td>
                        <td>{a.amount}</td>
                        <td>{a.booked_by}</td>
                        <td>{a.note}{a.event_id.map(|id| view! { " · " <a href=format!("/admin/events/{id}")>"event"</a> })}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        }.into_any() }}
        {(!m.refunds.is_empty()).then(|| view! {
            <h3>"Refunds"</h3>
            <div class="table-wrap"><table data-testid="refunds">
                <thead><tr><th>"Seen"</th><th>"Refund"</th><th>"PaymentIntent"</th><th>"Amount"</th><th>"Status"</th><th>"Asked by"</th></tr></thead>
                <tbody>{m.refunds.into_iter().map(|r| view! {
                    <tr>
                        <td>{r.first_seen}</td><td><code>{r.refund_id}</code></td><td><code>{r.payment_id}</code></td>
                        <td>{r.amount}</td><td class=format!("status {}", r.status)>{r.status.clone()}</td>
                        <td>{r.requested_by.unwrap_or_else(|| "Stripe (dashboard or API)".into())}{r.note.filter(|n| !n.is_empty()).map(|n| format!(": {n}"))}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        })}
        {(!m.disputes.is_empty()).then(|| view! {
            <h3>"Disputes"</h3>
            <div class="table-wrap"><table data-testid="disputes">
                <thead><tr><th>"Dispute"</th><th>"PaymentIntent"</th><th>"Amount"</th><th>"Status"</th><th>"Reason"</th></tr></thead>
                <tbody>{m.disputes.into_iter().map(|d| view! {
                    <tr>
                        <td><code>{d.dispute_id}</code></td><td><code>{d.payment_id}</code></td><td>{d.amount}</td>
                        <td>{d.status}{d.is_open.then_some(" (open: its unused revisions are held)")}</td>
                        <td>{d.reason.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        })}
        {(!m.warnings.is_empty()).then(|| view! {
            <h3>"Early fraud warnings"</h3>
            <ul data-testid="fraud-warnings">{m.warnings.into_iter().map(|w| view! {
                <li><code>{w.warning_id}</code>" on "<code>{w.payment_id.unwrap_or_default()}</code>": "{w.fraud_type}
                    {w.actionable.then_some(" — actionable: refunding now avoids a dispute")}" ("{w.created_at}")"</li>
            }).collect_view()}</ul>
        })}
    }
}

/// A credited payment's refund form: how much (everything, or a number of revisions), why.
/// It leads to the confirmation step, which shows the amount before anything moves.
#[component]
pub fn RefundForm(contract_id: i64, payment_id: String, remaining: i64) -> impl IntoView {
    view! {
        <form method="get" action=format!("/admin/contracts/{contract_id}/refund") class="inline refund" data-testid="refund-form">
            <input type="hidden" name="payment" value=payment_id.clone()/>
            <label>"Refund "
                <select name="revisions" aria-label="How much to refund">
                    <option value="all">"the whole pack"</option>
                    {(1..remaining).map(|n| view! {
                        <option value=n.to_string()>{format!("{n} revision{}", if n == 1 { "" } else { "s" })}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>" because "
                <select name="reason" aria-label="Reason">
                    <option value="requested_by_customer">"the customer asked"</option>
                    <option value="duplicate">"it was a duplicate"</option>
                    <option value="fraudulent">"it was fraudulent"</option>
                </select>
            </label>
            <input name="note" maxlength="500" placeholder="Note (optional)" aria-label="Note"/>
            <button type="submit">"Refund…"</button>
        </form>
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundConfirmation {
    pub contract_id: i64,
    pub payment_id: String,
    pub amount: String,
    pub revisions: i64,
    pub available_after: i64,
    /// The confirmation's one-time token, kept server-side with the payment's moment
    /// (`services::refunds::offer`): its submit is one refund, and only while the payment is
    /// as quoted.
    pub attempt: String,
}

#[server]
pub async fn quote_refund(
    contract_id: i64,
    payment: String,
    revisions: String,
) -> Result<RefundConfirmation, AppError> {
    use crate::domain::adjustments::RefundAsk;
    use crate::services::refunds::{offer, RefundError, RefundOffer};
    let svc = crate::web::services()?;
    let AdminUser(admin) = caller::<AdminUser>(&svc).await?;
    let ask = match revisions.as_str() {
        "all" => RefundAsk::Full,
        n => RefundAsk::Revisions(
            n.parse().map_err(|_| AppError::Invalid("Choose how many revisions to refund.".into()))?,
        ),
    };
    // Another contract's payment is not offered (nor its confirmation kept).
    match crate::store::ledger::credit_for_payment(&svc.db, payment.trim()).await {
        Ok(Some(c)) if c.contract_id == contract_id => {}
        Ok(_) => return Err(AppError::NotFound.with_status()),
        Err(e) => return Err(AppError::unavailable("The payment could not be loaded", e)),
    }
    let RefundOffer { quote: q, token } =
        offer(&svc, payment.trim(), ask, &admin.email).await.map_err(|e| match e {
            RefundError::NotFound => AppError::NotFound.with_status(),
            RefundError::Refused(why) => AppError::Invalid(format!("This refund cannot be made: {why}.")).with_status(),
            other => AppError::unavailable("The refund could not be planned", other),
        })?;
    if q.contract_id != contract_id {
        return Err(AppError::NotFound.with_status());
    }
    let balance = crate::store::ledger::balance(&svc.db, contract_id)
        .await
        .map_err(|e| AppError::unavailable("The contract could not be loaded", e))?
        .ok_or_else(|| AppError::NotFound.with_status())?;
    Ok(RefundConfirmation {
        contract_id,
        payment_id: q.payment_id,
        amount: q.amount.to_string(),
        revisions: q.revisions,
        available_after: balance.available() - q.revisions,
        attempt: token,
    })
}

#[component]
pub fn RefundConfirmPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let args = move || {
        let id = params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or_default();
        query.with(|q| {
            (
                id,
                q.get("payment").unwrap_or_default(),
                q.get("revisions").unwrap_or_else(|| "all".into()),
                q.get("reason").unwrap_or_default(),
                q.get("note").unwrap_or_default(),
            )
        })
    };
    let quote = Resource::new(args, |(id, payment, revisions, _, _)| quote_refund(id, payment, revisions));
    view! {
        <super::AdminNav/>
        <h1>"Confirm the refund"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || quote.get().map(|r| {
                // How much, of which payment, is the confirmation's (kept with its token), not the form's.
                let (id, _, _, reason, note) = args();
                match r {
                    Err(e) => view! { <ErrorView error=e/><p><a href=format!("/admin/contracts/{id}")>"← Back to the contract"</a></p> }.into_any(),
                    Ok(q) => view! {
                        <p data-testid="refund-quote">
                            "Refund " <strong>{q.amount.clone()}</strong> " of payment " <code>{q.payment_id.clone()}</code>
                            " to the customer's card. This revokes " <strong>{format!("{} revision{}", q.revisions, if q.revisions == 1 { "" } else { "s" })}</strong>
                            "; the contract will have " {q.available_after} " available."
                        </p>
                        <p class="muted">"Reason: " {reason.replace('_', " ")} {(!note.is_empty()).then(|| format!(" · Note: {note}"))}</p>
                        <form method="post" action=format!("/admin/contracts/{}/refund", q.contract_id) class="stack narrow">
                            <input type="hidden" name="payment" value=q.payment_id.clone()/>
                            <input type="hidden" name="reason" value=reason/>
                            <input type="hidden" name="note" value=note/>
                            <input type="hidden" name="attempt" value=q.attempt.clone()/>
                            <button type="submit" class="primary danger">{format!("Refund {}", q.amount)}</button>
                            <a href=format!("/admin/contracts/{}", q.contract_id)>"Cancel"</a>
                        </form>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
