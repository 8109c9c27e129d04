//! The statistics page of an area (monitors, district officers): the
//! report's tables after disclosure control, with their charts (SVG from
//! the statistics API, same origin), KPIs and notes. Never a case.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::cases::Choice;
use super::{Frame, PageUser, not_found, render};
use crate::authz::Action;
use crate::stats::report::Cell;
use crate::web::AppState;

pub struct TableView {
    pub code: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>, String)>,
    pub column_totals: Vec<String>,
    pub total: String,
    pub chart: String,
}

#[derive(askama::Template)]
#[template(path = "pages/stats.html")]
pub struct StatsPage<'a> {
    pub frame: Frame<'a>,
    pub area: String,
    pub period: String,
    /// The shown period's code, marked in the period list.
    pub selected: String,
    pub periods: Vec<Choice>,
    pub released: bool,
    pub tables: Vec<TableView>,
    pub kpis: Vec<(String, String)>,
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
pub struct StatsQuery {
    period: Option<String>,
}

fn cell(t: &crate::web::i18n::Tr<'_>, cell: &Cell) -> String {
    match cell {
        Cell::Count(n) => t.number(i64::try_from(*n).unwrap_or(i64::MAX)),
        Cell::Hidden(mark) => mark.clone(),
    }
}

pub async fn stats(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<StatsQuery>,
) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || -> Response {
        let frame = Frame::for_user(&user, &state2, "/stats");
        let t = frame.t;
        let lang = user.lang.code();
        let Ok(mut conn) = state2.db.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let caller = &user.caller;
        let org_id = caller.user.org_id.clone();
        let Ok(capability) = state2.authz.check(
            &mut conn,
            &caller.actor(),
            &caller.request,
            Action::StatsRead,
            &org_id,
        ) else {
            return not_found(frame);
        };
        let Ok(Some(area)) = crate::db::organisations::find(&mut conn, &org_id) else {
            return not_found(frame);
        };
        let recent = state2
            .reporting
            .recent(state2.calendar.local_date(state2.clock.now()));
        let period = match query.period.as_deref() {
            Some(id) => state2.reporting.period(id).ok(),
            None => recent.first().cloned(),
        };
        let Some(period) = period else {
            return not_found(frame);
        };
        let computed = crate::stats::live_or_released(
            &mut conn,
            &state2.stats_context(),
            &capability,
            &area,
            &period,
        );
        let (report, stored) = match computed {
            Ok(found) => found,
            Err(crate::stats::StatsError::NotFound) => return not_found(frame),
            Err(error) => {
                tracing::warn!(%error, "the statistics page could not be computed");
                return not_found(frame);
            }
        };
        let tables = report
            .tables
            .iter()
            .map(|table| TableView {
                code: table.code.clone(),
                title: if lang == "en" {
                    table.en.clone()
                } else {
                    table.vi.clone()
                },
                columns: table
                    .columns
                    .iter()
                    .map(|c| c.text(lang).to_owned())
                    .collect(),
                rows: table
                    .rows
                    .iter()
                    .zip(&table.cells)
                    .zip(&table.row_totals)
                    .map(|((label, cells), total)| {
                        (
                            label.text(lang).to_owned(),
                            cells.iter().map(|c| cell(&t, c)).collect(),
                            cell(&t, total),
                        )
                    })
                    .collect(),
                column_totals: table.column_totals.iter().map(|c| cell(&t, c)).collect(),
                total: cell(&t, &table.total),
                chart: format!(
                    "/api/v1/stats/chart?area={}&period={}&table={}&lang={lang}",
                    area.code, period.id, table.code
                ),
            })
            .collect();
        let kpis = report
            .kpis
            .iter()
            .map(|k| {
                let value = k.value.map_or_else(
                    || report.suppressed_mark.clone(),
                    |v| match k.unit.as_str() {
                        "percent" => format!("{v:.0} %"),
                        "hours" => t.t1("span-hours", "n", format!("{v:.0}")),
                        _ => t.t1("span-days", "n", format!("{v:.0}")),
                    },
                );
                (
                    if lang == "en" {
                        k.en.clone()
                    } else {
                        k.vi.clone()
                    },
                    value,
                )
            })
            .collect();
        let notes = report
            .notes
            .iter()
            .map(|n| {
                if lang == "en" {
                    n.en.clone()
                } else {
                    n.vi.clone()
                }
            })
            .collect();
        render(&StatsPage {
            area: area.name.clone(),
            selected: period.id.clone(),
            period: if lang == "en" {
                period.en.clone()
            } else {
                period.vi.clone()
            },
            periods: recent
                .iter()
                .map(|p| Choice {
                    code: p.id.clone(),
                    label: if lang == "en" {
                        p.en.clone()
                    } else {
                        p.vi.clone()
                    },
                })
                .collect(),
            released: stored.is_some(),
            tables,
            kpis,
            notes,
            frame,
        })
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
