//! The case tables: `cases`, `case_requests`, `case_keys`, `pupils`,
//! `incidents`, `chronology`, `break_glass`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{
    attachments, break_glass, case_keys, case_requests, cases, chronology, consents, incidents,
    perpetrators, pupils,
};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = cases)]
pub struct CaseRow {
    pub id: String,
    pub school_id: String,
    pub status: String,
    pub risk_level: String,
    pub survivor_sex: String,
    pub age_band: Option<String>,
    pub under_16: Option<bool>,
    pub under_18: Option<bool>,
    pub disability: bool,
    pub school_level: String,
    pub version: i32,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub legal_hold: bool,
    pub content_destroyed_at: Option<NaiveDateTime>,
    /// The case worker: a focal point of the school, or no one yet.
    pub assigned_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_requests)]
pub struct CaseRequestRow {
    pub idempotency_key: String,
    pub case_id: String,
    pub request_hash: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_keys)]
pub struct CaseKeyRow {
    pub case_id: String,
    pub kek_id: String,
    pub wrapped_dek: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub rewrapped_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = pupils)]
pub struct PupilRow {
    pub case_id: String,
    pub name_enc: Vec<u8>,
    pub date_of_birth_enc: Vec<u8>,
    pub class_enc: Option<Vec<u8>>,
    pub guardian_enc: Option<Vec<u8>>,
    pub contact_enc: Option<Vec<u8>>,
    pub blind_index: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: String,
    pub case_id: String,
    pub incident_type: String,
    pub csa_subtype: Option<String>,
    pub contexts: String,
    pub location_type: String,
    pub perpetrator_relation: String,
    pub incident_month: String,
    pub reporting_delay: String,
    pub incident_date_enc: Vec<u8>,
    pub narrative_enc: Vec<u8>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = chronology)]
pub struct ChronologyRow {
    pub id: String,
    pub case_id: String,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub note_enc: Option<Vec<u8>>,
    pub author_id: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = break_glass)]
pub struct BreakGlassRow {
    pub id: String,
    pub case_id: String,
    pub user_id: String,
    pub reason_enc: Vec<u8>,
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_case(conn: &mut DbConnection, row: &CaseRow) -> QueryResult<()> {
    diesel::insert_into(cases::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_request(conn: &mut DbConnection, row: &CaseRequestRow) -> QueryResult<()> {
    diesel::insert_into(case_requests::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_key(conn: &mut DbConnection, row: &CaseKeyRow) -> QueryResult<()> {
    diesel::insert_into(case_keys::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_pupil(conn: &mut DbConnection, row: &PupilRow) -> QueryResult<()> {
    diesel::insert_into(pupils::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_incident(conn: &mut DbConnection, row: &IncidentRow) -> QueryResult<()> {
    diesel::insert_into(incidents::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_chronology(conn: &mut DbConnection, row: &ChronologyRow) -> QueryResult<()> {
    diesel::insert_into(chronology::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn insert_break_glass(conn: &mut DbConnection, row: &BreakGlassRow) -> QueryResult<()> {
    diesel::insert_into(break_glass::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CaseRow>> {
    cases::table
        .find(id)
        .select(CaseRow::as_select())
        .first(conn)
        .optional()
}

pub fn request(conn: &mut DbConnection, key: &str) -> QueryResult<Option<CaseRequestRow>> {
    case_requests::table
        .find(key)
        .select(CaseRequestRow::as_select())
        .first(conn)
        .optional()
}

pub fn key(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<CaseKeyRow>> {
    case_keys::table
        .find(case_id)
        .select(CaseKeyRow::as_select())
        .first(conn)
        .optional()
}

pub fn pupil(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<PupilRow>> {
    pupils::table
        .find(case_id)
        .select(PupilRow::as_select())
        .first(conn)
        .optional()
}

pub fn incidents_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<IncidentRow>> {
    incidents::table
        .filter(incidents::case_id.eq(case_id))
        .order(incidents::created_at.asc())
        .select(IncidentRow::as_select())
        .load(conn)
}

pub fn chronology_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<ChronologyRow>> {
    chronology::table
        .filter(chronology::case_id.eq(case_id))
        .order((chronology::created_at.asc(), chronology::id.asc()))
        .select(ChronologyRow::as_select())
        .load(conn)
}

/// The chronology kinds of a case's risk changes (`risk:{from}->{to}`).
pub fn risk_changes_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<String>> {
    chronology::table
        .filter(chronology::case_id.eq(case_id))
        .filter(chronology::kind.like("risk:%"))
        .select(chronology::kind)
        .load(conn)
}

/// Filters for listing a school's cases (coded and operational fields only).
/// Built by `cases::search::CaseSearch::filter`; a new filter is a field
/// here and a clause in [`filtered`].
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<String>,
    /// Every status but `closed`.
    pub open_only: bool,
    pub risk_level: Option<String>,
    pub incident_type: Option<String>,
    pub recorded_from: Option<NaiveDateTime>,
    pub recorded_before: Option<NaiveDateTime>,
    /// Only the cases assigned to this user ("mine").
    pub assigned_to: Option<String>,
}

type BoxedCases<'a> = cases::BoxedQuery<'a, <DbConnection as diesel::Connection>::Backend>;

/// The school's cases that pass `filter`, as a query to order or count.
fn filtered<'a>(school_id: &'a str, filter: &'a CaseFilter) -> BoxedCases<'a> {
    let mut query = cases::table
        .filter(cases::school_id.eq(school_id))
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(cases::status.eq(status.clone()));
    }
    if filter.open_only {
        query = query.filter(cases::status.ne("closed"));
    }
    if let Some(risk) = &filter.risk_level {
        query = query.filter(cases::risk_level.eq(risk.clone()));
    }
    if let Some(kind) = &filter.incident_type {
        query = query.filter(diesel::dsl::exists(
            incidents::table
                .filter(incidents::case_id.eq(cases::id))
                .filter(incidents::incident_type.eq(kind.clone())),
        ));
    }
    if let Some(from) = filter.recorded_from {
        query = query.filter(cases::created_at.ge(from));
    }
    if let Some(before) = filter.recorded_before {
        query = query.filter(cases::created_at.lt(before));
    }
    if let Some(user_id) = &filter.assigned_to {
        query = query.filter(assigned_to(user_id));
    }
    query
}

/// Cases of a school, newest first, filtered.
pub fn of_school(
    conn: &mut DbConnection,
    school_id: &str,
    filter: &CaseFilter,
    limit: i64,
) -> QueryResult<Vec<CaseRow>> {
    page_of_school(conn, school_id, filter, limit, 0)
}

/// One page of a school's filtered cases, newest first; the order is
/// stable (ties on the recording time by id), so pages neither repeat nor
/// skip a case.
pub fn page_of_school(
    conn: &mut DbConnection,
    school_id: &str,
    filter: &CaseFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<CaseRow>> {
    filtered(school_id, filter)
        .order((cases::created_at.desc(), cases::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(CaseRow::as_select())
        .load(conn)
}

/// How many of a school's cases pass `filter`.
pub fn count_of_school(
    conn: &mut DbConnection,
    school_id: &str,
    filter: &CaseFilter,
) -> QueryResult<i64> {
    filtered(school_id, filter).count().get_result(conn)
}

/// Every case of a school whose pupil has this blind index, oldest first
/// (the same pupil's cases, whatever their status; at most 200).
pub fn with_blind_index(
    conn: &mut DbConnection,
    school_id: &str,
    index: &str,
) -> QueryResult<Vec<CaseRow>> {
    cases::table
        .inner_join(pupils::table)
        .filter(cases::school_id.eq(school_id))
        .filter(pupils::blind_index.eq(index))
        .order((cases::created_at.asc(), cases::id.asc()))
        .limit(200)
        .select(CaseRow::as_select())
        .load(conn)
}

/// Open cases of a school whose pupil has this blind index (the newest 20).
pub fn open_with_blind_index(
    conn: &mut DbConnection,
    school_id: &str,
    index: &str,
) -> QueryResult<Vec<String>> {
    cases::table
        .inner_join(pupils::table)
        .filter(cases::school_id.eq(school_id))
        .filter(pupils::blind_index.eq(index))
        .filter(cases::status.ne("closed"))
        .order(cases::created_at.desc())
        .limit(20)
        .select(cases::id)
        .load(conn)
}

/// Whether `user_id` holds an unexpired break-glass grant for `case_id`.
pub fn break_glass_active(
    conn: &mut DbConnection,
    user_id: &str,
    case_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        break_glass::table
            .filter(break_glass::user_id.eq(user_id))
            .filter(break_glass::case_id.eq(case_id))
            .filter(break_glass::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Sets a case's status if its version is still `expected`; false when it
/// changed meanwhile (optimistic concurrency).
pub fn set_status(
    conn: &mut DbConnection,
    id: &str,
    expected: i32,
    status: &str,
    closed_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(cases::table.find(id).filter(cases::version.eq(expected)))
        .set((
            cases::status.eq(status),
            cases::version.eq(expected + 1),
            cases::updated_at.eq(now),
            cases::closed_at.eq(closed_at),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Records that a case changed without changing its coded fields.
pub fn touch(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(cases::table.find(id))
        .set(cases::updated_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// Closed cases whose content is past `closed_before` and still held.
pub fn due_for_destruction(
    conn: &mut DbConnection,
    closed_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<String>> {
    cases::table
        .filter(cases::status.eq("closed"))
        .filter(cases::closed_at.lt(closed_before))
        .filter(cases::legal_hold.eq(false))
        .filter(cases::content_destroyed_at.is_null())
        .order(cases::closed_at.asc())
        .limit(limit)
        .select(cases::id)
        .load(conn)
}

/// Destroys a case's content: its data key and every sealed column. The
/// case row and its coded fields remain. Returns whether anything was done.
pub fn destroy_content(
    conn: &mut DbConnection,
    case_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let marked = diesel::update(
        cases::table
            .find(case_id)
            .filter(cases::content_destroyed_at.is_null())
            .filter(cases::legal_hold.eq(false)),
    )
    .set(cases::content_destroyed_at.eq(Some(now)))
    .execute(conn)?;
    if marked == 0 {
        return Ok(false);
    }
    diesel::delete(case_keys::table.find(case_id)).execute(conn)?;
    diesel::delete(pupils::table.find(case_id)).execute(conn)?;
    diesel::update(chronology::table.filter(chronology::case_id.eq(case_id)))
        .set(chronology::note_enc.eq(None::<Vec<u8>>))
        .execute(conn)?;
    diesel::update(incidents::table.filter(incidents::case_id.eq(case_id)))
        .set((
            incidents::narrative_enc.eq(Vec::<u8>::new()),
            incidents::incident_date_enc.eq(Vec::<u8>::new()),
        ))
        .execute(conn)?;
    diesel::delete(break_glass::table.filter(break_glass::case_id.eq(case_id))).execute(conn)?;
    diesel::update(consents::table.filter(consents::case_id.eq(case_id)))
        .set(consents::withheld_enc.eq(None::<Vec<u8>>))
        .execute(conn)?;
    diesel::delete(attachments::table.filter(attachments::case_id.eq(case_id))).execute(conn)?;
    super::closure_requests::clear_notes(conn, case_id)?;
    super::legal_holds::clear_notes(conn, case_id)?;
    diesel::update(perpetrators::table.filter(perpetrators::case_id.eq(case_id)))
        .set((
            perpetrators::identity_enc.eq(None::<Vec<u8>>),
            perpetrators::description_enc.eq(None::<Vec<u8>>),
        ))
        .execute(conn)?;
    Ok(true)
}

pub fn set_legal_hold(conn: &mut DbConnection, case_id: &str, hold: bool) -> QueryResult<usize> {
    diesel::update(cases::table.find(case_id))
        .set(cases::legal_hold.eq(hold))
        .execute(conn)
}

/// Assigns the case to `assignee` (or to no one) if its version is still
/// `expected`; false when it changed meanwhile.
pub fn set_assignee(
    conn: &mut DbConnection,
    id: &str,
    expected: i32,
    assignee: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(cases::table.find(id).filter(cases::version.eq(expected)))
        .set((
            cases::assigned_to.eq(assignee),
            cases::version.eq(expected + 1),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// "Assigned to `user_id`", for any listing or search of cases to reuse
/// (`query.filter(assigned_to(id))`).
pub fn assigned_to(user_id: &str) -> diesel::dsl::Eq<cases::assigned_to, String> {
    cases::assigned_to.eq(user_id.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub id: String,
    pub case_id: String,
    pub given_by: String,
    pub services: bool,
    pub reporting: bool,
    pub disclosure: bool,
    pub disclosure_to: String,
    pub legal_basis: String,
    pub withheld_enc: Option<Vec<u8>>,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

pub fn insert_consent(conn: &mut DbConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The consent in force: the newest recorded.
pub fn current_consent(conn: &mut DbConnection, case_id: &str) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .filter(consents::case_id.eq(case_id))
        .order((consents::recorded_at.desc(), consents::id.desc()))
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = perpetrators)]
pub struct PerpetratorRow {
    pub id: String,
    pub case_id: String,
    pub incident_id: Option<String>,
    pub relation: String,
    pub sex: String,
    pub age_group: String,
    pub identity_enc: Option<Vec<u8>>,
    pub description_enc: Option<Vec<u8>>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_perpetrator(conn: &mut DbConnection, row: &PerpetratorRow) -> QueryResult<()> {
    diesel::insert_into(perpetrators::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn perpetrators_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<PerpetratorRow>> {
    perpetrators::table
        .filter(perpetrators::case_id.eq(case_id))
        .order((perpetrators::created_at.asc(), perpetrators::id.asc()))
        .select(PerpetratorRow::as_select())
        .load(conn)
}

/// Whether `incident_id` is an incident of `case_id`.
pub fn incident_of(conn: &mut DbConnection, case_id: &str, incident_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        incidents::table
            .filter(incidents::id.eq(incident_id))
            .filter(incidents::case_id.eq(case_id)),
    ))
    .get_result(conn)
}

/// Changes a case's coded risk level and disability flag if its version is
/// still `expected`; false when it changed meanwhile.
pub fn update_coded(
    conn: &mut DbConnection,
    id: &str,
    expected: i32,
    risk_level: &str,
    disability: bool,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(cases::table.find(id).filter(cases::version.eq(expected)))
        .set((
            cases::risk_level.eq(risk_level),
            cases::disability.eq(disability),
            cases::version.eq(expected + 1),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments)]
pub struct AttachmentRow {
    pub id: String,
    pub case_id: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub name_enc: Option<Vec<u8>>,
    pub content_enc: Vec<u8>,
    pub uploaded_by: String,
    pub uploaded_at: NaiveDateTime,
}

/// An attachment without its content, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = attachments)]
pub struct AttachmentMeta {
    pub id: String,
    pub case_id: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub name_enc: Option<Vec<u8>>,
    pub uploaded_by: String,
    pub uploaded_at: NaiveDateTime,
}

pub fn insert_attachment(conn: &mut DbConnection, row: &AttachmentRow) -> QueryResult<()> {
    diesel::insert_into(attachments::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn attachments_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<AttachmentMeta>> {
    attachments::table
        .filter(attachments::case_id.eq(case_id))
        .order((attachments::uploaded_at.asc(), attachments::id.asc()))
        .select(AttachmentMeta::as_select())
        .load(conn)
}

pub fn attachment(
    conn: &mut DbConnection,
    case_id: &str,
    id: &str,
) -> QueryResult<Option<AttachmentRow>> {
    attachments::table
        .filter(attachments::id.eq(id))
        .filter(attachments::case_id.eq(case_id))
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()
}

/// The break-glass grants of a case, newest first.
pub fn break_glass_of_case(
    conn: &mut DbConnection,
    case_id: &str,
) -> QueryResult<Vec<BreakGlassRow>> {
    break_glass::table
        .filter(break_glass::case_id.eq(case_id))
        .order((break_glass::granted_at.desc(), break_glass::id.desc()))
        .select(BreakGlassRow::as_select())
        .load(conn)
}

/// The break-glass grants of cases of the given schools, newest first,
/// with each case's school.
pub fn break_glass_of_schools(
    conn: &mut DbConnection,
    school_ids: &[String],
    limit: i64,
) -> QueryResult<Vec<(BreakGlassRow, String)>> {
    break_glass::table
        .inner_join(cases::table)
        .filter(cases::school_id.eq_any(school_ids))
        .order((break_glass::granted_at.desc(), break_glass::id.desc()))
        .limit(limit)
        .select((BreakGlassRow::as_select(), cases::school_id))
        .load(conn)
}
