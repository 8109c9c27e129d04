//! The statistics policies as data: reporting periods and the plan's
//! indicators (`policies/reporting.toml`), disclosure control
//! (`policies/disclosure.toml`). Loaded and validated at start; a problem
//! stops the start with a message naming the entry and the rule.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

pub const DEFAULT_REPORTING: &str = include_str!("../../policies/reporting.toml");
pub const DEFAULT_DISCLOSURE: &str = include_str!("../../policies/disclosure.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportingFile {
    period: Vec<PeriodKind>,
    figure: Vec<Figure>,
    indicator: Vec<Indicator>,
    #[serde(default)]
    unit_indicator: Vec<UnitIndicator>,
    #[serde(default)]
    indicator_reminders: Option<IndicatorReminders>,
}

/// How a unit answers one of the plan's non-count targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitIndicatorKind {
    /// Yes or no; an area's value is the share of its units that said yes.
    YesNo,
    /// A percentage 0–100 (one decimal); an area's value is the mean of its
    /// units' percentages.
    Percent,
}

/// How a unit indicator's value is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitComparison {
    /// At least `target_percent`.
    AtLeast,
    /// More than `target_percent`.
    Above,
    /// Not below the previous period of the same kind (the plan's
    /// "tiếp tục duy trì"); no `target_percent`.
    Maintain,
}

/// Whether a unit must give an evidence note with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Required,
    Optional,
}

/// One of the plan's targets that each unit answers itself (yes/no or a
/// percentage), once per period of the kinds listed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnitIndicator {
    pub code: String,
    pub vi: String,
    pub en: String,
    pub kind: UnitIndicatorKind,
    #[serde(default)]
    pub target_percent: Option<u32>,
    pub comparison: UnitComparison,
    /// The period kinds it is collected for (each with a due date).
    pub periods: Vec<String>,
    pub evidence: Evidence,
}

impl UnitIndicator {
    /// Whether `percent` meets the target; for `maintain`, against the
    /// previous period's value (`None` when there is none to compare with).
    pub fn met(&self, percent: f64, previous: Option<f64>) -> Option<bool> {
        let target = f64::from(self.target_percent.unwrap_or(0));
        match self.comparison {
            UnitComparison::AtLeast => Some(percent >= target),
            UnitComparison::Above => Some(percent > target),
            UnitComparison::Maintain => previous.map(|p| percent >= p),
        }
    }

    pub fn label(&self, language: &str) -> &str {
        if language == "en" { &self.en } else { &self.vi }
    }
}

/// When units that have not entered their indicators are reminded: so
/// many days before the due date (0: on it), at the start of that local
/// day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorReminders {
    pub days_before: Vec<u32>,
}

impl Default for IndicatorReminders {
    fn default() -> Self {
        Self {
            days_before: vec![7, 0],
        }
    }
}

/// A kind of period (`six_month`, `semester_1`, …) with its yearly window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodKind {
    pub code: String,
    pub vi: String,
    pub en: String,
    start: String,
    end: String,
    #[serde(default)]
    due: Option<String>,
    #[serde(skip)]
    parsed: Option<Window>,
}

/// A day of the year: (month, day).
type MonthDay = (u32, u32);

/// Start, end and due day of a period kind.
type Window = (MonthDay, MonthDay, Option<MonthDay>);

/// A staff figure schools enter by sex.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub code: String,
    pub vi: String,
    pub en: String,
}

impl Figure {
    pub fn label(&self, language: &str) -> &str {
        if language == "en" { &self.en } else { &self.vi }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    InstitutionsWithWomen,
    WomenShare,
    WomenRatio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    AtLeast,
    Above,
}

/// One of the plan's indicators with its target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub code: String,
    pub vi: String,
    pub en: String,
    pub kind: IndicatorKind,
    pub figure: String,
    #[serde(default)]
    pub of_figure: Option<String>,
    pub target_percent: u32,
    pub comparison: Comparison,
}

impl Indicator {
    /// Whether `percent` meets the target.
    pub fn met(&self, percent: f64) -> bool {
        let target = f64::from(self.target_percent);
        match self.comparison {
            Comparison::AtLeast => percent >= target,
            Comparison::Above => percent > target,
        }
    }
}

/// The longest ad-hoc window, in days (three years).
pub const AD_HOC_MAX_DAYS: i64 = 1096;

/// A concrete period: kind and year, with its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    pub id: String,
    pub kind: String,
    pub year: i32,
    /// First local day, included.
    pub first_day: NaiveDate,
    /// Last local day, included.
    pub last_day: NaiveDate,
    pub due: Option<NaiveDate>,
    pub vi: String,
    pub en: String,
}

impl Period {
    /// The window as stored instants (UTC): `[start, end)`.
    pub fn window_utc(&self, utc_offset: Duration) -> (NaiveDateTime, NaiveDateTime) {
        let start = self.first_day.and_time(chrono::NaiveTime::MIN) - utc_offset;
        let end = self
            .last_day
            .succ_opt()
            .unwrap_or(self.last_day)
            .and_time(chrono::NaiveTime::MIN)
            - utc_offset;
        (start, end)
    }

    /// An ad-hoc window (báo cáo đột xuất) of whole local days,
    /// `first..=last`, ending no later than `today` and at most
    /// [`AD_HOC_MAX_DAYS`] long; the error says what is wrong.
    pub fn ad_hoc(first: &str, last: &str, today: NaiveDate) -> Result<Self, String> {
        let day = |name: &str, text: &str| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| format!("`{name}` must be a date written YYYY-MM-DD"))
        };
        let (first_day, last_day) = (day("from", first)?, day("to", last)?);
        if first_day > last_day {
            return Err("`from` must not be after `to`".into());
        }
        if last_day > today {
            return Err("`to` must not be after today".into());
        }
        if (last_day - first_day).num_days() >= AD_HOC_MAX_DAYS {
            return Err(format!(
                "the window may be at most {AD_HOC_MAX_DAYS} days long"
            ));
        }
        let (a, b) = (first_day.format("%Y-%m-%d"), last_day.format("%Y-%m-%d"));
        Ok(Self {
            id: format!("ad_hoc-{a}-{b}"),
            kind: "ad_hoc".into(),
            year: last_day.year(),
            first_day,
            last_day,
            due: None,
            vi: format!(
                "Báo cáo đột xuất từ {} đến {}",
                first_day.format("%d/%m/%Y"),
                last_day.format("%d/%m/%Y")
            ),
            en: format!("Ad-hoc report, {a} to {b}"),
        })
    }

    pub fn label(&self, language: &str) -> &str {
        if language == "en" { &self.en } else { &self.vi }
    }
}

fn month_day(entry: &str, key: &str, text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("reporting: period `{entry}`: `{key}` must be MM-DD, a day of the year");
    let (m, d) = text.split_once('-').ok_or_else(bad)?;
    let (m, d) = (
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    // 2024 is a leap year: 02-29 is accepted and falls back to 02-28 elsewhere.
    NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

fn date_in(year: i32, (month, day): (u32, u32)) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
        .or_else(|| NaiveDate::from_ymd_opt(year, month, day.saturating_sub(1)))
}

fn valid_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Periods, figures and indicators.
#[derive(Debug, Clone)]
pub struct ReportingPolicy {
    kinds: Vec<PeriodKind>,
    pub figures: Vec<Figure>,
    pub indicators: Vec<Indicator>,
    pub unit_indicators: Vec<UnitIndicator>,
    pub reminders: IndicatorReminders,
}

impl ReportingPolicy {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ReportingFile =
            toml::from_str(text).map_err(|e| format!("reporting: {}", e.message().trim()))?;
        let mut seen = HashSet::new();
        let mut kinds = Vec::new();
        for mut kind in file.period {
            if !valid_code(&kind.code) {
                return Err(format!(
                    "reporting: period code `{}` must be lower-case letters, digits and `_`",
                    kind.code.escape_debug()
                ));
            }
            if !seen.insert(kind.code.clone()) {
                return Err(format!("reporting: period `{}` is listed twice", kind.code));
            }
            if kind.vi.trim().is_empty() || kind.en.trim().is_empty() {
                return Err(format!(
                    "reporting: period `{}` needs vi and en labels",
                    kind.code
                ));
            }
            let start = month_day(&kind.code, "start", &kind.start)?;
            let end = month_day(&kind.code, "end", &kind.end)?;
            let due = kind
                .due
                .as_deref()
                .map(|d| month_day(&kind.code, "due", d))
                .transpose()?;
            kind.parsed = Some((start, end, due));
            kinds.push(kind);
        }
        if kinds.is_empty() {
            return Err("reporting: no periods listed".into());
        }
        let mut figures = HashSet::new();
        for figure in &file.figure {
            if !valid_code(&figure.code) || !figures.insert(figure.code.as_str()) {
                return Err(format!(
                    "reporting: figure `{}` has an invalid or repeated code",
                    figure.code.escape_debug()
                ));
            }
            if figure.vi.trim().is_empty() || figure.en.trim().is_empty() {
                return Err(format!(
                    "reporting: figure `{}` needs vi and en labels",
                    figure.code
                ));
            }
        }
        let mut indicators = HashSet::new();
        for indicator in &file.indicator {
            if !valid_code(&indicator.code) || !indicators.insert(indicator.code.as_str()) {
                return Err(format!(
                    "reporting: indicator `{}` has an invalid or repeated code",
                    indicator.code.escape_debug()
                ));
            }
            if indicator.vi.trim().is_empty() || indicator.en.trim().is_empty() {
                return Err(format!(
                    "reporting: indicator `{}` needs vi and en labels",
                    indicator.code
                ));
            }
            if !figures.contains(indicator.figure.as_str()) {
                return Err(format!(
                    "reporting: indicator `{}` uses unknown figure `{}`",
                    indicator.code, indicator.figure
                ));
            }
            match (&indicator.kind, &indicator.of_figure) {
                (IndicatorKind::WomenRatio, Some(of)) if figures.contains(of.as_str()) => {}
                (IndicatorKind::WomenRatio, _) => {
                    return Err(format!(
                        "reporting: indicator `{}` (women_ratio) needs `of_figure`, a known figure",
                        indicator.code
                    ));
                }
                (_, Some(_)) => {
                    return Err(format!(
                        "reporting: indicator `{}`: only women_ratio takes `of_figure`",
                        indicator.code
                    ));
                }
                (_, None) => {}
            }
            if indicator.target_percent > 100 {
                return Err(format!(
                    "reporting: indicator `{}`: target_percent must be 0–100",
                    indicator.code
                ));
            }
        }
        let reminders = file.indicator_reminders.unwrap_or_default();
        check_unit_indicators(&file.unit_indicator, &kinds, &indicators, &reminders)?;
        Ok(Self {
            kinds,
            figures: file.figure,
            indicators: file.indicator,
            unit_indicators: file.unit_indicator,
            reminders,
        })
    }

    pub fn default_shipped() -> Result<Self, String> {
        Self::parse(DEFAULT_REPORTING)
    }

    /// Loads `reporting.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Self::default_shipped(),
            Some(dir) => {
                let path = dir.join("reporting.toml");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Self::parse(&text)
            }
        }
    }

    pub fn kinds(&self) -> impl Iterator<Item = &PeriodKind> {
        self.kinds.iter()
    }

    /// The period `<kind>-<year>`; the error says what is expected.
    pub fn period(&self, id: &str) -> Result<Period, String> {
        let expected = || {
            format!(
                "expected <kind>-<year>, e.g. six_month-2026, with kind one of: {}",
                self.kinds
                    .iter()
                    .map(|k| k.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let (code, year) = id.trim().rsplit_once('-').ok_or_else(expected)?;
        let year: i32 = year
            .parse()
            .ok()
            .filter(|y| (2000..=2200).contains(y))
            .ok_or_else(expected)?;
        let kind = self
            .kinds
            .iter()
            .find(|k| k.code == code)
            .ok_or_else(expected)?;
        let Some((start, end, due)) = kind.parsed else {
            return Err(expected());
        };
        let last_day = date_in(year, end).ok_or_else(expected)?;
        let start_year = if start > end { year - 1 } else { year };
        let first_day = date_in(start_year, start).ok_or_else(expected)?;
        let due = due.and_then(|d| {
            let same = date_in(year, d)?;
            if same > last_day {
                Some(same)
            } else {
                date_in(year + 1, d)
            }
        });
        let fill = |label: &str| {
            label
                .replace("{year_before}", &(year - 1).to_string())
                .replace("{year}", &year.to_string())
        };
        Ok(Period {
            id: format!("{code}-{year}"),
            kind: code.to_owned(),
            year,
            first_day,
            last_day,
            due,
            vi: fill(&kind.vi),
            en: fill(&kind.en),
        })
    }

    /// The period of the same kind just before `period`.
    pub fn previous(&self, period: &Period) -> Option<Period> {
        self.period(&format!("{}-{}", period.kind, period.year - 1))
            .ok()
    }

    /// The periods of every kind whose window contains `today` or ended in
    /// the last year, newest first.
    pub fn recent(&self, today: NaiveDate) -> Vec<Period> {
        let mut list: Vec<Period> = self
            .kinds
            .iter()
            .flat_map(|k| {
                (today.year() - 1..=today.year() + 1)
                    .filter_map(|y| self.period(&format!("{}-{y}", k.code)).ok())
            })
            .filter(|p| p.first_day <= today && p.last_day >= today - Duration::days(366))
            .collect();
        list.sort_by(|a, b| b.last_day.cmp(&a.last_day).then(a.id.cmp(&b.id)));
        list
    }

    pub fn figure(&self, code: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.code == code)
    }

    pub fn unit_indicator(&self, code: &str) -> Option<&UnitIndicator> {
        self.unit_indicators.iter().find(|u| u.code == code)
    }

    /// The unit indicators collected for `period`'s kind.
    pub fn unit_indicators_of(&self, period: &Period) -> Vec<&UnitIndicator> {
        self.unit_indicators
            .iter()
            .filter(|u| u.periods.contains(&period.kind))
            .collect()
    }

    /// The period kinds units enter indicators for.
    pub fn collected_kinds(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .map(|k| k.code.as_str())
            .filter(|k| {
                self.unit_indicators
                    .iter()
                    .any(|u| u.periods.iter().any(|p| p == k))
            })
            .collect()
    }

    /// The periods units enter indicators for whose window contains
    /// `today` or ended in the last year, newest first.
    pub fn collected_recent(&self, today: NaiveDate) -> Vec<Period> {
        let kinds = self.collected_kinds();
        self.recent(today)
            .into_iter()
            .filter(|p| kinds.contains(&p.kind.as_str()))
            .collect()
    }
}

/// Checks `[[unit_indicator]]` and `[indicator_reminders]`: each problem
/// names the entry and the rule.
fn check_unit_indicators(
    units: &[UnitIndicator],
    kinds: &[PeriodKind],
    indicator_codes: &HashSet<&str>,
    reminders: &IndicatorReminders,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for unit in units {
        let code = &unit.code;
        if !valid_code(code)
            || !seen.insert(code.as_str())
            || indicator_codes.contains(code.as_str())
        {
            return Err(format!(
                "reporting: unit_indicator `{}` has an invalid or repeated code (lower-case letters, digits and `_`, not an indicator's code)",
                code.escape_debug()
            ));
        }
        if unit.vi.trim().is_empty() || unit.en.trim().is_empty() {
            return Err(format!(
                "reporting: unit_indicator `{code}` needs vi and en labels"
            ));
        }
        match (unit.comparison, unit.target_percent) {
            (UnitComparison::Maintain, Some(_)) => {
                return Err(format!(
                    "reporting: unit_indicator `{code}`: `maintain` compares with the previous period and takes no target_percent"
                ));
            }
            (UnitComparison::AtLeast | UnitComparison::Above, None) => {
                return Err(format!(
                    "reporting: unit_indicator `{code}` needs target_percent (0–100) with at_least or above"
                ));
            }
            (_, Some(target)) if target > 100 => {
                return Err(format!(
                    "reporting: unit_indicator `{code}`: target_percent must be 0–100"
                ));
            }
            _ => {}
        }
        if unit.periods.is_empty() {
            return Err(format!(
                "reporting: unit_indicator `{code}` needs `periods`, the period kinds it is collected for"
            ));
        }
        for period in &unit.periods {
            match kinds.iter().find(|k| &k.code == period) {
                None => {
                    return Err(format!(
                        "reporting: unit_indicator `{code}` lists unknown period kind `{}`",
                        period.escape_debug()
                    ));
                }
                Some(kind) if kind.due.is_none() => {
                    return Err(format!(
                        "reporting: unit_indicator `{code}`: period kind `{period}` has no `due` date, so nobody could be late"
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let mut days = HashSet::new();
    if reminders.days_before.is_empty()
        || reminders
            .days_before
            .iter()
            .any(|d| *d > 60 || !days.insert(*d))
    {
        return Err(
            "reporting: indicator_reminders: days_before must list 1 or more distinct days, each 0–60".into(),
        );
    }
    Ok(())
}

/// Disclosure control settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosurePolicy {
    pub min_count: u64,
    pub suppressed_mark: String,
    pub school_min_total: u64,
    #[serde(default)]
    pub rounding_base: u64,
}

impl DisclosurePolicy {
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Self =
            toml::from_str(text).map_err(|e| format!("disclosure: {}", e.message().trim()))?;
        if !(2..=100).contains(&policy.min_count) {
            return Err("disclosure: min_count must be between 2 and 100".into());
        }
        if policy.school_min_total < policy.min_count {
            return Err("disclosure: school_min_total must be at least min_count".into());
        }
        let mark = policy.suppressed_mark.trim();
        if mark.is_empty() || mark.chars().count() > 8 || mark.chars().any(|c| c.is_ascii_digit()) {
            return Err(
                "disclosure: suppressed_mark must be 1–8 characters and contain no digit".into(),
            );
        }
        if policy.rounding_base > 100 {
            return Err("disclosure: rounding_base must be between 0 and 100".into());
        }
        Ok(policy)
    }

    pub fn default_shipped() -> Result<Self, String> {
        Self::parse(DEFAULT_DISCLOSURE)
    }

    /// Loads `disclosure.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Self::default_shipped(),
            Some(dir) => {
                let path = dir.join("disclosure.toml");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Self::parse(&text)
            }
        }
    }

    /// A count as published: rounded to the base when rounding is on.
    pub fn round(&self, value: u64) -> u64 {
        if self.rounding_base <= 1 {
            return value;
        }
        let base = self.rounding_base;
        (value + base / 2) / base * base
    }

    /// The policy of a live answer (a live view, an ad-hoc window): every
    /// count rounded to a multiple of a base of at least `min_count`, so
    /// that two live answers never differ by 1 to k−1 (docs/SECURITY.md,
    /// "Live statistics can be differenced").
    pub fn for_live(&self) -> Self {
        Self {
            rounding_base: self.rounding_base.max(self.min_count),
            ..self.clone()
        }
    }

    /// Whether `value` may be published as a count of people.
    pub fn safe(&self, value: u64) -> bool {
        value == 0 || value >= self.min_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_are_valid_and_follow_the_seed() {
        let reporting = ReportingPolicy::default_shipped().unwrap();
        let six = reporting.period("six_month-2024").unwrap();
        assert_eq!(six.due, NaiveDate::from_ymd_opt(2024, 5, 10));
        assert_eq!(six.first_day, NaiveDate::from_ymd_opt(2023, 11, 1).unwrap());
        assert_eq!(six.last_day, NaiveDate::from_ymd_opt(2024, 4, 30).unwrap());
        assert_eq!(six.vi, "Báo cáo 6 tháng đầu năm 2024");
        let year_end = reporting.period("year_end-2024").unwrap();
        assert_eq!(year_end.due, NaiveDate::from_ymd_opt(2024, 11, 10));
        let semester = reporting.period("semester_1-2025").unwrap();
        assert_eq!(semester.vi, "Học kỳ I năm học 2024–2025");
        assert_eq!(
            semester.first_day,
            NaiveDate::from_ymd_opt(2024, 9, 1).unwrap()
        );
        assert_eq!(semester.due, None);
        assert_eq!(reporting.indicators.len(), 5);
        let (start, end) = six.window_utc(Duration::hours(7));
        assert_eq!(start.to_string(), "2023-10-31 17:00:00");
        assert_eq!(end.to_string(), "2024-04-30 17:00:00");
        let disclosure = DisclosurePolicy::default_shipped().unwrap();
        assert_eq!(disclosure.min_count, 5);
    }

    #[test]
    fn bad_period_ids_and_policies_say_what_is_wrong() {
        let reporting = ReportingPolicy::default_shipped().unwrap();
        for bad in ["six_month", "weekly-2024", "six_month-24", "six_month-x"] {
            let err = reporting.period(bad).unwrap_err();
            assert!(err.contains("expected <kind>-<year>"), "{bad}: {err}");
        }
        let broken = DEFAULT_REPORTING.replace("end = \"04-30\"", "end = \"04-31\"");
        assert!(
            ReportingPolicy::parse(&broken)
                .unwrap_err()
                .contains("period `six_month`: `end` must be MM-DD")
        );
        let broken = DEFAULT_REPORTING.replace("of_figure = \"leadership_planning\"\n", "");
        assert!(
            ReportingPolicy::parse(&broken)
                .unwrap_err()
                .contains("needs `of_figure`")
        );
        assert!(
            DisclosurePolicy::parse(
                "min_count = 1\nsuppressed_mark = \"x\"\nschool_min_total = 10\n"
            )
            .unwrap_err()
            .contains("min_count")
        );
        let rounding = DisclosurePolicy {
            rounding_base: 5,
            ..DisclosurePolicy::default_shipped().unwrap()
        };
        assert_eq!(
            [0, 5, 7, 8, 12, 13].map(|v| rounding.round(v)),
            [0, 5, 5, 10, 10, 15]
        );
    }

    #[test]
    fn unit_indicators_follow_the_seed_and_bad_ones_say_what_is_wrong() {
        let reporting = ReportingPolicy::default_shipped().unwrap();
        assert_eq!(reporting.unit_indicators.len(), 3);
        assert_eq!(reporting.collected_kinds(), ["six_month", "year_end"]);
        assert_eq!(reporting.reminders.days_before, [7, 0]);
        let six = reporting.period("six_month-2026").unwrap();
        assert_eq!(reporting.unit_indicators_of(&six).len(), 3);
        let semester = reporting.period("semester_1-2026").unwrap();
        assert!(reporting.unit_indicators_of(&semester).is_empty());
        let women = reporting.unit_indicator("women_in_management").unwrap();
        assert_eq!(women.met(45.0, Some(45.0)), Some(true));
        assert_eq!(women.met(44.9, Some(45.0)), Some(false));
        assert_eq!(women.met(44.9, None), None);
        let cases = [
            (
                DEFAULT_REPORTING.replace(
                    "periods = [\"six_month\", \"year_end\"]\nevidence = \"optional\"",
                    "periods = [\"weekly\"]\nevidence = \"optional\"",
                ),
                "unit_indicator `women_in_management` lists unknown period kind `weekly`",
            ),
            (
                DEFAULT_REPORTING.replace(
                    "periods = [\"six_month\", \"year_end\"]\nevidence = \"optional\"",
                    "periods = [\"semester_1\"]\nevidence = \"optional\"",
                ),
                "period kind `semester_1` has no `due` date",
            ),
            (
                DEFAULT_REPORTING.replace(
                    "comparison = \"maintain\"",
                    "comparison = \"maintain\"\ntarget_percent = 50",
                ),
                "`maintain` compares with the previous period and takes no target_percent",
            ),
            (
                DEFAULT_REPORTING.replacen("target_percent = 100\n", "target_percent = 101\n", 1),
                "unit_indicator `staff_trained_on_abuse`: target_percent must be 0–100",
            ),
            (
                DEFAULT_REPORTING.replace("days_before = [7, 0]", "days_before = [7, 7]"),
                "days_before must list 1 or more distinct days",
            ),
            (
                DEFAULT_REPORTING.replace("kind = \"percent\"", "kind = \"stars\""),
                "unknown variant `stars`",
            ),
        ];
        for (text, message) in cases {
            let error = ReportingPolicy::parse(&text).unwrap_err();
            assert!(error.contains(message), "{message}: {error}");
        }
    }
}
