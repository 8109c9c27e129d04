//! API access tokens: short-lived EdDSA JWTs (ASVS 9.1, 9.2).
//!
//! Signature, algorithm (EdDSA only), `typ`, `kid` (our keyring only),
//! `iss` and `aud` are checked by `crypto::jwt`; `exp` and `nbf` are checked
//! here against the injected clock with 30 s of leeway; revocation (per-user
//! not-before, per-token id) and account state are checked against the
//! database by the caller extractor.

use std::collections::HashSet;

use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};

use super::{AUDIENCE, Authn};
use crate::clock::Clock;
use crate::crypto::jwt::ALGORITHM;
use crate::db::users::UserRow;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub org: String,
    pub role: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Issue time in microseconds, compared with the account's not-before.
    pub iat_us: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token could not be signed")]
    Signing,
}

/// Signs a token for `user`; returns it with its lifetime in seconds.
pub fn issue(
    authn: &Authn,
    clock: &dyn Clock,
    user: &UserRow,
) -> Result<(String, AccessClaims), TokenError> {
    let now = clock.now();
    let claims = AccessClaims {
        iss: authn.issuer.clone(),
        aud: AUDIENCE.to_owned(),
        sub: user.id.clone(),
        org: user.org_id.clone(),
        role: user.role.clone(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: (now + authn.token_lifetime).timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat_us: now.timestamp_micros(),
    };
    let token = authn
        .tokens
        .sign(&claims)
        .map_err(|_| TokenError::Signing)?;
    Ok((token, claims))
}

fn validation(authn: &Authn) -> Validation {
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[authn.issuer.as_str()]);
    validation.set_audience(&[AUDIENCE]);
    validation.required_spec_claims = ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .map(str::to_owned)
        .collect::<HashSet<_>>();
    // Time is checked below against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation
}

/// Checks everything that needs no database.
pub fn verify(authn: &Authn, clock: &dyn Clock, token: &str) -> Result<AccessClaims, TokenError> {
    if token.len() > 4096 {
        return Err(TokenError::Invalid);
    }
    let claims: AccessClaims = authn
        .tokens
        .verify(token, &validation(authn))
        .map_err(|_| TokenError::Invalid)?;
    let now = clock.now().timestamp();
    if now > claims.exp + LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if now + LEEWAY_SECS < claims.nbf {
        return Err(TokenError::NotYetValid);
    }
    if claims.exp - claims.iat > authn.token_lifetime.num_seconds() {
        return Err(TokenError::Invalid);
    }
    Ok(claims)
}
