//! The middleware every response passes through.
//!
//! From the outside in: [`observe`] (request id, tracing span, access log,
//! metrics), [`security_headers`], [`json_errors`] (every error body is the
//! JSON of DESIGN §7, including the framework's own 404, 405, 413 and
//! timeouts), the body size limit and the request timeout.
//!
//! The access log records method, route template, status, latency and request
//! id — never the path with its ids, the query string, headers or bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use super::AppState;
use super::metrics::{Metrics, UNMATCHED_ROUTE};
use crate::error::ApiError;

/// The request id header, taken from a proxy when well-formed, else made here.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in the request extensions for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Routes polled by probes and scrapers: logged at debug level only.
const QUIET_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub fn apply(router: Router, state: &AppState) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.settings.request_timeout,
        ))
        .layer(from_fn_with_state(
            BodyLimits {
                default: state.settings.request_body_limit,
                uploads: state.settings.attachment_max_bytes,
            },
            limit_body,
        ))
        .layer(from_fn(json_errors))
        .layer(from_fn(security_headers))
        .layer(from_fn_with_state(
            state.settings.trusted_proxies.clone(),
            super::forwarded::resolve_client,
        ))
        .layer(from_fn_with_state(state.metrics.clone(), observe))
}

fn valid_request_id(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Request id, span, access log and metrics for one request.
async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request.id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics.observe(&method, &route, status, elapsed.as_secs_f64());
    let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if QUIET_ROUTES.contains(&route.as_str()) && status < 500 {
            tracing::debug!(status, latency_ms, "request finished");
        } else if status >= 500 {
            tracing::warn!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// Request body limits: one for everything, a larger one for attachment
/// uploads.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub uploads: usize,
}

/// The routes that take large bodies: attachment uploads, by the API and
/// by the case page's form.
pub const UPLOAD_ROUTES: [&str; 2] = ["/api/v1/cases/{id}/attachments", "/cases/{id}/attachments"];

/// Refuses a declared length over the route's limit at once, and stops a
/// body without a declared length once it passes the limit.
async fn limit_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let upload = request.method() == axum::http::Method::POST
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|path| UPLOAD_ROUTES.contains(&path.as_str()));
    let limit = if upload {
        limits.uploads
    } else {
        limits.default
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        // The body is left unread, so this connection cannot carry another
        // request: say so, or a client may reuse it and lose its next one.
        let mut response = ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let request =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// Headers every response carries (ASVS 3.4). Authenticated pages and API
/// answers must never be cached, so `no-store` is the default; a handler that
/// serves a static asset sets its own `Cache-Control`.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 9] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Replaces any error response that is not already JSON (the framework's
/// rejections, the body limit, the timeout) with the standard error body.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON errors, and the web pages' own HTML error pages, stay as they are.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if is_json {
        return response;
    }
    let (mut parts, _discarded) = response.into_parts();
    let mut replacement = ApiError::for_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.remove(&name) {
            replacement.headers_mut().insert(name, value);
        }
    }
    replacement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_outside_must_be_plain() {
        assert!(valid_request_id("0f8a4b1c-aaaa-bbbb-cccc-1234567890ab"));
        assert!(!valid_request_id("short"));
        assert!(!valid_request_id("abc def ghi jkl"));
        assert!(!valid_request_id("abcdefgh\r\nSet-Cookie: x"));
        assert!(!valid_request_id(&"a".repeat(65)));
    }
}
