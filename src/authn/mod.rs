//! Who is calling (DESIGN §4, ASVS 6 and 7).
//!
//! Owns accounts and credentials (argon2id passwords, TOTP, recovery codes),
//! sign-in with throttling and lockout, browser sessions with CSRF
//! protection, and API access tokens. Handlers learn who is calling from the
//! [`caller::Caller`] extractor; what that caller may do is decided in
//! `authz/`.
//!
//! Must never: log or return a password, code, token or email; tell an
//! unknown account from a wrong password; accept a token or session after
//! logout, disable or "log out everywhere".

pub mod accounts;
pub mod caller;
pub mod enrolment;
pub mod login;
pub mod partner;
pub mod password;
pub mod sessions;
pub mod tokens;
pub mod totp;

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;
use crate::crypto::jwt::TokenKeys;
use crate::crypto::keyring::Keyring;
use password::{HashError, PasswordHasher};

/// Authentication services and settings shared by handlers.
pub struct Authn {
    pub hasher: PasswordHasher,
    pub tokens: TokenKeys,
    /// `iss` of access tokens: the public URL.
    pub issuer: String,
    pub idle_timeout: chrono::Duration,
    pub absolute_timeout: chrono::Duration,
    pub token_lifetime: chrono::Duration,
    pub lock_after: i32,
    login_limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for Authn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authn")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// `aud` of access tokens.
pub const AUDIENCE: &str = "caseguard-api";

fn duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Authn {
    pub fn new(settings: &Settings, keyring: &Keyring) -> Result<Self, String> {
        let per_minute =
            NonZeroU32::new(settings.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            hasher: PasswordHasher::new(settings.password_hash_concurrency, 64)
                .map_err(|e: HashError| e.to_string())?,
            tokens: TokenKeys::from_keyring(keyring).map_err(|e| e.to_string())?,
            issuer: settings
                .public_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            idle_timeout: duration(settings.session_idle_timeout),
            absolute_timeout: duration(settings.session_absolute_timeout),
            token_lifetime: duration(settings.access_token_lifetime),
            lock_after: i32::try_from(settings.login_lock_after).unwrap_or(i32::MAX),
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        })
    }

    /// Counts a sign-in attempt from `ip`; false when over the limit.
    pub fn allow_login_attempt(&self, ip: IpAddr) -> bool {
        self.login_limiter.check_key(&ip).is_ok()
    }
}
