//! Cases: intake, encryption at rest, reading, idempotency, isolation,
//! break-glass.

use caseguard::db::DbConnection;
use caseguard::domain::user::Role;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

on_both_backends!(
    sensitive_fields_are_sealed_at_rest_and_read_back_intact,
    another_schools_case_answers_like_a_missing_one,
    retried_submissions_make_one_case,
);

const SCHOOL: &str = "SX-AL-AB-TH";
const CANARY: &str = "Canary7Q3";

fn body_with(marker: &str) -> Value {
    json!({
        "risk_level": "high",
        "pupil": {
            "name": format!("Nguyễn Thị {marker} Name"),
            "date_of_birth": "2015-03-14",
            "sex": "female",
            "class": format!("5A-{marker}"),
            "disability": false,
            "guardian": format!("Mẹ {marker} Guardian"),
            "contact": format!("0912-{marker}")
        },
        "incident": {
            "type": "sexual_assault",
            "csa_subtype": "dam_o",
            "contexts": ["sexual_harassment", "on_premises"],
            "date": "2026-10-28",
            "location_type": "school_premises",
            "perpetrator_relation": "teacher_or_staff",
            "narrative": format!("Em kể lại sự việc {marker} Narrative xảy ra sau giờ học.")
        }
    })
}

async fn post_case(
    app: &TestApp,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

/// Every stored byte the tests can reach, as text.
pub fn raw_store(app: &TestApp, conn: &mut DbConnection) -> String {
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(c)
                .ok();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", app.db.url.trim_start_matches("sqlite://"));
                bytes.extend(std::fs::read(path).unwrap_or_default());
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        DbConnection::Postgresql(c) => {
            #[derive(QueryableByName)]
            struct Dump {
                #[diesel(sql_type = diesel::sql_types::Text)]
                text: String,
            }
            let mut all = String::new();
            // Every table, so a new one cannot escape the check.
            let tables: Vec<Dump> = diesel::sql_query(
                "SELECT tablename::text AS text FROM pg_tables WHERE schemaname = 'public'",
            )
            .load(c)
            .unwrap();
            assert!(tables.len() > 10);
            for table in tables.iter().map(|t| t.text.as_str()) {
                let rows: Vec<Dump> =
                    diesel::sql_query(format!("SELECT t::text AS text FROM {table} t"))
                        .load(c)
                        .unwrap();
                for row in rows {
                    all.push_str(&row.text);
                }
            }
            all
        }
    }
}

/// Whether `needle` is in the dump as text, or as the hex PostgreSQL shows
/// `bytea` in (a plaintext written to a binary column must be caught too).
pub fn holds(raw: &str, needle: &str) -> bool {
    raw.contains(needle) || raw.contains(&hex::encode(needle))
}

async fn sensitive_fields_are_sealed_at_rest_and_read_back_intact(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created = post_case(&app, &token, &body_with(CANARY), Some("intake-1")).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "reported");
    assert_eq!(created["age_band"], "11_14");
    assert_eq!(created["under_16"], true);
    assert!(!created.to_string().contains(CANARY));

    let mut conn = app.db.connect();
    let raw = raw_store(&app, &mut conn);
    assert!(raw.contains(&id), "the dump does not reach the case at all");
    assert!(!holds(&raw, CANARY), "a sensitive value is stored in clear");
    assert!(
        !holds(&raw, "2015-03-14"),
        "the date of birth is stored in clear"
    );

    let read = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let case: Value = read.json().await.unwrap();
    assert_eq!(case["pupil"]["name"], format!("Nguyễn Thị {CANARY} Name"));
    assert_eq!(case["pupil"]["date_of_birth"], "2015-03-14");
    assert_eq!(case["pupil"]["class"], format!("5A-{CANARY}"));
    assert_eq!(case["pupil"]["guardian"], format!("Mẹ {CANARY} Guardian"));
    assert_eq!(case["pupil"]["contact"], format!("0912-{CANARY}"));
    assert_eq!(
        case["incidents"][0]["narrative"],
        format!("Em kể lại sự việc {CANARY} Narrative xảy ra sau giờ học.")
    );
    assert_eq!(case["incidents"][0]["date"], "2026-10-28");
    assert_eq!(case["incidents"][0]["incident_month"], "2026-10");
    assert_eq!(case["incidents"][0]["reporting_delay"], "4_5_days");
    assert_eq!(
        case["incidents"][0]["contexts"],
        json!(["on_premises", "sexual_harassment"])
    );
    assert_eq!(case["chronology"][0]["kind"], "created");

    // The read is audited with the fields opened, never their values.
    let entries = app
        .state
        .db
        .read(|c| Ok(caseguard::db::audit::latest(c, None, 50)?))
        .await
        .unwrap();
    let read_entry = entries
        .iter()
        .find(|e| e.action == "case.read")
        .expect("case.read audited");
    assert!(read_entry.details.contains("pupil.name"));
    assert!(entries.iter().all(|e| !e.details.contains(CANARY)));

    // A second intake for the same pupil warns of the open case.
    let mut again = body_with(CANARY);
    again["pupil"]["name"] = json!(format!("  nguyễn thị {CANARY}   name "));
    let second: Value = post_case(&app, &token, &again, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["open_cases_for_pupil"], json!([id]));

    // A reporter, who reads no case, is not told whether the pupil has one.
    let reporter = app.user(Role::Reporter, SCHOOL).await;
    let reporter_token = app.token(&reporter).await;
    let third = post_case(&app, &reporter_token, &again, None).await;
    assert_eq!(third.status(), StatusCode::CREATED);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["open_cases_for_pupil"], json!([]));
}

async fn another_schools_case_answers_like_a_missing_one(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("x"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    let other = app.user(Role::FocalPoint, "SX-AL-PM-THCS").await;
    let other_token = app.token(&other).await;
    let theirs = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &other_token)
        .await;
    let (theirs_status, theirs_body) = (theirs.status(), theirs.text().await.unwrap());
    let missing = app
        .get_with_token(
            &format!("/api/v1/cases/{}", uuid::Uuid::now_v7()),
            &other_token,
        )
        .await;
    assert_eq!(theirs_status, StatusCode::NOT_FOUND);
    assert_eq!(
        (theirs_status, theirs_body),
        (missing.status(), missing.text().await.unwrap())
    );
    // Their list does not show it either.
    let list: Vec<Value> = app
        .get_with_token("/api/v1/cases", &other_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
    let own: Vec<Value> = app
        .get_with_token("/api/v1/cases", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    // Roles that never read case content: admin, monitor, auditor, agency.
    for (role, org) in [
        (Role::Admin, "SX-AL"),
        (Role::Monitor, "SX-AL"),
        (Role::Auditor, "SX"),
        (Role::AgencyOfficer, "SX-AL-CA"),
        (Role::DistrictOfficer, "SX-AL"),
    ] {
        let user = app.user(role, org).await;
        let t = app.token(&user).await;
        assert_eq!(
            app.get_with_token(&format!("/api/v1/cases/{id}"), &t)
                .await
                .status(),
            StatusCode::NOT_FOUND,
            "{role}"
        );
    }
}

async fn retried_submissions_make_one_case(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let body = body_with("retry");
    let first = post_case(&app, &token, &body, Some("flaky-3g-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = post_case(&app, &token, &body, Some("flaky-3g-1")).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let different = post_case(&app, &token, &body_with("other"), Some("flaky-3g-1")).await;
    assert_eq!(different.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        different.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );

    // Fifty at once with one key: one case.
    let mut handles = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/api/v1/cases");
        let token = token.clone();
        let body = body_with("storm");
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "storm-1")
                .json(&body)
                .send()
                .await
                .unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for handle in handles {
        let response = handle.await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.insert(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1, "one key made {} cases", ids.len());
    let list: Vec<Value> = app
        .get_with_token("/api/v1/cases?limit=500", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_intake_names_the_field_and_stores_nothing() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let cases = |body: Value| {
        let request = app
            .client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let mut unknown = body_with(CANARY);
    unknown["incident"]["type"] = json!("theft");
    let mut future = body_with(CANARY);
    future["incident"]["date"] = json!("2027-01-01");
    let mut bad_date = body_with(CANARY);
    bad_date["pupil"]["date_of_birth"] = json!("14/03/2015");
    let mut long = body_with(CANARY);
    long["pupil"]["name"] = json!("x".repeat(201));
    let mut empty = body_with(CANARY);
    empty["incident"]["narrative"] = json!("   ");
    let mut context = body_with(CANARY);
    context["incident"]["contexts"] = json!(["bullying", "fishing"]);
    let mut wrong_type = body_with(CANARY);
    wrong_type["pupil"]["disability"] = json!("yes");
    let mut extra = body_with(CANARY);
    extra["pupil"]["religion"] = json!("x");
    for (body, status, needle) in [
        (
            unknown,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`incident.type` is not a known incident_type code",
        ),
        (
            future,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`incident.date` is in the future",
        ),
        (
            bad_date,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`pupil.date_of_birth` must be a date written YYYY-MM-DD",
        ),
        (
            long,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`pupil.name` is longer than 200 characters",
        ),
        (
            empty,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`incident.narrative` is empty",
        ),
        (
            context,
            StatusCode::UNPROCESSABLE_ENTITY,
            "`incident.contexts[1]` is not a known context code",
        ),
        (wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "wrong type"),
        (
            extra,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `religion`",
        ),
    ] {
        let (got, answer) = cases(body).await;
        assert_eq!(got, status, "{needle}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle} not in {message}");
        assert!(!message.contains(CANARY), "a value was echoed: {message}");
    }
    let oversized = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"risk_level\": \"{}\"}}",
            "x".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let list: Vec<Value> = app
        .get_with_token("/api/v1/cases", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "a refused intake left a case behind");
    let count: i64 = caseguard::db::schema::pupils::table
        .count()
        .get_result(&mut app.db.connect())
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_ciphertext_does_not_open() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let a: Value = post_case(&app, &token, &body_with("AAA"), None)
        .await
        .json()
        .await
        .unwrap();
    let b: Value = post_case(&app, &token, &body_with("BBB"), None)
        .await
        .json()
        .await
        .unwrap();
    let (a, b) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    use caseguard::db::schema::pupils::dsl as p;
    let mut conn = app.db.connect();
    let a_name: Vec<u8> = p::pupils
        .find(&a)
        .select(p::name_enc)
        .first(&mut conn)
        .unwrap();
    let a_guardian: Vec<u8> = p::pupils
        .find(&a)
        .select(p::guardian_enc)
        .first::<Option<Vec<u8>>>(&mut conn)
        .unwrap()
        .unwrap();
    // Another case's name into case B; case A's guardian into A's name column.
    diesel::update(p::pupils.find(&b))
        .set(p::name_enc.eq(&a_name))
        .execute(&mut conn)
        .unwrap();
    let read_b = app
        .get_with_token(&format!("/api/v1/cases/{b}"), &token)
        .await;
    assert_eq!(read_b.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = read_b.text().await.unwrap();
    assert!(!body.contains("AAA") && !body.contains("BBB"), "{body}");
    diesel::update(p::pupils.find(&a))
        .set(p::name_enc.eq(&a_guardian))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        app.get_with_token(&format!("/api/v1/cases/{a}"), &token)
            .await
            .status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_opens_one_case_for_a_while_and_is_audited() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let focal_token = app.token(&focal).await;
    let created: Value = post_case(&app, &focal_token, &body_with("glass"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let token = app.token(&officer).await;
    let path = format!("/api/v1/cases/{id}");
    assert_eq!(
        app.get_with_token(&path, &token).await.status(),
        StatusCode::NOT_FOUND
    );

    let grant = |reason: &'static str| {
        let request = app
            .client
            .post(app.url(&format!("{path}/break-glass")))
            .bearer_auth(&token)
            .json(&json!({"reason": reason}));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        grant("because").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let granted =
        grant("The focal point is on leave and the police asked about an urgent risk today.").await;
    assert_eq!(granted.status(), StatusCode::CREATED);
    assert_eq!(
        app.get_with_token(&path, &token).await.status(),
        StatusCode::OK
    );

    // Another district's officer cannot break glass here.
    {
        let mut conn = app.db.connect();
        let rows = caseguard::orgs::import::parse_csv(
            "kind,code,name,parent,level\narea,SX-BX,Bình Xuyên,SX,district\n",
        )
        .unwrap();
        caseguard::orgs::import::import(&mut conn, &rows, &app.clock).unwrap();
    }
    let stranger = app.user(Role::DistrictOfficer, "SX-BX").await;
    let stranger_token = app.token(&stranger).await;
    let refused = app
        .client
        .post(app.url(&format!("{path}/break-glass")))
        .bearer_auth(&stranger_token)
        .json(&json!({"reason": "Curious about a case in the next district over."}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    app.clock
        .advance(chrono::Duration::hours(2) + chrono::Duration::seconds(1));
    let token = app.token(&officer).await;
    assert_eq!(
        app.get_with_token(&path, &token).await.status(),
        StatusCode::NOT_FOUND,
        "the grant outlived its time"
    );
    let entries = app
        .state
        .db
        .read(|c| Ok(caseguard::db::audit::latest(c, None, 200)?))
        .await
        .unwrap();
    assert!(entries.iter().any(|e| e.action == "authz.break_glass" && e.target_id.as_deref() == Some(id.as_str())));
    assert!(
        entries
            .iter()
            .any(|e| e.action == "case.read" && e.details.contains("break_glass"))
    );
    assert!(entries.iter().all(|e| !e.details.contains("police asked")));
}

on_both_backends!(the_lifecycle_is_guarded_and_versions_refuse_stale_writes);

async fn the_lifecycle_is_guarded_and_versions_refuse_stale_writes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    // Medium risk: a high-risk case closes only on a second focal point's
    // approval (tests/it/casework_approval.rs).
    let mut body = body_with("life");
    body["risk_level"] = json!("medium");
    let created: Value = post_case(&app, &token, &body, None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let move_to = |body: Value| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/transitions")))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, case) = move_to(json!({"to": "assessing", "version": 1})).await;
    assert_eq!(status, StatusCode::OK, "{case}");
    assert_eq!(
        (case["status"].as_str(), case["version"].as_i64()),
        (Some("assessing"), Some(2))
    );

    // A second tab still on version 1 is refused and changes nothing.
    let (status, body) = move_to(json!({"to": "action_planned", "version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "stale_version");
    let (status, body) = move_to(json!({"to": "resolved", "version": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("action_planned, closed"),
        "{body}"
    );
    let (status, _) = move_to(json!({"to": "closed", "version": 2, "note": "x"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "closed without a reason"
    );
    let (status, _) =
        move_to(json!({"to": "closed", "version": 2, "closure_reason": "bored", "note": "x"}))
            .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "closed with an unknown reason"
    );

    for (to, version) in [("action_planned", 2), ("in_progress", 3), ("resolved", 4)] {
        let (status, body) = move_to(json!({"to": to, "version": version})).await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
    }
    let note = app
        .client
        .post(app.url(&format!("/api/v1/cases/{id}/notes")))
        .bearer_auth(&token)
        .json(&json!({"note": "Đã gặp phụ huynh, Canary-note-91."}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), StatusCode::CREATED);
    let (status, body) = move_to(json!({"to": "closed", "version": 5, "closure_reason": "needs_met", "note": "Em đã ổn định."})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = move_to(json!({"to": "reopened", "version": 6})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reopened without a note"
    );

    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = case["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "transition",
            "transition",
            "transition",
            "transition",
            "note",
            "closed:needs_met"
        ]
    );
    assert_eq!(
        case["chronology"][5]["note"],
        "Đã gặp phụ huynh, Canary-note-91."
    );
    let mut conn = app.db.connect();
    assert!(!holds(&raw_store(&app, &mut conn), "Canary-note-91"));

    // A district officer with break-glass reads, but cannot change.
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let officer_token = app.token(&officer).await;
    app.client
        .post(app.url(&format!("/api/v1/cases/{id}/break-glass")))
        .bearer_auth(&officer_token)
        .json(&json!({"reason": "Review requested by the district committee after a complaint."}))
        .send()
        .await
        .unwrap();
    let attempt = app
        .client
        .post(app.url(&format!("/api/v1/cases/{id}/transitions")))
        .bearer_auth(&officer_token)
        .json(&json!({"to": "reopened", "version": 6, "note": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(attempt.status(), StatusCode::NOT_FOUND);
}

on_both_backends!(key_rotation_while_requests_run_loses_nothing);

async fn key_rotation_while_requests_run_loses_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let created: Value = post_case(&app, &token, &body_with(&format!("rot{i}")), None)
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    // A unit's indicators: their notes' data keys rotate with the cases'.
    let note = "Canary-rotated-note 12/BB";
    let (status, body) = app
        .call_with_token(
            &token,
            "POST",
            "/api/v1/stats/unit-indicators",
            Some(json!({"period": "year_end-2026", "answers": {
                "staff_trained_on_abuse": {"value": true, "evidence": note},
                "website_gender_column": {"value": false, "evidence": "none yet"},
                "women_in_management": {"value": 40}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let env = [
        ("CASEGUARD_DATABASE_URL", app.db.url.clone()),
        (
            "CASEGUARD_DATA_DIR",
            app.db.data_dir().display().to_string(),
        ),
    ];
    let rotate = {
        let dir = app.db.dir.path().to_owned();
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            crate::helpers::caseguard(&dir, &env, &["keys", "rotate"])
        })
    };
    // Requests keep coming during the rotation and for a while after it.
    let mut statuses = Vec::new();
    let mut made = Vec::new();
    let started = std::time::Instant::now();
    while !rotate.is_finished() || started.elapsed() < std::time::Duration::from_millis(1500) {
        let created = post_case(&app, &token, &body_with("during"), None).await;
        statuses.push(created.status());
        if let Ok(body) = created.json::<Value>().await
            && let Some(id) = body["id"].as_str()
        {
            made.push(id.to_owned());
        }
        let read = app
            .get_with_token(
                &format!("/api/v1/cases/{}", ids[statuses.len() % ids.len()]),
                &token,
            )
            .await;
        statuses.push(read.status());
        if started.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
    }
    let output = rotate.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        crate::helpers::stderr(&output)
    );
    assert!(
        crate::helpers::stdout(&output).contains("new key-encryption key kek-"),
        "{}",
        crate::helpers::stdout(&output)
    );
    assert!(
        statuses.iter().all(|s| s.is_success()),
        "a request failed during rotation: {statuses:?}"
    );
    // A second run picks up anything created under the old key meanwhile.
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = crate::helpers::caseguard(app.db.dir.path(), &env_refs, &["keys", "rotate"]);
    assert!(again.status.success(), "{}", crate::helpers::stderr(&again));
    let status = crate::helpers::caseguard(app.db.dir.path(), &env_refs, &["keys", "status"]);
    let text = crate::helpers::stdout(&status);
    let active_line = text.lines().find(|l| l.contains("ACTIVE")).unwrap();
    let total = ids.len() + made.len() + 3;
    assert!(
        active_line.contains(&format!("wraps {total} data key(s)")),
        "{text}"
    );
    // Every case still opens, on the running service.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for id in ids.iter().chain(made.iter()) {
        let read = app
            .get_with_token(&format!("/api/v1/cases/{id}"), &token)
            .await;
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "case {id} unreadable after rotation"
        );
    }
    let (status, back) = app
        .call_with_token(
            &token,
            "GET",
            "/api/v1/stats/unit-indicators/answers?period=year_end-2026",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["answers"]["staff_trained_on_abuse"]["evidence"], note);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_keks_are_retired_only_when_unused_and_long_replaced() {
    use caseguard::cases::keys;
    use caseguard::crypto::keyring::KeyPurpose;
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    post_case(&app, &token, &body_with("old"), None).await;
    let mut keyring = (*app.state.keyring.current()).clone();
    let old = keyring.active(KeyPurpose::FieldKek).unwrap().id.clone();
    app.clock.advance(chrono::Duration::minutes(1));
    keyring.add_key(KeyPurpose::FieldKek, &app.clock).unwrap();
    let mut conn = app.db.connect();
    assert!(
        keys::retirable(&mut conn, &keyring, &app.clock)
            .unwrap()
            .is_empty(),
        "retired while still in use"
    );
    while keys::rewrap_batch(&mut conn, &keyring, &app.clock, 1).unwrap() > 0 {}
    assert_eq!(keys::pending(&mut conn, &keyring).unwrap(), 0);
    assert!(
        keys::retirable(&mut conn, &keyring, &app.clock)
            .unwrap()
            .is_empty(),
        "retired too soon after replacement"
    );
    app.clock.advance(keys::RETIRE_AFTER);
    assert_eq!(
        keys::retirable(&mut conn, &keyring, &app.clock).unwrap(),
        vec![old.clone()]
    );
    assert!(keyring.remove_key(KeyPurpose::FieldKek, &old));
    let active = keyring.active(KeyPurpose::FieldKek).unwrap().id.clone();
    assert!(
        !keyring.remove_key(KeyPurpose::FieldKek, &active),
        "the active key must never be removed"
    );
}

on_both_backends!(retention_destroys_content_and_keeps_coded_fields);

async fn retention_destroys_content_and_keeps_coded_fields(backend: Backend) {
    use caseguard::cases::retention::{RetentionPolicy, run};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let mut ids = Vec::new();
    for marker in ["expire", "held", "open"] {
        // Medium risk: these close directly, without a second approval.
        let mut body = body_with(marker);
        body["risk_level"] = json!("medium");
        let created: Value = post_case(&app, &token, &body, None)
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..2] {
        let closed = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/transitions")))
            .bearer_auth(&token)
            .json(&json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Đã hỗ trợ xong."}))
            .send()
            .await
            .unwrap();
        assert_eq!(closed.status(), StatusCode::OK);
    }
    let mut conn = app.db.connect();
    caseguard::db::cases::set_legal_hold(&mut conn, &ids[1], true).unwrap();
    let policy = RetentionPolicy::parse("closed_case_content_days = 30").unwrap();
    // Not yet due.
    app.clock.advance(chrono::Duration::days(29));
    assert_eq!(
        run(&mut conn, &app.state.auditor, &app.clock, &policy).unwrap(),
        0
    );
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(
        run(&mut conn, &app.state.auditor, &app.clock, &policy).unwrap(),
        1
    );
    assert_eq!(
        run(&mut conn, &app.state.auditor, &app.clock, &policy).unwrap(),
        0,
        "destroyed twice"
    );

    let token = app.token(&focal).await;
    let gone = app
        .get_with_token(&format!("/api/v1/cases/{}", ids[0]), &token)
        .await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(
        gone.json::<Value>().await.unwrap()["error"]["code"],
        "content_destroyed"
    );
    assert_eq!(
        app.get_with_token(&format!("/api/v1/cases/{}", ids[1]), &token)
            .await
            .status(),
        StatusCode::OK,
        "legal hold ignored"
    );
    assert_eq!(
        app.get_with_token(&format!("/api/v1/cases/{}", ids[2]), &token)
            .await
            .status(),
        StatusCode::OK
    );
    // The key and the pupil are gone; the coded fields still count.
    use caseguard::db::schema::{case_keys, cases, incidents, pupils};
    let keys: i64 = case_keys::table
        .filter(case_keys::case_id.eq(&ids[0]))
        .count()
        .get_result(&mut conn)
        .unwrap();
    let pupil_rows: i64 = pupils::table
        .filter(pupils::case_id.eq(&ids[0]))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!((keys, pupil_rows), (0, 0));
    let coded: (String, Option<String>) = cases::table
        .find(&ids[0])
        .select((cases::risk_level, cases::age_band))
        .first(&mut conn)
        .unwrap();
    assert_eq!(coded, ("medium".to_owned(), Some("11_14".to_owned())));
    let types: Vec<String> = incidents::table
        .filter(incidents::case_id.eq(&ids[0]))
        .select(incidents::incident_type)
        .load(&mut conn)
        .unwrap();
    assert_eq!(types, ["sexual_assault"]);
    let list: Vec<Value> = app
        .get_with_token("/api/v1/cases", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    let entries = app
        .state
        .db
        .read(|c| Ok(caseguard::db::audit::latest(c, None, 100)?))
        .await
        .unwrap();
    assert!(
        entries.iter().any(|e| e.action == "case.content_destroyed"
            && e.target_id.as_deref() == Some(ids[0].as_str()))
    );
}

on_both_backends!(consent_is_recorded_as_history_and_its_secrets_sealed);

async fn consent_is_recorded_as_history_and_its_secrets_sealed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("consent"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let record = |body: Value| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/consent")))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    for (body, needle) in [
        (
            json!({"given_by": "pupil", "services": true, "reporting": true, "disclosure": false, "disclosure_to": ["police"], "legal_basis": "consent"}),
            "`disclosure_to` must be empty",
        ),
        (
            json!({"given_by": "pupil", "services": true, "reporting": true, "disclosure": true, "disclosure_to": ["army"], "legal_basis": "consent"}),
            "`disclosure_to[0]` is not an agency type",
        ),
        (
            json!({"given_by": "none", "services": true, "reporting": false, "disclosure": false, "legal_basis": "consent"}),
            "`legal_basis` cannot be `consent`",
        ),
        (
            json!({"given_by": "cousin", "services": true, "reporting": false, "disclosure": false, "legal_basis": "consent"}),
            "`given_by` is not a known consent_giver code",
        ),
    ] {
        let (status, answer) = record(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{needle}: {answer}"
        );
    }
    let (status, first) = record(json!({
        "given_by": "pupil_and_guardian", "services": true, "reporting": true, "disclosure": true,
        "disclosure_to": ["health", "social_protection", "health"], "legal_basis": "consent",
        "withheld": "Không cho bố biết địa chỉ mới Canary-withheld-55"
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["disclosure_to"],
        json!(["health", "social_protection"])
    );
    let (status, _) = record(json!({"given_by": "guardian", "services": true, "reporting": false, "disclosure": false, "legal_basis": "consent"})).await;
    assert_eq!(status, StatusCode::CREATED);

    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        case["consent"]["given_by"], "guardian",
        "the newest consent is in force"
    );
    assert_eq!(case["consent"]["disclosure"], false);
    let mut conn = app.db.connect();
    assert!(!holds(&raw_store(&app, &mut conn), "Canary-withheld-55"));
    use caseguard::db::schema::consents;
    let history: i64 = consents::table
        .filter(consents::case_id.eq(&id))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(history, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_holds_more_than_one_incident() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("multi"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let add = |body: Value| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/incidents")))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let incident = json!({"type": "psychological_abuse", "contexts": ["online_abuse"], "date": "2026-10-30",
        "location_type": "online", "perpetrator_relation": "peer_pupil", "narrative": "Tin nhắn đe dọa Canary-second-12."});
    let (status, body) = add(incident.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut early = incident.clone();
    early["date"] = json!("2010-01-01");
    let (status, body) = add(early).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`date` is before the date of birth"),
        "{body}"
    );
    let mut wrong = incident.clone();
    wrong["type"] = json!("gossip");
    let (status, body) = add(wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`type` is not a known incident_type code"),
        "{body}"
    );
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let incidents = case["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2);
    assert_eq!(
        incidents[1]["narrative"],
        "Tin nhắn đe dọa Canary-second-12."
    );
    assert_eq!(incidents[1]["reporting_delay"], "0_3_days");
    let mut conn = app.db.connect();
    assert!(!holds(&raw_store(&app, &mut conn), "Canary-second-12"));
}

on_both_backends!(alleged_perpetrators_are_coded_and_sealed);

async fn alleged_perpetrators_are_coded_and_sealed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("perp"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let incident_id = case["incidents"][0]["id"].as_str().unwrap().to_owned();
    let add = |body: Value| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/perpetrators")))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = add(json!({"incident_id": incident_id, "relation": "teacher_or_staff", "sex": "male", "age_group": "41_60",
        "identity": "Thầy giáo Canary-perp-31", "description": "Dáng cao, đeo kính Canary-perp-32"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = add(json!({"incident_id": uuid::Uuid::now_v7().to_string(), "relation": "stranger", "sex": "male", "age_group": "unknown"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`incident_id` is not an incident of this case"),
        "{body}"
    );
    let (status, body) =
        add(json!({"relation": "stranger", "sex": "male", "age_group": "30"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`age_group`"),
        "{body}"
    );
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(case["perpetrators"].as_array().unwrap().len(), 1);
    assert_eq!(
        case["perpetrators"][0]["identity"],
        "Thầy giáo Canary-perp-31"
    );
    assert_eq!(case["perpetrators"][0]["relation"], "teacher_or_staff");
    let mut conn = app.db.connect();
    let raw = raw_store(&app, &mut conn);
    assert!(!holds(&raw, "Canary-perp-31") && !holds(&raw, "Canary-perp-32"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coded_fields_change_only_from_the_current_version() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("patch"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let patch = |body: Value| {
        let request = app
            .client
            .patch(app.url(&format!("/api/v1/cases/{id}")))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = patch(json!({"version": 1, "risk_level": "immediate_danger"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["risk_level"].as_str(), body["version"].as_i64()),
        (Some("immediate_danger"), Some(2))
    );
    let (status, body) = patch(json!({"version": 1, "risk_level": "low"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = patch(json!({"version": 2, "risk_level": "apocalyptic"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = patch(json!({"version": 2, "status": "closed"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "status changes go through transitions"
    );
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        case["risk_level"], "immediate_danger",
        "a stale write changed the case"
    );
    assert!(
        case["chronology"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "risk:high->immediate_danger")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_by_coded_fields_and_recording_date() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    post_case(&app, &token, &body_with("one"), None).await;
    app.clock.advance(chrono::Duration::days(2));
    let token = app.token(&focal).await;
    let mut other = body_with("two");
    other["incident"]["type"] = json!("physical_assault");
    other["incident"]["csa_subtype"] = json!(null);
    other["risk_level"] = json!("low");
    post_case(&app, &token, &other, None).await;
    let count = |query: &'static str| {
        let request = app
            .client
            .get(app.url(&format!("/api/v1/cases?{query}")))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body.as_array().map_or(-1, |a| a.len() as i64))
        }
    };
    assert_eq!(
        count("incident_type=physical_assault").await,
        (StatusCode::OK, 1)
    );
    assert_eq!(
        count("incident_type=sexual_assault&risk_level=high").await,
        (StatusCode::OK, 1)
    );
    assert_eq!(
        count("risk_level=low&incident_type=sexual_assault").await,
        (StatusCode::OK, 0)
    );
    assert_eq!(count("from=2026-11-03").await, (StatusCode::OK, 1));
    assert_eq!(count("to=2026-11-02").await, (StatusCode::OK, 1));
    assert_eq!(
        count("from=2026-11-01&to=2026-11-30").await,
        (StatusCode::OK, 2)
    );
    assert_eq!(
        count("from=2026-11-30&to=2026-11-01").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        count("incident_type=theft").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(count("from=yesterday").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        count("name=Nguyen").await.0,
        StatusCode::BAD_REQUEST,
        "no search on sensitive fields"
    );
}

on_both_backends!(attachments_are_sniffed_sealed_and_returned_intact);

async fn attachments_are_sniffed_sealed_and_returned_intact(backend: Backend) {
    // A small limit, so the oversized upload fits the socket buffers and the
    // client reads the 413 instead of a broken pipe.
    let Some(app) =
        TestApp::spawn_configured(backend, None, &[("attachment_max_bytes", json!(32 * 1024))])
            .await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let created: Value = post_case(&app, &token, &body_with("files"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let upload = |content_type: &'static str, name: Option<&'static str>, body: Vec<u8>| {
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/cases/{id}/attachments")))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body);
        if let Some(name) = name {
            request = request.header("x-attachment-name", name);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(b"....Canary-png-77....");
    png.extend(std::iter::repeat_n(7u8, 4096));
    // A name with a path in it is refused (issue 9); one with quotes,
    // dots and semicolons is a name, percent-encoded on the way in and out.
    let (status, body) = upload(
        "image/png",
        Some("%E1%BA%A3nh%20..%2F..%2Fetc%2Fpasswd.png"),
        png.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = upload(
        "image/png",
        Some("%E1%BA%A3nh%20%22..%3Bb%E1%BA%B1ng%20ch%E1%BB%A9ng%22.png"),
        png.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let attachment = body["id"].as_str().unwrap().to_owned();

    let (status, body) = upload("image/png", None, b"%PDF-1.7 pretending".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a image/png file"),
        "{body}"
    );
    let (status, _) = upload("image/svg+xml", None, b"<svg onload=alert(1)>".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = upload("application/pdf", Some("%ZZbad"), b"%PDF-1.7".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut huge = b"%PDF-1.7".to_vec();
    huge.resize(100 * 1024, b' ');
    let (status, _) = upload("application/pdf", None, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        case["attachments"].as_array().unwrap().len(),
        1,
        "a refused upload was stored"
    );
    assert_eq!(case["attachments"][0]["name"], "ảnh \"..;bằng chứng\".png");
    assert_eq!(case["attachments"][0]["size_bytes"], png.len());

    let download = app
        .get_with_token(
            &format!("/api/v1/cases/{id}/attachments/{attachment}"),
            &token,
        )
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "image/png");
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename*=UTF-8''"),
        "{disposition}"
    );
    // Quotes and semicolons are encoded: the header cannot be split.
    assert_eq!(disposition.matches(';').count(), 1, "{disposition}");
    assert!(!disposition.contains('"'), "{disposition}");
    assert!(
        download.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(download.bytes().await.unwrap().to_vec(), png);

    let mut conn = app.db.connect();
    assert!(!holds(&raw_store(&app, &mut conn), "Canary-png-77"));
    let other = app.user(Role::FocalPoint, "SX-AL-PM-THCS").await;
    let other_token = app.token(&other).await;
    let theirs = app
        .get_with_token(
            &format!("/api/v1/cases/{id}/attachments/{attachment}"),
            &other_token,
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}
