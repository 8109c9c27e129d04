//! Canary personal data sent through the real binary — through the API and
//! the web forms — must not appear in any log line (at the most verbose
//! level), any e-mail, the metrics page, or any JSON error body.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::caseguard;

const CANARY: &str = "Zq8Canary";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_never_reach_the_log_or_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let demo = caseguard(dir.path(), &[], &["demo", "--json"]);
    assert!(demo.status.success());
    let logins: Vec<Value> = serde_json::from_slice(&demo.stdout).unwrap();
    let focal = logins.iter().find(|l| l["role"] == "focal_point").unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_caseguard"))
        .args(["serve", "--log-format", "json"])
        .current_dir(dir.path())
        .env_clear()
        .env("CASEGUARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("CASEGUARD_LOG_LEVEL", "trace")
        .env("CASEGUARD_OUTBOX_POLL_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the log as it comes: at trace level it outgrows a pipe's buffer,
    // and a server blocked on writing its log answers nothing.
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let mut bodies = Vec::new();
    // Failed sign-ins carrying canaries in every field.
    for body in [
        json!({"email": format!("{CANARY}@example.org"), "password": format!("{CANARY} password")}),
        json!({"email": focal["email"], "password": format!("{CANARY} password"), "totp": "123456"}),
        json!({"email": focal["email"], "password": 1234, "totp": CANARY}),
    ] {
        let response = client
            .post(format!("{base}/api/v1/auth/token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        bodies.push(response.text().await.unwrap());
    }
    let totp = totp_rs::TOTP::from_url(focal["totp_uri"].as_str().unwrap()).unwrap();
    let code = totp.generate_current().unwrap();
    let token: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": focal["email"], "password": focal["password"], "totp": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let case = json!({
        "risk_level": "medium",
        "pupil": {"name": format!("Lê {CANARY}"), "date_of_birth": "2013-01-09", "sex": "male",
                  "class": format!("7B {CANARY}"), "guardian": format!("Bố {CANARY}"), "contact": format!("09 {CANARY}")},
        "incident": {"type": "physical_assault", "contexts": ["bullying"], "date": "2026-01-05",
                     "location_type": "way_to_school", "perpetrator_relation": "peer_pupil",
                     "narrative": format!("Narrative {CANARY}")}
    });
    let created: Value = client
        .post(format!("{base}/api/v1/cases"))
        .bearer_auth(&token)
        .header("idempotency-key", format!("key-{CANARY}"))
        .json(&case)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let read = client
        .get(format!("{base}/api/v1/cases/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        read.text().await.unwrap().contains(CANARY),
        "the owner must read the data back"
    );
    // Bad inputs carrying canaries.
    let mut bad = case.clone();
    bad["incident"]["type"] = json!(CANARY);
    bad["pupil"]["date_of_birth"] = json!(CANARY);
    for (method, path, body) in [
        ("POST", "/api/v1/cases".to_owned(), bad),
        (
            "POST",
            format!("/api/v1/cases/{id}/transitions"),
            json!({"to": CANARY, "version": 1}),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/notes"),
            json!({"note": format!("{CANARY}"), "extra": CANARY}),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/break-glass"),
            json!({"reason": format!("{CANARY} reason long enough to pass")}),
        ),
        ("GET", format!("/api/v1/cases/{CANARY}"), json!({})),
        ("GET", format!("/api/v1/organisations/{CANARY}"), json!({})),
    ] {
        let request = match method {
            "GET" => client.get(format!("{base}{path}")),
            _ => client.post(format!("{base}{path}")).json(&body),
        };
        let response = request
            .bearer_auth(&token)
            .header("x-request-id", "req-canary-test-01")
            .send()
            .await
            .unwrap();
        bodies.push(response.text().await.unwrap());
    }
    // Referrals, notes, consent and a partner link, each carrying canaries,
    // so that notices go out as e-mails.
    let police_id = org_id(dir.path(), "SX-AL-CA");
    let health_id = org_id(dir.path(), "SX-AL-YT");
    let post = |path: String, body: Value| {
        let request = client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, referral) = post(
        format!("/api/v1/cases/{id}/referrals"),
        json!({"agency_id": police_id, "note": format!("Ghi chú {CANARY}"),
               "override_reason": format!("Khẩn cấp {CANARY}")}),
    )
    .await;
    assert_eq!(status, 201, "{referral}");
    let referral: Value = serde_json::from_str(&referral).unwrap();
    let referral_id = referral["id"].as_str().unwrap().to_owned();
    for (path, body, expected) in [
        (
            format!("/api/v1/cases/{id}/referrals"),
            json!({"agency_id": health_id, "note": CANARY, "override_reason": format!("Lý do {CANARY}")}),
            201,
        ),
        (
            format!("/api/v1/cases/{id}/notes"),
            json!({"note": format!("Note {CANARY}")}),
            201,
        ),
        (
            format!("/api/v1/cases/{id}/consent"),
            json!({"given_by": "guardian", "services": true, "reporting": true,
                   "disclosure": false, "legal_basis": "consent", "withheld": CANARY}),
            201,
        ),
        (
            format!("/api/v1/referrals/{referral_id}/links"),
            json!({"email": "partner.canary-test@example.org"}),
            201,
        ),
        (
            "/api/v1/partner-links/open".to_owned(),
            json!({"token": CANARY, "code": CANARY}),
            400,
        ),
        (
            format!("/api/v1/referrals/{referral_id}/links"),
            json!({"email": format!("{CANARY}@@example.org")}),
            422,
        ),
    ] {
        let (status, text) = post(path.clone(), body).await;
        assert_eq!(status.as_u16() / 100, expected / 100, "{path}: {text}");
        if !status.is_success() {
            bodies.push(text);
        }
    }
    // The web forms: a session, an intake with canaries, a rejected intake,
    // a partner form with a wrong code.
    let now = {
        use caseguard::clock::Clock;
        u64::try_from(caseguard::clock::SystemClock.now().timestamp()).unwrap()
    };
    let next_step = totp.generate(now + 30);
    let session = client
        .post(format!("{base}/api/v1/auth/session"))
        .json(&json!({"email": focal["email"], "password": focal["password"], "totp": next_step}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let cookie = session.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = session.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let intake_page = client
        .get(format!("{base}/cases/new"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let intake_token = crate::helpers::intake_token_in(&intake_page);
    let form = |born: &str| {
        serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("intake_token", intake_token.as_str()),
            ("risk_level", "high"),
            ("pupil.name", &format!("Web {CANARY}")),
            ("pupil.date_of_birth", born),
            ("pupil.sex", "female"),
            ("pupil.class", &format!("8C {CANARY}")),
            ("pupil.guardian", &format!("Mẹ {CANARY}")),
            ("pupil.contact", &format!("09 {CANARY}")),
            ("incident.type", "physical_assault"),
            ("incident.contexts", "bullying"),
            ("incident.date", "2026-01-06"),
            ("incident.location_type", "way_to_school"),
            ("incident.perpetrator_relation", "peer_pupil"),
            ("incident.narrative", &format!("Web narrative {CANARY}")),
        ])
        .unwrap()
    };
    for (born, ok) in [("2012-02-02", true), (CANARY, false)] {
        let response = client
            .post(format!("{base}/cases/new"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(born))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let _page = response.text().await.unwrap();
        assert_eq!(
            status.is_redirection() || status.is_success(),
            ok,
            "{status}"
        );
    }
    let partner = client
        .post(format!("{base}/partner/{CANARY}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={CANARY}"))
        .send()
        .await
        .unwrap();
    assert!(partner.status().is_client_error(), "{}", partner.status());
    // The notices reach the outbox directory (file transport).
    let outbox = dir.path().join("data").join("outbox");
    let mut emails = Vec::new();
    for _ in 0..150 {
        emails = std::fs::read_dir(&outbox)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if emails.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(emails.len() >= 3, "too few e-mails to judge: {emails:?}");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests"), "{metrics}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    let log = log_reader.join().unwrap();
    assert!(log.lines().count() > 10, "too little log to judge: {log}");
    for line in log.lines() {
        assert!(!line.contains(CANARY), "canary in the log: {line}");
        assert!(
            !line.contains(focal["password"].as_str().unwrap()),
            "password in the log: {line}"
        );
        assert!(!line.contains(&token), "token in the log: {line}");
    }
    let mut hits = 0;
    for body in &bodies {
        hits += usize::from(body.contains(CANARY));
        assert!(!body.contains(CANARY), "canary in an error body: {body}");
    }
    for path in &emails {
        let raw = std::fs::read(path).unwrap();
        let decoded = quoted_printable::decode(&raw, quoted_printable::ParseMode::Robust)
            .unwrap_or_else(|_| raw.clone());
        for text in [raw, decoded] {
            let text = String::from_utf8_lossy(&text);
            hits += usize::from(text.contains(CANARY));
            assert!(!text.contains(CANARY), "canary in an e-mail: {text}");
        }
    }
    hits += usize::from(metrics.contains(CANARY));
    assert!(!metrics.contains(CANARY), "canary in /metrics");
    eprintln!(
        "canary scan: {} log lines, {} e-mails, {} bytes of metrics, {} error bodies; canary hits: {hits}",
        log.lines().count(),
        emails.len(),
        metrics.len(),
        bodies.len()
    );
}

/// An organisation's id, read from the binary's SQLite store.
fn org_id(dir: &std::path::Path, code: &str) -> String {
    let url = format!(
        "sqlite://{}",
        dir.join("data").join("caseguard.db").display()
    );
    let mut conn = caseguard::db::DatabaseUrl::parse(&secrecy::SecretString::from(url))
        .unwrap()
        .connect()
        .unwrap();
    caseguard::db::organisations::find_by_code(&mut conn, code)
        .unwrap()
        .unwrap()
        .id
}
