//! "Request a revision": a multipart form post (notes and an optional artwork file), a plain
//! HTML form so it works with or without the wasm. The request consumes one credit under the
//! contract's lock (`ledger::request_revision`); at 0 available the server refuses whatever the
//! page showed. Browsers get a redirect back to the contract page with a message; other
//! clients get the status and the message.
use crate::AppState;
use app::domain::artwork::{check_artwork, check_notes, RequestProblem, MAX_ARTWORK_BYTES};
use app::store::ledger::{self, Artwork, RequestError};
use app::store::{contracts, users};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// The artwork limit plus room for the notes and the multipart framing.
pub const MAX_BODY: usize = MAX_ARTWORK_BYTES + 64 * 1024;

/// Why a request was not recorded.
enum Refused {
    SignIn,
    /// No such contract, or not this advertiser's.
    NotFound,
    /// The status a non-browser client gets, the problem (browsers get its code), and the
    /// message for non-browser clients.
    Problem(StatusCode, RequestProblem, String),
}

impl Refused {
    fn problem(status: StatusCode, problem: RequestProblem) -> Self {
        Refused::Problem(status, problem, problem.message())
    }
}

pub async fn request_revision(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(contract_id): Path<i64>,
    multipart: Multipart,
) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    let page = format!("/contracts/{contract_id}");
    let mut notes = None;
    let outcome = record(&state, &session, contract_id, multipart, &mut notes).await;
    if let (Err(Refused::Problem(..)), true, Some(notes)) = (&outcome, browser, notes.filter(|n| !n.trim().is_empty()))
    {
        // The page the browser goes back to shows the notes again (only the file must be
        // chosen anew: browsers never pre-fill a file input). Bounded like the notes themselves.
        let notes: String = notes.chars().take(app::domain::artwork::MAX_NOTES_CHARS).collect();
        if let Err(e) = session.insert(app::web::auth::server::DRAFT_KEY, (contract_id, notes)).await {
            tracing::warn!(error = %e, "could not keep a refused request's notes");
        }
    }
    match outcome {
        Ok(()) if browser => Redirect::to(&format!("{page}?requested=1")).into_response(),
        Ok(()) => (StatusCode::CREATED, "Revision requested.").into_response(),
        Err(Refused::SignIn) if browser => Redirect::to(&format!("/login?next={page}")).into_response(),
        Err(Refused::SignIn) => (StatusCode::UNAUTHORIZED, "Please sign in.").into_response(),
        Err(Refused::NotFound) => (StatusCode::NOT_FOUND, "Not found.").into_response(),
        Err(Refused::Problem(_, problem, _)) if browser => {
            Redirect::to(&format!("{page}?error={}", problem.code())).into_response()
        }
        Err(Refused::Problem(status, _, message)) => (status, message).into_response(),
    }
}

async fn record(
    state: &AppState,
    session: &Session,
    contract_id: i64,
    mut multipart: Multipart,
    typed_notes: &mut Option<String>,
) -> Result<(), Refused> {
    let svc = &state.services;
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "revision request failed");
        Refused::problem(StatusCode::SERVICE_UNAVAILABLE, RequestProblem::Unavailable)
    };
    let user_id: Option<i64> = session.get("user_id").await.map_err(|e| unavailable(&e))?;
    let user = match user_id {
        Some(id) => users::find(&svc.db, id).await.map_err(|e| unavailable(&e))?,
        None => None,
    }
    .ok_or(Refused::SignIn)?;
    // Not yours and does not exist get the same answer.
    let contract = contracts::find(&svc.db, contract_id).await.map_err(|e| unavailable(&e))?;
    if contract.is_none_or(|c| c.advertiser_id != user.id) {
        return Err(Refused::NotFound);
    }

    let bad = |p: RequestProblem| Refused::problem(StatusCode::UNPROCESSABLE_ENTITY, p);
    let mut notes = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = multipart.next_field().await.map_err(|_| bad(RequestProblem::Unreadable))? {
        match field.name() {
            Some("notes") => notes = Some(field.text().await.map_err(|_| bad(RequestProblem::Unreadable))?),
            Some("artwork") => {
                let name = field.file_name().map(display_name).unwrap_or_default();
                // Reading fails past the body limit: the one way a part can be too large here.
                let bytes = field.bytes().await.map_err(|_| bad(RequestProblem::FileTooLarge))?;
                // A file input left empty still sends a part, with no name and no bytes.
                if !(name.is_empty() && bytes.is_empty()) {
                    file = Some((name, bytes.to_vec()));
                }
            }
            _ => {}
        }
    }
    typed_notes.clone_from(&notes);
    let notes = check_notes(notes.as_deref().unwrap_or_default()).map_err(bad)?;
    let artwork = match &file {
        Some((name, bytes)) => {
            let kind = check_artwork(bytes).map_err(bad)?;
            Some(store_file(&svc.data_dir, contract_id, name, kind, bytes).await.map_err(|e| unavailable(&e))?)
        }
        None => None,
    };
    match ledger::request_revision(&svc.db, contract_id, user.id, &notes, artwork.as_ref(), chrono::Utc::now()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // The request was not recorded, so its file must not linger.
            if let Some(a) = &artwork {
                let _ = tokio::fs::remove_file(svc.data_dir.join(&a.path)).await;
            }
            Err(match e {
                RequestError::NoRevisionsLeft(n) => {
                    Refused::Problem(StatusCode::CONFLICT, RequestProblem::NoRevisionsLeft, capitalise(&n.to_string()))
                }
                RequestError::NotFound => Refused::NotFound,
                RequestError::Store(e) => unavailable(&e),
            })
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ArtworkQuery {
    /// Present: save the file rather than open it.
    download: Option<String>,
}

/// `GET /contracts/{id}/revisions/{request}/artwork`: a request's artwork, for the advertiser
/// who owns the contract and for admins; everyone else (signed out included) gets 404, the
/// answer for what does not exist, so ids leak nothing. The type is the one sniffed from the
/// bytes at upload (PNG, JPEG, PDF, TIFF; never SVG or HTML), `nosniff` stops a browser from
/// guessing another, and the response's Content-Security-Policy (the inert one) lets nothing
/// in it run. The file is streamed, never read whole into memory.
pub async fn artwork(
    State(state): State<AppState>,
    session: Session,
    Path((contract_id, request_id)): Path<(i64, i64)>,
    axum::extract::Query(query): axum::extract::Query<ArtworkQuery>,
) -> Response {
    use app::domain::artwork::{content_disposition, ArtworkKind};
    let svc = &state.services;
    let not_found = || (StatusCode::NOT_FOUND, "Not found.").into_response();
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "serving artwork failed");
        (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response()
    };
    let user = match session.get::<i64>("user_id").await {
        Ok(Some(id)) => match users::find(&svc.db, id).await {
            Ok(u) => u,
            Err(e) => return unavailable(&e),
        },
        Ok(None) => None,
        Err(e) => return unavailable(&e),
    };
    let Some(user) = user else { return not_found() };
    let contract = match contracts::find(&svc.db, contract_id).await {
        Ok(c) => c,
        Err(e) => return unavailable(&e),
    };
    let allowed =
        contract.is_some_and(|c| c.advertiser_id == user.id || user.role() == app::domain::users::Role::Admin);
    if !allowed {
        return not_found();
    }
    let request = match ledger::request(&svc.db, contract_id, request_id).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let Some((path, stored_type, name)) =
        request.and_then(|r| Some((r.artwork_path?, r.artwork_type?, r.artwork_name.unwrap_or_default())))
    else {
        return not_found();
    };
    let kind = ArtworkKind::from_content_type(&stored_type);
    let file = match tokio::fs::File::open(svc.data_dir.join(&path)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The row says there is a file and there is none: loud, and a 404 for the user.
            tracing::error!(contract_id, request_id, path, "artwork file missing");
            return not_found();
        }
        Err(e) => return unavailable(&e),
    };
    let length = file.metadata().await.map(|m| m.len()).ok();
    let inline = query.download.is_none() && kind.is_some_and(ArtworkKind::opens_inline);
    let mut response = Response::new(axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let headers = response.headers_mut();
    let content_type = kind.map_or("application/octet-stream", ArtworkKind::content_type);
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    if let Ok(v) = header::HeaderValue::from_str(&content_disposition(&name, inline)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, n.into());
    }
    // Artwork is private: no shared cache keeps a copy.
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-cache"));
    response
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The uploader's file name, for display only: no folders, no control characters, bounded.
fn display_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Writes the file under `<data>/artwork/<contract>/` with a name the server chooses (never
/// the uploader's, so no path tricks and no collisions). Returns the path relative to `data`.
async fn store_file(
    data_dir: &std::path::Path,
    contract_id: i64,
    name: &str,
    kind: app::domain::artwork::ArtworkKind,
    bytes: &[u8],
) -> std::io::Result<Artwork> {
    use rand::Rng;
    let folder = std::path::PathBuf::from("artwork").join(contract_id.to_string());
    tokio::fs::create_dir_all(data_dir.join(&folder)).await?;
    let token: u128 = rand::thread_rng().gen();
    let relative = folder.join(format!("{token:032x}.{}", kind.extension()));
    tokio::fs::write(data_dir.join(&relative), bytes).await?;
    Ok(Artwork {
        path: relative.to_string_lossy().into_owned(),
        name: if name.is_empty() { format!("artwork.{}", kind.extension()) } else { name.to_string() },
        content_type: kind.content_type().to_string(),
        size: bytes.len() as i64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_lose_folders_and_control_characters() {
        assert_eq!(super::display_name("../../etc/passwd"), "passwd");
        assert_eq!(super::display_name("C:\\art\\logo\u{7}.png"), "logo.png");
    }
}
