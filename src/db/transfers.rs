//! The `case_transfers` table, and the writes that move a case's rows from
//! one school to another at an accepted transfer (`cases::transfer`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{case_keys, case_transfers, cases, deadlines, escalations, pupils, referrals};

/// Statuses of a transfer still waiting for the receiving school.
pub const OPEN_STATUSES: &[&str] = &["pending", "viewed"];

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_transfers)]
pub struct TransferRow {
    pub id: String,
    pub case_id: String,
    pub from_school_id: String,
    pub to_school_id: String,
    pub status: String,
    pub reason_enc: Vec<u8>,
    pub answer_enc: Option<Vec<u8>>,
    pub requested_by: String,
    pub requested_at: NaiveDateTime,
    pub answer_by: NaiveDateTime,
    pub viewed_at: Option<NaiveDateTime>,
    pub answered_by: Option<String>,
    pub answered_at: Option<NaiveDateTime>,
    pub version: i32,
}

impl TransferRow {
    pub fn is_open(&self) -> bool {
        OPEN_STATUSES.contains(&self.status.as_str())
    }
}

pub fn insert(conn: &mut DbConnection, row: &TransferRow) -> QueryResult<()> {
    diesel::insert_into(case_transfers::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<TransferRow>> {
    case_transfers::table
        .find(id)
        .select(TransferRow::as_select())
        .first(conn)
        .optional()
}

/// The open transfer of a case, if any (at most one: a unique index).
pub fn open_of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<TransferRow>> {
    case_transfers::table
        .filter(case_transfers::case_id.eq(case_id))
        .filter(case_transfers::status.eq_any(OPEN_STATUSES))
        .select(TransferRow::as_select())
        .first(conn)
        .optional()
}

/// Every transfer of a case, the newest first.
pub fn of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<TransferRow>> {
    case_transfers::table
        .filter(case_transfers::case_id.eq(case_id))
        .order((
            case_transfers::requested_at.desc(),
            case_transfers::id.desc(),
        ))
        .select(TransferRow::as_select())
        .load(conn)
}

/// Open transfers to a school, the oldest (most urgent) first.
pub fn incoming(conn: &mut DbConnection, school_id: &str) -> QueryResult<Vec<TransferRow>> {
    case_transfers::table
        .filter(case_transfers::to_school_id.eq(school_id))
        .filter(case_transfers::status.eq_any(OPEN_STATUSES))
        .order((case_transfers::answer_by.asc(), case_transfers::id.asc()))
        .limit(200)
        .select(TransferRow::as_select())
        .load(conn)
}

/// Transfers a school started, the newest first.
pub fn outgoing(conn: &mut DbConnection, school_id: &str) -> QueryResult<Vec<TransferRow>> {
    case_transfers::table
        .filter(case_transfers::from_school_id.eq(school_id))
        .order((
            case_transfers::requested_at.desc(),
            case_transfers::id.desc(),
        ))
        .limit(200)
        .select(TransferRow::as_select())
        .load(conn)
}

/// Moves an open transfer to `status`, only from an open status and at
/// `version`; returns how many rows changed (0: it moved meanwhile).
pub fn answer(
    conn: &mut DbConnection,
    row: &TransferRow,
    status: &str,
    answer_enc: Option<Vec<u8>>,
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        case_transfers::table
            .find(&row.id)
            .filter(case_transfers::version.eq(row.version))
            .filter(case_transfers::status.eq_any(OPEN_STATUSES)),
    )
    .set((
        case_transfers::status.eq(status),
        case_transfers::answer_enc.eq(answer_enc),
        case_transfers::answered_by.eq(Some(by)),
        case_transfers::answered_at.eq(Some(now)),
        case_transfers::version.eq(row.version + 1),
    ))
    .execute(conn)
}

/// Marks a pending transfer viewed (the first opening by the receiver).
pub fn mark_viewed(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        case_transfers::table
            .find(id)
            .filter(case_transfers::status.eq("pending")),
    )
    .set((
        case_transfers::status.eq("viewed"),
        case_transfers::viewed_at.eq(Some(now)),
        case_transfers::version.eq(case_transfers::version + 1),
    ))
    .execute(conn)
}

/// How a case's data key is bound: `(bound_school_id, the case's school)`.
pub fn key_binding(
    conn: &mut DbConnection,
    case_id: &str,
) -> QueryResult<Option<(Option<String>, String)>> {
    case_keys::table
        .inner_join(cases::table)
        .filter(case_keys::case_id.eq(case_id))
        .select((case_keys::bound_school_id, cases::school_id))
        .first(conn)
        .optional()
}

/// Stores a data key re-wrapped for `school_id`.
pub fn rebind_key(
    conn: &mut DbConnection,
    case_id: &str,
    kek_id: &str,
    wrapped: &[u8],
    school_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(case_keys::table.find(case_id))
        .set((
            case_keys::kek_id.eq(kek_id),
            case_keys::wrapped_dek.eq(wrapped),
            case_keys::bound_school_id.eq(Some(school_id)),
            case_keys::rewrapped_at.eq(Some(now)),
        ))
        .execute(conn)
}

/// Moves the case and everything addressed by school to `to`: the case
/// (version bumped), its referrals, clocks and escalations. Statistics stay
/// where the case was recorded: `recorded_school_id` keeps the first
/// school, and the summary triggers count there (migration 000015).
/// Incidents keep their own school copy, the school that recorded them.
pub fn move_case(
    conn: &mut DbConnection,
    case_id: &str,
    from: &str,
    to: &str,
    version: i32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        cases::table
            .find(case_id)
            .filter(cases::recorded_school_id.is_null()),
    )
    .set(cases::recorded_school_id.eq(cases::school_id.nullable()))
    .execute(conn)?;
    let moved = diesel::update(
        cases::table
            .find(case_id)
            .filter(cases::school_id.eq(from))
            .filter(cases::version.eq(version)),
    )
    .set((
        cases::school_id.eq(to),
        cases::version.eq(version + 1),
        cases::updated_at.eq(now),
    ))
    .execute(conn)?;
    if moved == 0 {
        return Ok(0);
    }
    diesel::update(
        referrals::table
            .filter(referrals::case_id.eq(case_id))
            .filter(referrals::recorded_school_id.is_null()),
    )
    .set(referrals::recorded_school_id.eq(referrals::school_id.nullable()))
    .execute(conn)?;
    diesel::update(referrals::table.filter(referrals::case_id.eq(case_id)))
        .set(referrals::school_id.eq(to))
        .execute(conn)?;
    diesel::update(deadlines::table.filter(deadlines::case_id.eq(case_id)))
        .set(deadlines::school_id.eq(to))
        .execute(conn)?;
    diesel::update(escalations::table.filter(escalations::case_id.eq(case_id)))
        .set(escalations::school_id.eq(to))
        .execute(conn)?;
    Ok(moved)
}

/// Replaces the pupil's blind index (it is keyed by school).
pub fn set_blind_index(conn: &mut DbConnection, case_id: &str, index: &str) -> QueryResult<usize> {
    diesel::update(pupils::table.find(case_id))
        .set(pupils::blind_index.eq(index))
        .execute(conn)
}
