//! Statistics endpoints (DESIGN §5): aggregate reports and charts of an
//! area (monitors, district officers), drafts and releases (district
//! officers), exports, and a school's staff figures for the plan's
//! indicators (focal points). Nothing here reaches a case row.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::PooledConnection;
use crate::stats::{self, Period, Report, StatsError, StoredReport, chart, export};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The statistics routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stats/periods").route(crate::web::get().to(periods)))
        .service(web::resource("/stats/report").route(crate::web::get().to(live_report)))
        .service(web::resource("/stats/report/export").route(crate::web::get().to(live_export)))
        .service(web::resource("/stats/chart").route(crate::web::get().to(chart_svg)))
        .service(web::resource("/stats/ad-hoc").route(crate::web::get().to(ad_hoc_report)))
        .service(web::resource("/stats/ad-hoc/export").route(crate::web::get().to(ad_hoc_export)))
        .service(
            web::resource("/stats/reports")
                .route(web::post().to(create_draft))
                .route(crate::web::get().to(list_released)),
        )
        .service(web::resource("/stats/reports/{id}").route(crate::web::get().to(read_stored)))
        .service(
            web::resource("/stats/reports/{id}/export").route(crate::web::get().to(stored_export)),
        )
        .service(web::resource("/stats/reports/{id}/release").route(web::post().to(release)))
        .service(web::resource("/stats/indicators").route(web::post().to(submit_indicators)));
}

pub(crate) fn stats_error(error: StatsError) -> ApiError {
    match error {
        StatsError::NotFound => ApiError::not_found(),
        StatsError::NotAnArea => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_an_area",
            "`area` must be the code of an area (a district, commune…): statistics are never published for one school or agency.",
        ),
        StatsError::TooFewSchools => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_few_schools",
            "This area has fewer than two schools, so its figures would be one school's; ask for the area above it.",
        ),
        StatsError::PeriodNotOver => ApiError::new(
            StatusCode::CONFLICT,
            "period_not_over",
            "The period is not over yet; a report can be released only after its last day.",
        ),
        StatsError::AlreadyReleased => ApiError::new(
            StatusCode::CONFLICT,
            "already_released",
            "A report for this area and period is already released; it never changes. Later corrections appear in the next period's report.",
        ),
        StatsError::DraftSuperseded => ApiError::new(
            StatusCode::CONFLICT,
            "draft_superseded",
            "A report of an overlapping area or period was released after this draft was computed; compute a new draft so that no figure can be worked out by subtracting one report from the other.",
        ),
        StatsError::AlreadySubmitted => ApiError::new(
            StatusCode::CONFLICT,
            "already_submitted",
            "This school already entered its figures for this period; they are entered once per period.",
        ),
        StatsError::Invalid(problems) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_figures",
            problems.join("; "),
        ),
        other => ApiError::internal(other),
    }
}

pub(super) fn period_of(state: &AppState, id: Option<&str>) -> Result<Period, ApiError> {
    let id = id.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            "`period` is required, e.g. six_month-2026.",
        )
    })?;
    state.reporting.period(id).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_period",
            format!("`period`: {e}"),
        )
    })
}

fn language(lang: Option<&str>) -> Result<&'static str, ApiError> {
    match lang {
        None | Some("vi") => Ok("vi"),
        Some("en") => Ok("en"),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "`lang` must be `vi` or `en`.",
        )),
    }
}

/// The caller's capability for `action` on the area with code `code`; an
/// unknown code is refused (and audited) like a forbidden one.
pub(super) fn area_capability(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    code: Option<&str>,
) -> Result<(Capability, crate::db::organisations::OrganisationRow), ApiError> {
    let code = code.ok_or_else(|| {
        ApiError::bad_request("invalid_query", "`area` (an area's code) is required.")
    })?;
    let area = crate::db::organisations::find_by_code(conn, code.trim())
        .map_err(crate::db::DbError::Query)?;
    let id = area.as_ref().map_or(code, |a| a.id.as_str()).to_owned();
    let capability = state
        .authz
        .check(conn, &caller.actor(), &caller.request, action, &id)?;
    Ok((capability, area.ok_or_else(ApiError::not_found)?))
}

#[derive(Serialize)]
pub struct PeriodDto {
    id: String,
    vi: String,
    en: String,
    first_day: String,
    last_day: String,
    due: Option<String>,
}

async fn periods(state: web::Data<AppState>, _caller: Caller) -> web::Json<Vec<PeriodDto>> {
    let today = state.calendar.local_date(state.clock.now());
    web::Json(
        state
            .reporting
            .recent(today)
            .into_iter()
            .map(|p| PeriodDto {
                first_day: p.first_day.to_string(),
                last_day: p.last_day.to_string(),
                due: p.due.map(|d| d.to_string()),
                id: p.id,
                vi: p.vi,
                en: p.en,
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    area: Option<String>,
    period: Option<String>,
    format: Option<String>,
    lang: Option<String>,
    table: Option<String>,
}

/// The released report, or the live one marked as such.
#[derive(Serialize)]
struct LiveDto {
    released: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    released_at: Option<String>,
    #[serde(flatten)]
    report: Report,
}

fn live(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    query: &ReportQuery,
) -> Result<(Capability, Report, Option<StoredReport>), ApiError> {
    let period = period_of(state, query.period.as_deref())?;
    let (capability, area) = area_capability(
        conn,
        state,
        caller,
        Action::StatsRead,
        query.area.as_deref(),
    )?;
    let (report, stored) =
        stats::live_or_released(conn, &state.stats_context(), &capability, &area, &period)
            .map_err(stats_error)?;
    Ok((capability, report, stored))
}

async fn live_report(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReportQuery>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let query = query.into_inner();
    blocking(&state, move |conn, state| {
        let (_, report, stored) = live(conn, state, &caller, &query)?;
        let dto = LiveDto {
            released: stored.is_some(),
            id: stored.as_ref().map(|s| s.id.clone()),
            released_at: stored.and_then(|s| s.released_at),
            report,
        };
        serde_json::to_value(dto)
            .map(web::Json)
            .map_err(ApiError::internal)
    })
    .await
}

/// A file download, made on the blocking pool (a response itself cannot
/// leave it) and sent by [`Download::respond`].
struct Download {
    bytes: Vec<u8>,
    content_type: &'static str,
    disposition: HeaderValue,
}

impl Download {
    fn respond(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ))
            .insert_header((header::CONTENT_DISPOSITION, self.disposition))
            .body(self.bytes)
    }
}

/// A file download.
fn file(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Result<Download, ApiError> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    Ok(Download {
        bytes,
        content_type,
        disposition,
    })
}

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn export_file(report: &Report, format: Option<&str>, lang: &str) -> Result<Download, ApiError> {
    let name = format!("{}-{}", report.area.code, report.period.id);
    match format {
        Some("csv") => file(
            export::csv(report, lang).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        ),
        Some("xlsx") => file(
            export::xlsx(report, lang).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            XLSX,
            &format!("{name}.xlsx"),
        ),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "`format` must be `csv` or `xlsx`.",
        )),
    }
}

fn check_format(format: Option<&str>) -> Result<&'static str, ApiError> {
    match format {
        Some("csv") => Ok("csv"),
        Some("xlsx") => Ok("xlsx"),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            "`format` must be `csv` or `xlsx`.",
        )),
    }
}

async fn live_export(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let format = check_format(query.format.as_deref())?;
    let lang = language(query.lang.as_deref())?;
    let download = blocking(&state, move |conn, state| {
        let (capability, report, _) = live(conn, state, &caller, &query)?;
        stats::audit_export(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &report.area.id,
            &report.period.id,
            format,
        )
        .map_err(stats_error)?;
        export_file(&report, Some(format), lang)
    })
    .await?;
    Ok(download.respond())
}

/// The query of an ad-hoc report: an area and a window of local days.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdHocQuery {
    area: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

fn ad_hoc(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    query: &AdHocQuery,
) -> Result<(Capability, Report), ApiError> {
    let missing = || {
        ApiError::bad_request(
            "invalid_query",
            "`from` and `to` (local days, YYYY-MM-DD) are required.",
        )
    };
    let today = state.calendar.local_date(state.clock.now());
    let window = Period::ad_hoc(
        query.from.as_deref().ok_or_else(missing)?,
        query.to.as_deref().ok_or_else(missing)?,
        today,
    )
    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_window", e))?;
    let (capability, area) = area_capability(
        conn,
        state,
        caller,
        Action::StatsRelease,
        query.area.as_deref(),
    )?;
    let report = stats::ad_hoc(conn, &state.stats_context(), &capability, &area, &window)
        .map_err(stats_error)?;
    Ok((capability, report))
}

async fn ad_hoc_report(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AdHocQuery>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let query = query.into_inner();
    blocking(&state, move |conn, state| {
        let (_, report) = ad_hoc(conn, state, &caller, &query)?;
        let dto = LiveDto {
            released: false,
            id: None,
            released_at: None,
            report,
        };
        serde_json::to_value(dto)
            .map(web::Json)
            .map_err(ApiError::internal)
    })
    .await
}

async fn ad_hoc_export(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AdHocQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let format = check_format(query.format.as_deref())?;
    let lang = language(query.lang.as_deref())?;
    let download = blocking(&state, move |conn, state| {
        let (capability, report) = ad_hoc(conn, state, &caller, &query)?;
        stats::audit_export(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &report.area.id,
            &report.period.id,
            format,
        )
        .map_err(stats_error)?;
        export_file(&report, Some(format), lang)
    })
    .await?;
    Ok(download.respond())
}

async fn chart_svg(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let lang = language(query.lang.as_deref())?;
    let table = query.table.clone().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            "`table` is required, e.g. incidents_by_type.",
        )
    })?;
    let svg = blocking(&state, move |conn, state| {
        let (_, report, _) = live(conn, state, &caller, &query)?;
        let found = report.table(&table).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_table",
                format!(
                    "`table` must be one of: {}",
                    report
                        .tables
                        .iter()
                        .map(|t| t.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        chart::svg(found, lang, &report.suppressed_mark)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml; charset=utf-8"),
        ))
        .body(svg))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    area: String,
    period: String,
}

async fn create_draft(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<DraftBody>,
) -> Result<HttpResponse, ApiError> {
    let stored = blocking(&state, move |conn, state| {
        let period = period_of(state, Some(&body.period))?;
        let (capability, area) =
            area_capability(conn, state, &caller, Action::StatsRelease, Some(&body.area))?;
        stats::draft(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &area,
            &period,
        )
        .map_err(stats_error)
    })
    .await?;
    Ok(HttpResponse::Created().json(stored))
}

#[derive(Serialize)]
pub struct ReleasedDto {
    id: String,
    period: String,
    released_at: Option<String>,
    body_sha256: String,
}

async fn list_released(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReportQuery>,
) -> Result<web::Json<Vec<ReleasedDto>>, ApiError> {
    let query = query.into_inner();
    blocking(&state, move |conn, state| {
        let (capability, area) = area_capability(
            conn,
            state,
            &caller,
            Action::StatsRead,
            query.area.as_deref(),
        )?;
        if !capability.allows(Action::StatsRead, &area.id) {
            return Err(ApiError::not_found());
        }
        let ids = crate::db::organisations::subtree_ids(conn, &area.id)
            .map_err(crate::db::DbError::Query)?;
        let rows = crate::db::stats::released_of(conn, &ids).map_err(crate::db::DbError::Query)?;
        Ok(web::Json(
            rows.into_iter()
                .map(|r| ReleasedDto {
                    id: r.id,
                    period: r.period,
                    released_at: r.released_at.map(|t| t.and_utc().to_rfc3339()),
                    body_sha256: r.body_sha256,
                })
                .collect(),
        ))
    })
    .await
}

fn stored_for(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Capability, StoredReport), ApiError> {
    let mut held = None;
    let stored = stats::stored(
        conn,
        |conn, area_id, draft| {
            let action = if draft {
                Action::StatsRelease
            } else {
                Action::StatsRead
            };
            let capability = state
                .authz
                .check(conn, &caller.actor(), &caller.request, action, area_id)
                .map_err(|_| StatsError::NotFound)?;
            held = Some(capability.clone());
            Ok(capability)
        },
        id,
    )
    .map_err(stats_error)?;
    Ok((held.ok_or_else(ApiError::not_found)?, stored))
}

async fn read_stored(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<StoredReport>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        Ok(web::Json(stored_for(conn, state, &caller, &id)?.1))
    })
    .await
}

async fn stored_export(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let query = query.into_inner();
    let format = check_format(query.format.as_deref())?;
    let lang = language(query.lang.as_deref())?;
    let download = blocking(&state, move |conn, state| {
        let (capability, stored) = stored_for(conn, state, &caller, &id)?;
        stats::audit_export(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &stored.report.area.id,
            &stored.report.period.id,
            format,
        )
        .map_err(stats_error)?;
        export_file(&stored.report, Some(format), lang)
    })
    .await?;
    Ok(download.respond())
}

async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<StoredReport>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let row = crate::db::stats::find_report(conn, &id).map_err(crate::db::DbError::Query)?;
        let area_id = row
            .as_ref()
            .map_or(id.as_str(), |r| r.area_id.as_str())
            .to_owned();
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::StatsRelease,
            &area_id,
        )?;
        stats::release(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &id,
        )
        .map(web::Json)
        .map_err(stats_error)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureBody {
    women: u32,
    men: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsBody {
    period: String,
    figures: BTreeMap<String, FigureBody>,
}

async fn submit_indicators(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<IndicatorsBody>,
) -> Result<HttpResponse, ApiError> {
    blocking(&state, move |conn, state| {
        let school_id = caller.user.org_id.clone();
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::IndicatorsSubmit,
            &school_id,
        )?;
        let period = period_of(state, Some(&body.period))?;
        let school = crate::db::organisations::find(conn, &school_id)
            .map_err(crate::db::DbError::Query)?
            .ok_or_else(ApiError::not_found)?;
        let figures = body
            .figures
            .into_iter()
            .map(|(code, f)| (code, (f.women, f.men)))
            .collect();
        stats::indicators::submit(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &school,
            &period,
            &figures,
        )
        .map_err(stats_error)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().finish())
}
