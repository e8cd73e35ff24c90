//! The database: where it is, how many connections, how long a request waits for one.
use super::positive_secs;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct DatabaseArgs {
    /// Database URL: sqlite:PATH (the default, created if missing) or postgres://...
    // hide_env_values: `--help` would otherwise print the URL from the environment, password included.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:data/revision-store.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,
    /// Database pool size.
    // Listed in `--help` where it always was, among the limits (`display_order`).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16, global = true, display_order = 21)]
    pub db_max_connections: u32,
    /// Seconds a request waits for the database before answering 503.
    #[arg(long, env = "DB_TIMEOUT_SECS", default_value_t = 5.0, global = true, display_order = 22)]
    pub db_timeout_secs: f64,
}

/// The database, checked.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for the database before answering 503.
    pub timeout: Duration,
}

impl DatabaseArgs {
    pub fn check(&self) -> Result<DatabaseSettings, String> {
        if self.db_max_connections == 0 {
            return Err("DB_MAX_CONNECTIONS must be at least 1".into());
        }
        Ok(DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections,
            timeout: positive_secs("DB_TIMEOUT_SECS", self.db_timeout_secs)?,
        })
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &base[..scheme_end], &base[at + 1..])
        }
        _ => base.to_string(),
    };
    // libpq also takes the password as a parameter (`?password=…`).
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}
