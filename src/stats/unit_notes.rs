//! The evidence notes of the unit indicators, sealed at rest.
//!
//! A note is free text typed by a school ("training minutes no. 12", an
//! address, but it may name people), so it is stored like every other free
//! text: under a data key of its own (one per answer), the data key
//! wrapped by the keyring's field KEK as a case's is (DESIGN §4). The data
//! key is bound to the answer's row, unit, period and indicator, and so is
//! the note: a note or a key copied to another row, unit, period or
//! indicator fails to open. `keys rotate` rewraps these data keys with the
//! cases' ones (`cases::keys`), without touching the notes.
//!
//! Notes stored in plain text before migration 000021 are sealed by
//! [`seal_unsealed`] when the service starts and when `keys rotate` runs.
//!
//! This module must never log, print or return a note except to the
//! caller that opens it; only the unit's own focal points read them
//! (`unit_indicators::own_answers`).

use crate::crypto::envelope::{DataKey, SecretText};
use crate::crypto::keyring::{KeyPurpose, Keyring};
use crate::crypto::sealed::{Binding, SealError};
use crate::db::unit_indicators::{self as table, UnitEntryRow};
use crate::db::{DbConnection, write_transaction};

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("an evidence note cannot be sealed or opened: {0}")]
    Crypto(#[from] SealError),
}

/// Where a note belongs: its row and what the row answers.
#[derive(Debug, Clone, Copy)]
pub struct NotePlace<'a> {
    pub id: &'a str,
    pub school_id: &'a str,
    pub period: &'a str,
    pub indicator: &'a str,
}

impl<'a> NotePlace<'a> {
    pub fn of(row: &'a UnitEntryRow) -> Self {
        Self {
            id: &row.id,
            school_id: &row.school_id,
            period: &row.period,
            indicator: &row.indicator,
        }
    }

    /// The name the data key and the note are bound to (unit separators
    /// keep the parts apart).
    fn key_name(&self) -> String {
        format!(
            "unit_indicator_entries\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.id, self.school_id, self.period, self.indicator
        )
    }
}

fn binding(key_name: &str) -> Binding<'_> {
    Binding {
        table: "unit_indicator_entries",
        column: "evidence_enc",
        row_id: key_name,
        case_id: "",
    }
}

/// A note as stored: the wrapping KEK, the wrapped data key, the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedNote {
    pub kek_id: String,
    pub wrapped_dek: Vec<u8>,
    pub evidence_enc: Vec<u8>,
}

/// Seals `text` for `place` under a new data key, wrapped by the active
/// field KEK.
pub fn seal(keyring: &Keyring, place: NotePlace<'_>, text: &str) -> Result<SealedNote, SealError> {
    let name = place.key_name();
    let dek = DataKey::generate()?;
    let wrapped = dek.wrap(keyring, &name)?;
    Ok(SealedNote {
        kek_id: wrapped.kek_id,
        wrapped_dek: wrapped.sealed,
        evidence_enc: dek.seal(&binding(&name), text.as_bytes())?,
    })
}

/// Opens a row's note. A row whose note is not sealed yet, or whose sealed
/// note or key belongs elsewhere, does not open.
pub fn open(keyring: &Keyring, row: &UnitEntryRow) -> Result<SecretText, SealError> {
    let (Some(wrapped), Some(note)) = (&row.wrapped_dek, &row.evidence_enc) else {
        return Err(SealError::Open);
    };
    let name = NotePlace::of(row).key_name();
    DataKey::unwrap(keyring, &name, wrapped)?.open_text(&binding(&name), note)
}

/// Seals, in batches, every note stored in plain text before migration
/// 000021, and empties its plain column; returns how many it sealed.
/// Safe to run from several processes at once (a row sealed meanwhile is
/// left as it is).
pub fn seal_unsealed(conn: &mut DbConnection, keyring: &Keyring) -> Result<usize, NoteError> {
    let mut sealed = 0;
    loop {
        let done = write_transaction(conn, |conn| {
            let rows = table::unsealed(conn, 200)?;
            let mut done = 0;
            for row in &rows {
                let note = seal(keyring, NotePlace::of(row), &row.evidence_unsealed)?;
                done += table::set_sealed(
                    conn,
                    &row.id,
                    None,
                    (&note.kek_id, &note.wrapped_dek, &note.evidence_enc),
                )?;
            }
            Ok::<_, NoteError>((rows.len(), done))
        })?;
        sealed += done.1;
        if done.0 < 200 {
            break;
        }
    }
    if sealed > 0 {
        scrub_sqlite(conn);
    }
    Ok(sealed)
}

/// SQLite keeps the bytes of an overwritten value in free pages and in the
/// write-ahead log: vacuum the store and truncate the log, so the plain
/// notes just sealed are gone from the files. (PostgreSQL keeps a dead
/// row's bytes until its autovacuum reuses the space: docs/SECURITY.md.)
fn scrub_sqlite(conn: &mut DbConnection) {
    use diesel::connection::SimpleConnection;
    if let DbConnection::Sqlite(c) = conn
        && let Err(error) = c.batch_execute("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
    {
        tracing::warn!(%error, "sealed the plain evidence notes but could not vacuum the store");
    }
}

/// Note data keys not yet under the active KEK.
pub fn pending(conn: &mut DbConnection, active: &str) -> Result<i64, NoteError> {
    Ok(table::count_not_under(conn, active)?)
}

/// Rewraps up to `limit` note data keys under the active KEK (the notes
/// themselves stay as they are); returns how many moved. Inside the
/// caller's transaction.
pub fn rewrap_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    limit: i64,
) -> Result<usize, NoteError> {
    let active = keyring
        .active(KeyPurpose::FieldKek)
        .map_err(|_| SealError::BadKey)?
        .id
        .clone();
    let mut moved = 0;
    for row in table::not_under(conn, &active, limit)? {
        let (Some(old), Some(wrapped), Some(note)) =
            (&row.kek_id, &row.wrapped_dek, &row.evidence_enc)
        else {
            continue;
        };
        let name = NotePlace::of(&row).key_name();
        let rewrapped = DataKey::unwrap(keyring, &name, wrapped)?.wrap(keyring, &name)?;
        moved += table::set_sealed(
            conn,
            &row.id,
            Some(old),
            (&rewrapped.kek_id, &rewrapped.sealed, note),
        )?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn row(id: &str, school: &str, period: &str, indicator: &str) -> UnitEntryRow {
        UnitEntryRow {
            id: id.into(),
            school_id: school.into(),
            period: period.into(),
            indicator: indicator.into(),
            kind: "yes_no".into(),
            value: 1,
            evidence_unsealed: String::new(),
            submitted_by: "user".into(),
            submitted_at: chrono::NaiveDateTime::default(),
            kek_id: None,
            wrapped_dek: None,
            evidence_enc: None,
        }
    }

    #[test]
    fn a_note_opens_only_in_its_own_row() {
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let mut keyring = Keyring::default();
        keyring.add_key(KeyPurpose::FieldKek, &clock).unwrap();
        let mut home = row("r1", "s1", "year_end-2026", "staff_trained_on_abuse");
        let note = seal(&keyring, NotePlace::of(&home), "Canary Nguyễn Văn A").unwrap();
        assert!(!note.evidence_enc.windows(6).any(|w| w == b"Canary"));
        home.kek_id = Some(note.kek_id.clone());
        home.wrapped_dek = Some(note.wrapped_dek.clone());
        home.evidence_enc = Some(note.evidence_enc.clone());
        assert_eq!(
            open(&keyring, &home).unwrap().expose(),
            "Canary Nguyễn Văn A"
        );
        for elsewhere in [
            row("r2", "s1", "year_end-2026", "staff_trained_on_abuse"),
            row("r1", "s2", "year_end-2026", "staff_trained_on_abuse"),
            row("r1", "s1", "year_end-2025", "staff_trained_on_abuse"),
            row("r1", "s1", "year_end-2026", "website_gender_column"),
        ] {
            let moved = UnitEntryRow {
                kek_id: home.kek_id.clone(),
                wrapped_dek: home.wrapped_dek.clone(),
                evidence_enc: home.evidence_enc.clone(),
                ..elsewhere
            };
            assert_eq!(open(&keyring, &moved).unwrap_err(), SealError::Open);
        }
        // Not sealed: never read as plain text.
        let mut plain = row("r3", "s1", "year_end-2026", "staff_trained_on_abuse");
        plain.evidence_unsealed = "plain".into();
        assert_eq!(open(&keyring, &plain).unwrap_err(), SealError::Open);
    }
}
