//! What the SMTP test server (`.ci/with-smtp`: aiosmtpd on loopback) received: each message it
//! accepted is a file in `TEST_SMTP_DIR`, parsed here with its MIME parts decoded. Tests send to
//! addresses of their own (`unique()`), so they read only their own mail however many run at once.
use std::path::PathBuf;
use std::time::Duration;

/// The SMTP server's URL, for `SMTP_URL`.
pub fn smtp_url() -> String {
    std::env::var("TEST_SMTP_URL").expect(
        "TEST_SMTP_URL is not set: run the tests with `make test` (or .ci/with-smtp), which starts an SMTP test server",
    )
}

fn folder() -> PathBuf {
    std::env::var("TEST_SMTP_DIR")
        .expect("TEST_SMTP_DIR is not set: run the tests with `make test` (or .ci/with-smtp)")
        .into()
}

/// The settings' mailer pointed at the test server, with the public address emails link to.
pub fn with_mail(s: &mut server::config::Settings) {
    s.web.public_origin = Some("https://shop.example".into());
    s.mail = Some(app::mail::Mailer::new(&smtp_url(), "Revision Store <store@shop.example>").unwrap());
}

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every message received so far for `to`, oldest first.
pub fn received_by(to: &str) -> Vec<Received> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder())
        .expect("the SMTP test server's folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).ok()?;
            let head = String::from_utf8_lossy(&raw[..raw.iter().position(|&b| b == b'\n').unwrap_or(0)]).to_string();
            let envelope = head.trim_start_matches("X-Envelope-To:").trim().to_ascii_lowercase();
            envelope.split(", ").any(|a| a == to.to_ascii_lowercase()).then(|| parse(&raw))
        })
        .collect()
}

fn parse(raw: &[u8]) -> Received {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(raw).expect("a message the SMTP server accepted parses");
    let part = |mime: &str| {
        mail.subparts
            .iter()
            .chain(std::iter::once(&mail))
            .find(|p| p.ctype.mimetype == mime)
            .map(|p| p.get_body().expect("a decodable part"))
            .unwrap_or_default()
    };
    Received {
        to: mail.headers.get_first_value("To").unwrap_or_default(),
        from: mail.headers.get_first_value("From").unwrap_or_default(),
        subject: mail.headers.get_first_value("Subject").unwrap_or_default(),
        text: part("text/plain"),
        html: part("text/html"),
    }
}

/// Waits until `to` has received `n` messages or more; all of them (panics after `within`).
pub async fn wait_for(to: &str, n: usize, within: Duration) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = received_by(to);
        if got.len() >= n {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{to} received {} messages, not {n}: {got:#?}", got.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
