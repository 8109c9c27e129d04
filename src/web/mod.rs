//! HTTP: routes, the shared state handlers see, and the middleware stack.
//!
//! Owns the outside paths of DESIGN §7 (`/healthz`, `/readyz`, `/metrics`,
//! `/api/v1`, `/`). Handlers parse input into domain types, ask the
//! authorization module, call domain code and return DTOs (STYLE §2); they
//! never build SQL or touch crypto themselves.

pub mod api;
pub mod forwarded;
pub mod health;
pub mod i18n;
pub mod metrics;
pub mod middleware;
pub mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::audit::Auditor;
use crate::authn::Authn;
use crate::authz::capability::Authz;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::keyring::KeyringHandle;
use crate::db::Db;
use crate::domain::taxonomy::Taxonomy;
use crate::error::ApiError;
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

/// The whole application router, with its middleware. `extra` routes (used by
/// tests) are merged in before the middleware so they behave like real ones.
pub fn router(state: AppState, extra: Option<Router>) -> Router {
    let api = api::routes().fallback(|| async { ApiError::not_found() });
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .nest("/api/v1", api)
        .merge(pages::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state.clone());
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    // Limits are set per route by `middleware::limit_body`.
    middleware::apply(app, &state).layer(DefaultBodyLimit::disable())
}
