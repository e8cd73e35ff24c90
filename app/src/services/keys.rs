//! The server's own keys: one secret per database (`store::server_keys`), from which each use
//! derives its key (HMAC-SHA256 of the secret and the use's name), so a key for one purpose never
//! serves another.
//!
//! - `device`: signs the device cookie a browser gets when it signs in, so a later sign-in from
//!   it is known (`domain::throttle`'s account ceiling does not slow it).
//! - `seal`: ChaCha20-Poly1305 for values parked in a session row that must not be read from it
//!   (a set-password link waiting to be shown to the admin once).
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hmac;

pub struct ServerKeys {
    device: hmac::Key,
    seal: LessSafeKey,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(..)")
    }
}

fn random<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

impl ServerKeys {
    /// The secret's name in `server_keys`.
    const NAME: &'static str = "main";

    pub fn from_secret(secret: &[u8]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive = |purpose: &str| hmac::sign(&master, purpose.as_bytes());
        let seal = UnboundKey::new(&CHACHA20_POLY1305, derive("revision-store seal v1").as_ref())
            .expect("a 32-byte key for ChaCha20-Poly1305");
        Self {
            device: hmac::Key::new(hmac::HMAC_SHA256, derive("revision-store device cookie v1").as_ref()),
            seal: LessSafeKey::new(seal),
        }
    }

    /// Keys that live as long as this value (the command line, which signs nothing a browser
    /// keeps, and tests that never start a server).
    pub fn ephemeral() -> Self {
        Self::from_secret(&random::<32>())
    }

    /// The deployment's keys, made by the first process that asks.
    pub async fn load(db: &crate::store::Db) -> crate::store::StoreResult<Self> {
        let fresh = hex::encode(random::<32>());
        let secret = crate::store::server_keys::get_or_create(db, Self::NAME, &fresh, chrono::Utc::now()).await?;
        let bytes =
            hex::decode(&secret).map_err(|e| crate::store::StoreError::Other(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Self::from_secret(&bytes))
    }

    /// A device cookie's value for a browser that just signed in as `user_id`:
    /// `user.nonce.mac` (hex), the nonce making every browser's cookie its own.
    pub fn device_cookie(&self, user_id: i64) -> String {
        let body = format!("{user_id}.{}", hex::encode(random::<16>()));
        let mac = hmac::sign(&self.device, body.as_bytes());
        format!("{body}.{}", hex::encode(mac.as_ref()))
    }

    /// The user a device cookie was issued to, if we signed it (checked in constant time).
    pub fn device_user(&self, cookie: &str) -> Option<i64> {
        let (body, mac) = cookie.rsplit_once('.')?;
        let mac = hex::decode(mac).ok()?;
        hmac::verify(&self.device, body.as_bytes(), &mac).ok()?;
        body.split_once('.')?.0.parse().ok()
    }

    /// `plain` encrypted and authenticated (hex of nonce ‖ ciphertext ‖ tag); `purpose` is bound
    /// in, so a value sealed for one use cannot be opened as another.
    pub fn seal(&self, purpose: &str, plain: &str) -> String {
        let nonce_bytes = random::<NONCE_LEN>();
        let mut data = plain.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(purpose), &mut data)
            .expect("sealing a short value");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        hex::encode(out)
    }

    /// What `seal` sealed, if it was sealed with this key for this purpose and not altered.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self.seal.open_in_place(nonce, Aad::from(purpose), &mut data).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::ServerKeys;

    #[test]
    fn device_cookies_name_their_user_only_when_signed_here() {
        let keys = ServerKeys::ephemeral();
        let cookie = keys.device_cookie(42);
        assert_eq!(keys.device_user(&cookie), Some(42));
        assert_ne!(cookie, keys.device_cookie(42), "each browser its own");
        assert_eq!(ServerKeys::ephemeral().device_user(&cookie), None, "another key");
        let forged = cookie.replacen("42.", "43.", 1);
        assert_eq!(keys.device_user(&forged), None);
        for junk in ["", "42", "42.ab", "42.ab.zz"] {
            assert_eq!(keys.device_user(junk), None, "{junk}");
        }
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_purpose() {
        let keys = ServerKeys::from_secret(b"a secret");
        let sealed = keys.seal("link", "https://shop.example/password/abc123");
        assert!(!sealed.contains("abc123"));
        assert_eq!(keys.open("link", &sealed).as_deref(), Some("https://shop.example/password/abc123"));
        assert_eq!(
            ServerKeys::from_secret(b"a secret").open("link", &sealed).as_deref(),
            Some("https://shop.example/password/abc123"),
            "same secret, same key"
        );
        assert_eq!(keys.open("other", &sealed), None);
        assert_eq!(ServerKeys::from_secret(b"another").open("link", &sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(keys.open("link", &String::from_utf8(tampered).unwrap()), None);
        assert_eq!(keys.open("link", "zz"), None);
    }
}
