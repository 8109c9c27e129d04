//! Extractors: what a handler learns from a request before it runs — who is
//! calling ([`Caller`], [`PageUser`]), from where ([`ClientAddr`]), and the
//! body, read under its limit and refused with a specific error
//! ([`JsonBody`], [`CsrfForm`], [`PublicForm`], [`CsrfUpload`]).
//!
//! This is the only place that reads headers, cookies and raw bodies. It
//! hands plain values to `authn` (which knows nothing of HTTP) and turns
//! `authn`'s answers into responses. A page handler that takes form data
//! cannot forget the CSRF check: [`CsrfForm`] and [`CsrfUpload`] are the
//! only ways to read a signed-in person's form.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::TryStreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use super::i18n::Lang;
use super::middleware::RequestId;
use crate::audit::RequestContext;
use crate::authn::caller::{self, AuthError, AuthnContext, Caller, Provenance};
use crate::authn::sessions::{self, COOKIE, CSRF_HEADER};

/// The cookie that remembers the language before sign-in (not a secret).
pub const LANG_COOKIE: &str = "caseguard_lang";

/// The shared state, put in place by `web::configure`.
pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the application state is missing")))
}

/// A header's value as text; a value that is not visible ASCII is absent.
pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The value of cookie `name`: the first pair of that name in any `Cookie`
/// header. Unlike a strict parser, another site's malformed cookie does not
/// hide ours.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The browser session's token, from its cookie.
pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    cookie(req, COOKIE)
}

/// Where the request says it comes from (Origin, Fetch Metadata).
pub fn provenance(req: &HttpRequest) -> Provenance<'_> {
    Provenance {
        origin: header_str(req, header::ORIGIN.as_str()),
        fetch_site: header_str(req, "sec-fetch-site"),
    }
}

/// The language of a request without a signed-in user: the language
/// cookie, else Vietnamese.
pub fn request_lang(req: &HttpRequest) -> Lang {
    cookie(req, LANG_COOKIE)
        .and_then(|value| Lang::parse(&value))
        .unwrap_or_default()
}

/// The client's address as resolved for this request: behind a trusted
/// reverse proxy the address it forwarded, else the connection's peer
/// (`config::proxies`). Set by the middleware, once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The resolved client address, or the peer's when nothing resolved it.
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| req.peer_addr().map(|addr| addr.ip()))
}

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            client_addr(req).map(Self).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("the connection has no address"))
            }),
        )
    }
}

/// The request id and client address, for audit entries.
pub fn request_context(req: &HttpRequest) -> RequestContext {
    RequestContext {
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        client_ip: client_addr(req).map(|ip| ip.to_string()),
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

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated => unauthorized(),
            AuthError::CsrfFailed => csrf_refused(),
            AuthError::Db(error) => error.into(),
        }
    }
}

fn authn_context(state: &AppState) -> AuthnContext<'_> {
    AuthnContext {
        db: &state.db,
        authn: &state.authn,
        clock: state.clock.as_ref(),
    }
}

/// Keeps the order of checks one way although actix polls a handler's
/// extractors together: who is calling is settled before a body's error is
/// answered. The identity extractors ([`Caller`], [`PageUser`]) come first in
/// a handler's arguments and put a gate in the request; a body extractor that
/// fails waits for the gate, so an unauthenticated request gets its 401 (or
/// the sign-in page), never a 415 or 422 that depends on timing.
#[derive(Clone, Default)]
struct AuthGate(std::rc::Rc<GateState>);

#[derive(Default)]
struct GateState {
    open: std::cell::Cell<bool>,
    opened: tokio::sync::Notify,
}

impl AuthGate {
    /// A gate for this request, closed until the returned guard drops.
    fn install(req: &HttpRequest) -> GateGuard {
        let gate = Self::default();
        req.extensions_mut().insert(gate.clone());
        GateGuard(gate)
    }

    /// Waits until the identity of the request's caller is settled (at once
    /// when the handler has no identity extractor).
    async fn settled(req: &HttpRequest) {
        let Some(gate) = req.extensions().get::<Self>().cloned() else {
            return;
        };
        while !gate.0.open.get() {
            // Registered on creation: a wake-up between the check and the
            // await is not lost.
            let opened = gate.0.opened.notified();
            if gate.0.open.get() {
                break;
            }
            opened.await;
        }
    }
}

/// Opens its gate when dropped, however the identity check ended.
struct GateGuard(AuthGate);

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.0.0.open.set(true);
        self.0.0.opened.notify_waiters();
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An API caller: a bearer token, or a browser session whose state changes
/// carry the CSRF header and come from our own origin.
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let gate = AuthGate::install(&req);
        Box::pin(async move {
            let _gate = gate;
            let state = app_state(&req)?;
            let request = request_context(&req);
            let cx = authn_context(&state);
            if let Some(token) =
                header_str(&req, header::AUTHORIZATION.as_str()).and_then(caller::bearer)
            {
                return Ok(Caller::from_token(cx, token, request).await?);
            }
            let token = session_cookie(&req).ok_or_else(unauthorized)?;
            if is_state_changing(req.method()) {
                let sent = header_str(&req, CSRF_HEADER).unwrap_or_default();
                if !caller::csrf_holds(
                    Some(&token),
                    sent,
                    provenance(&req),
                    &state.settings.public_url,
                ) {
                    return Err(csrf_refused());
                }
            }
            Ok(Caller::from_session(cx, &token, request).await?)
        })
    }
}

/// A signed-in person on a page: a browser session (with its second factor
/// where the role needs one). Without one, the page redirects to sign-in.
pub struct PageUser {
    pub caller: Caller,
    pub lang: Lang,
    /// The CSRF token for this page's forms.
    pub csrf: String,
}

/// Why a page could not be shown to anyone: nobody is signed in (to the
/// sign-in page), or the service cannot tell (the "try again" page, never
/// the sign-in page: a lost database is not a lost session).
#[derive(Debug)]
pub enum PageRefusal {
    SignIn,
    Failed(ApiError),
}

impl std::fmt::Display for PageRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn => f.write_str("sign-in required"),
            Self::Failed(error) => error.fmt(f),
        }
    }
}

impl ResponseError for PageRefusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::Failed(error) => error.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish(),
            Self::Failed(error) => super::pages::failure_page(error),
        }
    }
}

impl FromRequest for PageUser {
    type Error = PageRefusal;
    type Future = LocalBoxFuture<'static, Result<Self, PageRefusal>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let gate = AuthGate::install(&req);
        Box::pin(async move {
            let _gate = gate;
            let state = app_state(&req).map_err(PageRefusal::Failed)?;
            let token = session_cookie(&req).ok_or(PageRefusal::SignIn)?;
            let caller =
                match Caller::from_session(authn_context(&state), &token, request_context(&req))
                    .await
                {
                    Ok(caller) => caller,
                    Err(AuthError::Unauthenticated | AuthError::CsrfFailed) => {
                        return Err(PageRefusal::SignIn);
                    }
                    Err(AuthError::Db(error)) => return Err(PageRefusal::Failed(error.into())),
                };
            let lang = Lang::parse(&caller.user.language).unwrap_or_default();
            Ok(Self {
                caller,
                lang,
                csrf: sessions::csrf_token(&token),
            })
        })
    }
}

/// A JSON request body whose errors name the field and the rule, never the
/// value sent (it may be a password). Read under the `JsonConfig` limit.
pub struct JsonBody<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = header_str(req, header::CONTENT_TYPE.as_str()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let parsed = if json {
                match body.await {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .map(Self)
                        .map_err(|e| describe_json(&e)),
                    Err(error) => Err(unreadable(&error)),
                }
            } else {
                Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "The request body must be JSON (Content-Type: application/json).",
                ))
            };
            if parsed.is_err() {
                AuthGate::settled(&req).await;
            }
            parsed
        })
    }
}

/// A body that could not be read: too large (413, under its limit), or cut.
fn unreadable(error: &actix_web::Error) -> ApiError {
    if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        ApiError::bad_request("invalid_body", "The request body cannot be read.")
    }
}

fn describe_json(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof => {
            ApiError::bad_request("invalid_json", "The request body is not valid JSON.")
        }
        Category::Data => {
            let text = error.to_string();
            let field = ["missing field `", "unknown field `", "duplicate field `"]
                .iter()
                .find_map(|prefix| {
                    let start = text.find(prefix)?;
                    let rest = text.get(start..)?;
                    let end = rest.get(prefix.len()..)?.find('`')? + prefix.len() + 1;
                    rest.get(..end).map(str::to_owned)
                });
            let message = match field {
                Some(problem) => format!("The request body is not as expected: {problem}."),
                None => "The request body is not as expected: a field has the wrong type or the body is not an object.".to_owned(),
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
        }
        Category::Io => ApiError::bad_request("invalid_body", "The request body cannot be read."),
    }
}

/// Why a form was refused before its handler ran.
#[derive(Debug)]
pub struct FormRefused(pub StatusCode);

impl std::fmt::Display for FormRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "form refused ({})", self.0)
    }
}

impl ResponseError for FormRefused {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        let text = match self.0 {
            StatusCode::FORBIDDEN => {
                "Biểu mẫu đã hết hạn hoặc không đến từ trang caseguard. Hãy tải lại trang và thử lại. / This form expired or did not come from a caseguard page. Reload the page and try again."
            }
            StatusCode::PAYLOAD_TOO_LARGE => "Tệp quá lớn. / The file is too large.",
            _ => "Không đọc được biểu mẫu. / The form could not be read.",
        };
        super::pages::plain_page(self.0, text)
    }
}

/// The fields of a submitted form, in order.
#[derive(Debug, Default)]
pub struct FormFields {
    pub pairs: Vec<(String, String)>,
}

impl FormFields {
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

/// Reads an urlencoded form under the payload limit.
async fn read_form(
    body: impl Future<Output = Result<web::Bytes, actix_web::Error>>,
) -> Result<FormFields, FormRefused> {
    let bytes = body.await.map_err(|e| {
        FormRefused(
            if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            },
        )
    })?;
    let pairs =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| FormRefused(StatusCode::BAD_REQUEST))?;
    Ok(FormFields { pairs })
}

/// Whether a form's CSRF token `sent` is the session's and the request
/// came from our own page (Origin / Fetch-Metadata).
fn form_csrf_holds(req: &HttpRequest, sent: &str) -> Result<bool, FormRefused> {
    let state = app_state(req).map_err(|_| FormRefused(StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(caller::csrf_holds(
        session_cookie(req).as_deref(),
        sent,
        provenance(req),
        &state.settings.public_url,
    ))
}

/// A submitted form whose CSRF token (field `csrf`) matched the session's
/// and whose Origin / Fetch-Metadata say it came from our own page.
pub struct CsrfForm(pub FormFields);

impl std::ops::Deref for CsrfForm {
    type Target = FormFields;

    fn deref(&self) -> &FormFields {
        &self.0
    }
}

impl FromRequest for CsrfForm {
    type Error = FormRefused;
    type Future = LocalBoxFuture<'static, Result<Self, FormRefused>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let checked = async {
                let fields = read_form(body).await?;
                let sent = fields
                    .pairs
                    .iter()
                    .find(|(k, _)| k == "csrf")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default();
                if !form_csrf_holds(&req, sent)? {
                    return Err(FormRefused(StatusCode::FORBIDDEN));
                }
                Ok(Self(fields))
            }
            .await;
            if checked.is_err() {
                AuthGate::settled(&req).await;
            }
            checked
        })
    }
}

/// A form of a page reached without a session (sign-in, a partner's link):
/// only the Origin / Fetch-Metadata check applies.
pub struct PublicForm(pub FormFields);

impl std::ops::Deref for PublicForm {
    type Target = FormFields;

    fn deref(&self) -> &FormFields {
        &self.0
    }
}

impl FromRequest for PublicForm {
    type Error = FormRefused;
    type Future = LocalBoxFuture<'static, Result<Self, FormRefused>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state =
                app_state(&req).map_err(|_| FormRefused(StatusCode::INTERNAL_SERVER_ERROR))?;
            if !provenance(&req).same_origin(&state.settings.public_url) {
                return Err(FormRefused(StatusCode::FORBIDDEN));
            }
            Ok(Self(read_form(body).await?))
        })
    }
}

/// One uploaded file.
pub struct Upload {
    pub name: Option<String>,
    pub content_type: String,
    pub bytes: web::Bytes,
}

/// A multipart body's text fields and its one `file` part, each read under
/// `limit` bytes in all.
pub struct MultipartBody {
    pub fields: FormFields,
    pub file: Option<Upload>,
}

/// Why a multipart body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartProblem {
    /// Not multipart, or malformed.
    Malformed,
    /// More than the limit.
    TooLarge,
}

/// Reads a multipart body: text fields (each at most 4 KiB) and the part
/// named `file`, at most `limit` bytes in all.
pub async fn read_multipart(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<MultipartBody, MultipartProblem> {
    const FIELD_MAX: usize = 4096;
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let mut fields = FormFields::default();
    let mut file = None;
    let mut total = 0_usize;
    while let Some(mut field) = multipart
        .try_next()
        .await
        .map_err(|_| MultipartProblem::Malformed)?
    {
        let name = field.name().map(str::to_owned);
        let is_file = name.as_deref() == Some("file");
        let file_name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let content_type = field
            .content_type()
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut bytes = web::BytesMut::new();
        while let Some(chunk) = field.try_next().await.map_err(|e| match e {
            actix_multipart::MultipartError::Payload(_) => MultipartProblem::TooLarge,
            _ => MultipartProblem::Malformed,
        })? {
            total = total.saturating_add(chunk.len());
            if total > limit {
                return Err(MultipartProblem::TooLarge);
            }
            if !is_file && bytes.len() + chunk.len() > FIELD_MAX {
                return Err(MultipartProblem::Malformed);
            }
            bytes.extend_from_slice(&chunk);
        }
        match name {
            // A file field left empty arrives as a part without bytes.
            Some(_) if is_file && bytes.is_empty() => {}
            Some(_) if is_file => {
                file = Some(Upload {
                    name: file_name.filter(|n| !n.is_empty()),
                    content_type,
                    bytes: bytes.freeze(),
                });
            }
            Some(name) => {
                let text = std::str::from_utf8(&bytes)
                    .map(str::to_owned)
                    .map_err(|_| MultipartProblem::Malformed)?;
                fields.pairs.push((name, text));
            }
            None => {}
        }
    }
    Ok(MultipartBody { fields, file })
}

/// A multipart form (an attachment's upload) whose CSRF token and origin
/// were checked: its one file.
pub struct CsrfUpload {
    pub file: Option<Upload>,
}

impl FromRequest for CsrfUpload {
    type Error = FormRefused;
    type Future = LocalBoxFuture<'static, Result<Self, FormRefused>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let checked = async {
                let state =
                    app_state(&req).map_err(|_| FormRefused(StatusCode::INTERNAL_SERVER_ERROR))?;
                let body = read_multipart(&req, payload, state.settings.attachment_max_bytes)
                    .await
                    .map_err(|problem| {
                        FormRefused(match problem {
                            MultipartProblem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                            MultipartProblem::Malformed => StatusCode::BAD_REQUEST,
                        })
                    })?;
                let sent = body.fields.get("csrf").unwrap_or_default();
                if !form_csrf_holds(&req, &sent)? {
                    return Err(FormRefused(StatusCode::FORBIDDEN));
                }
                Ok(Self { file: body.file })
            }
            .await;
            if checked.is_err() {
                AuthGate::settled(&req).await;
            }
            checked
        })
    }
}

/// A partner without an account, in a session opened with a one-time link
/// (`authn::partner`): only what `middleware::partner_fence` admitted for
/// this request. Without it the page is "not found", like any page outside
/// one's reach.
pub struct PartnerCaller {
    pub session: crate::authn::partner::PartnerSession,
    pub lang: Lang,
    pub request: RequestContext,
}

/// A partner page asked for without a live partner session.
#[derive(Debug)]
pub struct PartnerRefused;

impl std::fmt::Display for PartnerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no partner session")
    }
}

impl ResponseError for PartnerRefused {
    fn status_code(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }

    fn error_response(&self) -> HttpResponse {
        super::pages::plain_page(
            StatusCode::NOT_FOUND,
            "Không tìm thấy trang này. / This page was not found.",
        )
    }
}

impl FromRequest for PartnerCaller {
    type Error = PartnerRefused;
    type Future = std::future::Ready<Result<Self, PartnerRefused>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req
            .extensions()
            .get::<crate::authn::partner::PartnerSession>()
            .cloned();
        std::future::ready(session.ok_or(PartnerRefused).map(|session| Self {
            session,
            lang: request_lang(req),
            request: request_context(req),
        }))
    }
}

/// A form of a partner page whose CSRF token (field `csrf`) is the partner
/// session's and whose Origin / Fetch-Metadata say it came from our page.
pub struct PartnerForm(pub FormFields);

impl std::ops::Deref for PartnerForm {
    type Target = FormFields;

    fn deref(&self) -> &FormFields {
        &self.0
    }
}

impl FromRequest for PartnerForm {
    type Error = FormRefused;
    type Future = LocalBoxFuture<'static, Result<Self, FormRefused>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state =
                app_state(&req).map_err(|_| FormRefused(StatusCode::INTERNAL_SERVER_ERROR))?;
            let fields = read_form(body).await?;
            let sent = fields
                .pairs
                .iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            let holds = cookie(&req, crate::authn::partner::COOKIE)
                .is_some_and(|token| crate::authn::partner::csrf_matches(&token, sent))
                && provenance(&req).same_origin(&state.settings.public_url);
            if !holds {
                return Err(FormRefused(StatusCode::FORBIDDEN));
            }
            Ok(Self(fields))
        })
    }
}
