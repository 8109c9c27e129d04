//! Reminders before a deadline (DESIGN §3, `[reminders]` of the protocol):
//! a scheduler pass looks at every running clock and, when one of its
//! reminder points has come, tells the people responsible for it — the
//! school's focal points for the school's clocks (assessment, support
//! plan, sending a referral), the agency's officers for an
//! acknowledgement — with a content-free notice through the outbox.
//!
//! Once per clock and point, safe with several replicas: the reminder is
//! a row with a unique key (`deadline_reminders`), inserted or not at all
//! in the same transaction as its outbox rows; the pass that loses the
//! insert sends nothing. On PostgreSQL the pass also locks the clocks it
//! looks at, so a clock being met waits and is never reminded after it
//! stopped. When the scheduler finds several points passed (it was down),
//! only the latest is sent and the earlier are recorded as skipped: no
//! burst of late reminders. A point at or before the clock's start is not
//! a point of that clock.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

use super::{ADDED_ACKNOWLEDGE, notices, utc};
use crate::audit::{AuditEvent, Outcome, action};
use crate::cases::{CaseContext, CaseError};
use crate::db::referrals::{self as referral_table, DeadlineRow};
use crate::db::reminders::{self as table, ReminderRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::protocol::Within;
use crate::domain::reminder::{ClockUnit, Due};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Running clocks looked at.
    pub examined: usize,
    /// Reminders sent (one per clock and point, whatever the recipients).
    pub sent: usize,
    /// Points passed over because a later one had come.
    pub skipped: usize,
}

/// One scheduler pass at the context's clock, in batches of `batch`
/// running clocks (one transaction each).
pub fn pass(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    batch: i64,
) -> Result<PassReport, CaseError> {
    let mut report = PassReport::default();
    let now = context.clock.now_naive();
    let mut after: Option<(NaiveDateTime, String)> = None;
    loop {
        let (examined, last, sent, skipped) = write_transaction(conn, |conn| {
            let running = table::running(conn, now, after.as_ref(), batch)?;
            let (mut sent, mut skipped) = (0, 0);
            for deadline in &running {
                let (s, k) = remind(conn, context, deadline, now)?;
                sent += s;
                skipped += k;
            }
            let last = running.last().map(|d| (d.due_at, d.id.clone()));
            Ok::<_, CaseError>((running.len(), last, sent, skipped))
        })?;
        report.examined += examined;
        report.sent += sent;
        report.skipped += skipped;
        match last {
            Some(last) if i64::try_from(examined).unwrap_or(i64::MAX) >= batch => {
                after = Some(last);
            }
            _ => return Ok(report),
        }
    }
}

/// How a clock is counted, from the protocol entry that started it; a
/// clock whose entry is gone (the protocol changed) is judged by its
/// deadline: working-day clocks end at the last second of a local day.
pub fn unit_of(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    deadline: &DeadlineRow,
) -> Result<ClockUnit, CaseError> {
    let protocol = context.protocol;
    let of_rules = |agency: &str, pick: fn(&crate::domain::protocol::Involvement) -> Within| {
        deadline
            .rule
            .split(',')
            .filter_map(|id| protocol.rule(id.trim()))
            .flat_map(|rule| rule.involve.iter())
            .filter(|i| i.agency == agency)
            .map(pick)
            .min_by_key(|w| w.order_hours())
    };
    let within = match deadline.kind.as_str() {
        "assessed" | "plan_made" => protocol.case_clock(&deadline.rule).map(|c| c.within),
        "send" => of_rules(&deadline.subject, |i| i.send_within),
        _ if deadline.rule == "added" => Some(ADDED_ACKNOWLEDGE),
        _ => match &deadline.referral_id {
            Some(id) => referral_table::find(conn, id)?
                .and_then(|r| of_rules(&r.agency_type, |i| i.acknowledge_within)),
            None => None,
        },
    };
    Ok(match within {
        Some(Within::Hours { .. }) => ClockUnit::Hours,
        Some(Within::WorkingDays { .. }) => ClockUnit::WorkingDays,
        None => {
            let local = utc(deadline.due_at) + context.calendar.utc_offset();
            if (local.hour(), local.minute(), local.second()) == (23, 59, 59) {
                ClockUnit::WorkingDays
            } else {
                ClockUnit::Hours
            }
        }
    })
}

/// The reminder points of a running clock, earliest first.
pub fn schedule(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    deadline: &DeadlineRow,
) -> Result<Vec<Due>, CaseError> {
    let unit = unit_of(conn, context, deadline)?;
    Ok(context.protocol.reminders.schedule(
        unit,
        utc(deadline.started_at),
        utc(deadline.due_at),
        context.calendar,
    ))
}

/// Who answers for a clock, and where the reminder links to: the agency's
/// officers for an acknowledgement, else the school's focal points.
fn responsible(
    conn: &mut DbConnection,
    deadline: &DeadlineRow,
) -> Result<Option<(String, &'static str, String)>, CaseError> {
    if deadline.kind == "acknowledge" {
        let Some(id) = &deadline.referral_id else {
            return Ok(None);
        };
        return Ok(referral_table::find(conn, id)?.map(|r| {
            (
                r.agency_id,
                "agency_officer",
                format!("/referrals/{}", r.id),
            )
        }));
    }
    Ok(Some((
        deadline.school_id.clone(),
        "focal_point",
        format!("/cases/{}", deadline.case_id),
    )))
}

/// Sends the latest point of `deadline` that has come, if it was not
/// recorded yet; earlier unrecorded points are recorded as skipped.
/// Returns (sent, skipped).
fn remind(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    deadline: &DeadlineRow,
    now: NaiveDateTime,
) -> Result<(usize, usize), CaseError> {
    let now_utc = utc(now);
    let come: Vec<Due> = schedule(conn, context, deadline)?
        .into_iter()
        .filter(|d| d.at <= now_utc)
        .collect();
    let Some((latest, earlier)) = come.split_last() else {
        return Ok((0, 0));
    };
    let recorded = table::points_of(conn, &deadline.id)?;
    if recorded.contains(&latest.point) {
        return Ok((0, 0));
    }
    let row = |due: &Due, outcome: &str| ReminderRow {
        deadline_id: deadline.id.clone(),
        point: due.point.clone(),
        case_id: deadline.case_id.clone(),
        remind_at: due.at.naive_utc(),
        outcome: outcome.to_owned(),
        recipients: 0,
        created_at: now,
    };
    let mut skipped = 0;
    for due in earlier.iter().filter(|d| !recorded.contains(&d.point)) {
        if table::insert_if_new(conn, &row(due, "skipped"))? {
            skipped += 1;
        }
    }
    if !table::insert_if_new(conn, &row(latest, "sent"))? {
        // Another scheduler recorded it first: it sends it.
        return Ok((0, skipped));
    }
    let Some((org_id, role, path)) = responsible(conn, deadline)? else {
        return Ok((0, skipped));
    };
    let count = notices::deadline_reminder(
        conn,
        context,
        deadline,
        &latest.point,
        (&org_id, role, &path),
    )?;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    table::set_recipients(conn, &deadline.id, &latest.point, count)?;
    context.auditor.append(
        conn,
        context.clock,
        &AuditEvent::new(action::REMINDER_SENT, Outcome::Success)
            .target("case", deadline.case_id.clone())
            .detail("deadline_id", deadline.id.clone())
            .detail("kind", deadline.kind.clone())
            .detail("point", latest.point.clone())
            .detail("recipients", count.to_string()),
    )?;
    Ok((1, skipped))
}

/// A running clock that is due soon: its first reminder point has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSoon {
    pub deadline: DeadlineRow,
    /// When it became due soon (its first reminder point).
    pub since: DateTime<Utc>,
}

/// Of `running` clocks, those due soon at the context's clock, soonest
/// first.
pub fn due_soon(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    running: Vec<DeadlineRow>,
) -> Result<Vec<DueSoon>, CaseError> {
    let now = utc(context.clock.now_naive());
    let mut soon = Vec::new();
    for deadline in running {
        if deadline.met_at.is_some() || utc(deadline.due_at) <= now {
            continue;
        }
        if let Some(first) = schedule(conn, context, &deadline)?.first()
            && first.at <= now
        {
            soon.push(DueSoon {
                since: first.at,
                deadline,
            });
        }
    }
    soon.sort_by_key(|s| s.deadline.due_at);
    Ok(soon)
}
