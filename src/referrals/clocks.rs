//! The deadline engine: every clock of a case as a row with its rule and
//! legal source — assessment and support plan (case clocks of the
//! protocol), sending each required referral, each agency's
//! acknowledgement. Clocks start when the facts that call for them are
//! recorded; they are met by the event they wait for, and meeting one
//! resolves its escalations in the same transaction.

use chrono::NaiveDateTime;

use super::utc;
use crate::cases::{CaseContext, CaseError};
use crate::db::DbConnection;
use crate::db::cases::{self as case_table, CaseRow};
use crate::db::referrals::{self as table, DeadlineRow, ReferralRow};
use crate::domain::protocol::{ClockEvent, Need, Suggestion};

/// Statuses at or past which a case has been assessed / has a plan.
const ASSESSED: &[&str] = &[
    "assessing",
    "action_planned",
    "in_progress",
    "resolved",
    "closed",
];
const PLANNED: &[&str] = &["action_planned", "in_progress", "resolved", "closed"];

#[expect(clippy::too_many_arguments, reason = "one row's worth of values")]
fn new_deadline(
    case: &CaseRow,
    kind: &str,
    subject: &str,
    rule: &str,
    source: &str,
    started_at: NaiveDateTime,
    due_at: NaiveDateTime,
    referral_id: Option<String>,
) -> DeadlineRow {
    DeadlineRow {
        id: uuid::Uuid::now_v7().to_string(),
        case_id: case.id.clone(),
        school_id: case.school_id.clone(),
        referral_id,
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        rule: rule.to_owned(),
        source: source.to_owned(),
        started_at,
        due_at,
        met_at: None,
        outcome: None,
        level: 0,
        next_check_at: Some(due_at),
        created_at: started_at,
    }
}

/// Starts the clocks the protocol asks for, given the case's coded facts
/// now: case clocks not yet met (a stricter one replaces a looser one, e.g.
/// when the risk is raised) and a clock to send each required referral not
/// yet sent or skipped. Call after intake and after every change of coded
/// fields, in the same transaction.
pub fn plan(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    case_id: &str,
) -> Result<(), CaseError> {
    let case = case_table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    if case.status == "closed" {
        return Ok(());
    }
    let now = context.clock.now_naive();
    let facts = super::facts(conn, &case)?;
    // The case's deadlines read once (a handful of rows), instead of a
    // lookup per clock and per suggestion; the rows inserted below join
    // the list, so a later check sees them as the database would.
    let mut known = table::deadlines_of(conn, case_id)?;
    let exists = |known: &[DeadlineRow], kind: &str, subject: &str| {
        known.iter().any(|d| d.kind == kind && d.subject == subject)
    };
    for clock in context.protocol.case_clocks(&facts) {
        let (kind, done) = match clock.event {
            ClockEvent::Assessed => ("assessed", ASSESSED),
            ClockEvent::PlanMade => ("plan_made", PLANNED),
        };
        if done.contains(&case.status.as_str()) {
            continue;
        }
        let due = clock
            .within
            .deadline(utc(now), context.calendar)
            .naive_utc();
        warn_outside_calendar(context, due);
        let existed = exists(&known, kind, kind);
        let open = known
            .iter_mut()
            .find(|d| d.kind == kind && d.subject == kind && d.met_at.is_none());
        match open {
            Some(open) if open.due_at > due => {
                table::retime(conn, &open.id, &clock.code, &clock.source, due)?;
                open.due_at = due;
            }
            Some(_) => {}
            None if existed => {}
            None => {
                let row = new_deadline(
                    &case,
                    kind,
                    kind,
                    &clock.code,
                    &clock.source,
                    now,
                    due,
                    None,
                );
                table::insert_deadline(conn, &row)?;
                known.push(row);
            }
        }
    }
    let referrals = table::of_case(conn, case_id)?;
    let skips = table::skips_of(conn, case_id)?;
    for suggestion in context.protocol.suggest(&facts) {
        let agency = suggestion.agency_type.as_str();
        if suggestion.need != Need::Required
            || referrals
                .iter()
                .any(|r| r.agency_type == agency && r.status != "withdrawn")
            || skips.iter().any(|s| s.agency_type == agency)
            || exists(&known, "send", agency)
        {
            continue;
        }
        let due = suggestion
            .send_within
            .deadline(utc(now), context.calendar)
            .naive_utc();
        warn_outside_calendar(context, due);
        let (rule, source) = rule_and_source(context, &suggestion);
        let row = new_deadline(&case, "send", agency, &rule, &source, now, due, None);
        table::insert_deadline(conn, &row)?;
        known.push(row);
    }
    Ok(())
}

/// Working days past the calendar's last year count weekends only: say so
/// in the log, so an operator loads the next year's holidays.
fn warn_outside_calendar(context: &CaseContext<'_>, due: NaiveDateTime) {
    if !context.calendar.covers(due.date()) {
        tracing::warn!(
            due = %due.date(),
            "a deadline falls outside the years policies/calendar-vn.toml knows: public holidays are not counted; add the next year's"
        );
    }
}

fn rule_and_source(context: &CaseContext<'_>, suggestion: &Suggestion) -> (String, String) {
    let sources: Vec<&str> = suggestion
        .rules
        .iter()
        .filter_map(|id| context.protocol.rule(id).map(|r| r.source.as_str()))
        .collect();
    (suggestion.rules.join(","), sources.join(" | "))
}

/// A referral went out: its send clock is met and its acknowledgement clock starts.
pub fn on_sent(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
    suggestion: Option<&Suggestion>,
) -> Result<(), CaseError> {
    let now = referral.sent_at;
    if let Some(open) =
        table::open_deadline(conn, &referral.case_id, "send", &referral.agency_type)?
    {
        table::meet_deadline(conn, &open.id, "sent", now)?;
    }
    let case = case_table::find(conn, &referral.case_id)?.ok_or(CaseError::NotFound)?;
    let (rule, source) = suggestion.map_or_else(
        || {
            (
                "added".to_owned(),
                "Hướng dẫn quản lý trường hợp VBG 2017, bước 4 (chuyển gửi)".to_owned(),
            )
        },
        |s| rule_and_source(context, s),
    );
    table::insert_deadline(
        conn,
        &new_deadline(
            &case,
            "acknowledge",
            &referral.id,
            &rule,
            &source,
            now,
            referral.acknowledge_by,
            Some(referral.id.clone()),
        ),
    )?;
    Ok(())
}

/// The agency answered (or the referral was withdrawn): its acknowledgement clock is met.
pub fn on_acknowledged(
    conn: &mut DbConnection,
    referral_id: &str,
    case_id: &str,
    outcome: &str,
    now: NaiveDateTime,
) -> Result<(), CaseError> {
    if let Some(open) = table::open_deadline(conn, case_id, "acknowledge", referral_id)? {
        table::meet_deadline(conn, &open.id, outcome, now)?;
    }
    Ok(())
}

/// The case moved to `status`: clocks it satisfies are met; closing stops
/// every clock still running.
pub fn on_status(
    conn: &mut DbConnection,
    case_id: &str,
    status: &str,
    now: NaiveDateTime,
) -> Result<(), CaseError> {
    if status == "closed" {
        for open in table::deadlines_of(conn, case_id)?
            .into_iter()
            .filter(|d| d.met_at.is_none())
        {
            table::meet_deadline(conn, &open.id, "case_closed", now)?;
        }
        return Ok(());
    }
    for (kind, done) in [("assessed", ASSESSED), ("plan_made", PLANNED)] {
        if done.contains(&status)
            && let Some(open) = table::open_deadline(conn, case_id, kind, kind)?
        {
            table::meet_deadline(conn, &open.id, status, now)?;
        }
    }
    Ok(())
}
