//! The admin's money actions as plain form posts (they work without JavaScript, behind the
//! same cross-site check as every form): refund a pack after its confirmation step, start a
//! reconciliation, and download a run's findings as CSV. Each answers only an admin; anyone
//! else gets 403 and nothing happens. Outcomes reach the next page as a one-time message kept
//! in the session, never as text in the address (a link cannot make these pages say anything).
use crate::AppState;
use app::domain::event_search::csv_row;
use app::services::reconcile::{self, ReconcileError};
use app::services::refunds::{refund_pack, RefundError, RefundOrder};
use app::store::reconciliation;
use app::web::access::AdminUser;
use app::web::session_keys::FLASH_KEY;
use axum::extract::{Form, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

const CSV: &str = "text/csv; charset=utf-8";

/// A file for the browser to save: its type, its name, nosniff (a CSV is never run as a page),
/// and no-store: these files hold customers' payments and emails, and a shared or browser cache
/// must not keep a copy that outlives the admin's session (a proxy, the next user of a kiosk).
pub(crate) fn download(content_type: &str, filename: &str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn flash(session: &Session, kind: &str, text: String) {
    if let Err(e) = session.insert(FLASH_KEY, (kind.to_string(), text)).await {
        tracing::warn!(error = %e, "could not keep the message for the next page");
    }
}

#[derive(Deserialize)]
pub struct RefundForm {
    payment: String,
    reason: String,
    #[serde(default)]
    note: String,
    /// The confirmation's token: what is refunded (how much, of which payment) is what that
    /// confirmation quoted and the server kept, not what the form says.
    attempt: String,
}

pub async fn refund(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(contract_id): Path<i64>,
    Form(form): Form<RefundForm>,
) -> Response {
    let email = me.email;
    let svc = &state.services;
    let page = format!("/admin/contracts/{contract_id}");
    // The payment must be this contract's: a form edited to name another is refused.
    match app::store::ledger::credit_for_payment(&svc.db, &form.payment).await {
        Ok(Some(c)) if c.contract_id == contract_id => {}
        Ok(_) => return (StatusCode::NOT_FOUND, "No such payment on this contract.").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "refund: payment lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response();
        }
    }
    match refund_pack(
        svc,
        &RefundOrder {
            admin_email: &email,
            payment_id: &form.payment,
            reason: &form.reason,
            note: &form.note,
            token: &form.attempt,
        },
    )
    .await
    {
        Ok(done) => {
            let text = format!(
                "Refunded {} ({}): {} revision{} revoked.",
                done.amount,
                done.refund_id,
                done.booking.revoked_now,
                if done.booking.revoked_now == 1 { "" } else { "s" }
            );
            flash(&session, "notice", text).await;
            Redirect::to(&page).into_response()
        }
        Err(e) => {
            let text = match &e {
                RefundError::Refused(why) => format!("Not refunded: {why}."),
                RefundError::Stripe(s) => format!("Stripe refused the refund: {s}"),
                RefundError::NotFound => "Not refunded: no such credited payment.".into(),
                RefundError::PaymentsUnavailable => "Not refunded: payments are not configured.".into(),
                RefundError::Store(s) => {
                    tracing::error!(error = %s, "refund: store failed");
                    "The refund may have been made at Stripe but was not booked yet; its webhook (or the next \
                     reconciliation) books it. Check the payment before trying again."
                        .into()
                }
            };
            flash(&session, "error", text).await;
            Redirect::to(&page).into_response()
        }
    }
}

/// Starts a reconciliation over the configured window, in the background.
pub async fn start_reconciliation(_: AdminUser, State(state): State<AppState>, session: Session) -> Response {
    let svc = state.services.clone();
    let now = chrono::Utc::now();
    let opts = reconcile::Options {
        from: now - svc.settings.reconcile.window,
        to: now,
        dry_run: false,
        started_by: "admin",
        rate: svc.settings.reconcile.rate,
    };
    let running = reconciliation::runs(&svc.db, 1)
        .await
        .ok()
        .and_then(|r| r.into_iter().next())
        .is_some_and(|r| r.status == "running");
    if running {
        flash(&session, "error", "A reconciliation is already running; this page shows it when it ends.".into()).await;
    } else {
        let background = svc.background.clone();
        background.spawn(async move {
            match reconcile::run(&svc, &opts, &|_| {}).await {
                Ok(r) => {
                    tracing::info!(run = r.run_id, findings = r.total(), "reconciliation started by an admin finished")
                }
                Err(ReconcileError::AlreadyRunning) => tracing::info!("reconciliation already running"),
                Err(e) => tracing::error!(error = %e, "reconciliation started by an admin failed"),
            }
        });
        flash(&session, "notice", "Reconciliation started. Reload this page to see it finish.".into()).await;
    }
    Redirect::to("/admin/reconciliation").into_response()
}

/// A run's findings as CSV (RFC 4180; cells that a spreadsheet would run as a formula are
/// neutralised).
pub async fn findings_csv(_: AdminUser, State(state): State<AppState>, Path(run_id): Path<i64>) -> Response {
    let db = &state.services.db;
    let findings = match reconciliation::findings(db, run_id).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "findings export failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response();
        }
    };
    let mut out = csv_row(&[
        "run",
        "finding",
        "category",
        "state",
        "payment_id",
        "object_id",
        "contract_id",
        "found_at",
        "detail",
        "evidence",
    ]);
    for f in findings {
        out.push_str(&csv_row(&[
            &f.run_id.to_string(),
            &f.id.to_string(),
            &f.category,
            &f.state,
            f.payment_id.as_deref().unwrap_or_default(),
            f.object_id.as_deref().unwrap_or_default(),
            &f.contract_id.map(|c| c.to_string()).unwrap_or_default(),
            &f.created_at.to_rfc3339(),
            &f.detail,
            &f.evidence,
        ]));
    }
    download(CSV, &format!("reconciliation-{run_id}.csv"), out)
}

#[derive(Deserialize)]
pub struct RevenueQuery {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}

/// The revenue table as CSV: one row per period, currency and source (`pack`, `rate_card`,
/// `all`), amounts as plain decimals in major units; then the range's totals and what was not
/// counted. The same report the page draws.
pub async fn revenue_csv(
    _: AdminUser,
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<RevenueQuery>,
) -> Response {
    use app::domain::revenue::{Figures, Source};
    let range = app::domain::revenue::page_range(
        q.from.as_deref(),
        q.to.as_deref(),
        q.by.as_deref(),
        chrono::Utc::now().date_naive(),
    );
    let (from, to, period) = match range {
        Ok(r) => r,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let report = match app::services::revenue::report(&state.services, from, to, period).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "revenue export failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response();
        }
    };
    let decimal = |minor: i64, currency: &str| match app::domain::Currency::parse(currency) {
        Ok(c) => app::domain::Money::new(minor, c).decimal(),
        Err(_) => minor.to_string(),
    };
    let row = |period: &str, currency: &str, source: &str, f: &Figures| {
        csv_row(&[
            period,
            currency,
            source,
            &decimal(f.gross, currency),
            &decimal(f.refunds, currency),
            &decimal(f.disputes_lost, currency),
            &decimal(f.net(), currency),
            &f.payments.to_string(),
        ])
    };
    let source_name = |s: Option<Source>| s.map(Source::as_str).unwrap_or("all");
    let mut out = csv_row(&["period", "currency", "source", "gross", "refunds", "disputes_lost", "net", "payments"]);
    for l in &report.lines {
        out.push_str(&row(&l.label, &l.currency, source_name(l.source), &l.figures));
    }
    for t in &report.totals {
        out.push_str(&row("total", &t.currency, source_name(t.source), &t.figures));
    }
    for e in &report.excluded {
        out.push_str(&row(&format!("not counted: {}", e.class.as_str()), &e.currency, "all", &e.figures));
    }
    download(CSV, &format!("revenue-{from}-to-{to}-by-{}.csv", period.as_str()), out)
}

/// An event search as a file, streamed (`services::event_search::Export`): one page of rows is
/// read, sent and dropped before the next, so a million rows cost the memory of a thousand. A
/// failure mid-way aborts the response, so a client never holds a cut-short file as complete.
pub(crate) async fn stream_events(
    db: app::store::Db,
    q: &std::collections::HashMap<String, String>,
    format: Option<&str>,
) -> Response {
    use app::domain::event_search::{EventFilter, ExportFormat};
    use app::services::event_search::Export;
    let parsed = EventFilter::parse(|k| q.get(k).map(String::as_str)).and_then(|f| {
        ExportFormat::parse(format.or(q.get("format").map(String::as_str)).unwrap_or("csv")).map(|x| (f, x))
    });
    let (filter, format) = match parsed {
        Ok(x) => x,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let export = match Export::start(db, filter, format).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "event export failed to start");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response();
        }
    };
    let unindexed = export.unindexed;
    let body = futures_util::stream::unfold(Some(export), |state| async move {
        let mut export = state?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(bytes::Bytes::from(chunk)), Some(export))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "event export failed part-way; the response is aborted");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let name = format!("events-{}.{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), format.extension());
    let mut r = download(format.content_type(), &name, axum::body::Body::from_stream(body));
    // Stored events the index had not reached (a backlog larger than the export indexes first):
    // not in the file, and said so rather than left out silently.
    r.headers_mut().insert("x-unindexed-events", axum::http::HeaderValue::from(unindexed));
    r
}

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// The admin's export of an Events page search as CSV (`/admin/events.csv?<the search>`).
pub async fn events_csv(_: AdminUser, State(state): State<AppState>, q: Params) -> Response {
    events_export(state, q, "csv").await
}

/// The same as NDJSON (`/admin/events.ndjson?<the search>`).
pub async fn events_ndjson(_: AdminUser, State(state): State<AppState>, q: Params) -> Response {
    events_export(state, q, "ndjson").await
}

async fn events_export(state: AppState, q: Params, format: &str) -> Response {
    stream_events(state.services.db.clone(), &q.0, Some(format)).await
}

/// One payment's evidence bundle (`services::evidence`): a tar of every stored event about it,
/// byte for byte, with their digests and the payment's records.
pub async fn evidence_bundle(_: AdminUser, State(state): State<AppState>, Path(payment): Path<String>) -> Response {
    use app::services::evidence::{bundle, BundleError};
    match bundle(&state.services, &payment).await {
        Ok(tar) => download("application/x-tar", &format!("evidence-{payment}.tar"), tar),
        Err(e @ BundleError::NotAPayment(_)) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Err(e @ BundleError::Unknown(_)) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "evidence bundle failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response()
        }
    }
}

/// A webhook source's evidence bundle (`services::evidence::source_bundle`): every event it
/// sent in `from`..`to` (the Events page's date words; default the last day), as received.
pub async fn source_evidence(
    _: AdminUser,
    State(state): State<AppState>,
    Path(source): Path<String>,
    q: Params,
) -> Response {
    use app::services::evidence::{source_bundle, BundleError};
    let get = |k: &str| if k == "from" || k == "to" { q.0.get(k).map(String::as_str) } else { None };
    let window = match app::domain::event_search::EventFilter::parse(get) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let to = window.to.unwrap_or_else(chrono::Utc::now);
    let from = window.from.unwrap_or(to - chrono::Duration::days(1));
    match source_bundle(&state.services, &source, from, to).await {
        Ok(tar) => download("application/x-tar", &format!("evidence-{source}.tar"), tar),
        Err(e @ BundleError::Unknown(_)) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        Err(e @ BundleError::TooMany) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "source evidence bundle failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response()
        }
    }
}

/// The admin's money actions and downloads (pages' routes: sessions and the cross-site check).
#[derive(Deserialize)]
pub struct AlertEmailsForm {
    wanted: bool,
}

/// The signed-in admin opts in to (or out of) alerts by email.
pub async fn alert_emails(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<AlertEmailsForm>,
) -> Response {
    match app::store::users::set_alert_emails(&state.services.db, me.id, form.wanted).await {
        Ok(_) => {
            let text = if form.wanted {
                format!("Alerts will be emailed to {}.", me.email)
            } else {
                format!("Alerts will no longer be emailed to {}.", me.email)
            };
            flash(&session, "notice", text).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not change who gets alerts by email");
            flash(&session, "error", "Nothing was changed: the database did not answer. Please try again.".into())
                .await;
        }
    }
    Redirect::to("/admin/alerts").into_response()
}

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/admin/contracts/{id}/refund", post(refund))
        .route("/admin/reconciliation/run", post(start_reconciliation))
        .route("/admin/alerts/emails", post(alert_emails))
        .route("/admin/reconciliation/{id}/findings.csv", get(findings_csv))
        .route("/admin/revenue.csv", get(revenue_csv))
        .route("/admin/events.csv", get(events_csv))
        .route("/admin/events.ndjson", get(events_ndjson))
        .route("/admin/payments/{payment}/evidence.tar", get(evidence_bundle))
        .route("/admin/sources/{source}/evidence.tar", get(source_evidence))
}
