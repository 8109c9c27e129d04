//! The statistics' two sources side by side, on the same store in one run
//! (issue 7): the district's six-month window counted from the pre-summed
//! counts (`query::tallies`, what reports use) and from the rows alone
//! (`query::from_rows`, what reports did before migration 000012),
//! alternating, with a check that both give the same figures.
//!
//! Run on a store made by `benches/stats.sh` with `CG_BENCH_KEEP`:
//!
//! ```sh
//! CG_BENCH_URL=sqlite:///work/bench-store/sqlite/data/caseguard.db cargo bench --bench stats_sources
//! CG_BENCH_URL=postgres://postgres@127.0.0.1:5432/caseguard_bench_stats cargo bench --bench stats_sources
//! ```
//!
//! `CG_BENCH_AREA` (default SX-AL), `CG_BENCH_PERIOD` (default: the
//! six-month report whose window ended last), `CG_BENCH_RUNS` (default 7).

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a benchmark: a broken setup should stop it loudly, and it reports on stdout"
)]

use std::time::Instant;

use caseguard::clock::{Clock, SystemClock};
use caseguard::db::DatabaseUrl;
use caseguard::stats::{self, ReportingPolicy, query};
use chrono::Datelike;
use secrecy::SecretString;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let Ok(url) = std::env::var("CG_BENCH_URL") else {
        println!("CG_BENCH_URL is not set: nothing to measure (see the comment at the top)");
        return;
    };
    let url = DatabaseUrl::parse(&SecretString::from(url)).expect("CG_BENCH_URL");
    let mut conn = url.connect().expect("connect");
    let area_code = std::env::var("CG_BENCH_AREA").unwrap_or_else(|_| "SX-AL".into());
    let today = SystemClock.now().date_naive();
    let year = if today.month() > 4 {
        today.year()
    } else {
        today.year() - 1
    };
    let period_id =
        std::env::var("CG_BENCH_PERIOD").unwrap_or_else(|_| format!("six_month-{year}"));
    let runs: usize = std::env::var("CG_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let reporting = ReportingPolicy::default_shipped().unwrap();
    let period = reporting.period(&period_id).unwrap();
    let offset = caseguard::domain::calendar::Calendar::default_shipped()
        .unwrap()
        .utc_offset();
    let (from, to) = period.window_utc(offset);
    let area = stats::area_by_code(&mut conn, &area_code).expect("area");
    let now = SystemClock.now_naive();

    let summed = query::tallies(&mut conn, &area.id, from, to, now).unwrap();
    let rows = query::from_rows(&mut conn, &area.id, from, to, now).unwrap();
    let differences = summed.differences(&rows);
    assert!(
        differences.is_empty(),
        "the sources differ: {differences:#?}"
    );
    let cases: u64 = summed.of("case").map(|(.., n)| n).sum();

    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        query::tallies(&mut conn, &area.id, from, to, now).unwrap();
        fast.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        query::from_rows(&mut conn, &area.id, from, to, now).unwrap();
        slow.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (fast, slow) = (median(fast), median(slow));
    println!(
        "{} {area_code} {period_id} ({from} – {to} UTC, {cases} cases): pre-summed {fast:.1} ms, rows {slow:.1} ms (medians of {runs}, alternating); rows / pre-summed = {:.1}x; same figures",
        url.backend().as_str(),
        slow / fast
    );
}
