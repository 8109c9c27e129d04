//! `caseguard stats report`: the report of an area for a period, after
//! disclosure control, as JSON, CSV or XLSX; the export is audited.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use super::{Failure, OperatorConsole, Store};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub(super) enum StatsCommand {
    /// The report of an area for a period, after disclosure control: the
    /// released one when there is one, else computed now from live data.
    Report {
        /// Code of the area (e.g. SX-AL).
        #[arg(long)]
        area: String,
        /// The period, `<kind>-<year>` (e.g. six_month-2026; kinds in
        /// policies/reporting.toml).
        #[arg(long)]
        period: String,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
        /// Labels in Vietnamese (vi) or English (en).
        #[arg(long, default_value = "vi")]
        lang: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum ReportFormat {
    Csv,
    Xlsx,
    Json,
}

#[expect(
    clippy::too_many_arguments,
    reason = "one per command-line option, and the console"
)]
pub(super) fn report(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    console: &OperatorConsole,
    area: &str,
    period: &str,
    format: ReportFormat,
    lang: &str,
    out: Option<&Path>,
) -> Result<(), Failure> {
    use crate::stats::{self, DisclosurePolicy, ReportingPolicy, StatsContext};
    let lang = match lang {
        "vi" | "en" => lang,
        _ => return Err(Failure::usage("--lang must be vi or en")),
    };
    let dir = settings.policy_dir.as_deref();
    let reporting = ReportingPolicy::load(dir).map_err(Failure::usage)?;
    let disclosure = DisclosurePolicy::load(dir).map_err(Failure::usage)?;
    let taxonomy = crate::domain::taxonomy::Taxonomy::load(dir).map_err(Failure::usage)?;
    let calendar = crate::domain::calendar::Calendar::load(dir).map_err(Failure::usage)?;
    let period = reporting
        .period(period)
        .map_err(|e| Failure::usage(format!("--period: {e}")))?;
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let ctx = StatsContext {
        reporting: &reporting,
        disclosure: &disclosure,
        taxonomy: &taxonomy,
        utc_offset: calendar.utc_offset(),
        clock,
    };
    let failed = |e: stats::StatsError| match e {
        stats::StatsError::NotFound => {
            Failure::usage(format!("--area: no organisation has the code {area}"))
        }
        stats::StatsError::NotAnArea | stats::StatsError::TooFewSchools => {
            Failure::usage(format!("--area: {e}"))
        }
        other => Failure::runtime(other.to_string()),
    };
    let area_row = stats::area_by_code(&mut conn, area).map_err(failed)?;
    let capability = Capability::for_operator(console, Action::StatsRead);
    let (report, stored) =
        stats::live_or_released(&mut conn, &ctx, &capability, &area_row, &period)
            .map_err(failed)?;
    let (bytes, name) = match format {
        ReportFormat::Json => {
            let value = serde_json::json!({
                "released": stored.is_some(),
                "id": stored.as_ref().map(|s| s.id.clone()),
                "report": report,
            });
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            text.push('\n');
            (text.into_bytes(), "json")
        }
        ReportFormat::Csv => (
            stats::export::csv(&report, lang).map_err(Failure::runtime)?,
            "csv",
        ),
        ReportFormat::Xlsx => (
            stats::export::xlsx(&report, lang).map_err(Failure::runtime)?,
            "xlsx",
        ),
    };
    stats::audit_export(
        &mut conn,
        &ctx,
        &store.auditor,
        &capability,
        &area_row.id,
        &period.id,
        name,
    )
    .map_err(failed)?;
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display()))),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::runtime(format!("cannot write the report: {e}")))
        }
    }
}
