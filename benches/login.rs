//! A sign-in's server time: the real application on SQLite (argon2id,
//! TOTP, audit entry, token), 200 sequential sign-ins over loopback, p50 and
//! p99. Also the same for `/readyz`, as the floor of any request.
//!
//! Run: `cargo bench --bench login`.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark: a broken setup should stop it loudly, and it reports on stdout"
)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use caseguard::authn::accounts::{self, NewAccount};
use caseguard::clock::{Clock, FixedClock};
use caseguard::config::Settings;
use caseguard::domain::org::OrgCode;
use caseguard::domain::user::{DisplayName, EmailAddress, Role};
use caseguard::startup::Application;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::from_overrides([
        ("listen", serde_json::json!("127.0.0.1:0")),
        (
            "database_url",
            serde_json::json!(format!("sqlite://{}/bench.db", dir.path().display())),
        ),
        ("data_dir", serde_json::json!(dir.path())),
        ("log_level", serde_json::json!("warn")),
        ("login_attempts_per_minute", serde_json::json!(1_000_000)),
    ])
    .expect("settings");
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"));
    let app = Application::build_with(settings, Arc::new(clock.clone()), None)
        .await
        .expect("app");
    let state = app.state().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));

    let secret = caseguard::authn::totp::new_secret().expect("secret");
    let password = "ruộng bậc thang mùa nước đổ".to_owned();
    {
        let state = state.clone();
        let clock = clock.clone();
        let secret = secret.clone();
        let hash = caseguard::authn::password::hash_blocking(&password).expect("hash");
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().expect("conn");
            caseguard::demo::load_organisations(&mut conn, &clock).expect("orgs");
            let by = support::user_create(&state, &mut conn, "SX-AL-AB-TH");
            accounts::create(
                &mut conn,
                &state.keyring.current(),
                &state.auditor,
                &clock,
                NewAccount {
                    org: OrgCode::parse("SX-AL-AB-TH").expect("code"),
                    role: Role::FocalPoint,
                    email: EmailAddress::parse("bench@example.org").expect("email"),
                    name: DisplayName::parse("Bench").expect("name"),
                    password_hash: Some(hash),
                    totp_secret: Some(secret),
                },
                &by,
            )
            .expect("account");
        })
        .await
        .expect("setup");
    }
    let client = reqwest::Client::new();
    let mut logins = Vec::new();
    for _ in 0..200 {
        clock.advance(chrono::Duration::seconds(30));
        let step = u64::try_from(clock.now().timestamp()).expect("time") / 30;
        let code = caseguard::authn::totp::code_at_step(&secret, step).expect("code");
        let body =
            serde_json::json!({"email": "bench@example.org", "password": password, "totp": code});
        let start = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/auth/token"))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
        logins.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mut ready = Vec::new();
    for _ in 0..2000 {
        let start = Instant::now();
        let response = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("send");
        let _ = response.bytes().await;
        ready.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    for samples in [&mut logins, &mut ready] {
        samples.sort_by(f64::total_cmp);
    }
    println!(
        "sign-in (argon2id m=19MiB t=2 + TOTP + audit + token), {} runs: p50 {:.1} ms, p99 {:.1} ms",
        logins.len(),
        percentile(&logins, 0.5),
        percentile(&logins, 0.99)
    );
    println!(
        "/readyz, {} runs: p50 {:.2} ms, p99 {:.2} ms",
        ready.len(),
        percentile(&ready, 0.5),
        percentile(&ready, 0.99)
    );
}
