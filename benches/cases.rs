//! Case intake and reading under load, on SQLite and (when `PG_URL` names
//! an admin URL, e.g. postgres://postgres@127.0.0.1/postgres) on PostgreSQL.
//!
//! For each backend, in one run:
//! - `POST /api/v1/cases` (auth, policy, validation, a fresh data key, every
//!   sensitive field sealed, 7 rows incl. the audit entry) from 16 concurrent
//!   clients for 10 s: cases per second, p50/p99;
//! - the same number of rows written by a bare route in one transaction,
//!   without encryption, policy or audit chain, over the same HTTP stack:
//!   the store's own limit, and the ratio of the two (target >= 0.6);
//! - `GET /api/v1/cases/{id}` with every field decrypted: reads per second.
//!
//! Run: `cargo bench --bench cases` (set DURATION_SECS and CLIENTS to change
//! the load).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::unwrap_used,
    reason = "a benchmark: a broken setup should stop it loudly, and it reports on stdout"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use caseguard::authn::accounts::{self, NewAccount};
use caseguard::clock::{Clock, SystemClock};
use caseguard::config::Settings;
use caseguard::db::Db;
use caseguard::db::cases::{
    CaseKeyRow, CaseRequestRow, CaseRow, ChronologyRow, IncidentRow, PupilRow,
};
use caseguard::domain::org::OrgCode;
use caseguard::domain::user::{DisplayName, EmailAddress, Role};
use caseguard::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// The bare write: the same seven rows, plaintext, no policy, no chain.
async fn bare(db: web::Data<Db>) -> &'static str {
    db.write(|conn| -> Result<(), caseguard::db::DbError> {
        let now = SystemClock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        let school: String = caseguard::db::schema::organisations::table
            .filter(caseguard::db::schema::organisations::kind.eq("school"))
            .select(caseguard::db::schema::organisations::id)
            .first(conn)?;
        caseguard::db::cases::insert_case(
            conn,
            &CaseRow {
                id: id.clone(),
                school_id: school,
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
            },
        )?;
        caseguard::db::cases::insert_key(
            conn,
            &CaseKeyRow {
                case_id: id.clone(),
                kek_id: "none".into(),
                wrapped_dek: vec![0; 76],
                created_at: now,
                rewrapped_at: None,
            },
        )?;
        let blob = |n: usize| vec![b'x'; n];
        caseguard::db::cases::insert_pupil(
            conn,
            &PupilRow {
                case_id: id.clone(),
                name_enc: blob(60),
                date_of_birth_enc: blob(40),
                class_enc: Some(blob(35)),
                guardian_enc: Some(blob(60)),
                contact_enc: Some(blob(45)),
                blind_index: hex::encode(uuid::Uuid::new_v4().as_bytes()),
            },
        )?;
        let incident = uuid::Uuid::now_v7().to_string();
        caseguard::db::cases::insert_incident(
            conn,
            &IncidentRow {
                id: incident,
                case_id: id.clone(),
                incident_type: "physical_assault".into(),
                csa_subtype: None,
                contexts: "bullying".into(),
                location_type: "way_to_school".into(),
                perpetrator_relation: "peer_pupil".into(),
                incident_month: "2026-01".into(),
                reporting_delay: "over_30_days".into(),
                incident_date_enc: blob(40),
                narrative_enc: blob(300),
                created_by: "bench".into(),
                created_at: now,
            },
        )?;
        caseguard::db::cases::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: id.clone(),
                kind: "created".into(),
                from_status: None,
                to_status: Some("reported".into()),
                note_enc: None,
                author_id: "bench".into(),
                created_at: now,
            },
        )?;
        caseguard::db::cases::insert_request(
            conn,
            &CaseRequestRow {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                case_id: id,
                request_hash: "h".repeat(64),
                created_at: now,
            },
        )?;
        // The seventh row: an audit-shaped row, without the chain's lock.
        diesel::insert_into(caseguard::db::schema::chronology::table)
            .values(&ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: school_case(conn)?,
                kind: "audit-shaped".into(),
                from_status: None,
                to_status: None,
                note_enc: Some(blob(200)),
                author_id: "bench".into(),
                created_at: now,
            })
            .execute(conn)?;
        Ok(())
    })
    .await
    .expect("bare write");
    "ok"
}

fn school_case(conn: &mut caseguard::db::DbConnection) -> QueryResult<String> {
    caseguard::db::schema::cases::table
        .select(caseguard::db::schema::cases::id)
        .order(caseguard::db::schema::cases::created_at.desc())
        .first(conn)
}

struct Load {
    per_second: f64,
    p50: f64,
    p99: f64,
}

/// Runs `clients` loops of `request` for `duration`; latencies in ms.
async fn load<F, Fut>(clients: usize, duration: Duration, request: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                assert!(request(n).await, "request failed under load");
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Load {
        per_second: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
    }
}

async fn run(label: &str, database_url: String, clients: usize, duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::from_overrides([
        ("listen", serde_json::json!("127.0.0.1:0")),
        ("database_url", serde_json::json!(database_url)),
        ("data_dir", serde_json::json!(dir.path())),
        ("log_level", serde_json::json!("warn")),
        ("db_pool_size", serde_json::json!(16)),
    ])
    .unwrap();
    // The bare route needs the pool the application builds: build once to
    // get it, then again with the route on that pool's database.
    let probe = Application::build(settings.clone()).await.unwrap();
    let db = probe.state().db.clone();
    drop(probe);
    let db = web::Data::new(db);
    let extra: caseguard::web::ExtraRoutes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::resource("/bench/bare")
                .app_data(db.clone())
                .route(web::post().to(bare)),
        );
    });
    let app = Application::build_with(settings, Arc::new(SystemClock), Some(extra))
        .await
        .unwrap();
    let state = app.state().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let secret = caseguard::authn::totp::new_secret().unwrap();
    let password = "gió lào thổi qua đồi cát trắng".to_owned();
    {
        let (state, secret) = (state.clone(), secret.clone());
        let hash = caseguard::authn::password::hash_blocking(&password).unwrap();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::demo::load_organisations(&mut conn, &SystemClock).unwrap();
            let by = support::user_create(&state, &mut conn, "SX-AL-AB-TH");
            accounts::create(
                &mut conn,
                &state.keyring.current(),
                &state.auditor,
                &SystemClock,
                NewAccount {
                    org: OrgCode::parse("SX-AL-AB-TH").unwrap(),
                    role: Role::FocalPoint,
                    email: EmailAddress::parse("load@example.org").unwrap(),
                    name: DisplayName::parse("Load").unwrap(),
                    password_hash: Some(hash),
                    totp_secret: Some(secret),
                },
                &by,
            )
            .unwrap();
        })
        .await
        .unwrap();
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let step = u64::try_from(SystemClock.now().timestamp()).unwrap() / 30;
    let code = caseguard::authn::totp::code_at_step(&secret, step).unwrap();
    let token: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&serde_json::json!({"email": "load@example.org", "password": password, "totp": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(token["access_token"].as_str().unwrap().to_owned());
    let body = Arc::new(serde_json::json!({
        "risk_level": "medium",
        "pupil": {"name": "Trần Văn Bình", "date_of_birth": "2013-01-09", "sex": "male", "class": "7B",
                  "guardian": "Trần Văn Cường, bố", "contact": "0912 345 678"},
        "incident": {"type": "physical_assault", "contexts": ["bullying", "peer_on_peer"], "date": "2026-01-05",
                     "location_type": "way_to_school", "perpetrator_relation": "peer_pupil",
                     "narrative": "Em bị nhóm bạn cùng lớp chặn đường, xô ngã và lấy đồ nhiều lần trong tháng. Em sợ đi học một mình."}
    }));

    let created = {
        let (client, base, token, body) =
            (client.clone(), base.clone(), token.clone(), body.clone());
        load(clients, duration, move |n| {
            // A different pupil each time, as in a real district.
            let mut body = body.as_ref().clone();
            body["pupil"]["name"] = serde_json::json!(format!("Trần Văn Bình {n}"));
            let request = client
                .post(format!("{base}/api/v1/cases"))
                .bearer_auth(token.as_str())
                .header("idempotency-key", format!("load-{n}"))
                .json(&body);
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status() == 201)
                    .unwrap_or(false)
            }
        })
        .await
    };
    let bare_load = {
        let (client, base) = (client.clone(), base.clone());
        load(clients, duration, move |_| {
            let request = client.post(format!("{base}/bench/bare"));
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false)
            }
        })
        .await
    };
    let ids: Vec<String> = {
        let list: Vec<serde_json::Value> = client
            .get(format!("{base}/api/v1/cases?limit=500"))
            .bearer_auth(token.as_str())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let ids = Arc::new(ids);
    let reads = {
        let (client, base, token, ids) = (client.clone(), base.clone(), token.clone(), ids.clone());
        load(clients, duration, move |n| {
            let request = client
                .get(format!("{base}/api/v1/cases/{}", ids[n % ids.len()]))
                .bearer_auth(token.as_str());
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false)
            }
        })
        .await
    };
    println!("{label}: {clients} clients, {} s each", duration.as_secs());
    println!(
        "  create case      {:>8.1}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        created.per_second, created.p50, created.p99
    );
    println!(
        "  bare 7-row write {:>8.1}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        bare_load.per_second, bare_load.p50, bare_load.p99
    );
    println!(
        "  ratio create / bare: {:.2} (target >= 0.6)",
        created.per_second / bare_load.per_second
    );
    println!(
        "  read case, all fields decrypted {:>8.1}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        reads.per_second, reads.p50, reads.p99
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let duration = Duration::from_secs(
        std::env::var("DURATION_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let clients = std::env::var("CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    run(
        "SQLite",
        format!("sqlite://{}/load.db", dir.path().display()),
        clients,
        duration,
    )
    .await;
    if let Ok(admin) = std::env::var("PG_URL") {
        let name = format!("caseguard_load_{}", std::process::id());
        let mut conn = diesel::PgConnection::establish(&admin).unwrap();
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        run("PostgreSQL", url.to_string(), clients, duration).await;
        conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    }
}
