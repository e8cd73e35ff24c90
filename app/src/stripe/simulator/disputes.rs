//! The Disputes API: a cardholder's chargeback on a charge. Opened by the 4000 0000 0000 0259
//! card a second after its payment, or at once through the control endpoint; retrieve, list,
//! update (evidence, metadata, submit), close (accept it as lost) as Stripe's API does; won,
//! lost or warning_closed by the bank through the control endpoint.
use super::handle::Simulator;
use super::http::authorize;
use super::objects::{Dispute, DisputeOutcome};
use super::state::SimState;
use super::wire::{ok, ApiError, ApiResult, Params, RequestInfo};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Router};

fn find<'a>(state: &'a SimState, id: &str) -> Result<&'a Dispute, ApiError> {
    state.disputes.get(id).ok_or_else(|| ApiError::no_such("dispute", id, "dispute"))
}

fn find_mut<'a>(state: &'a mut SimState, id: &str) -> Result<&'a mut Dispute, ApiError> {
    state.disputes.get_mut(id).ok_or_else(|| ApiError::no_such("dispute", id, "dispute"))
}

/// Opens a dispute on a charge (`reason`, default fraudulent; `amount`, default what was not
/// refunded): `needs_response`, the charge marked disputed, `charge.dispute.created` then
/// `charge.dispute.funds_withdrawn`.
pub(super) fn open(
    sim: &Simulator,
    state: &mut SimState,
    charge_id: &str,
    fields: &Params,
) -> Result<Dispute, ApiError> {
    let charge = state.charge(charge_id, "charge")?;
    if charge.dispute.is_some() {
        return Err(ApiError::invalid(
            Some("charge_disputed"),
            format!("Charge {charge_id} has already been disputed."),
            Some("charge"),
        ));
    }
    let reason = match fields.string("reason")? {
        None => "fraudulent",
        Some(r) if Dispute::is_reason(r) => r,
        Some(r) => {
            return Err(ApiError::invalid(
                None,
                format!("Invalid reason: {r} is not a dispute reason."),
                Some("reason"),
            ))
        }
    };
    let disputable = charge.refundable();
    if disputable <= 0 {
        return Err(ApiError::invalid(
            Some("charge_already_refunded"),
            format!("Charge {charge_id} has been refunded in full; there is nothing to dispute."),
            Some("charge"),
        ));
    }
    let amount = match fields.int("amount")? {
        None => disputable,
        Some(a) if (1..=disputable).contains(&a) => a,
        Some(a) => {
            return Err(ApiError::invalid(
                Some("amount_too_large"),
                format!("A dispute's amount must be between 1 and {disputable}, not {a}."),
                Some("amount"),
            ))
        }
    };
    let dispute = Dispute::open(charge, amount, reason);
    let Some(charge) = state.charges.get_mut(charge_id) else { unreachable!("found above") };
    charge.disputed = true;
    charge.dispute = Some(dispute.id.clone());
    // The cardholder's bank opened it: no API request of ours caused it.
    let none = RequestInfo::default();
    sim.emit(state, "charge.dispute.created", &dispute, &none);
    sim.emit(state, "charge.dispute.funds_withdrawn", &dispute, &none);
    state.disputes.insert(dispute.clone());
    Ok(dispute)
}

/// Opens a dispute on a succeeded PaymentIntent's charge.
pub(super) fn open_for_payment(
    sim: &Simulator,
    state: &mut SimState,
    payment_intent_id: &str,
    fields: &Params,
) -> Result<Dispute, ApiError> {
    let pi = state.payment_intent(payment_intent_id, "payment_intent")?;
    let Some(charge_id) = pi.latest_charge.clone() else {
        return Err(ApiError::invalid(
            Some("payment_intent_unexpected_state"),
            format!("PaymentIntent {payment_intent_id} has no succeeded charge to dispute."),
            Some("payment_intent"),
        ));
    };
    open(sim, state, &charge_id, fields)
}

/// The bank decides: `won`, `lost` or `warning_closed`; `charge.dispute.closed`, and for a won
/// dispute `charge.dispute.funds_reinstated`.
pub(super) fn close(
    sim: &Simulator,
    state: &mut SimState,
    id: &str,
    outcome: DisputeOutcome,
    request: &RequestInfo,
) -> Result<Dispute, ApiError> {
    let dispute = find_mut(state, id)?;
    dispute.close(outcome)?;
    let dispute = dispute.clone();
    sim.emit(state, "charge.dispute.closed", &dispute, request);
    if outcome == DisputeOutcome::Won {
        sim.emit(state, "charge.dispute.funds_reinstated", &dispute, request);
    }
    Ok(dispute)
}

/// Stages `evidence[...]` and `metadata[...]`, and with `submit` (Stripe's default) sends the
/// evidence to the bank: `under_review` (`warning_under_review` for an inquiry).
/// `charge.dispute.updated` with what changed.
fn update(
    sim: &Simulator,
    state: &mut SimState,
    id: &str,
    fields: &Params,
    submit: bool,
    request: &RequestInfo,
) -> ApiResult {
    let metadata = fields.metadata()?;
    let mut evidence = Vec::new();
    for (key, value) in fields_under(fields, "evidence") {
        match Dispute::evidence_field(key) {
            Some(field) => evidence.push((field, value)),
            None => {
                return Err(ApiError::invalid(
                    Some("parameter_unknown"),
                    format!("Received unknown parameter: evidence[{key}]"),
                    Some(format!("evidence[{key}]").as_str()),
                ))
            }
        }
    }
    let dispute = find_mut(state, id)?;
    let previous = dispute.update(evidence, metadata, submit)?;
    let dispute = dispute.clone();
    sim.emit_update(state, "charge.dispute.updated", &dispute, previous, request);
    ok(&dispute)
}

/// `prefix[key]=value` pairs.
fn fields_under<'a>(fields: &'a Params, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let open = format!("{prefix}[");
    fields.pairs().filter_map(|(k, v)| Some((k.strip_prefix(&open)?.strip_suffix(']')?, v))).collect()
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/v1/disputes", get(list))
        .route("/v1/disputes/{id}", get(retrieve).post(update_handler))
        .route("/v1/disputes/{id}/close", post(close_handler))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.lock();
    ok(find(&state, &id)?)
}

async fn update_handler(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&headers)?;
    let fields = Params::parse(&body);
    let submit = fields.bool("submit")?.unwrap_or(true);
    let mut state = sim.lock();
    update(&sim, &mut state, &id, &fields, submit, &request)
}

/// Stripe's close: the merchant accepts the dispute, which is then lost.
async fn close_handler(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    authorize(&headers)?;
    let mut state = sim.lock();
    ok(&close(&sim, &mut state, &id, DisputeOutcome::Lost, &request)?)
}

/// `POST /_simulator/disputes/{id}/submit_evidence`: the same as an update that submits.
pub(super) fn submit_evidence(sim: &Simulator, state: &mut SimState, id: &str, fields: &Params) -> ApiResult {
    update(sim, state, id, fields, true, &RequestInfo::default())
}

/// `GET /v1/disputes`: filters `payment_intent`, `charge`, `created`; newest first, paginated.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let (payment_intent, charge) = (q.string("payment_intent")?, q.string("charge")?);
    let state = sim.lock();
    let matching: Vec<&Dispute> = state
        .disputes
        .newest_first()
        .filter(|d| {
            payment_intent.is_none_or(|pi| d.payment_intent == pi)
                && charge.is_none_or(|c| d.charge == c)
                && created.contains(d.created)
        })
        .collect();
    page.render(&matching, "dispute", "/v1/disputes", |d| serde_json::to_value(d).unwrap_or_default())
}
