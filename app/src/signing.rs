//! HMAC-SHA256, the scheme almost every webhook sender we verify signs with (Stripe's `v1`,
//! Slack's `v0`, Standard Webhooks, Square): the digest of a message given in parts, and its check
//! in constant time. One helper, so each sender's module says only how it builds the signed
//! message and reads its header. HMAC-SHA1 is here too, for the generic senders that still use it
//! (HMAC-SHA1 is not broken the way SHA-1's collision resistance is; it is still what some send).
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    keyed(key, parts)
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac(key, parts).finalize().into_bytes().into()
}

/// Whether `signature` is the HMAC-SHA256 of the concatenated `parts` under `key`, compared in
/// constant time (`Mac::verify_slice`), so a forger learns nothing from how long a refusal took.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    mac(key, parts).verify_slice(signature).is_ok()
}

/// Whether `signature` is the HMAC-SHA1 of the concatenated `parts` under `key`, in constant time.
pub fn hmac_sha1_matches(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    keyed::<Hmac<Sha1>>(key, parts).verify_slice(signature).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_rfc_4231s_and_only_it_matches() {
        // RFC 4231, test case 2.
        let digest = super::hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(digest), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(super::hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing?"], &digest));
        assert!(!super::hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing!"], &digest));
        assert!(!super::hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing?"], &digest[..31]));
    }

    #[test]
    fn the_sha1_check_accepts_rfc_2202s_digest_only() {
        // RFC 2202, test case 2 (HMAC-SHA1).
        let digest = hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap();
        assert!(super::hmac_sha1_matches(b"Jefe", &[b"what do ya want ", b"for nothing?"], &digest));
        assert!(!super::hmac_sha1_matches(b"Jefe", &[b"what do ya want for nothing!"], &digest));
        assert!(!super::hmac_sha1_matches(b"Jefe", &[b"what do ya want for nothing?"], &digest[..19]));
    }
}
