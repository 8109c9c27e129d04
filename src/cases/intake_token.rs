//! The intake form's single-use token (issue 16): without script, a form
//! sent twice — a double tap on a slow phone, a reload — must still make one
//! case. Every intake form the server shows carries a fresh random token;
//! only its SHA-256 is stored, bound to the session shown the form, with an
//! expiry. Recording the case consumes it in the same transaction, and the
//! token then names that case: a replay answers with the case already made.
//! The API keeps its `Idempotency-Key` (see [`super::create`]).
//!
//! Must never: make a case for a token that is unknown, expired, consumed or
//! another session's, or keep the token itself.

use chrono::{Duration, NaiveDateTime};

use super::{CaseContext, CaseError, CaseInput, Created, insert_new};
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::{random_token, sha256_hex};
use crate::db::intake_tokens::{self as table, IntakeTokenRow};
use crate::db::{DbConnection, DbError, cases as case_table, write_transaction};

/// How long an intake form may stay open before it must be sent again.
pub const INTAKE_TOKEN_HOURS: i64 = 12;

/// A token as the form sent it back: 43 base64url characters, or nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct IntakeToken(String);

impl std::fmt::Debug for IntakeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntakeToken([redacted])")
    }
}

impl IntakeToken {
    /// The token, or `None` when `raw` cannot be one the server issued.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(raw.to_owned()))
    }

    /// The token, for the form's hidden field.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

/// Issues a token for one intake form shown to `session_id` (and drops the
/// person's expired ones).
pub fn issue(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    session_id: &str,
    user_id: &str,
) -> Result<IntakeToken, DbError> {
    let token = IntakeToken(
        random_token()
            .map_err(|e| DbError::Query(diesel::result::Error::QueryBuilderError(e.into())))?,
    );
    let now = clock.now_naive();
    write_transaction(conn, |conn| {
        table::purge_expired(conn, user_id, now)?;
        table::insert(
            conn,
            &IntakeTokenRow {
                token_hash: token.hash(),
                session_id: session_id.to_owned(),
                user_id: user_id.to_owned(),
                issued_at: now,
                expires_at: now + Duration::hours(INTAKE_TOKEN_HOURS),
                consumed_at: None,
                case_id: None,
            },
        )
    })
    .map_err(DbError::Query)?;
    Ok(token)
}

/// Records the case of an intake form, consuming its token, all in the
/// caller's transaction (or one of its own). A token this session already
/// used answers with the case it made (`replayed`); an unknown, expired or
/// other session's token is [`CaseError::FormExpired`] and changes nothing.
pub fn create_from_form(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    session_id: &str,
    token: &IntakeToken,
    input: &CaseInput,
) -> Result<Created, CaseError> {
    let hash = token.hash();
    let now: NaiveDateTime = context.clock.now_naive();
    write_transaction(conn, |conn| {
        if !table::claim(conn, &hash, session_id, now)? {
            return replay(conn, &hash, session_id);
        }
        let created = insert_new(
            conn,
            context,
            by,
            input,
            &by.author(),
            None,
            &input.fingerprint(),
        )?;
        table::set_case(conn, &hash, &created.case.id)?;
        Ok(created)
    })
}

/// The answer to a token that could not be claimed.
fn replay(conn: &mut DbConnection, hash: &str, session_id: &str) -> Result<Created, CaseError> {
    let row = table::find(conn, hash)?;
    match row {
        Some(IntakeTokenRow {
            session_id: issued_to,
            case_id: Some(case_id),
            ..
        }) if issued_to == session_id => {
            let case = case_table::find(conn, &case_id)?.ok_or(CaseError::NotFound)?;
            Ok(Created {
                case,
                replayed: true,
                open_cases_for_pupil: Vec::new(),
            })
        }
        _ => Err(CaseError::FormExpired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_of_the_issued_shape_parses_and_debug_hides_it() {
        let token = "a".repeat(43);
        assert!(IntakeToken::parse(&token).is_some());
        assert!(IntakeToken::parse(&"a".repeat(42)).is_none());
        assert!(IntakeToken::parse(&format!("{}=", "a".repeat(42))).is_none());
        assert!(IntakeToken::parse("").is_none());
        let shown = format!("{:?}", IntakeToken::parse(&token).unwrap());
        assert!(!shown.contains(&token));
    }
}
