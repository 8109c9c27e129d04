//! The JSON API under `/api/v1`.

pub mod admin;
pub mod auth;
pub mod cases;
pub mod openapi;
pub mod referrals;
pub mod stats;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::ApiError;

pub fn routes() -> axum::Router<AppState> {
    auth::routes()
        .merge(admin::routes())
        .merge(cases::routes())
        .merge(referrals::routes())
        .merge(stats::routes())
        .route("/openapi.json", axum::routing::get(openapi::serve))
}

/// Runs blocking work with a pooled connection on the blocking pool.
pub(super) async fn blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut crate::db::PooledConnection, &AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().map_err(ApiError::from)?;
        let result = work(&mut conn, &state);
        match result {
            Err(error)
                if error.status().is_server_error() && crate::db::connection_lost(&mut conn) =>
            {
                Err(ApiError::from(crate::db::DbError::Unavailable(
                    "the connection was lost".into(),
                )))
            }
            other => other,
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// A JSON request body whose errors name the field and the rule, never the
/// value sent (it may be a password).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(describe(&rejection)),
        }
    }
}

fn describe(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON (Content-Type: application/json).",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("invalid_json", "The request body is not valid JSON.")
        }
        JsonRejection::JsonDataError(error) => {
            let text = error.body_text();
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
        JsonRejection::BytesRejection(_) => ApiError::for_status(rejection.status()),
        _ => ApiError::bad_request("invalid_body", "The request body cannot be read."),
    }
}
