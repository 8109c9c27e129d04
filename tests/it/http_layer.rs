//! The HTTP layer itself (issue 15, actix-web): slow clients are cut off,
//! HEAD answers like GET, a page form cannot store free text where a code
//! belongs, the page sign-in is limited per forwarded client, and a lost
//! database shows the "try again" page.

use std::time::Duration;

use caseguard::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, TestApp, marked_case};

const SCHOOL: &str = "SX-AL-AB-TH";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_headers_slowly_is_cut_off_while_healthz_answers() {
    let app = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[("header_read_timeout_secs", json!(3))],
    )
    .await
    .unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: a-very-slow-client\r\nAccept: */*\r\n\r\n";
    let stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The server's answer, if any, and the end of the connection.
    let answer = tokio::spawn(async move {
        let mut received = Vec::new();
        let _ = reader.read_to_end(&mut received).await;
        received
    });
    let mut sent = 0;
    for byte in head {
        if answer.is_finished() || writer.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        if sent == 1 {
            // Other clients are served meanwhile.
            assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let received = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("the server closed the slow connection")
        .unwrap();
    // Cut off long before the whole head could arrive (one byte per 2 s:
    // 3 s allow two or three bytes; eight is a generous bound).
    assert!(
        sent < 8,
        "the slow client sent {sent} of {} bytes before it was cut off",
        head.len()
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "the slow client got {text:?}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_like_get_without_a_body() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for path in ["/healthz", "/login", "/static/app.css"] {
        let get = app.get(path).await;
        assert_eq!(get.status(), StatusCode::OK, "GET {path}");
        let get_type = get.headers()["content-type"].clone();
        let get_length = get.bytes().await.unwrap().len();
        assert!(get_length > 0, "GET {path} has a body");
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(head.headers()["content-type"], get_type, "HEAD {path}");
        assert_eq!(
            head.headers()["x-content-type-options"],
            "nosniff",
            "HEAD {path} has the security headers"
        );
        if let Some(length) = head.headers().get("content-length") {
            assert_eq!(
                length.to_str().unwrap(),
                get_length.to_string(),
                "HEAD {path}"
            );
        }
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    // A path without GET has no HEAD either.
    let head = app.client.head(app.url("/logout")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// The chronology rows of a case, as (kind, to_status).
fn chronology(app: &TestApp, case: &str) -> Vec<(String, Option<String>)> {
    use caseguard::db::schema::chronology::dsl as c;
    use diesel::prelude::*;
    let mut conn = app.db.connect();
    c::chronology
        .filter(c::case_id.eq(case))
        .select((c::kind, c::to_status))
        .load(&mut conn)
        .unwrap()
}

async fn a_closure_reason_outside_the_taxonomy_is_refused_by_the_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let (status, created) = app
        .post_case(&token, "closure-1", &marked_case("closure", 3))
        .await;
    assert_eq!(status, 201, "{created}");
    let case = created["id"].as_str().unwrap().to_owned();
    let version = created["version"].as_i64().unwrap();
    let (cookie, csrf) = app.browser_session(&focal).await;
    let before = chronology(&app, &case);

    let version = version.to_string();
    let close = |reason: &'static str| {
        let request = app
            .client
            .post(app.url(&format!("/cases/{case}/transitions")))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .form(&[
                ("csrf", csrf.as_str()),
                ("to", "closed"),
                ("version", version.as_str()),
                ("closure_reason", reason),
                ("note", "Đóng hồ sơ."),
            ]);
        async move { request.send().await.unwrap() }
    };
    let refused = close("needs_met; Nguyễn Thị Hoa, lớp 7A").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Khi đóng trường hợp cần chọn lý do và ghi chú."),
        "the form's error is shown"
    );
    assert!(
        !page.contains("Nguyễn Thị Hoa"),
        "the crafted text is not echoed"
    );
    // Nothing was stored: the case did not move and the chronology is as it was.
    let read = app
        .get_with_token(&format!("/api/v1/cases/{case}"), &token)
        .await;
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["status"], "reported");
    assert_eq!(chronology(&app, &case), before);
    assert!(
        chronology(&app, &case)
            .iter()
            .all(|(kind, _)| !kind.contains("Nguyễn"))
    );

    // A known reason through the same form closes the case (the form works).
    let closed = close("unfounded").await;
    assert_eq!(closed.status(), StatusCode::SEE_OTHER);
    assert!(
        chronology(&app, &case)
            .iter()
            .any(|(kind, to)| kind == "closed:unfounded" && to.as_deref() == Some("closed"))
    );
}

on_both_backends!(a_closure_reason_outside_the_taxonomy_is_refused_by_the_page);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_ins_behind_a_trusted_proxy_are_limited_per_forwarded_client() {
    let app = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[
            ("trusted_proxies", json!(["127.0.0.1"])),
            ("login_attempts_per_minute", json!(2)),
        ],
    )
    .await
    .unwrap();
    let attempt = |forwarded: &'static str| {
        let request = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", forwarded)
            .header("sec-fetch-site", "same-origin")
            .form(&[
                ("email", "nobody@test.caseguard.invalid"),
                ("password", "not the password at all"),
                ("totp", "000000"),
            ]);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(attempt("203.0.113.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("203.0.113.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    // Another person behind the same proxy still signs in: the limit is
    // theirs, not the proxy's.
    assert_eq!(attempt("198.51.100.7").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.7").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_a_page_shows_the_try_again_page() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let mut app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let (cookie, _) = app.browser_session(&focal).await;
    let home = app
        .client
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);

    app.db.drop_postgres_database();
    let page = app
        .client
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().contains_key("retry-after"));
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("try again"), "{text}");
    assert!(text.contains("thử lại"), "{text}");
    // Not the sign-in page, not a "not found".
    assert!(!text.contains("name=\"password\""), "{text}");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}
