//! Escalation of missed deadlines (DESIGN §3): a scheduler pass finds open
//! clocks whose next look is due, raises an escalation to the district
//! officers of the school's area, and after the protocol's further period
//! one level up. Each escalation is a row (once per clock and level, a
//! unique index), an entry in the case's chronology, an audit entry and a
//! notice, all in one transaction; meeting the clock resolves it.
//!
//! Safe with several replicas: on PostgreSQL the pass locks the rows it
//! takes and skips rows another pass holds (`FOR UPDATE SKIP LOCKED`); on
//! SQLite one process writes at a time.

use chrono::NaiveDateTime;

use super::{notices, utc};
use crate::audit::{AuditEvent, Outcome, action};
use crate::authz::capability::Capability;
use crate::authz::{Action, OrgChain};
use crate::cases::{CaseContext, CaseError};
use crate::db::cases::{self as case_table, ChronologyRow};
use crate::db::referrals::{self as table, DeadlineRow, EscalationRow};
use crate::db::{DbConnection, organisations, write_transaction};

/// The highest level: the school's area, then one above.
pub const TOP_LEVEL: i32 = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Open clocks looked at.
    pub examined: usize,
    /// Escalations raised.
    pub raised: usize,
}

/// Why a clock escalates.
pub fn reason_of(kind: &str) -> &'static str {
    match kind {
        "assessed" => "not_assessed",
        "plan_made" => "plan_not_made",
        "send" => "referral_not_sent",
        "transfer" => "transfer_not_answered",
        _ => "not_acknowledged",
    }
}

/// One scheduler pass at the context's clock, in batches of `batch` rows
/// (one transaction each).
pub fn pass(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    batch: i64,
) -> Result<PassReport, CaseError> {
    let mut report = PassReport::default();
    loop {
        let now = context.clock.now_naive();
        let (examined, raised) = write_transaction(conn, |conn| {
            let due = table::due_for_check(conn, now, batch)?;
            let mut raised = 0;
            for deadline in &due {
                if escalate(conn, context, deadline, now)? {
                    raised += 1;
                }
            }
            Ok::<_, CaseError>((due.len(), raised))
        })?;
        report.examined += examined;
        report.raised += raised;
        if i64::try_from(examined).unwrap_or(i64::MAX) < batch {
            return Ok(report);
        }
    }
}

/// The areas above the school, nearest first.
fn areas_above(conn: &mut DbConnection, school_id: &str) -> Result<Vec<String>, CaseError> {
    let chain = OrgChain::load(conn, school_id)?.unwrap_or(OrgChain(Vec::new()));
    Ok(chain
        .0
        .into_iter()
        .skip(1)
        .filter(|node| node.kind == "area")
        .map(|node| node.id)
        .collect())
}

/// Where level `level` goes: level 1 to the nearest area with a district
/// officer (else the nearest area), level 2 to the next area above that.
fn target(
    conn: &mut DbConnection,
    deadline: &DeadlineRow,
    level: i32,
) -> Result<Option<String>, CaseError> {
    let areas = areas_above(conn, &deadline.school_id)?;
    if level == 1 {
        for area in &areas {
            if !table::recipients(conn, area, "district_officer")?.is_empty() {
                return Ok(Some(area.clone()));
            }
        }
        return Ok(areas.first().cloned());
    }
    let previous = table::escalations_of_case(conn, &deadline.case_id)?
        .into_iter()
        .find(|e| e.deadline_id == deadline.id && e.level == level - 1)
        .map(|e| e.area_id);
    let start = previous
        .and_then(|p| areas.iter().position(|a| *a == p))
        .map_or(0, |i| i + 1);
    Ok(areas.get(start).cloned())
}

fn escalate(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    deadline: &DeadlineRow,
    now: NaiveDateTime,
) -> Result<bool, CaseError> {
    let level = deadline.level + 1;
    if level > TOP_LEVEL {
        table::set_level(conn, &deadline.id, deadline.level, None)?;
        return Ok(false);
    }
    let Some(area_id) = target(conn, deadline, level)? else {
        // Nothing above: the escalation stays where it is.
        table::set_level(conn, &deadline.id, deadline.level, None)?;
        return Ok(false);
    };
    let reason = reason_of(&deadline.kind);
    let row = EscalationRow {
        id: uuid::Uuid::now_v7().to_string(),
        deadline_id: deadline.id.clone(),
        case_id: deadline.case_id.clone(),
        school_id: deadline.school_id.clone(),
        area_id: area_id.clone(),
        level,
        reason: reason.to_owned(),
        raised_at: now,
        resolved_at: None,
    };
    table::insert_escalation(conn, &row)?;
    let next = (level < TOP_LEVEL).then(|| {
        context
            .protocol
            .escalation
            .further
            .deadline(utc(now), context.calendar)
            .naive_utc()
    });
    table::set_level(conn, &deadline.id, level, next)?;
    case_table::insert_chronology(
        conn,
        &ChronologyRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: deadline.case_id.clone(),
            kind: format!("escalated:{reason}:{level}"),
            from_status: None,
            to_status: None,
            note_enc: None,
            author_id: "system".to_owned(),
            created_at: now,
        },
    )?;
    context.auditor.append(
        conn,
        context.clock,
        &AuditEvent::new(action::ESCALATION_RAISED, Outcome::Success)
            .target("case", deadline.case_id.clone())
            .detail("escalation_id", row.id.clone())
            .detail("deadline_id", deadline.id.clone())
            .detail("rule", deadline.rule.clone())
            .detail("reason", reason)
            .detail("level", level.to_string())
            .detail("area_id", area_id),
    )?;
    notices::escalation_raised(conn, context, &row, deadline.due_at)?;
    Ok(true)
}

/// Escalations visible to the capability's holder: those raised to the
/// organisation or below it, and those about its schools.
pub fn list(
    conn: &mut DbConnection,
    by: &Capability,
    org_id: &str,
    open_only: bool,
) -> Result<Vec<EscalationRow>, CaseError> {
    if !by.allows(Action::EscalationList, org_id) {
        return Err(CaseError::NotFound);
    }
    let ids = organisations::subtree_ids(conn, org_id)?;
    Ok(table::escalations_for(conn, &ids, &ids, open_only, 500)?)
}
