//! The escalation scheduler's cost per pass (issue 5), on SQLite and (when
//! `PG_URL` names an admin URL, e.g. postgres://postgres@127.0.0.1/postgres)
//! on PostgreSQL.
//!
//! For each size in `SIZES` (default 10000,100000) open cases, each with
//! three running clocks (assessment, support plan, a required report) due
//! over the next 30 days, in one run:
//! - an idle pass: nothing due (what every replica does every minute);
//!   median of 20 passes;
//! - a busy pass: the clock moved so that about 1% of the clocks are due;
//!   the pass's time and its cost per escalation raised (each escalation is
//!   a row, a chronology entry, an audit entry and a notice per district
//!   officer, in batches of 200 per transaction).
//!
//! Run: `cargo bench --bench escalation` (`SIZES=1000,100000` to change).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::unwrap_used,
    reason = "a benchmark: a broken setup should stop it loudly, and it reports on stdout"
)]

mod support;

use std::time::{Duration, Instant};

use caseguard::authn::accounts::{self, NewAccount};
use caseguard::clock::{Clock, FixedClock};
use caseguard::config::Settings;
use caseguard::db::cases::CaseRow;
use caseguard::db::referrals::DeadlineRow;
use caseguard::domain::org::OrgCode;
use caseguard::domain::user::{DisplayName, EmailAddress, Role};
use caseguard::referrals::escalation;
use caseguard::startup::Application;
use diesel::prelude::*;

const BATCH: usize = 1000;

fn settings(url: &str, dir: &std::path::Path) -> Settings {
    Settings::from_overrides([
        ("database_url", serde_json::json!(url)),
        ("data_dir", serde_json::json!(dir)),
        ("listen", serde_json::json!("127.0.0.1:0")),
        ("outbox_poll_seconds", serde_json::json!(0)),
    ])
    .expect("settings")
}

/// Fills the store with `size` open cases and three clocks each.
fn populate(state: &caseguard::web::AppState, clock: &FixedClock, size: usize) {
    let mut conn = state.db.get().unwrap();
    caseguard::demo::load_organisations(&mut conn, clock).unwrap();
    let by = support::user_create(state, &mut conn, "SX-AL");
    accounts::create(
        &mut conn,
        &state.keyring.current(),
        &state.auditor,
        clock,
        NewAccount {
            org: OrgCode::parse("SX-AL").unwrap(),
            role: Role::DistrictOfficer,
            email: EmailAddress::parse("district@bench.caseguard.invalid").unwrap(),
            name: DisplayName::parse("Cán bộ huyện").unwrap(),
            password_hash: None,
            totp_secret: None,
        },
        &by,
    )
    .unwrap();
    use caseguard::db::schema::{cases, deadlines, organisations};
    let schools: Vec<String> = organisations::table
        .filter(organisations::kind.eq("school"))
        .select(organisations::id)
        .load(&mut conn)
        .unwrap();
    let now = clock.now_naive();
    let mut made = 0;
    while made < size {
        let count = BATCH.min(size - made);
        let mut case_rows = Vec::with_capacity(count);
        let mut clock_rows = Vec::with_capacity(count * 3);
        for i in made..made + count {
            let id = uuid::Uuid::now_v7().to_string();
            let school = schools[i % schools.len()].clone();
            case_rows.push(CaseRow {
                id: id.clone(),
                school_id: school.clone(),
                status: "reported".into(),
                risk_level: "medium".into(),
                survivor_sex: "female".into(),
                age_band: Some("11_14".into()),
                under_16: Some(true),
                under_18: Some(true),
                disability: false,
                school_level: "primary".into(),
                version: 1,
                created_by: "bench".into(),
                created_at: now,
                updated_at: now,
                closed_at: None,
                legal_hold: false,
                content_destroyed_at: None,
                assigned_to: None,
            });
            // Due spread over 30 days, minute by minute.
            let spread = |k: usize| {
                now + chrono::Duration::minutes(
                    i64::try_from((i * 7 + k * 13_331) % (30 * 24 * 60)).unwrap() + 1,
                )
            };
            for (k, (kind, subject)) in [
                ("assessed", "assessed"),
                ("plan_made", "plan_made"),
                ("send", "social_protection"),
            ]
            .into_iter()
            .enumerate()
            {
                let due = spread(k);
                clock_rows.push(DeadlineRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    case_id: id.clone(),
                    school_id: school.clone(),
                    referral_id: None,
                    kind: kind.into(),
                    subject: subject.into(),
                    rule: "bench".into(),
                    source: "bench".into(),
                    started_at: now,
                    due_at: due,
                    met_at: None,
                    outcome: None,
                    level: 0,
                    next_check_at: Some(due),
                    created_at: now,
                });
            }
        }
        caseguard::db::write_transaction(&mut conn, |conn| -> QueryResult<()> {
            // Row by row: diesel's batch insert is per backend, and a
            // transaction makes this fast enough for a fixture.
            for row in &case_rows {
                diesel::insert_into(cases::table)
                    .values(row)
                    .execute(conn)?;
            }
            for row in &clock_rows {
                diesel::insert_into(deadlines::table)
                    .values(row)
                    .execute(conn)?;
            }
            Ok(())
        })
        .unwrap();
        made += count;
    }
}

fn pass(state: &caseguard::web::AppState) -> (Duration, escalation::PassReport) {
    let mut conn = state.db.get().unwrap();
    let started = Instant::now();
    let report = escalation::pass(&mut conn, &state.case_context(), 200).unwrap();
    (started.elapsed(), report)
}

async fn measure(backend: &str, url: &str, dir: &std::path::Path, size: usize) {
    let clock = FixedClock::new(caseguard::clock::SystemClock.now());
    let app = Application::build_with(settings(url, dir), std::sync::Arc::new(clock.clone()), None)
        .await
        .expect("app");
    let state = app.state().clone();
    let (populate_state, populate_clock) = (state.clone(), clock.clone());
    let filled = Instant::now();
    tokio::task::spawn_blocking(move || populate(&populate_state, &populate_clock, size))
        .await
        .unwrap();
    let filled = filled.elapsed();
    let (idle_state, busy_state, busy_clock) = (state.clone(), state.clone(), clock.clone());
    let idle = tokio::task::spawn_blocking(move || {
        let mut times: Vec<f64> = (0..20)
            .map(|_| {
                let (took, report) = pass(&idle_state);
                assert_eq!(report.raised, 0);
                took.as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    })
    .await
    .unwrap();
    // About 1% of 3 × size clocks spread over 30 days fall in 7.2 hours.
    let (busy, report) = tokio::task::spawn_blocking(move || {
        busy_clock.advance(chrono::Duration::minutes(3 * 24 * 60 / 10));
        pass(&busy_state)
    })
    .await
    .unwrap();
    let busy_ms = busy.as_secs_f64() * 1000.0;
    println!(
        "{backend:<10} {size:>8} open cases ({:>7} clocks) | idle pass {idle:>8.2} ms | busy pass {busy_ms:>9.1} ms for {:>5} escalations = {:>6.2} ms each | filled in {:.1} s",
        size * 3,
        report.raised,
        busy_ms / report.raised.max(1) as f64,
        filled.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("SIZES: numbers"))
        .collect();
    println!("escalation scheduler: cost per pass");
    for size in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        measure("sqlite", &url, dir.path(), *size).await;
        if let Ok(admin) = std::env::var("PG_URL") {
            let name = format!("cg_bench_escalation_{}", uuid::Uuid::new_v4().simple());
            let mut admin_conn = diesel::PgConnection::establish(&admin).expect("PG_URL");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin_conn)
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let pg_dir = tempfile::tempdir().unwrap();
            measure("postgres", &format!("{base}/{name}"), pg_dir.path(), *size).await;
            diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut admin_conn)
                .unwrap();
        }
    }
}
