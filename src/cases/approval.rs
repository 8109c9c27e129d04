//! Approval of closure (issue 16, after Primero's approvals): closing a case
//! whose risk is high, or any case with a statutory report, needs a second
//! person. The closing focal point *requests* closure with the reason and a
//! note; **another** focal point of the same school approves it (the case
//! closes) or returns it with a note (it stays open). Each step is in the
//! chronology and the audit log, in the transaction that makes it.
//!
//! Must never: let the person who asked approve their own request, close a
//! case with an open referral, or leave a second pending request beside the
//! first.

use super::lifecycle::{ClosureReason, chronology_note, next_statuses};
use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::SecretText;
use crate::db::cases::{self as table, CaseRow, ChronologyRow};
use crate::db::closure_requests::{self as requests, ClosureRequestRow};
use crate::db::{DbConnection, write_transaction};

/// The risk levels whose closure needs approval (taxonomy codes).
pub const APPROVAL_RISKS: &[&str] = &["high", "immediate_danger"];

/// Whether closing `case` needs a second person's approval: its risk is or
/// ever was high (lowering it first does not dodge the second person), or a
/// statutory report was made for it (whatever became of it).
pub fn needed(conn: &mut DbConnection, case: &CaseRow) -> Result<bool, CaseError> {
    if APPROVAL_RISKS.contains(&case.risk_level.as_str()) {
        return Ok(true);
    }
    // Risk changes are in the chronology as `risk:{from}->{to}`.
    let was_high = table::risk_changes_of(conn, &case.id)?.iter().any(|kind| {
        kind.strip_prefix("risk:")
            .and_then(|change| change.split_once("->"))
            .is_some_and(|(from, to)| {
                APPROVAL_RISKS.contains(&from) || APPROVAL_RISKS.contains(&to)
            })
    });
    Ok(was_high || crate::db::referrals::statutory_count_of_case(conn, &case.id)? > 0)
}

/// A closure request, parsed: the API and the case page build it here.
pub struct ClosureRequest {
    pub expected_version: i32,
    pub closure_reason: ClosureReason,
    pub note: SecretText,
}

/// A decision on a pending request, parsed.
pub struct Decision {
    /// The request decided on (the one the approver saw).
    pub request_id: String,
    pub expected_version: i32,
    pub approve: bool,
    /// Optional for an approval, required to return a request.
    pub note: Option<SecretText>,
}

fn problem(field: &str, rule: &str) -> CaseError {
    CaseError::Invalid(vec![FieldError::new(field, rule)])
}

fn check_version(case: &CaseRow, expected: i32) -> Result<(), CaseError> {
    if case.version == expected {
        Ok(())
    } else {
        Err(CaseError::Stale {
            current: case.version,
        })
    }
}

/// What must be finished before a case closes: its referrals answered or
/// withdrawn, and no transfer to another school still open (the receiving
/// school would otherwise be asked to take a closed case).
pub(super) fn nothing_open(conn: &mut DbConnection, case_id: &str) -> Result<(), CaseError> {
    if crate::db::referrals::open_count_of_case(conn, case_id)? > 0 {
        return Err(problem(
            "status",
            "cannot be closed while referrals are open: wait for the agencies' answers or withdraw them",
        ));
    }
    if crate::db::transfers::open_of_case(conn, case_id)?.is_some() {
        return Err(problem(
            "transfer",
            "cannot be closed while a transfer to another school is open: cancel it or wait for the answer",
        ));
    }
    Ok(())
}

fn seal(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    case_id: &str,
    row_id: &str,
    column: &str,
    note: &SecretText,
) -> Result<Vec<u8>, CaseError> {
    let dek = case_key(conn, context, case_id)?;
    Ok(dek.seal(
        &binding("closure_requests", column, row_id, case_id),
        note.expose().as_bytes(),
    )?)
}

/// Asks for the closure of a case that needs approval. Refused when it needs
/// none (close it directly), is already closed, has an open referral or
/// already awaits a decision.
pub fn request(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    asked: &ClosureRequest,
) -> Result<ClosureRequestRow, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        check_version(&case, asked.expected_version)?;
        if !next_statuses(&case.status).contains(&"closed") {
            return Err(CaseError::InvalidTransition {
                from: case.status.clone(),
                allowed: next_statuses(&case.status)
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            });
        }
        if !needed(conn, &case)? {
            return Err(problem(
                "closure_request",
                "is not needed for this case: close it directly",
            ));
        }
        if requests::pending_of(conn, case_id)?.is_some() {
            return Err(CaseError::ClosureAwaitingApproval);
        }
        nothing_open(conn, case_id)?;
        let now = context.clock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        let row = ClosureRequestRow {
            id: id.clone(),
            case_id: case_id.to_owned(),
            closure_reason: asked.closure_reason.as_str().to_owned(),
            note_enc: seal(conn, context, case_id, &id, "note_enc", &asked.note)?,
            requested_by: author.clone(),
            requested_at: now,
            status: requests::PENDING.to_owned(),
            decided_by: None,
            decided_at: None,
            decision_note_enc: None,
        };
        requests::insert(conn, &row)?;
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: format!("closure_requested:{}", asked.closure_reason.as_str()),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            Some(&asked.note),
        )?;
        table::touch(conn, case_id, now)?;
        crate::referrals::notices::closure_requested(
            conn,
            context,
            &case.school_id,
            case_id,
            &id,
            &author,
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CLOSURE_REQUESTED, case_id)
                .detail("closure_request", id)
                .detail("closure_reason", asked.closure_reason.as_str()),
        )?;
        Ok(row)
    })
}

/// Approves (the case closes) or returns (it stays open) the pending
/// request. The person who asked cannot decide on it.
pub fn decide(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    decision: &Decision,
) -> Result<CaseRow, CaseError> {
    if !by.allows_case(Action::CaseApproveClosure, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        let pending = requests::pending_of(conn, case_id)?
            .filter(|r| r.id == decision.request_id)
            .ok_or_else(|| {
                problem(
                    "request_id",
                    "is not the closure request awaiting a decision",
                )
            })?;
        if pending.requested_by == author {
            return Err(CaseError::OwnClosureRequest);
        }
        check_version(&case, decision.expected_version)?;
        if !decision.approve && decision.note.is_none() {
            return Err(problem("note", "is required to return a closure request"));
        }
        if decision.approve {
            nothing_open(conn, case_id)?;
        }
        let now = context.clock.now_naive();
        let decision_note = decision
            .note
            .as_ref()
            .map(|n| seal(conn, context, case_id, &pending.id, "decision_note_enc", n))
            .transpose()?;
        let status = if decision.approve {
            requests::APPROVED
        } else {
            requests::RETURNED
        };
        if !requests::decide(conn, &pending.id, status, &author, now, decision_note)? {
            return Err(problem("request_id", "was decided on meanwhile"));
        }
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: if decision.approve {
                    "closure_approved".to_owned()
                } else {
                    "closure_returned".to_owned()
                },
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            decision.note.as_ref(),
        )?;
        if decision.approve {
            close(conn, context, by, &case, &pending, now)?;
        } else {
            table::touch(conn, case_id, now)?;
        }
        crate::referrals::notices::closure_decided(
            conn,
            context,
            &case.school_id,
            case_id,
            &pending.id,
            &pending.requested_by,
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(
                by,
                if decision.approve {
                    action::CLOSURE_APPROVED
                } else {
                    action::CLOSURE_RETURNED
                },
                case_id,
            )
            .detail("closure_request", pending.id.clone())
            .detail("requested_by", pending.requested_by.clone()),
        )?;
        table::find(conn, case_id)?.ok_or(CaseError::NotFound)
    })
}

/// Closes the case on an approved request, as a transition would.
fn close(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case: &CaseRow,
    request: &ClosureRequestRow,
    now: chrono::NaiveDateTime,
) -> Result<(), CaseError> {
    if !next_statuses(&case.status).contains(&"closed") {
        return Err(CaseError::InvalidTransition {
            from: case.status.clone(),
            allowed: Vec::new(),
        });
    }
    if !table::set_status(conn, &case.id, case.version, "closed", Some(now), now)? {
        let current = table::find(conn, &case.id)?.map_or(case.version, |c| c.version);
        return Err(CaseError::Stale { current });
    }
    table::insert_chronology(
        conn,
        &ChronologyRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: case.id.clone(),
            kind: format!("closed:{}", request.closure_reason),
            from_status: Some(case.status.clone()),
            to_status: Some("closed".to_owned()),
            note_enc: None,
            author_id: by.author(),
            created_at: now,
        },
    )?;
    context.auditor.append(
        conn,
        context.clock,
        &case_event(by, action::CASE_UPDATED, case.id.clone())
            .detail("from", case.status.clone())
            .detail("to", "closed")
            .detail("closure_request", request.id.clone()),
    )?;
    crate::referrals::clocks::on_status(conn, &case.id, "closed", now)?;
    Ok(())
}

/// The pending request of a case, as its focal points see it.
pub struct PendingClosure {
    pub id: String,
    pub closure_reason: String,
    pub note: SecretText,
    pub requested_by: String,
    pub requested_at: chrono::NaiveDateTime,
}

/// The request awaiting a decision, its note opened for a reader of the case
/// (the read is audited by the caller's read of the case file).
pub fn pending(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<Option<PendingClosure>, CaseError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(CaseError::NotFound);
    }
    let Some(row) = requests::pending_of(conn, case_id)? else {
        return Ok(None);
    };
    let dek = case_key(conn, context, case_id)?;
    let note = dek.open_text(
        &binding("closure_requests", "note_enc", &row.id, case_id),
        &row.note_enc,
    )?;
    Ok(Some(PendingClosure {
        id: row.id,
        closure_reason: row.closure_reason,
        note,
        requested_by: row.requested_by,
        requested_at: row.requested_at,
    }))
}
