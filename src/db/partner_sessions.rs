//! The `partner_sessions` table: the short-lived sessions a partner without
//! an account gets by opening a one-time link with its code (issue 16).
//! The id is the SHA-256 of the cookie's token; the token itself is never
//! stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::partner_sessions;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = partner_sessions)]
pub struct PartnerSessionRow {
    pub id: String,
    pub link_id: String,
    pub referral_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    /// `other_path`, `expired`, `withdrawn`, `closed` or `answered`.
    pub ended_reason: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &PartnerSessionRow) -> QueryResult<()> {
    diesel::insert_into(partner_sessions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<PartnerSessionRow>> {
    partner_sessions::table
        .find(id)
        .select(PartnerSessionRow::as_select())
        .first(conn)
        .optional()
}

/// Ends a session that has not ended yet; 0 when it already had.
pub fn end(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> QueryResult<usize> {
    diesel::update(
        partner_sessions::table
            .find(id)
            .filter(partner_sessions::ended_at.is_null()),
    )
    .set((
        partner_sessions::ended_at.eq(Some(now)),
        partner_sessions::ended_reason.eq(Some(reason)),
    ))
    .execute(conn)
}
