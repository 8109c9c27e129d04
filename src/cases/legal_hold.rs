//! Legal hold (issue 16): while a case is held, retention keeps its content
//! past its date (`super::retention`). A district officer of the case's area
//! or an administrator sets and lifts it, with a coded reason and a note
//! (sealed under the case's key: it may name proceedings or people), through
//! the API, the command line and a page. Each change is one transaction: the
//! flag, the history row, the chronology entry and the audit entry. The
//! case's focal points see the hold on the case.
//!
//! Must never: decrypt anything for the holder (neither role reads cases),
//! or hold a case whose content is already destroyed.

use chrono::NaiveDateTime;

use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::SecretText;
use crate::db::cases::{self as table, ChronologyRow};
use crate::db::legal_holds::{self as holds, LegalHoldRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::taxonomy::Taxonomy;

/// The shortest note a hold's change takes (a reason someone can act on).
pub const NOTE_MIN_CHARS: usize = 10;
/// The longest.
pub const NOTE_MAX_CHARS: usize = 2_000;

/// A requested setting (`held`) or lifting of the hold, parsed.
#[derive(Debug)]
pub struct HoldChange {
    pub held: bool,
    reason: String,
    note: SecretText,
}

impl HoldChange {
    /// `reason` is a code of `legal_hold_reason` (setting) or
    /// `legal_hold_lift_reason` (lifting); the note is 10 to 2000 characters.
    /// Each problem names its field, never the value sent.
    pub fn parse(
        held: bool,
        reason: &str,
        note: &str,
        taxonomy: &Taxonomy,
    ) -> Result<Self, Vec<FieldError>> {
        let category = if held {
            "legal_hold_reason"
        } else {
            "legal_hold_lift_reason"
        };
        let mut problems = Vec::new();
        let reason = taxonomy
            .code(category, reason)
            .map_err(|rule| problems.push(FieldError::new("reason", rule)))
            .ok();
        let note = note.trim();
        let length = note.chars().count();
        if !(NOTE_MIN_CHARS..=NOTE_MAX_CHARS).contains(&length) {
            problems.push(FieldError::new(
                "note",
                format!("must be {NOTE_MIN_CHARS} to {NOTE_MAX_CHARS} characters"),
            ));
        }
        match reason {
            Some(reason) if problems.is_empty() => Ok(Self {
                held,
                reason,
                note: SecretText::new(note.to_owned()),
            }),
            _ => Err(problems),
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The hold of a case as its holders see it: no note, nothing decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldStatus {
    pub case_id: String,
    pub held: bool,
    /// The latest change: reason code, by whom, when.
    pub latest: Option<(String, String, NaiveDateTime)>,
    pub content_destroyed: bool,
}

/// The hold of a case, for a holder (no content).
pub fn status(
    conn: &mut DbConnection,
    by: &Capability,
    case_id: &str,
) -> Result<HoldStatus, CaseError> {
    if !by.allows_case(Action::CaseLegalHold, case_id) {
        return Err(CaseError::NotFound);
    }
    let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    let latest = holds::latest_of(conn, case_id)?.map(|h| (h.reason, h.decided_by, h.decided_at));
    Ok(HoldStatus {
        case_id: case.id,
        held: case.legal_hold,
        latest,
        content_destroyed: case.content_destroyed_at.is_some(),
    })
}

/// Sets or lifts the hold. Setting a held case or lifting one that is not
/// held is refused (nothing changes).
pub fn change(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    change: &HoldChange,
) -> Result<HoldStatus, CaseError> {
    if !by.allows_case(Action::CaseLegalHold, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        if case.legal_hold == change.held {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "held",
                if change.held {
                    "the case is already under a legal hold"
                } else {
                    "the case is not under a legal hold"
                },
            )]));
        }
        let now = context.clock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        let dek = case_key(conn, context, case_id)?;
        let note_enc = dek.seal(
            &binding("legal_holds", "note_enc", &id, case_id),
            change.note.expose().as_bytes(),
        )?;
        holds::insert(
            conn,
            &LegalHoldRow {
                id: id.clone(),
                case_id: case_id.to_owned(),
                held: change.held,
                reason: change.reason.clone(),
                note_enc: Some(note_enc),
                decided_by: author.clone(),
                decided_at: now,
            },
        )?;
        table::set_legal_hold(conn, case_id, change.held)?;
        table::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: format!(
                    "legal_hold:{}:{}",
                    if change.held { "set" } else { "lifted" },
                    change.reason
                ),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(
                by,
                if change.held {
                    action::LEGAL_HOLD_SET
                } else {
                    action::LEGAL_HOLD_LIFTED
                },
                case_id,
            )
            .detail("reason", change.reason.clone())
            .detail("legal_hold", id),
        )?;
        Ok(HoldStatus {
            case_id: case_id.to_owned(),
            held: change.held,
            latest: Some((change.reason.clone(), author.clone(), now)),
            content_destroyed: false,
        })
    })
}

/// The hold in force on a case, with its note opened, for a reader of the
/// case (its focal points).
pub struct HoldView {
    pub reason: String,
    pub note: Option<SecretText>,
    pub decided_by: String,
    pub decided_at: NaiveDateTime,
}

/// The hold in force, for a reader of the case; `None` when not held.
pub fn in_force(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<Option<HoldView>, CaseError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(CaseError::NotFound);
    }
    let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    if !case.legal_hold {
        return Ok(None);
    }
    let Some(row) = holds::latest_of(conn, case_id)?.filter(|h| h.held) else {
        return Ok(None);
    };
    let note = match &row.note_enc {
        Some(sealed) => Some(case_key(conn, context, case_id)?.open_text(
            &binding("legal_holds", "note_enc", &row.id, case_id),
            sealed,
        )?),
        None => None,
    };
    Ok(Some(HoldView {
        reason: row.reason,
        note,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
    }))
}
