//! Probes, metrics, error bodies, request ids and security headers.

use caseguard::db::migrations;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

on_both_backends!(
    health_and_readiness_answer,
    readiness_goes_red_while_migrations_are_pending,
);

async fn health_and_readiness_answer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "database": expected})
    );
}

async fn readiness_goes_red_while_migrations_are_pending(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    let mut conn = app.db.connect();
    migrations::revert_last(&mut conn).unwrap();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 migration(s) pending"),
        "{body}"
    );
    // Liveness is not readiness: the process is still healthy.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    // Recovers without a restart once the database is migrated again.
    migrations::run_pending(&mut conn).unwrap();
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_red_when_the_postgres_database_is_gone() {
    let Some(mut app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.db.drop_postgres_database();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "not_ready", "message": "The database is unreachable."}})
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_the_json_error_body() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();

    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": {"code": "not_found", "message": "No such resource."}})
    );

    let api_missing = app.get("/api/v1/no-such-resource/123").await;
    assert_eq!(api_missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api_missing.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    let wrong_method = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        wrong_method.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );

    // Larger than the default 1 MiB limit: refused before it is read.
    let oversized = app
        .client
        .post(app.url("/api/v1/cases"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        oversized.json::<Value>().await.unwrap(),
        json!({"error": {"code": "payload_too_large", "message": "The request body is too large."}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_routes_by_template_never_by_path() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/api/v1/cases/0193a1b2-pupil-canary-77").await;
    app.get("/api/v1/no-such/0193a1b2-pupil-canary-78").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            r#"caseguard_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"caseguard_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains("canary"),
        "a raw path leaked into metrics: {text}"
    );
    assert!(text.contains("caseguard_http_request_duration_seconds_bucket"));
    assert!(text.contains("caseguard_db_pool_connections"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made_up() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "proxy-id-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "proxy-id-0123456789");

    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let made = hostile.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_on_json_html_and_error_responses() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for path in ["/healthz", "/", "/missing"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(
            headers["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api_with_the_loaded_codes() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/auth/token",
        "/me",
        "/cases",
        "/cases/{id}",
        "/cases/{id}/transitions",
        "/audit/verify",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let types = &doc["components"]["schemas"]["NewCase"]["properties"]["incident"]["properties"]["type"]
        ["enum"];
    assert_eq!(types.as_array().unwrap().len(), 6, "{types}");
    assert!(
        doc["components"]["schemas"]["NewCase"]["properties"]["risk_level"]["description"]
            .as_str()
            .unwrap()
            .contains("Nguy hiểm tức thời")
    );
}
