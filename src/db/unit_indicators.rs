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
    /// A note stored before notes were sealed (migration 000021), until
    /// the service seals it at start; always empty otherwise.
    pub evidence_unsealed: String,
    pub submitted_by: String,
    pub submitted_at: NaiveDateTime,
    /// The field KEK that wraps the note's data key.
    pub kek_id: Option<String>,
    pub wrapped_dek: Option<Vec<u8>>,
    /// The evidence note, sealed (`stats::unit_notes`).
    pub evidence_enc: Option<Vec<u8>>,
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

/// Answers whose note is not sealed yet (stored before migration 000021).
pub fn unsealed(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<UnitEntryRow>> {
    unit_indicator_entries::table
        .filter(unit_indicator_entries::evidence_enc.is_null())
        .order(unit_indicator_entries::id.asc())
        .limit(limit)
        .select(UnitEntryRow::as_select())
        .load(conn)
}

/// Answers whose note's data key is wrapped by another KEK than `active`.
pub fn not_under(
    conn: &mut DbConnection,
    active: &str,
    limit: i64,
) -> QueryResult<Vec<UnitEntryRow>> {
    unit_indicator_entries::table
        .filter(unit_indicator_entries::kek_id.ne(active))
        .order(unit_indicator_entries::id.asc())
        .limit(limit)
        .select(UnitEntryRow::as_select())
        .load(conn)
}

pub fn count_not_under(conn: &mut DbConnection, active: &str) -> QueryResult<i64> {
    unit_indicator_entries::table
        .filter(unit_indicator_entries::kek_id.ne(active))
        .count()
        .get_result(conn)
}

/// Note data keys wrapped by each KEK id.
pub fn wraps_by_kek(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    let rows: Vec<(Option<String>, i64)> = unit_indicator_entries::table
        .filter(unit_indicator_entries::kek_id.is_not_null())
        .group_by(unit_indicator_entries::kek_id)
        .select((unit_indicator_entries::kek_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(kek, n)| kek.map(|kek| (kek, n)))
        .collect())
}

/// Stores a row's sealed note and empties its plain column, if the row
/// is still as read (`was_kek`: the KEK it was read under, `None` when it
/// was not sealed yet). Returns the rows changed (0 or 1).
pub fn set_sealed(
    conn: &mut DbConnection,
    id: &str,
    was_kek: Option<&str>,
    sealed: (&str, &[u8], &[u8]),
) -> QueryResult<usize> {
    let (kek_id, wrapped_dek, evidence_enc) = sealed;
    let changes = (
        unit_indicator_entries::kek_id.eq(Some(kek_id)),
        unit_indicator_entries::wrapped_dek.eq(Some(wrapped_dek)),
        unit_indicator_entries::evidence_enc.eq(Some(evidence_enc)),
        unit_indicator_entries::evidence_unsealed.eq(""),
    );
    let row = unit_indicator_entries::table.filter(unit_indicator_entries::id.eq(id));
    match was_kek {
        Some(old) => diesel::update(row.filter(unit_indicator_entries::kek_id.eq(old)))
            .set(changes)
            .execute(conn),
        None => diesel::update(row.filter(unit_indicator_entries::evidence_enc.is_null()))
            .set(changes)
            .execute(conn),
    }
}
