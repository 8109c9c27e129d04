//! Prometheus metrics at `/metrics`.
//!
//! Labels are bounded by construction: the route *template* (`/api/v1/cases/{id}`,
//! never the id), the method from a fixed list and the status code. Nothing
//! that identifies a person or a record is ever a label.

use actix_web::http::{Method, header};
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;
use super::error::ApiError;

/// Route label for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The application's metrics, one registry per application instance (tests
/// run several in one process).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    outbox: Family<OutboxLabels, Gauge>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    status: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("caseguard");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections in the pool",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections in the pool",
            pool_idle.clone(),
        );
        let outbox = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "outbox_messages",
            "Notification e-mails in the outbox by status",
            outbox.clone(),
        );
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        registry.register("build_info", "caseguard version", build_info);
        Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            outbox,
        }
    }

    /// Sets the outbox gauges from a count of rows by status.
    pub fn set_outbox(&self, counts: &crate::notify::outbox::StatusCounts) {
        for status in crate::notify::outbox::Status::ALL {
            self.outbox
                .get_or_create(&OutboxLabels {
                    status: status.as_str(),
                })
                .set(counts.get(status));
        }
    }

    /// Records one finished request.
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.db.pool_state();
    state
        .metrics
        .pool_connections
        .set(i64::from(pool.connections));
    state
        .metrics
        .pool_idle
        .set(i64::from(pool.idle_connections));
    // Best effort: with the database down the other metrics still answer,
    // and the outbox gauges keep their last values.
    match state
        .db
        .read(|conn| Ok(crate::notify::outbox::count_by_status(conn)?))
        .await
    {
        Ok(counts) => state.metrics.set_outbox(&counts),
        Err(error) => tracing::debug!(%error, "cannot count the outbox for metrics"),
    }
    let body = state.metrics.encode().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .body(body))
}
