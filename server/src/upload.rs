//! "Request a revision": a multipart form post (notes and an optional artwork file), a plain
//! HTML form so it works with or without the wasm. The request consumes one credit under the
//! contract's lock (`ledger::request_revision`); at 0 available the server refuses whatever the
//! page showed. Browsers get a redirect back to the contract page with a message; other
//! clients get the status and the message.
//!
//! The artwork streams to a file in the staging folder a chunk at a time (never held whole in
//! memory), checked as it arrives, and moves to its final name only when it passed every check.
use crate::AppState;
use app::domain::artwork::{check_notes, ArtworkCheck, ArtworkKind, RequestProblem, MAX_ARTWORK_BYTES};
use app::store::ledger::{self, Artwork, RequestError};
use app::store::{contracts, users};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::io::AsyncWriteExt;
use tower_sessions::Session;

/// The artwork limit plus room for the notes and the multipart framing.
pub const MAX_BODY: usize = MAX_ARTWORK_BYTES + 64 * 1024;
/// Stored artwork, relative to the data directory: `<contract>/<stored name>` below it.
pub const ARTWORK_DIR: &str = "artwork";
/// Where uploads are written while they arrive, relative to the data directory. Inside the
/// artwork folder, so that moving a finished upload to its final name is a rename on the same
/// filesystem (atomic: the final name never holds half a file).
pub const STAGING: &str = "artwork/.incoming";
/// Notes are read no further than this (the room `MAX_BODY` leaves them): far more than
/// `MAX_NOTES_CHARS` characters take, so only a client that is not a person's form gets here.
const MAX_NOTES_BYTES: usize = 64 * 1024;

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

    /// Something the client sent breaks a rule.
    fn bad(problem: RequestProblem) -> Self {
        Self::problem(StatusCode::UNPROCESSABLE_ENTITY, problem)
    }

    /// Our side failed (database, disk): logged, and the client may try again.
    fn unavailable(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "revision request failed");
        Self::problem(StatusCode::SERVICE_UNAVAILABLE, RequestProblem::Unavailable)
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
    let user_id: Option<i64> = session.get("user_id").await.map_err(|e| Refused::unavailable(&e))?;
    let user = match user_id {
        Some(id) => users::find_active(&svc.db, id).await.map_err(|e| Refused::unavailable(&e))?,
        None => None,
    }
    .ok_or(Refused::SignIn)?;
    // Not yours and does not exist get the same answer.
    let contract = contracts::find(&svc.db, contract_id).await.map_err(|e| Refused::unavailable(&e))?;
    if contract.is_none_or(|c| c.advertiser_id != user.id) {
        return Err(Refused::NotFound);
    }

    let mut notes = None;
    // Every return from here drops what was staged, which removes its file.
    let mut file: Option<Staged> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(|_| Refused::bad(RequestProblem::Unreadable))? {
        match field.name() {
            Some("notes") => {
                notes = Some(read_notes(&mut field).await.map_err(Refused::bad)?);
                // Kept for the page even if the artwork that follows is refused.
                typed_notes.clone_from(&notes);
            }
            Some("artwork") => {
                let name = field.file_name().map(display_name).unwrap_or_default();
                if let Some(staged) = receive_artwork(&svc.data_dir, name, &mut field).await? {
                    file = Some(staged);
                }
            }
            _ => {}
        }
    }
    let notes = check_notes(notes.as_deref().unwrap_or_default()).map_err(Refused::bad)?;
    // Crash safety: the file is synced under its final name before the row that names it
    // commits. A crash (or a lost answer) in between leaves a file no row references, which the
    // worker's sweep (`artwork_sweep`) removes once it is older than the grace period. The other
    // order could commit a request, a revision paid for, whose artwork never reached its name.
    let artwork = match file {
        Some(staged) => Some(staged.place(&svc.data_dir, contract_id).await.map_err(|e| Refused::unavailable(&e))?),
        None => None,
    };
    match ledger::request_revision(&svc.db, contract_id, user.id, &notes, artwork.as_ref(), chrono::Utc::now()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let refused = match e {
                RequestError::NoRevisionsLeft(n) => {
                    Refused::Problem(StatusCode::CONFLICT, RequestProblem::NoRevisionsLeft, capitalise(&n.to_string()))
                }
                RequestError::NotFound => Refused::NotFound,
                // The commit's outcome can be unknown (the connection lost after the database
                // committed), so the file stays for the sweep, which removes it only if no row
                // references it: removing it here could leave a recorded request without its file.
                RequestError::Store(e) => return Err(Refused::unavailable(&e)),
            };
            // Refused inside the transaction, which rolled back: no row names the file.
            if let Some(a) = &artwork {
                if let Err(e) = tokio::fs::remove_file(svc.data_dir.join(&a.path)).await {
                    tracing::warn!(error = %e, path = a.path, "a refused request's artwork stays for the sweep");
                }
            }
            Err(refused)
        }
    }
}

/// Reads the notes part, refusing it past `MAX_NOTES_BYTES` without reading on.
async fn read_notes(field: &mut Field<'_>) -> Result<String, RequestProblem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| RequestProblem::Unreadable)? {
        if bytes.len() + chunk.len() > MAX_NOTES_BYTES {
            return Err(RequestProblem::NotesTooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| RequestProblem::Unreadable)
}

/// An upload written to the staging folder and synced, of a type and size that passed the
/// checks. Dropped (the request refused, failed, or its task ended because the client went
/// away), its file is removed.
struct Staged {
    temp: tempfile::TempPath,
    kind: ArtworkKind,
    size: usize,
    /// What the uploader called it (display only).
    name: String,
}

/// Streams the artwork part into a file in the staging folder a chunk at a time, checking each
/// chunk before it is written: a wrong type is refused at its first bytes, a file over the limit
/// as it passes it. None: a file input left empty (it still sends a part, with no name and no
/// bytes).
async fn receive_artwork(
    data_dir: &std::path::Path,
    name: String,
    field: &mut Field<'_>,
) -> Result<Option<Staged>, Refused> {
    let mut check = ArtworkCheck::default();
    // Made at the first byte, so a form without a file writes nothing.
    let mut staged: Option<(tokio::fs::File, tempfile::TempPath)> = None;
    while let Some(chunk) = field.chunk().await.map_err(|e| Refused::bad(unread_artwork(&e)))? {
        check.push(&chunk).map_err(Refused::bad)?;
        if chunk.is_empty() {
            continue;
        }
        let (file, _) = match &mut staged {
            Some(s) => s,
            None => staged.insert(create_staged(data_dir).await.map_err(|e| Refused::unavailable(&e))?),
        };
        file.write_all(&chunk).await.map_err(|e| Refused::unavailable(&e))?;
    }
    let Some((file, temp)) = staged else {
        // Nothing arrived.
        return if name.is_empty() { Ok(None) } else { Err(Refused::bad(RequestProblem::FileEmpty)) };
    };
    let kind = check.finish().map_err(Refused::bad)?;
    // On disk before it can be placed and named by a row (the database's commit is durable;
    // the file must be too).
    file.sync_all().await.map_err(|e| Refused::unavailable(&e))?;
    let name = if name.is_empty() { format!("artwork.{}", kind.extension()) } else { name };
    Ok(Some(Staged { temp, kind, size: check.size(), name }))
}

/// Past the body limit a part is too large; anything else that stops it (the client stalled,
/// hung up, or sent a malformed body) is not the file's size.
fn unread_artwork(e: &MultipartError) -> RequestProblem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        RequestProblem::FileTooLarge
    } else {
        RequestProblem::Unreadable
    }
}

/// A new file in the staging folder, removed when its `TempPath` is dropped.
async fn create_staged(data_dir: &std::path::Path) -> std::io::Result<(tokio::fs::File, tempfile::TempPath)> {
    let staging = data_dir.join(STAGING);
    tokio::fs::create_dir_all(&staging).await?;
    let file = tokio::task::spawn_blocking(move || tempfile::Builder::new().prefix("upload-").tempfile_in(staging))
        .await
        .map_err(std::io::Error::other)??;
    let (file, path) = file.into_parts();
    Ok((tokio::fs::File::from_std(file), path))
}

impl Staged {
    /// Moves the file to `<data>/artwork/<contract>/` under a name the server chooses (never
    /// the uploader's, so no path tricks and no collisions), durably. Returns the request's
    /// artwork, its path relative to `data`.
    async fn place(self, data_dir: &std::path::Path, contract_id: i64) -> std::io::Result<Artwork> {
        use rand::Rng;
        let folder = std::path::PathBuf::from(ARTWORK_DIR).join(contract_id.to_string());
        tokio::fs::create_dir_all(data_dir.join(&folder)).await?;
        let relative = folder.join(stored_name(rand::thread_rng().gen(), self.kind));
        let target = data_dir.join(&relative);
        let temp = self.temp;
        // A failed rename hands the temp path back inside the error, and dropping it removes
        // the staged file.
        tokio::task::spawn_blocking(move || temp.persist(target))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::from)?;
        sync_dir(&data_dir.join(&folder)).await?;
        Ok(Artwork {
            path: relative.to_string_lossy().into_owned(),
            name: self.name,
            content_type: self.kind.content_type().to_string(),
            size: self.size as i64,
        })
    }
}

/// Makes a rename into `dir` durable: on POSIX systems the new entry is on disk only once its
/// folder is synced.
async fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    tokio::fs::File::open(dir).await?.sync_all().await?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A stored file's name: random (it says nothing about the upload and never collides), with the
/// extension of the type sniffed from its bytes.
fn stored_name(token: u128, kind: ArtworkKind) -> String {
    format!("{token:032x}.{}", kind.extension())
}

/// Whether `name` is one `stored_name` makes: the sweep removes nothing else.
pub(crate) fn is_stored_name(name: &str) -> bool {
    let kinds = [ArtworkKind::Png, ArtworkKind::Jpeg, ArtworkKind::Pdf, ArtworkKind::Tiff];
    name.split_once('.').is_some_and(|(token, extension)| {
        token.len() == 32
            && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && kinds.iter().any(|k| k.extension() == extension)
    })
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
        Ok(Some(id)) => match users::find_active(&svc.db, id).await {
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

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_lose_folders_and_control_characters() {
        assert_eq!(super::display_name("../../etc/passwd"), "passwd");
        assert_eq!(super::display_name("C:\\art\\logo\u{7}.png"), "logo.png");
    }

    #[test]
    fn the_sweep_recognises_exactly_the_names_uploads_are_stored_under() {
        use app::domain::artwork::ArtworkKind;
        for kind in [ArtworkKind::Png, ArtworkKind::Jpeg, ArtworkKind::Pdf, ArtworkKind::Tiff] {
            for token in [0, 0xdead_beef, u128::MAX] {
                let name = super::stored_name(token, kind);
                assert!(super::is_stored_name(&name), "{name}");
            }
        }
        for other in [
            "logo.png",
            ".incoming",
            "upload-abc123",
            "0000000000000000000000000000000A.png",
            "00000000000000000000000000000000.svg",
            "00000000000000000000000000000000.png.part",
            "00000000000000000000000000000000",
        ] {
            assert!(!super::is_stored_name(other), "{other}");
        }
    }
}
