//! Sign-in, tokens, sessions, sign-out and "who am I".
//!
//! `POST /api/v1/auth/token` — `{"email","password","totp"}` → an access
//! token for API clients. `POST /api/v1/auth/session` — the same → a browser
//! session cookie and its CSRF token. `DELETE` on either ends it;
//! `POST /api/v1/auth/logout-everywhere` ends every session and token of the
//! caller. `GET /api/v1/me` says who the caller is.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::audit::{AuditEvent, Outcome, RequestContext, action};
use crate::authn::caller::{AuthVia, Caller};
use crate::authn::login::{self, LoginAttempt, LoginContext, LoginError};
use crate::authn::{accounts, sessions, tokens};
use crate::db::{DbError, organisations, users};
use crate::web::error::ApiError;
use crate::web::extract::ClientAddr;
use crate::web::middleware::RequestId;
use crate::web::{AppState, blocking};

/// The routes of sign-in and of the caller's own account, relative to
/// `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/auth/token")
            .route(web::post().to(issue_token))
            .route(web::delete().to(revoke_token)),
    )
    .service(
        web::resource("/auth/session")
            .route(web::post().to(create_session))
            .route(web::delete().to(end_session)),
    )
    .service(web::resource("/auth/logout-everywhere").route(web::post().to(logout_everywhere)))
    .service(web::resource("/auth/recovery-codes").route(web::post().to(recovery_codes)))
    .service(web::resource("/auth/enrol/start").route(web::post().to(enrol_start)))
    .service(web::resource("/auth/enrol").route(web::post().to(enrol_complete)))
    .service(web::resource("/auth/password").route(web::post().to(change_password)))
    .service(
        web::resource("/me")
            .route(crate::web::get().to(me))
            .route(web::patch().to(change_me)),
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

impl LoginBody {
    fn into_attempt(self) -> Result<LoginAttempt, ApiError> {
        for (name, value, max) in [
            ("email", Some(&self.email), 254),
            ("password", Some(&self.password), 1024),
            ("totp", self.totp.as_ref(), 16),
            ("recovery_code", self.recovery_code.as_ref(), 64),
        ] {
            if value.is_some_and(|v| v.len() > max) {
                return Err(ApiError::bad_request(
                    "field_too_long",
                    format!("`{name}` is longer than {max} bytes."),
                ));
            }
        }
        Ok(LoginAttempt {
            email: self.email,
            password: SecretString::from(self.password),
            totp: self.totp,
            recovery_code: self.recovery_code,
        })
    }
}

/// Ends sessions or tokens: `change` and the audit entry for the caller in
/// one transaction.
pub(crate) async fn sign_out<F>(
    state: &AppState,
    caller: Caller,
    what: &'static str,
    channel: Option<&'static str>,
    change: F,
) -> Result<(), ApiError>
where
    F: FnOnce(&mut crate::db::DbConnection, chrono::NaiveDateTime) -> diesel::QueryResult<()>
        + Send
        + 'static,
{
    let auditor = state.auditor.clone();
    let clock = state.clock.clone();
    state
        .db
        .write(move |conn| -> Result<(), LogoutError> {
            change(conn, clock.now_naive())?;
            let mut event = AuditEvent::new(what, Outcome::Success)
                .actor(Some(caller.actor()))
                .request(&caller.request);
            if let Some(channel) = channel {
                event = event.detail("channel", channel);
            }
            auditor.append(conn, clock.as_ref(), &event)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// 204, and the browser forgets its session cookie.
fn no_content_clearing_the_cookie() -> Result<HttpResponse, ApiError> {
    let cookie = HeaderValue::from_str(&sessions::clearing_cookie()).map_err(ApiError::internal)?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, cookie))
        .finish())
}

fn too_many_attempts() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many sign-in attempts from this address; wait a minute and try again.",
    )
}

fn context<'a>(
    state: &'a AppState,
    request: RequestContext,
    channel: &'static str,
) -> LoginContext<'a> {
    LoginContext {
        db: &state.db,
        authn: &state.authn,
        keyring: state.keyring.current(),
        auditor: &state.auditor,
        clock: state.clock.as_ref(),
        request,
        channel,
    }
}

fn request_meta(headers_id: Option<&RequestId>, client: IpAddr) -> RequestContext {
    RequestContext {
        request_id: headers_id.map(|r| r.0.clone()),
        client_ip: Some(client.to_string()),
    }
}

#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    if !state.authn.allow_login_attempt(client) {
        return Err(too_many_attempts());
    }
    let attempt = body.into_attempt()?;
    let request = request_meta(req.extensions().get::<RequestId>(), client);
    let authn = state.authn.clone();
    let clock = state.clock.clone();
    let (_, (token, claims)) = login::authenticate(
        context(&state, request, "token"),
        attempt,
        move |_, user| {
            tokens::issue(&authn, clock.as_ref(), user)
                .map_err(|e| LoginError::Internal(e.to_string()))
        },
    )
    .await?;
    Ok(web::Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
    }))
}

#[derive(Serialize)]
pub struct SessionResponse {
    csrf_token: String,
    expires_at: String,
    idle_timeout_secs: i64,
}

async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.authn.allow_login_attempt(client) {
        return Err(too_many_attempts());
    }
    let attempt = body.into_attempt()?;
    let request = request_meta(req.extensions().get::<RequestId>(), client);
    let authn = state.authn.clone();
    let now = state.clock.now_naive();
    let (_, (token, session)) = login::authenticate(
        context(&state, request, "session"),
        attempt,
        move |conn, user| Ok(sessions::create(conn, &authn, now, user)?),
    )
    .await?;
    let cookie = HeaderValue::from_str(&sessions::cookie(&token)).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, cookie))
        .json(SessionResponse {
            csrf_token: sessions::csrf_token(&token),
            expires_at: session.expires_at.and_utc().to_rfc3339(),
            idle_timeout_secs: state.authn.idle_timeout.num_seconds(),
        }))
}

async fn end_session(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let AuthVia::Session { id } = caller.via.clone() else {
        return Err(ApiError::bad_request(
            "not_a_session",
            "This request was not made with a browser session.",
        ));
    };
    sign_out(
        &state,
        caller,
        action::LOGOUT,
        Some("session"),
        move |conn, now| users::revoke_session(conn, &id, now).map(drop),
    )
    .await?;
    no_content_clearing_the_cookie()
}

async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let AuthVia::Token { jti, exp } = caller.via.clone() else {
        return Err(ApiError::bad_request(
            "not_a_token",
            "This request was not made with an access token.",
        ));
    };
    let user_id = caller.user.id.clone();
    sign_out(
        &state,
        caller,
        action::TOKEN_REVOKED,
        Some("token"),
        move |conn, now| {
            let expires = chrono::DateTime::from_timestamp(exp, 0).map_or(now, |t| t.naive_utc());
            users::revoke_token(conn, &jti, &user_id, expires)
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn logout_everywhere(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let user_id = caller.user.id.clone();
    sign_out(
        &state,
        caller,
        action::LOGOUT_EVERYWHERE,
        None,
        move |conn, now| {
            users::void_tokens(conn, &user_id, now)?;
            users::revoke_sessions_of(conn, &user_id, now).map(drop)
        },
    )
    .await?;
    no_content_clearing_the_cookie()
}

#[derive(Serialize)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

async fn recovery_codes(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<RecoveryCodes>, ApiError> {
    let actor = caller.actor();
    let codes = blocking(&state, move |conn, state| {
        accounts::regenerate_recovery_codes(conn, &state.auditor, state.clock.as_ref(), &actor)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e.to_string())))
    })
    .await?;
    Ok(web::Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Serialize)]
pub struct Me {
    user_id: String,
    role: String,
    org: String,
    org_id: String,
    display_name: String,
    language: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeChange {
    language: String,
}

/// Changes the caller's own preferences (the language of the interface and
/// of the messages sent to them).
async fn change_me(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(change): JsonBody<MeChange>,
) -> Result<web::Json<Me>, ApiError> {
    if !["vi", "en"].contains(&change.language.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_language",
            "`language` must be `vi` or `en`.",
        ));
    }
    let (user_id, language) = (caller.user.id.clone(), change.language.clone());
    let auditor = state.auditor.clone();
    let clock = state.clock.clone();
    let actor = caller.actor();
    let request = caller.request.clone();
    state
        .db
        .write(move |conn| {
            crate::db::users::set_language(conn, &user_id, &language, clock.now_naive())?;
            auditor.append(
                conn,
                clock.as_ref(),
                &crate::audit::AuditEvent::new(
                    crate::audit::action::USER_LANGUAGE_CHANGED,
                    crate::audit::Outcome::Success,
                )
                .actor(Some(actor))
                .request(&request)
                .target("user", user_id.clone())
                .detail("language", language.clone()),
            )?;
            Ok::<_, LogoutError>(())
        })
        .await?;
    let mut caller = caller;
    caller.user.language = change.language;
    me(state, caller).await
}

async fn me(state: web::Data<AppState>, caller: Caller) -> Result<web::Json<Me>, ApiError> {
    let org_id = caller.user.org_id.clone();
    let org = state
        .db
        .read(move |conn| Ok(organisations::find(conn, &org_id)?))
        .await?;
    Ok(web::Json(Me {
        user_id: caller.user.id.clone(),
        role: caller.user.role.clone(),
        org: org.map(|o| o.code).unwrap_or_default(),
        org_id: caller.user.org_id.clone(),
        display_name: caller.user.display_name.clone(),
        language: caller.user.language.clone(),
    }))
}

/// Errors of the sign-out transactions.
#[derive(Debug, thiserror::Error)]
enum LogoutError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<diesel::result::Error> for LogoutError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl From<LogoutError> for ApiError {
    fn from(error: LogoutError) -> Self {
        match error {
            LogoutError::Db(error) => error.into(),
            LogoutError::Audit(error) => Self::internal(error),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolStartBody {
    token: String,
}

#[derive(Serialize)]
pub struct EnrolStart {
    totp_uri: String,
    qr_svg: String,
}

fn invalid_link() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_enrolment_link",
        "This enrolment link is not valid: it was used already, has expired, or is wrong. Ask your administrator for a new one.",
    )
}

/// Shows the authenticator to scan for an enrolment link. The token travels
/// in the body, never in a URL the server logs.
async fn enrol_start(
    state: web::Data<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<EnrolStartBody>,
) -> Result<web::Json<EnrolStart>, ApiError> {
    if !state.authn.allow_login_attempt(client) {
        return Err(too_many_attempts());
    }
    if body.token.len() > 128 {
        return Err(invalid_link());
    }
    let keyring = state.keyring.current();
    let clock = state.clock.clone();
    let start = state
        .db
        .read(move |conn| {
            Ok(accounts::start_enrolment(
                conn,
                &keyring,
                clock.as_ref(),
                &body.token,
            ))
        })
        .await?
        .map_err(|_| invalid_link())?;
    // A password-reset link keeps the second factor: its secret is never
    // shown again (both fields empty); the person proves it with a code.
    let qr_svg = if start.keeps_second_factor() {
        String::new()
    } else {
        crate::authn::totp::qr_svg(&start.totp_uri).map_err(ApiError::internal)?
    };
    Ok(web::Json(EnrolStart {
        totp_uri: start.totp_uri,
        qr_svg,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    token: String,
    password: String,
    totp: String,
}

async fn enrol_complete(
    state: web::Data<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<EnrolBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.authn.allow_login_attempt(client) {
        return Err(too_many_attempts());
    }
    if body.token.len() > 128 || body.totp.len() > 16 {
        return Err(invalid_link());
    }
    let password = crate::domain::user::NewPassword::parse(&body.password, &[]).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!("`password`: {e}"),
        )
    })?;
    let hash = state
        .authn
        .hasher
        .hash(password.expose().to_owned())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let result = blocking(&state, move |conn, state| {
        Ok(accounts::complete_enrolment(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &body.token,
            hash,
            &body.totp,
        ))
    })
    .await?;
    match result {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(accounts::EnrolmentError::InvalidLink) => Err(invalid_link()),
        Err(accounts::EnrolmentError::BadCode) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_totp",
            "`totp`: the authenticator code is not correct; check the phone's clock and try the next code.",
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every session and token ends, including
/// this one.
async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    // Guessing the current password through this route is throttled like sign-in.
    if let Some(ip) = caller
        .request
        .client_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        && !state.authn.allow_login_attempt(ip)
    {
        return Err(too_many_attempts());
    }
    let mut context = vec![
        caller
            .user
            .email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned(),
    ];
    context.extend(
        caller
            .user
            .display_name
            .split_whitespace()
            .map(str::to_owned),
    );
    let words: Vec<&str> = context.iter().map(String::as_str).collect();
    let password =
        crate::domain::user::NewPassword::parse(&body.new_password, &words).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                format!("`new_password`: {e}"),
            )
        })?;
    let user_id = caller.user.id.clone();
    let stored = state
        .db
        .read(move |conn| Ok(users::credential(conn, &user_id)?.and_then(|c| c.password_hash)))
        .await?;
    let current_ok = state
        .authn
        .hasher
        .verify(stored, body.current_password)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if !current_ok {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_password",
            "`current_password` is not correct.",
        ));
    }
    let hash = state
        .authn
        .hasher
        .hash(password.expose().to_owned())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let actor = caller.actor();
    blocking(&state, move |conn, state| {
        accounts::change_password(conn, &state.auditor, state.clock.as_ref(), &actor, hash)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e.to_string())))
    })
    .await?;
    no_content_clearing_the_cookie()
}
