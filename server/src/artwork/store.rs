//! Where uploaded artwork is kept: a folder on this machine (`DATA_DIR`, the default), or an
//! S3-compatible bucket (`ARTWORK_STORE=s3://bucket/prefix`), which is what several serving
//! processes need: each must read what any of them stored. Both go through `object_store`, so
//! the upload, the download and the sweep are written once.
//!
//! An object's key is the path its revision request records, `artwork/<contract>/<name>`,
//! relative to the folder or to the bucket's prefix, so rows written before object storage
//! existed name their files unchanged.
use app::domain::artwork::ArtworkKind;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The folder (below the data directory or the bucket's prefix) every artwork key starts with.
pub const ARTWORK_DIR: &str = "artwork";

/// An upload is sent to storage in parts of this size once it outgrows one (S3's smallest part
/// is 5 MiB); a smaller upload is held in memory and written with one request, whole or not at
/// all. At most this much of an upload is in memory at a time.
pub const PART_BYTES: usize = 5 * 1024 * 1024;

/// What `ARTWORK_STORE` chose.
#[derive(Debug, Clone, Default)]
pub enum ArtworkStorage {
    /// `<DATA_DIR>/artwork/...` on this machine.
    #[default]
    Local,
    /// An S3-compatible bucket: `s3://bucket/prefix`, credentials and endpoint from the usual
    /// AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` for a service that is not AWS, ...).
    S3 { bucket: String, prefix: String, options: Vec<(AmazonS3ConfigKey, String)> },
}

impl ArtworkStorage {
    /// Reads `ARTWORK_STORE`'s value; unset or empty keeps artwork in the data directory. The
    /// S3 options come from the `AWS_*` variables in `vars`, as the AWS tools read them.
    pub fn parse(value: Option<&str>, vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(Self::Local) };
        let wrong = || {
            format!(
                "ARTWORK_STORE must look like s3://bucket or s3://bucket/prefix (got {value:?}); \
                 leave it unset to keep artwork under DATA_DIR"
            )
        };
        let rest = value.strip_prefix("s3://").ok_or_else(wrong)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: what a bucket name can be, so a typo is caught here rather
        // than as a failed upload later.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(wrong());
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !prefix.is_empty() {
            return Err(wrong());
        }
        // Unknown AWS_ variables (AWS_PROFILE, ...) are other tools' and are left alone.
        let options = vars
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                k.starts_with("aws_").then(|| k.parse::<AmazonS3ConfigKey>().ok().map(|key| (key, v))).flatten()
            })
            .collect();
        Ok(Self::S3 { bucket: bucket.to_string(), prefix, options })
    }

    /// For the start-up log: where artwork goes (no secrets).
    pub fn describe(&self, data_dir: &std::path::Path) -> String {
        match self {
            Self::Local => format!("{}", data_dir.join(ARTWORK_DIR).display()),
            Self::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
            Self::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// The artwork store a process uses. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtworkStore {
    objects: Arc<dyn ObjectStore>,
    /// The data directory, when artwork is kept there: partly written files of a crashed
    /// upload are visible only to the filesystem (the object store hides them), and the sweep
    /// looks for them there.
    local_root: Option<std::path::PathBuf>,
    /// When this process first saw each bucket object, by its own clock (`artwork::sweep`).
    sightings: Arc<crate::artwork::sightings::Sightings>,
}

impl ArtworkStore {
    pub fn open(storage: &ArtworkStorage, data_dir: &std::path::Path) -> Result<Self, String> {
        match storage {
            ArtworkStorage::Local => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| format!("cannot create the data directory {}: {e}", data_dir.display()))?;
                // fsync: a file is on disk under its final name before the row naming it commits.
                let folder = LocalFileSystem::new_with_prefix(data_dir)
                    .map_err(|e| format!("cannot use {} for artwork: {e}", data_dir.display()))?
                    .with_fsync(true);
                Ok(Self {
                    objects: Arc::new(folder),
                    local_root: Some(data_dir.to_path_buf()),
                    sightings: Arc::default(),
                })
            }
            ArtworkStorage::S3 { bucket, prefix, options } => {
                // The S3 client's TLS uses the process's provider: ring, the one compiled in (a
                // second call finds it installed, which is fine).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
                for (key, value) in options {
                    builder = builder.with_config(*key, value);
                }
                // A plain-http endpoint is named on purpose (an S3-compatible service on a private
                // network, or a test server on loopback); AWS itself is always https.
                if builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| e.starts_with("http://")) {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder.build().map_err(|e| format!("ARTWORK_STORE: {e}"))?;
                let objects: Arc<dyn ObjectStore> =
                    if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix.as_str())) };
                Ok(Self { objects, local_root: None, sightings: Arc::default() })
            }
        }
    }

    pub fn sightings(&self) -> &crate::artwork::sightings::Sightings {
        &self.sightings
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// The data directory when artwork is kept there.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// Starts writing a new object for `contract_id`'s artwork of `kind`, under a name the
    /// server chooses. Nothing is visible under that name until `Incoming::finish`.
    pub fn begin(&self, contract_id: i64, kind: ArtworkKind) -> Incoming {
        use rand::Rng;
        let key = artwork_key(contract_id, &stored_name(rand::thread_rng().gen(), kind));
        let writer = BufWriter::with_capacity(self.objects.clone(), Key::from(key.as_str()), PART_BYTES);
        Incoming { writer: Some(writer), key }
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.objects.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The key of a contract's artwork object: also the path its request records.
pub fn artwork_key(contract_id: i64, name: &str) -> String {
    format!("{ARTWORK_DIR}/{contract_id}/{name}")
}

/// An upload on its way into the store. Dropped before `finish` (the request refused, failed,
/// or its task ended because the client went away), it is aborted: the parts already sent are
/// discarded and no object appears.
pub struct Incoming {
    writer: Option<BufWriter>,
    key: String,
}

impl Incoming {
    /// Discards the upload now: the parts already sent go, and no object appears.
    pub async fn abort(mut self) {
        if let Some(w) = self.writer.take() {
            discard(w, &self.key).await;
        }
    }

    pub async fn write(&mut self, chunk: Bytes) -> object_store::Result<()> {
        match &mut self.writer {
            Some(w) => w.put(chunk).await,
            // Only `finish`, `abort` and drop take the writer, and each consumes the upload.
            None => unreachable!("an upload is written to only before it finishes"),
        }
    }

    /// Completes the object (durably: synced on disk, or acknowledged by S3); returns its key.
    pub async fn finish(mut self) -> std::io::Result<String> {
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.shutdown().await {
                // Not placed: whatever parts reached the store go too.
                discard(w, &self.key).await;
                return Err(e);
            }
        }
        Ok(std::mem::take(&mut self.key))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            let key = std::mem::take(&mut self.key);
            // Drop cannot wait; the abort runs on its own (outside a runtime there are no
            // uploads to abort). Refusals abort before answering (`abort`); this is for the rest,
            // such as a request whose client went away.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { discard(w, &key).await });
            }
        }
    }
}

/// Aborts an unfinished upload: the parts already sent go. A failure is logged; the sweep
/// removes what stays (`artwork::sweep`).
async fn discard(mut w: BufWriter, key: &str) {
    if let Err(e) = w.abort().await {
        tracing::warn!(error = %e, key, "could not abort an unfinished upload");
    }
}

/// A stored object's name: random (it says nothing about the upload and never collides), with
/// the extension of the type sniffed from its bytes.
pub fn stored_name(token: u128, kind: ArtworkKind) -> String {
    format!("{token:032x}.{}", kind.extension())
}

/// Whether `name` is one `stored_name` makes: the sweep removes nothing else.
pub fn is_stored_name(name: &str) -> bool {
    let kinds = [ArtworkKind::Png, ArtworkKind::Jpeg, ArtworkKind::Pdf, ArtworkKind::Tiff];
    name.split_once('.').is_some_and(|(token, extension)| {
        token.len() == 32
            && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && kinds.iter().any(|k| k.extension() == extension)
    })
}

/// `artwork/<contract>/<stored name>` read back: the contract, if `key` is one an upload makes.
pub fn contract_of(key: &str) -> Option<i64> {
    let mut parts = key.split('/');
    let (Some(ARTWORK_DIR), Some(contract), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    // The folder is named by the id exactly as `artwork_key` writes it.
    let id = contract.parse::<i64>().ok().filter(|id| id.to_string() == contract)?;
    is_stored_name(name).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_recognises_exactly_the_names_uploads_are_stored_under() {
        for kind in [ArtworkKind::Png, ArtworkKind::Jpeg, ArtworkKind::Pdf, ArtworkKind::Tiff] {
            for token in [0, 0xdead_beef, u128::MAX] {
                let name = stored_name(token, kind);
                assert!(is_stored_name(&name), "{name}");
                assert_eq!(contract_of(&artwork_key(42, &name)), Some(42));
            }
        }
        for other in [
            "logo.png",
            ".incoming",
            "upload-abc123",
            "0000000000000000000000000000000A.png",
            "00000000000000000000000000000000.svg",
            "00000000000000000000000000000000.png.part",
            "00000000000000000000000000000000.png#1",
            "00000000000000000000000000000000",
        ] {
            assert!(!is_stored_name(other), "{other}");
        }
        let name = stored_name(7, ArtworkKind::Png);
        for key in [
            format!("artwork/042/{name}"),
            format!("artwork/backup/{name}"),
            format!("other/42/{name}"),
            format!("artwork/42/x/{name}"),
            "artwork/42".to_string(),
        ] {
            assert_eq!(contract_of(&key), None, "{key}");
        }
    }

    #[test]
    fn artwork_store_takes_an_s3_url_or_nothing() {
        let vars = || {
            [
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("AWS_PROFILE", "someone-elses"),
                ("HOME", "/root"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        };
        assert!(matches!(ArtworkStorage::parse(None, vars()), Ok(ArtworkStorage::Local)));
        assert!(matches!(ArtworkStorage::parse(Some("  "), vars()), Ok(ArtworkStorage::Local)));
        let Ok(ArtworkStorage::S3 { bucket, prefix, options }) =
            ArtworkStorage::parse(Some("s3://art-1/pub/x/"), vars())
        else {
            panic!("an S3 url")
        };
        assert_eq!((bucket.as_str(), prefix.as_str()), ("art-1", "pub/x"));
        assert_eq!(options.len(), 2, "region and endpoint; not the profile or HOME: {options:?}");
        assert!(
            matches!(ArtworkStorage::parse(Some("s3://art-1"), vars()), Ok(ArtworkStorage::S3 { prefix, .. }) if prefix.is_empty())
        );
        for wrong in ["/srv/art", "file:///srv/art", "s3://", "s3://Upper", "s3://a", "s3://art/../x", "gs://art"] {
            let e = ArtworkStorage::parse(Some(wrong), vars()).unwrap_err();
            assert!(e.contains("ARTWORK_STORE must look like s3://bucket"), "{wrong}: {e}");
        }
    }
}
