//! The statistics page of an area (monitors, district officers): the
//! report's tables after disclosure control, with their charts (SVG from
//! the statistics API, same origin), KPIs and notes. Never a case.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::cases::Choice;
use super::granted;
use super::{Frame, PageUser, failure_page, not_found, render};
use crate::authz::Action;
use crate::db::DbError;
use crate::db::organisations::OrganisationRow;
use crate::stats::report::{Cell, Report};
use crate::stats::{Period, StatsError, StoredReport};
use crate::web::error::ApiError;
use crate::web::{AppState, blocking};

pub struct TableView {
    pub code: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>, String)>,
    pub column_totals: Vec<String>,
    pub total: String,
    pub chart: String,
    /// How to read the table, when its totals are not a count of people or
    /// incidents (an incident with several contexts counts in each).
    pub note: String,
}

#[derive(askama::Template)]
#[template(path = "pages/stats.html")]
pub struct StatsPage<'a> {
    pub frame: Frame<'a>,
    pub area: String,
    pub period: String,
    /// The period's data window (local days, both included), as data from
    /// `policies/reporting.toml`, and its due date.
    pub window: String,
    pub due: Option<String>,
    /// The shown period's code, marked in the period list.
    pub selected: String,
    pub periods: Vec<Choice>,
    pub released: bool,
    /// The report as a CSV and an XLSX file: the released report when there
    /// is one, else the live view (each download is audited).
    pub downloads: Vec<(String, String)>,
    pub tables: Vec<TableView>,
    pub kpis: Vec<(String, String)>,
    /// The plan's staff indicators (from the schools' staff figures).
    pub staff: StaffView,
    pub notes: Vec<String>,
    /// Whether the caller may ask for an ad-hoc window (issue 17), and the
    /// window asked for (local days, as typed).
    pub ad_hoc: bool,
    pub from: String,
    pub to: String,
    /// The ad-hoc window asked for was not valid (the period is shown).
    pub ad_hoc_invalid: bool,
}

/// The staff indicators of the report: one column per area, one row per
/// indicator with its target; each value with whether it meets it.
#[derive(Default)]
pub struct StaffView {
    pub areas: Vec<String>,
    pub schools: Vec<String>,
    pub rows: Vec<(String, String, Vec<String>)>,
}

fn staff_view(
    t: &crate::web::i18n::Tr<'_>,
    lang: &str,
    mark: &str,
    areas: &[crate::stats::indicators::AreaIndicators],
) -> StaffView {
    let Some(first) = areas.first() else {
        return StaffView::default();
    };
    let percent = |v: f64| {
        let text = format!("{v:.1}");
        if lang == "en" {
            text
        } else {
            text.replace('.', ",")
        }
    };
    StaffView {
        areas: areas.iter().map(|a| a.name.clone()).collect(),
        schools: areas
            .iter()
            .map(|a| {
                a.schools_reporting.map_or_else(
                    || mark.to_owned(),
                    |n| t.number(i64::try_from(n).unwrap_or(0)),
                )
            })
            .collect(),
        rows: first
            .values
            .iter()
            .map(|indicator| {
                let target = match indicator.comparison {
                    crate::stats::policy::Comparison::AtLeast => {
                        t.t1("ui-target-at-least", "n", indicator.target_percent)
                    }
                    crate::stats::policy::Comparison::Above => {
                        t.t1("ui-target-above", "n", indicator.target_percent)
                    }
                };
                let values = areas
                    .iter()
                    .map(|area| {
                        let value = area.values.iter().find(|v| v.code == indicator.code);
                        match value.and_then(|v| v.percent.map(|p| (p, v.met))) {
                            Some((p, met)) => format!(
                                "{} % ({})",
                                percent(p),
                                t.t(if met == Some(true) {
                                    "ui-met"
                                } else {
                                    "ui-not-met"
                                })
                            ),
                            None => mark.to_owned(),
                        }
                    })
                    .collect();
                (
                    if lang == "en" {
                        indicator.en.clone()
                    } else {
                        indicator.vi.clone()
                    },
                    target,
                    values,
                )
            })
            .collect(),
    }
}

#[derive(Deserialize)]
pub struct StatsQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn cell(t: &crate::web::i18n::Tr<'_>, cell: &Cell) -> String {
    match cell {
        Cell::Count(n) => t.number(i64::try_from(*n).unwrap_or(i64::MAX)),
        Cell::Hidden(mark) => mark.clone(),
    }
}

/// What the statistics page shows: the area, the period shown, the recent
/// periods, the report and whether it is the released one.
type Shown = (
    OrganisationRow,
    Period,
    Vec<Period>,
    Report,
    Option<StoredReport>,
    AdHoc,
);

/// Whether the caller may ask for ad-hoc windows; whether the one asked
/// for is shown, or was invalid.
#[derive(Clone, Copy, Default)]
struct AdHoc {
    allowed: bool,
    shown: bool,
    invalid: bool,
}

/// The report of the caller's area for the period asked for (else the
/// newest), or `None` for the not-found page. The database failing is the
/// page's failure, never "not found".
fn load(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &crate::authn::caller::Caller,
    period: Option<&str>,
    window: Option<(&str, &str)>,
) -> Result<Option<Shown>, ApiError> {
    let org_id = caller.user.org_id.clone();
    let Some(capability) = granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::StatsRead,
        &org_id,
    ))?
    else {
        return Ok(None);
    };
    let Some(area) = crate::db::organisations::find(conn, &org_id).map_err(DbError::Query)? else {
        return Ok(None);
    };
    let recent = state
        .reporting
        .recent(state.calendar.local_date(state.clock.now()));
    let period = match period {
        Some(id) => state.reporting.period(id).ok(),
        None => recent.first().cloned(),
    };
    let Some(mut period) = period else {
        return Ok(None);
    };
    let mut ad_hoc = AdHoc {
        allowed: granted(
            state
                .authz
                .may(conn, &caller.actor(), Action::StatsRelease, &org_id),
        )?
        .unwrap_or(false),
        ..AdHoc::default()
    };
    let today = state.calendar.local_date(state.clock.now());
    let asked = window
        .filter(|_| ad_hoc.allowed)
        .map(|(from, to)| Period::ad_hoc(from, to, today));
    let computed = match asked {
        Some(Ok(window)) => {
            let Some(release) = granted(state.authz.check(
                conn,
                &caller.actor(),
                &caller.request,
                Action::StatsRelease,
                &org_id,
            ))?
            else {
                return Ok(None);
            };
            ad_hoc.shown = true;
            period = window;
            crate::stats::ad_hoc(conn, &state.stats_context(), &release, &area, &period)
                .map(|report| (report, None))
        }
        other => {
            ad_hoc.invalid = matches!(other, Some(Err(_)));
            crate::stats::live_or_released(
                conn,
                &state.stats_context(),
                &capability,
                &area,
                &period,
            )
        }
    };
    match computed {
        Ok((report, stored)) => Ok(Some((area, period, recent, report, stored, ad_hoc))),
        Err(StatsError::NotFound) => Ok(None),
        Err(StatsError::Db(error)) => Err(error.into()),
        Err(error @ (StatsError::Audit(_) | StatsError::Stored(_))) => {
            Err(ApiError::internal(error))
        }
        Err(error) => {
            tracing::warn!(%error, "the statistics page could not be computed");
            Ok(None)
        }
    }
}

/// The report's tables as the pages show them, each with its chart (from
/// the statistics API, same origin) when `chart` names the area and period
/// to draw (an ad-hoc window has no period, so no chart).
pub fn table_views(
    t: &crate::web::i18n::Tr<'_>,
    lang: &str,
    report: &Report,
    chart: Option<(&str, &str)>,
) -> Vec<TableView> {
    report
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
                        cells.iter().map(|c| cell(t, c)).collect(),
                        cell(t, total),
                    )
                })
                .collect(),
            column_totals: table.column_totals.iter().map(|c| cell(t, c)).collect(),
            total: cell(t, &table.total),
            note: if table.code.starts_with("incidents_by_context") {
                t.t("stats-contexts-note")
            } else {
                String::new()
            },
            chart: chart.map_or_else(String::new, |(area_code, period_id)| {
                format!(
                    "/api/v1/stats/chart?area={area_code}&period={period_id}&table={}&lang={lang}",
                    table.code
                )
            }),
        })
        .collect()
}

pub async fn stats(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<StatsQuery>,
) -> HttpResponse {
    let caller = user.caller.clone();
    let query = query.into_inner();
    let (from, to) = (
        query.from.clone().unwrap_or_default(),
        query.to.clone().unwrap_or_default(),
    );
    let asked = query.period;
    let window = query.from.zip(query.to);
    let loaded = blocking(&state, move |conn, state| {
        load(
            conn,
            state,
            &caller,
            asked.as_deref(),
            window.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        )
    })
    .await;
    let frame = Frame::for_user(&user, &state, "/stats");
    let (area, period, recent, report, stored, ad_hoc) = match loaded {
        Ok(Some(shown)) => shown,
        Ok(None) => return not_found(frame),
        Err(error) => return failure_page(&error),
    };
    let t = frame.t;
    let lang = user.lang.code();
    // The chart endpoint draws periods; an ad-hoc window has none.
    let chart = (!ad_hoc.shown).then_some((area.code.as_str(), period.id.as_str()));
    let tables = table_views(&t, lang, &report, chart);
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
        window: format!("{} – {}", t.date(period.first_day), t.date(period.last_day)),
        due: period.due.map(|d| t.date(d)),
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
        downloads: ["csv", "xlsx"]
            .iter()
            .map(|format| {
                let href = match &stored {
                    None if ad_hoc.shown => format!(
                        "/api/v1/stats/ad-hoc/export?area={}&from={}&to={}&format={format}&lang={lang}",
                        area.code, period.first_day, period.last_day
                    ),
                    Some(stored) => format!(
                        "/api/v1/stats/reports/{}/export?format={format}&lang={lang}",
                        stored.id
                    ),
                    None => format!(
                        "/api/v1/stats/report/export?area={}&period={}&format={format}&lang={lang}",
                        area.code, period.id
                    ),
                };
                (format.to_uppercase(), href)
            })
            .collect(),
        released: stored.is_some(),
        tables,
        kpis,
        staff: staff_view(&t, lang, &report.suppressed_mark, &report.indicators),
        notes,
        ad_hoc: ad_hoc.allowed,
        from,
        to,
        ad_hoc_invalid: ad_hoc.invalid,
        frame,
    })
}
