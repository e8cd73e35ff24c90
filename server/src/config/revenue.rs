//! Whose purchases are the owner's own tests: listed apart, never revenue.
use app::services::revenue::Owners;

#[derive(clap::Args, Clone)]
pub struct OwnerArgs {
    /// Advertiser emails whose purchases are the owner's own tests: listed apart, never revenue
    /// (comma-separated).
    #[arg(long, env = "REVENUE_OWNER_EMAILS", value_delimiter = ',', global = true)]
    pub revenue_owner_emails: Vec<String>,
    /// Contract ids whose purchases are the owner's own tests (comma-separated).
    #[arg(long, env = "REVENUE_OWNER_CONTRACTS", value_delimiter = ',', global = true)]
    pub revenue_owner_contracts: Vec<i64>,
}

impl OwnerArgs {
    /// The owner's test accounts, checked: a typo in an email would silently count the owner's
    /// tests as revenue, so every entry must be an email.
    pub fn check(&self) -> Result<Owners, String> {
        let mut out = Owners::default();
        for e in self.revenue_owner_emails.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let email = app::domain::users::Email::parse(e).map_err(|why| format!("REVENUE_OWNER_EMAILS: {why}"))?;
            out.emails.push(email.as_str().to_string());
        }
        if let Some(bad) = self.revenue_owner_contracts.iter().find(|id| **id <= 0) {
            return Err(format!("REVENUE_OWNER_CONTRACTS: {bad} is not a contract id"));
        }
        out.contract_ids = self.revenue_owner_contracts.clone();
        Ok(out)
    }
}
