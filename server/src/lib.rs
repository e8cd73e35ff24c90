//! The `revision-store` server: configuration, the axum application (pages, server functions,
//! the Stripe webhook), the background worker and the operator CLI.
//!
//! - `application`: state, router, middleware, the connection loop, the worker, stopping;
//! - `routes`: the server's own routes, one file per resource;
//! - `artwork`: where uploaded artwork is kept, and its sweep;
//! - `config`: the flags and environment, checked into `Settings`;
//! - `cli`: one file per command.
pub mod application;
pub mod artwork;
pub mod cli;
pub mod config;
pub mod routes;

pub use application::{open_database, router, services, AppState, AppStateInner, Application, StopSignal, WebPolicy};

/// mimalloc instead of glibc's malloc, for every binary that links this crate (the server, the
/// benchmarks, the tests). A page render allocates thousands of small short-lived values on both
/// runtime threads; under load glibc's malloc and free were about a seventh of the process's time,
/// with its arena locks contended (BENCHMARKS.md, admin pages, "fourth session").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
