//! Signing in and out, and the language switch.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    CsrfForm, Frame, LANG_COOKIE, PageUser, PublicForm, failure_page, render, render_with,
    request_lang, see_other,
};
use crate::audit::{RequestContext, action};
use crate::authn::accounts::{AccountError, EnrolmentError};
use crate::authn::caller::AuthVia;
use crate::authn::login::{self, LoginAttempt, LoginContext, LoginError};
use crate::authn::sessions;
use crate::db::{DbError, users};
use crate::web::error::ApiError;
use crate::web::extract::{ClientAddr, request_context};
use crate::web::i18n::Lang;
use crate::web::{AppState, blocking};

/// An account function's failure, as the page shows it: the database's
/// (or the audit entry's, written with it) is the "try again" page when
/// the database is lost; anything else a server error.
pub(super) fn account_failure(error: AccountError) -> ApiError {
    match error {
        AccountError::Db(error) => DbError::Query(error).into(),
        other => ApiError::internal(other),
    }
}

/// An account function's error, split in two: the account's own answer
/// (an unknown link, an email already taken) for the page to show, or a
/// failure of the database as an `Err`, so that [`blocking`]'s outage
/// policy sees it and the page shows the failure, never "not valid".
pub(super) fn account_answer(error: AccountError) -> Result<AccountError, ApiError> {
    match error {
        error @ (AccountError::Db(_) | AccountError::Audit(_)) => Err(account_failure(error)),
        answer => Ok(answer),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage<'a> {
    pub frame: Frame<'a>,
    pub email: String,
    /// A message key, when the last attempt failed.
    pub problem: Option<&'static str>,
    /// Reached over plain HTTP at an address that is not the machine's own:
    /// the browser drops the `__Host-` session cookie (it is `Secure`), so
    /// signing in would fail silently; the page says so instead (issue 19).
    pub insecure: bool,
}

/// Whether the browser reached this page over plain HTTP at a host other
/// than loopback, where it refuses a `Secure` cookie. Behind a TLS proxy
/// the proxy's `X-Forwarded-Proto`/`Forwarded` says `https`. Only a hint to
/// the reader; nothing is decided on it.
pub(super) fn insecure_origin(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    if info.scheme() != "http" {
        return false;
    }
    let host = info.host();
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    !matches!(name, "localhost" | "127.0.0.1" | "[::1]") && !name.ends_with(".localhost")
}

pub async fn login_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = request_lang(&req);
    render(&LoginPage {
        frame: Frame::anonymous(lang, &state, "/login"),
        email: String::new(),
        problem: None,
        insecure: insecure_origin(&req),
    })
}

/// Signs in. Attempts are limited per client, as the proxy in front of the
/// service resolved it (`ClientAddr`), like the API's sign-in: behind a
/// reverse proxy the peer is the proxy, shared by everyone.
pub async fn login(
    state: web::Data<AppState>,
    ClientAddr(client): ClientAddr,
    req: HttpRequest,
    form: PublicForm,
) -> HttpResponse {
    let lang = request_lang(&req);
    let email = form.get("email").unwrap_or_default();
    let again = |problem: &'static str, status: StatusCode| {
        render_with(
            status,
            &LoginPage {
                frame: Frame::anonymous(lang, &state, "/login"),
                email: email.chars().take(254).collect(),
                problem: Some(problem),
                insecure: insecure_origin(&req),
            },
        )
    };
    if !state.authn.allow_login_attempt(client) {
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
    let request: RequestContext = request_context(&req);
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
            let mut response = see_other("/");
            if let Ok(cookie) = HeaderValue::from_str(&sessions::cookie(&token)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(LoginError::Failed) => again("login-failed", StatusCode::UNAUTHORIZED),
        Err(LoginError::Busy(_)) => again("login-busy", StatusCode::SERVICE_UNAVAILABLE),
        // The database could not tell: the "try again" page, not "wrong
        // password".
        Err(error @ (LoginError::Db(_) | LoginError::Audit(_))) => failure_page(&error.into()),
        Err(error) => {
            tracing::error!(%error, "sign-in failed on the server");
            again("error-server", StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Signs out. When the session cannot be ended (the database is lost),
/// the page says so and the cookie stays, to try again: nothing ended.
pub async fn logout(state: web::Data<AppState>, user: PageUser, _form: CsrfForm) -> HttpResponse {
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
            return failure_page(&error);
        }
    }
    let mut response = see_other("/login");
    if let Ok(cookie) = HeaderValue::from_str(&sessions::clearing_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// Our own page to go back to (`web::redirect`, the one gate for targets
/// a request names), else the start page.
fn safe_back(back: Option<String>) -> String {
    crate::web::redirect::local_or_home(back.as_deref())
}

fn with_lang_cookie(mut response: HttpResponse, lang: Lang) -> HttpResponse {
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
pub async fn switch_language(path: web::Path<String>, query: web::Query<Back>) -> HttpResponse {
    let code = path.into_inner();
    let Some(lang) = Lang::parse(&code) else {
        return HttpResponse::NotFound().finish();
    };
    with_lang_cookie(see_other(&safe_back(query.into_inner().back)), lang)
}

/// Signed in: the person's own setting (audited), and the cookie. When it
/// cannot be saved the page says so (nothing changed, not even the cookie).
pub async fn change_language(
    state: web::Data<AppState>,
    user: PageUser,
    form: CsrfForm,
) -> HttpResponse {
    let Some(lang) = form.get("lang").as_deref().and_then(Lang::parse) else {
        return HttpResponse::UnprocessableEntity().finish();
    };
    let (id, language) = (user.caller.user.id.clone(), lang.code().to_owned());
    let (actor, request) = (user.caller.actor(), user.caller.request.clone());
    let changed = blocking(&state, move |conn, state| {
        let clock = state.clock.as_ref();
        crate::db::write_transaction(conn, |conn| -> Result<(), crate::cases::CaseError> {
            crate::db::users::set_language(conn, &id, &language, clock.now_naive())?;
            state.auditor.append(
                conn,
                clock,
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
        .map_err(|error| match error {
            crate::cases::CaseError::Db(error) => ApiError::from(error),
            other => ApiError::internal(other),
        })
    })
    .await;
    if let Err(error) = changed {
        return failure_page(&error);
    }
    with_lang_cookie(see_other(&safe_back(form.get("back"))), lang)
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
    /// A password-reset link: the second factor stays, no QR code.
    pub keeps_factor: bool,
}

/// First sign-in of a new account: choose a password, add the
/// authenticator (QR code), prove it with a code.
pub async fn enrol_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let token = path.into_inner();
    let lang = request_lang(&req);
    enrol_form(&state, lang, token, None, StatusCode::OK).await
}

async fn enrol_form(
    state: &AppState,
    lang: Lang,
    token: String,
    problem: Option<String>,
    status: StatusCode,
) -> HttpResponse {
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
                keeps_factor: false,
            },
        )
    };
    if token.len() > 128 {
        return invalid();
    }
    let lookup = token.clone();
    let started = blocking(state, move |conn, state| {
        let started = crate::authn::accounts::start_enrolment(
            conn,
            &state.keyring.current(),
            state.clock.as_ref(),
            &lookup,
        );
        match started {
            Ok(start) => Ok(Some(start)),
            Err(error) => account_answer(error).map(|_| None),
        }
    })
    .await;
    let start = match started {
        Ok(Some(start)) => start,
        Ok(None) => return invalid(),
        Err(error) => return failure_page(&error),
    };
    let keeps_factor = start.keeps_second_factor();
    let qr_svg = if keeps_factor {
        String::new()
    } else {
        let Ok(qr_svg) = crate::authn::totp::qr_svg(&start.totp_uri) else {
            return invalid();
        };
        qr_svg
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
            keeps_factor,
        },
    )
}

/// Completes an enrolment. Attempts are limited per client as the proxy
/// resolved it (`ClientAddr`), like sign-in.
pub async fn enrol(
    state: web::Data<AppState>,
    path: web::Path<String>,
    ClientAddr(client): ClientAddr,
    req: HttpRequest,
    form: PublicForm,
) -> HttpResponse {
    let token = path.into_inner();
    let lang = request_lang(&req);
    let t = crate::web::i18n::Tr::new(lang, &state.taxonomy);
    if !state.authn.allow_login_attempt(client) {
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
    let link = token.clone();
    let result = blocking(&state, move |conn, state| {
        let completed = crate::authn::accounts::complete_enrolment(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &link,
            hash,
            &code,
        );
        match completed {
            Err(EnrolmentError::Account(error)) => {
                account_answer(error).map(|answer| Err(EnrolmentError::Account(answer)))
            }
            other => Ok(other),
        }
    })
    .await;
    match result {
        Ok(Ok(())) => render(&EnrolPage {
            frame: Frame::anonymous(lang, &state, "/login"),
            token: String::new(),
            qr_svg: String::new(),
            totp_uri: String::new(),
            problem: None,
            done: true,
            keeps_factor: false,
        }),
        Ok(Err(EnrolmentError::BadCode)) => {
            enrol_form(
                &state,
                lang,
                token,
                Some(t.t("enrol-bad-code")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Ok(Err(_)) => {
            enrol_form(
                &state,
                lang,
                token,
                Some(t.t("enrol-invalid")),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/account.html")]
pub struct AccountPage<'a> {
    pub frame: Frame<'a>,
    /// Shown once, right after they were made.
    pub codes: Vec<String>,
    /// Why the password was not changed.
    pub problem: Option<String>,
}

/// The person's own account: recovery codes.
pub async fn account(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    render(&AccountPage {
        frame: Frame::for_user(&user, &state, "/account"),
        codes: Vec::new(),
        problem: None,
    })
}

/// New recovery codes (the old ones stop working), shown once.
pub async fn recovery_codes(
    state: web::Data<AppState>,
    user: PageUser,
    _form: CsrfForm,
) -> HttpResponse {
    let actor = user.caller.actor();
    let made = blocking(&state, move |conn, state| {
        crate::authn::accounts::regenerate_recovery_codes(
            conn,
            &state.auditor,
            state.clock.as_ref(),
            &actor,
        )
        .map_err(account_failure)
    })
    .await;
    match made {
        Ok(codes) => render(&AccountPage {
            frame: Frame::for_user(&user, &state, "/account"),
            codes,
            problem: None,
        }),
        Err(error) => failure_page(&error),
    }
}

/// Where quick exit sends the browser: a neutral page outside the service
/// (a weather search), which the history then shows instead of ours.
pub const QUICK_EXIT_TO: &str = "https://www.google.com/search?q=th%E1%BB%9Di+ti%E1%BA%BFt";

/// The cookie quick exit leaves behind (it carries no authority): while it
/// lives, any page of ours that the browser asks for again — Back, the
/// history, a reopened tab — answers with the neutral page instead.
pub const LEFT_COOKIE: &str = "caseguard_left";

/// How long, in seconds, the pages stay hidden after a quick exit unless
/// the person comes back to the sign-in page by typing its address.
pub const LEFT_SECS: i64 = 900;

/// The answer of quick exit, and of any page asked for while the exit's
/// cookie lives: a redirect to the neutral page that forgets the session
/// and partner cookies and the browser's cache of this site.
pub fn leave_response() -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, QUICK_EXIT_TO))
        .insert_header((HeaderName::from_static("clear-site-data"), "\"cache\""))
        .finish();
    let cookies = [
        sessions::clearing_cookie(),
        crate::authn::partner::clearing_cookie(),
        format!("{LEFT_COOKIE}=1; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={LEFT_SECS}"),
    ];
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Quick exit (`GET` from the link, which works without scripts; `POST`
/// too): ends the signed-in session on the server (audited as a sign-out by
/// the "quick_exit" channel), then [`leave_response`]. A link needs no CSRF
/// token: the session cookie is `SameSite=Strict`, so another site's link
/// arrives without it and ends nothing. A partner's session never reaches
/// here: `middleware::partner_fence` ends it, as outside its scope, and
/// answers the same way. When the database is lost the browser still
/// leaves (forgetting its cookie); the session then ends at its idle
/// timeout.
pub async fn quick_exit(state: web::Data<AppState>, user: Option<PageUser>) -> HttpResponse {
    if let Some(user) = user
        && let AuthVia::Session { id } = user.caller.via.clone()
    {
        let ended = crate::web::api::auth::sign_out(
            &state,
            user.caller,
            action::LOGOUT,
            Some("quick_exit"),
            move |conn, now| users::revoke_session(conn, &id, now).map(drop),
        )
        .await;
        if let Err(error) = ended {
            error.log_cause();
        }
    }
    leave_response()
}

/// `POST /account/password`: the person changes their own password after
/// proving the current one (throttled like sign-in). Every session ends,
/// this one too (audited by [`crate::authn::accounts::change_password`]);
/// the page says so and leads to sign-in.
pub async fn change_password(
    state: web::Data<AppState>,
    user: PageUser,
    ClientAddr(client): ClientAddr,
    form: CsrfForm,
) -> HttpResponse {
    let t = user.tr(&state);
    let again = |key: &str, status: StatusCode| {
        render_with(
            status,
            &AccountPage {
                frame: Frame::for_user(&user, &state, "/account"),
                codes: Vec::new(),
                problem: Some(t.t(key)),
            },
        )
    };
    if !state.authn.allow_login_attempt(client) {
        return again("login-too-many", StatusCode::TOO_MANY_REQUESTS);
    }
    let new = form.get("new_password").unwrap_or_default();
    if form.get("new_password_again").unwrap_or_default() != new {
        return again("enrol-mismatch", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let me = &user.caller.user;
    let mut context: Vec<&str> = vec![me.email.split('@').next().unwrap_or_default()];
    context.extend(me.display_name.split_whitespace());
    let Ok(password) = crate::domain::user::NewPassword::parse(&new, &context) else {
        return again("enrol-weak", StatusCode::UNPROCESSABLE_ENTITY);
    };
    let user_id = me.id.clone();
    let stored = match state
        .db
        .read(move |conn| Ok(users::credential(conn, &user_id)?.and_then(|c| c.password_hash)))
        .await
    {
        Ok(stored) => stored,
        Err(error) => return failure_page(&ApiError::from(error)),
    };
    let current = form.get("current_password").unwrap_or_default();
    match state.authn.hasher.verify(stored, current).await {
        Ok(true) => {}
        Ok(false) => return again("account-password-wrong", StatusCode::UNPROCESSABLE_ENTITY),
        Err(_) => return again("login-busy", StatusCode::SERVICE_UNAVAILABLE),
    }
    let Ok(hash) = state.authn.hasher.hash(password.expose().to_owned()).await else {
        return again("login-busy", StatusCode::SERVICE_UNAVAILABLE);
    };
    let actor = user.caller.actor();
    let changed = blocking(&state, move |conn, state| {
        crate::authn::accounts::change_password(
            conn,
            &state.auditor,
            state.clock.as_ref(),
            &actor,
            hash,
        )
        .map_err(account_failure)
    })
    .await;
    match changed {
        Ok(()) => render(&PasswordChangedPage {
            frame: Frame::anonymous(user.lang, &state, "/login"),
        }),
        Err(error) => failure_page(&error),
    }
}

#[derive(askama::Template)]
#[template(
    source = r#"{% extends "pages/base.html" %}
{% block title %}{{ frame.t.t("account-password") }}{% endblock %}
{% block content %}
<h1>{{ frame.t.t("account-password") }}</h1>
<p class="notice" role="status" id="password-changed">{{ frame.t.t("account-password-done") }}</p>
<p><a class="button primary" href="/login">{{ frame.t.t("login-submit") }}</a></p>
{% endblock %}"#,
    ext = "html"
)]
pub struct PasswordChangedPage<'a> {
    pub frame: Frame<'a>,
}
