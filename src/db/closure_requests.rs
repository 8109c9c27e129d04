//! The `closure_requests` table: closures that wait for a second person's
//! approval (issue 16). At most one is `pending` per case (a unique partial
//! index); a decision is written only while the request is still pending,
//! so two people deciding at once cannot both win.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::closure_requests;

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const RETURNED: &str = "returned";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = closure_requests)]
pub struct ClosureRequestRow {
    pub id: String,
    pub case_id: String,
    pub closure_reason: String,
    pub note_enc: Vec<u8>,
    pub requested_by: String,
    pub requested_at: NaiveDateTime,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_note_enc: Option<Vec<u8>>,
}

pub fn insert(conn: &mut DbConnection, row: &ClosureRequestRow) -> QueryResult<()> {
    diesel::insert_into(closure_requests::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The request of `case_id` awaiting a decision, if any.
pub fn pending_of(
    conn: &mut DbConnection,
    case_id: &str,
) -> QueryResult<Option<ClosureRequestRow>> {
    closure_requests::table
        .filter(closure_requests::case_id.eq(case_id))
        .filter(closure_requests::status.eq(PENDING))
        .select(ClosureRequestRow::as_select())
        .first(conn)
        .optional()
}

/// Which of `case_ids` have a closure awaiting approval (one query, for a
/// list of cases).
pub fn pending_among(
    conn: &mut DbConnection,
    case_ids: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    Ok(closure_requests::table
        .filter(closure_requests::case_id.eq_any(case_ids))
        .filter(closure_requests::status.eq(PENDING))
        .select(closure_requests::case_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Records the decision on a pending request; false when it was no longer
/// pending (someone decided first).
pub fn decide(
    conn: &mut DbConnection,
    id: &str,
    status: &str,
    by: &str,
    at: NaiveDateTime,
    note_enc: Option<Vec<u8>>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        closure_requests::table
            .find(id)
            .filter(closure_requests::status.eq(PENDING)),
    )
    .set((
        closure_requests::status.eq(status),
        closure_requests::decided_by.eq(Some(by)),
        closure_requests::decided_at.eq(Some(at)),
        closure_requests::decision_note_enc.eq(note_enc),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Forgets the sealed notes of a case's requests (retention).
pub fn clear_notes(conn: &mut DbConnection, case_id: &str) -> QueryResult<()> {
    diesel::update(closure_requests::table.filter(closure_requests::case_id.eq(case_id)))
        .set((
            closure_requests::note_enc.eq(Vec::<u8>::new()),
            closure_requests::decision_note_enc.eq(None::<Vec<u8>>),
        ))
        .execute(conn)
        .map(drop)
}
