//! Alerts: the thresholds of the rules the worker evaluates (`app::domain::alerts`).
use app::services::alerts::AlertSettings;

#[derive(clap::Args, Clone)]
pub struct AlertArgs {
    /// Alert thresholds that differ from the defaults, as rule=number pairs, comma-separated
    /// (e.g. `signature_failures=25,webhook_silence=3`); `revision-store alerts list` and the
    /// admin Alerts page show every rule with the threshold in effect.
    #[arg(long, env = "ALERT_THRESHOLDS", value_delimiter = ',', global = true)]
    pub alert_thresholds: Vec<String>,
}

impl AlertArgs {
    pub fn check(&self) -> Result<AlertSettings, String> {
        let thresholds = app::domain::alerts::Thresholds::parse(&self.alert_thresholds)
            .map_err(|e| format!("ALERT_THRESHOLDS: {e}"))?;
        Ok(AlertSettings { thresholds })
    }
}
