//! The Refunds API: create (all or part of a charge, by `payment_intent` or `charge`), retrieve, list.
//! Every refund emits `refund.created` (sent for all refunds since API 2024-10-28) and
//! `charge.refunded`; the 4000 0000 0000 5126 card's refunds fail later with `refund.updated`
//! and `refund.failed`, giving the amount back to the charge; the 4000 0000 0000 7726 card's
//! refunds start `pending` (already counted in the charge's `amount_refunded`, as Stripe does)
//! until `settle` decides them, with `refund.updated` and `charge.refund.updated` (and
//! `refund.failed` when they fail).
use super::handle::Simulator;
use super::http::authorize;
use super::objects::{AfterSuccess, Charge, Refund, RefundSettlement};
use super::state::SimState;
use super::wire::{ok, ApiError, ApiResult, Params, RequestInfo};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::json;
use std::time::Duration;

/// The reasons Stripe accepts on create.
const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/refunds", get(list).post(create)).route("/v1/refunds/{id}", get(retrieve))
}

/// `POST /v1/refunds`: `payment_intent` or `charge`, optional `amount` (default: what remains),
/// `reason`, `metadata[...]`.
async fn create(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(&headers)?;
    let fields = Params::parse(&body);
    let mut state = sim.lock();
    let refund = refund(&sim, &mut state, &fields, &request)?;
    ok(&refund)
}

/// Refunds a charge as `fields` say, emitting the refund's events; Stripe's error otherwise.
fn refund(sim: &Simulator, state: &mut SimState, fields: &Params, request: &RequestInfo) -> Result<Refund, ApiError> {
    let charge = refunded_charge(state, fields)?;
    if charge.refundable() <= 0 {
        return Err(ApiError::invalid(
            Some("charge_already_refunded"),
            format!("Charge {} has already been refunded.", charge.id),
            None,
        ));
    }
    if let Some(dispute) = charge.dispute.as_deref().and_then(|id| state.disputes.get(id)) {
        if !dispute.allows_refund() {
            return Err(ApiError::invalid(
                Some("charge_disputed"),
                format!("Charge {} has been charged back; cannot issue a refund.", charge.id),
                None,
            ));
        }
    }
    let amount = refund_amount(fields, charge)?;
    let reason = refund_reason(fields)?;
    let metadata = fields.metadata()?;
    let refund = Refund::of_charge(charge, amount, reason, metadata);
    let fails_later = charge.after_success == AfterSuccess::RefundsFail;
    let charge_id = charge.id.clone();
    let Some(charge) = state.charges.get_mut(&charge_id) else { unreachable!("found above") };
    charge.add_refunded(amount);
    let charge = charge.clone();
    sim.emit(state, "refund.created", &refund, request);
    sim.emit(state, "charge.refunded", &charge, request);
    state.refunds.insert(refund.clone());
    if fails_later {
        let (sim, id) = (sim.clone(), refund.id.clone());
        let after = Duration::from_millis(sim.faults().refund_failure_ms);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut guard = sim.lock();
            fail(&sim, &mut guard, &id);
        });
    }
    Ok(refund)
}

/// The amount a create asks for (default: all that is left), as Stripe checks it.
fn refund_amount(fields: &Params, charge: &Charge) -> Result<i64, ApiError> {
    let remaining = charge.refundable();
    Ok(match fields.int("amount")? {
        None => remaining,
        Some(a) if a < 1 => {
            return Err(ApiError::invalid(
                Some("parameter_invalid_integer"),
                "Invalid positive integer",
                Some("amount"),
            ))
        }
        Some(a) if a > remaining => {
            return Err(ApiError::invalid(
                Some("amount_too_large"),
                format!(
                    "Refund amount ({}) is greater than unrefunded amount on charge ({}).",
                    money(a, &charge.currency),
                    money(remaining, &charge.currency)
                ),
                Some("amount"),
            ))
        }
        Some(a) => a,
    })
}

/// The reason a create gives, one of Stripe's three.
fn refund_reason(fields: &Params) -> Result<Option<String>, ApiError> {
    Ok(match fields.string("reason")? {
        None => None,
        Some(r) if REASONS.contains(&r) => Some(r.to_string()),
        Some(_) => {
            return Err(ApiError::invalid(
                None,
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                Some("reason"),
            ))
        }
    })
}

/// The charge a create names, by `charge` or `payment_intent` (both: they must agree).
fn refunded_charge<'a>(state: &'a SimState, fields: &Params) -> Result<&'a Charge, ApiError> {
    let by_charge = fields.string("charge")?.map(|id| state.charge(id, "charge")).transpose()?;
    let by_intent = match fields.string("payment_intent")? {
        None => None,
        Some(id) => {
            let pi = state.payment_intent(id, "payment_intent")?;
            let charge = pi.latest_charge.as_deref().and_then(|c| state.charges.get(c));
            Some(charge.ok_or_else(|| {
                ApiError::invalid(
                    Some("charge_not_refundable"),
                    format!("PaymentIntent {id} does not have a successful charge to refund."),
                    Some("payment_intent"),
                )
            })?)
        }
    };
    match (by_charge, by_intent) {
        (Some(a), Some(b)) if a.id != b.id => Err(ApiError::invalid(
            None,
            format!("Charge {} does not belong to PaymentIntent {}.", a.id, b.payment_intent),
            Some("charge"),
        )),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Err(ApiError::invalid(
            Some("parameter_missing"),
            "One of the following params should be provided for this request: payment_intent or charge.",
            Some("payment_intent"),
        )),
    }
}

/// "$100.01"-style amounts, as Stripe words its refund errors.
fn money(minor: i64, currency: &str) -> String {
    let sign = if currency == "usd" { "$" } else { "" };
    format!("{sign}{}.{:02}", minor / 100, minor % 100)
}

/// A pending refund ends: `succeeded` (`refund.updated`, `charge.refund.updated`), or `failed`
/// with the amount back on the charge (and `refund.failed` too), as Stripe reports them.
pub(super) fn settle(
    sim: &Simulator,
    state: &mut SimState,
    id: &str,
    outcome: RefundSettlement,
) -> Result<Refund, ApiError> {
    let refund = state.refunds.get_mut(id).ok_or_else(|| ApiError::no_such("refund", id, "id"))?;
    refund.settle(outcome)?;
    let refund = refund.clone();
    if outcome == RefundSettlement::Failed {
        if let Some(charge) = state.charges.get_mut(&refund.charge) {
            charge.add_refunded(-refund.amount);
        }
    }
    let none = RequestInfo::default();
    let previous = json!({"status": "pending"});
    sim.emit_update(state, "refund.updated", &refund, previous.clone(), &none);
    sim.emit_update(state, "charge.refund.updated", &refund, previous, &none);
    if outcome == RefundSettlement::Failed {
        sim.emit(state, "refund.failed", &refund, &none);
    }
    Ok(refund)
}

/// A refund the card refused after all (the 5126 card): `failed` with the reason Stripe gives,
/// the amount back on the charge, `refund.updated` and `refund.failed`.
fn fail(sim: &Simulator, state: &mut SimState, id: &str) {
    let Some(refund) = state.refunds.get_mut(id) else { return };
    if !refund.fail() {
        return;
    }
    let refund = refund.clone();
    if let Some(charge) = state.charges.get_mut(&refund.charge) {
        charge.add_refunded(-refund.amount);
    }
    let none = RequestInfo::default();
    let previous = json!({"status": "succeeded", "failure_reason": null});
    sim.emit_update(state, "refund.updated", &refund, previous, &none);
    sim.emit(state, "refund.failed", &refund, &none);
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.lock();
    ok(state.refunds.get(&id).ok_or_else(|| ApiError::no_such("refund", &id, "id"))?)
}

/// `GET /v1/refunds`: filters `payment_intent`, `charge`, `created`; newest first, paginated.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let (payment_intent, charge) = (q.string("payment_intent")?, q.string("charge")?);
    let state = sim.lock();
    let matching: Vec<&Refund> = state
        .refunds
        .newest_first()
        .filter(|r| {
            payment_intent.is_none_or(|pi| r.payment_intent == pi)
                && charge.is_none_or(|c| r.charge == c)
                && created.contains(r.created)
        })
        .collect();
    page.render(&matching, "refund", "/v1/refunds", |r| serde_json::to_value(r).unwrap_or_default())
}
