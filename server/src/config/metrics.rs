//! `/metrics`: the token it requires and the `instance` label on its figures.
#[derive(clap::Args, Clone)]
pub struct MetricsArgs {
    /// Bearer token that GET /metrics requires (`Authorization: Bearer ...`). Unset: /metrics is
    /// not served at all, since its figures are not for the public.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<String>,
    /// Labels every figure at /metrics `instance="<name>"` (unset: no label). For metrics
    /// collected other than by Prometheus scraping each process (which labels each target
    /// itself): through a load balancer, or merged by an agent. One name per process.
    #[arg(long, env = "INSTANCE_NAME", global = true)]
    pub instance_name: Option<String>,
}

/// Metrics, checked.
#[derive(Clone, Default)]
pub struct MetricsSettings {
    /// SHA-256 (hex) of METRICS_TOKEN; None: /metrics answers 404.
    pub token_hash: Option<String>,
    /// INSTANCE_NAME: the `instance` label on every figure.
    pub instance: Option<String>,
}

impl MetricsArgs {
    pub fn check(&self) -> Result<MetricsSettings, String> {
        Ok(MetricsSettings {
            token_hash: match self.metrics_token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) if t.len() < 16 => {
                    return Err("METRICS_TOKEN must be at least 16 characters (it guards the metrics)".into())
                }
                Some(t) => Some(app::services::api_keys::hash(t)),
                None => None,
            },
            instance: instance_name(self.instance_name.as_deref())?,
        })
    }
}

/// INSTANCE_NAME, checked: a label value a person reads in dashboards, so a short printable
/// name (a pod or host name), not free text that could carry a newline into the metrics text.
fn instance_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "INSTANCE_NAME must be 1 to 64 letters, digits, '-', '_', '.' or ':' (a host or pod name), got {name:?}"
        ));
    }
    Ok(Some(name.to_string()))
}
