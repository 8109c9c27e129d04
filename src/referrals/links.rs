//! One-time links for partners without an account (DESIGN §3): bound to one
//! referral, short-lived, single-use, revocable. The link goes by e-mail; a
//! separate code goes by another channel (the focal point reads it out on
//! the phone or sends it by SMS), and the link opens only with both.
//! Opening it counts as acknowledgement; every opening and every refusal is
//! audited. On the page it opens a partner session scoped to the referral
//! ([`open_session`], `authn::partner`: one code, one session); through the
//! API it gives one profile-trimmed reading ([`open`]).
//!
//! Only hashes are stored: the token's and the code's (salted with the
//! link's id). The 256-bit token is what protects the link; the code
//! protects it from whoever else reads the e-mail.

use chrono::{Duration, NaiveDateTime};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::view::{self, Via};
use super::{clocks, notices};
use crate::audit::{AuditEvent, Outcome, RequestContext, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::{CaseContext, CaseError, FieldError, case_event};
use crate::crypto::{random_bytes, random_token, sha256_hex};
use crate::db::cases::{self as case_table, ChronologyRow};
use crate::db::referrals::{self as table, OPEN_STATUSES, PartnerLinkRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::user::EmailAddress;

/// How long a link lives.
pub const LINK_HOURS: i64 = 72;
/// Wrong codes before a link is revoked.
pub const MAX_FAILED_CODES: i32 = 5;

/// A link just made: the code is shown once, to be passed on by phone.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: String,
    pub code: String,
    pub expires_at: NaiveDateTime,
}

fn code_hash(link_id: &str, code: &str) -> String {
    sha256_hex(format!("{link_id}:{code}").as_bytes())
}

/// Makes a link for `recipient` and puts the e-mail in the outbox.
pub fn create(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
    recipient: &str,
) -> Result<NewLink, CaseError> {
    if !by.allows_referral(Action::ReferralManage, referral_id) {
        return Err(CaseError::NotFound);
    }
    // The same parser as the outbox's: an address it would refuse must be
    // refused here, as bad input, not fail later inside the transaction.
    let recipient = EmailAddress::parse(recipient).map_err(|_| {
        CaseError::Invalid(vec![FieldError::new("email", "is not an e-mail address")])
    })?;
    let recipient = recipient.as_str();
    let token = random_token()
        .map_err(|_| CaseError::Db(crate::db::DbError::Task("no randomness".into())))?;
    let number = random_bytes::<4>()
        .map(u32::from_be_bytes)
        .map_err(|_| CaseError::Db(crate::db::DbError::Task("no randomness".into())))?;
    let code = format!("{:08}", number % 100_000_000);
    write_transaction(conn, |conn| {
        let referral = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        if !OPEN_STATUSES.contains(&referral.status.as_str()) {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "referral",
                format!("is {}; links are only for open referrals", referral.status),
            )]));
        }
        let now = context.clock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        let row = PartnerLinkRow {
            code_hash: code_hash(&id, &code),
            id,
            referral_id: referral.id.clone(),
            token_hash: sha256_hex(token.as_bytes()),
            recipient: recipient.to_owned(),
            failed_codes: 0,
            created_by: by.author(),
            created_at: now,
            expires_at: now + Duration::hours(LINK_HOURS),
            opened_at: None,
            revoked_at: None,
        };
        table::insert_link(conn, &row)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::PARTNER_LINK_CREATED, referral.case_id.clone())
                .detail("referral_id", referral.id.clone())
                .detail("link_id", row.id.clone()),
        )?;
        notices::partner_link(conn, context, &row.id, recipient, &token, row.expires_at)?;
        Ok(NewLink {
            id: row.id,
            code: code.clone(),
            expires_at: row.expires_at,
        })
    })
}

/// Revokes a link of a referral.
pub fn revoke(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
    link_id: &str,
) -> Result<(), CaseError> {
    if !by.allows_referral(Action::ReferralManage, referral_id) {
        return Err(CaseError::NotFound);
    }
    write_transaction(conn, |conn| {
        let referral = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        let now = context.clock.now_naive();
        if table::revoke_links(conn, referral_id, Some(link_id), now)? == 0 {
            return Err(CaseError::NotFound);
        }
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::PARTNER_LINK_REVOKED, referral.case_id)
                .detail("referral_id", referral_id.to_owned())
                .detail("link_id", link_id.to_owned()),
        )?;
        Ok(())
    })
}

/// Why a link did not open, for the audit log. Towards the caller both
/// answer alike (`web::api::referrals::link_refused`): a wrong code must not
/// tell that the token is real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired, used, revoked or its referral closed.
    NotValid,
    /// The code does not match (the link stays usable until too many).
    WrongCode,
}

/// Opens a link with its code: single use; acknowledges the referral.
/// Returns the profile-trimmed view (the API's one reading).
pub fn open(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    request: &RequestContext,
    token: &str,
    code: &str,
) -> Result<Result<Value, Refusal>, CaseError> {
    write_transaction(conn, |conn| {
        let (link, referral) = match consume(conn, context, request, token, code)? {
            Ok(opened) => opened,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(Ok(view::trimmed(
            conn,
            context,
            &referral,
            &Via::PartnerLink(&link.id),
        )?))
    })
}

/// A partner session just opened: its cookie's token (shown once, never
/// stored), the referral it is for and when it ends.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub token: String,
    pub referral_id: String,
    pub expires_at: NaiveDateTime,
}

/// Opens a link with its code like [`open`], and instead of one reading
/// gives a partner session scoped to the referral (`authn::partner`): the
/// one-time code opens one session, once.
pub fn open_session(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    request: &RequestContext,
    token: &str,
    code: &str,
) -> Result<Result<OpenedSession, Refusal>, CaseError> {
    write_transaction(conn, |conn| {
        let (link, referral) = match consume(conn, context, request, token, code)? {
            Ok(opened) => opened,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let now = context.clock.now_naive();
        let (session_token, row) =
            crate::authn::partner::create(conn, now, &link.id, &referral.id)?;
        context.auditor.append(
            conn,
            context.clock,
            &AuditEvent::new(action::PARTNER_SESSION_OPENED, Outcome::Success)
                .actor(Some(crate::authn::partner::link_actor(
                    &link.id,
                    Some(&referral),
                )))
                .request(request)
                .target("case", referral.case_id.clone())
                .detail("referral_id", referral.id.clone())
                .detail("link_id", link.id.clone()),
        )?;
        Ok(Ok(OpenedSession {
            token: session_token,
            referral_id: referral.id,
            expires_at: row.expires_at,
        }))
    })
}

/// The shared step of both openings, in the caller's transaction: checks
/// the link and its code, marks it used, acknowledges a sent referral.
fn consume(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    request: &RequestContext,
    token: &str,
    code: &str,
) -> Result<Result<(PartnerLinkRow, table::ReferralRow), Refusal>, CaseError> {
    let token_hash = sha256_hex(token.as_bytes());
    let now = context.clock.now_naive();
    let refuse = |conn: &mut DbConnection, link_id: &str, why: &'static str| {
        context.auditor.append(
            conn,
            context.clock,
            &AuditEvent::new(action::PARTNER_LINK_REFUSED, Outcome::Denied)
                .request(request)
                .target("partner_link", link_id.to_owned())
                .detail("reason", why),
        )
    };
    let Some(link) = table::link_by_token(conn, &token_hash)? else {
        // The same work as checking a real link's code, so that an unknown
        // token takes about as long as a wrong code (the answer is the same).
        let dummy = code_hash("00000000-0000-0000-0000-000000000000", code.trim());
        let _ = dummy.as_bytes().ct_eq(token_hash.as_bytes());
        refuse(conn, "unknown", "unknown")?;
        return Ok(Err(Refusal::NotValid));
    };
    let referral = table::find(conn, &link.referral_id)?.ok_or(CaseError::NotFound)?;
    let why = if link.revoked_at.is_some() {
        Some("revoked")
    } else if link.opened_at.is_some() {
        Some("already_opened")
    } else if link.expires_at <= now {
        Some("expired")
    } else if !OPEN_STATUSES.contains(&referral.status.as_str()) {
        Some("referral_closed")
    } else {
        None
    };
    if let Some(why) = why {
        refuse(conn, &link.id, why)?;
        return Ok(Err(Refusal::NotValid));
    }
    let matches: bool = code_hash(&link.id, code.trim())
        .as_bytes()
        .ct_eq(link.code_hash.as_bytes())
        .into();
    if !matches {
        table::link_failed_code(conn, &link.id)?;
        if link.failed_codes + 1 >= MAX_FAILED_CODES {
            table::revoke_links(conn, &referral.id, Some(&link.id), now)?;
        }
        refuse(conn, &link.id, "wrong_code")?;
        return Ok(Err(Refusal::WrongCode));
    }
    if table::open_link(conn, &link.id, now)? == 0 {
        refuse(conn, &link.id, "already_opened")?;
        return Ok(Err(Refusal::NotValid));
    }
    if referral.status == "sent" {
        table::set_status(
            conn,
            &referral.id,
            referral.version,
            "acknowledged",
            now,
            true,
            false,
            false,
        )?;
        clocks::on_acknowledged(conn, &referral.id, &referral.case_id, "acknowledged", now)?;
        case_table::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: referral.case_id.clone(),
                kind: format!("referral:{}:acknowledged", referral.agency_type),
                from_status: Some("sent".into()),
                to_status: Some("acknowledged".into()),
                note_enc: None,
                author_id: format!("partner_link:{}", link.id),
                created_at: now,
            },
        )?;
    }
    context.auditor.append(
        conn,
        context.clock,
        &AuditEvent::new(action::PARTNER_LINK_OPENED, Outcome::Success)
            .request(request)
            .target("case", referral.case_id.clone())
            .detail("referral_id", referral.id.clone())
            .detail("link_id", link.id.clone()),
    )?;
    let referral = table::find(conn, &referral.id)?.ok_or(CaseError::NotFound)?;
    if referral.status == "acknowledged" && referral.acknowledged_at == Some(now) {
        notices::referral_answered(conn, context, &referral, &format!("v{}", referral.version))?;
    }
    Ok(Ok((link, referral)))
}
