//! The case lifecycle (DESIGN §2): `reported → assessing → action_planned →
//! in_progress → resolved → closed`, `closed → reopened → assessing`, and
//! closing from any open state. Every transition is guarded by the policy
//! (`case.update`), checks its preconditions, bumps the case's version
//! (a stale version is refused, never silently overwritten) and writes a
//! chronology entry and an audit entry in the same transaction.

use super::{CaseContext, CaseError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::SecretText;
use crate::db::cases::{self as table, CaseRow, ChronologyRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::taxonomy::Taxonomy;

pub const STATUSES: &[&str] = &[
    "reported",
    "assessing",
    "action_planned",
    "in_progress",
    "resolved",
    "closed",
    "reopened",
];

/// Where a case may go from `status` (closing is allowed from every open
/// state and listed too).
pub fn next_statuses(status: &str) -> &'static [&'static str] {
    match status {
        "reported" => &["assessing", "closed"],
        "assessing" => &["action_planned", "closed"],
        "action_planned" => &["in_progress", "closed"],
        "in_progress" => &["resolved", "closed"],
        "resolved" => &["closed", "in_progress"],
        "closed" => &["reopened"],
        "reopened" => &["assessing", "closed"],
        _ => &[],
    }
}

/// A status a case can be in: one of [`STATUSES`], and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseStatus(&'static str);

impl CaseStatus {
    pub const CLOSED: Self = Self("closed");
    pub const REOPENED: Self = Self("reopened");

    pub fn parse(raw: &str) -> Option<Self> {
        STATUSES
            .iter()
            .find(|status| **status == raw)
            .map(|status| Self(status))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Why a case was closed: a code of the taxonomy's `closure_reason` list.
/// It is written into the chronology's plain `kind` column, so nothing but a
/// known code may ever get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureReason(String);

impl ClosureReason {
    /// The code, or why it is not one (the message does not repeat it).
    pub fn parse(raw: &str, taxonomy: &Taxonomy) -> Result<Self, String> {
        taxonomy.code("closure_reason", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A requested transition, parsed: the API and the case page both build it
/// with [`Transition::parse`] and nothing else.
pub struct Transition {
    pub to: CaseStatus,
    pub expected_version: i32,
    pub note: Option<SecretText>,
    pub closure_reason: Option<ClosureReason>,
}

/// Why a requested transition could not be parsed; each names its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionProblem {
    #[error("`to` must be one of: {}.", STATUSES.join(", "))]
    UnknownStatus,
    #[error("`closure_reason`: {0}")]
    ClosureReason(String),
    #[error("`note` is longer than {NOTE_MAX_CHARS} characters.")]
    NoteTooLong,
}

impl TransitionProblem {
    /// The form field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownStatus => "to",
            Self::ClosureReason(_) => "closure_reason",
            Self::NoteTooLong => "note",
        }
    }
}

impl From<TransitionProblem> for CaseError {
    fn from(problem: TransitionProblem) -> Self {
        let rule = match &problem {
            TransitionProblem::UnknownStatus => {
                format!("must be one of: {}", STATUSES.join(", "))
            }
            TransitionProblem::ClosureReason(rule) => rule.clone(),
            TransitionProblem::NoteTooLong => {
                format!("is longer than {NOTE_MAX_CHARS} characters")
            }
        };
        CaseError::Invalid(vec![super::FieldError::new(problem.field(), rule)])
    }
}

impl Transition {
    /// Parses a transition as sent: the status, the version it was seen at,
    /// an optional note and an optional closure reason (a form leaves an
    /// empty field out; an empty reason sent is not a known code).
    pub fn parse(
        to: &str,
        expected_version: i32,
        note: Option<&str>,
        closure_reason: Option<&str>,
        taxonomy: &Taxonomy,
    ) -> Result<Self, TransitionProblem> {
        let to = CaseStatus::parse(to).ok_or(TransitionProblem::UnknownStatus)?;
        let closure_reason = closure_reason
            .map(|r| ClosureReason::parse(r, taxonomy))
            .transpose()
            .map_err(TransitionProblem::ClosureReason)?;
        let note = note_text(note).map_err(|TooLong| TransitionProblem::NoteTooLong)?;
        Ok(Self {
            to,
            expected_version,
            note,
            closure_reason,
        })
    }
}

pub(crate) fn chronology_note(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    case_id: &str,
    row: ChronologyRow,
    note: Option<&SecretText>,
) -> Result<(), CaseError> {
    let note_enc = match note {
        Some(note) => {
            let dek = case_key(conn, context, case_id)?;
            Some(dek.seal(
                &binding("chronology", "note_enc", &row.id, case_id),
                note.expose().as_bytes(),
            )?)
        }
        None => None,
    };
    table::insert_chronology(conn, &ChronologyRow { note_enc, ..row })?;
    Ok(())
}

/// Moves a case to another status.
pub fn transition(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    change: &Transition,
) -> Result<CaseRow, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.version != change.expected_version {
            return Err(CaseError::Stale {
                current: case.version,
            });
        }
        let allowed = next_statuses(&case.status);
        if !allowed.contains(&change.to.as_str()) {
            return Err(CaseError::InvalidTransition {
                from: case.status.clone(),
                allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
        let closing = change.to == CaseStatus::CLOSED;
        if closing && (change.closure_reason.is_none() || change.note.is_none()) {
            return Err(CaseError::Invalid(vec![super::FieldError::new(
                "closure_reason",
                "and `note` are required to close a case",
            )]));
        }
        if change.to == CaseStatus::REOPENED && change.note.is_none() {
            return Err(CaseError::Invalid(vec![super::FieldError::new(
                "note",
                "is required to reopen a case",
            )]));
        }
        if closing {
            super::approval::nothing_open(conn, case_id)?;
        }
        // A high-risk case, or one with a statutory report, closes only on
        // a second person's approval (super::approval).
        if closing && super::approval::needed(conn, &case)? {
            return Err(CaseError::ClosureNeedsApproval);
        }
        let now = context.clock.now_naive();
        let closed_at = if closing { Some(now) } else { None };
        if !table::set_status(
            conn,
            case_id,
            case.version,
            change.to.as_str(),
            closed_at,
            now,
        )? {
            let current = table::find(conn, case_id)?.map_or(case.version, |c| c.version);
            return Err(CaseError::Stale { current });
        }
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: if closing {
                    format!(
                        "closed:{}",
                        change
                            .closure_reason
                            .as_ref()
                            .map_or("", ClosureReason::as_str)
                    )
                } else {
                    "transition".to_owned()
                },
                from_status: Some(case.status.clone()),
                to_status: Some(change.to.as_str().to_owned()),
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            change.note.as_ref(),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_UPDATED, case_id)
                .detail("from", case.status.clone())
                .detail("to", change.to.as_str()),
        )?;
        crate::referrals::clocks::on_status(conn, case_id, change.to.as_str(), now)?;
        table::find(conn, case_id)?.ok_or(CaseError::NotFound)
    })
}

/// Adds a note to the chronology.
/// The longest free-text note (chronology notes, a move's note).
pub const NOTE_MAX_CHARS: usize = 10_000;

/// A note as typed: trimmed, empty as none, refused when longer than
/// [`NOTE_MAX_CHARS`]. The API and the case page share it.
pub fn note_text(raw: Option<&str>) -> Result<Option<SecretText>, TooLong> {
    let Some(note) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > NOTE_MAX_CHARS {
        return Err(TooLong);
    }
    Ok(Some(SecretText::new(note.to_owned())))
}

/// A note over [`NOTE_MAX_CHARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

pub fn add_note(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    note: &SecretText,
) -> Result<(), CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let now = context.clock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: id.clone(),
                case_id: case_id.to_owned(),
                kind: "note".to_owned(),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            Some(note),
        )?;
        table::touch(conn, case_id, now)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_UPDATED, case_id).detail("chronology_entry", id),
        )?;
        Ok(())
    })
}

/// A change of coded fields.
pub struct CodedChange {
    pub expected_version: i32,
    pub risk_level: Option<String>,
    pub disability: Option<bool>,
}

/// Changes coded fields under the version check; the chronology records it.
pub fn update_coded(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    change: &CodedChange,
) -> Result<CaseRow, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.version != change.expected_version {
            return Err(CaseError::Stale {
                current: case.version,
            });
        }
        let risk = change
            .risk_level
            .clone()
            .unwrap_or_else(|| case.risk_level.clone());
        let disability = change.disability.unwrap_or(case.disability);
        let now = context.clock.now_naive();
        if !table::update_coded(conn, case_id, case.version, &risk, disability, now)? {
            let current = table::find(conn, case_id)?.map_or(case.version, |c| c.version);
            return Err(CaseError::Stale { current });
        }
        table::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: if risk == case.risk_level {
                    "updated".to_owned()
                } else {
                    format!("risk:{}->{risk}", case.risk_level)
                },
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
            &case_event(by, action::CASE_UPDATED, case_id)
                .detail("risk_level", risk.clone())
                .detail("disability", disability.to_string()),
        )?;
        crate::referrals::clocks::plan(conn, context, case_id)?;
        table::find(conn, case_id)?.ok_or(CaseError::NotFound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_trimmed_empty_is_none_and_length_is_bounded() {
        assert_eq!(
            note_text(None).unwrap().map(|n| n.expose().to_owned()),
            None
        );
        assert!(note_text(Some("  \n ")).unwrap().is_none());
        assert_eq!(
            note_text(Some("  Gọi cho mẹ em. "))
                .unwrap()
                .unwrap()
                .expose(),
            "Gọi cho mẹ em."
        );
        let longest = "ă".repeat(NOTE_MAX_CHARS);
        assert!(note_text(Some(&longest)).unwrap().is_some());
        assert_eq!(
            note_text(Some(&format!("{longest}a"))).unwrap_err(),
            TooLong
        );
    }

    fn taxonomy() -> Taxonomy {
        Taxonomy::load(None).unwrap()
    }

    #[test]
    fn a_transition_is_parsed_once_for_api_and_page() {
        let t = taxonomy();
        let closing =
            Transition::parse("closed", 3, Some(" Đã xong. "), Some("needs_met"), &t).unwrap();
        assert_eq!(closing.to, CaseStatus::CLOSED);
        assert_eq!(closing.expected_version, 3);
        assert_eq!(closing.closure_reason.unwrap().as_str(), "needs_met");
        assert_eq!(closing.note.unwrap().expose(), "Đã xong.");
        assert!(
            Transition::parse("assessing", 1, None, None, &t)
                .unwrap()
                .closure_reason
                .is_none()
        );
        // Exactly a status: no padding, no other case.
        assert!(Transition::parse(" closed", 1, None, None, &t).is_err());
        assert!(Transition::parse("Closed", 1, None, None, &t).is_err());
    }

    #[test]
    fn free_text_never_passes_for_a_status_or_closure_reason() {
        let t = taxonomy();
        assert_eq!(
            Transition::parse("deleted", 1, None, None, &t).err(),
            Some(TransitionProblem::UnknownStatus)
        );
        assert!(matches!(
            Transition::parse("closed", 1, Some("note"), Some(""), &t),
            Err(TransitionProblem::ClosureReason(_))
        ));
        let crafted = "needs_met; tên học sinh Nguyễn Thị A";
        let problem = Transition::parse("closed", 1, Some("note"), Some(crafted), &t)
            .err()
            .unwrap();
        assert_eq!(problem.field(), "closure_reason");
        // The message names the rule, never the value sent.
        assert!(!problem.to_string().contains("Nguyễn"), "{problem}");
        let long = "a".repeat(NOTE_MAX_CHARS + 1);
        assert_eq!(
            Transition::parse("closed", 1, Some(&long), Some("needs_met"), &t).err(),
            Some(TransitionProblem::NoteTooLong)
        );
    }
}
