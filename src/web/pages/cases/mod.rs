//! The school's pages, one file per thing a person does: the dashboard and
//! the escalations page (`dashboard.rs`), intake with its sealed drafts
//! (`intake.rs`), the case workspace (`workspace.rs`) and the forms that act
//! on a case from it (`actions.rs`).
//!
//! This module holds only what those parts share: the choice lists, the
//! field, deadline and escalation lines, a case's short reference, and the
//! small functions that turn a policy check or a case function's outcome
//! into what a page shows. It renders no page itself; the routes in
//! [`super::configure`] reach the handlers through the re-exports below.

mod actions;
mod casework;
mod dashboard;
mod intake;
mod list;
mod pupil;
mod transfer;
mod workspace;

pub use actions::{
    add_note, add_perpetrator, break_glass, break_glass_page, record_consent, send_partner_link,
    send_referral, skip_suggestion, transition, upload_attachment,
};
pub use casework::{
    approve_closure, assign, legal_hold, legal_hold_page, request_closure, return_closure,
};
pub use dashboard::{escalations, home};
pub use intake::{intake, intake_page, save_draft};
pub use list::case_list;
pub use pupil::pupil_chronology;
pub use transfer::{
    accept as accept_transfer, cancel as cancel_transfer, page as transfer_page,
    refuse as refuse_transfer, start as start_transfer,
};
pub use workspace::{download_attachment, workspace};

use super::{granted, outcome};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::referrals as referral_table;
use crate::db::{DbConnection, DbError};
use crate::web::AppState;
use crate::web::i18n::Tr;

/// A code and its label, for selects and radios.
pub struct Choice {
    pub code: String,
    pub label: String,
}

pub fn choices(t: &Tr<'_>, state: &AppState, category: &str) -> Vec<Choice> {
    state
        .taxonomy
        .terms(category)
        .iter()
        .map(|term| Choice {
            code: term.code.clone(),
            label: t.code(category, &term.code),
        })
        .collect()
}

/// The policy's check for `action` on case `case_id`, as [`granted`]
/// decides it: the capability, or `None` for a denial.
fn case_capability(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    case_id: &str,
) -> Result<Option<Capability>, DbError> {
    let checked = state
        .authz
        .check_case(conn, &caller.actor(), &caller.request, action, case_id);
    Ok(granted(checked)?.map(|(capability, _)| capability))
}

pub struct FieldLine {
    pub label: String,
    pub value: String,
}

pub struct DeadlineLine {
    pub label: String,
    pub due: String,
    pub countdown: String,
    pub overdue: bool,
    pub met: Option<String>,
    pub source: String,
}

pub struct EscalationLine {
    pub case_id: String,
    pub short: String,
    pub reason: String,
    pub level: i32,
    pub raised: String,
    pub resolved: Option<String>,
    /// An unanswered transfer: the case is not yet the receiving school's,
    /// so the line leads to the dashboard's incoming transfers, not the case.
    pub transfer: bool,
}

fn escalation_line(t: &Tr<'_>, e: referral_table::EscalationRow) -> EscalationLine {
    EscalationLine {
        short: short(&e.case_id),
        case_id: e.case_id,
        transfer: e.reason == "transfer_not_answered",
        reason: t.t(&format!("reason-{}", e.reason)),
        level: e.level,
        raised: t.datetime(e.raised_at),
        resolved: e.resolved_at.map(|r| t.datetime(r)),
    }
}

fn short(id: &str) -> String {
    crate::domain::case_ref::case_reference(id)
}

fn deadline_line(
    t: &Tr<'_>,
    d: &referral_table::DeadlineRow,
    now: chrono::NaiveDateTime,
) -> DeadlineLine {
    let label = match d.kind.as_str() {
        "send" | "acknowledge" => t.t1(
            &format!("deadline-{}", d.kind),
            "agency",
            t.t(&format!(
                "agency-{}",
                if d.kind == "send" {
                    d.subject.as_str()
                } else {
                    "any"
                }
            )),
        ),
        kind => t.t(&format!("deadline-{kind}")),
    };
    DeadlineLine {
        label,
        due: t.datetime(d.due_at),
        countdown: t.until(d.due_at, now),
        overdue: d.met_at.is_none() && d.due_at < now,
        met: d.met_at.map(|m| t.datetime(m)),
        source: d.source.clone(),
    }
}
