//! Uploaded artwork: where it is kept, and how many uploads one user may have in progress.
use crate::artwork::store::ArtworkStorage;

#[derive(clap::Args, Clone)]
pub struct ArtworkArgs {
    /// Folder for files the app keeps (uploaded artwork goes under `artwork/`, unless
    /// ARTWORK_STORE names a bucket).
    #[arg(long, env = "DATA_DIR", default_value = "data", global = true)]
    pub data_dir: std::path::PathBuf,
    /// Where uploaded artwork is kept: unset, under DATA_DIR on this machine; `s3://bucket` or
    /// `s3://bucket/prefix`, an S3-compatible bucket (what several serving processes need), with
    /// the usual AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and
    /// AWS_ENDPOINT_URL for a service other than AWS.
    #[arg(long, env = "ARTWORK_STORE", global = true)]
    pub artwork_store: Option<String>,
    /// Revision requests (with their artwork) one user may have in progress at once; one more
    /// is refused with 429 and Retry-After before its body is read.
    // Listed in `--help` where it always was (`display_order`).
    #[arg(long, env = "UPLOADS_PER_USER", default_value_t = crate::routes::revisions::UPLOADS_PER_USER, global = true, display_order = 35)]
    pub uploads_per_user: usize,
}

/// Artwork, checked.
#[derive(Clone)]
pub struct ArtworkSettings {
    pub data_dir: std::path::PathBuf,
    pub storage: ArtworkStorage,
    /// UPLOADS_PER_USER: revision requests one user may have in progress at once.
    pub uploads_per_user: usize,
}

impl ArtworkArgs {
    pub fn check(&self) -> Result<ArtworkSettings, String> {
        Ok(ArtworkSettings {
            data_dir: self.data_dir.clone(),
            storage: ArtworkStorage::parse(self.artwork_store.as_deref(), std::env::vars())?,
            uploads_per_user: match self.uploads_per_user {
                n @ 1..=1_000 => n,
                n => return Err(format!("UPLOADS_PER_USER must be between 1 and 1000, got {n}")),
            },
        })
    }
}
