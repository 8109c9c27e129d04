//! Creating and managing accounts: creation with a TOTP secret, enrolment
//! links, disabling, second-factor reset, recovery codes, the bootstrap
//! admin. Every change is audited in its own transaction.

use chrono::Duration;

use super::totp;
use crate::audit::{Actor, AuditError, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::keyring::{KeyPurpose, Keyring};
use crate::crypto::sealed::{self, Binding};
use crate::crypto::{SecretBytes, random_bytes, random_token, sha256_hex};
use crate::db::organisations;
use crate::db::users::{self, CredentialRow, RecoveryCodeRow, UserRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::org::{OrgCode, OrgKind};
use crate::domain::user::{DisplayName, EmailAddress, Role};

/// How long an enrolment link stays valid.
pub const ENROLMENT_VALIDITY_HOURS: i64 = 72;
/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no organisation with code {0}")]
    OrgNotFound(String),
    #[error("a {role} belongs to a {expected}, but {code} is a {actual}")]
    WrongOrgKind {
        role: Role,
        code: String,
        expected: OrgKind,
        actual: String,
    },
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("no such account")]
    NotFound,
    #[error("not allowed")]
    NotAllowed,
    #[error("the account is disabled")]
    Disabled,
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("key or crypto failure: {0}")]
    Crypto(String),
}

/// What `user create` needs.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub org: OrgCode,
    pub role: Role,
    pub email: EmailAddress,
    pub name: DisplayName,
    /// An argon2id hash computed beforehand (hashing is slow and must not
    /// hold a write transaction); `None` issues an enrolment link instead.
    pub password_hash: Option<String>,
    /// A given TOTP secret (the demo's known ones); otherwise a random one.
    pub totp_secret: Option<SecretBytes>,
}

/// The result of creating an account.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    pub user_id: String,
    pub email: EmailAddress,
    pub role: Role,
    pub org: OrgCode,
    pub totp_uri: String,
    /// The one-time enrolment token, when no password was given.
    pub enrolment_token: Option<String>,
}

pub fn totp_binding(user_id: &str) -> Binding<'_> {
    Binding {
        table: "credentials",
        column: "totp_secret",
        row_id: user_id,
        case_id: "",
    }
}

fn seal_totp(
    keyring: &Keyring,
    user_id: &str,
    secret: &SecretBytes,
) -> Result<Vec<u8>, AccountError> {
    let key = keyring
        .active(KeyPurpose::CredentialSealing)
        .map_err(|e| AccountError::Crypto(e.to_string()))?;
    sealed::seal(
        &key.id,
        key.material(),
        &totp_binding(user_id),
        secret.expose(),
    )
    .map_err(|e| AccountError::Crypto(e.to_string()))
}

/// Opens a user's sealed TOTP secret.
pub fn open_totp(
    keyring: &Keyring,
    user_id: &str,
    sealed_secret: &[u8],
) -> Result<SecretBytes, AccountError> {
    sealed::open(sealed_secret, &totp_binding(user_id), |id| {
        keyring
            .get(KeyPurpose::CredentialSealing, id)
            .map(|k| k.material())
    })
    .map_err(|e| AccountError::Crypto(e.to_string()))
}

/// Creates an account in one transaction with its audit entry. `by` must
/// allow `user.create` on the account's organisation.
pub fn create(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    account: NewAccount,
    by: &Capability,
) -> Result<CreatedAccount, AccountError> {
    insert_account(
        conn,
        keyring,
        auditor,
        clock,
        account,
        Authority::Checked(by),
    )
}

/// On whose authority an account is made.
#[derive(Clone, Copy)]
enum Authority<'a> {
    /// A capability, which must allow `user.create` on the organisation.
    Checked(&'a Capability),
    /// Nobody's: the first account of a store that has none, where there is
    /// no one whose permission could be asked. Only [`bootstrap_admin`] uses
    /// it, inside the transaction in which it found no account.
    FirstAccount,
}

fn insert_account(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    account: NewAccount,
    authority: Authority<'_>,
) -> Result<CreatedAccount, AccountError> {
    let (actor, request) = match authority {
        Authority::Checked(by) => (by.actor(), by.request().clone()),
        Authority::FirstAccount => (None, RequestContext::default()),
    };
    let secret = match account.totp_secret.clone() {
        Some(secret) => secret,
        None => totp::new_secret().map_err(|e| AccountError::Crypto(e.to_string()))?,
    };
    let totp_uri = totp::otpauth_uri(&secret, account.email.as_str())
        .map_err(|e| AccountError::Crypto(e.to_string()))?;
    write_transaction(conn, |conn| {
        let org = organisations::find_by_code(conn, account.org.as_str())?
            .ok_or_else(|| AccountError::OrgNotFound(account.org.to_string()))?;
        if let Authority::Checked(by) = authority
            && !by.allows(Action::UserCreate, &org.id)
        {
            return Err(AccountError::NotAllowed);
        }
        if org.kind != account.role.org_kind().as_str() {
            return Err(AccountError::WrongOrgKind {
                role: account.role,
                code: org.code.clone(),
                expected: account.role.org_kind(),
                actual: org.kind.clone(),
            });
        }
        if users::find_by_email(conn, account.email.as_str())?.is_some() {
            return Err(AccountError::EmailTaken);
        }
        let now = clock.now_naive();
        let user_id = uuid::Uuid::now_v7().to_string();
        let enrolment_token = match account.password_hash {
            Some(_) => None,
            None => Some(random_token().map_err(|e| AccountError::Crypto(e.to_string()))?),
        };
        let user = UserRow {
            id: user_id.clone(),
            org_id: org.id.clone(),
            role: account.role.as_str().to_owned(),
            email: account.email.as_str().to_owned(),
            display_name: account.name.as_str().to_owned(),
            disabled_at: None,
            tokens_not_before: now,
            created_at: now,
            updated_at: now,
            language: "vi".to_owned(),
        };
        let credential = CredentialRow {
            user_id: user_id.clone(),
            password_changed_at: account.password_hash.as_ref().map(|_| now),
            password_hash: account.password_hash.clone(),
            totp_secret: Some(seal_totp(keyring, &user_id, &secret)?),
            totp_last_step: None,
            mfa_enrolled_at: None,
            failed_logins: 0,
            throttled_until: None,
            locked_at: None,
            enrolment_token_hash: enrolment_token.as_deref().map(|t| sha256_hex(t.as_bytes())),
            enrolment_expires_at: enrolment_token
                .as_ref()
                .map(|_| now + Duration::hours(ENROLMENT_VALIDITY_HOURS)),
            updated_at: now,
        };
        users::insert_user(conn, &user, &credential)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::USER_CREATED, Outcome::Success)
                .actor(actor)
                .request(&request)
                .target("user", user_id.clone())
                .detail("role", account.role.as_str())
                .detail("org_id", org.id.clone()),
        )?;
        Ok(CreatedAccount {
            user_id,
            email: account.email.clone(),
            role: account.role,
            org: account.org.clone(),
            totp_uri: totp_uri.clone(),
            enrolment_token,
        })
    })
}

/// Finds an account by email for the command line.
pub fn find_by_email(
    conn: &mut DbConnection,
    email: &EmailAddress,
) -> Result<UserRow, AccountError> {
    users::find_by_email(conn, email.as_str())?.ok_or(AccountError::NotFound)
}

/// Disables an account: its sessions and tokens stop working at the next
/// request (ASVS 8.3.2, 7.4.2).
pub fn disable(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    user_id: &str,
    by: &Capability,
) -> Result<(), AccountError> {
    write_transaction(conn, |conn| {
        let now = clock.now_naive();
        let user = users::find(conn, user_id)?.ok_or(AccountError::NotFound)?;
        if !by.allows(Action::UserDisable, &user.org_id) {
            return Err(AccountError::NotAllowed);
        }
        users::disable(conn, user_id, now)?;
        users::revoke_sessions_of(conn, user_id, now)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::USER_DISABLED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("user", user_id),
        )?;
        Ok(())
    })
}

/// Replaces the second factor: a new secret, recovery codes voided, the
/// lock lifted, every session and token voided. Returns the new enrolment URI.
pub fn reset_mfa(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    user_id: &str,
    by: &Capability,
) -> Result<String, AccountError> {
    let secret = totp::new_secret().map_err(|e| AccountError::Crypto(e.to_string()))?;
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(AccountError::NotFound)?;
        if !by.allows(Action::UserResetMfa, &user.org_id) {
            return Err(AccountError::NotAllowed);
        }
        let mut credential = users::credential(conn, user_id)?.ok_or(AccountError::NotFound)?;
        let now = clock.now_naive();
        credential.totp_secret = Some(seal_totp(keyring, user_id, &secret)?);
        credential.totp_last_step = None;
        credential.mfa_enrolled_at = None;
        credential.failed_logins = 0;
        credential.throttled_until = None;
        credential.locked_at = None;
        credential.updated_at = now;
        users::save_credential(conn, &credential)?;
        users::replace_recovery_codes(conn, user_id, &[])?;
        users::void_tokens(conn, user_id, now)?;
        users::revoke_sessions_of(conn, user_id, now)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::MFA_RESET, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("user", user_id),
        )?;
        totp::otpauth_uri(&secret, &user.email).map_err(|e| AccountError::Crypto(e.to_string()))
    })
}

/// Normalises a recovery code as typed (case, spaces, dashes).
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

const RECOVERY_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Makes a fresh set of recovery codes (80 bits each, shown once, stored as
/// SHA-256), replacing the old set.
pub fn regenerate_recovery_codes(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    actor: &Actor,
) -> Result<Vec<String>, AccountError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let bytes = random_bytes::<16>().map_err(|e| AccountError::Crypto(e.to_string()))?;
        let chars: String = bytes
            .iter()
            .map(|b| {
                char::from(
                    *RECOVERY_ALPHABET
                        .get(usize::from(*b) % RECOVERY_ALPHABET.len())
                        .unwrap_or(&b'A'),
                )
            })
            .collect();
        let groups: Vec<String> = chars
            .as_bytes()
            .chunks(4)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect();
        codes.push(groups.join("-"));
    }
    write_transaction(conn, |conn| {
        let now = clock.now_naive();
        let rows: Vec<RecoveryCodeRow> = codes
            .iter()
            .map(|code| RecoveryCodeRow {
                id: uuid::Uuid::now_v7().to_string(),
                user_id: actor.user_id.clone(),
                code_hash: sha256_hex(normalise_recovery_code(code).as_bytes()),
                used_at: None,
                created_at: now,
            })
            .collect();
        users::replace_recovery_codes(conn, &actor.user_id, &rows)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::MFA_ENROLLED, Outcome::Success)
                .actor(Some(actor.clone()))
                .target("user", actor.user_id.clone())
                .detail("recovery_codes", "regenerated"),
        )?;
        Ok::<(), AccountError>(())
    })?;
    Ok(codes)
}

/// The administrator created on the first start, shown once.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: String,
    pub totp_uri: String,
}

/// Email of the bootstrap administrator.
pub const BOOTSTRAP_EMAIL: &str = "admin@caseguard.invalid";

/// When no account exists, creates an administrator in the root area
/// (creating a root area named `ROOT` if the tree is empty) with a random
/// password. Returns its credentials to print once; `None` when accounts
/// exist already.
///
/// It takes no capability: in a store without accounts there is no one whose
/// permission could be checked, and it can make nothing but that first
/// account (the count is taken in the same transaction, under a lock on
/// PostgreSQL). Operator capabilities stay the command line's alone.
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
) -> Result<Option<BootstrapAdmin>, AccountError> {
    if users::count(conn)? > 0 {
        return Ok(None);
    }
    let password = random_token().map_err(|e| AccountError::Crypto(e.to_string()))?;
    let hash = super::password::hash_blocking(&password)
        .map_err(|e| AccountError::Crypto(e.to_string()))?;
    let created = write_transaction(
        conn,
        |conn| -> Result<Option<CreatedAccount>, AccountError> {
            if let DbConnection::Postgresql(pg) = conn {
                use diesel::connection::SimpleConnection;
                // Replicas starting together: only one creates the administrator.
                pg.batch_execute("SELECT pg_advisory_xact_lock(7305437260919124321)")?;
            }
            if users::count(conn)? > 0 {
                return Ok(None);
            }
            let root = match organisations::root_area(conn)? {
                Some(root) => root,
                None => {
                    let spec = crate::domain::org::OrgSpec::parse(
                        "area",
                        "ROOT",
                        "caseguard",
                        None,
                        Some("root"),
                        None,
                    )
                    .map_err(AccountError::Crypto)?;
                    let row = organisations::NewOrganisation::from_spec(
                        &spec,
                        uuid::Uuid::now_v7().to_string(),
                        None,
                        clock.now_naive(),
                    );
                    organisations::insert(conn, &row)?;
                    organisations::root_area(conn)?.ok_or(AccountError::NotFound)?
                }
            };
            let created = insert_account(
                conn,
                keyring,
                auditor,
                clock,
                NewAccount {
                    org: OrgCode::parse(&root.code).map_err(AccountError::Crypto)?,
                    role: Role::Admin,
                    email: EmailAddress::parse(BOOTSTRAP_EMAIL).map_err(AccountError::Crypto)?,
                    name: DisplayName::parse("Quản trị viên đầu tiên")
                        .map_err(AccountError::Crypto)?,
                    password_hash: Some(hash),
                    totp_secret: None,
                },
                Authority::FirstAccount,
            )?;
            auditor.append(
                conn,
                clock,
                &AuditEvent::new(action::USER_BOOTSTRAPPED, Outcome::Success)
                    .target("user", created.user_id.clone()),
            )?;
            Ok(Some(created))
        },
    )?;
    let Some(created) = created else {
        return Ok(None);
    };
    Ok(Some(BootstrapAdmin {
        email: created.email.as_str().to_owned(),
        password,
        totp_uri: created.totp_uri,
    }))
}

/// What an enrolment link shows before the person chooses a password.
#[derive(Debug, Clone)]
pub struct EnrolmentStart {
    /// Empty when the account's second factor is set up already (a
    /// password-reset link): the secret is never shown again, the person
    /// proves it with a code.
    pub totp_uri: String,
}

impl EnrolmentStart {
    /// Whether this link keeps the second factor the account has.
    pub fn keeps_second_factor(&self) -> bool {
        self.totp_uri.is_empty()
    }
}

fn enrolment_credential(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    token: &str,
) -> Result<(UserRow, CredentialRow), AccountError> {
    let credential = users::find_by_enrolment_token(conn, &sha256_hex(token.as_bytes()))?
        .ok_or(AccountError::NotFound)?;
    if credential
        .enrolment_expires_at
        .is_none_or(|expires| expires <= clock.now_naive())
    {
        return Err(AccountError::NotFound);
    }
    let user = users::find(conn, &credential.user_id)?.ok_or(AccountError::NotFound)?;
    if user.disabled_at.is_some() {
        return Err(AccountError::NotFound);
    }
    Ok((user, credential))
}

/// Opens an enrolment link: the authenticator URI to scan.
pub fn start_enrolment(
    conn: &mut DbConnection,
    keyring: &Keyring,
    clock: &dyn Clock,
    token: &str,
) -> Result<EnrolmentStart, AccountError> {
    let (user, credential) = enrolment_credential(conn, clock, token)?;
    if credential.mfa_enrolled_at.is_some() {
        return Ok(EnrolmentStart {
            totp_uri: String::new(),
        });
    }
    let secret = credential
        .totp_secret
        .as_deref()
        .map(|sealed| open_totp(keyring, &user.id, sealed))
        .transpose()?
        .ok_or(AccountError::NotFound)?;
    let totp_uri =
        totp::otpauth_uri(&secret, &user.email).map_err(|e| AccountError::Crypto(e.to_string()))?;
    Ok(EnrolmentStart { totp_uri })
}

/// Why completing an enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("the enrolment link is not valid (used, expired or unknown)")]
    InvalidLink,
    #[error("{0}")]
    WeakPassword(String),
    #[error("the authenticator code is not correct")]
    BadCode,
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<diesel::result::Error> for EnrolmentError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Account(AccountError::Db(error))
    }
}

/// Completes an enrolment: sets the password (hashed beforehand), confirms
/// the authenticator with a code, and spends the link.
pub fn complete_enrolment(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    token: &str,
    password_hash: String,
    code: &str,
) -> Result<(), EnrolmentError> {
    write_transaction(conn, |conn| {
        let (user, mut credential) = match enrolment_credential(conn, clock, token) {
            Ok(found) => found,
            Err(AccountError::NotFound) => return Err(EnrolmentError::InvalidLink),
            Err(other) => return Err(other.into()),
        };
        let secret = credential
            .totp_secret
            .as_deref()
            .map(|sealed| open_totp(keyring, &user.id, sealed))
            .transpose()?
            .ok_or(EnrolmentError::InvalidLink)?;
        let seconds = u64::try_from(clock.now().timestamp()).unwrap_or_default();
        let step = totp::verify(&secret, code, seconds, credential.totp_last_step)
            .map_err(|e| AccountError::Crypto(e.to_string()))?
            .ok_or(EnrolmentError::BadCode)?;
        let now = clock.now_naive();
        credential.password_hash = Some(password_hash);
        credential.password_changed_at = Some(now);
        credential.totp_last_step = Some(step);
        credential.mfa_enrolled_at = credential.mfa_enrolled_at.or(Some(now));
        credential.enrolment_token_hash = None;
        credential.enrolment_expires_at = None;
        credential.failed_logins = 0;
        credential.throttled_until = None;
        credential.updated_at = now;
        users::save_credential(conn, &credential)?;
        // A new password ends whatever was signed in with the old one.
        users::void_tokens(conn, &user.id, now)?;
        users::revoke_sessions_of(conn, &user.id, now)?;
        auditor
            .append(
                conn,
                clock,
                &AuditEvent::new(action::MFA_ENROLLED, Outcome::Success)
                    .actor(Some(Actor {
                        user_id: user.id.clone(),
                        org_id: user.org_id.clone(),
                        role: user.role.clone(),
                    }))
                    .target("user", user.id.clone())
                    .detail("via", "enrolment_link"),
            )
            .map_err(AccountError::from)?;
        Ok(())
    })
}

/// Changes a password after the caller proved the current one (checked by
/// the caller of this function). Every other session and token is voided.
pub fn change_password(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    actor: &Actor,
    password_hash: String,
) -> Result<(), AccountError> {
    write_transaction(conn, |conn| {
        let mut credential =
            users::credential(conn, &actor.user_id)?.ok_or(AccountError::NotFound)?;
        let now = clock.now_naive();
        credential.password_hash = Some(password_hash);
        credential.password_changed_at = Some(now);
        credential.updated_at = now;
        users::save_credential(conn, &credential)?;
        users::void_tokens(conn, &actor.user_id, now)?;
        users::revoke_sessions_of(conn, &actor.user_id, now)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::PASSWORD_CHANGED, Outcome::Success)
                .actor(Some(actor.clone()))
                .target("user", actor.user_id.clone()),
        )?;
        Ok(())
    })
}
