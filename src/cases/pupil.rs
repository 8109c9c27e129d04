//! One pupil's cases at one school (issue 16): found by the blind index of
//! the pupil's identity (DESIGN §4: exact match on name and date of birth,
//! computed at intake), and their chronologies merged in time order.
//!
//! Must never: search by anything but the stored blind index, reach a case
//! of another school, or open a case's chronology without a `case.read`
//! capability for that very case (each opening is audited, fail closed).

use super::{CaseContext, CaseError, ChronologyView, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::cases::{self as table, CaseRow};
use crate::db::{DbConnection, write_transaction};

/// The fields a per-pupil chronology opens, for the audit entries.
pub const CHRONOLOGY_FIELDS: &str = "chronology.note";

/// Every case of the pupil of `case_id` at its school, this one included,
/// oldest first. Needs `case.read` on `case_id`; opens nothing.
pub fn cases_of_pupil(
    conn: &mut DbConnection,
    by: &Capability,
    case_id: &str,
) -> Result<Vec<CaseRow>, CaseError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(CaseError::NotFound);
    }
    let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    // A destroyed case has no pupil row any more, hence no index: alone.
    let Some(pupil) = table::pupil(conn, case_id)? else {
        return Ok(vec![case]);
    };
    Ok(table::with_blind_index(
        conn,
        &case.school_id,
        &pupil.blind_index,
    )?)
}

/// One entry of a per-pupil chronology.
#[derive(Debug, Clone)]
pub struct PupilEntry {
    pub case_id: String,
    pub entry: ChronologyView,
}

/// The chronologies of `cases` merged in time order (oldest first). Each
/// case needs its own `case.read` capability (`(capability, case id)`);
/// each opening is audited in the same transaction. A case whose content
/// was destroyed shows its entries without notes.
pub fn chronology(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    cases: &[(Capability, String)],
) -> Result<Vec<PupilEntry>, CaseError> {
    if cases
        .iter()
        .any(|(by, id)| !by.allows_case(Action::CaseRead, id))
    {
        return Err(CaseError::NotFound);
    }
    write_transaction(conn, |conn| {
        let mut entries = Vec::new();
        for (by, case_id) in cases {
            let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
            let dek = match case.content_destroyed_at {
                Some(_) => None,
                None => Some(case_key(conn, context, case_id)?),
            };
            for row in table::chronology_of(conn, case_id)? {
                let note =
                    match (&dek, row.note_enc.as_deref()) {
                        (Some(dek), Some(stored)) => Some(dek.open_text(
                            &binding("chronology", "note_enc", &row.id, case_id),
                            stored,
                        )?),
                        _ => None,
                    };
                entries.push(PupilEntry {
                    case_id: case_id.clone(),
                    entry: ChronologyView { row, note },
                });
            }
            context.auditor.append(
                conn,
                context.clock,
                &case_event(by, action::CASE_READ, case_id.clone())
                    .detail("fields", CHRONOLOGY_FIELDS)
                    .detail("via", "pupil_chronology"),
            )?;
        }
        entries.sort_by(|a, b| {
            (a.entry.row.created_at, &a.entry.row.id)
                .cmp(&(b.entry.row.created_at, &b.entry.row.id))
        });
        Ok(entries)
    })
}
