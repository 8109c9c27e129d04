//! Key-encryption key rotation (DESIGN §4): `caseguard keys status` and
//! `caseguard keys rotate`.
//!
//! Rotation adds a new field KEK to the keyring file, then rewraps every
//! case's data key in small transactions while the service runs (field data
//! is untouched). A crash leaves some data keys under the old KEK; running
//! `keys rotate` again finds them and resumes instead of adding another key.
//! Running services pick up the new keyring within a second
//! (`KeyringHandle`). A KEK is retired — its material removed from the
//! keyring — once no data key uses it and it was replaced at least
//! [`RETIRE_AFTER`] ago, long after every replica reloaded; the KEK replaced
//! by a rotation is therefore retired by the next one.

use std::collections::BTreeMap;

use chrono::Duration;
use diesel::prelude::*;

use crate::audit::{AuditError, AuditEvent, Auditor, Outcome, action};
use crate::clock::Clock;
use crate::crypto::envelope::{DataKey, KeyBinding};
use crate::crypto::keyring::{KeyPurpose, Keyring};
use crate::crypto::sealed::SealError;
use crate::db::schema::case_keys;
use crate::db::{DbConnection, write_transaction};

/// How long a replaced KEK is kept before it may be retired.
pub const RETIRE_AFTER: Duration = Duration::minutes(10);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("a data key cannot be unwrapped or wrapped: {0}")]
    Crypto(#[from] SealError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("keyring: {0}")]
    Keyring(String),
    #[error(transparent)]
    Notes(#[from] crate::stats::unit_notes::NoteError),
}

/// One field KEK and how many data keys it wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekStatus {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub active: bool,
    pub wraps: i64,
}

/// Data keys wrapped by each KEK id (including ids no longer in the
/// keyring): the cases' and the unit indicator notes' (`stats::unit_notes`).
pub fn wraps_by_kek(conn: &mut DbConnection) -> QueryResult<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = case_keys::table
        .group_by(case_keys::kek_id)
        .select((case_keys::kek_id, diesel::dsl::count_star()))
        .load(conn)?;
    let mut counts: BTreeMap<String, i64> = rows.into_iter().collect();
    for (kek, n) in crate::db::unit_indicators::wraps_by_kek(conn)? {
        *counts.entry(kek).or_default() += n;
    }
    Ok(counts)
}

pub fn status(conn: &mut DbConnection, keyring: &Keyring) -> QueryResult<Vec<KekStatus>> {
    let counts = wraps_by_kek(conn)?;
    let active = keyring
        .active(KeyPurpose::FieldKek)
        .map(|k| k.id.clone())
        .ok();
    Ok(keyring
        .keys(KeyPurpose::FieldKek)
        .iter()
        .map(|key| KekStatus {
            id: key.id.clone(),
            created_at: key.created_at,
            active: active.as_deref() == Some(key.id.as_str()),
            wraps: counts.get(&key.id).copied().unwrap_or(0),
        })
        .collect())
}

/// Data keys not yet under the active KEK.
pub fn pending(conn: &mut DbConnection, keyring: &Keyring) -> Result<i64, KeyError> {
    let active = keyring
        .active(KeyPurpose::FieldKek)
        .map_err(|e| KeyError::Keyring(e.to_string()))?;
    let cases: i64 = case_keys::table
        .filter(case_keys::kek_id.ne(&active.id))
        .count()
        .get_result(conn)?;
    Ok(cases + crate::stats::unit_notes::pending(conn, &active.id)?)
}

/// Rewraps up to `limit` data keys under the active KEK in one transaction
/// (the cases' first, then the notes'); returns how many moved. A row
/// changed meanwhile is left for the next batch.
pub fn rewrap_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    clock: &dyn Clock,
    limit: i64,
) -> Result<usize, KeyError> {
    let active = keyring
        .active(KeyPurpose::FieldKek)
        .map_err(|e| KeyError::Keyring(e.to_string()))?
        .id
        .clone();
    write_transaction(conn, |conn| {
        let rows: Vec<(String, String, Vec<u8>, Option<String>)> = case_keys::table
            .filter(case_keys::kek_id.ne(&active))
            .order(case_keys::case_id.asc())
            .limit(limit)
            .select((
                case_keys::case_id,
                case_keys::kek_id,
                case_keys::wrapped_dek,
                case_keys::bound_school_id,
            ))
            .load(conn)?;
        let now = clock.now_naive();
        let mut moved = 0;
        for (case_id, old_kek, wrapped, bound_school) in rows {
            // A key bound to a school at a transfer stays bound to it.
            let bound = bound_school
                .as_deref()
                .map_or(KeyBinding::Case, KeyBinding::School);
            let dek = DataKey::unwrap_bound(keyring, &case_id, bound, &wrapped)?;
            let rewrapped = dek.wrap_bound(keyring, &case_id, bound)?;
            moved += diesel::update(
                case_keys::table
                    .filter(case_keys::case_id.eq(&case_id))
                    .filter(case_keys::kek_id.eq(&old_kek)),
            )
            .set((
                case_keys::kek_id.eq(&rewrapped.kek_id),
                case_keys::wrapped_dek.eq(&rewrapped.sealed),
                case_keys::rewrapped_at.eq(Some(now)),
            ))
            .execute(conn)?;
        }
        let room = limit - i64::try_from(moved).unwrap_or(limit);
        if room > 0 {
            moved += crate::stats::unit_notes::rewrap_batch(conn, keyring, room)?;
        }
        Ok(moved)
    })
}

/// KEKs that may be retired now: not active, wrapping nothing, replaced at
/// least [`RETIRE_AFTER`] ago.
pub fn retirable(
    conn: &mut DbConnection,
    keyring: &Keyring,
    clock: &dyn Clock,
) -> QueryResult<Vec<String>> {
    let counts = wraps_by_kek(conn)?;
    let keys = keyring.keys(KeyPurpose::FieldKek);
    let now = clock.now();
    Ok(keys
        .iter()
        .enumerate()
        .filter(|(i, key)| {
            let successor = keys.get(i + 1);
            successor.is_some_and(|next| now - next.created_at >= RETIRE_AFTER)
                && counts.get(&key.id).copied().unwrap_or(0) == 0
        })
        .map(|(_, key)| key.id.clone())
        .collect())
}

/// Records a rotation step in the audit log.
pub fn audit(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    what: &'static str,
    key_id: &str,
) -> Result<(), KeyError> {
    write_transaction(conn, |conn| {
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(what, Outcome::Success).target("key", key_id),
        )?;
        Ok::<(), KeyError>(())
    })
}

pub use action::{KEK_RETIRED, KEYS_ROTATED};
