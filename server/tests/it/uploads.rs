//! Artwork uploads against the real router and database: a file streams to the staging folder,
//! reaches its final name only with its request, and nothing is left behind by a refusal or a
//! client that hangs up; the worker's sweep removes what no request kept, and nothing else.
use crate::helpers::*;
use crate::on_both_databases;
use app::web::auth::SignIn;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use leptos::server_fn::ServerFn;
use server::artwork_sweep::{sweep, Swept, GRACE};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_databases!(
    an_upload_over_the_limit_leaves_no_file_behind,
    an_upload_refused_for_want_of_revisions_leaves_no_file_behind,
    a_wrong_type_is_refused_before_the_rest_arrives_and_a_hang_up_leaves_nothing,
    a_stored_upload_is_served_byte_for_byte,
    the_sweep_removes_old_orphans_and_stale_staged_uploads_and_nothing_else,
);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const BOUNDARY: &str = "----revision-store-uploads";

/// The app with its own data directory, and its advertiser signed in.
struct Uploads {
    t: TestApp,
    data: tempfile::TempDir,
    cookie: String,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: u16,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Uploads {
    async fn start(kind: DbKind) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_path_buf();
        let t = TestApp::spawn_with(kind, |s| s.data_dir = dir).await;
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let mut site = Self { t, data, cookie: String::new(), http };
        let email = app::store::users::find(site.t.store(), site.t.advertiser_id).await.unwrap().unwrap().email;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("email", email.as_str()), ("password", "a-long-password")])
            .finish();
        let req = hyper::Request::post(format!("{}{}", site.t.app.url(), SignIn::PATH))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.t.app.url());
        let res = site.http.request(req.body(Full::new(Bytes::from(form))).unwrap()).await.unwrap();
        assert!(res.status().as_u16() < 400, "sign-in: {}", res.status());
        site.cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("revision_store_session="))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        site
    }

    fn dir(&self) -> &Path {
        self.data.path()
    }

    async fn send(&self, req: hyper::http::request::Builder, body: Bytes) -> Answer {
        let res = self.http.request(req.body(Full::new(body)).unwrap());
        let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the server answers").expect("request");
        let status = res.status().as_u16();
        Answer { status, body: res.into_body().collect().await.unwrap().to_bytes() }
    }

    /// Requests a revision with `file` as its artwork, as the contract page's form posts it.
    async fn upload(&self, notes: &str, file: Option<(&str, &[u8])>) -> Answer {
        let mut body = multipart_head(notes, file.map(|(name, _)| name));
        if let Some((_, bytes)) = file {
            body.extend_from_slice(bytes);
            body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        }
        let req = hyper::Request::post(format!("{}/contracts/{}/revisions", self.t.app.url(), self.t.contract_id))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .header("origin", self.t.app.url())
            .header("cookie", &self.cookie);
        self.send(req, body.into()).await
    }

    async fn get(&self, path: &str) -> Answer {
        let req = hyper::Request::get(format!("{}{path}", self.t.app.url())).header("cookie", &self.cookie);
        self.send(req, Bytes::new()).await
    }

    /// A connection carrying the head of an upload whose body claims `length` bytes, and the
    /// start of that body up to the artwork's first byte.
    async fn start_raw_upload(&self, length: usize) -> TcpStream {
        let head = format!(
            "POST /contracts/{}/revisions HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nCookie: {}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n",
            self.t.contract_id,
            self.t.app.addr,
            self.t.app.url(),
            self.cookie
        );
        let mut c = TcpStream::connect(self.t.app.addr).await.unwrap();
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(&multipart_head("Bigger logo", Some("art.png"))).await.unwrap();
        c
    }

    /// Every file under the data directory's artwork folder, staging included.
    fn artwork_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir().join("artwork"))
    }

    fn staged_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir().join(server::upload::STAGING))
    }
}

/// The form's notes part and, for `Some(name)`, the artwork part's head: its bytes come next.
/// Without an artwork part the form is complete.
fn multipart_head(notes: &str, artwork: Option<&str>) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"notes\"\r\n\r\n{notes}\r\n").into_bytes();
    match artwork {
        Some(name) => body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"artwork\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        ),
        None => body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes()),
    }
    body
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A PNG-signed file of `size` bytes that no run of repeated bytes could pass for.
fn artwork_of(size: usize) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    let mut x = 0x2545_f491_u32;
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    bytes
}

/// Makes `path` look last written `age` ago.
fn age(path: &Path, age: Duration) {
    let file = std::fs::File::options().append(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

async fn an_upload_over_the_limit_leaves_no_file_behind(kind: DbKind) {
    let site = Uploads::start(kind).await;
    // Streamed to the staging folder until the byte past the limit: then refused and removed.
    let big = artwork_of(app::domain::artwork::MAX_ARTWORK_BYTES + 1);
    let refused = site.upload("big", Some(("big.png", &big))).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("The artwork file is too large."), "{}", refused.text());
    assert_eq!(site.artwork_files(), Vec::<PathBuf>::new(), "nothing kept, staging included");
    // The same for an empty one.
    let empty = site.upload("empty", Some(("empty.png", b""))).await;
    assert_eq!((empty.status, empty.text().as_str()), (422, "The artwork file is empty."));
    assert_eq!(site.artwork_files(), Vec::<PathBuf>::new());
    assert_eq!(site.t.available().await, 3, "nothing used");
    // At the limit exactly, it is accepted.
    let most = artwork_of(app::domain::artwork::MAX_ARTWORK_BYTES);
    assert_eq!(site.upload("most", Some(("most.png", &most))).await.status, 201);
    assert_eq!(site.artwork_files().len(), 1);
    assert_eq!(site.staged_files(), Vec::<PathBuf>::new());
    site.t.app.stop().await;
}

async fn an_upload_refused_for_want_of_revisions_leaves_no_file_behind(kind: DbKind) {
    let site = Uploads::start(kind).await;
    for i in 0..3 {
        let a = site.upload(&format!("request {i}"), None).await;
        assert_eq!(a.status, 201, "{}", a.text());
    }
    assert_eq!(site.t.available().await, 0);
    let refused = site.upload("one more", Some(("art.png", &artwork_of(256 * 1024)))).await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("buy a revision pack"), "{}", refused.text());
    assert_eq!(site.artwork_files(), Vec::<PathBuf>::new(), "neither placed nor staged");
    site.t.app.stop().await;
}

async fn a_wrong_type_is_refused_before_the_rest_arrives_and_a_hang_up_leaves_nothing(kind: DbKind) {
    let site = Uploads::start(kind).await;
    // The body says 5 MB follow; only the first bytes come, and they are not artwork. The
    // answer comes without the rest (the old way read the whole part first, and waited).
    let mut c = site.start_raw_upload(5_000_000).await;
    c.write_all(b"<svg onload=alert(1)>").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "answered before the body ended: {answer}");
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("That file type is not accepted."), "{answer}");

    // A PNG that stops half-way because its sender went away: staged while it arrived, then gone.
    let mut c = site.start_raw_upload(5_000_000).await;
    c.write_all(&artwork_of(512 * 1024)).await.unwrap();
    let staging = eventually(REQUEST_TIMEOUT, || async { site.staged_files().len() == 1 }).await;
    assert!(staging, "the upload is written to the staging folder as it arrives");
    assert_eq!(site.artwork_files(), site.staged_files(), "and nowhere else yet");
    drop(c);
    let cleaned = eventually(REQUEST_TIMEOUT, || async { site.artwork_files().is_empty() }).await;
    assert!(cleaned, "left behind: {:?}", site.artwork_files());
    assert_eq!(site.t.available().await, 3, "nothing used");
    site.t.app.stop().await;
}

async fn a_stored_upload_is_served_byte_for_byte(kind: DbKind) {
    let site = Uploads::start(kind).await;
    // Many chunks' worth, so the file is put together from the stream.
    let art = artwork_of(3 * 1024 * 1024 + 17);
    let a = site.upload("Bigger logo", Some(("logo.png", &art))).await;
    assert_eq!(a.status, 201, "{}", a.text());
    let requests = app::store::ledger::requests(site.t.store(), site.t.contract_id).await.unwrap();
    let r = &requests[0];
    assert_eq!(
        (r.artwork_name.as_deref(), r.artwork_type.as_deref(), r.artwork_size),
        (Some("logo.png"), Some("image/png"), Some(art.len() as i64))
    );
    let stored = site.dir().join(r.artwork_path.as_deref().unwrap());
    assert_eq!(site.artwork_files(), vec![stored.clone()], "placed under its final name, nothing staged");
    assert!(std::fs::read(&stored).unwrap() == art, "the bytes uploaded");
    let served = site.get(&format!("/contracts/{}/revisions/{}/artwork", site.t.contract_id, r.id)).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body.len(), art.len());
    assert!(served.body == art, "served as uploaded");
    site.t.app.stop().await;
}

async fn the_sweep_removes_old_orphans_and_stale_staged_uploads_and_nothing_else(kind: DbKind) {
    let site = Uploads::start(kind).await;
    let (db, dir) = (site.t.store(), site.dir());
    let hours = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(site.upload("kept", Some(("kept.png", PNG))).await.status, 201);
    let requests = app::store::ledger::requests(db, site.t.contract_id).await.unwrap();
    let referenced = dir.join(requests[0].artwork_path.as_deref().unwrap());
    age(&referenced, hours(48));
    let folder = referenced.parent().unwrap().to_path_buf();
    let write = |path: PathBuf, age_by: Option<Duration>| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, PNG).unwrap();
        if let Some(a) = age_by {
            age(&path, a);
        }
        path
    };
    // A row that never committed, here and in the folder of a contract that does not exist.
    let orphan = write(folder.join(format!("{:032x}.png", 1)), Some(hours(2)));
    let elsewhere = write(dir.join("artwork/987654321").join(format!("{:032x}.pdf", 2)), Some(hours(2)));
    // Placed a moment ago: its row may be about to commit.
    let fresh_orphan = write(folder.join(format!("{:032x}.png", 3)), None);
    let stale_staged = write(dir.join(server::upload::STAGING).join("upload-stale"), Some(hours(2)));
    let fresh_staged = write(dir.join(server::upload::STAGING).join("upload-fresh"), None);
    // Not something an upload makes.
    let foreign = write(folder.join("notes.txt"), Some(hours(2)));
    let not_a_contract = write(dir.join("artwork/backup").join(format!("{:032x}.png", 4)), Some(hours(2)));

    let swept = sweep(db, dir, SystemTime::now(), GRACE).await;
    assert_eq!(swept, Swept { orphans: 2, staged: 1 });
    for gone in [&orphan, &elsewhere, &stale_staged] {
        assert!(!gone.exists(), "{} removed", gone.display());
    }
    for kept in [&referenced, &fresh_orphan, &fresh_staged, &foreign, &not_a_contract] {
        assert!(kept.exists(), "{} kept", kept.display());
    }
    assert_eq!(sweep(db, dir, SystemTime::now(), GRACE).await, Swept::default(), "nothing more to remove");

    // Once their grace has passed too, the fresh ones go; the referenced file never does.
    let later = SystemTime::now() + hours(2);
    assert_eq!(sweep(db, dir, later, GRACE).await, Swept { orphans: 1, staged: 1 });
    assert!(!fresh_orphan.exists() && !fresh_staged.exists());
    assert!(referenced.exists() && foreign.exists() && not_a_contract.exists());
    let served = site.get(&format!("/contracts/{}/revisions/{}/artwork", site.t.contract_id, requests[0].id)).await;
    assert_eq!((served.status, served.body.as_ref()), (200, PNG));
    site.t.app.stop().await;
}
