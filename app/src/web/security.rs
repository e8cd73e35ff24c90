//! The browser-side security policy of our pages: which scripts, styles, frames and connections
//! a page may use (Content-Security-Policy), written once here and sent by the server with every
//! page, with the nonce Leptos puts on the page's own inline scripts.

/// Where a page's payment scripts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentScripts {
    /// Stripe.js from Stripe, which makes frames on js.stripe.com (the Payment Element) and
    /// hooks.stripe.com (3-D Secure), calls api.stripe.com and shows images from stripe.com.
    Stripe,
    /// The simulator's stand-in, served from our own origin: nothing from elsewhere.
    SameOrigin,
}

/// The page policy. Why each part:
/// - scripts: our own files, inline scripts only with this response's `nonce` (Leptos's
///   hydration and resource scripts carry it), WebAssembly compilation for the islands, and
///   Stripe.js where it is used. An injected `<script>` or `onclick=` never runs.
/// - styles: our stylesheet, and inline styles, because Stripe.js (and so the stand-in that
///   mirrors it) inserts style elements and attributes into the page for the Payment Element.
///   Styles cannot run code; images they name are still limited by `img-src`.
/// - frames: Stripe's only; nothing may frame us (`frame-ancestors 'none'`: clickjacking on a
///   page with a Pay button).
/// - forms post only to us; no `<base>` rewriting; no plugins.
pub fn content_security_policy(nonce: &str, scripts: PaymentScripts) -> String {
    let (script, frame, connect, img) = match scripts {
        PaymentScripts::Stripe => (
            " https://js.stripe.com https://*.js.stripe.com",
            "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
            " https://api.stripe.com",
            " https://*.stripe.com",
        ),
        PaymentScripts::SameOrigin => ("", "'none'", "", ""),
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'{script}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:{img}; connect-src 'self'{connect}; \
         frame-src {frame}; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// For every other response (JSON, CSV, artwork, errors): nothing may load, run or frame it.
/// Should a file we serve ever be opened as a page, it is inert.
pub const INERT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

#[cfg(test)]
mod tests {
    use super::*;

    fn directive<'a>(policy: &'a str, name: &str) -> &'a str {
        policy.split("; ").find(|d| d.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn pages_run_only_their_own_scripts_and_stripes() {
        let p = content_security_policy("abc123", PaymentScripts::Stripe);
        let script = directive(&p, "script-src");
        assert!(script.contains("'nonce-abc123'") && script.contains("https://js.stripe.com"), "{script}");
        assert!(!script.contains("unsafe-inline") && !script.contains("'unsafe-eval'"), "{script}");
        assert!(directive(&p, "frame-src").contains("https://hooks.stripe.com"), "3-D Secure frames");
        assert_eq!(directive(&p, "frame-ancestors"), "frame-ancestors 'none'");
        assert_eq!(directive(&p, "object-src"), "object-src 'none'");

        let sim = content_security_policy("n", PaymentScripts::SameOrigin);
        assert!(!sim.contains("stripe.com"), "the stand-in is same-origin: {sim}");
        assert_eq!(directive(&sim, "frame-src"), "frame-src 'none'");
    }
}
