//! The `legal_holds` table: every setting and lifting of a case's legal
//! hold, with its coded reason and sealed note (issue 16). The hold in force
//! is `cases.legal_hold`, changed in the same transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::legal_holds;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = legal_holds)]
pub struct LegalHoldRow {
    pub id: String,
    pub case_id: String,
    /// True for setting the hold, false for lifting it.
    pub held: bool,
    pub reason: String,
    pub note_enc: Option<Vec<u8>>,
    pub decided_by: String,
    pub decided_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &LegalHoldRow) -> QueryResult<()> {
    diesel::insert_into(legal_holds::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The latest setting or lifting of the case's hold.
pub fn latest_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<LegalHoldRow>> {
    legal_holds::table
        .filter(legal_holds::case_id.eq(case_id))
        .order((legal_holds::decided_at.desc(), legal_holds::id.desc()))
        .select(LegalHoldRow::as_select())
        .first(conn)
        .optional()
}

/// Forgets the sealed notes of a case's holds (retention).
pub fn clear_notes(conn: &mut DbConnection, case_id: &str) -> QueryResult<()> {
    diesel::update(legal_holds::table.filter(legal_holds::case_id.eq(case_id)))
        .set(legal_holds::note_enc.eq(None::<Vec<u8>>))
        .execute(conn)
        .map(drop)
}
