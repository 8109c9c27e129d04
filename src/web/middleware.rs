//! The middleware every response passes through.
//!
//! From the outside in: [`observe`] (request id, tracing span, access log,
//! metrics), [`resolve_client`], [`security_headers`], [`json_errors`]
//! (every error body is the JSON of DESIGN §7, including the framework's own
//! 404, 405, 413 and timeouts), [`limit_body`], [`timeout`] and
//! [`partner_fence`] (a partner's session reaches its referral's pages and
//! nothing else). The order is set once, in `web::app`.
//!
//! The access log records method, route template, status, latency and request
//! id — never the path with its ids, the query string, headers or bodies.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_util::StreamExt;
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::extract::ClientAddr;
use super::metrics::UNMATCHED_ROUTE;

/// The request id header, taken from a proxy when well-formed, else made here.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in the request extensions for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Routes polled by probes and scrapers: logged at debug level only.
const QUIET_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics"];

type Outcome = Result<ServiceResponse<BoxBody>, Error>;

/// Runs the rest of the stack. No middleware here may hold a clone of the
/// request while it does: the router needs the only reference to record the
/// path parameters. Handlers answer their errors themselves, so only
/// [`timeout`] ends with `Err` (a finished response, security headers and
/// all; the server sends it as it is).
async fn call(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn state_of(req: &ServiceRequest) -> Option<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned()
}

fn valid_request_id(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Request id, span, access log and metrics for one request.
pub async fn observe(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Outcome {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let method = req.method().clone();
    let metrics = state_of(&req).map(|state| state.metrics.clone());
    let span = tracing::info_span!("request", request.id = %id, method = %method, route = %route);
    let outcome = call(req, next).instrument(span.clone()).await;
    let status = match &outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.observe(&method, &route, status, elapsed.as_secs_f64());
    }
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
    let mut response = outcome?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    Ok(response)
}

/// Resolves the client's address once per request: behind a trusted proxy
/// the forwarded one (`config::proxies`), else the peer's.
pub async fn resolve_client(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Outcome {
    if let (Some(peer), Some(state)) = (req.peer_addr(), state_of(&req)) {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        let client = state.settings.trusted_proxies.client(peer.ip(), forwarded);
        req.extensions_mut().insert(ClientAddr(client));
    }
    call(req, next).await
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
pub async fn limit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Outcome {
    let Some(state) = state_of(&req) else {
        return call(req, next).await;
    };
    let limits = BodyLimits {
        default: state.settings.request_body_limit,
        uploads: state.settings.attachment_max_bytes,
    };
    let upload = req.method() == Method::POST
        && req
            .match_pattern()
            .is_some_and(|path| UPLOAD_ROUTES.contains(&path.as_str()));
    let limit = if upload {
        limits.uploads
    } else {
        limits.default
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        // The body is left unread, so this connection cannot carry another
        // request: say so, or a client may reuse it and lose its next one.
        let mut response = ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return Ok(req.into_response(response));
    }
    let mut seen = 0_usize;
    let limited = req.take_payload().map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            Err(PayloadError::Overflow)
        } else {
            Ok(chunk)
        }
    });
    req.set_payload(Payload::Stream {
        payload: Box::pin(limited),
    });
    call(req, next).await
}

/// The request timeout (`request_timeout_secs`): a handler still running
/// after it answers 503, and its work is dropped. (The request went with
/// it, so the answer leaves as a finished response in an `Err`.)
pub async fn timeout(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Outcome {
    let Some(limit) = state_of(&req).map(|state| state.settings.request_timeout) else {
        return call(req, next).await;
    };
    match tokio::time::timeout(limit, call(req, next)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let mut response =
                ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE).error_response();
            add_security_headers(response.headers_mut());
            Err(
                actix_web::error::InternalError::from_response("request timed out", response)
                    .into(),
            )
        }
    }
}

/// Headers every response carries (ASVS 3.4). Authenticated pages and API
/// answers must never be cached, so `no-store` is the default; a handler that
/// serves a static asset sets its own `Cache-Control`.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Outcome {
    let mut response = call(req, next).await?;
    add_security_headers(response.headers_mut());
    Ok(response)
}

/// The headers of [`security_headers`], where a handler did not set its own.
fn add_security_headers(headers: &mut header::HeaderMap) {
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
}

/// Replaces any error response that is not already JSON (the framework's
/// rejections, the body limit, the timeout) with the standard error body.
pub async fn json_errors(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Outcome {
    let response = call(req, next).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response);
    }
    // JSON errors, and the web pages' own HTML error pages, stay as they are.
    let keep = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if keep {
        return Ok(response);
    }
    let (request, mut original) = response.into_parts();
    let mut replacement = ApiError::for_status(status).error_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = original.headers_mut().remove(&name).next() {
            replacement.headers_mut().insert(name, value);
        }
    }
    if original.head().connection_type() == ConnectionType::Close {
        replacement
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(ServiceResponse::new(request, replacement))
}

/// Paths a partner's browser fetches for the partner pages themselves: they
/// pass without looking at the partner cookie (it grants nothing there).
const PARTNER_ASSETS: [&str; 3] = ["/static/app.css", "/static/app.js", "/favicon.ico"];

/// Whether `path` is one of the partner pages of referral `referral_id`
/// (`/partner/referrals/{id}` and its answer form). Nothing else is.
pub fn partner_path_in_scope(path: &str, referral_id: &str) -> bool {
    path.strip_prefix("/partner/referrals/")
        .and_then(|rest| rest.strip_prefix(referral_id))
        .is_some_and(|rest| rest.is_empty() || rest == "/answer")
}

/// The fence around partner sessions (`authn::partner`): a request carrying
/// the partner cookie reaches only its referral's partner pages, while the
/// session lives. Anything else — another referral, a case, another page,
/// the API, an expired session, a withdrawn referral — ends the session and
/// gets the missing-resource answer, with the cookie removed. An admitted
/// request carries its [`PartnerSession`](crate::authn::partner::PartnerSession)
/// to the handler, which is the only way a handler gets one.
pub async fn partner_fence(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Outcome {
    use crate::authn::partner::{self, AdmitContext};
    let Some(token) = super::extract::cookie(req.request(), partner::COOKIE) else {
        return call(req, next).await;
    };
    if PARTNER_ASSETS.contains(&req.path()) {
        return call(req, next).await;
    }
    let Some(state) = state_of(&req) else {
        return call(req, next).await;
    };
    let path = req.path().to_owned();
    let request = super::extract::request_context(req.request());
    let admitted = {
        let path = path.clone();
        let shared = state.clone();
        state
            .db
            .run(move |conn| {
                partner::admit(
                    conn,
                    &AdmitContext {
                        auditor: &shared.auditor,
                        clock: shared.clock.as_ref(),
                        request: &request,
                    },
                    &token,
                    |referral_id| partner_path_in_scope(&path, referral_id),
                )
                .map_err(ApiError::from)
            })
            .await
    };
    match admitted {
        Ok(Ok(session)) => {
            req.extensions_mut().insert(session);
            call(req, next).await
        }
        Ok(Err(_)) => {
            // Quick exit with a partner's session: the session has just
            // ended (as used outside its scope); the browser leaves.
            let mut response = if path == "/exit" {
                super::pages::auth::leave_response()
            } else if path.starts_with("/api/") {
                ApiError::not_found().error_response()
            } else {
                let lang = super::extract::request_lang(req.request());
                let frame = super::pages::Frame::anonymous(lang, &state, "/");
                super::pages::not_found(frame)
            };
            if let Ok(value) = HeaderValue::from_str(&partner::clearing_cookie()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(req.into_response(response))
        }
        Err(error) => {
            let response = if path.starts_with("/api/") {
                error.error_response()
            } else {
                super::pages::failure_page(&error)
            };
            Ok(req.into_response(response))
        }
    }
}

/// After a quick exit (its cookie, `pages::auth::LEFT_COOKIE`), a page of
/// ours asked for again — Back, the history, a restored tab — answers with
/// the neutral page, so nothing of the service shows. The sign-in page
/// reached by typing its address or from a bookmark (`Sec-Fetch-Site:
/// none`) ends that, for the person who wants to come back. Assets, the
/// API, probes and form posts are not pages and pass.
pub async fn after_quick_exit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Outcome {
    use super::pages::auth::{LEFT_COOKIE, leave_response};
    let page = matches!(*req.method(), Method::GET | Method::HEAD)
        && ![
            "/static/",
            "/api/",
            "/exit",
            "/favicon.ico",
            "/healthz",
            "/readyz",
            "/metrics",
        ]
        .iter()
        .any(|prefix| req.path().starts_with(prefix));
    if !page || super::extract::cookie(req.request(), LEFT_COOKIE).is_none() {
        return call(req, next).await;
    }
    let typed = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site == "none");
    if req.path() == "/login" && typed {
        let mut response = call(req, next).await?;
        let forget = format!("{LEFT_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
        if let Ok(value) = HeaderValue::from_str(&forget) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return Ok(response);
    }
    Ok(req.into_response(leave_response()))
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
