//! Break-glass review (issue 16): `GET /cases/{id}/break-glass` (the grants
//! of one case) and `GET /break-glass` (the grants in a part of the tree):
//! officer, time, expiry and the written reason, for holders of
//! `break_glass.review` (the school's focal points, the area's auditors).
//! Each grant read is audited; outside the caller's reach is 404.

use actix_web::web;
use serde::Deserialize;
use serde_json::{Value, json};

use super::blocking;
use super::cases::{case_error, context};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::break_glass_review::{self as review, Grant};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The review routes, relative to `/api/v1` (the case's GET is registered
/// with its POST in `cases::configure`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/break-glass").route(crate::web::get().to(in_org)));
}

fn grant_dto(grant: &Grant) -> Value {
    json!({
        "id": grant.id,
        "case_id": grant.case_id,
        "school_id": grant.school_id,
        "officer": {"id": grant.officer_id, "display_name": grant.officer_name},
        "granted_at": grant.granted_at.and_utc().to_rfc3339(),
        "expires_at": grant.expires_at.and_utc().to_rfc3339(),
        "reason": grant.reason.as_ref().map(|r| r.expose().to_owned()),
    })
}

/// `GET /cases/{id}/break-glass`.
pub async fn of_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<Value>>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let school = crate::db::cases::find(conn, &id)
            .map_err(crate::db::DbError::from)?
            .map(|c| c.school_id)
            .ok_or_else(ApiError::not_found)?;
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::BreakGlassReview,
            &school,
        )?;
        let grants =
            review::of_case(conn, &context(state), &capability, &id).map_err(case_error)?;
        Ok(web::Json(grants.iter().map(grant_dto).collect()))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// The part of the tree (default: the caller's organisation).
    #[serde(default)]
    org_id: Option<String>,
}

/// `GET /break-glass`.
async fn in_org(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReviewQuery>,
) -> Result<web::Json<Vec<Value>>, ApiError> {
    let query = query.into_inner();
    blocking(&state, move |conn, state| {
        let org_id = query.org_id.unwrap_or_else(|| caller.user.org_id.clone());
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::BreakGlassReview,
            &org_id,
        )?;
        let grants =
            review::in_org(conn, &context(state), &capability, &org_id).map_err(case_error)?;
        Ok(web::Json(grants.iter().map(grant_dto).collect()))
    })
    .await
}
