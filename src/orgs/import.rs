//! `caseguard org import FILE`: TOML or CSV, all rows or none.
//!
//! Both formats carry the same fields — `kind`, `code`, `name`, `parent`,
//! `level` (area level or school level), `agency_type` — and every problem is
//! reported with the line it is on. See `docs/OPERATIONS.md` for examples.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::clock::Clock;
use crate::db::organisations::{self, NewOrganisation, OrganisationChanges, OrganisationRow};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::domain::org::{MAX_TREE_DEPTH, OrgCode, OrgKind, OrgSpec};

/// Largest import file accepted.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One row as written in the file, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based line of the row in its file.
    pub line: usize,
    pub kind: String,
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    pub level: Option<String>,
    pub agency_type: Option<String>,
}

/// A problem found in the file, with the line it is on when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn problem(line: Option<usize>, message: impl Into<String>) -> ImportProblem {
    ImportProblem {
        line,
        message: message.into(),
    }
}

/// Why an import did not happen. In every case nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file has {} problem(s); nothing was imported", .0.len())]
    Invalid(Vec<ImportProblem>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl From<Vec<ImportProblem>> for ImportError {
    fn from(problems: Vec<ImportProblem>) -> Self {
        Self::Invalid(problems)
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged",
            self.created, self.updated, self.unchanged
        )
    }
}

/// Reads a TOML (`.toml`) or CSV (`.csv`) file into rows.
pub fn read_file(path: &Path) -> Result<Vec<ImportRow>, ImportError> {
    let one = |message: String| ImportError::Invalid(vec![problem(None, message)]);
    let metadata =
        std::fs::metadata(path).map_err(|e| one(format!("cannot read {}: {e}", path.display())))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(one(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| one(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        one("the file is not UTF-8 text; save it as UTF-8 (\"CSV UTF-8\" in spreadsheets)".into())
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Ok(parse_toml(text)?),
        Some("csv") => Ok(parse_csv(text)?),
        _ => Err(one("the file name must end in .toml or .csv".into())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    organisation: Vec<toml::Spanned<TomlRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRow {
    kind: String,
    code: String,
    name: String,
    parent: Option<String>,
    level: Option<String>,
    agency_type: Option<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| {
        before.bytes().filter(|b| *b == b'\n').count() + 1
    })
}

/// Parses the TOML form: a list of `[[organisation]]` tables.
pub fn parse_toml(text: &str) -> Result<Vec<ImportRow>, Vec<ImportProblem>> {
    let file: TomlFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map(|span| line_of(text, span.start));
        vec![problem(line, error.message().trim().to_owned())]
    })?;
    if file.organisation.is_empty() {
        return Err(vec![problem(
            None,
            "the file has no [[organisation]] entries",
        )]);
    }
    Ok(file
        .organisation
        .into_iter()
        .map(|spanned| {
            let line = line_of(text, spanned.span().start);
            let row = spanned.into_inner();
            ImportRow {
                line,
                kind: row.kind,
                code: row.code,
                name: row.name,
                parent: row.parent,
                level: row.level,
                agency_type: row.agency_type,
            }
        })
        .collect())
}

const CSV_COLUMNS: &[&str] = &["kind", "code", "name", "parent", "level", "agency_type"];
const CSV_REQUIRED: &[&str] = &["kind", "code", "name"];

/// Parses the CSV form: a header row naming the columns, then one row per
/// organisation. Lines starting with `#` are comments; empty cells are absent
/// values.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, Vec<ImportProblem>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![csv_problem(&e, 1)])?
        .clone();
    // The header is the first line that is not a comment.
    let header_line = text
        .lines()
        .position(|l| !l.trim_start().starts_with('#'))
        .map_or(1, |i| i + 1);
    let mut index = HashMap::new();
    let mut problems = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if !CSV_COLUMNS.contains(&name.as_str()) {
            problems.push(problem(
                Some(header_line),
                format!(
                    "unknown column `{}` (expected: {})",
                    name.escape_debug(),
                    CSV_COLUMNS.join(", ")
                ),
            ));
        } else if index.insert(name.clone(), i).is_some() {
            problems.push(problem(
                Some(header_line),
                format!("column `{name}` appears twice"),
            ));
        }
    }
    for required in CSV_REQUIRED {
        if !index.contains_key(*required) {
            problems.push(problem(
                Some(header_line),
                format!("missing column `{required}`"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error
                    .position()
                    .and_then(|p| usize::try_from(p.byte()).ok())
                    .map_or(0, |offset| record_line(text, offset));
                problems.push(csv_problem(&error, line));
                continue;
            }
        };
        let line = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .map_or(0, |offset| record_line(text, offset));
        let cell = |column: &str| -> Option<String> {
            index
                .get(column)
                .and_then(|i| record.get(*i))
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        rows.push(ImportRow {
            line,
            kind: cell("kind").unwrap_or_default(),
            code: cell("code").unwrap_or_default(),
            name: cell("name").unwrap_or_default(),
            parent: cell("parent"),
            level: cell("level"),
            agency_type: cell("agency_type"),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if rows.is_empty() {
        return Err(vec![problem(None, "the file has no rows after the header")]);
    }
    Ok(rows)
}

/// The line a CSV record is on. The csv crate reports a record's position as
/// where it started reading, which includes skipped comment and blank lines.
fn record_line(text: &str, offset: usize) -> usize {
    let start = line_of(text, offset);
    text.lines()
        .enumerate()
        .skip(start.saturating_sub(1))
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(start, |(i, _)| i + 1)
}

fn csv_problem(error: &csv::Error, line: usize) -> ImportProblem {
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} cells, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
        _ => error.to_string(),
    };
    problem(Some(line).filter(|l| *l > 0), message)
}

/// Validates `rows` as a whole against what is stored and applies them in one
/// transaction. Existing organisations (same code) are updated; nothing
/// changes if any row has a problem.
pub fn import(
    conn: &mut DbConnection,
    rows: &[ImportRow],
    clock: &dyn Clock,
) -> Result<ImportSummary, ImportError> {
    let specs = parse_rows(rows)?;
    write_transaction(conn, |conn| {
        let existing = organisations::all(conn)?;
        let plan = plan(&specs, &existing)?;
        apply(conn, &plan, clock)
    })
}

/// Turns rows into specs, collecting every row-level problem.
fn parse_rows(rows: &[ImportRow]) -> Result<Vec<(usize, OrgSpec)>, Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let mut specs = Vec::new();
    let mut seen: HashMap<OrgCode, usize> = HashMap::new();
    for row in rows {
        match OrgSpec::parse(
            &row.kind,
            &row.code,
            &row.name,
            row.parent.as_deref(),
            row.level.as_deref(),
            row.agency_type.as_deref(),
        ) {
            Ok(spec) => {
                if let Some(first) = seen.insert(spec.code.clone(), row.line) {
                    problems.push(problem(
                        Some(row.line),
                        format!("code {} already appears on line {first}", spec.code),
                    ));
                } else {
                    specs.push((row.line, spec));
                }
            }
            Err(message) => problems.push(problem(Some(row.line), message)),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// One organisation as it will be after the import.
struct Node {
    kind: OrgKind,
    parent: Option<OrgCode>,
}

struct Plan<'a> {
    /// Specs in an order where every parent comes before its children.
    ordered: Vec<&'a OrgSpec>,
    existing: HashMap<String, &'a OrganisationRow>,
}

/// Checks the import against the stored tree: kinds never change, parents
/// exist and are areas, no cycles, depth within bounds.
fn plan<'a>(
    specs: &'a [(usize, OrgSpec)],
    existing: &'a [OrganisationRow],
) -> Result<Plan<'a>, Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let by_id: HashMap<&str, &OrganisationRow> =
        existing.iter().map(|r| (r.id.as_str(), r)).collect();
    // The tree after the import: stored organisations overlaid with the file.
    let mut tree: BTreeMap<OrgCode, Node> = BTreeMap::new();
    for row in existing {
        let (Ok(code), Ok(kind)) = (OrgCode::parse(&row.code), OrgKind::parse(&row.kind)) else {
            continue;
        };
        let parent = row
            .parent_id
            .as_deref()
            .and_then(|id| by_id.get(id))
            .and_then(|p| OrgCode::parse(&p.code).ok());
        tree.insert(code, Node { kind, parent });
    }
    let existing_by_code: HashMap<String, &OrganisationRow> =
        existing.iter().map(|r| (r.code.clone(), r)).collect();
    for (line, spec) in specs {
        let kind = spec.details.kind();
        if let Some(stored) = existing_by_code.get(spec.code.as_str())
            && stored.kind != kind.as_str()
        {
            problems.push(problem(
                Some(*line),
                format!(
                    "{} is already stored as a {}; its kind cannot change to {kind}",
                    spec.code, stored.kind
                ),
            ));
        }
        tree.insert(
            spec.code.clone(),
            Node {
                kind,
                parent: spec.parent.clone(),
            },
        );
    }
    let mut depth_of: HashMap<&OrgCode, usize> = HashMap::new();
    for (line, spec) in specs {
        match ancestry_depth(&tree, &spec.code) {
            Ok(depth) => {
                depth_of.insert(&spec.code, depth);
            }
            Err(message) => problems.push(problem(Some(*line), message)),
        }
        if let Some(parent) = &spec.parent {
            match tree.get(parent) {
                None => problems.push(problem(
                    Some(*line),
                    format!("parent {parent} is neither in the file nor stored"),
                )),
                Some(node) if node.kind != OrgKind::Area => problems.push(problem(
                    Some(*line),
                    format!(
                        "parent {parent} is a {}, but only areas can have children",
                        node.kind
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    let mut ordered: Vec<&OrgSpec> = specs.iter().map(|(_, spec)| spec).collect();
    ordered.sort_by_key(|spec| depth_of.get(&spec.code).copied().unwrap_or(0));
    Ok(Plan {
        ordered,
        existing: existing_by_code.into_iter().collect(),
    })
}

/// Walks up from `code` to its root; fails on a cycle, a missing ancestor or
/// a tree deeper than [`MAX_TREE_DEPTH`].
fn ancestry_depth(tree: &BTreeMap<OrgCode, Node>, code: &OrgCode) -> Result<usize, String> {
    let mut visited: HashSet<&OrgCode> = HashSet::new();
    let mut current = code;
    let mut depth = 0;
    while let Some(parent) = tree.get(current).and_then(|node| node.parent.as_ref()) {
        if !visited.insert(current) || parent == code {
            return Err(format!("{code} has a cycle among its ancestors"));
        }
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err(format!(
                "{code} would be more than {MAX_TREE_DEPTH} levels below its root"
            ));
        }
        if !tree.contains_key(parent) {
            // Reported separately as a missing parent.
            break;
        }
        current = parent;
    }
    Ok(depth)
}

fn apply(
    conn: &mut DbConnection,
    plan: &Plan<'_>,
    clock: &dyn Clock,
) -> Result<ImportSummary, ImportError> {
    let now = clock.now_naive();
    let mut summary = ImportSummary::default();
    // Ids of organisations by code, growing as new ones are inserted.
    let mut ids: HashMap<String, String> = plan
        .existing
        .iter()
        .map(|(code, row)| (code.clone(), row.id.clone()))
        .collect();
    for spec in &plan.ordered {
        let parent_id = match &spec.parent {
            Some(parent) => Some(ids.get(parent.as_str()).cloned().ok_or_else(|| {
                ImportError::Invalid(vec![problem(None, format!("parent {parent} not found"))])
            })?),
            None => None,
        };
        match plan.existing.get(spec.code.as_str()) {
            Some(row) => {
                let changes = OrganisationChanges::from_spec(spec, parent_id, now);
                if changes.is_noop_for(row) {
                    summary.unchanged += 1;
                } else {
                    organisations::update(conn, &row.id, &changes)?;
                    summary.updated += 1;
                }
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                organisations::insert(
                    conn,
                    &NewOrganisation::from_spec(spec, id.clone(), parent_id, now),
                )?;
                ids.insert(spec.code.as_str().to_owned(), id);
                summary.created += 1;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_rows_carry_their_line() {
        let text = "# district\n\n[[organisation]]\nkind = \"area\"\ncode = \"D\"\nname = \"District\"\nlevel = \"district\"\n\n[[organisation]]\nkind = \"school\"\ncode = \"S\"\nname = \"School\"\nparent = \"D\"\nlevel = \"primary\"\n";
        let rows = parse_toml(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].code, "D");
        assert_eq!(rows[1].code, "S");
        assert!(rows[0].line >= 3 && rows[0].line <= 4, "{}", rows[0].line);
        assert!(rows[1].line >= 9 && rows[1].line <= 10, "{}", rows[1].line);
    }

    #[test]
    fn toml_unknown_keys_are_reported_with_a_line() {
        let text = "[[organisation]]\nkind = \"area\"\ncode = \"D\"\nname = \"District\"\nlevle = \"district\"\n";
        let problems = parse_toml(text).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("levle"), "{:?}", problems);
        assert!(problems[0].line.is_some());
    }

    #[test]
    fn csv_rows_carry_their_line_and_empty_cells_are_absent() {
        let text = "kind,code,name,parent,level,agency_type\n# comment\narea,D,District,,district,\nagency,P,Police,D,,police\n";
        let rows = parse_csv(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].parent.as_deref()), (3, None));
        assert_eq!(
            (rows[1].line, rows[1].agency_type.as_deref()),
            (4, Some("police"))
        );
    }

    #[test]
    fn csv_unknown_columns_and_ragged_rows_are_reported() {
        let problems = parse_csv("kind,code,name,colour\narea,D,D,red\n").unwrap_err();
        assert!(
            problems[0].message.contains("unknown column `colour`"),
            "{problems:?}"
        );
        let problems = parse_csv("kind,code,name\narea,D\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
    }

    #[test]
    fn duplicate_codes_in_a_file_are_refused() {
        let rows = vec![
            ImportRow {
                line: 2,
                kind: "area".into(),
                code: "d".into(),
                name: "D".into(),
                level: Some("district".into()),
                ..Default::default()
            },
            ImportRow {
                line: 3,
                kind: "area".into(),
                code: "D".into(),
                name: "D".into(),
                level: Some("district".into()),
                ..Default::default()
            },
        ];
        let problems = parse_rows(&rows).unwrap_err();
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.contains("already appears on line 2"));
    }

    #[test]
    fn cycles_and_bad_parents_are_found_before_anything_is_written() {
        let spec = |line, kind: &str, code: &str, parent: Option<&str>| {
            let level = if kind == "school" {
                "primary"
            } else {
                "district"
            };
            (
                line,
                OrgSpec::parse(kind, code, code, parent, Some(level), None).unwrap(),
            )
        };
        let specs = vec![
            spec(1, "area", "A", Some("B")),
            spec(2, "area", "B", Some("A")),
            spec(3, "school", "S", Some("A")),
            spec(4, "school", "T", Some("S")),
            spec(5, "school", "U", Some("MISSING")),
        ];
        let problems = plan(&specs, &[]).err().unwrap();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.starts_with("line 1:") && p.contains("cycle")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("line 4:") && p.contains("only areas")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("line 5:") && p.contains("MISSING")),
            "{text:?}"
        );
    }
}
