//! The assigned case worker (issue 16): a focal point of the case's school.
//! A case a focal point records is theirs by default; a reporter's is
//! unassigned until a focal point assigns it. Reassigning is a change of the
//! case (version-checked), in the chronology and the audit log.
//!
//! Must never: assign a case to anyone but an active focal point of its
//! school.

use super::{CaseContext, CaseError, FieldError, case_event};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::cases::{self as table, CaseRow, ChronologyRow};
use crate::db::{DbConnection, users, write_transaction};
use crate::domain::user::Role;

/// A requested assignment, parsed: the API and the case page build it here.
pub struct Assignment {
    pub expected_version: i32,
    /// The user to assign, or `None` to leave the case unassigned.
    pub assignee: Option<String>,
}

impl Assignment {
    /// An assignee is a user id (a UUID); empty means no one.
    pub fn parse(assignee: Option<&str>, expected_version: i32) -> Result<Self, CaseError> {
        let assignee = assignee.map(str::trim).filter(|a| !a.is_empty());
        if let Some(id) = assignee
            && uuid::Uuid::parse_str(id).is_err()
        {
            return Err(not_a_focal_point());
        }
        Ok(Self {
            expected_version,
            assignee: assignee.map(str::to_owned),
        })
    }
}

fn not_a_focal_point() -> CaseError {
    CaseError::Invalid(vec![FieldError::new(
        "assignee",
        "must be an active focal point of the case's school",
    )])
}

/// Whether `user_id` is an active focal point of `school_id`.
pub fn is_active_focal_point(
    conn: &mut DbConnection,
    user_id: &str,
    school_id: &str,
) -> Result<bool, CaseError> {
    Ok(users::find(conn, user_id)?.is_some_and(|u| {
        u.role == Role::FocalPoint.as_str() && u.org_id == school_id && u.disabled_at.is_none()
    }))
}

/// The active focal points of a school, `(id, display name)`, by name: who a
/// case can be assigned to.
pub fn candidates(
    conn: &mut DbConnection,
    school_id: &str,
) -> Result<Vec<(String, String)>, CaseError> {
    Ok(users::active_of_org_with_role(
        conn,
        school_id,
        Role::FocalPoint.as_str(),
    )?)
}

/// Assigns the case (or unassigns it).
pub fn assign(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    change: &Assignment,
) -> Result<CaseRow, CaseError> {
    if !by.allows_case(Action::CaseAssign, case_id) {
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
        if let Some(assignee) = &change.assignee
            && !is_active_focal_point(conn, assignee, &case.school_id)?
        {
            return Err(not_a_focal_point());
        }
        let now = context.clock.now_naive();
        if !table::set_assignee(conn, case_id, case.version, change.assignee.as_deref(), now)? {
            let current = table::find(conn, case_id)?.map_or(case.version, |c| c.version);
            return Err(CaseError::Stale { current });
        }
        table::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                // An operational id, like the author's.
                kind: change
                    .assignee
                    .as_ref()
                    .map_or_else(|| "unassigned".to_owned(), |a| format!("assigned:{a}")),
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
            &case_event(by, action::CASE_ASSIGNED, case_id)
                .detail("from", case.assigned_to.clone().unwrap_or_default())
                .detail("to", change.assignee.clone().unwrap_or_default()),
        )?;
        table::find(conn, case_id)?.ok_or(CaseError::NotFound)
    })
}
