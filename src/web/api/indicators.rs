//! The plan's non-count targets (`[[unit_indicator]]`): a unit's answers
//! (its focal points), the area's values against their targets with the
//! trend (monitors, district officers), and who has answered and who is
//! late. Nothing here reaches a case row.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    .service(web::resource("/stats/unit-indicators/answers").route(crate::web::get().to(answers)))
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

/// The unit a focal point acts for (`code`, else the caller's own) and
/// the capability to enter and read its indicators; another unit's is
/// refused as a missing one.
fn unit_capability(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &Caller,
    code: Option<&str>,
) -> Result<
    (
        crate::authz::capability::Capability,
        crate::db::organisations::OrganisationRow,
    ),
    ApiError,
> {
    let unit = match code {
        Some(code) => crate::db::organisations::find_by_code(conn, code.trim())
            .map_err(crate::db::DbError::Query)?,
        None => crate::db::organisations::find(conn, &caller.user.org_id)
            .map_err(crate::db::DbError::Query)?,
    };
    let unit_id = unit
        .as_ref()
        .map_or_else(|| code.unwrap_or_default().to_owned(), |u| u.id.clone());
    let capability = state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::IndicatorsSubmit,
        &unit_id,
    )?;
    Ok((capability, unit.ok_or_else(ApiError::not_found)?))
}

async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AnswersBody>,
) -> Result<HttpResponse, ApiError> {
    blocking(&state, move |conn, state| {
        let (capability, unit) = unit_capability(conn, state, &caller, body.unit.as_deref())?;
        let period = period_of(state, Some(&body.period))?;
        unit_indicators::submit(
            conn,
            &state.stats_context(),
            &state.keyring.current(),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitQuery {
    period: String,
    unit: Option<String>,
}

/// A unit's answers for a period, as entered, with their evidence notes.
#[derive(Serialize)]
pub struct OwnAnswers {
    period: String,
    unit: String,
    /// When the answers were entered (UTC, RFC 3339); `None` before.
    submitted_at: Option<String>,
    answers: BTreeMap<String, OwnAnswerBody>,
}

#[derive(Serialize)]
pub struct OwnAnswerBody {
    value: serde_json::Value,
    evidence: String,
}

/// A unit's own answers with their notes opened (audited), for its focal
/// points: the API and the entry page read them here.
pub(crate) fn own_answers(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    by: &crate::authz::capability::Capability,
    unit: &crate::db::organisations::OrganisationRow,
    period: &crate::stats::Period,
) -> Result<Vec<unit_indicators::OwnAnswer>, ApiError> {
    let (ctx, keyring) = (state.stats_context(), state.keyring.current());
    unit_indicators::own_answers(conn, &ctx, &keyring, &state.auditor, by, unit, period)
        .map_err(stats_error)
}

/// GET /stats/unit-indicators/answers: the unit's own answers and notes,
/// for its focal points only (audited).
async fn answers(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UnitQuery>,
) -> Result<web::Json<OwnAnswers>, ApiError> {
    let query = query.into_inner();
    blocking(&state, move |conn, state| {
        let (capability, unit) = unit_capability(conn, state, &caller, query.unit.as_deref())?;
        let period = period_of(state, Some(&query.period))?;
        let rows = own_answers(conn, state, &capability, &unit, &period)?;
        Ok(web::Json(OwnAnswers {
            period: period.id.clone(),
            unit: unit.code.clone(),
            submitted_at: rows.first().map(|r| r.submitted_at.and_utc().to_rfc3339()),
            answers: rows
                .iter()
                .map(|r| {
                    (
                        r.indicator.clone(),
                        OwnAnswerBody {
                            value: r.json_value(),
                            evidence: r.evidence.expose().to_owned(),
                        },
                    )
                })
                .collect(),
        }))
    })
    .await
}
