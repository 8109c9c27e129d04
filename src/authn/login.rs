//! Sign-in: password, second factor, throttling and lockout (ASVS 6.3).
//!
//! Every failure — unknown account, wrong password, wrong or replayed code,
//! disabled, throttled or locked account — gives the caller the same answer.
//! An unknown account costs the same argon2id work as a known one, and every
//! attempt, successful or not, writes an audit entry in one transaction.
//!
//! After 5 consecutive failures each attempt must wait a growing delay
//! (2, 4, 8 … seconds, at most 15 minutes); after `login_lock_after`
//! failures the account is locked until an admin resets it.

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};

use super::Authn;
use super::accounts::{normalise_recovery_code, open_totp};
use super::password::HashError;
use super::totp;
use crate::audit::{Actor, AuditError, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::clock::Clock;
use crate::crypto::keyring::Keyring;
use crate::crypto::sha256_hex;
use crate::db::users::{self, CredentialRow, UserRow};
use crate::db::{Db, DbConnection, DbError};
use crate::domain::user::{EmailAddress, Role};

/// Failures before delays start.
const FREE_ATTEMPTS: i32 = 5;
/// Longest delay between attempts.
const MAX_DELAY_SECS: i64 = 900;

/// What the caller presents.
pub struct LoginAttempt {
    pub email: String,
    pub password: SecretString,
    pub totp: Option<String>,
    pub recovery_code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Any reason at all: the caller must not learn which.
    #[error("sign-in failed")]
    Failed,
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for LoginError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// The reason recorded in the audit log (never shown to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UnknownAccount,
    Disabled,
    Locked,
    Throttled,
    BadPassword,
    MissingSecondFactor,
    BadSecondFactor,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
            Self::Throttled => "throttled",
            Self::BadPassword => "bad_password",
            Self::MissingSecondFactor => "second_factor_missing",
            Self::BadSecondFactor => "bad_second_factor",
        }
    }

    /// Whether the attempt counts towards throttling and lockout.
    fn counts(self) -> bool {
        matches!(
            self,
            Self::BadPassword | Self::BadSecondFactor | Self::MissingSecondFactor
        )
    }
}

/// Everything needed to check an attempt.
pub struct LoginContext<'a> {
    pub db: &'a Db,
    pub authn: &'a Authn,
    pub keyring: std::sync::Arc<Keyring>,
    pub auditor: &'a Auditor,
    pub clock: &'a dyn Clock,
    pub request: RequestContext,
    /// `token` or `session`, for the audit entry.
    pub channel: &'static str,
}

/// The actor an account acts as.
pub fn actor_of(user: &UserRow) -> Actor {
    Actor {
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        role: user.role.clone(),
    }
}

/// Checks an attempt. On success, `on_success` runs in the same transaction
/// as the audit entry (to create the session or record the token), and its
/// result is returned with the account.
pub async fn authenticate<T, F>(
    context: LoginContext<'_>,
    attempt: LoginAttempt,
    on_success: F,
) -> Result<(UserRow, T), LoginError>
where
    F: FnOnce(&mut DbConnection, &UserRow) -> Result<T, LoginError> + Send + 'static,
    T: Send + 'static,
{
    let email = EmailAddress::parse(&attempt.email).ok();
    let found = {
        let email = email.clone();
        context
            .db
            .read(move |conn| {
                let Some(email) = email else { return Ok(None) };
                let Some(user) = users::find_by_email(conn, email.as_str())? else {
                    return Ok(None);
                };
                let credential = users::credential(conn, &user.id)?;
                Ok(credential.map(|c| (user, c)))
            })
            .await?
    };
    let stored_hash = found.as_ref().and_then(|(_, c)| c.password_hash.clone());
    let password_ok = context
        .authn
        .hasher
        .verify(stored_hash, attempt.password.expose_secret().to_owned())
        .await
        .map_err(|e| match e {
            HashError::Busy => LoginError::Busy(e),
            other => LoginError::Internal(other.to_string()),
        })?;

    let keyring = context.keyring.as_ref().clone();
    let auditor = context.auditor.clone();
    let lock_after = context.authn.lock_after;
    let channel = context.channel;
    let request = context.request.clone();
    let now = context.clock.now();
    let clock_now_naive = context.clock.now_naive();
    let user_id = found.as_ref().map(|(u, _)| u.id.clone());
    let clock = FixedNow(now, clock_now_naive);
    let outcome = context
        .db
        .write(
            move |conn: &mut DbConnection| -> Result<Result<(UserRow, T), ()>, LoginError> {
                let audit =
                    |conn: &mut DbConnection, event: AuditEvent| -> Result<(), LoginError> {
                        auditor.append(
                            conn,
                            &clock,
                            &event.request(&request).detail("channel", channel),
                        )?;
                        Ok(())
                    };
                // Re-read inside the transaction: counters must not race.
                let account = match &user_id {
                    Some(id) => match (users::find(conn, id)?, users::credential(conn, id)?) {
                        (Some(user), Some(credential)) => Some((user, credential)),
                        _ => None,
                    },
                    None => None,
                };
                let Some((user, mut credential)) = account else {
                    audit(conn, refusal_event(None, Refusal::UnknownAccount))?;
                    return Ok(Err(()));
                };
                let actor = actor_of(&user);
                let verdict = judge(
                    &keyring,
                    &user,
                    &credential,
                    password_ok,
                    attempt.totp.as_deref(),
                    attempt.recovery_code.as_deref(),
                    now.timestamp(),
                );
                match verdict {
                    Ok(second_factor) => {
                        match second_factor {
                            SecondFactor::Totp(step) => {
                                credential.totp_last_step = Some(step);
                                if credential.mfa_enrolled_at.is_none() {
                                    credential.mfa_enrolled_at = Some(clock_now_naive);
                                }
                            }
                            SecondFactor::RecoveryCode(hash) => {
                                if !users::use_recovery_code(
                                    conn,
                                    &user.id,
                                    &hash,
                                    clock_now_naive,
                                )? {
                                    register_failure(
                                        conn,
                                        &auditor,
                                        &clock,
                                        &mut credential,
                                        lock_after,
                                        &actor,
                                        &request,
                                    )?;
                                    audit(
                                        conn,
                                        refusal_event(Some(actor), Refusal::BadSecondFactor),
                                    )?;
                                    return Ok(Err(()));
                                }
                                audit(
                                    conn,
                                    AuditEvent::new(action::RECOVERY_CODE_USED, Outcome::Success)
                                        .actor(Some(actor.clone()))
                                        .target("user", user.id.clone()),
                                )?;
                            }
                            SecondFactor::NotRequired => {}
                        }
                        credential.failed_logins = 0;
                        credential.throttled_until = None;
                        credential.updated_at = clock_now_naive;
                        users::save_credential(conn, &credential)?;
                        let extra = on_success(conn, &user)?;
                        audit(
                            conn,
                            AuditEvent::new(action::LOGIN, Outcome::Success)
                                .actor(Some(actor))
                                .target("user", user.id.clone()),
                        )?;
                        Ok(Ok((user, extra)))
                    }
                    Err(refusal) => {
                        if refusal.counts() {
                            register_failure(
                                conn,
                                &auditor,
                                &clock,
                                &mut credential,
                                lock_after,
                                &actor,
                                &request,
                            )?;
                        }
                        audit(conn, refusal_event(Some(actor), refusal))?;
                        Ok(Err(()))
                    }
                }
            },
        )
        .await?;
    outcome.map_err(|()| LoginError::Failed)
}

/// A clock frozen at the instant the attempt was judged, so every entry of
/// one attempt carries the same time.
#[derive(Debug)]
struct FixedNow(chrono::DateTime<chrono::Utc>, chrono::NaiveDateTime);

impl Clock for FixedNow {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }

    fn now_naive(&self) -> chrono::NaiveDateTime {
        self.1
    }
}

enum SecondFactor {
    NotRequired,
    Totp(i64),
    RecoveryCode(String),
}

fn refusal_event(actor: Option<Actor>, refusal: Refusal) -> AuditEvent {
    let target = actor.as_ref().map(|a| a.user_id.clone());
    let mut event = AuditEvent::new(action::LOGIN, Outcome::Failure)
        .actor(actor)
        .detail("reason", refusal.code());
    if let Some(id) = target {
        event = event.target("user", id);
    }
    event
}

fn judge(
    keyring: &Keyring,
    user: &UserRow,
    credential: &CredentialRow,
    password_ok: bool,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
    unix_seconds: i64,
) -> Result<SecondFactor, Refusal> {
    if user.disabled_at.is_some() {
        return Err(Refusal::Disabled);
    }
    if credential.locked_at.is_some() {
        return Err(Refusal::Locked);
    }
    if credential
        .throttled_until
        .is_some_and(|until| until.and_utc().timestamp() > unix_seconds)
    {
        return Err(Refusal::Throttled);
    }
    if !password_ok {
        return Err(Refusal::BadPassword);
    }
    let role = Role::parse(&user.role).map_err(|_| Refusal::Disabled)?;
    let enrolled = credential.mfa_enrolled_at.is_some();
    if !role.requires_mfa() && !enrolled && totp_code.is_none() && recovery_code.is_none() {
        return Ok(SecondFactor::NotRequired);
    }
    if let Some(code) = totp_code.filter(|c| !c.trim().is_empty()) {
        let secret = credential
            .totp_secret
            .as_deref()
            .and_then(|sealed| open_totp(keyring, &user.id, sealed).ok())
            .ok_or(Refusal::BadSecondFactor)?;
        let seconds = u64::try_from(unix_seconds).unwrap_or_default();
        return match totp::verify(&secret, code, seconds, credential.totp_last_step) {
            Ok(Some(step)) => Ok(SecondFactor::Totp(step)),
            _ => Err(Refusal::BadSecondFactor),
        };
    }
    if let Some(code) = recovery_code.filter(|c| !c.trim().is_empty()) {
        if !enrolled {
            return Err(Refusal::BadSecondFactor);
        }
        return Ok(SecondFactor::RecoveryCode(sha256_hex(
            normalise_recovery_code(code).as_bytes(),
        )));
    }
    Err(Refusal::MissingSecondFactor)
}

fn register_failure(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    credential: &mut CredentialRow,
    lock_after: i32,
    actor: &Actor,
    request: &RequestContext,
) -> Result<(), LoginError> {
    let now = clock.now_naive();
    credential.failed_logins = credential.failed_logins.saturating_add(1);
    credential.updated_at = now;
    if credential.failed_logins >= lock_after {
        if credential.locked_at.is_none() {
            credential.locked_at = Some(now);
            auditor.append(
                conn,
                clock,
                &AuditEvent::new(action::ACCOUNT_LOCKED, Outcome::Success)
                    .actor(Some(actor.clone()))
                    .target("user", actor.user_id.clone())
                    .request(request)
                    .detail("failures", credential.failed_logins.to_string()),
            )?;
        }
    } else if credential.failed_logins >= FREE_ATTEMPTS {
        let exponent = u32::try_from(credential.failed_logins - FREE_ATTEMPTS)
            .unwrap_or(u32::MAX)
            .min(20);
        let delay = 2_i64.saturating_pow(exponent + 1).min(MAX_DELAY_SECS);
        credential.throttled_until = Some(now + Duration::seconds(delay));
    }
    users::save_credential(conn, credential)?;
    Ok(())
}
