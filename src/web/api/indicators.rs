//! The plan's non-count targets (`[[unit_indicator]]`): a unit's answers
//! (its focal points), the area's values against their targets with the
//! trend (monitors, district officers), and who has answered and who is
//! late. Nothing here reaches a case row.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::stats::{area_capability, period_of, stats_error};
use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::stats::unit_indicators::{self, Answers, AreaUnitIndicators, SubmitError, UnitStatus};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/stats/unit-indicators")
            .route(crate::web::get().to(progress))
            .route(web::post().to(submit)),
    )
    .service(web::resource("/stats/indicators/status").route(crate::web::get().to(status)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaQuery {
    area: Option<String>,
    period: Option<String>,
}

async fn progress(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AreaQuery>,
) -> Result<web::Json<Vec<AreaUnitIndicators>>, ApiError> {
    of_area(
        &state,
        caller,
        query.into_inner(),
        unit_indicators::progress,
    )
    .await
}

async fn status(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AreaQuery>,
) -> Result<web::Json<Vec<UnitStatus>>, ApiError> {
    of_area(&state, caller, query.into_inner(), unit_indicators::status).await
}

/// What progress and status share: the period asked for, the area the
/// caller may read (its own by default) and `compute` over them.
async fn of_area<T: Send + 'static>(
    state: &AppState,
    caller: Caller,
    query: AreaQuery,
    compute: fn(
        &mut crate::db::DbConnection,
        &crate::stats::StatsContext<'_>,
        &crate::authz::capability::Capability,
        &crate::db::organisations::OrganisationRow,
        &crate::stats::Period,
    ) -> Result<T, crate::stats::StatsError>,
) -> Result<web::Json<T>, ApiError> {
    blocking(state, move |conn, state| {
        let period = period_of(state, query.period.as_deref())?;
        let (capability, area) = area_capability(
            conn,
            state,
            &caller,
            Action::StatsRead,
            query.area.as_deref(),
        )?;
        compute(conn, &state.stats_context(), &capability, &area, &period)
            .map(web::Json)
            .map_err(stats_error)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersBody {
    period: String,
    /// The unit's code; the caller's own organisation when left out.
    #[serde(default)]
    unit: Option<String>,
    answers: Answers,
}

/// A refusal of a unit's answers as the API says it.
pub(crate) fn submit_error(
    state: &AppState,
    period: &crate::stats::Period,
    error: SubmitError,
) -> ApiError {
    match error {
        SubmitError::Invalid(problems) => {
            let ctx = state.stats_context();
            let codes = unit_indicators::expected_codes(&ctx, period);
            let kinds = state.reporting.collected_kinds().join(", ");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_answers",
                problems
                    .iter()
                    .map(|p| {
                        p.english(if p.part == unit_indicators::Part::Period {
                            &kinds
                        } else {
                            &codes
                        })
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
        SubmitError::Stats(crate::stats::StatsError::AlreadySubmitted) => ApiError::new(
            StatusCode::CONFLICT,
            "already_submitted",
            "This unit already entered its indicators for this period; they are entered once per period.",
        ),
        SubmitError::Stats(other) => stats_error(other),
    }
}

async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AnswersBody>,
) -> Result<HttpResponse, ApiError> {
    blocking(&state, move |conn, state| {
        let unit = match &body.unit {
            Some(code) => crate::db::organisations::find_by_code(conn, code.trim())
                .map_err(crate::db::DbError::Query)?,
            None => crate::db::organisations::find(conn, &caller.user.org_id)
                .map_err(crate::db::DbError::Query)?,
        };
        let unit_id = unit
            .as_ref()
            .map_or_else(|| body.unit.clone().unwrap_or_default(), |u| u.id.clone());
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::IndicatorsSubmit,
            &unit_id,
        )?;
        let unit = unit.ok_or_else(ApiError::not_found)?;
        let period = period_of(state, Some(&body.period))?;
        unit_indicators::submit(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &unit,
            &period,
            &body.answers,
        )
        .map_err(|e| submit_error(state, &period, e))
    })
    .await?;
    Ok(HttpResponse::Created().finish())
}
