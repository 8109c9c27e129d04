//! The `audit_log` and `audit_checkpoints` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{audit_checkpoints, audit_log};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_user_id: Option<String>,
    pub actor_org_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub outcome: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub entry_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    pub seq: i64,
    pub entry_hash: String,
    pub signed_at: NaiveDateTime,
    pub key_id: String,
    pub signature: String,
}

/// The newest entry's sequence number and hash.
pub fn head(conn: &mut DbConnection) -> QueryResult<Option<(i64, String)>> {
    audit_log::table
        .select((audit_log::seq, audit_log::entry_hash))
        .order(audit_log::seq.desc())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &AuditRow) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Up to `limit` entries after `after`, in order.
pub fn page(conn: &mut DbConnection, after: i64, limit: i64) -> QueryResult<Vec<AuditRow>> {
    audit_log::table
        .filter(audit_log::seq.gt(after))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// The newest entries first, for the auditor's API.
pub fn latest(
    conn: &mut DbConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_log::seq.lt(before));
    }
    query
        .order(audit_log::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

pub fn entry_hash_at(conn: &mut DbConnection, seq: i64) -> QueryResult<Option<String>> {
    audit_log::table
        .find(seq)
        .select(audit_log::entry_hash)
        .first(conn)
        .optional()
}

pub fn checkpoints(conn: &mut DbConnection) -> QueryResult<Vec<CheckpointRow>> {
    audit_checkpoints::table
        .order(audit_checkpoints::seq.asc())
        .select(CheckpointRow::as_select())
        .load(conn)
}

pub fn last_checkpoint_seq(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    audit_checkpoints::table
        .select(diesel::dsl::max(audit_checkpoints::seq))
        .first(conn)
}

pub fn insert_checkpoint(conn: &mut DbConnection, row: &CheckpointRow) -> QueryResult<()> {
    diesel::insert_into(audit_checkpoints::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The newest entries matching `filter` first, optionally only those whose
/// actor belongs to one of `orgs`.
pub fn search(
    conn: &mut DbConnection,
    filter: &crate::audit::search::AuditFilter,
    limit: i64,
    orgs: Option<&[String]>,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.into_boxed();
    if let Some(before) = filter.before {
        query = query.filter(audit_log::seq.lt(before));
    }
    if let Some(action) = &filter.action {
        // The code itself or any code below it (`case` finds `case.read`).
        let below = format!(
            "{}.%",
            action
                .replace('\\', "\\\\")
                .replace('_', "\\_")
                .replace('%', "\\%")
        );
        query = query.filter(
            audit_log::action
                .eq(action.clone())
                .or(audit_log::action.like(below).escape('\\')),
        );
    }
    if let Some(outcome) = &filter.outcome {
        query = query.filter(audit_log::outcome.eq(outcome.clone()));
    }
    if let Some(target) = &filter.target_id {
        query = query.filter(audit_log::target_id.eq(target.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_log::occurred_at.lt(until));
    }
    if let Some(orgs) = orgs {
        query = query.filter(audit_log::actor_org_id.eq_any(orgs.to_vec()));
    }
    query
        .order(audit_log::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}
