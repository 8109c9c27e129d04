//! Sessions of partners without an account (issue 16). Opening a one-time
//! link with its code (`referrals::links::open_session`) gives a session
//! scoped to that link's one referral: a random 256-bit token in its own
//! `__Host-` cookie (Secure, HttpOnly, SameSite=Strict), stored only as its
//! SHA-256, with an expiry [`SESSION_MINUTES`] after opening.
//!
//! A session ends — for good, it is never revived — when a request carrying
//! it goes anywhere outside its referral's partner pages, when it expires,
//! or when its referral is withdrawn or closed; all three are checked on
//! every request by [`admit`]. It never grants what a signed-in person's
//! session grants: its cookie has another name, its rows another table, and
//! the only thing it proves is a [`PartnerSession`], which only
//! `authz::capability::Authz::check_partner` accepts, for one referral.
//!
//! Like the rest of `authn`, this knows nothing of HTTP: the web layer says
//! whether a request's path is within the session's scope.

use chrono::{Duration, NaiveDateTime};

use crate::audit::{Actor, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::clock::Clock;
use crate::crypto::{constant_time_eq, hmac_sha256, random_token, sha256_hex};
use crate::db::partner_sessions::{self as table, PartnerSessionRow};
use crate::db::referrals::{self as referral_table, OPEN_STATUSES, ReferralRow};
use crate::db::{DbConnection, DbError, write_transaction};

/// The partner's cookie: not the signed-in session's (`sessions::COOKIE`),
/// so no extractor of a signed-in person ever reads it.
pub const COOKIE: &str = "__Host-caseguard_partner";
/// How long a partner session lives from the opening of its link. A
/// security bound like the sign-in session's timeouts, not a local
/// protocol choice, so it is fixed here rather than configurable.
pub const SESSION_MINUTES: i64 = 30;

/// The `Set-Cookie` value for a new partner session.
pub fn cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_MINUTES * 60
    )
}

/// The `Set-Cookie` value that removes the partner cookie.
pub fn clearing_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The CSRF token of a partner session (derived, under its own label, so
/// it differs from any signed-in session's).
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(hmac_sha256(
        session_token.as_bytes(),
        b"caseguard-partner-csrf-v1",
    ))
}

/// Whether `sent` is the CSRF token of the session of `session_token`.
pub fn csrf_matches(session_token: &str, sent: &str) -> bool {
    constant_time_eq(sent.as_bytes(), csrf_token(session_token).as_bytes())
}

/// A partner session that [`admit`] found live and within its scope for
/// this request. Its fields are private: nothing else can make one.
#[derive(Debug, Clone)]
pub struct PartnerSession {
    id: String,
    link_id: String,
    referral_id: String,
    expires_at: NaiveDateTime,
    csrf: String,
}

impl PartnerSession {
    pub fn link_id(&self) -> &str {
        &self.link_id
    }

    /// The one referral this session may see and answer.
    pub fn referral_id(&self) -> &str {
        &self.referral_id
    }

    pub fn expires_at(&self) -> NaiveDateTime {
        self.expires_at
    }

    /// The CSRF token for this session's forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The actor a partner session acts as: its link, never a user.
pub fn link_actor(link_id: &str, referral: Option<&ReferralRow>) -> Actor {
    Actor {
        user_id: format!("partner_link:{link_id}"),
        org_id: referral.map(|r| r.agency_id.clone()).unwrap_or_default(),
        role: "partner_link".to_owned(),
    }
}

/// Makes the session of a link just opened, in the caller's transaction.
/// Returns the cookie's token (never stored) and the row. The store
/// refuses a second session for the same link.
pub fn create(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    link_id: &str,
    referral_id: &str,
) -> Result<(String, PartnerSessionRow), diesel::result::Error> {
    let token = random_token().map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    let row = PartnerSessionRow {
        id: sha256_hex(token.as_bytes()),
        link_id: link_id.to_owned(),
        referral_id: referral_id.to_owned(),
        created_at: now,
        expires_at: now + Duration::minutes(SESSION_MINUTES),
        ended_at: None,
        ended_reason: None,
    };
    table::insert(conn, &row)?;
    Ok((token, row))
}

/// Why a request with a partner cookie was turned away. The caller answers
/// every one the same way: like a missing resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turned {
    /// No such session, or it had ended before.
    NoSession,
    /// The session ended with this request (its reason is in the audit log).
    EndedNow(&'static str),
}

/// What [`admit`] needs from the service.
pub struct AdmitContext<'a> {
    pub auditor: &'a Auditor,
    pub clock: &'a dyn Clock,
    pub request: &'a RequestContext,
}

/// Admits a request carrying the partner cookie `token`, or turns it away.
/// `in_scope` says whether the request's path is one of the partner pages
/// of the given referral. A session that has expired, whose referral was
/// withdrawn or closed, or that is used outside its scope ends here, in the
/// same transaction as its audit entry.
pub fn admit(
    conn: &mut DbConnection,
    cx: &AdmitContext<'_>,
    token: &str,
    in_scope: impl Fn(&str) -> bool,
) -> Result<Result<PartnerSession, Turned>, DbError> {
    let id = sha256_hex(token.as_bytes());
    write_transaction(conn, |conn| {
        let now = cx.clock.now_naive();
        let Some(row) = table::find(conn, &id)?.filter(|r| r.ended_at.is_none()) else {
            return Ok(Err(Turned::NoSession));
        };
        let referral = referral_table::find(conn, &row.referral_id)?;
        let why = if now >= row.expires_at {
            Some("expired")
        } else {
            match &referral {
                Some(r) if r.status == "withdrawn" => Some("withdrawn"),
                Some(r) if OPEN_STATUSES.contains(&r.status.as_str()) => {
                    (!in_scope(&row.referral_id)).then_some("other_path")
                }
                _ => Some("closed"),
            }
        };
        if let Some(why) = why {
            end(conn, cx, &row, referral.as_ref(), why)?;
            return Ok(Err(Turned::EndedNow(why)));
        }
        Ok(Ok(PartnerSession {
            csrf: csrf_token(token),
            id: row.id,
            link_id: row.link_id,
            referral_id: row.referral_id,
            expires_at: row.expires_at,
        }))
    })
}

/// Ends a session after its partner's closing answer (declined or
/// completed): the work it was opened for is done.
pub fn end_answered(
    conn: &mut DbConnection,
    cx: &AdmitContext<'_>,
    session: &PartnerSession,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        let Some(row) = table::find(conn, &session.id)? else {
            return Ok(());
        };
        let referral = referral_table::find(conn, &row.referral_id)?;
        end(conn, cx, &row, referral.as_ref(), "answered")
    })
}

fn end(
    conn: &mut DbConnection,
    cx: &AdmitContext<'_>,
    row: &PartnerSessionRow,
    referral: Option<&ReferralRow>,
    why: &'static str,
) -> Result<(), DbError> {
    if table::end(conn, &row.id, cx.clock.now_naive(), why)? == 0 {
        return Ok(());
    }
    let event = AuditEvent::new(
        action::PARTNER_SESSION_ENDED,
        if why == "answered" {
            Outcome::Success
        } else {
            Outcome::Denied
        },
    )
    .actor(Some(link_actor(&row.link_id, referral)))
    .request(cx.request)
    .detail("referral_id", row.referral_id.clone())
    .detail("link_id", row.link_id.clone())
    .detail("reason", why);
    let event = match referral {
        Some(referral) => event.target("case", referral.case_id.clone()),
        None => event.target("partner_link", row.link_id.clone()),
    };
    cx.auditor
        .append(conn, cx.clock, &event)
        .map(drop)
        .map_err(|e| DbError::Task(e.to_string()))
}
