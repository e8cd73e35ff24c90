//! Uploaded artwork: where it is kept (`store`: a folder or an S3-compatible bucket) and the
//! sweep removing what no revision request kept (`sweep`). Uploads arrive through
//! `routes::revisions`.
pub mod sightings;
pub mod store;
pub mod sweep;
