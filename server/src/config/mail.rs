//! Email: the SMTP server and the sender's address.

#[derive(clap::Args, Clone)]
pub struct MailArgs {
    /// SMTP server for invitations, password links, receipts and alerts (unset: no email; links
    /// are shown to the admin to pass on). `smtps://user:pass@host` (TLS, port 465),
    /// `smtp://user:pass@host?tls=required` (STARTTLS, port 587), `smtp://host:25` (no TLS: a
    /// relay on the same host or network).
    #[arg(long, env = "SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// The From of every email: `Revision Store <billing@example.com>` or a bare address;
    /// required with SMTP_URL.
    #[arg(long, env = "MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
}

impl MailArgs {
    /// The mailer, or None when email is off. Emails link back to the store, so they need the
    /// address people reach it at: `public_origin` (PUBLIC_URL) is required with SMTP_URL.
    pub fn check(&self, public_origin: Option<&str>) -> Result<Option<app::mail::Mailer>, String> {
        let Some(url) = self.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let from = self
            .mail_from
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .ok_or("MAIL_FROM is required with SMTP_URL: the address the store's emails come from")?;
        if public_origin.is_none() {
            return Err("PUBLIC_URL is required with SMTP_URL: emails link back to the store at that address".into());
        }
        app::mail::Mailer::new(url.trim(), from).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::MailArgs;

    fn args(url: Option<&str>, from: Option<&str>) -> MailArgs {
        MailArgs { smtp_url: url.map(str::to_string), mail_from: from.map(str::to_string) }
    }

    // The pooled transport starts its janitor task on tokio: built inside a runtime, as the
    // server builds it.
    #[tokio::test]
    async fn mail_is_off_without_a_url_and_needs_a_sender_and_the_public_address_with_one() {
        let origin = Some("https://shop.example");
        assert!(args(None, None).check(None).unwrap().is_none());
        assert!(args(Some(" "), None).check(None).unwrap().is_none());
        assert!(args(Some("smtp://localhost:25"), None).check(origin).unwrap_err().contains("MAIL_FROM"));
        assert!(args(Some("smtp://localhost:25"), Some("a@b.example")).check(None).unwrap_err().contains("PUBLIC_URL"));
        let m = args(Some("smtp://localhost:2525"), Some("Store <a@b.example>")).check(origin).unwrap().unwrap();
        assert_eq!(m.server(), "smtp://localhost:2525");
        assert!(args(Some("ftp://x"), Some("a@b.example")).check(origin).is_err());
    }
}
