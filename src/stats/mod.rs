//! District statistics without disclosure (DESIGN §5).
//!
//! Owns reporting periods and disclosure control as data (`policy`), the
//! aggregate queries (`query`: GROUP BY in the database over coded columns),
//! cell suppression (`suppress`), the report (`report`), its release,
//! exports (`export`: CSV, XLSX) and charts (`chart`: SVG), and the plan's
//! staff indicators (`indicators`).
//!
//! Must never: read a sealed column, load case rows into memory, publish a
//! count from 1 to k−1 or one that can be worked out from published totals,
//! or change a released report.

pub mod chart;
pub mod differencing;
pub mod export;
pub mod indicators;
pub mod policy;
pub mod query;
pub mod report;
pub mod suppress;
pub mod unit_indicators;
pub mod unit_notes;

use crate::audit::{AuditEvent, Auditor, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::sha256_hex;
use crate::db::organisations::{self, OrganisationRow};
use crate::db::stats::{self as table, ReportRow};
use crate::db::{DbConnection, DbError, write_transaction};
pub use policy::{DisclosurePolicy, Period, ReportingPolicy};
pub use report::{Report, StatsContext};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("not found")]
    NotFound,
    #[error("statistics are published for areas, not for single schools or agencies")]
    NotAnArea,
    #[error("this area has fewer than two schools: its figures would be one school's")]
    TooFewSchools,
    #[error("the period is not over yet")]
    PeriodNotOver,
    #[error("a report for this area and period is already released")]
    AlreadyReleased,
    #[error("a report released since this draft was computed overlaps it: compute a new draft")]
    DraftSuperseded,
    #[error("this school already entered its figures for the period")]
    AlreadySubmitted,
    #[error("invalid input")]
    Invalid(Vec<String>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("a stored report cannot be read: {0}")]
    Stored(String),
}

impl From<diesel::result::Error> for StatsError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// A stored report with its state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredReport {
    pub id: String,
    pub status: String,
    pub released_at: Option<String>,
    pub body_sha256: String,
    #[serde(flatten)]
    pub report: Report,
}

impl TryFrom<&ReportRow> for StoredReport {
    type Error = StatsError;

    fn try_from(row: &ReportRow) -> Result<Self, StatsError> {
        let report: Report =
            serde_json::from_str(&row.body).map_err(|e| StatsError::Stored(e.to_string()))?;
        Ok(Self {
            id: row.id.clone(),
            status: row.status.clone(),
            released_at: row.released_at.map(|t| t.and_utc().to_rfc3339()),
            body_sha256: row.body_sha256.clone(),
            report,
        })
    }
}

/// The area with this code, if it is an area.
pub fn area_by_code(conn: &mut DbConnection, code: &str) -> Result<OrganisationRow, StatsError> {
    organisations::find_by_code(conn, code.trim())
        .map_err(DbError::Query)?
        .ok_or(StatsError::NotFound)
}

/// The live report (not stored), for anyone allowed to read statistics of
/// the area. With a released report for the area and period, that one.
/// A live answer publishes its counts rounded to a base of at least k
/// ([`DisclosurePolicy::for_live`]): live answers are not stored, so no
/// later answer can be checked against them, and two of them never differ
/// by 1 to k−1 (docs/SECURITY.md).
pub fn live_or_released(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    by: &Capability,
    area: &OrganisationRow,
    period: &Period,
) -> Result<(Report, Option<StoredReport>), StatsError> {
    if !by.allows(Action::StatsRead, &area.id) {
        return Err(StatsError::NotFound);
    }
    if let Some(row) = table::released(conn, &area.id, &period.id)? {
        let stored = StoredReport::try_from(&row)?;
        return Ok((stored.report.clone(), Some(stored)));
    }
    let mut report = report::compute_live(conn, ctx, area, period)?;
    report
        .notes
        .extend(report::corrections(conn, ctx, area, period, true)?);
    Ok((report, None))
}

/// An ad-hoc report (báo cáo đột xuất) of `area` over the local days
/// `first..=last`, for whoever may release the area's reports: a live
/// answer under the same disclosure control (rounded like every live
/// answer, compared with every stored report of overlapping scope).
pub fn ad_hoc(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    by: &Capability,
    area: &OrganisationRow,
    window: &Period,
) -> Result<Report, StatsError> {
    if !by.allows(Action::StatsRelease, &area.id) {
        return Err(StatsError::NotFound);
    }
    report::compute_live(conn, ctx, area, window)
}

/// Computes and stores a draft for review.
pub fn draft(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    auditor: &Auditor,
    by: &Capability,
    area: &OrganisationRow,
    period: &Period,
) -> Result<StoredReport, StatsError> {
    if !by.allows(Action::StatsRelease, &area.id) {
        return Err(StatsError::NotFound);
    }
    let mut report = report::compute(conn, ctx, area, period)?;
    report
        .notes
        .extend(report::corrections(conn, ctx, area, period, false)?);
    let body = serde_json::to_string(&report).map_err(|e| StatsError::Stored(e.to_string()))?;
    let (start, end) = period.window_utc(ctx.utc_offset);
    let row = ReportRow {
        id: uuid::Uuid::now_v7().to_string(),
        area_id: area.id.clone(),
        period: period.id.clone(),
        window_start: start,
        window_end: end,
        status: "draft".into(),
        body_sha256: sha256_hex(body.as_bytes()),
        body,
        computed_by: by.author(),
        computed_at: ctx.clock.now_naive(),
        released_by: None,
        released_at: None,
    };
    write_transaction(conn, |conn| {
        table::insert_report(conn, &row)?;
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::STATS_REPORT_COMPUTED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("stats_report", row.id.clone())
                .detail("area_id", area.id.clone())
                .detail("period", period.id.clone()),
        )?;
        Ok::<_, StatsError>(())
    })?;
    StoredReport::try_from(&row)
}

/// A stored report, for a caller allowed to read statistics of its area
/// (drafts: allowed to release them).
pub fn stored(
    conn: &mut DbConnection,
    by_area: impl FnOnce(&mut DbConnection, &str, bool) -> Result<Capability, StatsError>,
    id: &str,
) -> Result<StoredReport, StatsError> {
    let row = table::find_report(conn, id)?.ok_or(StatsError::NotFound)?;
    let draft = row.status == "draft";
    let capability = by_area(conn, &row.area_id, draft)?;
    let needed = if draft {
        Action::StatsRelease
    } else {
        Action::StatsRead
    };
    if !capability.allows(needed, &row.area_id) {
        return Err(StatsError::NotFound);
    }
    StoredReport::try_from(&row)
}

/// Releases a reviewed draft: from now on it never changes.
pub fn release(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    auditor: &Auditor,
    by: &Capability,
    id: &str,
) -> Result<StoredReport, StatsError> {
    write_transaction(conn, |conn| {
        let row = table::find_report(conn, id)?.ok_or(StatsError::NotFound)?;
        if !by.allows(Action::StatsRelease, &row.area_id) {
            return Err(StatsError::NotFound);
        }
        if row.status == "released" {
            return Err(StatsError::AlreadyReleased);
        }
        let now = ctx.clock.now_naive();
        if row.window_end > now {
            return Err(StatsError::PeriodNotOver);
        }
        if table::released(conn, &row.area_id, &row.period)?.is_some() {
            return Err(StatsError::AlreadyReleased);
        }
        // The draft was computed against the reports released then; one
        // released since could be differenced against it.
        let draft = StoredReport::try_from(&row)?.report;
        let area = organisations::find(conn, &row.area_id)
            .map_err(DbError::Query)?
            .ok_or(StatsError::NotFound)?;
        let others = differencing::overlapping(
            conn,
            &area,
            &row.period,
            (row.window_start, row.window_end),
            false,
        )?;
        let released = differencing::Released::from_reports(&others);
        if !differencing::conflicts(&draft, &released, ctx.disclosure.min_count).is_empty() {
            return Err(StatsError::DraftSuperseded);
        }
        table::release(conn, id, &by.author(), now)?;
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::STATS_REPORT_RELEASED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("stats_report", id.to_owned())
                .detail("area_id", row.area_id.clone())
                .detail("period", row.period.clone())
                .detail("body_sha256", row.body_sha256.clone()),
        )?;
        let row = table::find_report(conn, id)?.ok_or(StatsError::NotFound)?;
        StoredReport::try_from(&row)
    })
}

/// Records an export (who, which report or area and period, which format).
pub fn audit_export(
    conn: &mut DbConnection,
    ctx: &StatsContext<'_>,
    auditor: &Auditor,
    by: &Capability,
    area_id: &str,
    period: &str,
    format: &str,
) -> Result<(), StatsError> {
    write_transaction(conn, |conn| {
        auditor.append(
            conn,
            ctx.clock,
            &AuditEvent::new(action::STATS_EXPORTED, Outcome::Success)
                .actor(by.actor())
                .request(by.request())
                .target("organisation", area_id.to_owned())
                .detail("period", period.to_owned())
                .detail("format", format.to_owned()),
        )?;
        Ok(())
    })
}
