//! The statistics tables: `stats_reports` (computed and released reports)
//! and `indicator_entries` (the plan's staff figures by school).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{indicator_entries, stats_reports};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stats_reports)]
pub struct ReportRow {
    pub id: String,
    pub area_id: String,
    pub period: String,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub status: String,
    pub body: String,
    pub body_sha256: String,
    pub computed_by: String,
    pub computed_at: NaiveDateTime,
    pub released_by: Option<String>,
    pub released_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = indicator_entries)]
pub struct IndicatorRow {
    pub id: String,
    pub school_id: String,
    pub period: String,
    pub figure: String,
    pub women: i32,
    pub men: i32,
    pub submitted_by: String,
    pub submitted_at: NaiveDateTime,
}

pub fn insert_report(conn: &mut DbConnection, row: &ReportRow) -> QueryResult<()> {
    diesel::insert_into(stats_reports::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_report(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ReportRow>> {
    stats_reports::table
        .find(id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

/// The released report of an area for a period, if any.
pub fn released(
    conn: &mut DbConnection,
    area_id: &str,
    period: &str,
) -> QueryResult<Option<ReportRow>> {
    stats_reports::table
        .filter(stats_reports::area_id.eq(area_id))
        .filter(stats_reports::period.eq(period))
        .filter(stats_reports::status.eq("released"))
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

/// Stored reports (drafts and released) of areas among `area_ids`, newest
/// window first: every stored body a caller may obtain.
pub fn stored_of(conn: &mut DbConnection, area_ids: &[String]) -> QueryResult<Vec<ReportRow>> {
    stats_reports::table
        .filter(stats_reports::area_id.eq_any(area_ids))
        .order((stats_reports::window_end.desc(), stats_reports::id.asc()))
        .select(ReportRow::as_select())
        .limit(5000)
        .load(conn)
}

/// Released reports of areas among `area_ids`, newest window first.
pub fn released_of(conn: &mut DbConnection, area_ids: &[String]) -> QueryResult<Vec<ReportRow>> {
    stats_reports::table
        .filter(stats_reports::area_id.eq_any(area_ids))
        .filter(stats_reports::status.eq("released"))
        .order((stats_reports::window_end.desc(), stats_reports::id.asc()))
        .select(ReportRow::as_select())
        .limit(500)
        .load(conn)
}

/// Marks a draft released; 0 when it was not a draft any more.
pub fn release(
    conn: &mut DbConnection,
    id: &str,
    by: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        stats_reports::table
            .filter(stats_reports::id.eq(id))
            .filter(stats_reports::status.eq("draft")),
    )
    .set((
        stats_reports::status.eq("released"),
        stats_reports::released_by.eq(Some(by)),
        stats_reports::released_at.eq(Some(at)),
    ))
    .execute(conn)
}

pub fn insert_indicators(conn: &mut DbConnection, rows: &[IndicatorRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(indicator_entries::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn indicators_submitted(
    conn: &mut DbConnection,
    school_id: &str,
    period: &str,
) -> QueryResult<i64> {
    indicator_entries::table
        .filter(indicator_entries::school_id.eq(school_id))
        .filter(indicator_entries::period.eq(period))
        .count()
        .get_result(conn)
}

/// Every school's figures for a period, for schools among `school_ids`
/// (a handful of numbers per school; schools are few).
pub fn indicators_of(
    conn: &mut DbConnection,
    school_ids: &[String],
    period: &str,
) -> QueryResult<Vec<IndicatorRow>> {
    indicator_entries::table
        .filter(indicator_entries::period.eq(period))
        .filter(indicator_entries::school_id.eq_any(school_ids))
        .select(IndicatorRow::as_select())
        .load(conn)
}
