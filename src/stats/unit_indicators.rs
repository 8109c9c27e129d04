//! The plan's targets that are not counts of people (`[[unit_indicator]]`
//! of `policies/reporting.toml`): each unit answers them itself — yes/no or
//! a percentage, with an evidence note — once per period; the office sees
//! them aggregated up the tree against their targets, with the trend over
//! the earlier periods of the same kind; who has answered and who is late;
//! and units that have not answered are reminded before the due date and
//! on it (once per unit, period and point, safe with several schedulers).
//!
//! Release rule as for the staff indicators: an area's value only when at
//! least two of its units answered (never one school's answer).

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::StatsError;
use super::policy::{Evidence, Period, UnitComparison, UnitIndicator, UnitIndicatorKind};
use super::report::StatsContext;
use super::unit_notes::{self, NotePlace};
use crate::audit::{AuditEvent, Auditor, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::SecretText;
use crate::crypto::keyring::Keyring;
use crate::db::organisations::{self, OrganisationRow};
use crate::db::unit_indicators::{self as table, IndicatorReminderRow, UnitEntryRow};
use crate::db::{DbConnection, DbError, write_transaction};

/// The longest evidence note.
pub const MAX_EVIDENCE: usize = 300;
/// Earlier periods shown in the trend.
pub const TREND_PERIODS: i32 = 3;

/// One answer as given: from a form (text) or JSON (a boolean or number).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnswer {
    pub value: Option<RawValue>,
    #[serde(default)]
    pub evidence: Option<String>,
}

/// Indicator code → the unit's answer.
pub type Answers = BTreeMap<String, RawAnswer>;

/// Which part of an answer a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Value,
    Evidence,
    Period,
}

/// What is wrong with an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    UnknownIndicator,
    Missing,
    YesOrNo,
    NotAPercentage,
    PercentOutOfRange,
    EvidenceRequired,
    EvidenceTooLong,
    EvidenceUnprintable,
    PeriodNotCollected,
    PeriodNotStarted,
    AlreadyEntered,
}

/// One problem, tied to a field (`indicator` and `part`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The indicator's code as sent (only when printable), or "period".
    pub indicator: String,
    pub part: Part,
    pub rule: Rule,
}

impl Problem {
    fn new(indicator: &str, part: Part, rule: Rule) -> Self {
        let printable = indicator.len() <= 40
            && indicator
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        Self {
            indicator: if printable {
                indicator.to_owned()
            } else {
                "(unprintable)".to_owned()
            },
            part,
            rule,
        }
    }

    /// The message key in `locales/*.ftl` (with `$code`, the indicator).
    pub fn message_key(&self) -> &'static str {
        match self.rule {
            Rule::UnknownIndicator => "ui-problem-unknown",
            Rule::Missing => "ui-problem-missing",
            Rule::YesOrNo => "ui-problem-yes-no",
            Rule::NotAPercentage => "ui-problem-not-percent",
            Rule::PercentOutOfRange => "ui-problem-range",
            Rule::EvidenceRequired => "ui-problem-evidence",
            Rule::EvidenceTooLong => "ui-problem-evidence-long",
            Rule::EvidenceUnprintable => "ui-problem-evidence-unprintable",
            Rule::PeriodNotCollected => "ui-problem-period-kind",
            Rule::PeriodNotStarted => "ui-problem-period-start",
            Rule::AlreadyEntered => "ui-problem-already",
        }
    }

    /// The problem in English, for the API.
    pub fn english(&self, expected: &str) -> String {
        let code = &self.indicator;
        match self.rule {
            Rule::UnknownIndicator => {
                format!("`{code}` is not a unit indicator of this period (expected: {expected})")
            }
            Rule::Missing => format!("`{code}` is missing: give its value"),
            Rule::YesOrNo => format!("`{code}`: the answer must be yes or no"),
            Rule::NotAPercentage => {
                format!(
                    "`{code}`: the value must be a percentage, a number with at most one decimal"
                )
            }
            Rule::PercentOutOfRange => {
                format!("`{code}`: the percentage must be between 0 and 100")
            }
            Rule::EvidenceRequired => format!("`{code}`: the evidence note is required"),
            Rule::EvidenceTooLong => {
                format!("`{code}`: the evidence note is at most {MAX_EVIDENCE} characters")
            }
            Rule::EvidenceUnprintable => {
                format!("`{code}`: the evidence note must be printable text on one line")
            }
            Rule::PeriodNotCollected => format!(
                "`period`: unit indicators are entered for these period kinds only: {expected}"
            ),
            Rule::PeriodNotStarted => "`period`: the period has not started yet".to_owned(),
            Rule::AlreadyEntered => {
                "`period`: the unit already entered its indicators for this period".to_owned()
            }
        }
    }
}

/// An answer after checking: its stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked {
    kind: UnitIndicatorKind,
    /// 0/1, or tenths of a percent.
    value: i32,
}

fn check_value(unit: &UnitIndicator, raw: Option<&RawValue>) -> Result<Checked, Rule> {
    let kind = unit.kind;
    match (kind, raw) {
        (_, None) => Err(Rule::Missing),
        (_, Some(RawValue::Text(t))) if t.trim().is_empty() => Err(Rule::Missing),
        (UnitIndicatorKind::YesNo, Some(RawValue::Bool(b))) => Ok(Checked {
            kind,
            value: i32::from(*b),
        }),
        (UnitIndicatorKind::YesNo, Some(RawValue::Text(t))) => match t.trim() {
            "yes" => Ok(Checked { kind, value: 1 }),
            "no" => Ok(Checked { kind, value: 0 }),
            _ => Err(Rule::YesOrNo),
        },
        (UnitIndicatorKind::YesNo, Some(RawValue::Number(_))) => Err(Rule::YesOrNo),
        (UnitIndicatorKind::Percent, Some(RawValue::Bool(_))) => Err(Rule::NotAPercentage),
        (UnitIndicatorKind::Percent, Some(RawValue::Number(n))) => tenths(*n),
        (UnitIndicatorKind::Percent, Some(RawValue::Text(t))) => {
            // Both languages' decimal marks: 42,5 and 42.5.
            let text = t.trim().trim_end_matches('%').trim().replace(',', ".");
            let valid = !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && text.split('.').nth(1).is_none_or(|d| d.len() <= 1);
            let n: f64 = text
                .parse()
                .ok()
                .filter(|_| valid)
                .ok_or(Rule::NotAPercentage)?;
            tenths(n)
        }
    }
}

fn tenths(n: f64) -> Result<Checked, Rule> {
    if !n.is_finite() {
        return Err(Rule::NotAPercentage);
    }
    let scaled = n * 10.0;
    if (scaled - scaled.round()).abs() > 1e-6 {
        return Err(Rule::NotAPercentage);
    }
    if !(0.0..=100.0).contains(&n) {
        return Err(Rule::PercentOutOfRange);
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "0..=1000 after the range check"
    )]
    let value = scaled.round() as i32;
    Ok(Checked {
        kind: UnitIndicatorKind::Percent,
        value,
    })
}

fn check_evidence(unit: &UnitIndicator, raw: Option<&str>) -> Result<String, Rule> {
    let text = raw.unwrap_or_default().trim();
    if text.chars().any(char::is_control) {
        return Err(Rule::EvidenceUnprintable);
    }
    if text.chars().count() > MAX_EVIDENCE {
        return Err(Rule::EvidenceTooLong);
    }
    if text.is_empty() && unit.evidence == Evidence::Required {
        return Err(Rule::EvidenceRequired);
    }
    Ok(text.to_owned())
}

/// The codes a period expects, for messages.
pub fn expected_codes(ctx: &StatsContext<'_>, period: &Period) -> String {
    ctx.reporting
        .unit_indicators_of(period)
        .iter()
        .map(|u| u.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Answers to store: code, value, evidence note.
type CheckedAnswers = Vec<(String, Checked, String)>;

/// Checks a unit's answers for `period`: every problem, each tied to its
/// field. On success, the values to store.
fn check(
    ctx: &StatsContext<'_>,
    period: &Period,
    answers: &Answers,
) -> Result<CheckedAnswers, Vec<Problem>> {
    let mut problems = Vec::new();
    let wanted = ctx.reporting.unit_indicators_of(period);
    if wanted.is_empty() {
        return Err(vec![Problem::new(
            "period",
            Part::Period,
            Rule::PeriodNotCollected,
        )]);
    }
    let (start, _) = period.window_utc(ctx.utc_offset);
    if start > ctx.clock.now_naive() {
        problems.push(Problem::new("period", Part::Period, Rule::PeriodNotStarted));
    }
    for code in answers.keys() {
        if !wanted.iter().any(|u| &u.code == code) {
            problems.push(Problem::new(code, Part::Value, Rule::UnknownIndicator));
        }
    }
    let mut checked = Vec::new();
    for unit in wanted {
        let answer = answers.get(&unit.code);
        let value = check_value(unit, answer.and_then(|a| a.value.as_ref()));
        let evidence = check_evidence(unit, answer.and_then(|a| a.evidence.as_deref()));
        match (value, evidence) {
            (Ok(value), Ok(evidence)) => checked.push((unit.code.clone(), value, evidence)),
            (value, evidence) => {
                if let Err(rule) = value {
                    problems.push(Problem::new(&unit.code, Part::Value, rule));
                }
                if let Err(rule) = evidence {
                    problems.push(Problem::new(&unit.code, Part::Evidence, rule));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(problems)
    }
}

/// Why a unit's answers were refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("invalid answers")]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Stats(#[from] StatsError),
}

impl From<DbError> for SubmitError {
    fn from(error: DbError) -> Self {
        Self::Stats(error.into())
    }
}

impl From<diesel::result::Error> for SubmitError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Stats(error.into())
    }
}

impl From<crate::audit::AuditError> for SubmitError {
    fn from(error: crate::audit::AuditError) -> Self {
        Self::Stats(error.into())
    }
}

/// Stores a unit's answers for `period`, once, all or nothing, with an
/// audit entry; a second entry for the same period is refused.
#[expect(
    clippy::too_many_arguments,
    reason = "the store, policy, keys, audit, capability and the answer's parts"
)]
pub fn submit(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    keyring: &Keyring,
    auditor: &Auditor,
    by: &Capability,
    unit: &OrganisationRow,
    period: &Period,
    answers: &Answers,
) -> Result<(), SubmitError> {
    if !by.allows(Action::IndicatorsSubmit, &unit.id) || unit.kind != "school" {
        return Err(StatsError::NotFound.into());
    }
    let checked = check(ctx, period, answers).map_err(SubmitError::Invalid)?;
    let now = ctx.clock.now_naive();
    write_transaction(conn, |conn| {
        let done = table::submitted_at(conn, std::slice::from_ref(&unit.id), &period.id)?;
        if !done.is_empty() {
            return Err(SubmitError::Stats(StatsError::AlreadySubmitted));
        }
        let rows = checked
            .iter()
            .map(|(code, value, evidence)| {
                let mut row = UnitEntryRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    school_id: unit.id.clone(),
                    period: period.id.clone(),
                    indicator: code.clone(),
                    kind: kind_code(value.kind).to_owned(),
                    value: value.value,
                    evidence_unsealed: String::new(),
                    submitted_by: by.author(),
                    submitted_at: now,
                    kek_id: None,
                    wrapped_dek: None,
                    evidence_enc: None,
                };
                let note = unit_notes::seal(keyring, NotePlace::of(&row), evidence)
                    .map_err(|e| StatsError::Stored(e.to_string()))?;
                row.kek_id = Some(note.kek_id);
                row.wrapped_dek = Some(note.wrapped_dek);
                row.evidence_enc = Some(note.evidence_enc);
                Ok(row)
            })
            .collect::<Result<Vec<UnitEntryRow>, StatsError>>()?;
        table::insert_entries(conn, &rows)?;
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::INDICATORS_SUBMITTED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("organisation", unit.id.clone())
                .detail("period", period.id.clone())
                .detail("kind", "unit_indicators".to_owned())
                .detail("answers", rows.len().to_string()),
        )?;
        Ok(())
    })
}

fn kind_code(kind: UnitIndicatorKind) -> &'static str {
    match kind {
        UnitIndicatorKind::YesNo => "yes_no",
        UnitIndicatorKind::Percent => "percent",
    }
}

/// A stored answer as a percentage (yes = 100, no = 0).
fn percent_of(row: &UnitEntryRow) -> f64 {
    if row.kind == "yes_no" {
        f64::from(row.value) * 100.0
    } else {
        f64::from(row.value) / 10.0
    }
}

/// One of a unit's own answers, with its note opened.
#[derive(Debug, Clone)]
pub struct OwnAnswer {
    pub indicator: String,
    pub kind: UnitIndicatorKind,
    /// 0/1, or tenths of a percent.
    pub value: i32,
    pub evidence: SecretText,
    pub submitted_at: NaiveDateTime,
}

impl OwnAnswer {
    /// The value as the API takes it: a boolean or a percentage.
    pub fn json_value(&self) -> serde_json::Value {
        match self.kind {
            UnitIndicatorKind::YesNo => serde_json::Value::Bool(self.value == 1),
            UnitIndicatorKind::Percent => serde_json::json!(f64::from(self.value) / 10.0),
        }
    }
}

/// A unit's own answers for a period with their notes, for its focal
/// points only (the entry page and the API show them back). Opening the
/// notes is audited; a note that does not open (damaged, moved, its key
/// gone) fails the whole read.
pub fn own_answers(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    keyring: &Keyring,
    auditor: &Auditor,
    by: &Capability,
    unit: &OrganisationRow,
    period: &Period,
) -> Result<Vec<OwnAnswer>, StatsError> {
    if !by.allows(Action::IndicatorsSubmit, &unit.id) {
        return Err(StatsError::NotFound);
    }
    write_transaction(conn, |conn| {
        let rows = table::entries_of(
            conn,
            std::slice::from_ref(&unit.id),
            std::slice::from_ref(&period.id),
        )?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let answers = rows
            .iter()
            .map(|row| {
                Ok(OwnAnswer {
                    indicator: row.indicator.clone(),
                    kind: if row.kind == "yes_no" {
                        UnitIndicatorKind::YesNo
                    } else {
                        UnitIndicatorKind::Percent
                    },
                    value: row.value,
                    evidence: unit_notes::open(keyring, row)
                        .map_err(|e| StatsError::Stored(e.to_string()))?,
                    submitted_at: row.submitted_at,
                })
            })
            .collect::<Result<Vec<_>, StatsError>>()?;
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::INDICATOR_NOTES_READ, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("organisation", unit.id.clone())
                .detail("period", period.id.clone())
                .detail("answers", answers.len().to_string()),
        )?;
        Ok(answers)
    })
}

/// The organisation tree: each area's schools.
struct Tree {
    by_id: HashMap<String, OrganisationRow>,
    children: HashMap<String, Vec<String>>,
}

impl Tree {
    fn load(conn: &mut DbConnection) -> Result<Self, StatsError> {
        let all = organisations::all(conn).map_err(DbError::Query)?;
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for org in &all {
            if let Some(parent) = &org.parent_id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(org.id.clone());
            }
        }
        Ok(Self {
            by_id: all.into_iter().map(|o| (o.id.clone(), o)).collect(),
            children,
        })
    }

    /// The schools under `root` (itself, if a school), by name.
    fn schools_under(&self, root: &str) -> Vec<&OrganisationRow> {
        let mut found = Vec::new();
        let mut stack = vec![root.to_owned()];
        let mut seen = 0usize;
        while let Some(next) = stack.pop() {
            seen += 1;
            if seen > 200_000 {
                break;
            }
            if let Some(org) = self.by_id.get(&next).filter(|o| o.kind == "school") {
                found.push(org);
            }
            stack.extend(self.children.get(&next).cloned().unwrap_or_default());
        }
        found.sort_by(|a, b| a.name.cmp(&b.name).then(a.code.cmp(&b.code)));
        found
    }

    fn child_areas(&self, id: &str) -> Vec<&OrganisationRow> {
        let mut areas: Vec<&OrganisationRow> = self
            .children
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|c| self.by_id.get(c))
            .filter(|o| o.kind == "area")
            .collect();
        areas.sort_by(|a, b| a.name.cmp(&b.name));
        areas
    }
}

/// Where a unit stands for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// Answered (when: stored UTC, RFC 3339), and whether after the due day.
    Submitted { at: String, late: bool },
    /// Not answered, and the due day is over.
    Late,
    /// Not answered yet; not due yet.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitStatus {
    pub code: String,
    pub name: String,
    #[serde(flatten)]
    pub standing: Standing,
    /// Reminders sent to the unit for the period.
    pub reminders: usize,
}

/// The first instant after the due day (UTC), when a unit that has not
/// answered is late.
pub fn late_from(period: &Period, utc_offset: Duration) -> Option<NaiveDateTime> {
    period
        .due
        .and_then(|d| d.succ_opt())
        .map(|d| d.and_time(chrono::NaiveTime::MIN) - utc_offset)
}

/// Every unit under `area`: answered, late or pending for `period`. For a
/// caller allowed to read the area's statistics.
pub fn status(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    by: &Capability,
    area: &OrganisationRow,
    period: &Period,
) -> Result<Vec<UnitStatus>, StatsError> {
    if !by.allows(Action::StatsRead, &area.id) {
        return Err(StatsError::NotFound);
    }
    let tree = Tree::load(conn)?;
    let schools = tree.schools_under(&area.id);
    let ids: Vec<String> = schools.iter().map(|s| s.id.clone()).collect();
    let submitted: HashMap<String, NaiveDateTime> = table::submitted_at(conn, &ids, &period.id)?
        .into_iter()
        .filter_map(|(id, at)| at.map(|at| (id, at)))
        .collect();
    let mut reminded: HashMap<String, usize> = HashMap::new();
    for row in table::reminders_of(conn, &period.id)? {
        if row.outcome == "sent" {
            *reminded.entry(row.school_id).or_default() += 1;
        }
    }
    let late_at = late_from(period, ctx.utc_offset);
    let now = ctx.clock.now_naive();
    Ok(schools
        .into_iter()
        .map(|school| {
            let standing = match submitted.get(&school.id) {
                Some(at) => Standing::Submitted {
                    at: at.and_utc().to_rfc3339(),
                    late: late_at.is_some_and(|l| *at >= l),
                },
                None if late_at.is_some_and(|l| now >= l) => Standing::Late,
                None => Standing::Pending,
            };
            UnitStatus {
                code: school.code.clone(),
                name: school.name.clone(),
                standing,
                reminders: reminded.get(&school.id).copied().unwrap_or(0),
            }
        })
        .collect())
}

/// One unit indicator of one area for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitValue {
    pub code: String,
    pub vi: String,
    pub en: String,
    pub kind: UnitIndicatorKind,
    pub target_percent: Option<u32>,
    pub comparison: UnitComparison,
    /// Units that answered; `None` when fewer than two did.
    pub answering: Option<u64>,
    /// The area's value (share of yes, or mean percentage), one decimal;
    /// `None` when fewer than two units answered.
    pub percent: Option<f64>,
    pub met: Option<bool>,
    /// The earlier periods of the same kind, oldest first.
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub period: String,
    pub vi: String,
    pub en: String,
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaUnitIndicators {
    pub code: String,
    pub name: String,
    /// Units under the area.
    pub units: u64,
    pub values: Vec<UnitValue>,
}

fn area_value(
    rows: &[&UnitEntryRow],
    indicator: &str,
    min_units: usize,
) -> (Option<u64>, Option<f64>) {
    let answers: Vec<f64> = rows
        .iter()
        .filter(|r| r.indicator == indicator)
        .map(|r| percent_of(r))
        .collect();
    if answers.len() < min_units {
        return (None, None);
    }
    #[expect(clippy::cast_precision_loss, reason = "unit counts are small")]
    let mean = answers.iter().sum::<f64>() / answers.len() as f64;
    (
        Some(answers.len() as u64),
        Some((mean * 10.0).round() / 10.0),
    )
}

/// Each unit indicator of `period` for the area and each child area, with
/// its target, whether it is met and the trend over the earlier periods of
/// the same kind. For a caller allowed to read the area's statistics.
pub fn progress(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    by: &Capability,
    area: &OrganisationRow,
    period: &Period,
) -> Result<Vec<AreaUnitIndicators>, StatsError> {
    if !by.allows(Action::StatsRead, &area.id) {
        return Err(StatsError::NotFound);
    }
    let tree = Tree::load(conn)?;
    let earlier: Vec<Period> = (1..=TREND_PERIODS)
        .rev()
        .filter_map(|back| {
            ctx.reporting
                .period(&format!("{}-{}", period.kind, period.year - back))
                .ok()
        })
        .collect();
    let period_ids: Vec<String> = earlier
        .iter()
        .chain(std::iter::once(period))
        .map(|p| p.id.clone())
        .collect();
    let all_ids: Vec<String> = tree
        .schools_under(&area.id)
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let entries = table::entries_of(conn, &all_ids, &period_ids)?;
    let mut areas = vec![area];
    areas.extend(tree.child_areas(&area.id));
    let wanted = ctx.reporting.unit_indicators_of(period);
    let rows = areas
        .into_iter()
        .map(|row_area| {
            let schools: Vec<String> = tree
                .schools_under(&row_area.id)
                .iter()
                .map(|s| s.id.clone())
                .collect();
            let of = |period_id: &str| -> Vec<&UnitEntryRow> {
                entries
                    .iter()
                    .filter(|e| e.period == period_id && schools.contains(&e.school_id))
                    .collect()
            };
            let current = of(&period.id);
            let values = wanted
                .iter()
                .map(|unit| {
                    let (answering, percent) = area_value(&current, &unit.code, 2);
                    let trend: Vec<TrendPoint> = earlier
                        .iter()
                        .map(|p| TrendPoint {
                            period: p.id.clone(),
                            vi: p.vi.clone(),
                            en: p.en.clone(),
                            percent: area_value(&of(&p.id), &unit.code, 2).1,
                        })
                        .collect();
                    let previous = trend.last().and_then(|t| t.percent);
                    UnitValue {
                        code: unit.code.clone(),
                        vi: unit.vi.clone(),
                        en: unit.en.clone(),
                        kind: unit.kind,
                        target_percent: unit.target_percent,
                        comparison: unit.comparison,
                        answering,
                        met: percent.and_then(|p| unit.met(p, previous)),
                        percent,
                        trend,
                    }
                })
                .collect();
            AreaUnitIndicators {
                code: row_area.code.clone(),
                name: row_area.name.clone(),
                units: schools.len() as u64,
                values,
            }
        })
        .collect();
    Ok(rows)
}

/// What a reminder pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReminderPass {
    pub sent: usize,
    pub skipped: usize,
}

/// The reminder points of `period` (name, instant in UTC), earliest first:
/// the start of the local day so many days before the due date.
pub fn reminder_points(ctx: &StatsContext<'_>, period: &Period) -> Vec<(String, NaiveDateTime)> {
    let Some(due) = period.due else {
        return Vec::new();
    };
    let mut points: Vec<(String, NaiveDateTime)> = ctx
        .reporting
        .reminders
        .days_before
        .iter()
        .map(|days| {
            let day: NaiveDate = due - Duration::days(i64::from(*days));
            (
                format!("d{days}"),
                day.and_time(chrono::NaiveTime::MIN) - ctx.utc_offset,
            )
        })
        .collect();
    points.sort_by_key(|(_, at)| *at);
    points
}

/// One scheduler pass: every unit that has not answered for a collected
/// period whose due day is not over gets the latest reminder point that
/// has come, once (the row's key decides between racing schedulers);
/// earlier points it missed are recorded as skipped, never sent late.
pub fn remind(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    auditor: &Auditor,
    public_url: &str,
) -> Result<ReminderPass, StatsError> {
    let now = ctx.clock.now_naive();
    let today = (now + ctx.utc_offset).date();
    let mut pass = ReminderPass::default();
    let periods: Vec<Period> = ctx
        .reporting
        .collected_kinds()
        .iter()
        .flat_map(|kind| {
            (today.year() - 1..=today.year() + 1)
                .filter_map(|y| ctx.reporting.period(&format!("{kind}-{y}")).ok())
                .collect::<Vec<_>>()
        })
        .filter(|p| late_from(p, ctx.utc_offset).is_some_and(|l| now < l))
        .filter(|p| p.window_utc(ctx.utc_offset).0 <= now)
        .collect();
    for period in periods {
        let come: Vec<(String, NaiveDateTime)> = reminder_points(ctx, &period)
            .into_iter()
            .filter(|(_, at)| *at <= now)
            .collect();
        let Some(((latest, latest_at), earlier)) = come.split_last() else {
            continue;
        };
        let Some(late_at) = late_from(&period, ctx.utc_offset) else {
            continue;
        };
        let (sent, skipped) = write_transaction(conn, |conn| {
            let tree = Tree::load(conn)?;
            // In one order for every scheduler: two passes racing on
            // PostgreSQL then wait for each other's rows instead of
            // deadlocking.
            let mut schools: Vec<String> = tree
                .by_id
                .values()
                .filter(|o| o.kind == "school")
                .map(|o| o.id.clone())
                .collect();
            schools.sort();
            let done: Vec<String> = table::submitted_at(conn, &schools, &period.id)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let (mut sent, mut skipped) = (0, 0);
            for school in schools.iter().filter(|s| !done.contains(s)) {
                let row = |point: &str, at: NaiveDateTime, outcome: &str| IndicatorReminderRow {
                    school_id: school.clone(),
                    period: period.id.clone(),
                    point: point.to_owned(),
                    remind_at: at,
                    outcome: outcome.to_owned(),
                    recipients: 0,
                    created_at: now,
                };
                for (point, at) in earlier {
                    if table::insert_reminder_if_new(conn, &row(point, *at, "skipped"))? {
                        skipped += 1;
                    }
                }
                if !table::insert_reminder_if_new(conn, &row(latest, *latest_at, "sent"))? {
                    continue;
                }
                let count = notify_unit(conn, ctx, public_url, school, &period, latest, late_at)?;
                let count = i32::try_from(count).unwrap_or(i32::MAX);
                table::set_reminder_recipients(conn, (school, &period.id, latest), count)?;
                auditor.append(
                    conn,
                    ctx.clock,
                    &AuditEvent::new(action::REMINDER_SENT, Outcome::Success)
                        .target("organisation", school.clone())
                        .detail("kind", "unit_indicators".to_owned())
                        .detail("period", period.id.clone())
                        .detail("point", latest.clone())
                        .detail("recipients", count.to_string()),
                )?;
                sent += 1;
            }
            Ok::<_, StatsError>((sent, skipped))
        })?;
        pass.sent += sent;
        pass.skipped += skipped;
    }
    Ok(pass)
}

/// The unit's focal points: the indicators are due by the end of the due
/// day. Only a link and the deadline: no figure, no period's content.
fn notify_unit(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    public_url: &str,
    school_id: &str,
    period: &Period,
    point: &str,
    late_at: NaiveDateTime,
) -> Result<usize, StatsError> {
    use crate::notify::{Language, Message, Template};
    let recipients = crate::db::referrals::recipients(conn, school_id, "focal_point")?;
    let link = format!("{}/indicators/entry", public_url.trim_end_matches('/'));
    let deadline = (late_at - Duration::seconds(1)).and_utc().to_rfc3339();
    for (user_id, email, language) in &recipients {
        let params = BTreeMap::from([
            ("link".to_owned(), link.clone()),
            ("deadline".to_owned(), deadline.clone()),
        ]);
        let message = Message::new(
            &format!(
                "indicators:{school_id}:{}:{point}:{user_id}",
                period.id.replace('_', ".")
            ),
            email,
            Language::parse(language).unwrap_or(Language::Vi),
            Template::IndicatorsReminder,
            params,
        )
        .map_err(|e| StatsError::Stored(e.to_string()))?;
        crate::notify::enqueue(conn, ctx.clock, &message)?;
    }
    Ok(recipients.len())
}
