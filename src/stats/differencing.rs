//! Differencing between released reports (REFERENCE §7, `policies/disclosure.toml`).
//!
//! Released reports never change, and two of them can overlap: a six-month
//! report and a semester of the same area, or a district and one of its
//! communes for the same months. A reader who subtracts a published cell of
//! one from the matching published cell of the other learns the count of
//! the difference (the months or the schools in one and not the other). So
//! a report is computed against every released report of overlapping scope
//! (the same area, or an area above or below it, with a window that
//! overlaps), and a cell is hidden (primary suppression, same mark) when its
//! published count differs from the matching published count of one of them
//! by 1 to k−1; complementary suppression then runs as usual, so the hidden
//! cell cannot be recovered from its own report's margins either.
//!
//! Cells match by table code, row code and column code (totals included);
//! a school's total matches by school code. At release a draft is checked
//! again against what was released since it was computed.
//!
//! Must never: read anything but released bodies and the organisation tree.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;

use super::StatsError;
use super::report::{Cell, Report};
use crate::db::DbConnection;
use crate::db::organisations::{self, OrganisationRow};
use crate::db::stats as table;

/// The row or column code of a table's totals.
pub const TOTAL: &str = "total";
/// The table code of schools' totals (one column, `cases`).
pub const SCHOOLS: &str = "schools";

/// (table code, row code, column code).
pub type CellKey = (String, String, String);

/// The published counts of released reports, by cell.
#[derive(Debug, Default)]
pub struct Released {
    cells: HashMap<CellKey, Vec<u64>>,
    /// Which reports (area code, period id) they come from.
    pub sources: Vec<(String, String)>,
}

impl Released {
    pub fn from_reports(reports: &[Report]) -> Self {
        let mut out = Self::default();
        for report in reports {
            out.sources
                .push((report.area.code.clone(), report.period.id.clone()));
            for (key, n) in published_cells(report) {
                out.cells.entry(key).or_default().push(n);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether publishing `value` in the cell `key` would let a reader learn
    /// a count from 1 to k−1 by subtracting a released cell.
    pub fn would_leak(&self, key: &CellKey, value: u64, k: u64) -> bool {
        self.cells
            .get(key)
            .is_some_and(|released| released.iter().any(|r| leaks(*r, value, k)))
    }
}

/// A difference from 1 to k−1 between two published counts.
pub fn leaks(a: u64, b: u64, k: u64) -> bool {
    (1..k).contains(&a.abs_diff(b))
}

fn key(table: &str, row: &str, column: &str) -> CellKey {
    (table.to_owned(), row.to_owned(), column.to_owned())
}

/// Every published count of a report with its cell.
pub fn published_cells(report: &Report) -> Vec<(CellKey, u64)> {
    let mut out = Vec::new();
    let mut push = |k: CellKey, cell: &Cell| {
        if let Some(n) = cell.count() {
            out.push((k, n));
        }
    };
    for t in &report.tables {
        for (row, line) in t.rows.iter().zip(&t.cells) {
            for (column, cell) in t.columns.iter().zip(line) {
                push(key(&t.code, &row.code, &column.code), cell);
            }
        }
        for (row, cell) in t.rows.iter().zip(&t.row_totals) {
            push(key(&t.code, &row.code, TOTAL), cell);
        }
        for (column, cell) in t.columns.iter().zip(&t.column_totals) {
            push(key(&t.code, TOTAL, &column.code), cell);
        }
        push(key(&t.code, TOTAL, TOTAL), &t.total);
    }
    for school in &report.schools {
        push(key(SCHOOLS, &school.code, "cases"), &school.cases);
    }
    out
}

/// The published cells of `report` that could be differenced against one
/// of `released` (empty when it is safe).
pub fn conflicts(report: &Report, released: &Released, k: u64) -> Vec<CellKey> {
    published_cells(report)
        .into_iter()
        .filter(|(key, n)| released.would_leak(key, *n, k))
        .map(|(key, _)| key)
        .collect()
}

/// The stored reports whose scope overlaps `area` over `[start, end)`:
/// the same area or an area above or below it, with an overlapping window,
/// except the reports of `area` for `period` itself. `drafts`: drafts too
/// (every stored body a caller can obtain), not only released reports.
pub fn overlapping(
    conn: &mut DbConnection,
    area: &OrganisationRow,
    period: &str,
    (start, end): (NaiveDateTime, NaiveDateTime),
    drafts: bool,
) -> Result<Vec<Report>, StatsError> {
    let all = organisations::all(conn).map_err(crate::db::DbError::Query)?;
    let ids = related_areas(&all, &area.id);
    let rows = if drafts {
        table::stored_of(conn, &ids)?
    } else {
        table::released_of(conn, &ids)?
    };
    let mut out = Vec::new();
    for row in rows {
        if row.area_id == area.id && row.period == period {
            continue;
        }
        if !(row.window_start < end && start < row.window_end) {
            continue;
        }
        let report: Report =
            serde_json::from_str(&row.body).map_err(|e| StatsError::Stored(e.to_string()))?;
        out.push(report);
    }
    Ok(out)
}

/// `area`, the areas above it and the areas below it.
fn related_areas(all: &[OrganisationRow], area_id: &str) -> Vec<String> {
    let by_id: HashMap<&str, &OrganisationRow> = all.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut ids: Vec<String> = vec![area_id.to_owned()];
    let mut seen: HashSet<String> = ids.iter().cloned().collect();
    // Above.
    let mut next = by_id.get(area_id).and_then(|o| o.parent_id.clone());
    while let Some(id) = next {
        if !seen.insert(id.clone()) {
            break;
        }
        next = by_id.get(id.as_str()).and_then(|o| o.parent_id.clone());
        ids.push(id);
    }
    // Below.
    let mut stack = vec![area_id.to_owned()];
    while let Some(parent) = stack.pop() {
        for child in all
            .iter()
            .filter(|o| o.kind == "area" && o.parent_id.as_deref() == Some(parent.as_str()))
        {
            if seen.insert(child.id.clone()) {
                ids.push(child.id.clone());
                stack.push(child.id.clone());
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_from_one_to_k_minus_one_leak() {
        assert!(!leaks(40, 40, 5));
        assert!(leaks(40, 38, 5));
        assert!(leaks(38, 40, 5));
        assert!(leaks(40, 36, 5));
        assert!(!leaks(40, 35, 5));
        assert!(!leaks(0, 7, 5));
    }
}
