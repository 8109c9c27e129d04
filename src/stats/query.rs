//! The aggregate queries: sums over the pre-summed counts of whole UTC days
//! and months (migration `000012_statistics_summary`, kept by triggers) and
//! GROUP BY over the coded columns of the rows at the window's edges, on
//! covering indexes (migration `000010_statistics`). They return counts,
//! never case rows, and never read a sealed column.
//!
//! The SQL is one text for both backends except the time differences; it is
//! written with `$n` placeholders, which SQLite reads as `?n`.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::db::{Backend, DbConnection};

/// The area and every organisation below it, as a common table expression
/// (`$1` is the area id).
const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (
    SELECT id FROM organisations WHERE id = $1
    UNION ALL SELECT o.id FROM organisations o JOIN sub ON o.parent_id = sub.id)";

/// Cases and referrals count at the school that recorded them, which a
/// transfer does not change (`recorded_school_id`, set when one moves;
/// migration 000015). Written so the `school_id` indexes still serve the
/// cases that never moved: on PostgreSQL the subtree is an array
/// (`= ANY(ARRAY(…))`, an init plan), so each side of the OR is an index
/// condition and the two are combined by a BitmapOr; with `IN (SELECT …)`
/// PostgreSQL scanned the whole table (162 ms against 4.6 ms for one edge
/// query at a million cases). SQLite gets `IN (SELECT …)` ([`for_backend`]).
const RECORDED_AT_C: &str = "((c.recorded_school_id IS NULL AND c.school_id = ANY(ARRAY(SELECT id FROM sub))) \
     OR c.recorded_school_id = ANY(ARRAY(SELECT id FROM sub)))";
const RECORDED_AT_R: &str = "((r.recorded_school_id IS NULL AND r.school_id = ANY(ARRAY(SELECT id FROM sub))) \
     OR r.recorded_school_id = ANY(ARRAY(SELECT id FROM sub)))";

fn for_backend(conn: &DbConnection, sql: &str) -> String {
    match conn.backend() {
        Backend::Postgres => sql.to_owned(),
        Backend::Sqlite => sql
            .replace(
                "= ANY(ARRAY(SELECT id FROM sub))",
                "IN (SELECT id FROM sub)",
            )
            .replace('$', "?"),
    }
}

/// Everything a report counts, summed: `(measure, school, a, b)` → count.
/// The measures and their codes are those of `stats_counts` (migrations
/// `000012_statistics_summary` and `000020_statistics_contexts`), plus
/// `referral_open` (a = `overdue` or `pending`, b = ''), which depends on
/// the time of the report. Only the measures of [`BY_SCHOOL`] keep their
/// school (the schools' totals, the area and school-level rows); the others
/// have school ''. Counts of zero are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tallies(BTreeMap<(String, String, String, String), i64>);

impl Tallies {
    fn add(&mut self, figure: Figure) {
        let school = if BY_SCHOOL.contains(&figure.measure.as_str()) {
            figure.school_id
        } else {
            String::new()
        };
        let key = (figure.measure, school, figure.a, figure.b);
        // Negative for the days a month's count is taken minus.
        *self.0.entry(key).or_default() += figure.n;
    }

    /// Drops what sums to nothing. A negative total would mean a broken
    /// summary; it is dropped too rather than lower anything published
    /// (the equality test is what guards against it).
    fn settle(mut self) -> Self {
        self.0.retain(|_, n| *n > 0);
        self
    }

    /// The figures of one measure: `(school, a, b, count)`.
    pub fn of<'a>(
        &'a self,
        measure: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a str, u64)> + 'a {
        self.0
            .range(
                (
                    measure.to_owned(),
                    String::new(),
                    String::new(),
                    String::new(),
                )..,
            )
            .take_while(move |((m, _, _, _), _)| m == measure)
            .map(|((_, school, a, b), n)| {
                let n = u64::try_from(*n).unwrap_or(0);
                (school.as_str(), a.as_str(), b.as_str(), n)
            })
    }

    /// The figures where `self` and `other` differ, as text (for tests and
    /// diagnostics: codes and counts only).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let keys: std::collections::BTreeSet<_> = self.0.keys().chain(other.0.keys()).collect();
        keys.into_iter()
            .filter_map(|key| {
                let (a, b) = (self.0.get(key), other.0.get(key));
                (a != b).then(|| format!("{key:?}: {a:?} vs {b:?}"))
            })
            .collect()
    }

    /// A histogram of a measure whose `b` is a whole number.
    pub fn histogram(&self, measure: &str) -> Vec<Bucket> {
        let mut sums: BTreeMap<i64, i64> = BTreeMap::new();
        for (_, _, b, n) in self.of(measure) {
            if let Ok(value) = b.parse::<i64>() {
                *sums.entry(value).or_default() += i64::try_from(n).unwrap_or(i64::MAX);
            }
        }
        sums.into_iter()
            .map(|(value, n)| Bucket { value, n })
            .collect()
    }
}

/// The measures counted per school: cases (the schools' totals, the rows by
/// area and school level) and the incidents' contexts and child-sexual-abuse
/// sub-types (their columns by school level).
pub const BY_SCHOOL: &[&str] = &["case", "incident_context", "incident_csa"];

/// One counted figure, from the pre-summed table or from the rows.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
struct Figure {
    #[diesel(sql_type = Text)]
    measure: String,
    #[diesel(sql_type = Text)]
    school_id: String,
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How a window is read: whole UTC months and days from `stats_counts`, the
/// hours before the first and after the last whole day from the rows. A
/// month that is mostly inside the window is read as the month minus the
/// days outside it (a six-month report ending on 30 April at 17:00 UTC
/// reads April minus 30 April, not 29 days).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Parts of days at the edges, read from the rows.
    edges: Vec<(NaiveDateTime, NaiveDateTime)>,
    /// Pre-summed ranges `[first, end)`: grain (`d` or `m`, whose bounds
    /// are first days of months) and sign (+1 added, −1 taken away).
    summed: Vec<(&'static str, i64, NaiveDate, NaiveDate)>,
    /// What the pre-summed ranges cover together, `[start, end)`.
    span: Option<(NaiveDateTime, NaiveDateTime)>,
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(day: NaiveDate) -> NaiveDate {
    let first = month_start(day);
    first.checked_add_months(Months::new(1)).unwrap_or(first)
}

impl Plan {
    fn of(from: NaiveDateTime, to: NaiveDateTime) -> Self {
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        let first = if from.time() == NaiveTime::MIN {
            from.date()
        } else {
            from.date().succ_opt().unwrap_or(from.date())
        };
        let end = to.date();
        if first >= end {
            return Self {
                edges: [(from, to)].into_iter().filter(|(a, b)| a < b).collect(),
                summed: Vec::new(),
                span: None,
            };
        }
        let edges = [(from, midnight(first)), (midnight(end), to)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect();
        let mut summed = Vec::new();
        // Days [a, b) inside one month: as days, or as the month minus the
        // days outside, whichever reads fewer days.
        let mut days_of_one_month = |a: NaiveDate, b: NaiveDate| {
            if a >= b {
                return;
            }
            let (m0, m1) = (month_start(a), next_month(a));
            let inside = (b - a).num_days();
            let outside = (m1 - m0).num_days() - inside;
            if outside < inside {
                summed.push(("m", 1, m0, m1));
                for (x, y) in [(m0, a), (b, m1)] {
                    if x < y {
                        summed.push(("d", -1, x, y));
                    }
                }
            } else {
                summed.push(("d", 1, a, b));
            }
        };
        let whole_from = if first == month_start(first) {
            first
        } else {
            next_month(first)
        };
        let whole_to = month_start(end);
        if whole_from <= whole_to {
            days_of_one_month(first, whole_from);
            days_of_one_month(whole_to, end);
            if whole_from < whole_to {
                summed.push(("m", 1, whole_from, whole_to));
            }
        } else {
            days_of_one_month(first, end);
        }
        Self {
            edges,
            summed,
            span: Some((midnight(first), midnight(end))),
        }
    }
}

/// Everything the report of `area` counts in `[from, to)`, with
/// unacknowledged referrals judged at `now`: whole months and days from
/// the pre-summed counts, the rest from the rows. Equal to [`from_rows`]
/// (a test holds them equal after random writes).
pub fn tallies(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Tallies> {
    let plan = Plan::of(from, to);
    let mut tallies = Tallies::default();
    for (start, end) in &plan.edges {
        rows(conn, area_id, *start, *end, now, &mut tallies)?;
    }
    if !plan.summed.is_empty() {
        // One statement for every range. Grain, sign and days are written
        // into the text: they come from the plan (static codes, ±1 and
        // dates formatted here), never from a request.
        let branches: Vec<String> = plan
            .summed
            .iter()
            .map(|(grain, sign, first, end)| {
                format!(
                    "SELECT s.measure, s.school_id, s.a, s.b, s.n * {sign} AS n FROM stats_counts s
WHERE s.grain = '{grain}' AND s.bucket >= '{first}' AND s.bucket < '{end}'
  AND s.school_id IN (SELECT id FROM sub)",
                    first = first.format("%Y-%m-%d"),
                    end = end.format("%Y-%m-%d"),
                )
            })
            .collect();
        let sql = format!(
            "{SUBTREE}
SELECT p.measure AS measure,
       CASE WHEN p.measure IN ('case', 'incident_context', 'incident_csa') THEN p.school_id ELSE '' END AS school_id,
       p.a AS a, p.b AS b, CAST(SUM(p.n) AS BIGINT) AS n
FROM ({}) p
GROUP BY 1, 2, 3, 4",
            branches.join("\nUNION ALL\n")
        );
        let figures: Vec<Figure> = diesel::sql_query(for_backend(conn, &sql))
            .bind::<Text, _>(area_id)
            .load(conn)?;
        for figure in figures {
            tallies.add(figure);
        }
    }
    if let Some((start, end)) = plan.span {
        for figure in unacknowledged(conn, area_id, start, end, now)? {
            tallies.add(figure);
        }
    }
    Ok(tallies.settle())
}

/// The same figures counted from the rows alone (what the pre-summed
/// counts must always equal).
pub fn from_rows(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Tallies> {
    let mut tallies = Tallies::default();
    rows(conn, area_id, from, to, now, &mut tallies)?;
    Ok(tallies.settle())
}

/// Counts the rows of `[from, to)` into `tallies`, on the covering indexes
/// of migration `000010_statistics`. One window per query: an `OR` of two
/// windows made both backends read the school's whole index range (1.2 s
/// instead of 0.06 s at a million cases).
fn rows(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
    tallies: &mut Tallies,
) -> QueryResult<()> {
    let backend = conn.backend();
    let days = whole_units(backend, "c.closed_at", "c.created_at", 86_400);
    let hours = whole_units(backend, "r.acknowledged_at", "r.sent_at", 3600);
    // Each context of an incident: `contexts` holds codes joined by commas.
    let each_context = match backend {
        Backend::Sqlite => "json_each('[\"' || replace(i.contexts, ',', '\",\"') || '\"]') j",
        Backend::Postgres => "LATERAL unnest(string_to_array(i.contexts, ',')) AS j(value)",
    };
    let queries = [
        format!(
            "{SUBTREE}
SELECT 'case' AS measure, COALESCE(c.recorded_school_id, c.school_id) AS school_id, c.survivor_sex AS a,
       COALESCE(c.age_band, '') AS b, COUNT(*) AS n
FROM cases c
WHERE {RECORDED_AT_C} AND c.created_at >= $2 AND c.created_at < $3
GROUP BY 2, c.survivor_sex, c.age_band"
        ),
        format!(
            "{SUBTREE}
SELECT 'closure' AS measure, '' AS school_id, '' AS a, CAST({days} AS TEXT) AS b, COUNT(*) AS n
FROM cases c
WHERE {RECORDED_AT_C} AND c.closed_at >= $2 AND c.closed_at < $3
GROUP BY 4"
        ),
        format!(
            "{SUBTREE}
SELECT 'incident' AS measure, COALESCE(i.survivor_sex, '') AS school_id, i.incident_type AS a,
       i.perpetrator_relation || '|' || i.reporting_delay AS b, COUNT(*) AS n
FROM incidents i
WHERE i.school_id IN (SELECT id FROM sub) AND i.created_at >= $2 AND i.created_at < $3
GROUP BY i.survivor_sex, i.incident_type, i.perpetrator_relation, i.reporting_delay"
        ),
        format!(
            "{SUBTREE}
SELECT 'incident_context' AS measure, i.school_id AS school_id, j.value AS a,
       COALESCE(i.survivor_sex, '') || '|' || COALESCE(i.survivor_age_band, '') AS b, COUNT(*) AS n
FROM incidents i CROSS JOIN {each_context}
WHERE i.school_id IN (SELECT id FROM sub) AND i.created_at >= $2 AND i.created_at < $3
  AND i.contexts <> '' AND j.value <> ''
GROUP BY 2, 3, 4"
        ),
        format!(
            "{SUBTREE}
SELECT 'incident_csa' AS measure, i.school_id AS school_id, i.csa_subtype AS a,
       COALESCE(i.survivor_sex, '') || '|' || COALESCE(i.survivor_age_band, '') AS b, COUNT(*) AS n
FROM incidents i
WHERE i.school_id IN (SELECT id FROM sub) AND i.created_at >= $2 AND i.created_at < $3
  AND i.csa_subtype IS NOT NULL AND i.csa_subtype <> ''
GROUP BY 2, 3, 4"
        ),
        format!(
            "{SUBTREE}
SELECT 'case_disability' AS measure, '' AS school_id, c.survivor_sex AS a,
       CASE WHEN c.disability THEN 'with' ELSE 'without' END AS b, COUNT(*) AS n
FROM cases c
WHERE {RECORDED_AT_C} AND c.created_at >= $2 AND c.created_at < $3
GROUP BY 3, 4"
        ),
        format!(
            "{SUBTREE}
SELECT r.agency_type || '|' || r.status AS measure,
       CASE WHEN r.acknowledged_at IS NOT NULL AND r.acknowledged_at <= r.acknowledge_by THEN 'on_time'
            WHEN r.acknowledged_at IS NOT NULL THEN 'late'
            WHEN r.acknowledge_by < $4 THEN 'overdue'
            ELSE 'pending' END AS school_id,
       '' AS a, COALESCE(CAST({hours} AS TEXT), '') AS b, COUNT(*) AS n
FROM referrals r
WHERE {RECORDED_AT_R} AND r.sent_at >= $2 AND r.sent_at < $3
GROUP BY 1, 2, 4"
        ),
    ];
    for sql in queries {
        let query = diesel::sql_query(for_backend(conn, &sql))
            .bind::<Text, _>(area_id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to);
        // Only the referrals' query judges timeliness at `now`.
        let figures: Vec<Figure> = if sql.contains("$4") {
            query.bind::<Timestamp, _>(now).load(conn)?
        } else {
            query.load(conn)?
        };
        for figure in figures {
            for split in split_row(figure) {
                tallies.add(split);
            }
        }
    }
    Ok(())
}

/// Turns one joint row of [`rows`] into the measures it counts towards.
fn split_row(f: Figure) -> Vec<Figure> {
    let figure = |measure: &str, school_id: &str, a: &str, b: &str| Figure {
        measure: measure.to_owned(),
        school_id: school_id.to_owned(),
        a: a.to_owned(),
        b: b.to_owned(),
        n: f.n,
    };
    match f.measure.as_str() {
        "case" | "closure" | "incident_context" | "incident_csa" | "case_disability" => {
            vec![f.clone()]
        }
        "incident" => {
            // school_id carries the sex; b the relation and the delay.
            let (relation, delay) = f.b.split_once('|').unwrap_or((&f.b, ""));
            vec![
                figure("incident_type", "", &f.school_id, &f.a),
                figure("incident_relation", "", &f.school_id, relation),
                figure("incident_delay", "", &f.school_id, delay),
            ]
        }
        joint => {
            // A referral: measure carries agency|status, school_id the
            // timeliness, b the whole hours to acknowledge.
            let (agency, status) = joint.split_once('|').unwrap_or((joint, ""));
            let timeliness = f.school_id.as_str();
            let mut out = vec![figure("referral", "", agency, status)];
            if matches!(timeliness, "on_time" | "late") {
                out.push(figure("referral_ack", "", timeliness, &f.b));
            } else {
                out.push(figure("referral_open", "", timeliness, ""));
            }
            out
        }
    }
}

/// Unacknowledged referrals sent in `[from, to)`, overdue or pending at
/// `now` (on the partial index of migration `000012`).
fn unacknowledged(
    conn: &mut DbConnection,
    area_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Vec<Figure>> {
    let sql = format!(
        "{SUBTREE}
SELECT 'referral_open' AS measure, '' AS school_id,
       CASE WHEN r.acknowledge_by < $4 THEN 'overdue' ELSE 'pending' END AS a, '' AS b, COUNT(*) AS n
FROM referrals r
WHERE {RECORDED_AT_R} AND r.sent_at >= $2 AND r.sent_at < $3
  AND r.acknowledged_at IS NULL
GROUP BY 3"
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
        // Whole milliseconds first: julianday() differences are doubles,
        // and exactly one hour came out as 0.99999… hours, counted as 0.
        Backend::Sqlite => format!(
            "(CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400000) AS INTEGER) / {})",
            u64::from(seconds) * 1000
        ),
        Backend::Postgres => {
            format!("CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / {seconds}) AS BIGINT)")
        }
    }
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
    fn a_plan_covers_the_window_exactly_once_with_whole_days_and_months() {
        let at = |y, m, d, h, min| {
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap()
        };
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        let mut windows = vec![
            (at(2025, 10, 31, 17, 0), at(2026, 4, 30, 17, 0)),
            (at(2026, 1, 1, 0, 0), at(2026, 7, 1, 0, 0)),
            (at(2026, 3, 5, 3, 0), at(2026, 3, 5, 20, 0)),
            (at(2026, 3, 5, 3, 0), at(2026, 3, 6, 20, 0)),
            (at(2026, 3, 5, 0, 0), at(2026, 3, 6, 0, 0)),
            (at(2026, 3, 2, 0, 0), at(2026, 3, 31, 0, 0)),
            (at(2026, 2, 27, 1, 30), at(2026, 3, 2, 0, 30)),
            (at(2026, 2, 1, 0, 0), at(2026, 3, 1, 0, 0)),
            (at(2026, 5, 5, 5, 5), at(2026, 5, 5, 5, 5)),
        ];
        let mut seed = 7_u64;
        for _ in 0..2000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let start = at(2025, 1, 1, 0, 0)
                + chrono::Duration::minutes(i64::try_from((seed >> 40) % 700_000).unwrap());
            let length = chrono::Duration::minutes(i64::try_from((seed >> 13) % 300_000).unwrap());
            windows.push((start, start + length));
        }
        for (from, to) in windows {
            let plan = Plan::of(from, to);
            // Signed pieces; between any two consecutive bounds, the pieces
            // must add up to one inside the window and to nothing outside.
            let mut pieces: Vec<(i64, NaiveDateTime, NaiveDateTime)> =
                plan.edges.iter().map(|(a, b)| (1, *a, *b)).collect();
            for (grain, sign, a, b) in &plan.summed {
                assert!(a < b, "{from}–{to}: {plan:?}");
                if *grain == "m" {
                    assert!(a.day() == 1 && b.day() == 1, "{from}–{to}: {plan:?}");
                }
                pieces.push((*sign, midnight(*a), midnight(*b)));
            }
            for (a, b) in &plan.edges {
                assert!(
                    *b - *a < chrono::Duration::days(2),
                    "{from}–{to}: edge {a}–{b}"
                );
            }
            let mut bounds: Vec<NaiveDateTime> = pieces
                .iter()
                .flat_map(|(_, a, b)| [*a, *b])
                .chain([from, to])
                .collect();
            bounds.sort();
            bounds.dedup();
            for pair in bounds.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let cover: i64 = pieces
                    .iter()
                    .filter(|(_, x, y)| *x <= a && b <= *y)
                    .map(|(sign, _, _)| sign)
                    .sum();
                let want = i64::from(from <= a && b <= to);
                assert_eq!(cover, want, "{from}–{to}: {a}–{b} in {plan:?}");
            }
            // Never more than about a month of days.
            let days: i64 = plan
                .summed
                .iter()
                .filter(|(grain, ..)| *grain == "d")
                .map(|(_, _, a, b)| (*b - *a).num_days())
                .sum();
            assert!(days <= 31, "{from}–{to}: {days} days in {plan:?}");
        }
        // The six-month report at UTC+7: five months, April minus its last
        // day, and the 7 + 17 hours at the edges.
        let plan = Plan::of(at(2025, 10, 31, 17, 0), at(2026, 4, 30, 17, 0));
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            plan.summed,
            vec![
                ("m", 1, d(2026, 4, 1), d(2026, 5, 1)),
                ("d", -1, d(2026, 4, 30), d(2026, 5, 1)),
                ("m", 1, d(2025, 11, 1), d(2026, 4, 1)),
            ]
        );
        assert_eq!(plan.edges.len(), 2);
    }

    #[test]
    fn median_of_a_histogram() {
        let b = |value, n| Bucket { value, n };
        assert_eq!(median(&[]), (None, 0));
        assert_eq!(median(&[b(5, 1)]), (Some(5), 1));
        assert_eq!(median(&[b(9, 2), b(1, 1), b(3, 1)]), (Some(3), 4));
        assert_eq!(median(&[b(2, 3), b(10, 2)]), (Some(2), 5));
    }
}
