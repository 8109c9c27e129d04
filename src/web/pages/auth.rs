//! Signing in and out, and the language switch.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    CsrfForm, Frame, LANG_COOKIE, PageUser, PublicForm, render, render_with, request_lang,
};
use crate::audit::{RequestContext, action};
use crate::authn::caller::{AuthVia, request_context};
use crate::authn::login::{self, LoginAttempt, LoginContext, LoginError};
use crate::authn::sessions;
use crate::db::users;
use crate::web::AppState;
use crate::web::i18n::Lang;

#[derive(askama::Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage<'a> {
    pub frame: Frame<'a>,
    pub email: String,
    /// A message key, when the last attempt failed.
    pub problem: Option<&'static str>,
}

pub async fn login_page(State(state): State<AppState>, parts: Parts) -> Response {
    let lang = request_lang(&parts);
    render(&LoginPage {
        frame: Frame::anonymous(lang, &state, "/login"),
        email: String::new(),
        problem: None,
    })
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    parts: Parts,
    form: PublicForm,
) -> Response {
    let lang = request_lang(&parts);
    let email = form.get("email").unwrap_or_default();
    let again = |problem: &'static str, status: StatusCode| {
        render_with(
            status,
            &LoginPage {
                frame: Frame::anonymous(lang, &state, "/login"),
                email: email.chars().take(254).collect(),
                problem: Some(problem),
            },
        )
    };
    if !state.authn.allow_login_attempt(addr.ip()) {
        return again("login-too-many", StatusCode::TOO_MANY_REQUESTS);
    }
    let password = form.get("password").unwrap_or_default();
    if email.len() > 254 || password.len() > 1024 {
        return again("login-failed", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let attempt = LoginAttempt {
        email: email.clone(),
        password: SecretString::from(password),
        totp: form
            .get("totp")
            .map(|c| c.chars().filter(char::is_ascii_digit).take(16).collect()),
        recovery_code: form
            .get("recovery_code")
            .map(|c| c.chars().take(64).collect()),
    };
    let request: RequestContext = request_context(&parts);
    let authn = state.authn.clone();
    let now = state.clock.now_naive();
    let result = login::authenticate(
        LoginContext {
            db: &state.db,
            authn: &state.authn,
            keyring: state.keyring.current(),
            auditor: &state.auditor,
            clock: state.clock.as_ref(),
            request,
            channel: "session",
        },
        attempt,
        move |conn, user| Ok(sessions::create(conn, &authn, now, user)?),
    )
    .await;
    match result {
        Ok((_, (token, _))) => {
            let max_age = state.authn.absolute_timeout.num_seconds();
            let mut response = Redirect::to("/").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&sessions::cookie(&token, max_age)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(LoginError::Failed) => again("login-failed", StatusCode::UNAUTHORIZED),
        Err(LoginError::Busy(_)) => again("login-busy", StatusCode::SERVICE_UNAVAILABLE),
        Err(error) => {
            tracing::error!(%error, "sign-in failed on the server");
            again("error-server", StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

pub async fn logout(State(state): State<AppState>, user: PageUser, _form: CsrfForm) -> Response {
    if let AuthVia::Session { id } = user.caller.via.clone() {
        let ended = crate::web::api::auth::sign_out(
            &state,
            user.caller,
            action::LOGOUT,
            Some("session"),
            move |conn, now| users::revoke_session(conn, &id, now).map(drop),
        )
        .await;
        if let Err(error) = ended {
            tracing::warn!(?error, "sign-out failed");
        }
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&sessions::clearing_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct Back {
    back: Option<String>,
}

fn safe_back(back: Option<String>) -> String {
    back.filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".to_owned())
}

fn with_lang_cookie(mut response: Response, lang: Lang) -> Response {
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; Secure",
        lang.code()
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Before sign-in: the language is a cookie. Comes back to the page it was
/// asked from (our own paths only).
pub async fn switch_language(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    with_lang_cookie(Redirect::to(&safe_back(back.back)).into_response(), lang)
}

/// Signed in: the person's own setting (audited), and the cookie.
pub async fn change_language(
    State(state): State<AppState>,
    user: PageUser,
    form: CsrfForm,
) -> Response {
    let Some(lang) = form.get("lang").as_deref().and_then(Lang::parse) else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let (id, language) = (user.caller.user.id.clone(), lang.code().to_owned());
    let (auditor, clock) = (state.auditor.clone(), state.clock.clone());
    let (actor, request) = (user.caller.actor(), user.caller.request.clone());
    let changed = state
        .db
        .write(move |conn| -> Result<(), crate::cases::CaseError> {
            crate::db::users::set_language(conn, &id, &language, clock.now_naive())?;
            auditor.append(
                conn,
                clock.as_ref(),
                &crate::audit::AuditEvent::new(
                    action::USER_LANGUAGE_CHANGED,
                    crate::audit::Outcome::Success,
                )
                .actor(Some(actor))
                .request(&request)
                .target("user", id.clone())
                .detail("language", language.clone()),
            )?;
            Ok(())
        })
        .await;
    if let Err(error) = changed {
        tracing::warn!(%error, "could not save the language");
    }
    with_lang_cookie(
        Redirect::to(&safe_back(form.get("back"))).into_response(),
        lang,
    )
}

#[derive(askama::Template)]
#[template(path = "pages/enrol.html")]
pub struct EnrolPage<'a> {
    pub frame: Frame<'a>,
    pub token: String,
    /// The QR code as inline SVG (made here from the account's own URI).
    pub qr_svg: String,
    pub totp_uri: String,
    pub problem: Option<String>,
    pub done: bool,
}

/// First sign-in of a new account: choose a password, add the
/// authenticator (QR code), prove it with a code.
pub async fn enrol_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    parts: Parts,
) -> Response {
    let lang = request_lang(&parts);
    enrol_form(&state, lang, token, None, StatusCode::OK).await
}

async fn enrol_form(
    state: &AppState,
    lang: Lang,
    token: String,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let frame = Frame::anonymous(lang, state, "/login");
    let invalid = || {
        let t = frame.t;
        render_with(
            StatusCode::NOT_FOUND,
            &EnrolPage {
                problem: Some(t.t("enrol-invalid")),
                frame: Frame::anonymous(lang, state, "/login"),
                token: String::new(),
                qr_svg: String::new(),
                totp_uri: String::new(),
                done: false,
            },
        )
    };
    if token.len() > 128 {
        return invalid();
    }
    let keyring = state.keyring.current();
    let clock = state.clock.clone();
    let lookup = token.clone();
    let started = state
        .db
        .read(move |conn| {
            Ok(crate::authn::accounts::start_enrolment(
                conn,
                &keyring,
                clock.as_ref(),
                &lookup,
            ))
        })
        .await;
    let Ok(Ok(start)) = started else {
        return invalid();
    };
    let Ok(qr_svg) = crate::authn::totp::qr_svg(&start.totp_uri) else {
        return invalid();
    };
    render_with(
        status,
        &EnrolPage {
            frame,
            token,
            qr_svg,
            totp_uri: start.totp_uri,
            problem,
            done: false,
        },
    )
}

pub async fn enrol(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    parts: Parts,
    form: PublicForm,
) -> Response {
    let lang = request_lang(&parts);
    let t = crate::web::i18n::Tr::new(lang, &state.taxonomy);
    if !state.authn.allow_login_attempt(addr.ip()) {
        return enrol_form(
            &state,
            lang,
            token,
            Some(t.t("login-too-many")),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    let password = form.get("password").unwrap_or_default();
    if form.get("password_again").unwrap_or_default() != password {
        return enrol_form(
            &state,
            lang,
            token,
            Some(t.t("enrol-mismatch")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let password = match crate::domain::user::NewPassword::parse(&password, &[]) {
        Ok(password) => password,
        Err(_) => {
            return enrol_form(
                &state,
                lang,
                token,
                Some(t.t("enrol-weak")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let Ok(hash) = state.authn.hasher.hash(password.expose().to_owned()).await else {
        return enrol_form(
            &state,
            lang,
            token,
            Some(t.t("login-busy")),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    };
    let code: String = form
        .get("totp")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .take(8)
        .collect();
    let (keyring, auditor, clock, db) = (
        state.keyring.current(),
        state.auditor.clone(),
        state.clock.clone(),
        state.db.clone(),
    );
    let link = token.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<_, crate::db::DbError> {
        let mut conn = db.get()?;
        Ok(crate::authn::accounts::complete_enrolment(
            &mut conn,
            &keyring,
            &auditor,
            clock.as_ref(),
            &link,
            hash,
            &code,
        ))
    })
    .await;
    match result {
        Ok(Ok(Ok(()))) => render(&EnrolPage {
            frame: Frame::anonymous(lang, &state, "/login"),
            token: String::new(),
            qr_svg: String::new(),
            totp_uri: String::new(),
            problem: None,
            done: true,
        }),
        Ok(Ok(Err(crate::authn::accounts::EnrolmentError::BadCode))) => {
            enrol_form(
                &state,
                lang,
                token,
                Some(t.t("enrol-bad-code")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Ok(Ok(Err(_))) => {
            enrol_form(
                &state,
                lang,
                token,
                Some(t.t("enrol-invalid")),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        _ => {
            enrol_form(
                &state,
                lang,
                token,
                Some(t.t("error-server")),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "pages/account.html")]
pub struct AccountPage<'a> {
    pub frame: Frame<'a>,
    /// Shown once, right after they were made.
    pub codes: Vec<String>,
}

/// The person's own account: recovery codes.
pub async fn account(State(state): State<AppState>, user: PageUser) -> Response {
    render(&AccountPage {
        frame: Frame::for_user(&user, &state, "/account"),
        codes: Vec::new(),
    })
}

/// New recovery codes (the old ones stop working), shown once.
pub async fn recovery_codes(
    State(state): State<AppState>,
    user: PageUser,
    _form: CsrfForm,
) -> Response {
    let (auditor, clock, db) = (state.auditor.clone(), state.clock.clone(), state.db.clone());
    let actor = user.caller.actor();
    let made = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
        let mut conn = db.get().map_err(|e| e.to_string())?;
        crate::authn::accounts::regenerate_recovery_codes(
            &mut conn,
            &auditor,
            clock.as_ref(),
            &actor,
        )
        .map_err(|e| e.to_string())
    })
    .await;
    match made {
        Ok(Ok(codes)) => render(&AccountPage {
            frame: Frame::for_user(&user, &state, "/account"),
            codes,
        }),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "").into_response(),
    }
}
