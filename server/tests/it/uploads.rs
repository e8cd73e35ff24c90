//! Artwork uploads against the real router and database, on each artwork store: a local
//! folder and an S3-compatible server (moto, started by the test command). A file streams into
//! the store, appears under its final name only with its request, and nothing is left behind by
//! a refusal or a client that hangs up; the worker's sweep removes what no request kept, and
//! nothing else.
use crate::helpers::*;
use app::web::auth::SignIn;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use leptos::server_fn::ServerFn;
use object_store::{ObjectStore, ObjectStoreExt};
use server::artwork::store::{ArtworkStorage, ARTWORK_DIR, PART_BYTES};
use server::artwork::sweep::{sweep, Swept, GRACE};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Each test on SQLite with a local folder, and on PostgreSQL with a local folder and with S3
/// (the production shape: several processes need a shared store).
macro_rules! on_each_artwork_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::DbKind::Sqlite, super::Store::Local).await
                }
            )*
        }
        mod postgres_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::DbKind::Postgres, super::Store::Local).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::DbKind::Postgres, super::Store::S3).await
                }
            )*
        }
    };
}

on_each_artwork_store!(
    an_upload_over_the_limit_leaves_no_file_behind,
    an_upload_refused_for_want_of_revisions_leaves_no_file_behind,
    a_wrong_type_is_refused_before_the_rest_arrives_and_a_hang_up_leaves_nothing,
    a_stored_upload_is_served_byte_for_byte,
    the_sweep_removes_old_orphans_and_stale_partial_uploads_and_nothing_else,
);

mod refused_before_the_body {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::an_upload_is_refused_before_its_body_is_read_when_no_revision_is_left(crate::helpers::DbKind::Sqlite)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::an_upload_is_refused_before_its_body_is_read_when_no_revision_is_left(crate::helpers::DbKind::Postgres)
            .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Local,
    S3,
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const BOUNDARY: &str = "----revision-store-uploads";

/// The app with its own data directory (and bucket), and its advertiser signed in.
struct Uploads {
    t: TestApp,
    data: tempfile::TempDir,
    /// (endpoint, bucket) with S3.
    bucket: Option<(String, String)>,
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
    async fn start(kind: DbKind, store: Store) -> Self {
        Self::start_with(kind, store, |_| {}).await
    }

    /// `start` with settings changed by `change`.
    async fn start_with(kind: DbKind, store: Store, change: impl FnOnce(&mut server::config::Settings)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_path_buf();
        let bucket = match store {
            Store::Local => None,
            Store::S3 => Some(new_bucket().await),
        };
        let storage = match &bucket {
            None => ArtworkStorage::Local,
            // Under a prefix, as a bucket shared with other uses would be.
            Some((endpoint, bucket)) => ArtworkStorage::parse(
                Some(&format!("s3://{bucket}/publisher/revisions")),
                [
                    ("AWS_ENDPOINT_URL", endpoint.as_str()),
                    ("AWS_ACCESS_KEY_ID", "test"),
                    ("AWS_SECRET_ACCESS_KEY", "test"),
                    ("AWS_REGION", "us-east-1"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .unwrap(),
        };
        let t = TestApp::spawn_with(kind, |s| {
            s.artwork.data_dir = dir;
            s.artwork.storage = storage;
            change(s);
        })
        .await;
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let mut site = Self { t, data, bucket, cookie: String::new(), http };
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

    fn store(&self) -> &server::artwork::store::ArtworkStore {
        &self.t.app.artwork
    }

    /// The keys of the artwork objects the store lists.
    async fn objects(&self) -> Vec<String> {
        let prefix = object_store::path::Path::from(ARTWORK_DIR);
        let listed: Vec<_> = self.store().objects().list(Some(&prefix)).collect().await;
        let mut keys: Vec<String> = listed.into_iter().map(|m| m.unwrap().location.to_string()).collect();
        keys.sort();
        keys
    }

    /// Everything an upload may have left: every file under the local artwork folder, partial
    /// ones included; with S3, every object and every multipart upload not completed or aborted.
    async fn leftovers(&self) -> Vec<String> {
        match &self.bucket {
            None => files_under(&self.dir().join(ARTWORK_DIR)).iter().map(|p| p.display().to_string()).collect(),
            Some((endpoint, bucket)) => {
                let mut all = self.objects().await;
                let req = hyper::Request::get(format!("{endpoint}/{bucket}?uploads")).body(Full::default()).unwrap();
                let res = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req)).await.unwrap().unwrap();
                let xml = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
                all.extend(
                    xml.split("<Key>").skip(1).map(|k| format!("upload in progress: {}", k.split('<').next().unwrap())),
                );
                all
            }
        }
    }

    /// Waits until nothing is left (an abandoned upload is aborted in the background).
    async fn assert_nothing_left(&self, why: &str) {
        let clean = eventually(PATIENCE, || async { self.leftovers().await.is_empty() }).await;
        assert!(clean, "{why}: left behind {:?}", self.leftovers().await);
    }

    /// The bytes of the object at `key`.
    async fn read(&self, key: &str) -> Bytes {
        let got = self.store().objects().get(&object_store::path::Path::from(key)).await.unwrap();
        got.bytes().await.unwrap()
    }

    /// Writes an object at `key` as an upload would, outside any request.
    async fn put(&self, key: &str) {
        self.store().objects().put(&object_store::path::Path::from(key), Bytes::from_static(PNG).into()).await.unwrap();
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

async fn an_upload_over_the_limit_leaves_no_file_behind(kind: DbKind, store: Store) {
    let site = Uploads::start(kind, store).await;
    // Streamed into the store (in parts: it is larger than one) until the byte past the limit:
    // then refused and aborted.
    let big = artwork_of(app::domain::artwork::MAX_ARTWORK_BYTES + 1);
    let refused = site.upload("big", Some(("big.png", &big))).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("The artwork file is too large."), "{}", refused.text());
    site.assert_nothing_left("refused at the limit").await;
    // The same for an empty one.
    let empty = site.upload("empty", Some(("empty.png", b""))).await;
    assert_eq!((empty.status, empty.text().as_str()), (422, "The artwork file is empty."));
    site.assert_nothing_left("empty").await;
    assert_eq!(site.t.available().await, 3, "nothing used");
    // At the limit exactly, it is accepted.
    let most = artwork_of(app::domain::artwork::MAX_ARTWORK_BYTES);
    assert_eq!(site.upload("most", Some(("most.png", &most))).await.status, 201);
    let objects = site.objects().await;
    assert_eq!(objects.len(), 1);
    assert_eq!(site.leftovers().await.len(), 1, "nothing partial beside it");
    assert_eq!(site.read(&objects[0]).await.len(), most.len());
    site.t.app.stop().await;
}

async fn an_upload_refused_for_want_of_revisions_leaves_no_file_behind(kind: DbKind, store: Store) {
    let site = Uploads::start(kind, store).await;
    for i in 0..3 {
        let a = site.upload(&format!("request {i}"), None).await;
        assert_eq!(a.status, 201, "{}", a.text());
    }
    assert_eq!(site.t.available().await, 0);
    let refused = site.upload("one more", Some(("art.png", &artwork_of(256 * 1024)))).await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("buy a revision pack"), "{}", refused.text());
    // Completed before the refusing transaction, and removed after it, before the answer.
    assert_eq!(site.leftovers().await, Vec::<String>::new(), "neither kept nor partly written");
    site.t.app.stop().await;
}

async fn a_wrong_type_is_refused_before_the_rest_arrives_and_a_hang_up_leaves_nothing(kind: DbKind, store: Store) {
    let site = Uploads::start(kind, store).await;
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

    // A PNG that stops part-way because its sender went away. More than a part has arrived, so
    // the store is receiving it (a partial file; an S3 multipart upload), and nothing is under
    // a final name; once the sender is gone it is aborted.
    let mut c = site.start_raw_upload(3 * PART_BYTES).await;
    c.write_all(&artwork_of(PART_BYTES + 512 * 1024)).await.unwrap();
    let streaming = eventually(REQUEST_TIMEOUT, || async { site.leftovers().await.len() == 1 }).await;
    assert!(streaming, "the upload is written to the store as it arrives: {:?}", site.leftovers().await);
    assert_eq!(site.objects().await, Vec::<String>::new(), "and is no object yet");
    drop(c);
    site.assert_nothing_left("the sender hung up").await;
    assert_eq!(site.t.available().await, 3, "nothing used");
    site.t.app.stop().await;
}

async fn a_stored_upload_is_served_byte_for_byte(kind: DbKind, store: Store) {
    let site = Uploads::start(kind, store).await;
    // Two parts and a bit, so the object is put together from the stream in parts.
    let art = artwork_of(2 * PART_BYTES + 17);
    let a = site.upload("Bigger logo", Some(("logo.png", &art))).await;
    assert_eq!(a.status, 201, "{}", a.text());
    let requests = app::store::ledger::requests(site.t.store(), site.t.contract_id).await.unwrap();
    let r = &requests[0];
    assert_eq!(
        (r.artwork_name.as_deref(), r.artwork_type.as_deref(), r.artwork_size),
        (Some("logo.png"), Some("image/png"), Some(art.len() as i64))
    );
    let key = r.artwork_path.clone().unwrap();
    assert_eq!(site.objects().await, vec![key.clone()], "under its final name");
    assert_eq!(site.leftovers().await.len(), 1, "nothing partial beside it");
    assert!(site.read(&key).await == art, "the bytes uploaded");
    if store == Store::Local {
        // The folder layout rows written before object storage name.
        assert!(std::fs::read(site.dir().join(&key)).unwrap() == art);
    }
    let served = site.get(&format!("/contracts/{}/revisions/{}/artwork", site.t.contract_id, r.id)).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body.len(), art.len());
    assert!(served.body == art, "served as uploaded");
    site.t.app.stop().await;
}

async fn the_sweep_removes_old_orphans_and_stale_partial_uploads_and_nothing_else(kind: DbKind, store: Store) {
    let site = Uploads::start(kind, store).await;
    let (db, artwork) = (site.t.store(), site.store());
    let hours = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(site.upload("kept", Some(("kept.png", PNG))).await.status, 201);
    let requests = app::store::ledger::requests(db, site.t.contract_id).await.unwrap();
    let referenced = requests[0].artwork_path.clone().unwrap();
    let folder = format!("{ARTWORK_DIR}/{}", site.t.contract_id);
    // A row that never committed, here and in the folder of a contract that does not exist.
    let orphan = format!("{folder}/{:032x}.png", 1);
    let elsewhere = format!("{ARTWORK_DIR}/987654321/{:032x}.pdf", 2);
    // Not something an upload makes.
    let foreign = format!("{folder}/notes.txt");
    let not_a_contract = format!("{ARTWORK_DIR}/backup/{:032x}.png", 4);
    for key in [&orphan, &elsewhere, &foreign, &not_a_contract] {
        site.put(key).await;
    }
    // A local folder also holds what crashed uploads left: a partial file beside its final name
    // (object_store's way) and a file in the staging folder of earlier versions.
    let partials = match store {
        Store::Local => {
            let partial = site.dir().join(format!("{folder}/{:032x}.png#3", 5));
            let legacy = site.dir().join(format!("{ARTWORK_DIR}/.incoming/upload-stale"));
            for p in [&partial, &legacy] {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, PNG).unwrap();
            }
            vec![partial, legacy]
        }
        Store::S3 => Vec::new(),
    };

    // Just written: their rows may be about to commit. Nothing goes.
    assert_eq!(sweep(db, artwork, SystemTime::now(), GRACE).await, Swept::default());
    assert_eq!(sweep(db, artwork, SystemTime::now() + GRACE / 2, GRACE).await, Swept::default());
    for p in &partials {
        assert!(p.exists(), "{} kept while fresh", p.display());
    }

    // Past their grace: the orphans and partial files go, the rest stays.
    let later = SystemTime::now() + hours(2);
    let partial_count = partials.len();
    assert_eq!(sweep(db, artwork, later, GRACE).await, Swept { orphans: 2, staged: partial_count });
    let mut kept = vec![referenced.clone(), foreign, not_a_contract];
    kept.sort();
    assert_eq!(site.objects().await, kept);
    for p in &partials {
        assert!(!p.exists(), "{} removed", p.display());
    }
    assert_eq!(sweep(db, artwork, later, GRACE).await, Swept::default(), "nothing more to remove");

    // Locally, files are aged for real: an old orphan goes in the same sweep that keeps a fresh one.
    if store == Store::Local {
        let old = format!("{folder}/{:032x}.tif", 6);
        let fresh = format!("{folder}/{:032x}.jpg", 7);
        site.put(&old).await;
        site.put(&fresh).await;
        age(&site.dir().join(&old), hours(2));
        assert_eq!(sweep(db, artwork, SystemTime::now(), GRACE).await, Swept { orphans: 1, staged: 0 });
        assert!(!site.objects().await.contains(&old) && site.objects().await.contains(&fresh));
    }
    // In a bucket, objects age by our clock from when a sweep first saw them: a store whose clock
    // is hours behind ours (the same as ours hours ahead) cannot make a fresh upload look old.
    if store == Store::S3 {
        let fresh = format!("{folder}/{:032x}.jpg", 8);
        site.put(&fresh).await;
        let skewed = later + hours(1);
        assert_eq!(sweep(db, artwork, skewed, GRACE).await, Swept::default(), "first seen: kept");
        assert!(site.objects().await.contains(&fresh));
        let past_grace = skewed + GRACE + Duration::from_secs(1);
        assert_eq!(sweep(db, artwork, past_grace, GRACE).await, Swept { orphans: 1, staged: 0 });
        assert!(!site.objects().await.contains(&fresh));
    }
    let served = site.get(&format!("/contracts/{}/revisions/{}/artwork", site.t.contract_id, requests[0].id)).await;
    assert_eq!((served.status, served.body.as_ref()), (200, PNG));
    site.t.app.stop().await;
}

/// Reads a raw connection's answer until the server closes it (or the test's patience ends).
async fn answer_of(c: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, c.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered: {}", String::from_utf8_lossy(&answer));
    String::from_utf8_lossy(&answer).into_owned()
}

/// With no revision left, an upload is refused on its head: the answer comes while the body
/// (5 MB announced, its first bytes sent) is still to come, and nothing is written anywhere.
/// The body timeout is out of the way: only the early refusal can answer.
async fn an_upload_is_refused_before_its_body_is_read_when_no_revision_is_left(kind: DbKind) {
    let site = Uploads::start_with(kind, Store::Local, |s| s.connections.body_timeout = Duration::from_secs(600)).await;
    for i in 0..3 {
        let a = site.upload(&format!("request {i}"), None).await;
        assert_eq!(a.status, 201, "{}", a.text());
    }
    let mut c = site.start_raw_upload(5_000_000).await;
    let answer = answer_of(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert!(answer.contains("buy a revision pack"), "{answer}");
    assert_eq!(site.leftovers().await, Vec::<String>::new(), "nothing written");
    assert_eq!(site.t.available().await, 0);
    site.t.app.stop().await;
}

/// One user may have `UPLOADS_PER_USER` revision requests in progress (here 2); one more is
/// refused at once with 429 and Retry-After, before its body is read, and the place frees when
/// an upload ends (here: its client hangs up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_in_progress_per_user_are_capped() {
    let site = Uploads::start_with(DbKind::Sqlite, Store::Local, |s| {
        s.artwork.uploads_per_user = 2;
        s.connections.body_timeout = Duration::from_secs(600);
    })
    .await;
    let in_progress = || async {
        let metrics = site.t.metrics().await;
        metrics.lines().find_map(|l| l.strip_prefix("revision_store_uploads_in_progress ")?.trim().parse::<f64>().ok())
    };
    // Two uploads that stall after their first bytes.
    let first = site.start_raw_upload(5_000_000).await;
    let mut second = site.start_raw_upload(5_000_000).await;
    assert!(eventually(PATIENCE, || async { in_progress().await == Some(2.0) }).await, "{:?}", in_progress().await);
    // A third: refused before its body, with when to try again.
    let req = hyper::Request::post(format!("{}/contracts/{}/revisions", site.t.app.url(), site.t.contract_id))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .header("origin", site.t.app.url())
        .header("cookie", &site.cookie);
    let res = site.http.request(req.body(Full::new(Bytes::from(multipart_head("third", None)))).unwrap());
    let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the server answers").unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "5");
    let text = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
    assert!(text.contains("still being sent"), "{text}");
    let metrics = site.t.metrics().await;
    assert!(metrics.contains("revision_store_uploads_refused_busy_total 1"), "{metrics}");
    // The first hangs up: its place frees, and a request goes through.
    drop(first);
    assert!(eventually(PATIENCE, || async { in_progress().await == Some(1.0) }).await, "{:?}", in_progress().await);
    let a = site.upload("after the hang-up", None).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(site.t.available().await, 2);
    let _ = second.shutdown().await;
    site.t.app.stop().await;
}
