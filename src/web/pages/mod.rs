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
pub mod break_glass;
pub mod cases;
pub mod indicators;
pub mod partner;
pub mod referrals;
pub mod release;
pub mod stats;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::error::ApiError;
pub use super::extract::{
    CsrfForm, CsrfUpload, FormRefused, LANG_COOKIE, PageUser, PublicForm, Upload, request_lang,
};
use super::get;
use super::i18n::{Lang, Tr};

/// The pages' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{post, resource};
    cfg.service(resource("/").route(get().to(cases::home)))
        .service(
            resource("/login")
                .route(get().to(auth::login_page))
                .route(post().to(auth::login)),
        )
        .service(resource("/logout").route(post().to(auth::logout)))
        .service(
            resource("/exit")
                .route(get().to(auth::quick_exit))
                .route(post().to(auth::quick_exit)),
        )
        .service(resource("/account").route(get().to(auth::account)))
        .service(resource("/account/recovery-codes").route(post().to(auth::recovery_codes)))
        .service(
            resource("/enrol/{token}")
                .route(get().to(auth::enrol_page))
                .route(post().to(auth::enrol)),
        )
        .service(resource("/lang/{code}").route(get().to(auth::switch_language)))
        .service(resource("/lang").route(post().to(auth::change_language)))
        .service(resource("/static/app.css").route(get().to(stylesheet)))
        .service(resource("/static/app.js").route(get().to(script)))
        .service(resource("/favicon.ico").route(get().to(favicon)))
        .service(
            resource("/cases/new")
                .route(get().to(cases::intake_page))
                .route(post().to(cases::intake)),
        )
        .service(resource("/cases/new/draft").route(post().to(cases::save_draft)))
        .service(resource("/cases").route(get().to(cases::case_list)))
        .service(resource("/cases/{id}/pupil").route(get().to(cases::pupil_chronology)))
        .service(resource("/cases/{id}").route(get().to(cases::workspace)))
        .service(resource("/cases/{id}/referrals").route(post().to(cases::send_referral)))
        .service(resource("/cases/{id}/skip").route(post().to(cases::skip_suggestion)))
        .service(resource("/cases/{id}/transitions").route(post().to(cases::transition)))
        .service(resource("/cases/{id}/consent").route(post().to(cases::record_consent)))
        .service(resource("/cases/{id}/notes").route(post().to(cases::add_note)))
        .service(resource("/cases/{id}/transfers").route(post().to(cases::start_transfer)))
        .service(
            resource("/cases/{id}/transfers/{transfer_id}/cancel")
                .route(post().to(cases::cancel_transfer)),
        )
        .service(resource("/transfers/{id}").route(get().to(cases::transfer_page)))
        .service(resource("/transfers/{id}/accept").route(post().to(cases::accept_transfer)))
        .service(resource("/transfers/{id}/refuse").route(post().to(cases::refuse_transfer)))
        .service(
            resource("/cases/{id}/referrals/{referral_id}/link")
                .route(post().to(cases::send_partner_link)),
        )
        .service(resource("/cases/{id}/perpetrators").route(post().to(cases::add_perpetrator)))
        .service(resource("/cases/{id}/attachments").route(post().to(cases::upload_attachment)))
        .service(
            resource("/cases/{id}/attachments/{attachment_id}")
                .route(get().to(cases::download_attachment)),
        )
        .service(
            resource("/cases/{id}/break-glass")
                .route(get().to(cases::break_glass_page))
                .route(post().to(cases::break_glass)),
        )
        .service(resource("/escalations").route(get().to(cases::escalations)))
        // Case-work (issue 16): assignment, approval of closure, legal hold.
        .service(resource("/cases/{id}/assignment").route(post().to(cases::assign)))
        .service(resource("/cases/{id}/closure-request").route(post().to(cases::request_closure)))
        .service(
            resource("/cases/{id}/closure-request/approve")
                .route(post().to(cases::approve_closure)),
        )
        .service(
            resource("/cases/{id}/closure-request/return").route(post().to(cases::return_closure)),
        )
        .service(resource("/legal-holds").route(get().to(cases::legal_hold_page)))
        .service(resource("/legal-holds/{id}").route(post().to(cases::legal_hold)))
        .service(
            resource("/users")
                .route(get().to(admin::users))
                .route(post().to(admin::create_user)),
        )
        .service(resource("/users/{id}/{change}").route(post().to(admin::change_user)))
        .service(resource("/account/password").route(post().to(auth::change_password)))
        .service(resource("/audit").route(get().to(admin::audit)))
        .service(resource("/audit/break-glass").route(get().to(break_glass::review_page)))
        .service(resource("/organisations").route(get().to(admin::organisations_page)))
        .service(resource("/policies").route(get().to(admin::policies_page)))
        .service(resource("/stats").route(get().to(stats::stats)))
        .service(resource("/stats/drafts").route(post().to(release::prepare)))
        .service(resource("/stats/drafts/{id}").route(get().to(release::review)))
        .service(resource("/stats/drafts/{id}/release").route(post().to(release::release)))
        .service(
            resource("/indicators/entry")
                .route(get().to(indicators::entry))
                .route(post().to(indicators::submit)),
        )
        .service(
            resource("/indicators/staff")
                .route(get().to(indicators::staff))
                .route(post().to(indicators::submit_staff)),
        )
        .service(resource("/indicators/status").route(get().to(indicators::status)))
        .service(resource("/indicators").route(get().to(indicators::progress)))
        .service(resource("/referrals").route(get().to(referrals::inbox)))
        .service(resource("/referrals/{id}").route(get().to(referrals::referral_page)))
        .service(resource("/referrals/{id}/answer").route(post().to(referrals::answer)))
        .service(
            resource("/partner/{token}")
                .route(get().to(referrals::partner_page))
                .route(post().to(referrals::partner_open)),
        )
        // A partner's session (issue 16): its one referral, nothing else
        // (`middleware::partner_fence`).
        .service(resource("/partner/referrals/{id}").route(get().to(partner::page)))
        .service(resource("/partner/referrals/{id}/answer").route(post().to(partner::answer)));
}

const CSS: &str = include_str!("../../../static/app.css");
const JS: &str = include_str!("../../../static/app.js");

const ICON: &[u8] = include_bytes!("../../../static/favicon.ico");

/// An asset's strong ETag: the first 16 bytes of its SHA-256, so a browser
/// revalidates with `If-None-Match` and gets a 304 while it is unchanged
/// (the files are compiled in; a new build with a change has a new tag).
fn etag(body: &[u8]) -> String {
    let hex = crate::crypto::sha256_hex(body);
    let hex = hex.get(..32).unwrap_or(&hex);
    format!("\"{hex}\"")
}

/// A compiled-in asset: cached for a day, then revalidated by its ETag.
fn asset(req: &HttpRequest, body: &'static [u8], kind: &'static str) -> HttpResponse {
    let tag = etag(body);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CONTENT_TYPE, kind))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::ETAG, tag));
    if fresh {
        response.finish()
    } else {
        response.body(body)
    }
}

async fn stylesheet(req: HttpRequest) -> HttpResponse {
    asset(&req, CSS.as_bytes(), "text/css; charset=utf-8")
}

async fn script(req: HttpRequest) -> HttpResponse {
    asset(&req, JS.as_bytes(), "text/javascript; charset=utf-8")
}

async fn favicon(req: HttpRequest) -> HttpResponse {
    asset(&req, ICON, "image/x-icon")
}

/// Where a form's success sends the browser (303 See Other: the next
/// request is a GET, and reloading does not post again).
/// A location that is no valid header value (it cannot come from our own
/// paths) goes to the start page rather than failing the response.
/// The attributes that tie a field to its hint (element `hint`, may be
/// empty) and, when refused, to the message about it (element `error`):
/// `aria-describedby`, and `aria-invalid` where `invalid`, for a
/// template's `{{ …|safe }}`. Ids come from the templates themselves; any
/// with other than letters, digits, `.`, `-` and `_` is left out.
pub fn tie_to(error: Option<&str>, hint: &str, invalid: bool) -> String {
    let plain = |id: &&str| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    let error = error.filter(plain);
    let ids: Vec<&str> = [Some(hint), error]
        .into_iter()
        .flatten()
        .filter(plain)
        .collect();
    let mut attributes = String::new();
    if error.is_some() && invalid {
        attributes.push_str(r#" aria-invalid="true""#);
    }
    if !ids.is_empty() {
        attributes.push_str(&format!(r#" aria-describedby="{}""#, ids.join(" ")));
    }
    attributes
}

pub fn see_other(location: &str) -> HttpResponse {
    let location = header::HeaderValue::from_str(location)
        .unwrap_or_else(|_| header::HeaderValue::from_static("/"));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

impl PageUser {
    pub fn tr<'a>(&self, state: &'a AppState) -> Tr<'a> {
        Tr::new(self.lang, &state.taxonomy)
    }
}

/// A page of one bilingual sentence, with a way home (refused forms,
/// failures before a page could know its reader's language).
pub fn plain_page(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>caseguard</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"page\"><p class=\"error\">{text}</p><p><a href=\"/\">caseguard</a></p></main></body></html>"
        ))
}

/// What a page shows when its work failed: the "try again" page (503, with
/// `Retry-After`) when the database is down, a "storage full" page (507),
/// else a server error without detail (the cause is in the log).
pub fn failure_page(error: &ApiError) -> HttpResponse {
    let status = error.status();
    let text = match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            "Hệ thống tạm thời không truy cập được cơ sở dữ liệu; chưa có gì bị thay đổi. Vui lòng thử lại sau ít phút. / The service cannot reach its database just now; nothing was changed. Please try again in a few minutes."
        }
        StatusCode::INSUFFICIENT_STORAGE => {
            "Bộ nhớ của máy chủ đã đầy; chưa có gì được lưu. Hãy báo cho quản trị viên và thử lại sau. / The server's storage is full; nothing was saved. Tell your administrator and try again later."
        }
        StatusCode::NOT_FOUND => "Không tìm thấy trang này. / This page was not found.",
        _ => "Lỗi máy chủ, vui lòng thử lại. / Server error, please try again.",
    };
    let status = if status.is_client_error() && status != StatusCode::NOT_FOUND {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    error.log_cause();
    let mut response = plain_page(status, text);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    }
    response
}

/// What a policy check decided, for a page: `None` for a denial (the
/// not-found page). The database failing stays an error: the page shows the
/// failure (the "try again" page for a lost database), never "not found".
pub(super) fn granted<T>(
    checked: Result<T, crate::authz::capability::Refused>,
) -> Result<Option<T>, crate::db::DbError> {
    use crate::authz::capability::Refused;
    match checked {
        Ok(granted) => Ok(Some(granted)),
        Err(Refused::Denied) => Ok(None),
        Err(Refused::Db(error)) => Err(error),
    }
}

/// A case or referral function's outcome, split in two: what the page shows
/// (done, a refusal, an absence) and a failure of the work (the database, its
/// audit entry, a sealed value), returned as an `Err` so that
/// [`blocking`](crate::web::blocking)'s outage policy sees it: the page
/// shows the failure, never "not found".
pub(super) fn outcome<T>(
    result: Result<T, crate::cases::CaseError>,
) -> Result<Result<T, crate::cases::CaseError>, ApiError> {
    use crate::cases::CaseError;
    match result {
        Err(error @ (CaseError::Db(_) | CaseError::Crypto(_) | CaseError::Audit(_))) => {
            Err(case_failure(error))
        }
        other => Ok(other),
    }
}

/// A case function's error as a failure of the page's work: the database's
/// own (503 when it is lost), anything else an opaque 500.
pub(super) fn case_failure(error: crate::cases::CaseError) -> ApiError {
    match error {
        crate::cases::CaseError::Db(error) => error.into(),
        other => ApiError::internal(other),
    }
}

/// Renders a template into a page (a template error is a 500 without detail).
pub fn render(template: &impl askama::Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>caseguard</title><p>Lỗi máy chủ. / Server error.</p>")
        }
    }
}

/// Renders with a status (a form with errors answers 422).
pub fn render_with(status: StatusCode, template: &impl askama::Template) -> HttpResponse {
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

pub fn not_found(frame: Frame<'_>) -> HttpResponse {
    render_with(StatusCode::NOT_FOUND, &NotFoundPage { frame })
}
