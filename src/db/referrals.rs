//! The referral tables: `referrals`, `suggestion_skips`, `deadlines`,
//! `escalations`, `partner_links`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{deadlines, escalations, partner_links, referrals, suggestion_skips, users};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
pub struct ReferralRow {
    pub id: String,
    pub case_id: String,
    pub school_id: String,
    pub agency_id: String,
    pub agency_type: String,
    pub kind: String,
    pub need: String,
    pub profile: String,
    pub rules: String,
    pub legal_basis: String,
    pub status: String,
    pub note_enc: Option<Vec<u8>>,
    pub override_reason_enc: Option<Vec<u8>>,
    pub acknowledge_by: NaiveDateTime,
    pub version: i32,
    pub sent_by: String,
    pub sent_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub answered_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = suggestion_skips)]
pub struct SkipRow {
    pub case_id: String,
    pub agency_type: String,
    pub need: String,
    pub reason_enc: Option<Vec<u8>>,
    pub skipped_by: String,
    pub skipped_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = deadlines)]
pub struct DeadlineRow {
    pub id: String,
    pub case_id: String,
    pub school_id: String,
    pub referral_id: Option<String>,
    pub kind: String,
    pub subject: String,
    pub rule: String,
    pub source: String,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub met_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
    pub level: i32,
    pub next_check_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = escalations)]
pub struct EscalationRow {
    pub id: String,
    pub deadline_id: String,
    pub case_id: String,
    pub school_id: String,
    pub area_id: String,
    pub level: i32,
    pub reason: String,
    pub raised_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = partner_links)]
pub struct PartnerLinkRow {
    pub id: String,
    pub referral_id: String,
    pub token_hash: String,
    pub code_hash: String,
    pub recipient: String,
    pub failed_codes: i32,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub opened_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Statuses in which a referral is still open (closing the case waits).
pub const OPEN_STATUSES: &[&str] = &["sent", "acknowledged", "accepted", "in_service"];

pub fn insert(conn: &mut DbConnection, row: &ReferralRow) -> QueryResult<()> {
    diesel::insert_into(referrals::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ReferralRow>> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .first(conn)
        .optional()
}

pub fn of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<ReferralRow>> {
    referrals::table
        .filter(referrals::case_id.eq(case_id))
        .order(referrals::sent_at.asc())
        .select(ReferralRow::as_select())
        .load(conn)
}

/// An agency's referrals in `statuses`, the most urgent first.
pub fn inbox(
    conn: &mut DbConnection,
    agency_id: &str,
    statuses: &[&str],
    limit: i64,
) -> QueryResult<Vec<ReferralRow>> {
    referrals::table
        .filter(referrals::agency_id.eq(agency_id))
        .filter(referrals::status.eq_any(statuses))
        .order((referrals::acknowledge_by.asc(), referrals::id.asc()))
        .limit(limit)
        .select(ReferralRow::as_select())
        .load(conn)
}

/// A school's referrals the agencies answered, the newest change first.
pub fn answered_of_school(
    conn: &mut DbConnection,
    school_id: &str,
    limit: i64,
) -> QueryResult<Vec<ReferralRow>> {
    referrals::table
        .filter(referrals::school_id.eq(school_id))
        .filter(referrals::status.ne("sent"))
        .order((referrals::updated_at.desc(), referrals::id.asc()))
        .limit(limit)
        .select(ReferralRow::as_select())
        .load(conn)
}

/// How many statutory reports were made for a case (in any state).
pub fn statutory_count_of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<i64> {
    referrals::table
        .filter(referrals::case_id.eq(case_id))
        .filter(referrals::kind.eq("statutory_report"))
        .count()
        .get_result(conn)
}

pub fn open_count_of_case(conn: &mut DbConnection, case_id: &str) -> QueryResult<i64> {
    referrals::table
        .filter(referrals::case_id.eq(case_id))
        .filter(referrals::status.eq_any(OPEN_STATUSES))
        .count()
        .get_result(conn)
}

/// Moves a referral on when its version is still `version`; returns the
/// rows changed (0: somebody else moved it first).
#[expect(clippy::too_many_arguments, reason = "one guarded update")]
pub fn set_status(
    conn: &mut DbConnection,
    id: &str,
    version: i32,
    status: &str,
    now: NaiveDateTime,
    acknowledged: bool,
    answered: bool,
    closed: bool,
) -> QueryResult<usize> {
    let row = find(conn, id)?;
    let Some(row) = row else { return Ok(0) };
    diesel::update(
        referrals::table
            .find(id)
            .filter(referrals::version.eq(version)),
    )
    .set((
        referrals::status.eq(status),
        referrals::version.eq(version + 1),
        referrals::updated_at.eq(now),
        referrals::acknowledged_at.eq(if acknowledged && row.acknowledged_at.is_none() {
            Some(now)
        } else {
            row.acknowledged_at
        }),
        referrals::answered_at.eq(if answered { Some(now) } else { row.answered_at }),
        referrals::closed_at.eq(if closed { Some(now) } else { row.closed_at }),
    ))
    .execute(conn)
}

pub fn skips_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<SkipRow>> {
    suggestion_skips::table
        .filter(suggestion_skips::case_id.eq(case_id))
        .select(SkipRow::as_select())
        .load(conn)
}

pub fn insert_skip(conn: &mut DbConnection, row: &SkipRow) -> QueryResult<()> {
    diesel::insert_into(suggestion_skips::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn delete_skip(
    conn: &mut DbConnection,
    case_id: &str,
    agency_type: &str,
) -> QueryResult<usize> {
    diesel::delete(suggestion_skips::table.find((case_id, agency_type))).execute(conn)
}

pub fn insert_deadline(conn: &mut DbConnection, row: &DeadlineRow) -> QueryResult<()> {
    diesel::insert_into(deadlines::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn deadlines_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<DeadlineRow>> {
    deadlines::table
        .filter(deadlines::case_id.eq(case_id))
        .order((deadlines::due_at.asc(), deadlines::id.asc()))
        .select(DeadlineRow::as_select())
        .load(conn)
}

pub fn find_deadline(conn: &mut DbConnection, id: &str) -> QueryResult<Option<DeadlineRow>> {
    deadlines::table
        .find(id)
        .select(DeadlineRow::as_select())
        .first(conn)
        .optional()
}

/// The open deadline of a case for `kind` and `subject`, if any.
pub fn open_deadline(
    conn: &mut DbConnection,
    case_id: &str,
    kind: &str,
    subject: &str,
) -> QueryResult<Option<DeadlineRow>> {
    deadlines::table
        .filter(deadlines::case_id.eq(case_id))
        .filter(deadlines::kind.eq(kind))
        .filter(deadlines::subject.eq(subject))
        .filter(deadlines::met_at.is_null())
        .select(DeadlineRow::as_select())
        .first(conn)
        .optional()
}

/// Moves an open deadline earlier (a stricter clock now applies).
pub fn retime(
    conn: &mut DbConnection,
    id: &str,
    rule: &str,
    source: &str,
    due_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(deadlines::table.find(id))
        .set((
            deadlines::rule.eq(rule),
            deadlines::source.eq(source),
            deadlines::due_at.eq(due_at),
        ))
        .execute(conn)?;
    diesel::update(deadlines::table.find(id).filter(deadlines::level.eq(0)))
        .set(deadlines::next_check_at.eq(Some(due_at)))
        .execute(conn)
}

/// Marks a deadline met and resolves its open escalations.
pub fn meet_deadline(
    conn: &mut DbConnection,
    id: &str,
    outcome: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let changed = diesel::update(
        deadlines::table
            .find(id)
            .filter(deadlines::met_at.is_null()),
    )
    .set((
        deadlines::met_at.eq(Some(now)),
        deadlines::outcome.eq(Some(outcome)),
        deadlines::next_check_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    diesel::update(
        escalations::table
            .filter(escalations::deadline_id.eq(id))
            .filter(escalations::resolved_at.is_null()),
    )
    .set(escalations::resolved_at.eq(Some(now)))
    .execute(conn)?;
    Ok(changed)
}

/// Open deadlines whose next look is due, oldest first. On PostgreSQL the
/// rows are locked and rows another scheduler holds are skipped.
pub fn due_for_check(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<DeadlineRow>> {
    macro_rules! due {
        () => {
            deadlines::table
                .filter(deadlines::met_at.is_null())
                .filter(deadlines::next_check_at.le(now))
                .order((deadlines::next_check_at.asc(), deadlines::id.asc()))
                .limit(limit)
        };
    }
    match conn {
        DbConnection::Postgresql(pg) => due!()
            .select(DeadlineRow::as_select())
            .for_update()
            .skip_locked()
            .load(pg),
        DbConnection::Sqlite(lite) => due!().select(DeadlineRow::as_select()).load(lite),
    }
}

pub fn set_level(
    conn: &mut DbConnection,
    id: &str,
    level: i32,
    next_check_at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(deadlines::table.find(id))
        .set((
            deadlines::level.eq(level),
            deadlines::next_check_at.eq(next_check_at),
        ))
        .execute(conn)
}

pub fn insert_escalation(conn: &mut DbConnection, row: &EscalationRow) -> QueryResult<()> {
    diesel::insert_into(escalations::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Escalations raised to `area_ids` or about cases of `school_ids`.
pub fn escalations_for(
    conn: &mut DbConnection,
    area_ids: &[String],
    school_ids: &[String],
    open_only: bool,
    limit: i64,
) -> QueryResult<Vec<EscalationRow>> {
    let mut query = escalations::table
        .filter(
            escalations::area_id
                .eq_any(area_ids)
                .or(escalations::school_id.eq_any(school_ids)),
        )
        .into_boxed();
    if open_only {
        query = query.filter(escalations::resolved_at.is_null());
    }
    query
        .order((escalations::raised_at.desc(), escalations::id.asc()))
        .limit(limit)
        .select(EscalationRow::as_select())
        .load(conn)
}

pub fn escalations_of_case(
    conn: &mut DbConnection,
    case_id: &str,
) -> QueryResult<Vec<EscalationRow>> {
    escalations::table
        .filter(escalations::case_id.eq(case_id))
        .order(escalations::raised_at.asc())
        .select(EscalationRow::as_select())
        .load(conn)
}

pub fn insert_link(conn: &mut DbConnection, row: &PartnerLinkRow) -> QueryResult<()> {
    diesel::insert_into(partner_links::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn link_by_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<PartnerLinkRow>> {
    partner_links::table
        .filter(partner_links::token_hash.eq(token_hash))
        .select(PartnerLinkRow::as_select())
        .first(conn)
        .optional()
}

pub fn link(conn: &mut DbConnection, id: &str) -> QueryResult<Option<PartnerLinkRow>> {
    partner_links::table
        .find(id)
        .select(PartnerLinkRow::as_select())
        .first(conn)
        .optional()
}

pub fn link_failed_code(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(partner_links::table.find(id))
        .set(partner_links::failed_codes.eq(partner_links::failed_codes + 1))
        .execute(conn)
}

/// Marks a link opened if it still can be; 0 when it was used or revoked meanwhile.
pub fn open_link(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        partner_links::table
            .find(id)
            .filter(partner_links::opened_at.is_null())
            .filter(partner_links::revoked_at.is_null()),
    )
    .set(partner_links::opened_at.eq(Some(now)))
    .execute(conn)
}

/// Revokes one link, or (without `id`) every unused link of a referral.
pub fn revoke_links(
    conn: &mut DbConnection,
    referral_id: &str,
    id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut query = diesel::update(
        partner_links::table
            .filter(partner_links::referral_id.eq(referral_id))
            .filter(partner_links::revoked_at.is_null()),
    )
    .into_boxed();
    if let Some(id) = id {
        query = query.filter(partner_links::id.eq(id));
    }
    query
        .set(partner_links::revoked_at.eq(Some(now)))
        .execute(conn)
}

/// The e-mail addresses and languages of the active users with `role` in `org_id`.
pub fn recipients(
    conn: &mut DbConnection,
    org_id: &str,
    role: &str,
) -> QueryResult<Vec<(String, String, String)>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::role.eq(role))
        .filter(users::disabled_at.is_null())
        .order(users::id.asc())
        .select((users::id, users::email, users::language))
        .load(conn)
}
