//! The plan's indicators (REFERENCE §1, seed section II.2.3): each school
//! enters its staff figures by sex once per period; the office sees each
//! indicator against its target by area.
//!
//! Release rules: a share of people is published only when its numerator,
//! denominator and their difference are each 0 or at least k; a share of
//! institutions only when at least two schools reported (never one school's
//! answer); an area row only when at least two of its schools reported.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::policy::{IndicatorKind, Period};
use super::report::{StatsContext, share};
use crate::audit::{AuditEvent, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::organisations::OrganisationRow;
use crate::db::stats::{self as table, IndicatorRow};
use crate::db::{DbConnection, write_transaction};

/// The most a figure may hold: more staff than any school has.
pub const MAX_FIGURE: u32 = 10_000;

/// One indicator for one area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorValue {
    pub code: String,
    pub vi: String,
    pub en: String,
    pub target_percent: u32,
    pub comparison: super::policy::Comparison,
    /// `None` when publishing it would reveal a small count or one school.
    pub percent: Option<f64>,
    pub met: Option<bool>,
}

/// An area's row: its schools that reported, and each indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaIndicators {
    pub code: String,
    pub name: String,
    pub schools_reporting: Option<u64>,
    pub values: Vec<IndicatorValue>,
}

/// A school's entry: figure code → (women, men).
pub type Figures = BTreeMap<String, (u32, u32)>;

/// Which input of a figure a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigurePart {
    /// The figure as a whole (unknown, missing).
    Figure,
    Women,
    Men,
}

/// One problem with a school's figures: the figure, the input, the message
/// key in `locales/*.ftl` with its arguments, and the API's English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureProblem {
    pub figure: String,
    pub part: FigurePart,
    pub key: &'static str,
    /// `part`/`whole` for a part above its whole (`of` is the whole's code).
    pub args: Vec<(&'static str, String)>,
    pub english: String,
}

/// Checks a school's figures against the policy; each problem names the
/// figure, the input and the rule.
pub fn validate(ctx: &StatsContext<'_>, figures: &Figures) -> Result<(), Vec<FigureProblem>> {
    let mut problems = Vec::new();
    let problem =
        |figure: &str, part, key, args: Vec<(&'static str, String)>, english| FigureProblem {
            figure: figure.to_owned(),
            part,
            key,
            args,
            english,
        };
    for code in figures.keys() {
        if ctx.reporting.figure(code).is_none() {
            problems.push(problem(
                code,
                FigurePart::Figure,
                "sf-problem-unknown",
                Vec::new(),
                format!(
                    "`{code}` is not a figure of the plan (expected: {})",
                    ctx.reporting
                        .figures
                        .iter()
                        .map(|f| f.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    for figure in &ctx.reporting.figures {
        match figures.get(&figure.code) {
            None => problems.push(problem(
                &figure.code,
                FigurePart::Figure,
                "sf-problem-missing",
                Vec::new(),
                format!("`{}` is missing", figure.code),
            )),
            Some((women, men)) if *women > MAX_FIGURE || *men > MAX_FIGURE => {
                problems.push(problem(
                    &figure.code,
                    if *women > MAX_FIGURE {
                        FigurePart::Women
                    } else {
                        FigurePart::Men
                    },
                    "sf-problem-range",
                    Vec::new(),
                    format!(
                        "`{}`: women and men must each be 0–{MAX_FIGURE}",
                        figure.code
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    // A ratio's part cannot exceed its whole.
    for indicator in &ctx.reporting.indicators {
        if let (IndicatorKind::WomenRatio, Some(of)) = (indicator.kind, &indicator.of_figure)
            && let (Some(part), Some(whole)) = (figures.get(&indicator.figure), figures.get(of))
        {
            for (sex, key, p, w) in [
                (FigurePart::Women, "sf-problem-women-above", part.0, whole.0),
                (FigurePart::Men, "sf-problem-men-above", part.1, whole.1),
            ] {
                if p > w {
                    let word = if sex == FigurePart::Women {
                        "women"
                    } else {
                        "men"
                    };
                    problems.push(problem(
                        &indicator.figure,
                        sex,
                        key,
                        vec![
                            ("of", of.clone()),
                            ("part", p.to_string()),
                            ("whole", w.to_string()),
                        ],
                        format!(
                            "`{}`: {word} ({p}) cannot be more than the {word} of `{of}` ({w})",
                            indicator.figure
                        ),
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Stores a school's figures for `period`, once: a second entry is refused.
pub fn submit(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    auditor: &crate::audit::Auditor,
    by: &Capability,
    school: &OrganisationRow,
    period: &Period,
    figures: &Figures,
) -> Result<(), StatsError> {
    if !by.allows(Action::IndicatorsSubmit, &school.id) || school.kind != "school" {
        return Err(StatsError::NotFound);
    }
    validate(ctx, figures).map_err(|problems| {
        StatsError::Invalid(problems.into_iter().map(|p| p.english).collect())
    })?;
    let now = ctx.clock.now_naive();
    let (start, _) = period.window_utc(ctx.utc_offset);
    if start > now {
        return Err(StatsError::Invalid(vec![format!(
            "`period`: {} has not started yet",
            period.id
        )]));
    }
    write_transaction(conn, |conn| {
        if table::indicators_submitted(conn, &school.id, &period.id)? > 0 {
            return Err(StatsError::AlreadySubmitted);
        }
        let rows: Vec<IndicatorRow> = figures
            .iter()
            .map(|(code, (women, men))| IndicatorRow {
                id: uuid::Uuid::now_v7().to_string(),
                school_id: school.id.clone(),
                period: period.id.clone(),
                figure: code.clone(),
                women: i32::try_from(*women).unwrap_or(i32::MAX),
                men: i32::try_from(*men).unwrap_or(i32::MAX),
                submitted_by: by.author(),
                submitted_at: now,
            })
            .collect();
        table::insert_indicators(conn, &rows)?;
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::INDICATORS_SUBMITTED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("organisation", school.id.clone())
                .detail("period", period.id.clone()),
        )?;
        Ok(())
    })
}

/// Each indicator for the area and each child area, against its target.
pub fn progress(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    area: &OrganisationRow,
    children: &HashMap<String, Vec<String>>,
    by_id: &HashMap<String, OrganisationRow>,
    period: &Period,
) -> Result<Vec<AreaIndicators>, StatsError> {
    let schools_under = |root: &str| -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(next) = stack.pop() {
            if found.len() > 100_000 {
                break;
            }
            if by_id.get(&next).is_some_and(|o| o.kind == "school") {
                found.push(next.clone());
            }
            stack.extend(children.get(&next).cloned().unwrap_or_default());
        }
        found
    };
    let all_schools = schools_under(&area.id);
    let entries = table::indicators_of(conn, &all_schools, &period.id)?;
    let mut by_school: HashMap<&str, Figures> = HashMap::new();
    for entry in &entries {
        by_school
            .entry(entry.school_id.as_str())
            .or_default()
            .insert(
                entry.figure.clone(),
                (
                    u32::try_from(entry.women).unwrap_or(0),
                    u32::try_from(entry.men).unwrap_or(0),
                ),
            );
    }
    let mut rows = vec![(area.code.clone(), area.name.clone(), all_schools)];
    for child in children.get(&area.id).cloned().unwrap_or_default() {
        if let Some(org) = by_id.get(&child).filter(|o| o.kind == "area") {
            rows.push((org.code.clone(), org.name.clone(), schools_under(&child)));
        }
    }
    Ok(rows
        .into_iter()
        .map(|(code, name, schools)| {
            let reported: Vec<&Figures> = schools
                .iter()
                .filter_map(|s| by_school.get(s.as_str()))
                .collect();
            area_row(ctx, code, name, &reported)
        })
        .collect())
}

/// One area's indicators from its schools' entries.
pub fn area_row(
    ctx: &StatsContext<'_>,
    code: String,
    name: String,
    reported: &[&Figures],
) -> AreaIndicators {
    let n = reported.len() as u64;
    let enough = n >= 2;
    let sum = |figure: &str| -> (u64, u64) {
        reported.iter().fold((0, 0), |(w, m), f| {
            let (fw, fm) = f.get(figure).copied().unwrap_or((0, 0));
            (w + u64::from(fw), m + u64::from(fm))
        })
    };
    let values = ctx
        .reporting
        .indicators
        .iter()
        .map(|indicator| {
            let percent = if !enough {
                None
            } else {
                match indicator.kind {
                    IndicatorKind::InstitutionsWithWomen => {
                        let with = reported
                            .iter()
                            .filter(|f| f.get(&indicator.figure).is_some_and(|(w, _)| *w > 0))
                            .count() as u64;
                        #[expect(clippy::cast_precision_loss, reason = "school counts are small")]
                        let percent = with as f64 * 100.0 / n as f64;
                        Some((percent * 10.0).round() / 10.0)
                    }
                    IndicatorKind::WomenShare => {
                        let (women, men) = sum(&indicator.figure);
                        share(ctx.disclosure, women, women + men)
                    }
                    IndicatorKind::WomenRatio => {
                        let (part, _) = sum(&indicator.figure);
                        let (whole, _) = sum(indicator.of_figure.as_deref().unwrap_or_default());
                        share(ctx.disclosure, part, whole)
                    }
                }
            };
            IndicatorValue {
                code: indicator.code.clone(),
                vi: indicator.vi.clone(),
                en: indicator.en.clone(),
                target_percent: indicator.target_percent,
                comparison: indicator.comparison,
                met: percent.map(|p| indicator.met(p)),
                percent,
            }
        })
        .collect();
    AreaIndicators {
        code,
        name,
        schools_reporting: enough.then_some(n),
        values,
    }
}
