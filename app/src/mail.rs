//! Outgoing email over SMTP (lettre): one pooled transport from `SMTP_URL`, a sender from
//! `MAIL_FROM`, and `send`, which says whether a refusal is worth retrying.
//!
//! `SMTP_URL` is lettre's URL form, which carries the TLS mode:
//! - `smtps://user:pass@host` (port 465): TLS from the first byte;
//! - `smtp://user:pass@host?tls=required` (port 587): STARTTLS, refusing a server without it;
//! - `smtp://host?tls=opportunistic`: STARTTLS when offered;
//! - `smtp://host:25` : no TLS, for a relay on the same host or network (and the tests).
use crate::domain::mail::Letter;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP conversation may take before it counts as failed (and is retried).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The server, without credentials: what pages and logs may say.
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

/// Why a message was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// The server refused it for good (a 5xx: no such mailbox, say): retrying cannot help.
    pub permanent: bool,
    /// The server's whole answer, for the outbox row an admin reads: it may quote the address.
    pub message: String,
    /// The SMTP reply code alone (`550`), or a word for a failure before any reply (`connection`):
    /// what a log line may carry, since a server's words often repeat the recipient's address.
    pub code: String,
}

impl Mailer {
    /// From `SMTP_URL` and `MAIL_FROM` (`Revision Store <billing@example.com>` or a bare address).
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let from: Mailbox = from.trim().parse().map_err(|e| format!("MAIL_FROM `{from}` is not an address: {e}"))?;
        let parsed = url::Url::parse(url).map_err(|e| format!("SMTP_URL is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err(format!("SMTP_URL must start smtp:// or smtps://, not {}://", parsed.scheme()));
        }
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or("SMTP_URL names no host")?;
        let server = match parsed.port() {
            Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
            None => format!("{}://{host}", parsed.scheme()),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        Ok(Self { transport, from, server })
    }

    /// The server mail goes to, without credentials.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn from_address(&self) -> String {
        self.from.to_string()
    }

    /// Sends `letter` to `to` as plain text with an HTML alternative.
    pub async fn send(&self, to: &str, letter: &Letter) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(|e| SendError {
            permanent: true,
            message: format!("not an address we can send to: {e}"),
            code: "address".into(),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .multipart(MultiPart::alternative_plain_html(letter.text.clone(), letter.html.clone()))
            .map_err(|e| SendError {
                permanent: true,
                message: format!("the message could not be built: {e}"),
                code: "message".into(),
            })?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| SendError {
            permanent: e.is_permanent(),
            // lettre's words name the server's answer; never the message or its addresses.
            message: format!("{} refused or failed: {e}", self.server),
            code: e
                .status()
                .map_or_else(|| if e.is_timeout() { "timeout".into() } else { "connection".into() }, |c| c.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Mailer;

    // The pooled transport starts its janitor task on tokio: built inside a runtime, as the
    // server builds it.
    #[tokio::test]
    async fn settings_are_checked_and_credentials_never_shown() {
        let m =
            Mailer::new("smtps://user:secret@mail.example.com:465", "Revision Store <billing@example.com>").unwrap();
        assert_eq!(m.server(), "smtps://mail.example.com:465");
        assert!(!format!("{m:?}").contains("secret"));
        assert!(Mailer::new("smtp://mail.example.com?tls=required", "billing@example.com").is_ok());
        assert!(Mailer::new("http://mail.example.com", "billing@example.com").unwrap_err().contains("smtp://"));
        assert!(Mailer::new("smtp://mail.example.com", "not an address").unwrap_err().contains("MAIL_FROM"));
        assert!(Mailer::new("mail.example.com", "billing@example.com").unwrap_err().contains("SMTP_URL"));
    }
}
