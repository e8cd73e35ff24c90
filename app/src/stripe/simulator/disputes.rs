//! Disputes: a cardholder's chargeback on a charge. Opened by the 4000 0000 0000 0259 card a
//! second after its payment, or at once through the control endpoint; retrieve, list, update
//! (evidence, metadata, submit), close (accept it as lost) as Stripe's API does; won, lost or
//! warning_closed by the bank through the control endpoint.
use super::charges::{self, Charge};
use super::http::{authorize, new_id, now, ok, ApiError, ApiResult, Params, RequestInfo};
use super::payment_intents;
use super::state::{object, SimState};
use super::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::PoisonError;

#[derive(Debug, Clone, Serialize)]
pub(super) struct Dispute {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    /// Stripe lists the withdrawal and reinstatement here; the simulator keeps no balance.
    pub balance_transactions: Vec<String>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub enhanced_eligibility_types: Vec<String>,
    pub evidence: Evidence,
    pub evidence_details: EvidenceDetails,
    pub is_charge_refundable: bool,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub payment_intent: String,
    pub payment_method_details: PaymentMethodDetails,
    pub reason: String,
    pub status: Status,
}
object!(Dispute);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    WarningNeedsResponse,
    WarningUnderReview,
    WarningClosed,
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

impl Status {
    fn is_open(self) -> bool {
        matches!(self, Self::WarningNeedsResponse | Self::WarningUnderReview | Self::NeedsResponse | Self::UnderReview)
    }
}

/// How the bank decides a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeOutcome {
    Won,
    Lost,
    /// An inquiry that closed without becoming a chargeback.
    WarningClosed,
}

impl std::str::FromStr for DisputeOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "won" => Ok(Self::Won),
            "lost" => Ok(Self::Lost),
            "warning_closed" => Ok(Self::WarningClosed),
            other => Err(format!("outcome must be won, lost or warning_closed, not {other:?}")),
        }
    }
}

/// The evidence fields Stripe's Dispute has, each null until given.
const EVIDENCE_FIELDS: [&str; 27] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// The reasons a dispute may carry (Stripe's list).
const REASONS: [&str; 15] = [
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
];

#[derive(Debug, Clone, Serialize)]
pub(super) struct Evidence {
    #[serde(flatten)]
    fields: BTreeMap<&'static str, Option<String>>,
    enhanced_evidence: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct EvidenceDetails {
    due_by: i64,
    enhanced_eligibility: BTreeMap<String, String>,
    has_evidence: bool,
    past_due: bool,
    submission_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct PaymentMethodDetails {
    #[serde(rename = "type")]
    kind: &'static str,
    card: DisputeCard,
}

#[derive(Debug, Clone, Serialize)]
struct DisputeCard {
    brand: &'static str,
    case_type: &'static str,
    network: &'static str,
    network_reason_code: Option<String>,
}

/// Stripe gives about three weeks to answer.
const RESPONSE_WINDOW_SECS: i64 = 21 * 24 * 3600;

impl Dispute {
    /// Whether the charge may still be refunded: not while the bank decides, nor once the
    /// money went back to the cardholder through the dispute.
    pub fn allows_refund(&self) -> bool {
        matches!(self.status, Status::WarningNeedsResponse | Status::WarningClosed | Status::Won)
    }

    fn set_status(&mut self, status: Status) {
        self.status = status;
        self.is_charge_refundable = self.allows_refund();
    }
}

pub(super) fn find<'a>(state: &'a SimState, id: &str) -> Result<&'a Dispute, ApiError> {
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
    let charge = charges::find(state, charge_id, "charge")?;
    if charge.dispute.is_some() {
        return Err(ApiError::invalid(
            Some("charge_disputed"),
            format!("Charge {charge_id} has already been disputed."),
            Some("charge"),
        ));
    }
    let reason = match fields.string("reason")? {
        None => "fraudulent",
        Some(r) if REASONS.contains(&r) => r,
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
    let mut dispute = new_dispute(charge, amount, reason);
    dispute.set_status(Status::NeedsResponse);
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

/// A dispute as Stripe shows one just opened by the cardholder's bank, awaiting our evidence.
fn new_dispute(charge: &Charge, amount: i64, reason: &str) -> Dispute {
    let created = now();
    Dispute {
        id: new_id("du"),
        object: "dispute",
        amount,
        balance_transactions: Vec::new(),
        charge: charge.id.clone(),
        created,
        currency: charge.currency.clone(),
        enhanced_eligibility_types: Vec::new(),
        evidence: Evidence {
            fields: EVIDENCE_FIELDS.iter().map(|f| (*f, None)).collect(),
            enhanced_evidence: BTreeMap::new(),
        },
        evidence_details: EvidenceDetails {
            due_by: created + RESPONSE_WINDOW_SECS,
            enhanced_eligibility: BTreeMap::new(),
            has_evidence: false,
            past_due: false,
            submission_count: 0,
        },
        is_charge_refundable: false,
        livemode: false,
        metadata: BTreeMap::new(),
        payment_intent: charge.payment_intent.clone(),
        payment_method_details: PaymentMethodDetails {
            kind: "card",
            card: DisputeCard { brand: "visa", case_type: "chargeback", network: "visa", network_reason_code: None },
        },
        reason: reason.to_string(),
        status: Status::NeedsResponse,
    }
}

/// Opens a dispute on a succeeded PaymentIntent's charge.
pub(super) fn open_for_payment(
    sim: &Simulator,
    state: &mut SimState,
    payment_intent_id: &str,
    fields: &Params,
) -> Result<Dispute, ApiError> {
    let pi = payment_intents::find(state, payment_intent_id, "payment_intent")?;
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
    if !dispute.status.is_open() {
        return Err(ApiError::invalid(None, format!("Dispute {id} is already closed."), Some("dispute")));
    }
    dispute.set_status(match outcome {
        DisputeOutcome::Won => Status::Won,
        DisputeOutcome::Lost => Status::Lost,
        DisputeOutcome::WarningClosed => Status::WarningClosed,
    });
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
        match EVIDENCE_FIELDS.iter().find(|f| **f == key) {
            Some(field) => evidence.push((*field, value)),
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
    if !matches!(dispute.status, Status::NeedsResponse | Status::WarningNeedsResponse) {
        return Err(ApiError::invalid(
            None,
            format!(
                "This dispute is {}: evidence can no longer be changed.",
                json!(dispute.status).as_str().unwrap_or_default()
            ),
            Some("evidence"),
        ));
    }
    let before =
        json!({"status": dispute.status, "metadata": dispute.metadata, "evidence_details": dispute.evidence_details});
    for (field, value) in evidence {
        dispute.evidence.fields.insert(field, Some(value.to_string()));
        dispute.evidence_details.has_evidence = true;
    }
    dispute.metadata.extend(metadata);
    if submit {
        dispute.evidence_details.submission_count += 1;
        dispute.set_status(if dispute.status == Status::WarningNeedsResponse {
            Status::WarningUnderReview
        } else {
            Status::UnderReview
        });
    }
    let dispute = dispute.clone();
    // previous_attributes holds only what changed, as Stripe sends it.
    let after =
        json!({"status": dispute.status, "metadata": dispute.metadata, "evidence_details": dispute.evidence_details});
    let previous: serde_json::Map<String, serde_json::Value> = before
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| after[k.as_str()] != **v)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sim.emit_update(state, "charge.dispute.updated", &dispute, previous.into(), request);
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
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
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
    let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
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
    let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
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
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
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
