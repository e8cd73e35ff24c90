//! Who is signed in. Sessions are tower-sessions records in our database; the session holds only
//! the user id, and the user is loaded on every request, so a removed user or a changed role
//! takes effect at once. Who may call what is checked by `web::access`'s extractors.
use super::error::AppError;
use leptos::prelude::*;

pub use super::session::CurrentUser;

#[cfg(feature = "ssr")]
pub mod server {
    use super::*;
    use crate::services::Services;

    pub use crate::web::session::server::{session, snapshot, SessionSnapshot};

    /// The signed-in user, if any (read as `web::access` reads every caller: once per page).
    pub async fn current_user() -> Result<Option<CurrentUser>, AppError> {
        let svc = crate::web::services()?;
        let me = crate::web::access::caller::<Option<crate::web::access::SignedIn>>(&svc).await?;
        Ok(me.map(|crate::web::access::SignedIn(user)| user))
    }

    /// The client's address, for throttling: the socket peer, or, when that peer is a proxy we
    /// trust (`TRUSTED_PROXIES`, by default loopback and private networks) and the operator
    /// names its header (`CLIENT_IP_HEADER`), the last address that proxy appended. (Earlier
    /// entries of X-Forwarded-For are whatever the client sent, so they prove nothing; and from
    /// a peer that is not our proxy, say a client reaching the app directly, the whole header
    /// is the client's own claim.)
    pub async fn client_address(svc: &Services) -> Option<std::net::IpAddr> {
        use axum::extract::ConnectInfo;
        let peer = leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>().await.ok().map(|ConnectInfo(a)| a.ip());
        let (Some(name), Some(peer)) = (&svc.settings.web.client_ip_header, peer) else {
            return peer;
        };
        let headers = leptos_axum::extract::<axum::http::HeaderMap>().await.unwrap_or_default();
        let values = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok());
        Some(believed_client(peer, values, &svc.settings.web.trusted_proxies))
    }

    /// The client by `peer` and what the (named) header's values say: the header's last entry
    /// when the peer is a trusted proxy and the entry is an address, else the peer. The peer is
    /// taken canonically: on a dual-stack listener an IPv4 peer arrives as `::ffff:a.b.c.d`,
    /// which would match none of the IPv4 networks in `TRUSTED_PROXIES`.
    pub fn believed_client<'a>(
        peer: std::net::IpAddr,
        header_values: impl Iterator<Item = &'a str>,
        trusted: &[ipnet::IpNet],
    ) -> std::net::IpAddr {
        let peer = peer.to_canonical();
        if !trusted.iter().any(|net| net.contains(&peer)) {
            return peer;
        }
        let last = header_values.flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).last();
        last.and_then(parse_address).unwrap_or(peer)
    }

    /// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443`,
    /// `203.0.113.7:443`.
    fn parse_address(s: &str) -> Option<std::net::IpAddr> {
        s.parse().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
    }

    /// The device cookie: a browser that signed in to an account before carries it, signed by
    /// us, and is not held by the account's ceiling on failed sign-ins (`domain::throttle`).
    pub const DEVICE_COOKIE: &str = "revision_store_device";

    /// The device cookie this request carries, if any.
    pub async fn device_cookie() -> Option<String> {
        let headers = leptos_axum::extract::<axum::http::HeaderMap>().await.ok()?;
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == DEVICE_COOKIE)
            .map(|(_, value)| value.to_string())
    }

    /// Gives this browser the account's device cookie (a year; HttpOnly, SameSite=Lax).
    pub fn set_device_cookie(svc: &Services, user_id: i64) {
        let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else { return };
        let secure = if svc.settings.web.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{DEVICE_COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}",
            svc.keys.device_cookie(user_id)
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
            res.append_header(axum::http::header::SET_COOKIE, value);
        }
    }

    /// A path inside this site, or None: `next` must never send a user to another site.
    /// Browsers drop tabs and newlines from URLs (`/\t/evil.example` becomes
    /// `//evil.example`) and read `\` as `/`, so only visible ASCII is accepted.
    pub fn local_path(next: &str) -> Option<&str> {
        let visible = next.bytes().all(|b| b.is_ascii_graphic());
        (visible && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_client_header_is_believed_only_from_a_trusted_proxy() {
            use super::believed_client;
            let trusted = crate::services::sign_in_throttle::parse_networks("127.0.0.0/8,10.0.0.0/8").unwrap();
            let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
            let header = ["9.9.9.9, 203.0.113.7"];
            assert_eq!(believed_client(ip("10.1.2.3"), header.into_iter(), &trusted), ip("203.0.113.7"));
            // A dual-stack listener's view of an IPv4 proxy.
            assert_eq!(believed_client(ip("::ffff:127.0.0.1"), header.into_iter(), &trusted), ip("203.0.113.7"));
            // A client reaching the app directly says what it likes: ignored.
            assert_eq!(believed_client(ip("198.51.100.9"), header.into_iter(), &trusted), ip("198.51.100.9"));
            // Ports and brackets as proxies write them; junk is the proxy itself.
            assert_eq!(believed_client(ip("10.0.0.1"), ["[2001:db8::1]:443"].into_iter(), &trusted), ip("2001:db8::1"));
            assert_eq!(believed_client(ip("10.0.0.1"), ["unknown"].into_iter(), &trusted), ip("10.0.0.1"));
            assert_eq!(believed_client(ip("10.0.0.1"), std::iter::empty(), &trusted), ip("10.0.0.1"));
        }

        #[test]
        fn next_stays_on_this_site() {
            use super::local_path;
            assert_eq!(local_path("/contracts/1?x=1"), Some("/contracts/1?x=1"));
            for bad in
                ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/x", "https://evil.example", "", "/ /x"]
            {
                assert_eq!(local_path(bad), None, "{bad:?}");
            }
        }
    }
}

#[server]
pub async fn get_me() -> Result<Option<CurrentUser>, AppError> {
    server::current_user().await
}

#[server]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::services::accounts::verify_password;
    use crate::store::sign_in_throttle::Keys;
    let svc = crate::web::services()?;
    let address = server::client_address(&svc).await.map(crate::domain::throttle::address_group);
    let user = match crate::domain::users::Email::parse(&email) {
        Ok(e) => crate::store::users::find_by_email(&svc.db, &e)
            .await
            .map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?,
        Err(_) => None,
    };
    // A browser that signed in to this account before is not held by the account's ceiling.
    let device = server::device_cookie().await.and_then(|c| svc.keys.device_user(&c));
    let known_device = user.as_ref().is_some_and(|u| device == Some(u.id));
    let keys = Keys::new(&email, address.as_deref().unwrap_or("unknown"), known_device);
    // Check and count in one step, before the slow password check: every attempt counts as a
    // failure until it succeeds, so parallel guesses cannot all slip past the check. Counted
    // per (email, address), per address and, from unknown browsers, per account
    // (`domain::throttle`).
    match svc.sign_in.attempt(&svc.db, &keys, chrono::Utc::now()).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            return Err(AppError::TooManyAttempts(crate::domain::throttle::minutes(wait) as u64).with_status())
        }
        Err(e) => return Err(AppError::unavailable("Sign-in is not available right now", e)),
    }
    // Verify against a real hash even for an unknown email, so timing does not tell which
    // emails have accounts. argon2 is deliberately slow and large: off the async threads, and
    // only so many at once.
    let Some(turn) = svc.password_hashing.turn().await else {
        return Err(AppError::SlowDown(1).with_status());
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false);
    drop(turn);
    let Some(user) = user.filter(|_| ok) else {
        return Err(AppError::Invalid("That email and password do not match an account.".into()).with_status());
    };
    // Said only after the right password, so it tells a guesser nothing.
    if !user.is_active() {
        return Err(AppError::Invalid("This account is deactivated. Ask the publisher.".into()).with_status());
    }
    if let Err(e) = svc.sign_in.succeeded(&svc.db, &keys).await {
        // The sign-in stands; the address keeps one failure too many until its window ends.
        tracing::warn!(error = %e, "could not take back a successful sign-in's count");
    }
    if !known_device {
        server::set_device_cookie(&svc, user.id);
    }
    let session = server::session().await?;
    // A new session id at sign-in: an id planted before sign-in (session fixation) is worthless.
    session.cycle_id().await.map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?;
    // Stamped with the credential version read together with the hash just verified: were the
    // password reset (or the account deactivated) while this sign-in was verifying, the version
    // has moved on and the session is refused on its first use (`store::sessions`).
    use crate::web::session_keys as keys;
    let now = chrono::Utc::now().timestamp();
    for (key, value) in [
        (keys::USER_KEY, user.id),
        (keys::VERSION_KEY, user.credential_version),
        (keys::SIGNED_IN_KEY, now),
        (keys::TOUCHED_KEY, now),
    ] {
        session.insert(key, value).await.map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?;
    }
    let home = if user.role() == crate::domain::users::Role::Admin { "/admin" } else { "/contracts" };
    leptos_axum::redirect(next.as_deref().and_then(server::local_path).unwrap_or(home));
    Ok(())
}

#[cfg(feature = "ssr")]
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crate::services::accounts::hash_password("not anyone's password"));

#[server]
pub async fn sign_out() -> Result<(), AppError> {
    let session = server::session().await?;
    session.flush().await.map_err(|e| AppError::unavailable("Signing out failed", e))?;
    leptos_axum::redirect("/login");
    Ok(())
}
