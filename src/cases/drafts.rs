//! Intake drafts: what a focal point has typed before the case is saved, so
//! a dropped connection or an expired session loses nothing. Sealed under a
//! data key of the draft's own (wrapped by the keyring's field KEK), one per
//! person, replaced on every save, gone when the case is saved or after
//! [`DRAFT_DAYS`]. A draft whose key can no longer be opened (the KEK was
//! retired) is treated as missing.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::CaseError;
use crate::audit::{Actor, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::clock::Clock;
use crate::crypto::envelope::DataKey;
use crate::crypto::keyring::Keyring;
use crate::crypto::sealed::Binding;
use crate::db::schema::drafts;
use crate::db::{DbConnection, write_transaction};

/// A draft's form fields, as typed.
pub type DraftFields = Vec<(String, String)>;

/// How long a draft is kept.
pub const DRAFT_DAYS: i64 = 7;
/// The most a draft may hold (the intake form's fields and their limits).
pub const MAX_DRAFT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = drafts)]
struct DraftRow {
    user_id: String,
    kek_id: String,
    wrapped_dek: Vec<u8>,
    payload_enc: Vec<u8>,
    saved_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

fn key_id(user_id: &str) -> String {
    format!("draft:{user_id}")
}

fn binding<'a>(user_id: &'a str, key: &'a str) -> Binding<'a> {
    Binding {
        table: "drafts",
        column: "payload_enc",
        row_id: user_id,
        case_id: key,
    }
}

/// Saves (replaces) the person's draft.
pub fn save(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    actor: &Actor,
    request: &RequestContext,
    fields: &[(String, String)],
) -> Result<(), CaseError> {
    let payload = serde_json::to_vec(fields).unwrap_or_default();
    if payload.len() > MAX_DRAFT_BYTES {
        return Err(CaseError::Invalid(vec![super::FieldError::new(
            "draft",
            "is too large",
        )]));
    }
    let key = key_id(&actor.user_id);
    let dek = DataKey::generate()?;
    let wrapped = dek.wrap(keyring, &key)?;
    let payload_enc = dek.seal(&binding(&actor.user_id, &key), &payload)?;
    let now = clock.now_naive();
    let row = DraftRow {
        user_id: actor.user_id.clone(),
        kek_id: wrapped.kek_id,
        wrapped_dek: wrapped.sealed,
        payload_enc,
        saved_at: now,
        expires_at: now + Duration::days(DRAFT_DAYS),
    };
    write_transaction(conn, |conn| {
        diesel::delete(drafts::table.find(&actor.user_id)).execute(conn)?;
        diesel::insert_into(drafts::table)
            .values(&row)
            .execute(conn)?;
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::DRAFT_SAVED, Outcome::Success)
                .actor(Some(actor.clone()))
                .request(request)
                .target("draft", actor.user_id.clone()),
        )?;
        Ok(())
    })
}

/// The person's draft and when it was saved, if there is a live one.
pub fn load(
    conn: &mut DbConnection,
    keyring: &Keyring,
    clock: &dyn Clock,
    user_id: &str,
) -> Result<Option<(DraftFields, NaiveDateTime)>, CaseError> {
    let row: Option<DraftRow> = drafts::table
        .find(user_id)
        .select(DraftRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row.filter(|r| r.expires_at > clock.now_naive()) else {
        return Ok(None);
    };
    let key = key_id(user_id);
    let Ok(dek) = DataKey::unwrap(keyring, &key, &row.wrapped_dek) else {
        return Ok(None);
    };
    let Ok(payload) = dek.open(&binding(user_id, &key), &row.payload_enc) else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(payload.expose())
        .ok()
        .map(|fields| (fields, row.saved_at)))
}

/// Drops the person's draft (the case was saved).
pub fn discard(conn: &mut DbConnection, user_id: &str) -> Result<(), CaseError> {
    diesel::delete(drafts::table.find(user_id)).execute(conn)?;
    Ok(())
}

/// Drops drafts past their time (run with retention).
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, CaseError> {
    Ok(diesel::delete(drafts::table.filter(drafts::expires_at.le(now))).execute(conn)?)
}
