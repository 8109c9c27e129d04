//! Links that reach only the person (issue 21 item 2).
//!
//! When an administrator creates an account, resets its second factor or
//! asks for a new password (web page or API), the one-time link goes by
//! e-mail through the outbox to the account's own address; the
//! administrator's answer says that it was sent and until when, never the
//! link or a secret. In the same transaction a content-free notice goes to
//! the organisation's other case-reading accounts (focal points of a school,
//! officers of an agency) — or, when there are none yet, to the auditors of
//! the nearest area above — so an account made or re-enrolled for someone
//! else's use is seen by people who can object. Each step is audited.
//!
//! The operator's command line (`caseguard user ...`) keeps printing what
//! it prints: the operator holds the host, its keyring and its database.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};

use super::accounts::{self, AccountError, ENROLMENT_VALIDITY_HOURS, NewAccount};
use crate::audit::{AuditEvent, Auditor, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::keyring::Keyring;
use crate::crypto::{random_token, sha256_hex};
use crate::db::users::{self, UserRow};
use crate::db::{DbConnection, organisations, referrals, write_transaction};
use crate::domain::user::Role;
use crate::notify::{self, Language, Message, Template};

/// Why a link was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// A new account's activation.
    Created,
    /// A new second factor (and password): the account is set up again.
    SecondFactorReset,
    /// A new password; the second factor stays (a code from it is asked).
    PasswordReset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::SecondFactorReset => "mfa_reset",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// What the administrator learns: the link went to the person, until when,
/// and how many others were told. Never the link.
#[derive(Debug, Clone)]
pub struct LinkSent {
    pub user_id: String,
    pub valid_until: NaiveDateTime,
    /// How many notices went to the organisation's other accounts (or the
    /// area's auditors).
    pub notified: usize,
}

fn crypto(error: impl std::fmt::Display) -> AccountError {
    AccountError::Crypto(error.to_string())
}

fn language_of(user: &UserRow) -> Language {
    Language::parse(&user.language).unwrap_or(Language::Vi)
}

/// The link's e-mail to the account's own address.
fn mail_link(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    public_url: &str,
    user: &UserRow,
    token: &str,
    valid_until: NaiveDateTime,
    purpose: LinkPurpose,
) -> Result<(), AccountError> {
    let template = match purpose {
        LinkPurpose::PasswordReset => Template::PasswordReset,
        LinkPurpose::Created | LinkPurpose::SecondFactorReset => Template::AccountEnrolment,
    };
    let token_ref = sha256_hex(token.as_bytes());
    let key = format!(
        "account:{}:{}:{}",
        user.id,
        purpose.as_str(),
        token_ref.get(..16).unwrap_or(&token_ref)
    );
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            format!("{}/enrol/{token}", public_url.trim_end_matches('/')),
        ),
        ("valid_until".to_owned(), valid_until.and_utc().to_rfc3339()),
    ]);
    let message =
        Message::new(&key, &user.email, language_of(user), template, params).map_err(crypto)?;
    notify::enqueue(conn, clock, &message).map_err(crypto)?;
    Ok(())
}

/// Who is told that an account of their organisation was added or reset:
/// its other active accounts that read pupils' records (focal points of a
/// school, officers of an agency), else the auditors of the nearest area
/// above that has any. (id, e-mail, language).
fn watchers(
    conn: &mut DbConnection,
    user: &UserRow,
) -> Result<Vec<(String, String, String)>, AccountError> {
    let mut found: Vec<_> = [Role::FocalPoint, Role::AgencyOfficer]
        .iter()
        .map(|role| referrals::recipients(conn, &user.org_id, role.as_str()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .filter(|(id, _, _)| *id != user.id)
        .collect();
    let mut next = organisations::find(conn, &user.org_id)?.and_then(|o| o.parent_id);
    while found.is_empty() {
        let Some(area_id) = next else { break };
        found = referrals::recipients(conn, &area_id, Role::Auditor.as_str())?
            .into_iter()
            .filter(|(id, _, _)| *id != user.id)
            .collect();
        next = organisations::find(conn, &area_id)?.and_then(|o| o.parent_id);
    }
    Ok(found)
}

/// The content-free notices to the organisation's watchers.
fn notify_watchers(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    public_url: &str,
    user: &UserRow,
    event: &str,
) -> Result<usize, AccountError> {
    let link = format!("{}/login", public_url.trim_end_matches('/'));
    let mut sent = 0;
    for (id, email, language) in watchers(conn, user)? {
        let message = Message::new(
            &format!("account-notice:{event}:{id}"),
            &email,
            Language::parse(&language).unwrap_or(Language::Vi),
            Template::AccountNotice,
            BTreeMap::from([("link".to_owned(), link.clone())]),
        )
        .map_err(crypto)?;
        if notify::enqueue(conn, clock, &message).map_err(crypto)? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Mails the link, tells the watchers and audits it, inside the caller's
/// transaction.
#[allow(clippy::too_many_arguments)]
fn send(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    public_url: &str,
    user: &UserRow,
    token: &str,
    valid_until: NaiveDateTime,
    purpose: LinkPurpose,
    by: &Capability,
) -> Result<LinkSent, AccountError> {
    mail_link(conn, clock, public_url, user, token, valid_until, purpose)?;
    let event = uuid::Uuid::now_v7().simple().to_string();
    let notified = notify_watchers(conn, clock, public_url, user, &event)?;
    auditor.append(
        conn,
        clock,
        &AuditEvent::new(action::ENROLMENT_SENT, Outcome::Success)
            .actor(by.actor())
            .request(by.request())
            .target("user", user.id.clone())
            .detail("purpose", purpose.as_str())
            .detail("to", "account_email")
            .detail("notified", notified.to_string()),
    )?;
    Ok(LinkSent {
        user_id: user.id.clone(),
        valid_until,
        notified,
    })
}

/// A fresh one-time link on the account's credential (replacing any
/// earlier one): its token, and until when it is valid.
fn new_link(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    user_id: &str,
) -> Result<(String, NaiveDateTime), AccountError> {
    let mut credential = users::credential(conn, user_id)?.ok_or(AccountError::NotFound)?;
    let token = random_token().map_err(crypto)?;
    let now = clock.now_naive();
    let valid_until = now + Duration::hours(ENROLMENT_VALIDITY_HOURS);
    credential.enrolment_token_hash = Some(sha256_hex(token.as_bytes()));
    credential.enrolment_expires_at = Some(valid_until);
    credential.updated_at = now;
    users::save_credential(conn, &credential)?;
    Ok((token, valid_until))
}

fn active_user(conn: &mut DbConnection, user_id: &str) -> Result<UserRow, AccountError> {
    let user = users::find(conn, user_id)?.ok_or(AccountError::NotFound)?;
    if user.disabled_at.is_some() {
        return Err(AccountError::Disabled);
    }
    Ok(user)
}

/// Creates an account (always with an activation link, never a password)
/// and mails the link to the person.
pub fn create_and_send(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    public_url: &str,
    account: NewAccount,
    by: &Capability,
) -> Result<LinkSent, AccountError> {
    let account = NewAccount {
        password_hash: None,
        totp_secret: None,
        ..account
    };
    write_transaction(conn, |conn| {
        let created = accounts::create(conn, keyring, auditor, clock, account, by)?;
        let token = created
            .enrolment_token
            .ok_or_else(|| crypto("no enrolment link"))?;
        let user = users::find(conn, &created.user_id)?.ok_or(AccountError::NotFound)?;
        let valid_until = users::credential(conn, &user.id)?
            .and_then(|c| c.enrolment_expires_at)
            .ok_or(AccountError::NotFound)?;
        send(
            conn,
            auditor,
            clock,
            public_url,
            &user,
            &token,
            valid_until,
            LinkPurpose::Created,
            by,
        )
    })
}

/// Replaces the second factor (as [`accounts::reset_mfa`]) and mails the
/// person a link to set it up again with a new password. The new secret is
/// shown only on that link's page.
pub fn reset_mfa_and_send(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    public_url: &str,
    user_id: &str,
    by: &Capability,
) -> Result<LinkSent, AccountError> {
    write_transaction(conn, |conn| {
        let user = active_user(conn, user_id)?;
        accounts::reset_mfa(conn, keyring, auditor, clock, user_id, by)?;
        let (token, valid_until) = new_link(conn, clock, user_id)?;
        send(
            conn,
            auditor,
            clock,
            public_url,
            &user,
            &token,
            valid_until,
            LinkPurpose::SecondFactorReset,
            by,
        )
    })
}

/// Mails the person a link to choose a new password, proven with a code
/// from the second factor they have. For an account not activated yet it
/// is a new activation link (the earlier one stops working).
pub fn send_password_reset(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    public_url: &str,
    user_id: &str,
    by: &Capability,
) -> Result<LinkSent, AccountError> {
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(AccountError::NotFound)?;
        if !by.allows(Action::UserResetMfa, &user.org_id) {
            return Err(AccountError::NotAllowed);
        }
        let user = active_user(conn, user_id)?;
        let enrolled = users::credential(conn, user_id)?
            .ok_or(AccountError::NotFound)?
            .mfa_enrolled_at
            .is_some();
        let (token, valid_until) = new_link(conn, clock, user_id)?;
        let purpose = if enrolled {
            LinkPurpose::PasswordReset
        } else {
            LinkPurpose::Created
        };
        send(
            conn,
            auditor,
            clock,
            public_url,
            &user,
            &token,
            valid_until,
            purpose,
            by,
        )
    })
}

/// Lifts a disable (audited). Sessions and tokens from before stay void.
pub fn enable(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    user_id: &str,
    by: &Capability,
) -> Result<(), AccountError> {
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(AccountError::NotFound)?;
        if !by.allows(Action::UserDisable, &user.org_id) {
            return Err(AccountError::NotAllowed);
        }
        users::enable(conn, user_id, clock.now_naive())?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::USER_ENABLED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("user", user_id),
        )?;
        Ok(())
    })
}
