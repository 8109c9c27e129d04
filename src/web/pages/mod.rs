//! The web interface: server-rendered pages (askama, checked at compile
//! time) that work without JavaScript; `static/app.js` only adds the
//! quick-exit key, the session-expiry warning and small conveniences. No
//! external requests: the CSS and script are served from the binary.
//!
//! Pages use the same domain functions and capabilities as the JSON API.
//! Every form carries the session's CSRF token in a hidden field, checked
//! by [`CsrfForm`] (with the Origin / Fetch-Metadata check) before any
//! handler sees the form; a page handler that takes form data cannot forget
//! it because `CsrfForm` is the only way to read one.

pub mod admin;
pub mod auth;
pub mod cases;
pub mod referrals;
pub mod stats;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::i18n::{Lang, Tr};
use crate::authn::caller::{Caller, request_context, same_origin, session_cookie};
use crate::authn::sessions;

/// The cookie that remembers the language before sign-in (not a secret).
pub const LANG_COOKIE: &str = "caseguard_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(cases::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/account", get(auth::account))
        .route("/account/recovery-codes", post(auth::recovery_codes))
        .route("/enrol/{token}", get(auth::enrol_page).post(auth::enrol))
        .route("/lang/{code}", get(auth::switch_language))
        .route("/lang", post(auth::change_language))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/cases/new", get(cases::intake_page).post(cases::intake))
        .route("/cases/new/draft", post(cases::save_draft))
        .route("/cases/{id}", get(cases::workspace))
        .route("/cases/{id}/referrals", post(cases::send_referral))
        .route("/cases/{id}/skip", post(cases::skip_suggestion))
        .route("/cases/{id}/transitions", post(cases::transition))
        .route("/cases/{id}/consent", post(cases::record_consent))
        .route("/cases/{id}/notes", post(cases::add_note))
        .route(
            "/cases/{id}/referrals/{referral_id}/link",
            post(cases::send_partner_link),
        )
        .route("/cases/{id}/perpetrators", post(cases::add_perpetrator))
        .route("/cases/{id}/attachments", post(cases::upload_attachment))
        .route(
            "/cases/{id}/attachments/{attachment_id}",
            get(cases::download_attachment),
        )
        .route(
            "/cases/{id}/break-glass",
            get(cases::break_glass_page).post(cases::break_glass),
        )
        .route("/escalations", get(cases::escalations))
        .route("/users", get(admin::users).post(admin::create_user))
        .route("/audit", get(admin::audit))
        .route("/organisations", get(admin::organisations_page))
        .route("/policies", get(admin::policies_page))
        .route("/stats", get(stats::stats))
        .route("/referrals", get(referrals::inbox))
        .route("/referrals/{id}", get(referrals::referral_page))
        .route("/referrals/{id}/answer", post(referrals::answer))
        .route(
            "/partner/{token}",
            get(referrals::partner_page).post(referrals::partner_open),
        )
}

const CSS: &str = include_str!("../../../static/app.css");
const JS: &str = include_str!("../../../static/app.js");

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn stylesheet() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

/// The language of a request without a signed-in user: `?lang=`, the
/// language cookie, else Vietnamese.
pub fn request_lang(parts: &Parts) -> Lang {
    let from_cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| Lang::parse(value));
    from_cookie.unwrap_or_default()
}

/// A signed-in person on a page: a browser session (with its second factor
/// where the role needs one). Without one, the page redirects to sign-in.
pub struct PageUser {
    pub caller: Caller,
    pub lang: Lang,
    /// The CSRF token for this page's forms.
    pub csrf: String,
}

impl PageUser {
    pub fn tr<'a>(&self, state: &'a AppState) -> Tr<'a> {
        Tr::new(self.lang, &state.taxonomy)
    }
}

/// Where an anonymous visitor is sent.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ToLogin> {
        let token = session_cookie(&parts.headers).ok_or(ToLogin)?;
        let caller = Caller::from_session(&token, request_context(parts), state)
            .await
            .map_err(|_| ToLogin)?;
        let lang = Lang::parse(&caller.user.language).unwrap_or_default();
        Ok(Self {
            caller,
            lang,
            csrf: sessions::csrf_token(&token),
        })
    }
}

/// A submitted form whose CSRF token (field `csrf`) matched the session's
/// and whose Origin / Fetch-Metadata say it came from our own page.
pub struct CsrfForm {
    pub pairs: Vec<(String, String)>,
}

impl CsrfForm {
    /// The first value of `name`, trimmed; empty as `None`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// Why a form was refused before its handler ran.
pub struct FormRefused(StatusCode);

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        let text = match self.0 {
            StatusCode::FORBIDDEN => {
                "Biểu mẫu đã hết hạn hoặc không đến từ trang caseguard. Hãy tải lại trang và thử lại. / This form expired or did not come from a caseguard page. Reload the page and try again."
            }
            StatusCode::PAYLOAD_TOO_LARGE => "Tệp quá lớn. / The file is too large.",
            _ => "Không đọc được biểu mẫu. / The form could not be read.",
        };
        (
            self.0,
            Html(format!(
                "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>caseguard</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"page\"><p class=\"error\">{text}</p><p><a href=\"/\">caseguard</a></p></main></body></html>"
            )),
        )
            .into_response()
    }
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = FormRefused;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, FormRefused> {
        let headers = request.headers().clone();
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !csrf_holds(&headers, sent, state) {
            return Err(FormRefused(StatusCode::FORBIDDEN));
        }
        Ok(Self { pairs })
    }
}

/// Whether a form's CSRF token `sent` is the session's and the request
/// came from our own page (Origin / Fetch-Metadata).
pub fn csrf_holds(headers: &axum::http::HeaderMap, sent: &str, state: &AppState) -> bool {
    let expected = session_cookie(headers).map(|token| sessions::csrf_token(&token));
    let matches = expected
        .as_deref()
        .is_some_and(|e| subtle::ConstantTimeEq::ct_eq(e.as_bytes(), sent.as_bytes()).into());
    matches && same_origin(headers, &state.settings.public_url)
}

/// A multipart form (an attachment's upload) whose CSRF token and origin
/// were checked: its text fields and its one file.
pub struct CsrfUpload {
    pub file: Option<Upload>,
}

pub struct Upload {
    pub name: Option<String>,
    pub content_type: String,
    pub bytes: axum::body::Bytes,
}

impl FromRequest<AppState> for CsrfUpload {
    type Rejection = FormRefused;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, FormRefused> {
        let headers = request.headers().clone();
        let mut multipart = axum::extract::Multipart::from_request(request, state)
            .await
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
        let mut csrf = String::new();
        let mut file = None;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?
        {
            match field.name() {
                Some("csrf") => {
                    csrf = field
                        .text()
                        .await
                        .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
                }
                Some("file") => {
                    let name = field.file_name().map(str::to_owned);
                    let content_type = field.content_type().unwrap_or_default().to_owned();
                    let bytes = field
                        .bytes()
                        .await
                        .map_err(|_| FormRefused(StatusCode::PAYLOAD_TOO_LARGE))?;
                    // A file field left empty arrives as a part without bytes.
                    if !bytes.is_empty() {
                        file = Some(Upload {
                            name: name.filter(|n| !n.is_empty()),
                            content_type,
                            bytes,
                        });
                    }
                }
                _ => {}
            }
        }
        if !csrf_holds(&headers, &csrf, state) {
            return Err(FormRefused(StatusCode::FORBIDDEN));
        }
        Ok(Self { file })
    }
}

/// A form of a page reached without a session (sign-in, a partner's link):
/// only the Origin / Fetch-Metadata check applies.
pub struct PublicForm {
    pub pairs: Vec<(String, String)>,
}

impl PublicForm {
    pub fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

impl FromRequest<AppState> for PublicForm {
    type Rejection = FormRefused;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, FormRefused> {
        let headers = request.headers().clone();
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
        if !same_origin(&headers, &state.settings.public_url) {
            return Err(FormRefused(StatusCode::FORBIDDEN));
        }
        let pairs = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
        Ok(Self { pairs })
    }
}

/// Renders a template into a page (a template error is a 500 without detail).
pub fn render(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(
                    "<!doctype html><title>caseguard</title><p>Lỗi máy chủ. / Server error.</p>"
                        .to_owned(),
                ),
            )
                .into_response()
        }
    }
}

/// Renders with a status (a form with errors answers 422).
pub fn render_with(status: StatusCode, template: &impl askama::Template) -> Response {
    let mut response = render(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// What every page's frame shows.
pub struct Frame<'a> {
    pub t: Tr<'a>,
    pub csrf: String,
    /// The signed-in person's role (empty before sign-in).
    pub role: String,
    pub idle_secs: i64,
    /// The path this page is at (for the language switch to come back to).
    pub here: String,
}

impl<'a> Frame<'a> {
    pub fn for_user(user: &PageUser, state: &'a AppState, here: &str) -> Self {
        Self {
            t: user.tr(state),
            csrf: user.csrf.clone(),
            role: user.caller.role.as_str().to_owned(),
            idle_secs: state.authn.idle_timeout.num_seconds(),
            here: here.to_owned(),
        }
    }

    pub fn anonymous(lang: Lang, state: &'a AppState, here: &str) -> Self {
        Self {
            t: Tr::new(lang, &state.taxonomy),
            csrf: String::new(),
            role: String::new(),
            idle_secs: 0,
            here: here.to_owned(),
        }
    }
}

/// A page that says "not found" (also for "not yours").
#[derive(askama::Template)]
#[template(path = "pages/not_found.html")]
pub struct NotFoundPage<'a> {
    pub frame: Frame<'a>,
}

pub fn not_found(frame: Frame<'_>) -> Response {
    render_with(StatusCode::NOT_FOUND, &NotFoundPage { frame })
}
