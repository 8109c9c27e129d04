//! Break-glass is reviewable: the school's focal points (on the case page)
//! and the area's auditors (their review page and the API) read each
//! grant — the officer, when, until when and the written reason. The
//! reason is sealed in the case; each grant read is an audit entry in the
//! same transaction (fail closed). Who may read is the Cedar action
//! `break_glass.review`.

use chrono::NaiveDateTime;

use super::{CaseContext, CaseError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::SecretText;
use crate::db::cases::{self as table, BreakGlassRow};
use crate::db::{DbConnection, organisations, users, write_transaction};

/// Grants listed at most.
pub const LIMIT: i64 = 500;

/// One grant as a reviewer reads it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub case_id: String,
    pub school_id: String,
    pub officer_id: String,
    pub officer_name: String,
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// `None` when the case's content was destroyed under retention.
    pub reason: Option<SecretText>,
}

/// The grants of one case, for a holder of `break_glass.review` on its school.
pub fn of_case(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<Vec<Grant>, CaseError> {
    let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    if !by.allows(Action::BreakGlassReview, &case.school_id) {
        return Err(CaseError::NotFound);
    }
    let rows = table::break_glass_of_case(conn, case_id)?;
    read(
        conn,
        context,
        by,
        rows.into_iter()
            .map(|r| (r, case.school_id.clone()))
            .collect(),
    )
}

/// The grants on cases of `org_id` and below, for a holder of
/// `break_glass.review` on it.
pub fn in_org(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    org_id: &str,
) -> Result<Vec<Grant>, CaseError> {
    if !by.allows(Action::BreakGlassReview, org_id) {
        return Err(CaseError::NotFound);
    }
    let schools = organisations::subtree_ids(conn, org_id)?;
    let rows = table::break_glass_of_schools(conn, &schools, LIMIT)?;
    read(conn, context, by, rows)
}

/// Opens each reason and audits each read, in one transaction.
fn read(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    rows: Vec<(BreakGlassRow, String)>,
) -> Result<Vec<Grant>, CaseError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    write_transaction(conn, |conn| {
        let mut grants = Vec::with_capacity(rows.len());
        for (row, school_id) in rows {
            let reason = match case_key(conn, context, &row.case_id) {
                Ok(dek) => Some(dek.open_text(
                    &binding("break_glass", "reason_enc", &row.id, &row.case_id),
                    &row.reason_enc,
                )?),
                // Crypto-shredded under retention: the grant stays, its reason is gone.
                Err(CaseError::NotFound) => None,
                Err(other) => return Err(other),
            };
            let officer_name = users::find(conn, &row.user_id)?
                .map(|u| u.display_name)
                .unwrap_or_default();
            context.auditor.append(
                conn,
                context.clock,
                &case_event(by, action::BREAK_GLASS_REVIEWED, row.case_id.clone())
                    .detail("grant_id", row.id.clone()),
            )?;
            grants.push(Grant {
                id: row.id,
                case_id: row.case_id,
                school_id,
                officer_id: row.user_id,
                officer_name,
                granted_at: row.granted_at,
                expires_at: row.expires_at,
                reason,
            });
        }
        Ok(grants)
    })
}
