//! The pre-summed statistics (migrations `000012_statistics_summary` and
//! `000020_statistics_contexts`) always equal the rows they sum: after
//! generation, after random updates and deletions of cases, incidents and
//! referrals (contexts, sub-types, disability and age bands included), and
//! after migration 000020 is applied to a populated store (its back-fill),
//! for windows of every shape (inside one day, across month edges, at any
//! hour, whole months).

use caseguard::db::DbConnection;
use caseguard::stats::query;
use chrono::{Duration, NaiveDateTime, NaiveTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::helpers::{Backend, TestApp};
use crate::stats::generate;

on_both_backends!(pre_summed_counts_equal_the_rows);

/// A small deterministic generator (the test must be repeatable).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct At {
    #[diesel(sql_type = Timestamp)]
    at: NaiveDateTime,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn text(conn: &DbConnection, sql: &str) -> String {
    match conn {
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
        DbConnection::Postgresql(_) => sql.to_owned(),
    }
}

fn ids(conn: &mut DbConnection, sql: &str) -> Vec<String> {
    let sql = text(conn, sql);
    diesel::sql_query(sql)
        .load::<Id>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn at(conn: &mut DbConnection, sql: &str, id: &str) -> NaiveDateTime {
    let sql = text(conn, sql);
    diesel::sql_query(sql)
        .bind::<Text, _>(id)
        .get_result::<At>(conn)
        .unwrap()
        .at
}

fn set(conn: &mut DbConnection, sql: &str, value: &str, id: &str) {
    let sql = text(conn, sql);
    let changed = diesel::sql_query(sql)
        .bind::<Text, _>(value)
        .bind::<Text, _>(id)
        .execute(conn)
        .unwrap();
    assert_eq!(changed, 1);
}

fn set_time(conn: &mut DbConnection, sql: &str, value: Option<NaiveDateTime>, id: &str) {
    let sql = text(conn, sql);
    let changed = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Nullable<Timestamp>, _>(value)
        .bind::<Text, _>(id)
        .execute(conn)
        .unwrap();
    assert_eq!(changed, 1);
}

fn delete(conn: &mut DbConnection, sql: &str, id: &str) {
    let sql = text(conn, sql);
    diesel::sql_query(sql)
        .bind::<Text, _>(id)
        .execute(conn)
        .unwrap();
}

/// Windows of every shape around `now`: the test clock's year-end period
/// at UTC+7, whole UTC months, parts of one day, and random ones.
fn windows(now: NaiveDateTime, rng: &mut Lcg) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let day = |y, m, d| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_time(NaiveTime::MIN)
    };
    let mut out = vec![
        (now - Duration::days(900), now + Duration::days(1)),
        (
            day(2025, 10, 31) + Duration::hours(17),
            day(2026, 10, 31) + Duration::hours(17),
        ),
        (day(2026, 1, 1), day(2026, 4, 1)),
        (day(2026, 3, 1), day(2026, 3, 2)),
        (
            day(2026, 3, 5) + Duration::hours(3),
            day(2026, 3, 5) + Duration::hours(20),
        ),
        (
            day(2026, 2, 27) + Duration::minutes(90),
            day(2026, 3, 2) + Duration::minutes(30),
        ),
        (day(2026, 2, 10), day(2026, 7, 20) + Duration::hours(5)),
    ];
    for _ in 0..24 {
        let start = now
            - Duration::days(i64::try_from(rng.below(800)).unwrap())
            - Duration::minutes(i64::try_from(rng.below(1440)).unwrap());
        let length = Duration::days(i64::try_from(rng.below(400)).unwrap())
            + Duration::minutes(i64::try_from(rng.below(1440)).unwrap());
        out.push((start, start + length));
    }
    out
}

fn check(conn: &mut DbConnection, area: &str, now: NaiveDateTime, rng: &mut Lcg, when: &str) {
    let mut counted = 0;
    for (from, to) in windows(now, rng) {
        let summed = query::tallies(conn, area, from, to, now).unwrap();
        let rows = query::from_rows(conn, area, from, to, now).unwrap();
        let differences = summed.differences(&rows);
        assert!(
            differences.is_empty(),
            "{when}: window {from} – {to}: pre-summed vs rows: {differences:#?}"
        );
        counted += usize::from(rows != query::Tallies::default());
    }
    assert!(counted > 20, "{when}: only {counted} windows held anything");
    let sql = text(conn, "SELECT COUNT(*) AS n FROM stats_counts WHERE n <= 0");
    let kept = diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n;
    assert_eq!(kept, 0, "{when}: rows of zero or less are kept");
}

/// Random updates of every counted column, and deletions.
fn mutate(conn: &mut DbConnection, rng: &mut Lcg) {
    let cases = ids(conn, "SELECT id FROM cases ORDER BY id");
    let sexes = ids(
        conn,
        "SELECT DISTINCT survivor_sex AS id FROM cases ORDER BY 1",
    );
    let ages = ids(
        conn,
        "SELECT DISTINCT age_band AS id FROM cases WHERE age_band IS NOT NULL ORDER BY 1",
    );
    assert!(cases.len() > 100 && sexes.len() > 1 && ages.len() > 1);
    let flags = vec!["true".to_owned(), "false".to_owned()];
    for _ in 0..60 {
        let case = rng.pick(&cases).to_owned();
        match rng.below(7) {
            5 => set(
                conn,
                "UPDATE cases SET disability = ($1 = 'true') WHERE id = $2",
                rng.pick(&flags),
                &case,
            ),
            6 => set(
                conn,
                "UPDATE cases SET age_band = NULL WHERE $1 <> '' AND id = $2",
                "unknown",
                &case,
            ),
            0 => set(
                conn,
                "UPDATE cases SET survivor_sex = $1 WHERE id = $2",
                rng.pick(&sexes),
                &case,
            ),
            1 => set(
                conn,
                "UPDATE cases SET age_band = $1 WHERE id = $2",
                rng.pick(&ages),
                &case,
            ),
            2 => set_time(
                conn,
                "UPDATE cases SET closed_at = $1 WHERE id = $2",
                None,
                &case,
            ),
            3 => {
                let created = at(
                    conn,
                    "SELECT created_at AS at FROM cases WHERE id = $1",
                    &case,
                );
                let closed = created + Duration::hours(i64::try_from(rng.below(2000)).unwrap());
                set_time(
                    conn,
                    "UPDATE cases SET closed_at = $1 WHERE id = $2",
                    Some(closed),
                    &case,
                );
            }
            _ => {
                let created = at(
                    conn,
                    "SELECT created_at AS at FROM cases WHERE id = $1",
                    &case,
                );
                let earlier = created - Duration::minutes(i64::try_from(rng.below(5000)).unwrap());
                set_time(
                    conn,
                    "UPDATE cases SET created_at = $1 WHERE id = $2",
                    Some(earlier),
                    &case,
                );
            }
        }
    }
    let incidents = ids(conn, "SELECT id FROM incidents ORDER BY id");
    let types = ids(
        conn,
        "SELECT DISTINCT incident_type AS id FROM incidents ORDER BY 1",
    );
    let delays = ids(
        conn,
        "SELECT DISTINCT reporting_delay AS id FROM incidents ORDER BY 1",
    );
    let relations = ids(
        conn,
        "SELECT DISTINCT perpetrator_relation AS id FROM incidents ORDER BY 1",
    );
    let contexts = contexts_of(rng, 400);
    let subtypes = ids(
        conn,
        "SELECT DISTINCT csa_subtype AS id FROM incidents WHERE csa_subtype IS NOT NULL ORDER BY 1",
    );
    let subtypes: Vec<String> = subtypes
        .into_iter()
        .chain(["hiep_dam", "giao_cau", ""].map(str::to_owned))
        .collect();
    // Many incidents with several contexts first, a few with a sub-type.
    for (i, incident) in incidents.iter().enumerate().take(200) {
        set(
            conn,
            "UPDATE incidents SET contexts = $1 WHERE id = $2",
            &contexts[i],
            incident,
        );
        if i % 5 == 0 {
            set(
                conn,
                "UPDATE incidents SET csa_subtype = NULLIF($1, '') WHERE id = $2",
                rng.pick(&subtypes),
                incident,
            );
        }
    }
    for _ in 0..80 {
        let incident = rng.pick(&incidents).to_owned();
        match rng.below(7) {
            4 => set(
                conn,
                "UPDATE incidents SET contexts = $1 WHERE id = $2",
                rng.pick(&contexts),
                &incident,
            ),
            5 => set(
                conn,
                "UPDATE incidents SET csa_subtype = NULLIF($1, '') WHERE id = $2",
                rng.pick(&subtypes),
                &incident,
            ),
            6 => set(
                conn,
                "UPDATE incidents SET csa_subtype = NULL WHERE $1 <> '' AND id = $2",
                "none",
                &incident,
            ),
            0 => set(
                conn,
                "UPDATE incidents SET incident_type = $1 WHERE id = $2",
                rng.pick(&types),
                &incident,
            ),
            1 => set(
                conn,
                "UPDATE incidents SET reporting_delay = $1 WHERE id = $2",
                rng.pick(&delays),
                &incident,
            ),
            2 => set(
                conn,
                "UPDATE incidents SET perpetrator_relation = $1 WHERE id = $2",
                rng.pick(&relations),
                &incident,
            ),
            _ => delete(conn, "DELETE FROM incidents WHERE id = $1", &incident),
        }
    }
    let referrals = ids(conn, "SELECT id FROM referrals ORDER BY id");
    let statuses = ids(
        conn,
        "SELECT DISTINCT status AS id FROM referrals ORDER BY 1",
    );
    for _ in 0..40 {
        let referral = rng.pick(&referrals).to_owned();
        let sent = at(
            conn,
            "SELECT sent_at AS at FROM referrals WHERE id = $1",
            &referral,
        );
        match rng.below(5) {
            0 => set(
                conn,
                "UPDATE referrals SET status = $1 WHERE id = $2",
                rng.pick(&statuses),
                &referral,
            ),
            1 => set_time(
                conn,
                "UPDATE referrals SET acknowledged_at = $1 WHERE id = $2",
                None,
                &referral,
            ),
            2 => set_time(
                conn,
                "UPDATE referrals SET acknowledged_at = $1 WHERE id = $2",
                Some(sent + Duration::minutes(i64::try_from(rng.below(9000)).unwrap())),
                &referral,
            ),
            3 => set_time(
                conn,
                "UPDATE referrals SET acknowledge_by = $1 WHERE id = $2",
                Some(sent + Duration::hours(i64::try_from(rng.below(72)).unwrap())),
                &referral,
            ),
            _ => {
                for sql in [
                    "DELETE FROM partner_links WHERE referral_id = $1",
                    "DELETE FROM deadlines WHERE referral_id = $1",
                    "DELETE FROM referrals WHERE id = $1",
                ] {
                    delete(conn, sql, &referral);
                }
            }
        }
    }
    // Whole cases, with everything that hangs on them.
    for _ in 0..5 {
        let case = rng.pick(&cases).to_owned();
        for sql in [
            "DELETE FROM partner_links WHERE referral_id IN (SELECT id FROM referrals WHERE case_id = $1)",
            "DELETE FROM deadlines WHERE case_id = $1",
            "DELETE FROM escalations WHERE case_id = $1",
            "DELETE FROM referrals WHERE case_id = $1",
            "DELETE FROM suggestion_skips WHERE case_id = $1",
            "DELETE FROM attachments WHERE case_id = $1",
            "DELETE FROM perpetrators WHERE case_id = $1",
            "DELETE FROM consents WHERE case_id = $1",
            "DELETE FROM break_glass WHERE case_id = $1",
            "DELETE FROM chronology WHERE case_id = $1",
            "DELETE FROM incidents WHERE case_id = $1",
            "DELETE FROM pupils WHERE case_id = $1",
            "DELETE FROM case_keys WHERE case_id = $1",
            "DELETE FROM case_requests WHERE case_id = $1",
            "DELETE FROM cases WHERE id = $1",
        ] {
            delete(conn, sql, &case);
        }
    }
}

/// `n` random sets of contexts as `incidents.contexts` holds them (sorted
/// codes joined by commas; some empty, some of several codes).
pub(crate) fn contexts_of(rng: &mut Lcg, n: usize) -> Vec<String> {
    const CODES: &[&str] = &[
        "bullying",
        "child_sexual_abuse",
        "early_marriage",
        "illegal_marriage_brokerage",
        "online_abuse",
        "on_premises",
        "school_violence",
        "sexual_harassment",
        "trafficking",
    ];
    (0..n)
        .map(|_| {
            let mut picked: Vec<&str> = (0..rng.below(4))
                .map(|_| CODES[usize::try_from(rng.below(CODES.len() as u64)).unwrap()])
                .collect();
            picked.sort_unstable();
            picked.dedup();
            picked.join(",")
        })
        .collect()
}

/// Reverts migrations down to and including 000020 (the context tables)
/// and applies them again: the back-fill of a populated store.
fn upgrade_again(conn: &mut DbConnection) {
    let mut reverted = Vec::new();
    loop {
        let version = caseguard::db::migrations::revert_last(conn).unwrap();
        let done = version.contains("000020");
        reverted.push(version);
        if done {
            break;
        }
        assert!(reverted.len() < 5, "000020 not found: {reverted:?}");
    }
    let applied = caseguard::db::migrations::run_pending(conn).unwrap();
    assert_eq!(applied.len(), reverted.len(), "{applied:?} vs {reverted:?}");
}

async fn pre_summed_counts_equal_the_rows(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    generate(&app, 400, 7).await;
    let state = app.state.clone();
    let clock = app.clock.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let conn: &mut DbConnection = &mut conn;
        let area = caseguard::stats::area_by_code(conn, "SX-AL").unwrap().id;
        let now = caseguard::clock::Clock::now_naive(&clock);
        let mut rng = Lcg(20_261_129);
        check(conn, &area, now, &mut rng, "after generation");
        mutate(conn, &mut rng);
        check(conn, &area, now, &mut rng, "after updates and deletions");
        let measures = |conn: &mut DbConnection| {
            ids(
                conn,
                "SELECT DISTINCT measure || ':' || a AS id FROM stats_counts
                 WHERE measure IN ('incident_context', 'incident_csa', 'case_disability') ORDER BY 1",
            )
        };
        let before = measures(conn);
        assert!(
            before.len() > 12
                && before.iter().any(|m| m.starts_with("incident_csa:"))
                && before.iter().any(|m| m == "incident_context:trafficking"),
            "{before:?}"
        );
        upgrade_again(conn);
        assert_eq!(measures(conn), before);
        check(conn, &area, now, &mut rng, "after 000020 on a populated store");
        // Judged later: unacknowledged referrals turn overdue.
        check(
            conn,
            &area,
            now + Duration::days(3),
            &mut rng,
            "judged later",
        );
        exact_hours_are_counted_whole(conn, &area, now, &mut rng);
    })
    .await
    .unwrap();
}

/// Every referral acknowledged exactly 0 to 6 hours after it was sent: the
/// histogram of hours to acknowledge holds exactly those (SQLite's
/// julianday() once made exactly one hour 0.99999…, counted as 0).
fn exact_hours_are_counted_whole(
    conn: &mut DbConnection,
    area: &str,
    now: NaiveDateTime,
    rng: &mut Lcg,
) {
    let referrals = ids(conn, "SELECT id FROM referrals ORDER BY id");
    let mut expected: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for (i, referral) in referrals.iter().enumerate() {
        let hours = i64::try_from(i % 7).unwrap();
        let sent = at(
            conn,
            "SELECT sent_at AS at FROM referrals WHERE id = $1",
            referral,
        );
        set_time(
            conn,
            "UPDATE referrals SET acknowledged_at = $1 WHERE id = $2",
            Some(sent + Duration::hours(hours)),
            referral,
        );
        *expected.entry(hours).or_default() += 1;
    }
    let (from, to) = (now - Duration::days(2000), now + Duration::days(1));
    let histogram: std::collections::BTreeMap<i64, i64> = query::tallies(conn, area, from, to, now)
        .unwrap()
        .histogram("referral_ack")
        .into_iter()
        .map(|b| (b.value, b.n))
        .collect();
    assert_eq!(histogram, expected);
    check(conn, area, now, rng, "after exact hours");
}
