//! All cryptography, in one small module (STYLE §5).
//!
//! Owns the keyring (which key serves which purpose), the sealed-box format
//! for encrypted columns, random tokens, hashes and MACs, Ed25519 signatures
//! and the JWT crypto backend. Nothing outside `crypto/` touches `ring`.
//! Plaintext secrets come back as [`SecretBytes`], which zeroizes on drop and
//! prints `[redacted]`.
//!
//! This module must never log key material, plaintext or tokens, and never
//! choose an algorithm from its input: every algorithm is fixed here.

pub mod envelope;
pub mod jwt;
pub mod keyring;
pub mod sealed;
pub mod stream;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// A secret byte string: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A 256-bit random token, base64url without padding (43 characters): for
/// session cookies, enrolment links, one-time links.
pub fn random_token() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// SHA-256, hex encoded. For storing high-entropy tokens: a database leak
/// does not reveal a usable session or link.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// HMAC-SHA-256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time equality for secrets of equal length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_never_print() {
        let secret = SecretBytes::new(b"Canary-secret".to_vec());
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(constant_time_eq(&tag, &tag));
        assert!(!constant_time_eq(&tag, &tag[..31]));
    }
}
