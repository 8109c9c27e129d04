//! The `intake_tokens` table: single-use tokens of the intake form, stored
//! as their SHA-256 only (see `cases::intake_token`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::intake_tokens;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = intake_tokens)]
pub struct IntakeTokenRow {
    pub token_hash: String,
    pub session_id: String,
    pub user_id: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    pub case_id: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &IntakeTokenRow) -> QueryResult<()> {
    diesel::insert_into(intake_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<IntakeTokenRow>> {
    intake_tokens::table
        .find(token_hash)
        .select(IntakeTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Marks the token consumed if it is this session's, unused and unexpired;
/// true when this call took it. On PostgreSQL the row stays locked until the
/// transaction ends, so a concurrent second submission waits and then finds
/// it consumed (or free again, if the first rolled back).
pub fn claim(
    conn: &mut DbConnection,
    token_hash: &str,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let claimed = diesel::update(
        intake_tokens::table
            .find(token_hash)
            .filter(intake_tokens::session_id.eq(session_id))
            .filter(intake_tokens::consumed_at.is_null())
            .filter(intake_tokens::expires_at.gt(now)),
    )
    .set(intake_tokens::consumed_at.eq(Some(now)))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Names the case a consumed token made.
pub fn set_case(conn: &mut DbConnection, token_hash: &str, case_id: &str) -> QueryResult<()> {
    diesel::update(intake_tokens::table.find(token_hash))
        .set(intake_tokens::case_id.eq(Some(case_id)))
        .execute(conn)
        .map(drop)
}

/// Drops a person's tokens that expired before `now`.
pub fn purge_expired(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(
        intake_tokens::table
            .filter(intake_tokens::user_id.eq(user_id))
            .filter(intake_tokens::expires_at.le(now)),
    )
    .execute(conn)
    .map(drop)
}
