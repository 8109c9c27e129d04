//! HTTP: routes, the shared state handlers see, and the middleware stack.
//!
//! Owns the outside paths of DESIGN §7 (`/healthz`, `/readyz`, `/metrics`,
//! `/api/v1`, `/`). Handlers parse input into domain types, ask the
//! authorization module, call domain code and return DTOs (STYLE §2); they
//! never build SQL or touch crypto themselves.

pub mod api;
pub mod connections;
pub mod error;
pub mod extract;
pub mod health;
pub mod i18n;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod pupil;
pub mod redirect;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, guard, web};

use crate::audit::Auditor;
use crate::authn::Authn;
use crate::authz::capability::Authz;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::keyring::KeyringHandle;
use crate::db::Db;
use crate::domain::taxonomy::Taxonomy;
use error::ApiError;
use metrics::Metrics;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub keyring: Arc<KeyringHandle>,
    pub auditor: Arc<Auditor>,
    pub authn: Arc<Authn>,
    pub authz: Authz,
    pub taxonomy: Arc<Taxonomy>,
    pub protocol: Arc<crate::domain::protocol::Protocol>,
    pub calendar: Arc<crate::domain::calendar::Calendar>,
    pub retention: crate::cases::retention::RetentionPolicy,
    pub reporting: Arc<crate::stats::ReportingPolicy>,
    pub disclosure: Arc<crate::stats::DisclosurePolicy>,
    /// The policy files as read at start (the read-only policies page).
    pub policy_files: Arc<Vec<crate::domain::policy_files::PolicyFile>>,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// What the case and referral functions need from the state.
    pub fn case_context(&self) -> crate::cases::CaseContext<'_> {
        crate::cases::CaseContext {
            keyring: self.keyring.current(),
            auditor: &self.auditor,
            clock: self.clock.as_ref(),
            taxonomy: &self.taxonomy,
            protocol: &self.protocol,
            calendar: &self.calendar,
            public_url: self.settings.public_url.as_str(),
        }
    }
}

impl AppState {
    /// What the statistics functions need from the state.
    pub fn stats_context(&self) -> crate::stats::StatsContext<'_> {
        crate::stats::StatsContext {
            reporting: &self.reporting,
            disclosure: &self.disclosure,
            taxonomy: &self.taxonomy,
            utc_offset: self.calendar.utc_offset(),
            clock: self.clock.as_ref(),
        }
    }
}

/// Routes a test adds beside the real ones, behind the same middleware.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// A route for GET that answers HEAD the same way (the server sends the
/// head without the body).
pub fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The whole application: state, body limits, routes and the middleware
/// stack, once per worker (the state itself is built once and shared).
pub fn app(
    state: web::Data<AppState>,
    extra: Option<ExtraRoutes>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.request_body_limit;
    App::new()
        .app_data(state)
        // Every body extractor reads under the same limit; uploads are read
        // by `extract::read_multipart` under `attachment_max_bytes`, and
        // `middleware::limit_body` enforces both on the stream.
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::JsonConfig::default().limit(limit))
        .app_data(web::FormConfig::default().limit(limit))
        .configure(|cfg| {
            if let Some(extra) = &extra {
                extra(cfg);
            }
        })
        .service(web::resource("/healthz").route(get().to(health::healthz)))
        .service(web::resource("/readyz").route(get().to(health::readyz)))
        .service(web::resource("/metrics").route(get().to(metrics::scrape)))
        .service(
            web::scope("/api/v1")
                .configure(api::configure)
                .default_service(web::to(not_found)),
        )
        .configure(pages::configure)
        .default_service(web::to(not_found))
        .wrap(from_fn(middleware::after_quick_exit))
        .wrap(from_fn(middleware::partner_fence))
        .wrap(from_fn(middleware::timeout))
        .wrap(from_fn(middleware::limit_body))
        .wrap(from_fn(middleware::json_errors))
        .wrap(from_fn(middleware::security_headers))
        .wrap(from_fn(middleware::resolve_client))
        .wrap(from_fn(middleware::observe))
}

/// An unknown address: the JSON error for the API and for clients that do
/// not ask for HTML; a browser (`Accept: text/html`) outside `/api/` gets
/// the "not found" page in its reader's language.
async fn not_found(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let wants_html = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && !req.path().starts_with("/api/") {
        let lang = extract::request_lang(&req);
        return Ok(pages::not_found(pages::Frame::anonymous(lang, &state, "/")));
    }
    Err(ApiError::not_found())
}

/// The one way a handler runs blocking work: with a pooled connection, on
/// the blocking pool, under the outage policy of [`Db::run`] (a lost
/// database is a 503 everywhere; pages show it as the "try again" page).
pub async fn blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut crate::db::PooledConnection, &AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let shared = state.clone();
    state.db.run(move |conn| work(conn, &shared)).await
}
