//! The tamper-evident audit log (DESIGN §4, ASVS 16.x).
//!
//! Every security event — logins, account changes, denials, reads of
//! sensitive fields, break-glass, key operations — is appended **in the same
//! transaction** as what it records: if the entry cannot be written, the
//! action does not happen (fail closed).
//!
//! Entries form a hash chain: each stores the SHA-256 of its predecessor's
//! hash and its own fields, so editing, removing, inserting or reordering an
//! entry breaks the chain. At intervals the head of the chain is signed with
//! the keyring's Ed25519 audit key ([`Auditor::checkpoint`]); a tamperer who
//! rewrites every hash after an edit cannot forge those signatures.
//! `caseguard audit verify` checks it all ([`verify`]).
//!
//! What goes in: who (user, organisation, role), what (a fixed action name
//! and outcome), on what (a type and id), when (UTC), from where (request id,
//! client address) and codes in `details`. Never a field value, a name, a
//! token or a password.

pub mod search;
pub mod verify;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;

use crate::clock::Clock;
use crate::crypto::jwt::ed25519_sign;
use crate::crypto::keyring::{Key, KeyPurpose, Keyring, KeyringError};
use crate::crypto::sha256_hex;
use crate::db::DbConnection;
use crate::db::audit::{self as table, AuditRow, CheckpointRow};

pub use verify::{VerifyReport, verify};

/// The hash a chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// A checkpoint is signed at least every this many entries.
pub const CHECKPOINT_EVERY: i64 = 64;
/// Advisory lock that serialises appends on PostgreSQL (SQLite write
/// transactions are already serialised by `BEGIN IMMEDIATE`).
/// The append lock's key. Migration `000012_statistics_summary` takes the
/// same key in `stats_count()` (a test holds them equal).
const PG_APPEND_LOCK: i64 = 0x6175_6469_745f_6c6f; // "audit_lo"

/// What happened to the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The attempt failed (wrong password, invalid input).
    Failure,
    /// The attempt was refused by policy.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub org_id: String,
    pub role: String,
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

/// One event to record. Details hold codes and ids only.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    action: &'static str,
    outcome: Outcome,
    actor: Option<Actor>,
    target: Option<(&'static str, String)>,
    request: RequestContext,
    details: BTreeMap<&'static str, String>,
}

impl AuditEvent {
    pub fn new(action: &'static str, outcome: Outcome) -> Self {
        Self {
            action,
            outcome,
            actor: None,
            target: None,
            request: RequestContext::default(),
            details: BTreeMap::new(),
        }
    }

    pub fn actor(mut self, actor: Option<Actor>) -> Self {
        self.actor = actor;
        self
    }

    pub fn target(mut self, kind: &'static str, id: impl Into<String>) -> Self {
        self.target = Some((kind, id.into()));
        self
    }

    pub fn request(mut self, request: &RequestContext) -> Self {
        self.request = request.clone();
        self
    }

    /// Adds a detail. Values must be codes or ids chosen by the program,
    /// never text a person typed.
    pub fn detail(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.details.insert(key, value.into());
        self
    }
}

/// The action names, a closed list so the log can be searched reliably.
pub mod action {
    pub const LOGIN: &str = "auth.login";
    pub const LOGOUT: &str = "auth.logout";
    pub const LOGOUT_EVERYWHERE: &str = "auth.logout_everywhere";
    pub const TOKEN_ISSUED: &str = "auth.token_issued";
    pub const TOKEN_REVOKED: &str = "auth.token_revoked";
    pub const ACCOUNT_LOCKED: &str = "auth.account_locked";
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
    pub const MFA_ENROLLED: &str = "auth.mfa_enrolled";
    pub const MFA_RESET: &str = "auth.mfa_reset";
    pub const RECOVERY_CODE_USED: &str = "auth.recovery_code_used";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_LANGUAGE_CHANGED: &str = "user.language_changed";
    pub const USER_BOOTSTRAPPED: &str = "user.bootstrap_admin";
    pub const ACCESS_DENIED: &str = "authz.denied";
    pub const BREAK_GLASS: &str = "authz.break_glass";
    /// A focal point or an auditor read a break-glass grant and its reason.
    pub const BREAK_GLASS_REVIEWED: &str = "authz.break_glass_reviewed";
    pub const AUDIT_READ: &str = "audit.read";
    pub const KEYRING_CREATED: &str = "keys.keyring_created";
    pub const CASE_CREATED: &str = "case.created";
    pub const CASE_READ: &str = "case.read";
    pub const CASE_UPDATED: &str = "case.updated";
    pub const KEYS_ROTATED: &str = "keys.rotated";
    pub const KEK_RETIRED: &str = "keys.retired";
    pub const CONTENT_DESTROYED: &str = "case.content_destroyed";
    pub const CONSENT_RECORDED: &str = "case.consent_recorded";
    pub const REFERRAL_SENT: &str = "referral.sent";
    pub const REFERRAL_UPDATED: &str = "referral.updated";
    pub const REFERRAL_READ: &str = "referral.read";
    pub const SUGGESTION_SKIPPED: &str = "referral.suggestion_skipped";
    pub const PARTNER_LINK_CREATED: &str = "referral.link_created";
    pub const PARTNER_LINK_OPENED: &str = "referral.link_opened";
    pub const PARTNER_LINK_REFUSED: &str = "referral.link_refused";
    pub const PARTNER_LINK_REVOKED: &str = "referral.link_revoked";
    /// A partner session (opened with a one-time link) ended: expired, its
    /// referral withdrawn or closed, used outside its referral, or answered.
    pub const PARTNER_SESSION_ENDED: &str = "referral.partner_session_ended";
    pub const PARTNER_SESSION_OPENED: &str = "referral.partner_session_opened";
    pub const ESCALATION_RAISED: &str = "escalation.raised";
    /// A reminder before a deadline went to the people responsible for it.
    pub const REMINDER_SENT: &str = "deadline.reminder_sent";
    pub const DRAFT_SAVED: &str = "case.draft_saved";
    pub const STORE_BACKUP: &str = "store.backup";
    pub const STORE_RESTORED: &str = "store.restored";
    pub const STORE_MIGRATED: &str = "store.migrated";
    pub const STATS_REPORT_COMPUTED: &str = "stats.report_computed";
    pub const STATS_REPORT_RELEASED: &str = "stats.report_released";
    pub const STATS_EXPORTED: &str = "stats.exported";
    pub const INDICATORS_SUBMITTED: &str = "stats.indicators_submitted";
    /// A unit's focal point read its answers with their (sealed) notes.
    pub const INDICATOR_NOTES_READ: &str = "stats.indicator_notes_read";
    pub const DEMO_CASES_GENERATED: &str = "demo.cases_generated";
    // Case-work (issue 16): assignment, approval of closure, legal hold.
    pub const CASE_ASSIGNED: &str = "case.assigned";
    pub const CLOSURE_REQUESTED: &str = "case.closure_requested";
    pub const CLOSURE_APPROVED: &str = "case.closure_approved";
    pub const CLOSURE_RETURNED: &str = "case.closure_returned";
    pub const LEGAL_HOLD_SET: &str = "case.legal_hold_set";
    pub const LEGAL_HOLD_LIFTED: &str = "case.legal_hold_lifted";
    pub const TRANSFER_REQUESTED: &str = "case.transfer_requested";
    pub const TRANSFER_VIEWED: &str = "case.transfer_viewed";
    pub const TRANSFER_ACCEPTED: &str = "case.transfer_accepted";
    pub const TRANSFER_REFUSED: &str = "case.transfer_refused";
    pub const TRANSFER_CANCELLED: &str = "case.transfer_cancelled";
    // Account life (issues 19 and 21): links that reach only the person.
    pub const USER_ENABLED: &str = "user.enabled";
    pub const ENROLMENT_SENT: &str = "user.enrolment_sent";
    /// Every action, for the catalogue labels (`audit-action-…`).
    pub const ALL: &[&str] = &[
        LOGIN,
        LOGOUT,
        LOGOUT_EVERYWHERE,
        TOKEN_ISSUED,
        TOKEN_REVOKED,
        ACCOUNT_LOCKED,
        PASSWORD_CHANGED,
        MFA_ENROLLED,
        MFA_RESET,
        RECOVERY_CODE_USED,
        USER_CREATED,
        USER_DISABLED,
        USER_LANGUAGE_CHANGED,
        USER_BOOTSTRAPPED,
        ACCESS_DENIED,
        BREAK_GLASS,
        BREAK_GLASS_REVIEWED,
        AUDIT_READ,
        KEYRING_CREATED,
        CASE_CREATED,
        CASE_READ,
        CASE_UPDATED,
        KEYS_ROTATED,
        KEK_RETIRED,
        CONTENT_DESTROYED,
        CONSENT_RECORDED,
        REFERRAL_SENT,
        REFERRAL_UPDATED,
        REFERRAL_READ,
        SUGGESTION_SKIPPED,
        PARTNER_LINK_CREATED,
        PARTNER_LINK_OPENED,
        PARTNER_LINK_REFUSED,
        PARTNER_LINK_REVOKED,
        PARTNER_SESSION_ENDED,
        PARTNER_SESSION_OPENED,
        ESCALATION_RAISED,
        REMINDER_SENT,
        DRAFT_SAVED,
        STORE_BACKUP,
        STORE_RESTORED,
        STORE_MIGRATED,
        STATS_REPORT_COMPUTED,
        STATS_REPORT_RELEASED,
        STATS_EXPORTED,
        INDICATORS_SUBMITTED,
        INDICATOR_NOTES_READ,
        DEMO_CASES_GENERATED,
        CASE_ASSIGNED,
        CLOSURE_REQUESTED,
        CLOSURE_APPROVED,
        CLOSURE_RETURNED,
        LEGAL_HOLD_SET,
        LEGAL_HOLD_LIFTED,
        TRANSFER_REQUESTED,
        TRANSFER_VIEWED,
        TRANSFER_ACCEPTED,
        TRANSFER_REFUSED,
        TRANSFER_CANCELLED,
        USER_ENABLED,
        ENROLMENT_SENT,
    ];
}

/// Appends entries and signs checkpoints with the keyring's audit key.
#[derive(Debug, Clone)]
pub struct Auditor {
    signing_key: Key,
}

impl Auditor {
    pub fn new(keyring: &Keyring) -> Result<Self, KeyringError> {
        Ok(Self {
            signing_key: keyring.active(KeyPurpose::AuditSigning)?.clone(),
        })
    }

    /// Appends `event`. Call inside the write transaction of the action it
    /// records; an error must abort that transaction.
    ///
    /// Inside [`crate::db::write_transaction`] the entry joins that
    /// transaction's pending entries and is chained just before its commit
    /// ([`flush_pending`]): on PostgreSQL the chain's append lock is then held
    /// for the chaining and the commit only, not for the whole transaction.
    /// Anywhere else it is chained at once.
    pub fn append(
        &self,
        conn: &mut DbConnection,
        clock: &dyn Clock,
        event: &AuditEvent,
    ) -> Result<(), AuditError> {
        let entry = Pending {
            auditor: self.clone(),
            row: unchained_row(clock, event)?,
        };
        let deferred = PENDING.with_borrow_mut(|scope| match scope {
            Some(scope) if scope.connection == connection_id(conn) => {
                scope.entries.push(entry);
                None
            }
            _ => Some(entry),
        });
        match deferred {
            None => Ok(()),
            Some(entry) => chain(conn, vec![entry]),
        }
    }

    /// Signs the newest entry if it is not signed yet. Returns its sequence
    /// number when a checkpoint was written. Run it in a write transaction.
    pub fn checkpoint(
        &self,
        conn: &mut DbConnection,
        clock: &dyn Clock,
    ) -> Result<Option<i64>, AuditError> {
        if let DbConnection::Postgresql(pg) = conn {
            pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_APPEND_LOCK})"))?;
        }
        let Some((seq, hash)) = table::head(conn)? else {
            return Ok(None);
        };
        if table::last_checkpoint_seq(conn)? == Some(seq) {
            return Ok(None);
        }
        self.sign_checkpoint(conn, clock.now_naive(), seq, &hash)?;
        Ok(Some(seq))
    }

    fn sign_checkpoint(
        &self,
        conn: &mut DbConnection,
        signed_at: NaiveDateTime,
        seq: i64,
        entry_hash: &str,
    ) -> Result<(), AuditError> {
        let signature = ed25519_sign(
            &self.signing_key,
            checkpoint_message(seq, entry_hash).as_bytes(),
        )?;
        table::insert_checkpoint(
            conn,
            &CheckpointRow {
                seq,
                entry_hash: entry_hash.to_owned(),
                signed_at,
                key_id: self.signing_key.id.clone(),
                signature: hex::encode(signature),
            },
        )?;
        Ok(())
    }
}

/// An entry waiting for its transaction's commit to be chained.
struct Pending {
    auditor: Auditor,
    row: AuditRow,
}

/// The entries of the write transaction running on this thread, and which
/// connection it runs on (an append through another connection is not
/// part of it).
struct PendingScope {
    connection: usize,
    entries: Vec<Pending>,
}

thread_local! {
    static PENDING: std::cell::RefCell<Option<PendingScope>> =
        const { std::cell::RefCell::new(None) };
}

fn connection_id(conn: &DbConnection) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// Collects the audit entries of one top-level write transaction on `conn`
/// until [`PendingGuard::take`]; dropping the guard discards what was not
/// taken (the transaction rolled back) and restores any enclosing scope.
pub(crate) struct PendingGuard {
    outer: Option<PendingScope>,
}

impl PendingGuard {
    pub(crate) fn begin(conn: &DbConnection) -> Self {
        let scope = PendingScope {
            connection: connection_id(conn),
            entries: Vec::new(),
        };
        Self {
            outer: PENDING.with_borrow_mut(|slot| slot.replace(scope)),
        }
    }

    /// How many entries are pending now (a savepoint's starting mark).
    pub(crate) fn mark() -> usize {
        PENDING.with_borrow(|slot| slot.as_ref().map_or(0, |s| s.entries.len()))
    }

    /// Drops the entries appended after `mark` (their savepoint rolled back).
    pub(crate) fn rewind(mark: usize) {
        PENDING.with_borrow_mut(|slot| {
            if let Some(scope) = slot {
                scope.entries.truncate(mark);
            }
        });
    }

    /// Chains the pending entries onto the log, in this transaction. Call
    /// right before the commit.
    pub(crate) fn flush(&self, conn: &mut DbConnection) -> Result<(), AuditError> {
        let entries =
            PENDING.with_borrow_mut(|slot| slot.as_mut().map(|s| std::mem::take(&mut s.entries)));
        match entries {
            Some(entries) if !entries.is_empty() => chain(conn, entries),
            _ => Ok(()),
        }
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let outer = self.outer.take();
        PENDING.with_borrow_mut(|slot| *slot = outer);
    }
}

/// An entry's fields as the event gives them, before it has a place in the
/// chain.
fn unchained_row(clock: &dyn Clock, event: &AuditEvent) -> Result<AuditRow, AuditError> {
    let details =
        serde_json::to_string(&event.details).map_err(|e| AuditError::Encode(e.to_string()))?;
    Ok(AuditRow {
        seq: 0,
        id: uuid::Uuid::now_v7().to_string(),
        occurred_at: clock.now_naive(),
        actor_user_id: event.actor.as_ref().map(|a| a.user_id.clone()),
        actor_org_id: event.actor.as_ref().map(|a| a.org_id.clone()),
        actor_role: event.actor.as_ref().map(|a| a.role.clone()),
        action: event.action.to_owned(),
        outcome: event.outcome.as_str().to_owned(),
        target_type: event.target.as_ref().map(|(kind, _)| (*kind).to_owned()),
        target_id: event.target.as_ref().map(|(_, id)| id.clone()),
        request_id: event.request.request_id.clone(),
        client_ip: event.request.client_ip.clone(),
        details,
        prev_hash: String::new(),
        entry_hash: String::new(),
    })
}

/// Gives `entries` the next places in the chain and writes them (and a
/// checkpoint at every [`CHECKPOINT_EVERY`]th entry). On PostgreSQL this
/// takes the append lock, held until the transaction ends.
fn chain(conn: &mut DbConnection, entries: Vec<Pending>) -> Result<(), AuditError> {
    if let DbConnection::Postgresql(pg) = conn {
        pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_APPEND_LOCK})"))?;
    }
    let (mut seq, mut prev_hash) = match table::head(conn)? {
        Some((seq, hash)) => (seq, hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    for Pending { auditor, mut row } in entries {
        seq += 1;
        row.seq = seq;
        row.prev_hash = prev_hash;
        row.entry_hash = entry_hash(&row);
        table::insert(conn, &row)?;
        if seq % CHECKPOINT_EVERY == 0 {
            auditor.sign_checkpoint(conn, row.occurred_at, seq, &row.entry_hash)?;
        }
        prev_hash = row.entry_hash;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log write failed: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("audit entry cannot be encoded: {0}")]
    Encode(String),
    #[error(transparent)]
    Key(#[from] KeyringError),
}

impl AuditError {
    /// As a query error, for a transaction whose error type only takes
    /// those: a database error stays itself, anything else rolls back with
    /// its message.
    pub(crate) fn into_query_error(self) -> diesel::result::Error {
        match self {
            Self::Db(error) => error,
            other => diesel::result::Error::QueryBuilderError(other.to_string().into()),
        }
    }
}

/// What a checkpoint signature covers.
pub fn checkpoint_message(seq: i64, entry_hash: &str) -> String {
    format!("caseguard-audit-checkpoint:v1:{seq}:{entry_hash}")
}

fn push_field(buffer: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => buffer.push(0),
        Some(text) => {
            buffer.push(1);
            buffer.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
            buffer.extend_from_slice(text.as_bytes());
        }
    }
}

fn timestamp_text(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The hash of an entry: every field but the hash itself, length-prefixed,
/// after the previous entry's hash.
pub fn entry_hash(row: &AuditRow) -> String {
    let mut buffer = b"caseguard-audit-entry:v1".to_vec();
    let seq = row.seq.to_string();
    let at = timestamp_text(&row.occurred_at);
    for field in [
        Some(row.prev_hash.as_str()),
        Some(seq.as_str()),
        Some(row.id.as_str()),
        Some(at.as_str()),
        row.actor_user_id.as_deref(),
        row.actor_org_id.as_deref(),
        row.actor_role.as_deref(),
        Some(row.action.as_str()),
        Some(row.outcome.as_str()),
        row.target_type.as_deref(),
        row.target_id.as_deref(),
        row.request_id.as_deref(),
        row.client_ip.as_deref(),
        Some(row.details.as_str()),
    ] {
        push_field(&mut buffer, field);
    }
    sha256_hex(&buffer)
}

#[cfg(test)]
mod tests {
    use super::PG_APPEND_LOCK;

    #[test]
    fn the_statistics_summary_takes_the_append_lock() {
        let migration =
            include_str!("../../migrations/postgres/2026-11-29-000012_statistics_summary/up.sql");
        assert!(
            migration.contains(&format!("pg_advisory_xact_lock({PG_APPEND_LOCK})")),
            "stats_count() must take the audit chain's append lock"
        );
    }
}
