//! The aggregate queries: GROUP BY over coded columns in the database, on
//! covering indexes (migration `000010_statistics`). They return counts,
//! never case rows, and never read a sealed column.
//!
//! The SQL is one text for both backends except the time differences; it is
//! written with `$n` placeholders, which SQLite reads as `?n`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::db::{Backend, DbConnection};

/// The area and every organisation below it, as a common table expression
/// (`$1` is the area id).
const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (
    SELECT id FROM organisations WHERE id = $1
    UNION ALL SELECT o.id FROM organisations o JOIN sub ON o.parent_id = sub.id)";

fn for_backend(conn: &DbConnection, sql: &str) -> String {
    match conn.backend() {
        Backend::Postgres => sql.to_owned(),
        Backend::Sqlite => sql.replace('$', "?"),
    }
}

/// Runs `sql` with the area (`$1`) and the window (`$2`, `$3`) bound.
fn in_window<T: QueryableByName<crate::db::MultiBackend> + 'static>(
    conn: &mut DbConnection,
    sql: &str,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<T>> {
    diesel::sql_query(for_backend(conn, sql))
        .bind::<Text, _>(area_id)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .load(conn)
}

/// Cases recorded in the window, by school, sex, age band and school level.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct CaseCount {
    #[diesel(sql_type = Text)]
    pub school_id: String,
    #[diesel(sql_type = Text)]
    pub sex: String,
    #[diesel(sql_type = Text)]
    pub age_band: String,
    #[diesel(sql_type = Text)]
    pub school_level: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn cases(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<CaseCount>> {
    let sql = format!(
        "{SUBTREE}
SELECT c.school_id AS school_id, c.survivor_sex AS sex, COALESCE(c.age_band, '') AS age_band,
       c.school_level AS school_level, COUNT(*) AS n
FROM cases c
WHERE c.school_id IN (SELECT id FROM sub) AND c.created_at >= $2 AND c.created_at < $3
GROUP BY c.school_id, c.survivor_sex, c.age_band, c.school_level"
    );
    in_window(conn, &sql, area_id, from, to)
}

/// Incidents recorded in the window, by the survivor's sex, type,
/// perpetrator relation and reporting delay. The case's school and the
/// survivor's sex are on the incident (copied by triggers, migration
/// `000010_statistics`): no join.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct IncidentCount {
    #[diesel(sql_type = Text)]
    pub sex: String,
    #[diesel(sql_type = Text)]
    pub incident_type: String,
    #[diesel(sql_type = Text)]
    pub relation: String,
    #[diesel(sql_type = Text)]
    pub delay: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn incidents(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<IncidentCount>> {
    let sql = format!(
        "{SUBTREE}
SELECT COALESCE(i.survivor_sex, '') AS sex, i.incident_type AS incident_type,
       i.perpetrator_relation AS relation, i.reporting_delay AS delay, COUNT(*) AS n
FROM incidents i
WHERE i.school_id IN (SELECT id FROM sub) AND i.created_at >= $2 AND i.created_at < $3
GROUP BY i.survivor_sex, i.incident_type, i.perpetrator_relation, i.reporting_delay"
    );
    in_window(conn, &sql, area_id, from, to)
}

/// Referrals sent in the window, by agency type, status, timeliness of
/// acknowledgement (`on_time`, `late`, `overdue` — not acknowledged and past
/// its deadline at `now` — or `pending`) and whole hours to acknowledge (one
/// scan gives the outcome table and the histogram of the median).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ReferralCount {
    #[diesel(sql_type = Text)]
    pub agency_type: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub timeliness: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    pub hours: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn referrals(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Vec<ReferralCount>> {
    let hours = whole_units(conn.backend(), "r.acknowledged_at", "r.sent_at", 3600);
    let sql = format!(
        "{SUBTREE}
SELECT r.agency_type AS agency_type, r.status AS status,
       CASE WHEN r.acknowledged_at IS NOT NULL AND r.acknowledged_at <= r.acknowledge_by THEN 'on_time'
            WHEN r.acknowledged_at IS NOT NULL THEN 'late'
            WHEN r.acknowledge_by < $4 THEN 'overdue'
            ELSE 'pending' END AS timeliness,
       {hours} AS hours,
       COUNT(*) AS n
FROM referrals r
WHERE r.school_id IN (SELECT id FROM sub) AND r.sent_at >= $2 AND r.sent_at < $3
GROUP BY r.agency_type, r.status, 3, 4"
    );
    diesel::sql_query(for_backend(conn, &sql))
        .bind::<Text, _>(area_id)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .bind::<Timestamp, _>(now)
        .load(conn)
}

/// A histogram: how many took `value` whole units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Bucket {
    #[diesel(sql_type = BigInt)]
    pub value: i64,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

fn whole_units(backend: Backend, later: &str, earlier: &str, seconds: u32) -> String {
    match backend {
        Backend::Sqlite => format!(
            "CAST((julianday({later}) - julianday({earlier})) * {} AS INTEGER)",
            86_400 / seconds
        ),
        Backend::Postgres => {
            format!("CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / {seconds}) AS BIGINT)")
        }
    }
}

/// Whole days from recording to closing, for cases closed in the window.
pub fn days_to_closure(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<Bucket>> {
    let days = whole_units(conn.backend(), "c.closed_at", "c.created_at", 86_400);
    let sql = format!(
        "{SUBTREE}
SELECT {days} AS value, COUNT(*) AS n
FROM cases c
WHERE c.school_id IN (SELECT id FROM sub) AND c.closed_at >= $2 AND c.closed_at < $3
GROUP BY 1"
    );
    in_window(conn, &sql, area_id, from, to)
}

/// The lower median of a histogram and how many values it holds.
pub fn median(buckets: &[Bucket]) -> (Option<i64>, u64) {
    let mut sorted: Vec<Bucket> = buckets.to_vec();
    sorted.sort_by_key(|b| b.value);
    let total: u64 = sorted.iter().map(|b| u64::try_from(b.n).unwrap_or(0)).sum();
    if total == 0 {
        return (None, 0);
    }
    let middle = total.div_ceil(2);
    let mut seen = 0;
    for bucket in &sorted {
        seen += u64::try_from(bucket.n).unwrap_or(0);
        if seen >= middle {
            return (Some(bucket.value), total);
        }
    }
    (None, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_a_histogram() {
        let b = |value, n| Bucket { value, n };
        assert_eq!(median(&[]), (None, 0));
        assert_eq!(median(&[b(5, 1)]), (Some(5), 1));
        assert_eq!(median(&[b(9, 2), b(1, 1), b(3, 1)]), (Some(3), 4));
        assert_eq!(median(&[b(2, 3), b(10, 2)]), (Some(2), 5));
    }
}
