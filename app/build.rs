//! `sqlx::migrate!` embeds the migrations at compile time, and cargo does not know it read them:
//! without this, a new migration file is left out of the build until something else in this
//! crate changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
