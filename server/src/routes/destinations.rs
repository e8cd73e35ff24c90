//! An admin's actions on a forwarding destination, as plain form posts behind the cross-site
//! check (the page is `app::web::admin::destinations`): add one, pause and resume, enable after a 410,
//! rotate the signing secret with an overlap, replay one delivery, replay every failed delivery
//! in a window. Each answers only an admin; the outcome reaches the destination's page as a
//! one-time message in the session.
use crate::routes::admin::flash;
use crate::AppState;
use app::domain::forwarding::DestinationName;
use app::services::forwarding::{self, ForwardingError};
use app::web::access::AdminUser;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

/// Back to the destination's page, or to the list when the name is not one a destination can
/// have (it came from the address; it never goes into a header unchecked).
fn back(name: &str) -> Response {
    match DestinationName::parse(name) {
        Ok(n) => Redirect::to(&format!("/admin/destinations/{}", n.as_str())).into_response(),
        Err(_) => Redirect::to("/admin/destinations").into_response(),
    }
}

/// Says what happened on the next page: `done` on success, the reason otherwise.
async fn tell(session: &Session, name: &str, result: Result<String, ForwardingError>) -> Response {
    match result {
        Ok(done) => flash(session, "notice", done).await,
        Err(ForwardingError::Store(e)) => {
            tracing::error!(destination = name, error = %e, "a destination could not be changed");
            flash(session, "error", "Nothing was changed: the database did not answer. Please try again.".into()).await;
        }
        Err(ForwardingError::Unknown(_)) => {
            flash(session, "error", format!("There is no destination named {name}.")).await;
            return Redirect::to("/admin/destinations").into_response();
        }
        Err(e) => flash(session, "error", e.to_string()).await,
    }
    back(name)
}

async fn pause(_: AdminUser, State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let r = forwarding::set_paused(&state.services.db, &name, true, chrono::Utc::now()).await;
    tell(&session, &name, r.map(|()| format!("{name} is paused: new events wait for it until it is resumed."))).await
}

async fn resume(_: AdminUser, State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let r = forwarding::set_paused(&state.services.db, &name, false, chrono::Utc::now()).await;
    tell(&session, &name, r.map(|()| format!("{name} is sending again."))).await
}

async fn enable(_: AdminUser, State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let r = forwarding::enable(&state.services.db, &name).await;
    tell(&session, &name, r.map(|()| format!("{name} is enabled: the deliveries that waited go out now."))).await
}

/// The add form's fields, as typed: lists are comma-separated.
#[derive(Deserialize)]
pub struct AddForm {
    name: String,
    url: String,
    sources: String,
    #[serde(default)]
    type_prefixes: String,
    #[serde(default)]
    metadata: String,
    /// A checkbox: present ("on") when ticked.
    rate_card: Option<String>,
    rate: String,
    in_flight: String,
}

impl AddForm {
    /// The list page's address with what was typed, so a refused form comes back filled in.
    fn again(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("name", &self.name)
            .append_pair("url", &self.url)
            .append_pair("sources", &self.sources)
            .append_pair("type_prefixes", &self.type_prefixes)
            .append_pair("metadata", &self.metadata)
            .append_pair("rate", &self.rate)
            .append_pair("in_flight", &self.in_flight);
        if self.rate_card.is_some() {
            q.append_pair("rate_card", "on");
        }
        format!("/admin/destinations?{}", q.finish())
    }
}

/// The items of a comma-separated field, trimmed, empty ones dropped.
fn items(field: &str) -> Vec<String> {
    field.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `POST /admin/destinations`: adds a destination and shows its signing secret once, on its
/// page; a refusal says why and gives the form back as it was typed.
async fn add(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<AddForm>,
) -> Response {
    let added = async {
        let filter = forwarding::filter_from(
            items(&form.sources),
            items(&form.type_prefixes),
            &items(&form.metadata),
            form.rate_card.is_some(),
        )?;
        let (rate_per_second, max_in_flight) = match (form.rate.trim().parse(), form.in_flight.trim().parse()) {
            (Ok(r), Ok(f)) => (r, f),
            _ => return Err(ForwardingError::Limits),
        };
        let spec = forwarding::NewDestinationSpec {
            name: form.name.trim().to_string(),
            url: form.url.trim().to_string(),
            filter,
            rate_per_second,
            max_in_flight,
        };
        forwarding::add(&state.services.db, &spec, chrono::Utc::now()).await
    }
    .await;
    match added {
        Ok((row, secret)) => {
            tracing::info!(destination = %row.name, url = %row.url, admin = %me.email, "forwarding destination added");
            // Shown once, here, as the CLI prints it once: the receiver needs it to verify.
            let done = format!(
                "{} added: new events it takes go to {}. Its signing secret (shown only now; give it to the receiver): {secret}",
                row.name, row.url
            );
            flash(&session, "notice", done).await;
            back(&row.name)
        }
        Err(ForwardingError::Store(e)) => {
            tracing::error!(error = %e, "a destination could not be added");
            flash(&session, "error", "Nothing was added: the database did not answer. Please try again.".into()).await;
            Redirect::to(&form.again()).into_response()
        }
        Err(e) => {
            flash(&session, "error", format!("Not added: {e}.")).await;
            Redirect::to(&form.again()).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    overlap_hours: String,
}

async fn rotate(
    _: AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    let r = match form.overlap_hours.trim().parse::<i64>() {
        Ok(hours) => {
            let now = chrono::Utc::now();
            forwarding::rotate(&state.services.db, &name, chrono::Duration::hours(hours), now).await.map(|secret| {
                // Shown once, here: the receiver needs it, and we keep no way to show it again
                // but the database itself.
                format!(
                    "{name} signs with a new secret, and with the old one too for {hours} hour(s). Give the receiver the new one (shown only now): {secret}"
                )
            })
        }
        Err(_) => Err(ForwardingError::Overlap),
    };
    tell(&session, &name, r).await
}

#[derive(Deserialize)]
pub struct WindowForm {
    from: String,
    to: String,
}

async fn replay_failed(
    _: AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<WindowForm>,
) -> Response {
    // Read as the Events page reads a window: dates (the `to` day included) or RFC 3339 times.
    let window = app::domain::event_search::EventFilter::parse(|k| match k {
        "from" => Some(form.from.as_str()),
        "to" => Some(form.to.as_str()),
        _ => None,
    });
    let r = match window {
        Ok(app::domain::event_search::EventFilter { from: Some(from), to: Some(to), .. }) => {
            let now = chrono::Utc::now();
            forwarding::replay_failed(&state.services.db, &name, from, to, now)
                .await
                .map(|n| format!("{n} failed or dead deliveries of {name} are due again."))
        }
        Ok(_) => Err(ForwardingError::InvalidFilter("give the window's start and end".into())),
        Err(why) => Err(ForwardingError::InvalidFilter(why)),
    };
    tell(&session, &name, r).await
}

async fn replay(
    _: AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path((name, id)): Path<(String, i64)>,
) -> Response {
    let r = forwarding::replay(&state.services.db, &name, id, chrono::Utc::now()).await;
    tell(&session, &name, r.map(|()| format!("Delivery {id} is due again; it goes out in a moment."))).await
}

pub fn router() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/admin/destinations", post(add))
        .route("/admin/destinations/{name}/pause", post(pause))
        .route("/admin/destinations/{name}/resume", post(resume))
        .route("/admin/destinations/{name}/enable", post(enable))
        .route("/admin/destinations/{name}/rotate", post(rotate))
        .route("/admin/destinations/{name}/replay-failed", post(replay_failed))
        .route("/admin/destinations/{name}/deliveries/{id}/replay", post(replay))
}
