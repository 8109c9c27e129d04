//! Liveness and readiness probes.
//!
//! `/healthz` answers as long as the process serves HTTP: a load balancer or
//! Kubernetes restarts the process when it stops. `/readyz` also checks that
//! the database answers and has exactly the migrations this binary expects;
//! while it is red, traffic goes to other replicas.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{self, Json};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use crate::db::migrations;

/// How long readiness waits for a database connection.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
}

pub async fn readyz(state: web::Data<AppState>) -> Result<Json<Readiness>, ApiError> {
    let db = state.db.clone();
    let database = db.backend().as_str();
    // Not `Db::run`: readiness has its own, shorter wait for a connection,
    // and says "not ready" rather than "unavailable".
    let status = tokio::task::spawn_blocking(move || {
        let mut conn = db
            .get_timeout(READINESS_TIMEOUT)
            .map_err(|e| e.to_string())?;
        migrations::status(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(ApiError::internal)?;
    match status {
        Ok(status) if status.is_current() => Ok(Json(Readiness {
            status: "ready",
            database,
        })),
        Ok(status) if !status.unknown.is_empty() => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The database was migrated by a newer release of caseguard.",
        )),
        Ok(status) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!(
                "The database schema is not current: {} migration(s) pending. Run `caseguard migrate`.",
                status.pending.len()
            ),
        )),
        Err(reason) => {
            tracing::warn!(reason, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "The database is unreachable.",
            ))
        }
    }
}
