//! The `deadline_reminders` table: one row per clock and reminder point,
//! the once-only record of a reminder (sent, or skipped because a later
//! point superseded it). Inserted with insert-or-nothing in the same
//! transaction as the reminder's outbox rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::referrals::DeadlineRow;
use super::schema::{deadline_reminders, deadlines};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = deadline_reminders)]
pub struct ReminderRow {
    pub deadline_id: String,
    pub point: String,
    pub case_id: String,
    pub remind_at: NaiveDateTime,
    pub outcome: String,
    pub recipients: i32,
    pub created_at: NaiveDateTime,
}

/// Records a reminder unless one for the same clock and point is there.
/// Returns whether this call recorded it (and so may send it).
pub fn insert_if_new(conn: &mut DbConnection, row: &ReminderRow) -> QueryResult<bool> {
    let query = diesel::insert_into(deadline_reminders::table)
        .values(row)
        .on_conflict((deadline_reminders::deadline_id, deadline_reminders::point))
        .do_nothing();
    let inserted = match conn {
        DbConnection::Postgresql(c) => query.execute(c)?,
        DbConnection::Sqlite(c) => query.execute(c)?,
    };
    Ok(inserted == 1)
}

/// Sets the number of people a recorded reminder went to.
pub fn set_recipients(
    conn: &mut DbConnection,
    deadline_id: &str,
    point: &str,
    recipients: i32,
) -> QueryResult<usize> {
    diesel::update(deadline_reminders::table.find((deadline_id, point)))
        .set(deadline_reminders::recipients.eq(recipients))
        .execute(conn)
}

/// The points already recorded for a clock.
pub fn points_of(conn: &mut DbConnection, deadline_id: &str) -> QueryResult<Vec<String>> {
    deadline_reminders::table
        .filter(deadline_reminders::deadline_id.eq(deadline_id))
        .select(deadline_reminders::point)
        .load(conn)
}

/// Every reminder of a case, earliest first.
pub fn of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<ReminderRow>> {
    deadline_reminders::table
        .filter(deadline_reminders::case_id.eq(case_id))
        .order((
            deadline_reminders::remind_at.asc(),
            deadline_reminders::point.asc(),
        ))
        .select(ReminderRow::as_select())
        .load(conn)
}

/// Running clocks (open, started, not yet due) after `after` in (due, id)
/// order, at most `limit`. On PostgreSQL the rows are locked (a clock
/// being met waits for the reminder's transaction, so a stopped clock is
/// never reminded) and rows another scheduler holds are skipped.
pub fn running(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    after: Option<&(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<DeadlineRow>> {
    let (due, id) = after.cloned().unwrap_or((now, String::new()));
    macro_rules! running {
        () => {
            deadlines::table
                .filter(deadlines::met_at.is_null())
                .filter(deadlines::due_at.gt(now))
                .filter(deadlines::started_at.le(now))
                .filter(
                    deadlines::due_at
                        .gt(due)
                        .or(deadlines::due_at.eq(due).and(deadlines::id.gt(&id))),
                )
                .order((deadlines::due_at.asc(), deadlines::id.asc()))
                .limit(limit)
                .select(DeadlineRow::as_select())
        };
    }
    match conn {
        DbConnection::Postgresql(pg) => running!().for_update().skip_locked().load(pg),
        DbConnection::Sqlite(lite) => running!().load(lite),
    }
}

/// Running clocks of `kind`s of the given schools, soonest first.
pub fn running_of(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    school_ids: &[String],
    kinds: &[&str],
    limit: i64,
) -> QueryResult<Vec<DeadlineRow>> {
    deadlines::table
        .filter(deadlines::met_at.is_null())
        .filter(deadlines::due_at.gt(now))
        .filter(deadlines::school_id.eq_any(school_ids))
        .filter(deadlines::kind.eq_any(kinds))
        .order((deadlines::due_at.asc(), deadlines::id.asc()))
        .limit(limit)
        .select(DeadlineRow::as_select())
        .load(conn)
}

/// Running acknowledgement clocks of referrals to `agency_id`, soonest first.
pub fn running_for_agency(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    agency_id: &str,
    limit: i64,
) -> QueryResult<Vec<DeadlineRow>> {
    use super::schema::referrals;
    let ids = referrals::table
        .filter(referrals::agency_id.eq(agency_id))
        .select(referrals::id)
        .load::<String>(conn)?;
    deadlines::table
        .filter(deadlines::met_at.is_null())
        .filter(deadlines::due_at.gt(now))
        .filter(deadlines::kind.eq("acknowledge"))
        .filter(deadlines::referral_id.eq_any(ids.into_iter().map(Some).collect::<Vec<_>>()))
        .order((deadlines::due_at.asc(), deadlines::id.asc()))
        .limit(limit)
        .select(DeadlineRow::as_select())
        .load(conn)
}
