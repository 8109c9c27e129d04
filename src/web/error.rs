//! The error policy, written once (STYLE §7).
//!
//! - Inside the crate, modules return their own `thiserror` enums where a
//!   caller branches on the cause, and `anyhow` context where it only reports.
//! - At the HTTP edge everything becomes an [`ApiError`]: a status, a stable
//!   machine-readable `code` and a short message, sent as
//!   `{"error": {"code": "...", "message": "..."}}` (DESIGN §7).
//! - An unexpected error becomes an opaque 500 whose body says nothing about
//!   the cause; the cause chain goes to the log, tagged with the request id.
//! - Where the existence of a record is itself confidential, "not found" and
//!   "not allowed" produce the same response.
//! - Messages never contain field values a user submitted: they name the
//!   field and the rule.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::authn::login::LoginError;
use crate::authz::capability::Refused;
use crate::db::{DbError, Outage};

/// An error as the API client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The cause, logged for a 5xx and never sent.
    cause: Option<anyhow::Error>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource.")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed on this resource.",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// The database's storage is full: nothing was saved (507).
    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "The server's storage is full; nothing was saved. Try again later.",
        )
    }

    /// An outage of the database, as the caller sees it.
    fn for_outage(outage: Outage) -> Self {
        match outage {
            Outage::ConnectionLost => {
                Self::unavailable("The database is unavailable; try again shortly.")
            }
            Outage::StorageFull => Self::storage_full(),
        }
    }

    /// An unexpected failure: a generic 500 for the caller, the cause for the
    /// log — unless the cause is the database being down or full, which the
    /// caller is told (503, 507) so it retries later.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        if let Some(outage) = outage_in(&cause) {
            tracing::warn!(outage = ?outage, "database outage");
            return Self::for_outage(outage);
        }
        Self {
            cause: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Something went wrong on our side. The problem has been logged.",
            )
        }
    }

    /// The standard error for a bare status produced outside a handler
    /// (body limit, timeout, a framework rejection without a JSON body).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => return Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => return Self::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("payload_too_large", "The request body is too large.")
            }
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "The request body must be JSON (Content-Type: application/json).",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => (
                "invalid_body",
                "The request body does not have the expected fields.",
            ),
            StatusCode::UNAUTHORIZED => ("unauthorized", "Valid credentials are required."),
            StatusCode::FORBIDDEN => ("forbidden", "You are not allowed to do this."),
            StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "Too many requests; slow down."),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "The service is unavailable; try again shortly.",
            ),
            s if s.is_server_error() => (
                "internal_error",
                "Something went wrong on our side. The problem has been logged.",
            ),
            _ => ("bad_request", "The request is not valid."),
        };
        Self::new(status, code, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Logs the cause of an unexpected failure (never sent to the caller).
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            // `{:#}` prints the whole cause chain on one line.
            tracing::error!(
                error = format!("{cause:#}"),
                status = self.status.as_u16(),
                "request failed"
            );
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.log_cause();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        HttpResponse::build(self.status).json(body)
    }
}

/// An outage anywhere in a cause chain: a [`DbError`] or diesel error in it,
/// or (for an error wrapped transparently) the database's message.
fn outage_in(cause: &anyhow::Error) -> Option<Outage> {
    cause.chain().find_map(|e| {
        if let Some(db) = e.downcast_ref::<DbError>() {
            db.outage()
        } else if let Some(query) = e.downcast_ref::<diesel::result::Error>() {
            Outage::of(query)
        } else {
            Outage::of_message(&e.to_string())
        }
    })
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(reason) => {
                tracing::warn!(reason, "database unavailable");
                Self::unavailable("The database is unavailable; try again shortly.")
            }
            other => Self::internal(other),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Denied => Self::not_found(),
            Refused::Db(error) => error.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Failed => Self::new(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                "The email, password or code is not correct, or the account is temporarily locked. \
                 Wait a few minutes and try again, or ask your administrator.",
            ),
            LoginError::Busy(_) => {
                Self::unavailable("Too many sign-ins are being checked; try again in a moment.")
            }
            LoginError::Db(error) => error.into(),
            LoginError::Audit(error) => Self::internal(error),
            LoginError::Internal(message) => Self::internal(anyhow::anyhow!(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_never_carry_their_cause() {
        let cause = anyhow::anyhow!("relation \"secret_table\" does not exist");
        let (status, body) = body_of(ApiError::internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(!body.to_string().contains("secret_table"));
    }

    #[tokio::test]
    async fn database_outage_is_a_503() {
        let (status, body) = body_of(DbError::Unavailable("timed out".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "service_unavailable");
        assert!(!body.to_string().contains("timed out"));
    }
}
