//! A pupil's cases as a caller may see them (issue 16), for the case page,
//! the per-pupil chronology page and its API route: the policy's
//! `case.read` for every one of the cases, or nothing.

use super::AppState;
use super::pages::granted;
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::CaseError;
use crate::cases::pupil::cases_of_pupil;
use crate::db::DbConnection;
use crate::db::cases::CaseRow;

/// The cases of the pupil of `case_id` (this one included, oldest first),
/// each with the caller's `case.read` capability for it; `None` when the
/// caller may not read `case_id` or any one of the others.
pub(crate) fn readable_pupil_cases(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    case_id: &str,
) -> Result<Option<Vec<(Capability, CaseRow)>>, CaseError> {
    let read = |conn: &mut DbConnection, id: &str| {
        granted(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseRead,
            id,
        ))
    };
    let Some((anchor, _)) = read(conn, case_id)? else {
        return Ok(None);
    };
    let mut readable = Vec::new();
    for row in cases_of_pupil(conn, &anchor, case_id)? {
        if row.id == case_id {
            readable.push((anchor.clone(), row));
            continue;
        }
        match read(conn, &row.id)? {
            Some((capability, _)) => readable.push((capability, row)),
            None => return Ok(None),
        }
    }
    Ok(Some(readable))
}
