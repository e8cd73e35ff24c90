//! What the benchmark binaries share: their databases (`--db`, a fresh SQLite file or PostgreSQL
//! database), their seed, and the search indexer run to its end. Kept with the benchmarks: these
//! exit the process on a bad `--db` or a missing PostgreSQL, which the server library never does.
// Each benchmark binary includes this module and uses some of it.
#![allow(dead_code)]
use app::store::Db;

pub mod forward;

/// The databases a benchmark's `--db` names (`sqlite`, `postgres` or `both`); exits with the
/// reason for anything else.
pub fn kinds(db: &str) -> Vec<&'static str> {
    match db {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => {
            eprintln!("error: --db must be sqlite, postgres or both, not {other}");
            std::process::exit(2);
        }
    }
}

/// Runs the search indexer until every stored event is indexed, as the worker would over many
/// sweeps (the benchmarks, after seeding); how many it indexed.
pub async fn index_everything(db: &Db) -> usize {
    let mut indexed = 0;
    loop {
        match app::store::event_search::index_pending(db, 5_000).await.expect("index") {
            0 => return indexed,
            n => indexed += n,
        }
    }
}

/// The benchmarks' advertiser (`bench@example.com`) and `contracts` contracts of theirs, with
/// 3 included revisions each. Returns the advertiser's id and the contracts' ids.
pub async fn contracts(db: &Db, contracts: u32) -> (i64, Vec<i64>) {
    let user = app::services::accounts::create_user(
        db,
        "bench@example.com",
        app::domain::users::Role::Advertiser,
        "bench-password-123",
    )
    .await
    .expect("the bench advertiser");
    let mut ids = Vec::new();
    for _ in 0..contracts {
        let terms = app::store::contracts::NewContract {
            advertiser_id: user.id,
            publication: "Bench",
            ad_size: "Page",
            base_revisions: 3,
        };
        ids.push(app::store::contracts::create(db, &terms, chrono::Utc::now()).await.expect("a bench contract").id);
    }
    (user.id, ids)
}

/// The benchmarks' fresh database: a SQLite file in `dir`, or a new PostgreSQL database `name`
/// made through `postgres_url` (the server `.ci/bench` starts). Exits with the reason when
/// PostgreSQL is asked for without a server to make it on.
pub async fn database(kind: &str, postgres_url: Option<&str>, name: &str, dir: &std::path::Path) -> String {
    if kind == "sqlite" {
        return format!("sqlite:{}", dir.join("bench.db").display());
    }
    let Some(admin) = postgres_url else {
        eprintln!("error: PostgreSQL needs --postgres-url or TEST_POSTGRES_URL (.ci/bench starts one)");
        std::process::exit(2);
    };
    let name = format!("{name}_{}", std::process::id());
    // One connection, not a pool: sqlx's pools start a reaper task that can spin (`store::pool_rules`).
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.expect("drop the old database");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create the database");
    let _ = conn.close().await;
    let (base, _) = admin.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}
