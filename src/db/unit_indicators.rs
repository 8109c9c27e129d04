//! `unit_indicator_entries` (each unit's own answers to the plan's
//! non-count targets) and `indicator_reminders` (the once-only record of a
//! reminder to a unit that has not answered, as `deadline_reminders`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{indicator_reminders, unit_indicator_entries};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = unit_indicator_entries)]
pub struct UnitEntryRow {
    pub id: String,
    pub school_id: String,
    pub period: String,
    pub indicator: String,
    pub kind: String,
    /// 0/1 for yes/no; tenths of a percent for a percentage.
    pub value: i32,
    pub evidence: String,
    pub submitted_by: String,
    pub submitted_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = indicator_reminders)]
pub struct IndicatorReminderRow {
    pub school_id: String,
    pub period: String,
    pub point: String,
    pub remind_at: NaiveDateTime,
    pub outcome: String,
    pub recipients: i32,
    pub created_at: NaiveDateTime,
}

pub fn insert_entries(conn: &mut DbConnection, rows: &[UnitEntryRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(unit_indicator_entries::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Every answer for `periods` of schools among `school_ids`.
pub fn entries_of(
    conn: &mut DbConnection,
    school_ids: &[String],
    periods: &[String],
) -> QueryResult<Vec<UnitEntryRow>> {
    unit_indicator_entries::table
        .filter(unit_indicator_entries::period.eq_any(periods))
        .filter(unit_indicator_entries::school_id.eq_any(school_ids))
        .order((
            unit_indicator_entries::school_id.asc(),
            unit_indicator_entries::indicator.asc(),
        ))
        .select(UnitEntryRow::as_select())
        .load(conn)
}

/// When each school among `school_ids` first answered for `period`.
pub fn submitted_at(
    conn: &mut DbConnection,
    school_ids: &[String],
    period: &str,
) -> QueryResult<Vec<(String, Option<NaiveDateTime>)>> {
    use diesel::dsl::min;
    unit_indicator_entries::table
        .filter(unit_indicator_entries::period.eq(period))
        .filter(unit_indicator_entries::school_id.eq_any(school_ids))
        .group_by(unit_indicator_entries::school_id)
        .select((
            unit_indicator_entries::school_id,
            min(unit_indicator_entries::submitted_at),
        ))
        .load(conn)
}

/// Records a reminder unless one for the same unit, period and point is
/// there. Returns whether this call recorded it (and so may send it).
pub fn insert_reminder_if_new(
    conn: &mut DbConnection,
    row: &IndicatorReminderRow,
) -> QueryResult<bool> {
    let query = diesel::insert_into(indicator_reminders::table)
        .values(row)
        .on_conflict((
            indicator_reminders::school_id,
            indicator_reminders::period,
            indicator_reminders::point,
        ))
        .do_nothing();
    let inserted = match conn {
        DbConnection::Postgresql(c) => query.execute(c)?,
        DbConnection::Sqlite(c) => query.execute(c)?,
    };
    Ok(inserted == 1)
}

pub fn set_reminder_recipients(
    conn: &mut DbConnection,
    key: (&str, &str, &str),
    recipients: i32,
) -> QueryResult<usize> {
    diesel::update(indicator_reminders::table.find(key))
        .set(indicator_reminders::recipients.eq(recipients))
        .execute(conn)
}

/// The reminders recorded for `period` (every unit), earliest first.
pub fn reminders_of(
    conn: &mut DbConnection,
    period: &str,
) -> QueryResult<Vec<IndicatorReminderRow>> {
    indicator_reminders::table
        .filter(indicator_reminders::period.eq(period))
        .order((
            indicator_reminders::remind_at.asc(),
            indicator_reminders::school_id.asc(),
        ))
        .select(IndicatorReminderRow::as_select())
        .load(conn)
}
