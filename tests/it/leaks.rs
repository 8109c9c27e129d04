//! Canary personal data sent through the real binary must not appear in any
//! log line, at the most verbose level, nor in any error body.

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
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    assert!(log.lines().count() > 10, "too little log to judge: {log}");
    for line in log.lines() {
        assert!(!line.contains(CANARY), "canary in the log: {line}");
        assert!(
            !line.contains(focal["password"].as_str().unwrap()),
            "password in the log: {line}"
        );
        assert!(!line.contains(&token), "token in the log: {line}");
    }
    for body in bodies {
        assert!(!body.contains(CANARY), "canary in an error body: {body}");
    }
}
