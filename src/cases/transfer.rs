//! Transfer of a pupil's case to another school (a pupil moves; CPOMS and
//! the UK guidance send the child-protection file within 5 school days,
//! separately, with a receipt).
//!
//! The sending school's focal point starts a transfer with a written reason
//! (sealed under the case's data key); the receiving school's focal points
//! see it as pending with only what they need to decide — reference, incident
//! types, risk, the reason — and opening it marks it viewed. Accepting moves
//! the case and everything hanging from it (chronology, incidents, consent,
//! attachments, referrals, clocks) to the new school and re-wraps the data
//! key bound to that school, in one transaction: from then on the key opens
//! only for the school the case row names, and the old school reaches
//! nothing. Refusing (with a reason) or the sender's cancelling leaves the
//! case where it is. The transfer has its own clock (protocol
//! `[transfer]`), which escalates like the others when not answered.
//!
//! Statistics do not move: the case and its referrals keep counting at the
//! school that recorded them (`recorded_school_id`, migration 000015).
//!
//! Must never: show the receiving school anything of the case before it
//! accepts beyond the four items above, leave a case half moved, or let a
//! key bound to the old school open after acceptance.

use chrono::NaiveDateTime;

use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::{AuditError, action};
use crate::authz::capability::Capability;
use crate::authz::{Action, OrgChain};
use crate::crypto::envelope::{KeyBinding, SecretText, blind_index};
use crate::crypto::sealed::SealError;
use crate::db::cases::{self as case_table, CaseRow, ChronologyRow};
use crate::db::referrals as referral_table;
use crate::db::transfers::{self as table, TransferRow};
use crate::db::{DbConnection, DbError, organisations, write_transaction};

/// A reason (for a transfer or a refusal) has this many characters at least
/// and at most.
pub const REASON_MIN_CHARS: usize = 10;
pub const REASON_MAX_CHARS: usize = 2000;

/// The clock kind of a transfer in the deadline engine.
pub const CLOCK_KIND: &str = "transfer";

/// Why a transfer could not be started or answered. Each names what is
/// wrong; none repeats a value.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Unknown, or outside the caller's reach: "not there".
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the target organisation is not a school")]
    NotASchool,
    #[error("the case is already at this school")]
    SameSchool,
    #[error("the target school is not a school of the organisation tree")]
    OutsideTree,
    #[error("the case is already in transfer")]
    AlreadyInTransfer,
    #[error("the case is closed")]
    CaseClosed,
    #[error("the transfer was already answered or cancelled (now {status})")]
    NotOpen { status: String },
    #[error(transparent)]
    Case(#[from] CaseError),
}

impl From<diesel::result::Error> for TransferError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Case(error.into())
    }
}

impl From<SealError> for TransferError {
    fn from(error: SealError) -> Self {
        Self::Case(error.into())
    }
}

impl From<AuditError> for TransferError {
    fn from(error: AuditError) -> Self {
        Self::Case(error.into())
    }
}

impl From<DbError> for TransferError {
    fn from(error: DbError) -> Self {
        Self::Case(error.into())
    }
}

/// A written reason: trimmed, [`REASON_MIN_CHARS`] to [`REASON_MAX_CHARS`].
#[derive(Debug, Clone)]
pub struct Reason(SecretText);

impl Reason {
    /// The reason, or why not (naming `field`).
    pub fn parse(raw: Option<&str>, field: &str) -> Result<Self, FieldError> {
        let text = raw.map(str::trim).unwrap_or_default();
        let chars = text.chars().count();
        if !(REASON_MIN_CHARS..=REASON_MAX_CHARS).contains(&chars) {
            return Err(FieldError::new(
                field,
                format!("must be {REASON_MIN_CHARS} to {REASON_MAX_CHARS} characters"),
            ));
        }
        Ok(Self(SecretText::new(text.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// The id of an organisation as sent: 1 to 64 ASCII letters, digits and
/// hyphens (it is looked up, never trusted further).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolRef(String);

impl SchoolRef {
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty()
            || raw.len() > 64
            || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(FieldError::new(field, "must be the id of a school"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A transfer to start, parsed: the API and the case page build it with
/// [`TransferRequest::parse`] and nothing else.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub to_school: SchoolRef,
    pub reason: Reason,
}

impl TransferRequest {
    /// Every problem at once, each naming its field.
    pub fn parse(to_school_id: &str, reason: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let to_school = SchoolRef::parse(to_school_id, "to_school_id");
        let reason = Reason::parse(reason, "reason");
        match (to_school, reason) {
            (Ok(to_school), Ok(reason)) => Ok(Self { to_school, reason }),
            (to_school, reason) => Err([to_school.err(), reason.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }
}

/// What the receiving school sees to decide.
#[derive(Debug, Clone)]
pub struct IncomingView {
    pub transfer: TransferRow,
    /// The case's short reference (the last six characters of its id).
    pub case_reference: String,
    pub from_school: String,
    pub risk_level: String,
    pub incident_types: Vec<String>,
    /// Decrypted only when one transfer is opened, never in a list.
    pub reason: Option<SecretText>,
}

/// A transfer as the case's school sees it on the case.
#[derive(Debug, Clone)]
pub struct CaseTransferView {
    pub transfer: TransferRow,
    pub from_school: String,
    pub to_school: String,
    pub reason: SecretText,
    pub answer: Option<SecretText>,
}

/// A transfer in the sending school's list (no sealed field: after an
/// acceptance the sender can no longer open any).
#[derive(Debug, Clone)]
pub struct OutgoingView {
    pub transfer: TransferRow,
    pub case_reference: String,
    pub to_school: String,
}

pub fn short_reference(case_id: &str) -> String {
    crate::domain::case_ref::case_reference(case_id)
}

fn school_name(conn: &mut DbConnection, id: &str) -> Result<String, TransferError> {
    Ok(organisations::find(conn, id)?.map_or_else(String::new, |o| o.name))
}

fn root_of(chain: &OrgChain) -> Option<&str> {
    chain.0.last().map(|node| node.id.as_str())
}

fn chronology(case_id: &str, kind: &str, author: &str, now: NaiveDateTime) -> ChronologyRow {
    ChronologyRow {
        id: uuid::Uuid::now_v7().to_string(),
        case_id: case_id.to_owned(),
        kind: kind.to_owned(),
        from_status: None,
        to_status: None,
        note_enc: None,
        author_id: author.to_owned(),
        created_at: now,
    }
}

/// Checks the target school against the case's school: a school, not the
/// same one, of the same organisation tree.
fn check_target(
    conn: &mut DbConnection,
    case: &CaseRow,
    to: &SchoolRef,
) -> Result<(), TransferError> {
    let target = organisations::find(conn, to.as_str())?.ok_or(TransferError::OutsideTree)?;
    if target.kind != "school" {
        return Err(TransferError::NotASchool);
    }
    if target.id == case.school_id {
        return Err(TransferError::SameSchool);
    }
    let here = OrgChain::load(conn, &case.school_id)?.ok_or(TransferError::NotFound)?;
    let there = OrgChain::load(conn, &target.id)?.ok_or(TransferError::OutsideTree)?;
    if root_of(&here).is_none() || root_of(&here) != root_of(&there) {
        return Err(TransferError::OutsideTree);
    }
    Ok(())
}

/// Starts a transfer of a case to another school: the transfer row (reason
/// sealed), its clock, a chronology entry, an audit entry and a content-free
/// notice to the receiving school's focal points — all or nothing.
pub fn start(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    request: &TransferRequest,
) -> Result<TransferRow, TransferError> {
    if !by.allows_case(Action::CaseTransfer, case_id) {
        return Err(TransferError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = case_table::find(conn, case_id)?.ok_or(TransferError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed.into());
        }
        if case.status == "closed" {
            return Err(TransferError::CaseClosed);
        }
        check_target(conn, &case, &request.to_school)?;
        if table::open_of_case(conn, case_id)?.is_some() {
            return Err(TransferError::AlreadyInTransfer);
        }
        let now = context.clock.now_naive();
        let answer_by = context
            .protocol
            .transfer
            .answer_within
            .deadline(now.and_utc(), context.calendar)
            .naive_utc();
        let id = uuid::Uuid::now_v7().to_string();
        let dek = case_key(conn, context, case_id)?;
        let row = TransferRow {
            id: id.clone(),
            case_id: case_id.to_owned(),
            from_school_id: case.school_id.clone(),
            to_school_id: request.to_school.as_str().to_owned(),
            status: "pending".into(),
            reason_enc: dek.seal(
                &binding("case_transfers", "reason_enc", &id, case_id),
                request.reason.expose().as_bytes(),
            )?,
            answer_enc: None,
            requested_by: author.clone(),
            requested_at: now,
            answer_by,
            viewed_at: None,
            answered_by: None,
            answered_at: None,
            version: 1,
        };
        // Two starts racing past the check above: the unique index on open
        // transfers refuses the second, which rolls back whole.
        table::insert(conn, &row).map_err(|error| match error {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => TransferError::AlreadyInTransfer,
            other => other.into(),
        })?;
        referral_table::insert_deadline(
            conn,
            &referral_table::DeadlineRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                // The receiving school answers: a missed answer escalates to
                // its area.
                school_id: row.to_school_id.clone(),
                referral_id: None,
                kind: CLOCK_KIND.to_owned(),
                subject: id.clone(),
                rule: "transfer".to_owned(),
                source: context.protocol.transfer.source.clone(),
                started_at: now,
                due_at: answer_by,
                met_at: None,
                outcome: None,
                level: 0,
                next_check_at: Some(answer_by),
                created_at: now,
            },
        )?;
        super::lifecycle::chronology_note(
            conn,
            context,
            case_id,
            chronology(case_id, "transfer:requested", &author, now),
            Some(&request.reason.0),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::TRANSFER_REQUESTED, case_id)
                .detail("transfer_id", id.clone())
                .detail("from_school_id", row.from_school_id.clone())
                .detail("to_school_id", row.to_school_id.clone()),
        )?;
        crate::referrals::notices::transfer_received(conn, context, &row)?;
        Ok(row)
    })
}

/// The transfer `id`, if `by` may answer it (a focal point of the receiving
/// school); otherwise "not there".
fn answerable(
    conn: &mut DbConnection,
    by: &Capability,
    id: &str,
) -> Result<TransferRow, TransferError> {
    let row = table::find(conn, id)?.ok_or(TransferError::NotFound)?;
    if !by.allows(Action::CaseTransferAnswer, &row.to_school_id) {
        return Err(TransferError::NotFound);
    }
    Ok(row)
}

fn incoming_view(
    conn: &mut DbConnection,
    row: TransferRow,
    reason: Option<SecretText>,
) -> Result<IncomingView, TransferError> {
    let case = case_table::find(conn, &row.case_id)?.ok_or(TransferError::NotFound)?;
    let mut incident_types: Vec<String> = case_table::incidents_of(conn, &row.case_id)?
        .into_iter()
        .map(|i| i.incident_type)
        .collect();
    incident_types.dedup();
    Ok(IncomingView {
        case_reference: short_reference(&row.case_id),
        from_school: school_name(conn, &row.from_school_id)?,
        risk_level: case.risk_level,
        incident_types,
        reason,
        transfer: row,
    })
}

/// Open transfers to the capability's school, the most urgent first; no
/// sealed field is opened.
pub fn incoming(
    conn: &mut DbConnection,
    by: &Capability,
    school_id: &str,
) -> Result<Vec<IncomingView>, TransferError> {
    if !by.allows(Action::CaseTransferAnswer, school_id) {
        return Err(TransferError::NotFound);
    }
    table::incoming(conn, school_id)?
        .into_iter()
        .map(|row| incoming_view(conn, row, None))
        .collect()
}

/// Opens one transfer for the receiving school: the reason decrypted (an
/// audit entry each time); the first opening marks it viewed, in the
/// chronology too.
pub fn open(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    id: &str,
) -> Result<IncomingView, TransferError> {
    write_transaction(conn, |conn| {
        let mut row = answerable(conn, by, id)?;
        let now = context.clock.now_naive();
        let first = row.status == "pending" && table::mark_viewed(conn, &row.id, now)? == 1;
        if first {
            row = table::find(conn, id)?.ok_or(TransferError::NotFound)?;
            case_table::insert_chronology(
                conn,
                &chronology(&row.case_id, "transfer:viewed", &by.author(), now),
            )?;
        }
        let dek = case_key(conn, context, &row.case_id)?;
        let reason = dek.open_text(
            &binding("case_transfers", "reason_enc", &row.id, &row.case_id),
            &row.reason_enc,
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::TRANSFER_VIEWED, row.case_id.clone())
                .detail("transfer_id", row.id.clone())
                .detail("fields", "transfer.reason")
                .detail("first", first.to_string()),
        )?;
        incoming_view(conn, row, Some(reason))
    })
}

/// Accepts a transfer: the case and everything hanging from it move to the
/// receiving school, the pupil's blind index is recomputed for it, and the
/// data key is re-wrapped bound to it — one transaction.
pub fn accept(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    id: &str,
) -> Result<(TransferRow, CaseRow), TransferError> {
    write_transaction(conn, |conn| {
        let row = answerable(conn, by, id)?;
        if !row.is_open() {
            return Err(TransferError::NotOpen { status: row.status });
        }
        let case = case_table::find(conn, &row.case_id)?.ok_or(TransferError::NotFound)?;
        if case.status == "closed" {
            return Err(TransferError::CaseClosed);
        }
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed.into());
        }
        let now = context.clock.now_naive();
        let author = by.author();
        // The key as bound now (to the case, or to the sending school).
        let dek = case_key(conn, context, &case.id)?;
        if let Some(pupil) = case_table::pupil(conn, &case.id)? {
            let name = dek.open_text(
                &binding("pupils", "name_enc", &case.id, &case.id),
                &pupil.name_enc,
            )?;
            let born = dek.open_text(
                &binding("pupils", "date_of_birth_enc", &case.id, &case.id),
                &pupil.date_of_birth_enc,
            )?;
            let index = blind_index(
                &context.keyring,
                &row.to_school_id,
                name.expose(),
                born.expose(),
            )?;
            table::set_blind_index(conn, &case.id, &index)?;
        }
        if table::move_case(
            conn,
            &case.id,
            &row.from_school_id,
            &row.to_school_id,
            case.version,
            now,
        )? != 1
        {
            return Err(CaseError::Stale {
                current: case.version,
            }
            .into());
        }
        let rewrapped = dek.wrap_bound(
            &context.keyring,
            &case.id,
            KeyBinding::School(&row.to_school_id),
        )?;
        table::rebind_key(
            conn,
            &case.id,
            &rewrapped.kek_id,
            &rewrapped.sealed,
            &row.to_school_id,
            now,
        )?;
        if table::answer(conn, &row, "accepted", None, &author, now)? != 1 {
            return Err(TransferError::NotOpen { status: row.status });
        }
        meet_clock(conn, &row, "accepted", now)?;
        case_table::insert_chronology(
            conn,
            &chronology(&case.id, "transfer:accepted", &author, now),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::TRANSFER_ACCEPTED, case.id.clone())
                .detail("transfer_id", row.id.clone())
                .detail("from_school_id", row.from_school_id.clone())
                .detail("to_school_id", row.to_school_id.clone()),
        )?;
        let row = table::find(conn, id)?.ok_or(TransferError::NotFound)?;
        crate::referrals::notices::transfer_answered(conn, context, &row, "accepted")?;
        let case = case_table::find(conn, &case.id)?.ok_or(TransferError::NotFound)?;
        Ok((row, case))
    })
}

fn meet_clock(
    conn: &mut DbConnection,
    row: &TransferRow,
    outcome: &str,
    now: NaiveDateTime,
) -> Result<(), TransferError> {
    if let Some(open) = referral_table::open_deadline(conn, &row.case_id, CLOCK_KIND, &row.id)? {
        referral_table::meet_deadline(conn, &open.id, outcome, now)?;
    }
    Ok(())
}

/// Refuses a transfer with a reason (sealed; the sender reads it): the case
/// stays where it is.
pub fn refuse(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    id: &str,
    reason: &Reason,
) -> Result<TransferRow, TransferError> {
    write_transaction(conn, |conn| {
        let row = answerable(conn, by, id)?;
        if !row.is_open() {
            return Err(TransferError::NotOpen { status: row.status });
        }
        let now = context.clock.now_naive();
        let author = by.author();
        let dek = case_key(conn, context, &row.case_id)?;
        let sealed = dek.seal(
            &binding("case_transfers", "answer_enc", &row.id, &row.case_id),
            reason.expose().as_bytes(),
        )?;
        if table::answer(conn, &row, "refused", Some(sealed), &author, now)? != 1 {
            return Err(TransferError::NotOpen { status: row.status });
        }
        meet_clock(conn, &row, "refused", now)?;
        case_table::insert_chronology(
            conn,
            &chronology(&row.case_id, "transfer:refused", &author, now),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::TRANSFER_REFUSED, row.case_id.clone())
                .detail("transfer_id", row.id.clone())
                .detail("to_school_id", row.to_school_id.clone()),
        )?;
        let row = table::find(conn, id)?.ok_or(TransferError::NotFound)?;
        crate::referrals::notices::transfer_answered(conn, context, &row, "refused")?;
        Ok(row)
    })
}

/// The sending school's focal point cancels an open transfer of its case.
pub fn cancel(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    id: &str,
) -> Result<TransferRow, TransferError> {
    write_transaction(conn, |conn| {
        let row = table::find(conn, id)?.ok_or(TransferError::NotFound)?;
        if !by.allows_case(Action::CaseTransfer, &row.case_id) {
            return Err(TransferError::NotFound);
        }
        if !row.is_open() {
            return Err(TransferError::NotOpen { status: row.status });
        }
        let now = context.clock.now_naive();
        let author = by.author();
        if table::answer(conn, &row, "cancelled", None, &author, now)? != 1 {
            return Err(TransferError::NotOpen { status: row.status });
        }
        meet_clock(conn, &row, "cancelled", now)?;
        case_table::insert_chronology(
            conn,
            &chronology(&row.case_id, "transfer:cancelled", &author, now),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::TRANSFER_CANCELLED, row.case_id.clone())
                .detail("transfer_id", row.id.clone()),
        )?;
        table::find(conn, id)?.ok_or(TransferError::NotFound)
    })
}

/// The transfers of a case, for whoever may read it (reasons and answers
/// decrypted; the read is audited).
pub fn of_case(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<Vec<CaseTransferView>, TransferError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(TransferError::NotFound);
    }
    let rows = table::of_case(conn, case_id)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    write_transaction(conn, |conn| {
        let dek = case_key(conn, context, case_id)?;
        let mut views = Vec::with_capacity(rows.len());
        for row in &rows {
            let reason = dek.open_text(
                &binding("case_transfers", "reason_enc", &row.id, case_id),
                &row.reason_enc,
            )?;
            let answer = row
                .answer_enc
                .as_ref()
                .map(|sealed| {
                    dek.open_text(
                        &binding("case_transfers", "answer_enc", &row.id, case_id),
                        sealed,
                    )
                })
                .transpose()?;
            views.push(CaseTransferView {
                from_school: school_name(conn, &row.from_school_id)?,
                to_school: school_name(conn, &row.to_school_id)?,
                reason,
                answer,
                transfer: row.clone(),
            });
        }
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_READ, case_id)
                .detail("fields", "transfer.reason,transfer.answer"),
        )?;
        Ok(views)
    })
}

/// Transfers the capability's school started (any status), for its list.
pub fn outgoing(
    conn: &mut DbConnection,
    by: &Capability,
    school_id: &str,
) -> Result<Vec<OutgoingView>, TransferError> {
    if !by.allows(Action::CaseList, school_id) {
        return Err(TransferError::NotFound);
    }
    table::outgoing(conn, school_id)?
        .into_iter()
        .map(|row| {
            Ok(OutgoingView {
                case_reference: short_reference(&row.case_id),
                to_school: school_name(conn, &row.to_school_id)?,
                transfer: row,
            })
        })
        .collect()
}

/// Schools of the same organisation tree a case at `school_id` may go to
/// (for the form's choice), by name.
pub fn target_schools(
    conn: &mut DbConnection,
    school_id: &str,
) -> Result<Vec<(String, String)>, TransferError> {
    let here = OrgChain::load(conn, school_id)?.ok_or(TransferError::NotFound)?;
    let Some(root) = root_of(&here).map(str::to_owned) else {
        return Ok(Vec::new());
    };
    let ids = organisations::subtree_ids(conn, &root)?;
    let mut schools = Vec::new();
    for id in ids {
        if id == school_id {
            continue;
        }
        if let Some(org) = organisations::find(conn, &id)?
            && org.kind == "school"
        {
            schools.push((org.id, org.name));
        }
    }
    schools.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(schools)
}
