//! The `Caller` extractor: who is making this request, checked on every
//! request against the database so that disabling an account, logging out
//! everywhere or revoking a token acts at once (ASVS 8.3.2, 7.4).
//!
//! API clients send `Authorization: Bearer <token>`; browsers send the
//! session cookie, and every state-changing request from a browser must also
//! carry the CSRF token and come from our own origin (ASVS 3.5).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};

use super::sessions::{self, COOKIE, CSRF_HEADER};
use super::tokens;
use crate::audit::{Actor, RequestContext};
use crate::crypto::constant_time_eq;
use crate::db::users::{self, UserRow};
use crate::domain::user::Role;
use crate::error::ApiError;
use crate::web::AppState;
use crate::web::middleware::RequestId;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVia {
    Token { jti: String, exp: i64 },
    Session { id: String },
}

/// An authenticated caller, as stored now (not as when the token was made).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserRow,
    pub role: Role,
    pub via: AuthVia,
    pub request: RequestContext,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.id.clone(),
            org_id: self.user.org_id.clone(),
            role: self.user.role.clone(),
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Valid credentials are required.",
    )
}

fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "This request did not come from a caseguard page (missing or wrong CSRF token).",
    )
}

/// The request id and client address, for audit entries.
pub fn request_context(parts: &Parts) -> RequestContext {
    RequestContext {
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        client_ip: client_ip(parts).map(|ip| ip.to_string()),
    }
}

/// The client's address: the connection's peer, or behind a trusted reverse
/// proxy the address it forwarded (`web::forwarded`).
pub fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    crate::web::forwarded::client_addr(parts)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The session token from the `Cookie` header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Origin and Fetch Metadata: a state change must come from our own pages.
pub fn same_origin(headers: &HeaderMap, public_url: &url::Url) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        // Our pages send `Referrer-Policy: no-referrer`, under which browsers
        // send `Origin: null` even for our own forms; Fetch Metadata then
        // says where the form came from.
        Some("null") => site == Some("same-origin"),
        Some(origin) => url::Url::parse(origin).is_ok_and(|o| o.origin() == public_url.origin()),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request = request_context(parts);
        if let Some(token) = bearer(&parts.headers) {
            let claims = tokens::verify(&state.authn, state.clock.as_ref(), token)
                .map_err(|_| unauthorized())?;
            let jti = claims.jti.clone();
            let user = state
                .db
                .read(move |conn| {
                    let Some(user) = users::find(conn, &claims.sub)? else {
                        return Ok(None);
                    };
                    let void = user.disabled_at.is_some()
                        || claims.iat_us <= user.tokens_not_before.and_utc().timestamp_micros()
                        || users::token_revoked(conn, &claims.jti)?;
                    Ok((!void).then_some(user))
                })
                .await?
                .ok_or_else(unauthorized)?;
            let role = Role::parse(&user.role).map_err(|_| unauthorized())?;
            return Ok(Self {
                user,
                role,
                via: AuthVia::Token {
                    jti,
                    exp: claims.exp,
                },
                request,
            });
        }
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(unauthorized());
        };
        if is_state_changing(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), sessions::csrf_token(&token).as_bytes())
                || !same_origin(&parts.headers, &state.settings.public_url)
            {
                return Err(csrf_refused());
            }
        }
        Self::from_session(&token, request, state).await
    }
}

impl Caller {
    /// The caller of a browser session, without the CSRF check (the web
    /// pages check the token in the form instead: `web::pages::CsrfForm`).
    pub async fn from_session(
        token: &str,
        request: RequestContext,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let token = token.to_owned();
        let authn = state.authn.clone();
        let now = state.clock.now_naive();
        let found = state
            .db
            .write(move |conn| -> Result<_, crate::db::DbError> {
                let session = match sessions::check(conn, &authn, now, &token)? {
                    Ok(session) => session,
                    Err(_) => return Ok(None),
                };
                let Some(user) = users::find(conn, &session.user_id)? else {
                    return Ok(None);
                };
                if user.disabled_at.is_some() || session.created_at <= user.tokens_not_before {
                    return Ok(None);
                }
                Ok(Some((session, user)))
            })
            .await?;
        let (session, user) = found.ok_or_else(unauthorized)?;
        let role = Role::parse(&user.role).map_err(|_| unauthorized())?;
        if role.requires_mfa() && !session.mfa_verified {
            return Err(unauthorized());
        }
        Ok(Self {
            user,
            role,
            via: AuthVia::Session { id: session.id },
            request,
        })
    }
}
