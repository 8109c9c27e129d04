//! A report of an area for a period: the gender-disaggregated tables, the
//! partners' KPIs, schools' totals and the plan's indicators, after
//! disclosure control. What this module returns is what may be published;
//! the raw counts never leave it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::differencing::{self, Released, TOTAL};
use super::policy::{DisclosurePolicy, Period, ReportingPolicy};
use super::query;
use super::suppress::{Mask, augment, suppress, suppress_linked};
use super::{StatsError, indicators};
use crate::clock::Clock;
use crate::db::organisations::{self, OrganisationRow};
use crate::db::stats as table;
use crate::db::{DbConnection, DbError};
use crate::domain::taxonomy::Taxonomy;

/// What computing a report needs.
pub struct StatsContext<'a> {
    pub reporting: &'a ReportingPolicy,
    pub disclosure: &'a DisclosurePolicy,
    pub taxonomy: &'a Taxonomy,
    pub utc_offset: Duration,
    pub clock: &'a dyn Clock,
}

/// A published cell: a count, or the mark of a hidden one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Count(u64),
    Hidden(String),
}

impl Cell {
    pub fn count(&self) -> Option<u64> {
        match self {
            Self::Count(n) => Some(*n),
            Self::Hidden(_) => None,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Count(n) => n.to_string(),
            Self::Hidden(mark) => mark.clone(),
        }
    }
}

/// A code with its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub code: String,
    pub vi: String,
    pub en: String,
}

impl Label {
    pub fn new(code: &str, vi: &str, en: &str) -> Self {
        Self {
            code: code.to_owned(),
            vi: vi.to_owned(),
            en: en.to_owned(),
        }
    }

    pub fn text(&self, language: &str) -> &str {
        if language == "en" { &self.en } else { &self.vi }
    }
}

/// A published two-way table with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub code: String,
    pub vi: String,
    pub en: String,
    /// What is counted: `cases`, `incidents` or `referrals`.
    pub unit: String,
    pub rows: Vec<Label>,
    pub columns: Vec<Label>,
    pub cells: Vec<Vec<Cell>>,
    pub row_totals: Vec<Cell>,
    pub column_totals: Vec<Cell>,
    pub total: Cell,
}

/// A derived figure (share, median), published only from safe counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpi {
    pub code: String,
    pub vi: String,
    pub en: String,
    /// `percent`, `hours` or `days`.
    pub unit: String,
    /// `None` when it would rest on a count that may not be published.
    pub value: Option<f64>,
}

/// A school's total number of cases (the only per-school figure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolTotal {
    pub code: String,
    pub name: String,
    pub cases: Cell,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub vi: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaRef {
    pub id: String,
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRef {
    pub id: String,
    pub vi: String,
    pub en: String,
    pub first_day: String,
    pub last_day: String,
    pub due: Option<String>,
}

/// The published body of a report: stored as is when released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub area: AreaRef,
    pub period: PeriodRef,
    pub computed_at: String,
    pub min_count: u64,
    pub suppressed_mark: String,
    pub rounding_base: u64,
    pub tables: Vec<Table>,
    pub kpis: Vec<Kpi>,
    pub schools: Vec<SchoolTotal>,
    pub indicators: Vec<indicators::AreaIndicators>,
    pub notes: Vec<Note>,
}

impl Report {
    pub fn table(&self, code: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.code == code)
    }
}

/// The tables a report computed now carries, in their order (the OpenAPI
/// description lists them; a test holds them equal to a computed report's).
pub const TABLE_CODES: &[&str] = &[
    "cases_by_age",
    "cases_by_school_level",
    "cases_by_area",
    "cases_by_disability",
    "incidents_by_type",
    "incidents_by_relation",
    "incidents_by_reporting_delay",
    "incidents_by_context",
    "incidents_by_context_and_age",
    "incidents_by_context_and_school_level",
    "incidents_by_csa_subtype",
    "incidents_by_csa_subtype_and_age",
    "incidents_by_csa_subtype_and_school_level",
    "referrals_by_agency_and_status",
];

/// A table before disclosure control.
struct RawTable {
    code: &'static str,
    vi: &'static str,
    en: &'static str,
    unit: &'static str,
    rows: Vec<Label>,
    columns: Vec<Label>,
    cells: Vec<Vec<u64>>,
}

impl RawTable {
    fn new(
        (code, vi, en, unit): (&'static str, &'static str, &'static str, &'static str),
        rows: Vec<Label>,
        columns: Vec<Label>,
    ) -> Self {
        let cells = vec![vec![0; columns.len()]; rows.len()];
        Self {
            code,
            vi,
            en,
            unit,
            rows,
            columns,
            cells,
        }
    }

    /// Adds `n` at the row and column with these codes (unknown codes get
    /// their own row or column, labelled with the code).
    fn add(&mut self, row: &str, column: &str, n: u64) {
        let r = position(&mut self.rows, row);
        let c = position(&mut self.columns, column);
        for line in &mut self.cells {
            line.resize(self.columns.len(), 0);
        }
        self.cells
            .resize(self.rows.len(), vec![0; self.columns.len()]);
        if let Some(cell) = self.cells.get_mut(r).and_then(|line| line.get_mut(c)) {
            *cell += n;
        }
    }

    fn grid(&self) -> Vec<Vec<u64>> {
        augment(&self.cells, self.columns.len())
    }

    /// The cells of the augmented `grid` to hide because their published
    /// count would differ from a released one by 1 to k−1 (`None`: none).
    fn differenced(
        &self,
        grid: &[Vec<u64>],
        released: &Released,
        policy: &DisclosurePolicy,
    ) -> Option<Mask> {
        if released.is_empty() {
            return None;
        }
        fn code(labels: &[Label], i: usize) -> &str {
            labels.get(i).map_or(TOTAL, |l| l.code.as_str())
        }
        let mask: Mask = grid
            .iter()
            .enumerate()
            .map(|(r, line)| {
                line.iter()
                    .enumerate()
                    .map(|(c, value)| {
                        let key = (
                            self.code.to_owned(),
                            code(&self.rows, r).to_owned(),
                            code(&self.columns, c).to_owned(),
                        );
                        released.would_leak(&key, policy.round(*value), policy.min_count)
                    })
                    .collect()
            })
            .collect();
        mask.iter().flatten().any(|hidden| *hidden).then_some(mask)
    }

    fn publish(self, grid: &[Vec<u64>], mask: &Mask, policy: &DisclosurePolicy) -> Table {
        let cell = |r: usize, c: usize| {
            let hidden = mask.get(r).and_then(|l| l.get(c)).copied().unwrap_or(true);
            let value = grid.get(r).and_then(|l| l.get(c)).copied().unwrap_or(0);
            if hidden {
                Cell::Hidden(policy.suppressed_mark.clone())
            } else {
                Cell::Count(policy.round(value))
            }
        };
        let (rows, cols) = (self.rows.len(), self.columns.len());
        Table {
            code: self.code.to_owned(),
            vi: self.vi.to_owned(),
            en: self.en.to_owned(),
            unit: self.unit.to_owned(),
            cells: (0..rows)
                .map(|r| (0..cols).map(|c| cell(r, c)).collect())
                .collect(),
            row_totals: (0..rows).map(|r| cell(r, cols)).collect(),
            column_totals: (0..cols).map(|c| cell(rows, c)).collect(),
            total: cell(rows, cols),
            rows: self.rows,
            columns: self.columns,
        }
    }
}

fn position(labels: &mut Vec<Label>, code: &str) -> usize {
    if let Some(i) = labels.iter().position(|l| l.code == code) {
        return i;
    }
    labels.push(Label::new(code, code, code));
    labels.len() - 1
}

fn terms(taxonomy: &Taxonomy, category: &str) -> Vec<Label> {
    taxonomy
        .terms(category)
        .iter()
        .map(|t| Label::new(&t.code, &t.vi, &t.en))
        .collect()
}

const UNKNOWN_AGE: &str = "unknown";

/// A grid turned on its side (rows become columns).
fn transpose<T: Copy>(grid: &[Vec<T>]) -> Vec<Vec<T>> {
    let columns = grid.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns)
        .map(|c| grid.iter().filter_map(|row| row.get(c).copied()).collect())
        .collect()
}

/// The columns of the tables of a multi-valued breakdown (an incident's
/// contexts, its child-sexual-abuse sub-type): the pupil's sex, age band,
/// and the school's level (rows of at least two schools, as the cases'
/// table).
struct Breakdown<'a> {
    sexes: &'a [Label],
    ages: &'a [Label],
    levels: &'a [(Label, BTreeSet<String>)],
}

impl Breakdown<'_> {
    /// The three tables of `measure` (a = the row's code, b = sex|age band,
    /// kept per school), rows `codes` and any other code counted, in the
    /// same order in each: their row totals are the same counts, which the
    /// linked suppression relies on. A school whose level has no column is
    /// left out of all three alike.
    fn tables(
        &self,
        tallies: &query::Tallies,
        measure: &str,
        codes: Vec<Label>,
        titles: [(&'static str, &'static str, &'static str, &'static str); 3],
    ) -> [RawTable; 3] {
        let mut rows = codes;
        for (_, code, _, _) in tallies.of(measure) {
            position(&mut rows, code);
        }
        let levels: Vec<Label> = self.levels.iter().map(|(l, _)| l.clone()).collect();
        let [t_sex, t_age, t_level] = titles;
        let mut tables = [
            RawTable::new(t_sex, rows.clone(), self.sexes.to_vec()),
            RawTable::new(t_age, rows.clone(), self.ages.to_vec()),
            RawTable::new(t_level, rows, levels),
        ];
        for (school, code, codes, n) in tallies.of(measure) {
            let Some(level) = self
                .levels
                .iter()
                .find(|(_, set)| set.contains(school))
                .map(|(label, _)| label.code.as_str())
            else {
                continue;
            };
            let (sex, age) = codes.split_once('|').unwrap_or((codes, ""));
            let age = if age.is_empty() { UNKNOWN_AGE } else { age };
            let [by_sex, by_age, by_level] = &mut tables;
            by_sex.add(code, sex, n);
            by_age.add(code, age, n);
            by_level.add(code, level, n);
        }
        tables
    }
}

/// Rows that group schools: a row holding fewer than two schools would be
/// one school's breakdown, so such rows are merged into "other"; when that
/// still holds a single school it joins the smallest remaining row ("… and
/// other"; the flag says so).
fn merge_small_rows(
    mut rows: Vec<(Label, BTreeSet<String>)>,
    other: Label,
) -> (Vec<(Label, BTreeSet<String>)>, bool) {
    let mut merged = BTreeSet::new();
    rows.retain(|(_, schools)| {
        if schools.len() >= 2 {
            true
        } else {
            merged.extend(schools.iter().cloned());
            false
        }
    });
    if merged.len() == 1
        && let Some((label, schools)) = rows.iter_mut().min_by_key(|(_, s)| s.len())
    {
        schools.extend(merged);
        label.vi = format!("{} và khác", label.vi);
        label.en = format!("{} and other", label.en);
        return (rows, true);
    }
    if !merged.is_empty() {
        rows.push((other, merged));
    }
    (rows, false)
}

/// The organisations of the tree, by id, and the children of each.
struct Tree {
    by_id: HashMap<String, OrganisationRow>,
    children: HashMap<String, Vec<String>>,
}

impl Tree {
    fn load(conn: &mut DbConnection) -> Result<Self, DbError> {
        let all = organisations::all(conn)?;
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

    fn schools_under(&self, id: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut stack = vec![id.to_owned()];
        let mut guard = 0;
        while let Some(next) = stack.pop() {
            guard += 1;
            if guard > 100_000 {
                break;
            }
            if self.by_id.get(&next).is_some_and(|o| o.kind == "school") {
                found.insert(next.clone());
            }
            stack.extend(self.children.get(&next).cloned().unwrap_or_default());
        }
        found
    }
}

fn date_text(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Computes the published report of `area` for `period` from the live data.
/// `forced`: cells to hide in each table (by table code, augmented grid),
/// from comparing with released reports.
pub fn compute(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    area: &OrganisationRow,
    period: &Period,
) -> Result<Report, StatsError> {
    compute_as(conn, ctx, area, period, false)
}

/// [`compute`] as a live answer (a live view, an ad-hoc window): every
/// published count rounded to a base of at least k
/// ([`DisclosurePolicy::for_live`]; docs/SECURITY.md). The staff
/// indicators are not counts of cases and stay as they are.
pub fn compute_live(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    area: &OrganisationRow,
    period: &Period,
) -> Result<Report, StatsError> {
    compute_as(conn, ctx, area, period, true)
}

/// The referral states as the statistics name them: the same term for each
/// state as the agency's and the school's pages (`rstatus-*` in the
/// catalogues; `i18n` tests that they agree).
pub const REFERRAL_STATUSES: &[(&str, &str, &str)] = &[
    ("sent", "Đã gửi", "Sent"),
    ("acknowledged", "Đã nhận", "Acknowledged"),
    ("accepted", "Đã tiếp nhận", "Accepted"),
    ("declined", "Từ chối", "Declined"),
    ("in_service", "Đang hỗ trợ", "In service"),
    ("completed", "Hoàn thành", "Completed"),
    ("withdrawn", "Đã rút lại", "Withdrawn"),
];
fn compute_as(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    area: &OrganisationRow,
    period: &Period,
    live: bool,
) -> Result<Report, StatsError> {
    if area.kind != "area" {
        return Err(StatsError::NotAnArea);
    }
    let tree = Tree::load(conn)?;
    let schools = tree.schools_under(&area.id);
    if schools.len() < 2 {
        return Err(StatsError::TooFewSchools);
    }
    let (from, to) = period.window_utc(ctx.utc_offset);
    let now = ctx.clock.now_naive();
    let live_policy = ctx.disclosure.for_live();
    let policy = if live { &live_policy } else { ctx.disclosure };
    let k = policy.min_count;
    let sexes = terms(ctx.taxonomy, "sex");

    let tallies = query::tallies(conn, &area.id, from, to, now)?;

    // Cases: by age band, by school level, by area; schools' totals.
    let mut ages = terms(ctx.taxonomy, "age_band");
    ages.push(Label::new(UNKNOWN_AGE, "Không rõ tuổi", "Age unknown"));
    let mut by_age = RawTable::new(
        (
            "cases_by_age",
            "Số vụ việc theo độ tuổi và giới tính của học sinh",
            "Cases by the pupil's age and sex",
            "cases",
        ),
        ages.clone(),
        sexes.clone(),
    );
    // School levels and areas as rows of at least two schools.
    let level_rows: Vec<(Label, BTreeSet<String>)> = terms(ctx.taxonomy, "school_level")
        .into_iter()
        .map(|label| {
            let set = schools
                .iter()
                .filter(|s| {
                    tree.by_id.get(*s).and_then(|o| o.school_level.as_deref())
                        == Some(label.code.as_str())
                })
                .cloned()
                .collect();
            (label, set)
        })
        .filter(|(_, set): &(Label, BTreeSet<String>)| !set.is_empty())
        .collect();
    let (level_rows, _) = merge_small_rows(
        level_rows,
        Label::new("other_levels", "Cấp học khác", "Other school levels"),
    );
    let mut area_rows: Vec<(Label, BTreeSet<String>)> = Vec::new();
    let mut direct = BTreeSet::new();
    for child in tree.children.get(&area.id).cloned().unwrap_or_default() {
        let Some(org) = tree.by_id.get(&child) else {
            continue;
        };
        match org.kind.as_str() {
            "area" => {
                let set = tree.schools_under(&child);
                if !set.is_empty() {
                    area_rows.push((Label::new(&org.code, &org.name, &org.name), set));
                }
            }
            "school" => {
                direct.insert(child.clone());
            }
            _ => {}
        }
    }
    if !direct.is_empty() {
        area_rows.push((
            Label::new(
                "direct_schools",
                "Trường trực thuộc",
                "Schools directly under the area",
            ),
            direct,
        ));
    }
    let (area_rows, lone_school) = merge_small_rows(
        area_rows,
        Label::new("other_areas", "Địa bàn khác", "Other areas"),
    );
    let row_of = |rows: &[(Label, BTreeSet<String>)], school: &str| {
        rows.iter()
            .find(|(_, set)| set.contains(school))
            .map(|(label, _)| label.code.clone())
    };
    let mut by_level = RawTable::new(
        (
            "cases_by_school_level",
            "Số vụ việc theo cấp học và giới tính của học sinh",
            "Cases by school level and the pupil's sex",
            "cases",
        ),
        level_rows.iter().map(|(l, _)| l.clone()).collect(),
        sexes.clone(),
    );
    let mut by_area = RawTable::new(
        (
            "cases_by_area",
            "Số vụ việc theo địa bàn và giới tính của học sinh",
            "Cases by area and the pupil's sex",
            "cases",
        ),
        area_rows.iter().map(|(l, _)| l.clone()).collect(),
        sexes.clone(),
    );
    let mut school_totals: BTreeMap<String, u64> = schools.iter().map(|s| (s.clone(), 0)).collect();
    for (school, sex, age_band, n) in tallies.of("case") {
        let age = if age_band.is_empty() {
            UNKNOWN_AGE
        } else {
            age_band
        };
        by_age.add(age, sex, n);
        if let Some(level) = row_of(&level_rows, school) {
            by_level.add(&level, sex, n);
        }
        if let Some(place) = row_of(&area_rows, school) {
            by_area.add(&place, sex, n);
        }
        *school_totals.entry(school.to_owned()).or_default() += n;
    }

    // Incidents: by type, perpetrator relation, reporting delay.
    let mut by_type = RawTable::new(
        (
            "incidents_by_type",
            "Số sự việc theo loại hành vi và giới tính của học sinh",
            "Incidents by type and the pupil's sex",
            "incidents",
        ),
        terms(ctx.taxonomy, "incident_type"),
        sexes.clone(),
    );
    let mut by_relation = RawTable::new(
        (
            "incidents_by_relation",
            "Số sự việc theo quan hệ của người gây hại và giới tính của học sinh",
            "Incidents by the perpetrator's relation and the pupil's sex",
            "incidents",
        ),
        terms(ctx.taxonomy, "perpetrator_relation"),
        sexes.clone(),
    );
    let mut by_delay = RawTable::new(
        (
            "incidents_by_reporting_delay",
            "Số sự việc theo thời gian từ khi xảy ra đến khi được báo cáo",
            "Incidents by time from incident to report",
            "incidents",
        ),
        terms(ctx.taxonomy, "reporting_delay"),
        sexes.clone(),
    );
    for (table, measure) in [
        (&mut by_type, "incident_type"),
        (&mut by_relation, "incident_relation"),
        (&mut by_delay, "incident_delay"),
    ] {
        for (_, sex, code, n) in tallies.of(measure) {
            table.add(code, sex, n);
        }
    }

    // Cases with and without a disability (the planned shape: × sex).
    let mut by_disability = RawTable::new(
        (
            "cases_by_disability",
            "Số vụ việc theo tình trạng khuyết tật và giới tính của học sinh",
            "Cases by disability and the pupil's sex",
            "cases",
        ),
        vec![
            Label::new("with", "Học sinh khuyết tật", "Pupil with a disability"),
            Label::new(
                "without",
                "Học sinh không khuyết tật",
                "Pupil without a disability",
            ),
        ],
        sexes.clone(),
    );
    for (_, sex, disability, n) in tallies.of("case_disability") {
        by_disability.add(disability, sex, n);
    }

    // Incidents by each context they carry, and child sexual abuse by
    // sub-type: × sex, × age band, × school level (by the school's level,
    // as the cases' table).
    let columns = Breakdown {
        sexes: &sexes,
        ages: &ages,
        levels: &level_rows,
    };
    let by_context = columns.tables(
        &tallies,
        "incident_context",
        terms(ctx.taxonomy, "context"),
        [
            (
                "incidents_by_context",
                "Số sự việc theo bối cảnh và giới tính của học sinh (sự việc có nhiều bối cảnh được tính ở mỗi bối cảnh)",
                "Incidents by context and the pupil's sex (an incident with several contexts counts in each)",
                "incidents",
            ),
            (
                "incidents_by_context_and_age",
                "Số sự việc theo bối cảnh và độ tuổi của học sinh (sự việc có nhiều bối cảnh được tính ở mỗi bối cảnh)",
                "Incidents by context and the pupil's age (an incident with several contexts counts in each)",
                "incidents",
            ),
            (
                "incidents_by_context_and_school_level",
                "Số sự việc theo bối cảnh và cấp học (sự việc có nhiều bối cảnh được tính ở mỗi bối cảnh)",
                "Incidents by context and school level (an incident with several contexts counts in each)",
                "incidents",
            ),
        ],
    );
    let by_csa = columns.tables(
        &tallies,
        "incident_csa",
        terms(ctx.taxonomy, "csa_subtype"),
        [
            (
                "incidents_by_csa_subtype",
                "Số sự việc xâm hại tình dục trẻ em theo hành vi (Nghị định 56/2017/NĐ-CP) và giới tính của học sinh",
                "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and the pupil's sex",
                "incidents",
            ),
            (
                "incidents_by_csa_subtype_and_age",
                "Số sự việc xâm hại tình dục trẻ em theo hành vi (Nghị định 56/2017/NĐ-CP) và độ tuổi của học sinh",
                "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and the pupil's age",
                "incidents",
            ),
            (
                "incidents_by_csa_subtype_and_school_level",
                "Số sự việc xâm hại tình dục trẻ em theo hành vi (Nghị định 56/2017/NĐ-CP) và cấp học",
                "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and school level",
                "incidents",
            ),
        ],
    );

    // Referrals: by agency type and status (outcome); timeliness.
    let statuses = REFERRAL_STATUSES
        .iter()
        .map(|(c, vi, en)| Label::new(c, vi, en))
        .collect();
    let agencies = crate::domain::org::AgencyType::ALL
        .iter()
        .map(|a| Label::new(a.as_str(), agency_vi(a.as_str()), agency_en(a.as_str())))
        .collect();
    let mut by_agency = RawTable::new(
        (
            "referrals_by_agency_and_status",
            "Số lượt chuyển gửi theo cơ quan tiếp nhận và kết quả",
            "Referrals by receiving agency and outcome",
            "referrals",
        ),
        agencies,
        statuses,
    );
    for (_, agency, status, n) in tallies.of("referral") {
        by_agency.add(agency, status, n);
    }
    // on_time or late (acknowledged), overdue or pending (not yet).
    let mut timeliness: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, judged, _, n) in tallies
        .of("referral_ack")
        .chain(tallies.of("referral_open"))
    {
        *timeliness.entry(judged).or_default() += n;
    }

    // Disclosure control, table group by table group; cells that could be
    // differenced against a released report are hidden first. A group's
    // tables share their totals row (the cases' and incidents' tables: the
    // counts by sex) or, transposed, their totals column (the contexts' and
    // sub-types' tables: the count of each context), and are suppressed
    // together so that none gives back a cell another hides.
    let released = Released::from_reports(&differencing::overlapping(
        conn,
        area,
        &period.id,
        (from, to),
        true,
    )?);
    let mut differenced = 0;
    let mut published = Vec::new();
    for (group, by_rows) in [
        (vec![by_age, by_level, by_area, by_disability], false),
        (vec![by_type, by_relation, by_delay], false),
        (Vec::from(by_context), true),
        (Vec::from(by_csa), true),
        (vec![by_agency], false),
    ] {
        let grids: Vec<Vec<Vec<u64>>> = group.iter().map(RawTable::grid).collect();
        let forced: Vec<Option<Mask>> = group
            .iter()
            .zip(&grids)
            .map(|(raw, grid)| raw.differenced(grid, &released, policy))
            .collect();
        differenced += forced
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .filter(|hidden| **hidden)
            .count();
        let masks = if by_rows {
            let turned: Vec<Vec<Vec<u64>>> = grids.iter().map(|g| transpose(g)).collect();
            let forced: Vec<Option<Mask>> = forced
                .iter()
                .map(|mask| mask.as_ref().map(|m| transpose(m)))
                .collect();
            suppress_linked(&turned, k, &forced)
                .iter()
                .map(|m| transpose(m))
                .collect()
        } else {
            suppress_linked(&grids, k, &forced)
        };
        for ((raw, grid), mask) in group.into_iter().zip(&grids).zip(&masks) {
            published.push(raw.publish(grid, mask, policy));
        }
    }
    // The area table is left out when its rows still single out a school,
    // or when one of them is a child area plus a lone school: the child
    // area's own report would give that school's figures by subtraction
    // (issue 21, "… and other" row; docs/SECURITY.md).
    if area_rows.len() < 2 || lone_school {
        published.retain(|t| t.code != "cases_by_area");
    }

    // Schools: totals only, above the size threshold, protected like a table.
    let school_list: Vec<(String, u64)> = school_totals.into_iter().collect();
    let school_grid = augment(
        &school_list
            .iter()
            .map(|(_, n)| vec![*n])
            .collect::<Vec<_>>(),
        1,
    );
    let school_forced: Mask = school_grid
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let code = school_list
                .get(i)
                .and_then(|(id, _)| tree.by_id.get(id))
                .map(|o| o.code.clone());
            line.iter()
                .enumerate()
                .map(|(c, n)| {
                    code.as_ref().is_some_and(|code| {
                        c == 0
                            && released.would_leak(
                                &(
                                    differencing::SCHOOLS.to_owned(),
                                    code.clone(),
                                    "cases".to_owned(),
                                ),
                                policy.round(*n),
                                policy.min_count,
                            )
                    })
                })
                .collect()
        })
        .collect();
    differenced += school_forced.iter().flatten().filter(|h| **h).count();
    let school_mask = suppress(
        &school_grid,
        policy.school_min_total,
        Some(&school_forced),
        false,
    );
    let schools_out = school_list
        .iter()
        .enumerate()
        .filter_map(|(i, (id, n))| {
            let org = tree.by_id.get(id)?;
            let hidden = school_mask
                .get(i)
                .and_then(|l| l.first())
                .copied()
                .unwrap_or(true);
            Some(SchoolTotal {
                code: org.code.clone(),
                name: org.name.clone(),
                cases: if hidden {
                    Cell::Hidden(policy.suppressed_mark.clone())
                } else {
                    Cell::Count(policy.round(*n))
                },
            })
        })
        .collect();

    // KPIs, each from counts that are safe to publish.
    let count = |key: &str| timeliness.get(key).copied().unwrap_or(0);
    let due = count("on_time") + count("late") + count("overdue");
    let mut kpis = vec![Kpi {
        code: "referrals_acknowledged_on_time".into(),
        vi: "Tỷ lệ chuyển gửi được xác nhận đã nhận đúng hạn".into(),
        en: "Referrals acknowledged within their deadline".into(),
        unit: "percent".into(),
        value: share(policy, count("on_time"), due),
    }];
    let (hours, n) = query::median(&tallies.histogram("referral_ack"));
    kpis.push(median_kpi(
        policy,
        "median_hours_to_acknowledge",
        "Thời gian đến khi xác nhận đã nhận (trung vị, giờ)",
        "Median time to acknowledge (hours)",
        "hours",
        hours,
        n,
    ));
    let first_band = ctx
        .taxonomy
        .terms("reporting_delay")
        .first()
        .map(|t| t.code.clone())
        .unwrap_or_default();
    let incidents_total: u64 = tallies.of("incident_delay").map(|(.., n)| n).sum();
    let quick: u64 = tallies
        .of("incident_delay")
        .filter(|(_, _, delay, _)| *delay == first_band)
        .map(|(.., n)| n)
        .sum();
    kpis.push(Kpi {
        code: "incidents_reported_quickly".into(),
        vi: "Tỷ lệ sự việc được báo cáo trong khoảng thời gian ngắn nhất (0–3 ngày)".into(),
        en: "Incidents reported within the shortest delay band (0–3 days)".into(),
        unit: "percent".into(),
        value: share(policy, quick, incidents_total),
    });
    let (days, n) = query::median(&tallies.histogram("closure"));
    kpis.push(median_kpi(
        policy,
        "median_days_to_closure",
        "Thời gian giải quyết đến khi đóng hồ sơ (trung vị, ngày)",
        "Median time to closure (days)",
        "days",
        days,
        n,
    ));

    let indicators = indicators::progress(conn, ctx, area, &tree.children, &tree.by_id, period)?;
    let mut notes = Vec::new();
    if differenced > 0 {
        let others = released
            .sources
            .iter()
            .map(|(area, period)| format!("{area} {period}"))
            .collect::<Vec<_>>()
            .join(", ");
        notes.push(Note {
            vi: format!(
                "{differenced} ô số liệu được ẩn (ký hiệu {mark}) vì nếu trừ cho số liệu tương ứng của báo cáo đã công bố hoặc bản nháp đã lưu có phạm vi chồng lấn ({others}) sẽ lộ ra một số từ 1 đến {small}.",
                mark = policy.suppressed_mark,
                small = k.saturating_sub(1)
            ),
            en: format!(
                "{differenced} figures are hidden (shown as {mark}) because subtracting the matching figure of a released report of overlapping scope or of a stored draft ({others}) would reveal a count from 1 to {small}.",
                mark = policy.suppressed_mark,
                small = k.saturating_sub(1)
            ),
        });
    }
    if period.last_day >= ctx.clock.now().naive_utc().date() {
        notes.push(Note {
            vi: "Kỳ báo cáo chưa kết thúc: số liệu còn thay đổi.".into(),
            en: "The period is not over yet: figures will still change.".into(),
        });
    }
    Ok(Report {
        area: AreaRef {
            id: area.id.clone(),
            code: area.code.clone(),
            name: area.name.clone(),
        },
        period: PeriodRef {
            id: period.id.clone(),
            vi: period.vi.clone(),
            en: period.en.clone(),
            first_day: date_text(period.first_day),
            last_day: date_text(period.last_day),
            due: period.due.map(date_text),
        },
        computed_at: now.and_utc().to_rfc3339(),
        min_count: k,
        suppressed_mark: policy.suppressed_mark.clone(),
        rounding_base: policy.rounding_base,
        tables: published,
        kpis,
        schools: schools_out,
        indicators,
        notes,
    })
}

/// `part / whole` in percent, only when `part`, `whole` and the rest are
/// each publishable.
pub fn share(policy: &DisclosurePolicy, part: u64, whole: u64) -> Option<f64> {
    if whole == 0 || part > whole {
        return None;
    }
    if !(policy.safe(part) && policy.safe(whole) && policy.safe(whole - part)) {
        return None;
    }
    let (part, whole) = (policy.round(part), policy.round(whole));
    if whole == 0 {
        return None;
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let percent = part as f64 * 100.0 / whole as f64;
    Some((percent * 10.0).round() / 10.0)
}

fn median_kpi(
    policy: &DisclosurePolicy,
    code: &str,
    vi: &str,
    en: &str,
    unit: &str,
    value: Option<i64>,
    n: u64,
) -> Kpi {
    #[expect(clippy::cast_precision_loss, reason = "durations far below 2^52")]
    let value = value.filter(|_| n >= policy.min_count).map(|v| v as f64);
    Kpi {
        code: code.into(),
        vi: vi.into(),
        en: en.into(),
        unit: unit.into(),
        value,
    }
}

fn agency_vi(code: &str) -> &'static str {
    match code {
        "police" => "Công an",
        "health" => "Y tế",
        "social_protection" => "Bảo vệ trẻ em, xã hội",
        "womens_union" => "Hội Liên hiệp Phụ nữ",
        "legal_aid" => "Trợ giúp pháp lý",
        "hotline" => "Tổng đài 111",
        _ => "Cơ quan khác",
    }
}

fn agency_en(code: &str) -> &'static str {
    match code {
        "police" => "Police",
        "health" => "Health",
        "social_protection" => "Child and social protection",
        "womens_union" => "Women's Union",
        "legal_aid" => "Legal aid",
        "hotline" => "Hotline 111",
        _ => "Other agency",
    }
}

/// The correction note for the latest report released before `period`
/// whose figures changed since (the released one stays as it was). `live`:
/// for a live answer (the current figures as a live answer gives them).
pub fn corrections(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    area: &OrganisationRow,
    period: &Period,
    live: bool,
) -> Result<Vec<Note>, StatsError> {
    let (start, _) = period.window_utc(ctx.utc_offset);
    let earlier = table::released_of(conn, std::slice::from_ref(&area.id))?
        .into_iter()
        .filter(|r| r.window_end <= start)
        .max_by_key(|r| r.window_end);
    let Some(row) = earlier else {
        return Ok(Vec::new());
    };
    let Ok(before) = serde_json::from_str::<Report>(&row.body) else {
        return Ok(Vec::new());
    };
    let Ok(old_period) = ctx.reporting.period(&row.period) else {
        return Ok(Vec::new());
    };
    let now = compute_as(conn, ctx, area, &old_period, live)?;
    let mut notes = Vec::new();
    for table in &before.tables {
        let Some(current) = now.table(&table.code) else {
            continue;
        };
        if current.total == table.total {
            continue;
        }
        let text = match (table.total.count(), current.total.count()) {
            (Some(was), Some(is)) if ctx.disclosure.safe(was.abs_diff(is)) => (
                format!("{}: {} → {}", table.vi, was, is),
                format!("{}: {} → {}", table.en, was, is),
            ),
            _ => (
                format!(
                    "{}: đã thay đổi (mức thay đổi quá nhỏ để công bố)",
                    table.vi
                ),
                format!("{}: changed (the change is too small to publish)", table.en),
            ),
        };
        notes.push(Note {
            vi: format!(
                "Đính chính số liệu {} (đã công bố, không sửa báo cáo cũ) — {}",
                old_period.vi, text.0
            ),
            en: format!(
                "Correction to {} (released; the released report is not changed) — {}",
                old_period.en, text.1
            ),
        });
    }
    Ok(notes)
}
