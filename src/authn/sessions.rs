//! Browser sessions (ASVS 7): a random 256-bit token in a `__Host-` cookie
//! (Secure, HttpOnly, SameSite=Strict), stored only as its SHA-256; idle and
//! absolute timeouts; a new session at every sign-in, which ends the
//! account's older sessions; CSRF tokens derived from the session token.

use chrono::NaiveDateTime;

use super::Authn;
use crate::crypto::{hmac_sha256, random_token, sha256_hex};
use crate::db::DbConnection;
use crate::db::users::{self, SessionRow, UserRow};

/// The session cookie. `__Host-` binds it to this host, path `/`, Secure.
pub const COOKIE: &str = "__Host-caseguard_session";
/// The header state-changing requests carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How stale `last_seen_at` may get before a request refreshes it.
const TOUCH_AFTER_SECS: i64 = 30;

/// A new session for `user`, written in the caller's transaction. Returns
/// the cookie token (shown once, never stored) and the row.
pub fn create(
    conn: &mut DbConnection,
    authn: &Authn,
    now: NaiveDateTime,
    user: &UserRow,
) -> Result<(String, SessionRow), diesel::result::Error> {
    let token = random_token().map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    // One browser session per account: signing in again ends the older
    // ones (a session left on another machine, or stolen, stops here).
    users::revoke_sessions_of(conn, &user.id, now)?;
    let row = SessionRow {
        id: sha256_hex(token.as_bytes()),
        user_id: user.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + authn.absolute_timeout,
        mfa_verified: true,
        revoked_at: None,
    };
    users::insert_session(conn, &row)?;
    Ok((token, row))
}

/// The CSRF token of a session (synchroniser token, derived so nothing more
/// is stored).
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(hmac_sha256(session_token.as_bytes(), b"caseguard-csrf-v1"))
}

/// The `Set-Cookie` value for a new session.
/// A session cookie (no `Max-Age`, no `Expires`): the browser forgets it
/// when it closes; the server's idle and absolute timeouts end it anyway.
pub fn cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Why a session is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionProblem {
    Unknown,
    Revoked,
    Expired,
    Idle,
}

/// Checks a session against the timeouts; refreshes `last_seen_at`.
pub fn check(
    conn: &mut DbConnection,
    authn: &Authn,
    now: NaiveDateTime,
    token: &str,
) -> Result<Result<SessionRow, SessionProblem>, diesel::result::Error> {
    let Some(session) = users::find_session(conn, &sha256_hex(token.as_bytes()))? else {
        return Ok(Err(SessionProblem::Unknown));
    };
    if session.revoked_at.is_some() {
        return Ok(Err(SessionProblem::Revoked));
    }
    if now >= session.expires_at {
        return Ok(Err(SessionProblem::Expired));
    }
    if now - session.last_seen_at >= authn.idle_timeout {
        return Ok(Err(SessionProblem::Idle));
    }
    if (now - session.last_seen_at).num_seconds() >= TOUCH_AFTER_SECS {
        users::touch_session(conn, &session.id, now)?;
    }
    Ok(Ok(session))
}
