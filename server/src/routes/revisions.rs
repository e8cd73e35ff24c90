//! "Request a revision": a multipart form post (notes and an optional artwork file), a plain
//! HTML form so it works with or without the wasm. The request consumes one credit under the
//! contract's lock (`ledger::request_revision`); at 0 available the server refuses whatever the
//! page showed. Browsers get a redirect back to the contract page with a message; other
//! clients get the status and the message.
//!
//! The artwork streams into the artwork store (`artwork::store`: a folder or an S3 bucket) a
//! chunk at a time, checked as it arrives; its object appears under its final name only when it
//! passed every check and is complete.
use crate::artwork::store::{ArtworkStore, Incoming};
use crate::AppState;
use app::domain::artwork::{check_notes, ArtworkCheck, ArtworkKind, RequestProblem, MAX_ARTWORK_BYTES};
use app::store::contracts;
use app::store::ledger::{self, Artwork, RequestError};
use app::web::access::SignedIn;
use app::web::auth::CurrentUser;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// The artwork limit plus room for the notes and the multipart framing.
pub const MAX_BODY: usize = MAX_ARTWORK_BYTES + 64 * 1024;
/// Notes are read no further than this (the room `MAX_BODY` leaves them): far more than
/// `MAX_NOTES_CHARS` characters take, so only a client that is not a person's form gets here.
const MAX_NOTES_BYTES: usize = 64 * 1024;

/// Revision requests one user may have in progress at once by default (`UPLOADS_PER_USER`):
/// the contract page sends one at a time; a second covers a retry while the first is still
/// being cut off.
pub const UPLOADS_PER_USER: usize = 2;
/// What a refused upload's Retry-After says: a few seconds, for the one in progress to end.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// Revision requests in progress, per user: each takes a connection, a database connection
/// at its end and an artwork object while it streams, so one account cannot open dozens.
/// Per process, like the Stripe-call budget.
pub struct UploadSlots {
    max: usize,
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, usize>>>,
}

/// One upload in progress; dropping it (answered, refused, or abandoned by a client that went
/// away) frees its place.
pub struct UploadSlot {
    user: i64,
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, usize>>>,
    stats: std::sync::Arc<app::services::stats::Stats>,
}

impl UploadSlots {
    pub fn new(max: usize) -> Self {
        Self { max, open: Default::default() }
    }

    /// A place for one more upload of `user`'s, unless they have `max` in progress.
    fn take(&self, user: i64, stats: &std::sync::Arc<app::services::stats::Stats>) -> Option<UploadSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        stats.uploads_in_progress.increment(1.0);
        Some(UploadSlot { user, open: self.open.clone(), stats: stats.clone() })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
        self.stats.uploads_in_progress.decrement(1.0);
    }
}

/// Whether `path` is a revision request's (`POST /contracts/{id}/revisions`, with its artwork).
pub fn is_upload_path(path: &str) -> bool {
    path.strip_prefix("/contracts/")
        .and_then(|rest| rest.strip_suffix("/revisions"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a request was not recorded.
enum Refused {
    SignIn,
    /// No such contract, or not this advertiser's.
    NotFound,
    /// The status a non-browser client gets, the problem (browsers get its code), and the
    /// message for non-browser clients.
    Problem(StatusCode, RequestProblem, String),
    /// This user has `UPLOADS_PER_USER` requests in progress already.
    Busy,
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
    caller: Option<SignedIn>,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(contract_id): Path<i64>,
    multipart: Multipart,
) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    let page = format!("/contracts/{contract_id}");
    let mut notes = None;
    let outcome = record(&state, caller, contract_id, multipart, &mut notes).await;
    if let (Err(Refused::Problem(..)), true, Some(notes)) = (&outcome, browser, notes.filter(|n| !n.trim().is_empty()))
    {
        // The page the browser goes back to shows the notes again (only the file must be
        // chosen anew: browsers never pre-fill a file input). Bounded like the notes themselves.
        let notes: String = notes.chars().take(app::domain::artwork::MAX_NOTES_CHARS).collect();
        if let Err(e) = session.insert(app::web::session_keys::DRAFT_KEY, (contract_id, notes)).await {
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
        Err(Refused::Busy) if browser => {
            Redirect::to(&format!("{page}?error={}", RequestProblem::Busy.code())).into_response()
        }
        Err(Refused::Busy) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, BUSY_RETRY_AFTER_SECS.to_string())],
            RequestProblem::Busy.message(),
        )
            .into_response(),
    }
}

async fn record(
    state: &AppState,
    caller: Option<SignedIn>,
    contract_id: i64,
    mut multipart: Multipart,
    typed_notes: &mut Option<String>,
) -> Result<(), Refused> {
    let svc = &state.services;
    let user = admit(state, caller, contract_id).await?;
    // Held until this request is answered or abandoned.
    let _slot = state.uploads.take(user.id, &svc.stats).ok_or_else(|| {
        app::services::stats::Stats::inc(&svc.stats.uploads_refused_busy);
        Refused::Busy
    })?;

    let mut file: Option<Received> = None;
    let notes = match read_form(state, contract_id, &mut multipart, typed_notes, &mut file).await {
        Ok(notes) => notes,
        Err(refused) => {
            // Refused with a file already received (say, notes after it too long): discarded
            // before the answer, so a refused request leaves no upload behind.
            if let Some(received) = file {
                received.upload.abort().await;
            }
            return Err(refused);
        }
    };
    // Crash safety: the object is complete (synced, or acknowledged by S3) under its final name
    // before the row that names it commits. A crash (or a lost answer) in between leaves an
    // object no row references, which the worker's sweep (`artwork::sweep`) removes once it is
    // older than the grace period. The other order could commit a request, a revision paid for,
    // whose artwork never reached its name.
    let artwork = match file {
        Some(received) => Some(received.place().await.map_err(|e| Refused::unavailable(&e))?),
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
            // Refused inside the transaction, which rolled back: no row names the object.
            if let Some(a) = &artwork {
                if let Err(e) = state.artwork.delete(&a.path).await {
                    tracing::warn!(error = %e, path = a.path, "a refused request's artwork stays for the sweep");
                }
            }
            Err(refused)
        }
    }
}

/// The signed-in owner of the contract, when it has a revision left to spend.
async fn admit(state: &AppState, caller: Option<SignedIn>, contract_id: i64) -> Result<CurrentUser, Refused> {
    let svc = &state.services;
    let SignedIn(user) = caller.ok_or(Refused::SignIn)?;
    // Not yours and does not exist get the same answer.
    let contract = contracts::find(&svc.db, contract_id).await.map_err(|e| Refused::unavailable(&e))?;
    if contract.is_none_or(|c| c.advertiser_id != user.id) {
        return Err(Refused::NotFound);
    }
    // Refused before a byte of the body is read (the multipart form is read lazily, below):
    // with nothing to spend, a 25 MiB upload would only be received to be thrown away. The
    // transaction checks again under the contract's lock, since a request may win the last
    // revision meanwhile.
    let balance = ledger::balance(&svc.db, contract_id).await.map_err(|e| Refused::unavailable(&e))?;
    if let Some(Err(n)) = balance.map(|b| b.check_can_request()) {
        return Err(Refused::Problem(
            StatusCode::CONFLICT,
            RequestProblem::NoRevisionsLeft,
            capitalise(&n.to_string()),
        ));
    }
    Ok(user)
}

/// Reads the form's parts: the artwork into `file` (streamed into the store), and the notes,
/// which it returns checked.
async fn read_form(
    state: &AppState,
    contract_id: i64,
    multipart: &mut Multipart,
    typed_notes: &mut Option<String>,
    file: &mut Option<Received>,
) -> Result<String, Refused> {
    let mut notes = None;
    while let Some(mut field) = multipart.next_field().await.map_err(|_| Refused::bad(RequestProblem::Unreadable))? {
        match field.name() {
            Some("notes") => {
                notes = Some(read_notes(&mut field).await.map_err(Refused::bad)?);
                // Kept for the page even if the artwork that follows is refused.
                typed_notes.clone_from(&notes);
            }
            Some("artwork") => {
                let name = field.file_name().map(display_name).unwrap_or_default();
                if let Some(received) = receive_artwork(&state.artwork, contract_id, name, &mut field).await? {
                    *file = Some(received);
                }
            }
            _ => {}
        }
    }
    check_notes(notes.as_deref().unwrap_or_default()).map_err(Refused::bad)
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

/// An upload of a type and size that passed the checks, written to the store but not yet
/// completed. Dropped (the request refused, failed, or its task ended because the client went
/// away), it is aborted and no object appears.
struct Received {
    upload: Incoming,
    kind: ArtworkKind,
    size: usize,
    /// What the uploader called it (display only).
    name: String,
}

/// Streams the artwork part into the store a chunk at a time, checking each chunk before it is
/// written: a wrong type is refused at its first bytes, a file over the limit as it passes it.
/// None: a file input left empty (it still sends a part, with no name and no bytes).
async fn receive_artwork(
    store: &ArtworkStore,
    contract_id: i64,
    name: String,
    field: &mut Field<'_>,
) -> Result<Option<Received>, Refused> {
    let mut check = ArtworkCheck::default();
    // The object is named by its type, known after the first few bytes (`SNIFF_BYTES`): until
    // then they wait here. Begun at the first byte of a known type, so a form without a file
    // writes nothing.
    let mut upload: Option<Incoming> = None;
    if let Err(refused) = stream_artwork(store, contract_id, field, &mut check, &mut upload).await {
        // Aborted before the answer, so a refused upload has left nothing behind once it is
        // answered (dropping it would abort it too, but in a task of its own, later).
        if let Some(u) = upload {
            u.abort().await;
        }
        return Err(refused);
    }
    if check.size() == 0 {
        // Nothing arrived.
        return if name.is_empty() { Ok(None) } else { Err(Refused::bad(RequestProblem::FileEmpty)) };
    }
    let kind = check.finish().map_err(Refused::bad)?;
    let upload = match upload {
        Some(u) => u,
        // `finish` knows the type only from a whole signature, so a file this short still began.
        None => return Err(Refused::bad(RequestProblem::FileType)),
    };
    let name = if name.is_empty() { format!("artwork.{}", kind.extension()) } else { name };
    Ok(Some(Received { upload, kind, size: check.size(), name }))
}

/// The artwork part's bytes through `check` into `upload`, begun once the type is known.
async fn stream_artwork(
    store: &ArtworkStore,
    contract_id: i64,
    field: &mut Field<'_>,
    check: &mut ArtworkCheck,
    upload: &mut Option<Incoming>,
) -> Result<(), Refused> {
    let mut head = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| Refused::bad(unread_artwork(&e)))? {
        check.push(&chunk).map_err(Refused::bad)?;
        let chunk = match (&*upload, check.kind()) {
            (Some(_), _) => chunk,
            (None, None) => {
                head.extend_from_slice(&chunk);
                continue;
            }
            (None, Some(kind)) => {
                *upload = Some(store.begin(contract_id, kind));
                head.extend_from_slice(&chunk);
                std::mem::take(&mut head).freeze()
            }
        };
        if let Some(u) = upload {
            u.write(chunk).await.map_err(|e| Refused::unavailable(&e))?;
        }
    }
    Ok(())
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

impl Received {
    /// Completes the object under its final name (`artwork/<contract>/<random>.<ext>`: never
    /// the uploader's name, so no path tricks and no collisions). Returns the request's
    /// artwork, its path being the object's key.
    async fn place(self) -> std::io::Result<Artwork> {
        let path = self.upload.finish().await?;
        Ok(Artwork {
            path,
            name: self.name,
            content_type: self.kind.content_type().to_string(),
            size: self.size as i64,
        })
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
    caller: Option<SignedIn>,
    State(state): State<AppState>,
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
    let Some(SignedIn(user)) = caller else { return not_found() };
    let contract = match contracts::find(&svc.db, contract_id).await {
        Ok(c) => c,
        Err(e) => return unavailable(&e),
    };
    let allowed = contract.is_some_and(|c| c.advertiser_id == user.id || user.is_admin);
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
    let object = match object_store::ObjectStoreExt::get(
        state.artwork.objects(),
        &object_store::path::Path::from(path.as_str()),
    )
    .await
    {
        Ok(o) => o,
        Err(object_store::Error::NotFound { .. }) => {
            // The row says there is a file and there is none: loud, and a 404 for the user.
            tracing::error!(contract_id, request_id, path, "artwork file missing");
            return not_found();
        }
        Err(e) => return unavailable(&e),
    };
    let length = object.meta.size;
    let inline = query.download.is_none() && kind.is_some_and(ArtworkKind::opens_inline);
    let mut response = Response::new(axum::body::Body::from_stream(object.into_stream()));
    let headers = response.headers_mut();
    let content_type = kind.map_or("application/octet-stream", ArtworkKind::content_type);
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    if let Ok(v) = header::HeaderValue::from_str(&content_disposition(&name, inline)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CONTENT_LENGTH, length.into());
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

/// Requesting a revision and reading its artwork (pages' routes: sessions and the cross-site
/// check).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/contracts/{id}/revisions",
            post(request_revision).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/contracts/{id}/revisions/{request}/artwork", get(artwork))
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_lose_folders_and_control_characters() {
        assert_eq!(super::display_name("../../etc/passwd"), "passwd");
        assert_eq!(super::display_name("C:\\art\\logo\u{7}.png"), "logo.png");
    }
}
