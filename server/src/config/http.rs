//! HTTP: where the server listens and how each connection is bounded (`ConnectionArgs`), and how
//! it meets browsers and proxies (`WebArgs`).
use super::positive_secs;
use crate::application::middleware::body_deadline::{BodyDeadlines, BODY_DEADLINE_SECS, UPLOAD_DEADLINE_SECS};
use crate::application::serve::{ConnectionLimits, MAX_CONNECTIONS_PER_CLIENT};
use std::net::SocketAddr;

#[derive(clap::Args, Clone)]
pub struct ConnectionArgs {
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub bind: String,
    /// Seconds a client has to send a request's head; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value_t = 10.0, global = true)]
    pub header_timeout_secs: f64,
    /// Seconds a request body may stall between chunks before the request is dropped.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub body_timeout_secs: f64,
    /// Connections open at once at most; more wait to be accepted. Keep it under the process's
    /// open-files limit (`ulimit -n`) less the database pool and some room.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 768, global = true)]
    pub max_connections: usize,
    /// Connections one client address may hold open at once (0: no cap); more from it are
    /// closed as soon as they are accepted. Not applied with CLIENT_IP_HEADER (every peer is
    /// then the proxy).
    #[arg(long, env = "MAX_CONNECTIONS_PER_CLIENT", default_value_t = MAX_CONNECTIONS_PER_CLIENT, global = true)]
    pub max_connections_per_client: usize,
    /// Seconds a whole request body may take to arrive, however it trickles (then 408); an
    /// artwork upload has UPLOAD_DEADLINE_SECS instead.
    #[arg(long, env = "BODY_DEADLINE_SECS", default_value_t = BODY_DEADLINE_SECS as f64, global = true)]
    pub body_deadline_secs: f64,
    /// Seconds a whole artwork upload may take to arrive (then 408).
    #[arg(long, env = "UPLOAD_DEADLINE_SECS", default_value_t = UPLOAD_DEADLINE_SECS as f64, global = true)]
    pub upload_deadline_secs: f64,
    /// Seconds a stopping server (SIGTERM, Ctrl-C) waits for in-flight requests.
    #[arg(long, env = "DRAIN_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub drain_timeout_secs: f64,
}

impl ConnectionArgs {
    pub fn bind(&self) -> Result<SocketAddr, String> {
        self.bind.parse().map_err(|_| format!("BIND_ADDR `{}` is not an address like 127.0.0.1:3000", self.bind))
    }

    /// `proxied`: every peer is the reverse proxy (CLIENT_IP_HEADER), so no cap per peer.
    pub fn check(&self, proxied: bool) -> Result<ConnectionLimits, String> {
        Ok(ConnectionLimits {
            header_timeout: positive_secs("HEADER_TIMEOUT_SECS", self.header_timeout_secs)?,
            body_timeout: positive_secs("BODY_TIMEOUT_SECS", self.body_timeout_secs)?,
            max_connections: match self.max_connections {
                n @ 1..=1_000_000 => n,
                n => return Err(format!("MAX_CONNECTIONS must be between 1 and 1000000, got {n}")),
            },
            // Behind a proxy every connection comes from the proxy: a cap per peer would
            // be a cap on everyone.
            max_connections_per_client: match self.max_connections_per_client {
                _ if proxied => None,
                0 => None,
                n => Some(n),
            },
            body_deadlines: BodyDeadlines {
                body: positive_secs("BODY_DEADLINE_SECS", self.body_deadline_secs)?,
                upload: positive_secs("UPLOAD_DEADLINE_SECS", self.upload_deadline_secs)?,
            },
            drain_timeout: positive_secs("DRAIN_TIMEOUT_SECS", self.drain_timeout_secs)?,
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct WebArgs {
    /// Mark the session cookie Secure (sent over https only). Set it whenever users reach the
    /// app over https, e.g. behind a TLS-terminating proxy.
    #[arg(long, env = "SECURE_COOKIES", default_value_t = false, global = true)]
    pub secure_cookies: bool,
    /// The address users reach the app at (https://revisions.example.com), when it is not the
    /// one the server sees: behind a reverse proxy the Host header may be rewritten, and forms
    /// are checked against this origin instead. An https URL also marks cookies Secure.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Behind a reverse proxy: the header it puts the client's address in (X-Forwarded-For,
    /// X-Real-IP, ...), so sign-in throttling counts per client, not per proxy. Only set it when
    /// every request comes through that proxy: clients can send the header themselves.
    #[arg(long, env = "CLIENT_IP_HEADER", global = true)]
    pub client_ip_header: Option<String>,
    /// The peers `CLIENT_IP_HEADER` is believed from (comma-separated networks or addresses):
    /// the reverse proxy's. A request from any other peer (a client reaching the app directly)
    /// is counted by its own address whatever the header says.
    #[arg(long, env = "TRUSTED_PROXIES", global = true, default_value = app::services::sign_in_throttle::DEFAULT_TRUSTED_PROXIES)]
    pub trusted_proxies: String,
    /// Requests a minute each API key may make (`/api/v1/...`); beyond it, 429 with Retry-After.
    // Listed in `--help` where it always was (`display_order`).
    #[arg(long, env = "API_RATE_PER_MINUTE", default_value_t = 60, global = true, display_order = 36)]
    pub api_rate_per_minute: u32,
}

pub use app::services::settings::WebSettings;

impl WebArgs {
    /// A client address header is set: every peer is the proxy.
    pub fn proxied(&self) -> bool {
        self.client_ip_header.as_deref().is_some_and(|h| !h.trim().is_empty())
    }

    pub fn public_origin(&self) -> Result<Option<String>, String> {
        self.public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(public_origin)
            .transpose()
            .map_err(|e| format!("PUBLIC_URL: {e}"))
    }

    pub fn check(&self, public_origin: Option<String>) -> Result<WebSettings, String> {
        Ok(WebSettings {
            secure_cookies: self.secure_cookies || public_origin.as_deref().is_some_and(|o| o.starts_with("https://")),
            public_origin,
            client_ip_header: self.client_ip_header.clone().filter(|h| !h.trim().is_empty()),
            trusted_proxies: app::services::sign_in_throttle::parse_networks(&self.trusted_proxies)
                .map_err(|e| format!("TRUSTED_PROXIES: {e}"))?,
            api_rate_per_minute: std::num::NonZeroU32::new(self.api_rate_per_minute)
                .filter(|r| r.get() <= 100_000)
                .ok_or_else(|| {
                    format!("API_RATE_PER_MINUTE must be between 1 and 100000, got {}", self.api_rate_per_minute)
                })?,
        })
    }
}

/// `https://Shop.Example/` → `https://shop.example`: the origin browsers send in `Origin`.
/// A path, query, user or other scheme is refused: the setting is where the app is reached, and
/// anything more would never match a browser's `Origin`.
fn public_origin(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| matches!(s.to_ascii_lowercase().as_str(), "http" | "https"))
        .ok_or_else(|| format!("`{url}` must start with https:// (or http://)"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!("`{url}` must be only scheme, host and port, like https://revisions.example.com"));
    }
    Ok(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}
