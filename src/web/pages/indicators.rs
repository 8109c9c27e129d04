//! The plan's non-count targets from the web: a unit enters its answers
//! with their evidence notes (its focal points); the area's values against
//! the targets with the trend, and who has answered and who is late
//! (monitors, district officers). Never a case.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::cases::Choice;
use super::{CsrfForm, Frame, PageUser, failure_page, granted, not_found, render_with, see_other};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::DbError;
use crate::db::organisations::OrganisationRow;
use crate::stats::Period;
use crate::stats::policy::{Evidence, UnitIndicatorKind};
use crate::stats::unit_indicators::{
    self, Answers, OwnAnswer, Part, Problem, RawAnswer, RawValue, Standing,
};
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::{AppState, blocking};

#[derive(Deserialize)]
pub struct PeriodQuery {
    period: Option<String>,
    saved: Option<String>,
}

/// One field of the entry form.
pub struct EntryField {
    pub code: String,
    pub label: String,
    pub yes_no: bool,
    pub evidence_required: bool,
    /// What was typed (kept after a refusal).
    pub value: String,
    pub evidence: String,
    pub value_error: Option<String>,
    pub evidence_error: Option<String>,
}

/// One answer shown back after entry.
pub struct ShownAnswer {
    pub label: String,
    pub value: String,
    pub evidence: String,
}

#[derive(askama::Template)]
#[template(path = "pages/indicators_entry.html")]
pub struct EntryPage<'a> {
    pub frame: Frame<'a>,
    pub unit: String,
    pub periods: Vec<Choice>,
    pub selected: String,
    pub period: String,
    pub due: Option<String>,
    pub fields: Vec<EntryField>,
    /// Problems not tied to one field (the period, an unknown indicator).
    pub problems: Vec<String>,
    pub submitted: Option<String>,
    pub answers: Vec<ShownAnswer>,
    pub saved: bool,
}

impl EntryPage<'_> {
    fn has_field_errors(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.value_error.is_some() || f.evidence_error.is_some())
    }
}

/// The caller's unit and its capability to enter indicators, or `None`.
fn own_unit(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &crate::authn::caller::Caller,
) -> Result<Option<(Capability, OrganisationRow)>, ApiError> {
    let org_id = caller.user.org_id.clone();
    let Some(capability) = granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::IndicatorsSubmit,
        &org_id,
    ))?
    else {
        return Ok(None);
    };
    let unit = crate::db::organisations::find(conn, &org_id).map_err(DbError::Query)?;
    Ok(unit.filter(|u| u.kind == "school").map(|u| (capability, u)))
}

fn choices(periods: &[Period], lang: &str) -> Vec<Choice> {
    periods
        .iter()
        .map(|p| Choice {
            code: p.id.clone(),
            label: p.label(lang).to_owned(),
        })
        .collect()
}

/// The collected periods that have started, newest first, and the one
/// asked for (else the newest).
fn periods_and_pick(state: &AppState, asked: Option<&str>) -> (Vec<Period>, Option<Period>) {
    let today = state.calendar.local_date(state.clock.now());
    let recent = state.reporting.collected_recent(today);
    let picked = match asked {
        Some(id) => state.reporting.period(id).ok(),
        None => recent.first().cloned(),
    };
    (recent, picked)
}

fn shown_value(t: &Tr<'_>, row: &OwnAnswer) -> String {
    if row.kind == UnitIndicatorKind::YesNo {
        t.t(if row.value == 1 { "ui-yes" } else { "ui-no" })
    } else {
        let whole = row.value / 10;
        let tenth = row.value % 10;
        let mark = if t.lang.code() == "en" { '.' } else { ',' };
        if tenth == 0 {
            format!("{whole} %")
        } else {
            format!("{whole}{mark}{tenth} %")
        }
    }
}

/// Renders the entry page for `period` with what was typed and the
/// problems found.
#[expect(clippy::too_many_arguments, reason = "one page's parts")]
fn entry_page(
    state: &AppState,
    user: &PageUser,
    unit: &OrganisationRow,
    recent: &[Period],
    period: &Period,
    typed: Option<&Answers>,
    problems: &[Problem],
    shown: (Vec<OwnAnswer>, bool),
) -> HttpResponse {
    let frame = Frame::for_user(user, state, "/indicators/entry");
    let t = user.tr(state);
    let lang = user.lang.code();
    let (rows, saved) = shown;
    let label_of = |code: &str| {
        state
            .reporting
            .unit_indicator(code)
            .map_or_else(|| code.to_owned(), |u| u.label(lang).to_owned())
    };
    let message = |p: &Problem| t.t1(p.message_key(), "indicator", label_of(&p.indicator));
    let fields = state
        .reporting
        .unit_indicators_of(period)
        .into_iter()
        .map(|u| {
            let answer = typed.and_then(|a| a.get(&u.code));
            let error = |part: Part| {
                problems
                    .iter()
                    .find(|p| p.indicator == u.code && p.part == part)
                    .map(&message)
            };
            EntryField {
                code: u.code.clone(),
                label: u.label(lang).to_owned(),
                yes_no: u.kind == UnitIndicatorKind::YesNo,
                evidence_required: u.evidence == Evidence::Required,
                value: match answer.and_then(|a| a.value.as_ref()) {
                    Some(RawValue::Text(text)) => text.clone(),
                    _ => String::new(),
                },
                evidence: answer.and_then(|a| a.evidence.clone()).unwrap_or_default(),
                value_error: error(Part::Value),
                evidence_error: error(Part::Evidence),
            }
        })
        .collect();
    let wanted = state.reporting.unit_indicators_of(period);
    let general = problems
        .iter()
        .filter(|p| p.part == Part::Period || !wanted.iter().any(|u| u.code == p.indicator))
        .map(&message)
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let submitted = rows.first().map(|r| t.datetime(r.submitted_at));
    let answers = rows
        .iter()
        .map(|r| ShownAnswer {
            label: label_of(&r.indicator),
            value: shown_value(&t, r),
            evidence: r.evidence.expose().to_owned(),
        })
        .collect();
    render_with(
        status,
        &EntryPage {
            unit: unit.name.clone(),
            periods: choices(recent, lang),
            selected: period.id.clone(),
            period: period.label(lang).to_owned(),
            due: period.due.map(|d| t.date(d)),
            fields,
            problems: general,
            submitted,
            answers,
            saved,
            frame,
        },
    )
}

/// GET /indicators/entry: the unit's form for a period, or its answers.
pub async fn entry(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<PeriodQuery>,
) -> HttpResponse {
    let caller = user.caller.clone();
    let (recent, picked) = periods_and_pick(&state, query.period.as_deref());
    let saved = query.saved.is_some();
    let Some(period) = picked else {
        return not_found(Frame::for_user(&user, &state, "/indicators/entry"));
    };
    let shown_period = period.clone();
    let loaded = blocking(&state, move |conn, state| {
        let Some((capability, unit)) = own_unit(conn, state, &caller)? else {
            return Ok(None);
        };
        let rows = super::super::api::indicators::own_answers(
            conn,
            state,
            &capability,
            &unit,
            &shown_period,
        )?;
        Ok(Some((unit, rows)))
    })
    .await;
    match loaded {
        Ok(Some((unit, rows))) => entry_page(
            &state,
            &user,
            &unit,
            &recent,
            &period,
            None,
            &[],
            (rows, saved),
        ),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/indicators/entry")),
        Err(error) => failure_page(&error),
    }
}

/// The answers typed into the form: `v-<code>` and `e-<code>`.
fn typed_answers(form: &CsrfForm) -> Answers {
    let mut answers = Answers::new();
    for (key, value) in &form.pairs {
        let (code, evidence) = match (key.strip_prefix("v-"), key.strip_prefix("e-")) {
            (Some(code), _) => (code, false),
            (_, Some(code)) => (code, true),
            _ => continue,
        };
        let entry = answers.entry(code.to_owned()).or_insert(RawAnswer {
            value: None,
            evidence: None,
        });
        if evidence {
            entry.evidence = Some(value.clone());
        } else {
            entry.value = Some(RawValue::Text(value.clone()));
        }
    }
    answers
}

/// POST /indicators/entry: stores the unit's answers, or shows the form
/// again with each problem at its field (nothing stored).
pub async fn submit(state: web::Data<AppState>, user: PageUser, form: CsrfForm) -> HttpResponse {
    let caller = user.caller.clone();
    let today = state.calendar.local_date(state.clock.now());
    let recent = state.reporting.collected_recent(today);
    let asked = form.get("period").unwrap_or_default();
    let answers = typed_answers(&form);
    let period = state.reporting.period(&asked).ok();
    let typed = answers.clone();
    let for_period = period.clone();
    let done = blocking(&state, move |conn, state| {
        let Some((capability, unit)) = own_unit(conn, state, &caller)? else {
            return Ok(None);
        };
        let Some(period) = for_period else {
            return Ok(Some((unit, Err(None))));
        };
        let result = unit_indicators::submit(
            conn,
            &state.stats_context(),
            &state.keyring.current(),
            &state.auditor,
            &capability,
            &unit,
            &period,
            &typed,
        );
        match result {
            Ok(()) => Ok(Some((unit, Ok(())))),
            Err(unit_indicators::SubmitError::Invalid(problems)) => {
                Ok(Some((unit, Err(Some(problems)))))
            }
            Err(unit_indicators::SubmitError::Stats(
                crate::stats::StatsError::AlreadySubmitted,
            )) => Ok(Some((unit, Err(Some(already()))))),
            Err(unit_indicators::SubmitError::Stats(crate::stats::StatsError::NotFound)) => {
                Ok(None)
            }
            Err(unit_indicators::SubmitError::Stats(other)) => {
                Err(super::super::api::stats::stats_error(other))
            }
        }
    })
    .await;
    let frame = || Frame::for_user(&user, &state, "/indicators/entry");
    match (done, period) {
        (Ok(Some((_, Ok(())))), Some(period)) => {
            see_other(&format!("/indicators/entry?period={}&saved=1", period.id))
        }
        (Ok(Some((unit, Err(None)))), _) | (Ok(Some((unit, _))), None) => {
            // An unknown period: the form of the newest, with the problem.
            let Some(newest) = recent.first().cloned() else {
                return not_found(frame());
            };
            let problem = Problem {
                indicator: "period".into(),
                part: Part::Period,
                rule: unit_indicators::Rule::PeriodNotCollected,
            };
            entry_page(
                &state,
                &user,
                &unit,
                &recent,
                &newest,
                Some(&answers),
                &[problem],
                (Vec::new(), false),
            )
        }
        (Ok(Some((unit, Err(Some(problems))))), Some(period)) => entry_page(
            &state,
            &user,
            &unit,
            &recent,
            &period,
            Some(&answers),
            &problems,
            (Vec::new(), false),
        ),
        (Ok(None), _) => not_found(frame()),
        (Err(error), _) => failure_page(&error),
    }
}

/// The "already entered" refusal as a problem of the period.
fn already() -> Vec<Problem> {
    vec![Problem {
        indicator: "period".into(),
        part: Part::Period,
        rule: unit_indicators::Rule::AlreadyEntered,
    }]
}

/// One unit's line on the late-submission page.
pub struct StatusLine {
    pub name: String,
    pub state: String,
    pub class: &'static str,
    pub when: String,
    pub reminders: usize,
}

#[derive(askama::Template)]
#[template(path = "pages/indicators_status.html")]
pub struct StatusPage<'a> {
    pub frame: Frame<'a>,
    pub area: String,
    pub periods: Vec<Choice>,
    pub selected: String,
    pub period: String,
    /// The period's data window (local days), as on every report.
    pub window: String,
    pub due: Option<String>,
    pub lines: Vec<StatusLine>,
    pub submitted: usize,
    pub late: usize,
    pub pending: usize,
}

/// The caller's area and its capability to read statistics, or `None`.
fn own_area(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &crate::authn::caller::Caller,
) -> Result<Option<(Capability, OrganisationRow)>, ApiError> {
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
    let area = crate::db::organisations::find(conn, &org_id).map_err(DbError::Query)?;
    Ok(area.map(|a| (capability, a)))
}

/// What the status and progress pages share: the period asked for (else
/// the latest collected one), the caller's own area and `compute` over
/// them; `None` when the period or the area is not the caller's to see.
async fn of_own_area<T: Send + 'static>(
    state: &AppState,
    user: &PageUser,
    asked: Option<&str>,
    compute: fn(
        &mut crate::db::DbConnection,
        &crate::stats::StatsContext<'_>,
        &Capability,
        &OrganisationRow,
        &Period,
    ) -> Result<T, crate::stats::StatsError>,
) -> Result<Option<(Vec<Period>, Period, OrganisationRow, T)>, ApiError> {
    let (recent, picked) = periods_and_pick(state, asked);
    let Some(period) = picked else {
        return Ok(None);
    };
    let caller = user.caller.clone();
    let for_period = period.clone();
    let found = blocking(state, move |conn, state| {
        let Some((capability, area)) = own_area(conn, state, &caller)? else {
            return Ok(None);
        };
        compute(
            conn,
            &state.stats_context(),
            &capability,
            &area,
            &for_period,
        )
        .map(|computed| Some((area, computed)))
        .map_err(super::super::api::stats::stats_error)
    })
    .await?;
    Ok(found.map(|(area, computed)| (recent, period, area, computed)))
}

/// GET /indicators/status: per period, which units have entered their
/// indicators and which are late.
pub async fn status(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<PeriodQuery>,
) -> HttpResponse {
    let frame = Frame::for_user(&user, &state, "/indicators/status");
    let (recent, period, area, units) = match of_own_area(
        &state,
        &user,
        query.period.as_deref(),
        unit_indicators::status,
    )
    .await
    {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(frame),
        Err(error) => return failure_page(&error),
    };
    let t = frame.t;
    let lang = user.lang.code();
    let (mut submitted, mut late, mut pending) = (0, 0, 0);
    let lines = units
        .into_iter()
        .map(|u| {
            let (state_key, class, when) = match &u.standing {
                Standing::Submitted { at, late: was_late } => {
                    submitted += 1;
                    let at = chrono::DateTime::parse_from_rfc3339(at)
                        .map(|a| t.datetime(a.naive_utc()))
                        .unwrap_or_default();
                    (
                        if *was_late {
                            "ui-state-submitted-late"
                        } else {
                            "ui-state-submitted"
                        },
                        "ok",
                        at,
                    )
                }
                Standing::Late => {
                    late += 1;
                    ("ui-state-late", "late", String::new())
                }
                Standing::Pending => {
                    pending += 1;
                    ("ui-state-pending", "pending", String::new())
                }
            };
            StatusLine {
                name: u.name,
                state: t.t(state_key),
                class,
                when,
                reminders: u.reminders,
            }
        })
        .collect();
    render_with(
        StatusCode::OK,
        &StatusPage {
            area: area.name,
            periods: choices(&recent, lang),
            selected: period.id.clone(),
            period: period.label(lang).to_owned(),
            window: window_text(&t, &period),
            due: period.due.map(|d| t.date(d)),
            lines,
            submitted,
            late,
            pending,
            frame,
        },
    )
}

/// One area's line for one indicator on the progress page.
pub struct ProgressLine {
    pub area: String,
    pub trend: Vec<String>,
    pub value: String,
    pub met: String,
}

pub struct ProgressTable {
    pub code: String,
    pub label: String,
    pub target: String,
    pub earlier: Vec<String>,
    pub lines: Vec<ProgressLine>,
}

#[derive(askama::Template)]
#[template(path = "pages/indicators.html")]
pub struct ProgressPage<'a> {
    pub frame: Frame<'a>,
    pub area: String,
    pub periods: Vec<Choice>,
    pub selected: String,
    pub period: String,
    /// The period's data window (local days), as on every report.
    pub window: String,
    pub tables: Vec<ProgressTable>,
}

/// A period's data window as the statistics page states it.
fn window_text(t: &Tr<'_>, period: &Period) -> String {
    format!("{} – {}", t.date(period.first_day), t.date(period.last_day))
}

fn percent_text(t: &Tr<'_>, value: Option<f64>, mark: &str) -> String {
    value.map_or_else(
        || mark.to_owned(),
        |v| {
            let text = format!("{v:.1}");
            let text = if t.lang.code() == "en" {
                text
            } else {
                text.replace('.', ",")
            };
            format!("{text} %")
        },
    )
}

/// GET /indicators: the unit indicators of the area and its areas against
/// their targets, with the earlier periods.
pub async fn progress(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<PeriodQuery>,
) -> HttpResponse {
    let frame = Frame::for_user(&user, &state, "/indicators");
    let (recent, period, area, rows) = match of_own_area(
        &state,
        &user,
        query.period.as_deref(),
        unit_indicators::progress,
    )
    .await
    {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(frame),
        Err(error) => return failure_page(&error),
    };
    let t = frame.t;
    let lang = user.lang.code();
    let mark = state.disclosure.suppressed_mark.clone();
    let tables = state
        .reporting
        .unit_indicators_of(&period)
        .into_iter()
        .map(|unit| {
            let value_of = |row: &unit_indicators::AreaUnitIndicators| {
                row.values.iter().find(|v| v.code == unit.code).cloned()
            };
            let earlier = rows
                .first()
                .and_then(value_of)
                .map(|v| {
                    v.trend
                        .iter()
                        .map(|p| {
                            if lang == "en" {
                                p.en.clone()
                            } else {
                                p.vi.clone()
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let target = match (unit.comparison, unit.target_percent) {
                (crate::stats::policy::UnitComparison::AtLeast, Some(n)) => {
                    t.t1("ui-target-at-least", "n", n)
                }
                (crate::stats::policy::UnitComparison::Above, Some(n)) => {
                    t.t1("ui-target-above", "n", n)
                }
                _ => t.t("ui-target-maintain"),
            };
            ProgressTable {
                code: unit.code.clone(),
                label: unit.label(lang).to_owned(),
                target,
                earlier,
                lines: rows
                    .iter()
                    .filter_map(|row| {
                        let v = value_of(row)?;
                        Some(ProgressLine {
                            area: row.name.clone(),
                            trend: v
                                .trend
                                .iter()
                                .map(|p| percent_text(&t, p.percent, &mark))
                                .collect(),
                            value: percent_text(&t, v.percent, &mark),
                            met: t.t(match v.met {
                                Some(true) => "ui-met",
                                Some(false) => "ui-not-met",
                                None => "ui-met-unknown",
                            }),
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    render_with(
        StatusCode::OK,
        &ProgressPage {
            area: area.name,
            periods: choices(&recent, lang),
            selected: period.id.clone(),
            period: period.label(lang).to_owned(),
            window: window_text(&t, &period),
            tables,
            frame,
        },
    )
}

/// One staff figure's two inputs (women, men) on the staff form.
pub struct FigureField {
    pub code: String,
    pub label: String,
    /// What was typed (kept after a refusal).
    pub women: String,
    pub men: String,
    pub women_error: Option<String>,
    pub men_error: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "pages/indicators_staff.html")]
pub struct StaffPage<'a> {
    pub frame: Frame<'a>,
    pub unit: String,
    pub periods: Vec<Choice>,
    pub selected: String,
    pub period: String,
    pub due: Option<String>,
    pub fields: Vec<FigureField>,
    /// Problems not tied to one input (the period, a second entry).
    pub problems: Vec<String>,
    pub submitted: Option<String>,
    /// The figures as entered: label, women, men.
    pub entered: Vec<(String, i32, i32)>,
    pub saved: bool,
}

impl StaffPage<'_> {
    fn has_field_errors(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.women_error.is_some() || f.men_error.is_some())
    }
}

/// What was typed into the staff form: figure code → (women, men).
type TypedFigures = std::collections::BTreeMap<String, (String, String)>;

/// Renders the staff form for `period`, with what was typed and the
/// problems found, or the figures the unit entered.
#[expect(clippy::too_many_arguments, reason = "one page's parts")]
fn staff_page(
    state: &AppState,
    user: &PageUser,
    unit: &OrganisationRow,
    recent: &[Period],
    period: &Period,
    typed: &TypedFigures,
    problems: (&[crate::stats::indicators::FigureProblem], Vec<String>),
    shown: (Vec<crate::db::stats::IndicatorRow>, bool),
) -> HttpResponse {
    use crate::stats::indicators::FigurePart;
    let frame = Frame::for_user(user, state, "/indicators/staff");
    let t = user.tr(state);
    let lang = user.lang.code();
    let (problems, general) = problems;
    let (rows, saved) = shown;
    let label_of = |code: &str| {
        state
            .reporting
            .figure(code)
            .map_or_else(|| code.to_owned(), |f| f.label(lang).to_owned())
    };
    let message = |p: &crate::stats::indicators::FigureProblem| {
        let mut args = vec![("figure", label_of(&p.figure))];
        for (name, value) in &p.args {
            args.push((
                *name,
                if *name == "of" {
                    label_of(value)
                } else {
                    value.clone()
                },
            ));
        }
        t.tn(p.key, &args)
    };
    let error_at = |code: &str, part: FigurePart| {
        problems
            .iter()
            .find(|p| p.figure == code && (p.part == part || p.part == FigurePart::Figure))
            .map(&message)
    };
    let fields = state
        .reporting
        .figures
        .iter()
        .map(|f| {
            let (women, men) = typed.get(&f.code).cloned().unwrap_or_default();
            FigureField {
                code: f.code.clone(),
                label: f.label(lang).to_owned(),
                women,
                men,
                women_error: error_at(&f.code, FigurePart::Women),
                men_error: error_at(&f.code, FigurePart::Men),
            }
        })
        .collect();
    let mut general = general;
    general.extend(
        problems
            .iter()
            .filter(|p| state.reporting.figure(&p.figure).is_none())
            .map(&message),
    );
    let status = if problems.is_empty() && general.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let submitted = rows.first().map(|r| t.datetime(r.submitted_at));
    let entered = state
        .reporting
        .figures
        .iter()
        .filter_map(|f| {
            rows.iter()
                .find(|r| r.figure == f.code)
                .map(|r| (f.label(lang).to_owned(), r.women, r.men))
        })
        .collect();
    render_with(
        status,
        &StaffPage {
            unit: unit.name.clone(),
            periods: choices(recent, lang),
            selected: period.id.clone(),
            period: period.label(lang).to_owned(),
            due: period.due.map(|d| t.date(d)),
            fields,
            problems: general,
            submitted,
            entered,
            saved,
            frame,
        },
    )
}

/// The unit's staff figures for `period`, as entered.
fn own_figures(
    conn: &mut crate::db::DbConnection,
    unit: &OrganisationRow,
    period: &Period,
) -> Result<Vec<crate::db::stats::IndicatorRow>, ApiError> {
    Ok(
        crate::db::stats::indicators_of(conn, std::slice::from_ref(&unit.id), &period.id)
            .map_err(DbError::Query)?,
    )
}

/// GET /indicators/staff: the unit's staff figures by sex for a period (the
/// plan's five staff figures), or the form to enter them.
pub async fn staff(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<PeriodQuery>,
) -> HttpResponse {
    let caller = user.caller.clone();
    let (recent, picked) = periods_and_pick(&state, query.period.as_deref());
    let Some(period) = picked else {
        return not_found(Frame::for_user(&user, &state, "/indicators/staff"));
    };
    let shown_period = period.clone();
    let loaded = blocking(&state, move |conn, state| {
        let Some((_, unit)) = own_unit(conn, state, &caller)? else {
            return Ok(None);
        };
        let rows = own_figures(conn, &unit, &shown_period)?;
        Ok(Some((unit, rows)))
    })
    .await;
    match loaded {
        Ok(Some((unit, rows))) => staff_page(
            &state,
            &user,
            &unit,
            &recent,
            &period,
            &TypedFigures::new(),
            (&[], Vec::new()),
            (rows, query.saved.is_some()),
        ),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/indicators/staff")),
        Err(error) => failure_page(&error),
    }
}

/// The typed figures checked: the inputs that are empty or not whole
/// numbers from 0 up, and the policy's rules (`indicators::validate`) over
/// the figures that are whole numbers, every problem at once.
fn parse_figures(
    state: &AppState,
    typed: &TypedFigures,
) -> Result<crate::stats::indicators::Figures, Vec<crate::stats::indicators::FigureProblem>> {
    use crate::stats::indicators::{FigurePart, FigureProblem, MAX_FIGURE};
    let mut figures = crate::stats::indicators::Figures::new();
    let mut problems = Vec::new();
    for figure in &state.reporting.figures {
        let (women, men) = typed.get(&figure.code).cloned().unwrap_or_default();
        let mut parsed = [0u32; 2];
        for (slot, (text, part)) in parsed
            .iter_mut()
            .zip([(women, FigurePart::Women), (men, FigurePart::Men)])
        {
            let text = text.trim();
            let (key, english) = if text.is_empty() {
                (
                    "sf-problem-missing",
                    format!("`{}` is missing", figure.code),
                )
            } else if let Ok(n) = text.parse::<u32>() {
                *slot = n;
                continue;
            } else {
                (
                    "sf-problem-range",
                    format!(
                        "`{}`: women and men must each be 0–{MAX_FIGURE}",
                        figure.code
                    ),
                )
            };
            problems.push(FigureProblem {
                figure: figure.code.clone(),
                part,
                key,
                args: Vec::new(),
                english,
            });
        }
        if !problems.iter().any(|p| p.figure == figure.code) {
            figures.insert(figure.code.clone(), (parsed[0], parsed[1]));
        }
    }
    if let Err(found) = crate::stats::indicators::validate(&state.stats_context(), &figures) {
        // A figure that did not parse is "missing" to the policy: said once.
        problems.extend(
            found
                .into_iter()
                .filter(|p| figures.contains_key(&p.figure) || p.key != "sf-problem-missing"),
        );
    }
    if problems.is_empty() {
        Ok(figures)
    } else {
        Err(problems)
    }
}

/// POST /indicators/staff: stores the unit's staff figures, or shows the
/// form again with each problem at its input (nothing stored).
pub async fn submit_staff(
    state: web::Data<AppState>,
    user: PageUser,
    form: CsrfForm,
) -> HttpResponse {
    let caller = user.caller.clone();
    let (recent, _) = periods_and_pick(&state, None);
    let asked = form.get("period").unwrap_or_default();
    let mut typed = TypedFigures::new();
    for figure in &state.reporting.figures {
        typed.insert(
            figure.code.clone(),
            (
                form.get(&format!("w-{}", figure.code)).unwrap_or_default(),
                form.get(&format!("m-{}", figure.code)).unwrap_or_default(),
            ),
        );
    }
    let Ok(period) = state.reporting.period(&asked) else {
        return not_found(Frame::for_user(&user, &state, "/indicators/staff"));
    };
    let checked = parse_figures(&state, &typed);
    let for_period = period.clone();
    let done = blocking(&state, move |conn, state| {
        let Some((capability, unit)) = own_unit(conn, state, &caller)? else {
            return Ok(None);
        };
        let figures = match checked {
            Ok(figures) => figures,
            Err(problems) => return Ok(Some((unit, problems, Vec::new()))),
        };
        let general = match crate::stats::indicators::submit(
            conn,
            &state.stats_context(),
            &state.auditor,
            &capability,
            &unit,
            &for_period,
            &figures,
        ) {
            Ok(()) => return Ok(Some((unit, Vec::new(), Vec::new()))),
            Err(crate::stats::StatsError::AlreadySubmitted) => vec!["sf-problem-already"],
            // The only refusal left after the checks above: not started.
            Err(crate::stats::StatsError::Invalid(_)) => vec!["ui-problem-period-start"],
            Err(crate::stats::StatsError::NotFound) => return Ok(None),
            Err(other) => return Err(super::super::api::stats::stats_error(other)),
        };
        Ok(Some((unit, Vec::new(), general)))
    })
    .await;
    match done {
        Ok(Some((_, problems, general))) if problems.is_empty() && general.is_empty() => {
            see_other(&format!("/indicators/staff?period={}&saved=1", period.id))
        }
        Ok(Some((unit, problems, general))) => {
            let t = user.tr(&state);
            staff_page(
                &state,
                &user,
                &unit,
                &recent,
                &period,
                &typed,
                (&problems, general.into_iter().map(|k| t.t(k)).collect()),
                (Vec::new(), false),
            )
        }
        Ok(None) => not_found(Frame::for_user(&user, &state, "/indicators/staff")),
        Err(error) => failure_page(&error),
    }
}
