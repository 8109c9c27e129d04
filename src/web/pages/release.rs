//! Reviewing and releasing a report from the web (district officers): the
//! statistics page's "prepare for release" computes a draft (audited); the
//! review page shows the draft's tables and asks for a confirmation; the
//! release is the API's (same rules: the period over, nothing released for
//! the area and period, no overlapping release since the draft). After it
//! the statistics page shows the released report and its downloads.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::stats::{TableView, table_views};
use super::{CsrfForm, Frame, PageUser, failure_page, granted, not_found, render_with, see_other};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::DbError;
use crate::stats::{StatsError, StoredReport};
use crate::web::error::ApiError;
use crate::web::{AppState, blocking};

#[derive(askama::Template)]
#[template(path = "pages/release.html")]
pub struct ReviewPage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub area: String,
    pub period: String,
    pub window: String,
    pub sha: String,
    pub problem: Option<String>,
    pub confirm_error: Option<String>,
    pub tables: Vec<TableView>,
}

/// The message key of a refused draft or release.
fn refusal_key(error: &StatsError) -> Option<&'static str> {
    match error {
        StatsError::PeriodNotOver => Some("release-problem-not-over"),
        StatsError::AlreadyReleased => Some("release-problem-already"),
        StatsError::DraftSuperseded => Some("release-problem-superseded"),
        StatsError::NotAnArea | StatsError::TooFewSchools => Some("release-problem-area"),
        _ => None,
    }
}

/// The caller's capability to release reports of `area_id`, or `None`.
fn release_capability(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &crate::authn::caller::Caller,
    area_id: &str,
) -> Result<Option<Capability>, ApiError> {
    Ok(granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::StatsRelease,
        area_id,
    ))?)
}

/// POST /stats/drafts: computes a draft of the caller's area for the
/// period, then shows it for review.
pub async fn prepare(state: web::Data<AppState>, user: PageUser, form: CsrfForm) -> HttpResponse {
    let caller = user.caller.clone();
    let period = form
        .get("period")
        .and_then(|p| state.reporting.period(&p).ok());
    let Some(period) = period else {
        return not_found(Frame::for_user(&user, &state, "/stats"));
    };
    let done = blocking(&state, move |conn, state| {
        let org_id = caller.user.org_id.clone();
        let Some(capability) = release_capability(conn, state, &caller, &org_id)? else {
            return Ok(None);
        };
        let Some(area) = crate::db::organisations::find(conn, &org_id).map_err(DbError::Query)?
        else {
            return Ok(None);
        };
        match crate::stats::draft(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &area,
            &period,
        ) {
            Ok(stored) => Ok(Some(Ok(stored.id))),
            Err(error) => match refusal_key(&error) {
                Some(key) => Ok(Some(Err(key))),
                None if matches!(error, StatsError::NotFound) => Ok(None),
                None => Err(super::super::api::stats::stats_error(error)),
            },
        }
    })
    .await;
    match done {
        Ok(Some(Ok(id))) => see_other(&format!("/stats/drafts/{id}")),
        Ok(Some(Err(key))) => {
            let t = user.tr(&state);
            super::plain_page(StatusCode::UNPROCESSABLE_ENTITY, &t.t(key))
        }
        Ok(None) => not_found(Frame::for_user(&user, &state, "/stats")),
        Err(error) => failure_page(&error),
    }
}

/// A draft the caller may release, or `None`.
fn draft_for(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &crate::authn::caller::Caller,
    id: &str,
) -> Result<Option<(Capability, StoredReport)>, ApiError> {
    let mut held = None;
    let found = crate::stats::stored(
        conn,
        |conn, area_id, _| {
            let capability = release_capability(conn, state, caller, area_id)
                .map_err(|_| StatsError::NotFound)?
                .ok_or(StatsError::NotFound)?;
            held = Some(capability.clone());
            Ok(capability)
        },
        id,
    );
    match found {
        Ok(stored) => Ok(held.map(|c| (c, stored))),
        Err(StatsError::NotFound) => Ok(None),
        Err(error) => Err(super::super::api::stats::stats_error(error)),
    }
}

fn review_page(
    state: &AppState,
    user: &PageUser,
    stored: &StoredReport,
    problem: Option<String>,
    confirm_error: Option<String>,
) -> HttpResponse {
    let frame = Frame::for_user(user, state, "/stats");
    let t = frame.t;
    let lang = user.lang.code();
    let report = &stored.report;
    let status = if problem.is_some() || confirm_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let period = state.reporting.period(&report.period.id).ok();
    render_with(
        status,
        &ReviewPage {
            id: stored.id.clone(),
            area: report.area.name.clone(),
            period: period
                .as_ref()
                .map_or_else(|| report.period.id.clone(), |p| p.label(lang).to_owned()),
            window: period.as_ref().map_or_else(String::new, |p| {
                format!("{} – {}", t.date(p.first_day), t.date(p.last_day))
            }),
            sha: stored.body_sha256.clone(),
            tables: table_views(
                &t,
                lang,
                report,
                Some((&report.area.code, &report.period.id)),
            ),
            problem,
            confirm_error,
            frame,
        },
    )
}

/// GET /stats/drafts/{id}: the draft's tables and the confirmation.
pub async fn review(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
) -> HttpResponse {
    let caller = user.caller.clone();
    let id = path.into_inner();
    let found = blocking(&state, move |conn, state| {
        draft_for(conn, state, &caller, &id)
    })
    .await;
    match found {
        Ok(Some((_, stored))) if stored.status == "released" => {
            see_other(&format!("/stats?period={}", stored.report.period.id))
        }
        Ok(Some((_, stored))) => review_page(&state, &user, &stored, None, None),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/stats")),
        Err(error) => failure_page(&error),
    }
}

/// POST /stats/drafts/{id}/release: releases the draft once confirmed;
/// the statistics page then shows the released report and its downloads.
pub async fn release(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let caller = user.caller.clone();
    let id = path.into_inner();
    let confirmed = form.get("confirm").as_deref() == Some("yes");
    let done = blocking(&state, move |conn, state| {
        let Some((capability, stored)) = draft_for(conn, state, &caller, &id)? else {
            return Ok(None);
        };
        if !confirmed {
            return Ok(Some((stored, Err("release-confirm-needed"))));
        }
        match crate::stats::release(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &id,
        ) {
            Ok(released) => Ok(Some((released, Ok(())))),
            Err(error) => match refusal_key(&error) {
                Some(key) => Ok(Some((stored, Err(key)))),
                None if matches!(error, StatsError::NotFound) => Ok(None),
                None => Err(super::super::api::stats::stats_error(error)),
            },
        }
    })
    .await;
    let t = user.tr(&state);
    match done {
        Ok(Some((released, Ok(())))) => see_other(&format!(
            "/stats?period={}#stats-downloads",
            released.report.period.id
        )),
        Ok(Some((stored, Err("release-confirm-needed")))) => review_page(
            &state,
            &user,
            &stored,
            None,
            Some(t.t("release-confirm-needed")),
        ),
        Ok(Some((stored, Err(key)))) => review_page(&state, &user, &stored, Some(t.t(key)), None),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/stats")),
        Err(error) => failure_page(&error),
    }
}
