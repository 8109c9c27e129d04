//! Cases: intake, reading, listing and break-glass (DESIGN §2).
//!
//! Owns the rules of a case — what intake must contain, which coded fields
//! are derived (age band and child flags at 16 and 18 from the date of birth
//! and incident date, incident month, reporting delay), idempotent creation
//! — and the encryption of every sensitive field under the case's own data
//! key. Every read of sensitive fields writes an audit entry naming the
//! fields, never their values. Functions that act take a capability.
//!
//! Must never: store a sensitive value unsealed, decrypt before the policy
//! allowed it, or leave half a case behind.

pub mod approval;
pub mod assignment;
pub mod attachments;
pub mod break_glass_review;
pub mod consent;
pub mod drafts;
pub mod input;
pub mod intake_token;
pub mod keys;
pub mod legal_hold;
pub mod lifecycle;
pub mod perpetrators;
pub mod pupil;
pub mod retention;
pub mod search;
pub mod transfer;

use chrono::{Datelike, NaiveDate};

use crate::audit::{AuditError, AuditEvent, Auditor, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::envelope::{DataKey, KeyBinding, blind_index};
use crate::crypto::keyring::Keyring;
use crate::crypto::sealed::{Binding, SealError};
use crate::crypto::sha256_hex;
use crate::db::cases::{
    self as table, BreakGlassRow, CaseKeyRow, CaseRequestRow, CaseRow, ChronologyRow, IncidentRow,
    PupilRow,
};
use crate::db::{DbConnection, DbError, organisations, write_transaction};
use crate::domain::taxonomy::Taxonomy;
pub use input::{CaseInput, FieldError, IncidentInput, PupilInput};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("not found")]
    NotFound,
    #[error("the content of this case was destroyed under the retention policy")]
    ContentDestroyed,
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyConflict,
    /// An intake form whose token is unknown, expired or another session's.
    #[error("this intake form has expired; send it again")]
    FormExpired,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the case changed meanwhile (now version {current})")]
    Stale { current: i32 },
    #[error("this case's closure needs a second person's approval: request it")]
    ClosureNeedsApproval,
    #[error("a closure of this case already awaits approval")]
    ClosureAwaitingApproval,
    #[error("the person who asked for a closure cannot decide on it")]
    OwnClosureRequest,
    #[error("a {from} case cannot go there")]
    InvalidTransition { from: String, allowed: Vec<String> },
    #[error("a sealed value could not be opened or made: {0}")]
    Crypto(#[from] SealError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for CaseError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// Everything intake and reading need.
pub struct CaseContext<'a> {
    pub keyring: std::sync::Arc<Keyring>,
    pub auditor: &'a Auditor,
    pub clock: &'a dyn Clock,
    pub taxonomy: &'a Taxonomy,
    pub protocol: &'a crate::domain::protocol::Protocol,
    pub calendar: &'a crate::domain::calendar::Calendar,
    /// Where links in notices point.
    pub public_url: &'a str,
}

pub(crate) fn binding<'a>(
    table: &'a str,
    column: &'a str,
    row_id: &'a str,
    case_id: &'a str,
) -> Binding<'a> {
    Binding {
        table,
        column,
        row_id,
        case_id,
    }
}

/// The case's data key, unwrapped with whichever key-encryption key wrapped it.
pub(crate) fn case_key(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    case_id: &str,
) -> Result<DataKey, CaseError> {
    let key = table::key(conn, case_id)?.ok_or(CaseError::NotFound)?;
    // A key re-wrapped at a transfer opens only for the school the case row
    // names now (the binding is rebuilt from the row, not from the key's).
    let bound = match crate::db::transfers::key_binding(conn, case_id)? {
        Some((Some(_), school_id)) => Some(school_id),
        _ => None,
    };
    let binding = bound
        .as_deref()
        .map_or(KeyBinding::Case, KeyBinding::School);
    Ok(DataKey::unwrap_bound(
        &context.keyring,
        case_id,
        binding,
        &key.wrapped_dek,
    )?)
}

/// The audit entry of a successful action on a case by the capability's holder.
pub(crate) fn case_event(
    by: &Capability,
    what: &'static str,
    case_id: impl Into<String>,
) -> AuditEvent {
    AuditEvent::new(what, Outcome::Success)
        .actor(by.actor())
        .request(by.request())
        .target("case", case_id)
}

/// The result of intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub case: CaseRow,
    /// True when an earlier request with the same Idempotency-Key made it.
    pub replayed: bool,
    /// Other open cases of the same pupil at this school.
    pub open_cases_for_pupil: Vec<String>,
}

/// Whole years from `born` to `on`.
fn age_on(born: NaiveDate, on: NaiveDate) -> i64 {
    let mut age = i64::from(on.year() - born.year());
    if (on.month(), on.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    age
}

/// Records a case: pupil, first incident, chronology, audit — all or nothing.
/// With an idempotency key, a retried request returns the case the first
/// one made; the same key with a different body is refused.
pub fn create(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    input: &CaseInput,
    idempotency_key: Option<&str>,
) -> Result<Created, CaseError> {
    let creator = by.author();
    let key_hash =
        idempotency_key.map(|key| sha256_hex(format!("{creator}\u{1f}{key}").as_bytes()));
    let request_hash = input.fingerprint();
    let attempt = |conn: &mut DbConnection| {
        write_transaction(conn, |conn| -> Result<Created, CaseError> {
            if let Some(key) = &key_hash
                && let Some(previous) = table::request(conn, key)?
            {
                if previous.request_hash != request_hash {
                    return Err(CaseError::IdempotencyConflict);
                }
                let case = table::find(conn, &previous.case_id)?.ok_or(CaseError::NotFound)?;
                return Ok(Created {
                    case,
                    replayed: true,
                    open_cases_for_pupil: Vec::new(),
                });
            }
            insert_new(
                conn,
                context,
                by,
                input,
                &creator,
                key_hash.as_deref(),
                &request_hash,
            )
        })
    };
    match attempt(conn) {
        // Two identical requests raced past the lookup (PostgreSQL); the
        // loser's transaction rolled back whole. Answer with the winner's case.
        Err(CaseError::Db(DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )))) if key_hash.is_some() => attempt(conn),
        other => other,
    }
}

fn insert_new(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    input: &CaseInput,
    creator: &str,
    key_hash: Option<&str>,
    request_hash: &str,
) -> Result<Created, CaseError> {
    let school = organisations::find(conn, &input.school_id)?.ok_or(CaseError::NotFound)?;
    if !by.allows(Action::CaseCreate, &school.id) || school.kind != "school" {
        return Err(CaseError::NotFound);
    }
    let now = context.clock.now_naive();
    let today = now.date();
    let mut problems = Vec::new();
    if input.pupil.date_of_birth > today {
        problems.push(FieldError::new("pupil.date_of_birth", "is in the future"));
    }
    if input.incident.date > today {
        problems.push(FieldError::new("incident.date", "is in the future"));
    }
    if input.incident.date < input.pupil.date_of_birth {
        problems.push(FieldError::new(
            "incident.date",
            "is before the date of birth",
        ));
    }
    if !problems.is_empty() {
        return Err(CaseError::Invalid(problems));
    }
    let age = age_on(input.pupil.date_of_birth, input.incident.date);
    let case_id = uuid::Uuid::now_v7().to_string();
    let incident_id = uuid::Uuid::now_v7().to_string();
    let dek = DataKey::generate()?;
    let wrapped = dek.wrap(&context.keyring, &case_id)?;
    let dob_text = input.pupil.date_of_birth.format("%Y-%m-%d").to_string();
    let index = blind_index(
        &context.keyring,
        &school.id,
        input.pupil.name.expose(),
        &dob_text,
    )?;
    let open_cases_for_pupil = table::open_with_blind_index(conn, &school.id, &index)?;
    let case = CaseRow {
        id: case_id.clone(),
        school_id: school.id.clone(),
        status: "reported".into(),
        risk_level: input.risk_level.clone(),
        survivor_sex: input.pupil.sex.clone(),
        age_band: context.taxonomy.band("age_band", age).map(str::to_owned),
        under_16: Some(age < 16),
        under_18: Some(age < 18),
        disability: input.pupil.disability,
        school_level: school.school_level.clone().unwrap_or_default(),
        version: 1,
        created_by: creator.to_owned(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        legal_hold: false,
        content_destroyed_at: None,
        assigned_to: by
            .actor()
            .filter(|a| a.role == crate::domain::user::Role::FocalPoint.as_str())
            .map(|a| a.user_id),
    };
    table::insert_case(conn, &case)?;
    table::insert_key(
        conn,
        &CaseKeyRow {
            case_id: case_id.clone(),
            kek_id: wrapped.kek_id,
            wrapped_dek: wrapped.sealed,
            created_at: now,
            rewrapped_at: None,
        },
    )?;
    let seal = |column: &str, text: &str| {
        dek.seal(
            &binding("pupils", column, &case_id, &case_id),
            text.as_bytes(),
        )
    };
    let seal_optional = |column: &str, text: Option<&crate::crypto::envelope::SecretText>| {
        text.map(|t| seal(column, t.expose())).transpose()
    };
    table::insert_pupil(
        conn,
        &PupilRow {
            case_id: case_id.clone(),
            name_enc: seal("name_enc", input.pupil.name.expose())?,
            date_of_birth_enc: seal("date_of_birth_enc", &dob_text)?,
            class_enc: seal_optional("class_enc", input.pupil.class.as_ref())?,
            guardian_enc: seal_optional("guardian_enc", input.pupil.guardian.as_ref())?,
            contact_enc: seal_optional("contact_enc", input.pupil.contact.as_ref())?,
            blind_index: index,
        },
    )?;
    insert_incident(
        conn,
        context,
        &dek,
        &case_id,
        &incident_id,
        &input.incident,
        creator,
        now,
    )?;
    table::insert_chronology(
        conn,
        &ChronologyRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: case_id.clone(),
            kind: "created".into(),
            from_status: None,
            to_status: Some("reported".into()),
            note_enc: None,
            author_id: creator.to_owned(),
            created_at: now,
        },
    )?;
    if let Some(key) = key_hash {
        table::insert_request(
            conn,
            &CaseRequestRow {
                idempotency_key: key.to_owned(),
                case_id: case_id.clone(),
                request_hash: request_hash.to_owned(),
                created_at: now,
            },
        )?;
    }
    crate::referrals::clocks::plan(conn, context, &case_id)?;
    context.auditor.append(
        conn,
        context.clock,
        &case_event(by, action::CASE_CREATED, case_id.clone())
            .detail("incident_id", incident_id)
            .detail(
                "possible_duplicate",
                (!open_cases_for_pupil.is_empty()).to_string(),
            ),
    )?;
    Ok(Created {
        case,
        replayed: false,
        open_cases_for_pupil,
    })
}

/// Seals and stores one incident of a case.
#[expect(
    clippy::too_many_arguments,
    reason = "one row's worth of context, all needed"
)]
fn insert_incident(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    dek: &DataKey,
    case_id: &str,
    incident_id: &str,
    incident: &IncidentInput,
    creator: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), CaseError> {
    let seal = |column: &str, text: &str| {
        dek.seal(
            &binding("incidents", column, incident_id, case_id),
            text.as_bytes(),
        )
    };
    let delay_days = (now.date() - incident.date).num_days();
    table::insert_incident(
        conn,
        &IncidentRow {
            id: incident_id.to_owned(),
            case_id: case_id.to_owned(),
            incident_type: incident.incident_type.clone(),
            csa_subtype: incident.csa_subtype.clone(),
            contexts: incident.contexts.join(","),
            location_type: incident.location_type.clone(),
            perpetrator_relation: incident.perpetrator_relation.clone(),
            incident_month: incident.date.format("%Y-%m").to_string(),
            reporting_delay: context
                .taxonomy
                .band("reporting_delay", delay_days)
                .unwrap_or("over_30_days")
                .to_owned(),
            incident_date_enc: seal(
                "incident_date_enc",
                &incident.date.format("%Y-%m-%d").to_string(),
            )?,
            narrative_enc: seal("narrative_enc", incident.narrative.expose())?,
            created_by: creator.to_owned(),
            created_at: now,
        },
    )?;
    Ok(())
}

/// Adds a further incident to a case (a case holds one or more).
pub fn add_incident(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    incident: &IncidentInput,
) -> Result<String, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let creator = by.author();
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        let now = context.clock.now_naive();
        if incident.date > now.date() {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "date",
                "is in the future",
            )]));
        }
        let dek = case_key(conn, context, case_id)?;
        let pupil = table::pupil(conn, case_id)?.ok_or(CaseError::NotFound)?;
        let born = dek.open_text(
            &binding("pupils", "date_of_birth_enc", case_id, case_id),
            &pupil.date_of_birth_enc,
        )?;
        if chrono::NaiveDate::parse_from_str(born.expose(), "%Y-%m-%d")
            .is_ok_and(|born| incident.date < born)
        {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "date",
                "is before the date of birth",
            )]));
        }
        let incident_id = uuid::Uuid::now_v7().to_string();
        insert_incident(
            conn,
            context,
            &dek,
            case_id,
            &incident_id,
            incident,
            &creator,
            now,
        )?;
        table::insert_chronology(
            conn,
            &ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: "incident_added".into(),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: creator.clone(),
                created_at: now,
            },
        )?;
        table::touch(conn, case_id, now)?;
        crate::referrals::clocks::plan(conn, context, case_id)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_UPDATED, case_id)
                .detail("incident_added", incident_id.clone()),
        )?;
        Ok(incident_id)
    })
}

/// A decrypted case, for those allowed to read it.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub case: CaseRow,
    pub school_code: String,
    pub pupil: PupilView,
    pub incidents: Vec<IncidentView>,
    pub chronology: Vec<ChronologyView>,
    pub consent: Option<(
        crate::db::cases::ConsentRow,
        Option<crate::crypto::envelope::SecretText>,
    )>,
    pub perpetrators: Vec<perpetrators::PerpetratorView>,
    pub attachments: Vec<attachments::AttachmentView>,
}

#[derive(Debug, Clone)]
pub struct PupilView {
    pub name: crate::crypto::envelope::SecretText,
    pub date_of_birth: crate::crypto::envelope::SecretText,
    pub class: Option<crate::crypto::envelope::SecretText>,
    pub guardian: Option<crate::crypto::envelope::SecretText>,
    pub contact: Option<crate::crypto::envelope::SecretText>,
}

#[derive(Debug, Clone)]
pub struct IncidentView {
    pub row: IncidentRow,
    pub date: crate::crypto::envelope::SecretText,
    pub narrative: crate::crypto::envelope::SecretText,
}

#[derive(Debug, Clone)]
pub struct ChronologyView {
    pub row: ChronologyRow,
    pub note: Option<crate::crypto::envelope::SecretText>,
}

/// The sensitive fields a full read opens, for the audit entry.
pub const READ_FIELDS: &str = "pupil.name,pupil.date_of_birth,pupil.class,pupil.guardian,pupil.contact,incident.date,incident.narrative,chronology.note,consent.withheld,perpetrator.identity,perpetrator.description,attachment.name,closure_request.note,legal_hold.note";

/// Reads and decrypts a case; the read and the fields opened are audited in
/// the same transaction (no audit entry, no plaintext).
/// A case as the people working on it see it at once: the trimmed, opened
/// view, and what the referral protocol has running on it. The API's
/// `GET /cases/{id}` and the case page both read it here, under the one
/// `case.read` capability, and only format it differently.
pub struct CaseFile {
    pub view: CaseView,
    pub referrals: Vec<crate::db::referrals::ReferralRow>,
    pub deadlines: Vec<crate::db::referrals::DeadlineRow>,
    pub escalations: Vec<crate::db::referrals::EscalationRow>,
    /// Who works the case, a closure awaiting approval, a legal hold.
    pub casework: Casework,
}

/// Case-work on a case (issue 16), as its readers see it.
pub struct Casework {
    /// The assigned focal point: id and display name.
    pub assignee: Option<(String, String)>,
    /// Whether closing it needs a second person's approval.
    pub closure_needs_approval: bool,
    pub pending_closure: Option<approval::PendingClosure>,
    pub legal_hold: Option<legal_hold::HoldView>,
}

fn casework(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case: &CaseRow,
) -> Result<Casework, CaseError> {
    let assignee = match &case.assigned_to {
        Some(id) => crate::db::users::display_names(conn, std::slice::from_ref(id))?
            .remove(id)
            .map(|name| (id.clone(), name)),
        None => None,
    };
    Ok(Casework {
        assignee,
        closure_needs_approval: approval::needed(conn, case)?,
        pending_closure: approval::pending(conn, context, by, &case.id)?,
        legal_hold: legal_hold::in_force(conn, context, by, &case.id)?,
    })
}

/// Reads a [`CaseFile`] (the view is audited as a read, see [`read`]).
pub fn read_file(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<CaseFile, CaseError> {
    let view = read(conn, context, by, case_id)?;
    let casework = casework(conn, context, by, &view.case)?;
    Ok(CaseFile {
        view,
        casework,
        referrals: crate::db::referrals::of_case(conn, case_id)?,
        deadlines: crate::db::referrals::deadlines_of(conn, case_id)?,
        escalations: crate::db::referrals::escalations_of_case(conn, case_id)?,
    })
}

pub fn read(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<CaseView, CaseError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(CaseError::NotFound);
    }
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        let dek = case_key(conn, context, case_id)?;
        let pupil = table::pupil(conn, case_id)?.ok_or(CaseError::NotFound)?;
        let open = |column: &str, stored: &[u8]| {
            dek.open_text(&binding("pupils", column, case_id, case_id), stored)
        };
        let open_optional =
            |column: &str, stored: Option<&Vec<u8>>| stored.map(|s| open(column, s)).transpose();
        let pupil = PupilView {
            name: open("name_enc", &pupil.name_enc)?,
            date_of_birth: open("date_of_birth_enc", &pupil.date_of_birth_enc)?,
            class: open_optional("class_enc", pupil.class_enc.as_ref())?,
            guardian: open_optional("guardian_enc", pupil.guardian_enc.as_ref())?,
            contact: open_optional("contact_enc", pupil.contact_enc.as_ref())?,
        };
        let incidents = table::incidents_of(conn, case_id)?
            .into_iter()
            .map(|row| {
                let open = |column: &str, stored: &[u8]| {
                    dek.open_text(&binding("incidents", column, &row.id, case_id), stored)
                };
                Ok(IncidentView {
                    date: open("incident_date_enc", &row.incident_date_enc)?,
                    narrative: open("narrative_enc", &row.narrative_enc)?,
                    row: row.clone(),
                })
            })
            .collect::<Result<Vec<_>, SealError>>()?;
        let chronology = table::chronology_of(conn, case_id)?
            .into_iter()
            .map(|row| {
                let note = row
                    .note_enc
                    .as_deref()
                    .map(|stored| {
                        dek.open_text(&binding("chronology", "note_enc", &row.id, case_id), stored)
                    })
                    .transpose()?;
                Ok(ChronologyView { row, note })
            })
            .collect::<Result<Vec<_>, SealError>>()?;
        let perpetrators = perpetrators::open_all(conn, &dek, case_id)?;
        let attachments = attachments::list(conn, &dek, case_id)?;
        let consent = match table::current_consent(conn, case_id)? {
            Some(row) => {
                let withheld = consent::open_withheld(&dek, case_id, &row)?;
                Some((row, withheld))
            }
            None => None,
        };
        let school_code = organisations::find(conn, &case.school_id)?
            .map(|o| o.code)
            .unwrap_or_default();
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_READ, case_id)
                .detail("fields", READ_FIELDS)
                .detail(
                    "via",
                    if by.via_break_glass() {
                        "break_glass"
                    } else {
                        "role"
                    },
                ),
        )?;
        Ok(CaseView {
            case,
            school_code,
            pupil,
            incidents,
            chronology,
            consent,
            perpetrators,
            attachments,
        })
    })
}

/// Why a district officer opens a case: written out, 20 to 2,000
/// characters (trimmed), sealed in the case. The API and the case page both
/// parse it here.
pub struct BreakGlassReason(crate::crypto::envelope::SecretText);

impl BreakGlassReason {
    pub const MIN_CHARS: usize = 20;
    pub const MAX_CHARS: usize = 2000;

    /// The reason, or `Err` when it is shorter or longer than allowed.
    pub fn parse(raw: &str) -> Result<Self, ReasonLength> {
        let reason = raw.trim();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&reason.chars().count()) {
            Ok(Self(crate::crypto::envelope::SecretText::new(
                reason.to_owned(),
            )))
        } else {
            Err(ReasonLength)
        }
    }
}

/// A break-glass reason outside [`BreakGlassReason::MIN_CHARS`] to
/// [`BreakGlassReason::MAX_CHARS`] characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`reason` must explain in 20 to 2000 characters why this case must be opened.")]
pub struct ReasonLength;

/// Opens a case to a district officer for the protocol's break-glass hours
/// (`[break_glass]` of `policies/referral-protocol.toml`), with a written
/// reason sealed in the case; the school's focal points and the area's
/// auditors are told (content-free). Returns when the grant expires.
pub fn break_glass(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    reason: &BreakGlassReason,
) -> Result<chrono::NaiveDateTime, CaseError> {
    if !by.allows_case(Action::CaseBreakGlass, case_id) {
        return Err(CaseError::NotFound);
    }
    let actor = by.actor().ok_or(CaseError::NotFound)?;
    write_transaction(conn, |conn| {
        let dek = case_key(conn, context, case_id)?;
        let now = context.clock.now_naive();
        let expires_at = now + context.protocol.break_glass.duration();
        let id = uuid::Uuid::now_v7().to_string();
        let reason_enc = dek.seal(
            &binding("break_glass", "reason_enc", &id, case_id),
            reason.0.expose().as_bytes(),
        )?;
        table::insert_break_glass(
            conn,
            &BreakGlassRow {
                id: id.clone(),
                case_id: case_id.to_owned(),
                user_id: actor.user_id.clone(),
                reason_enc,
                granted_at: now,
                expires_at,
            },
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &AuditEvent::new(action::BREAK_GLASS, Outcome::Success)
                .actor(Some(actor.clone()))
                .request(by.request())
                .target("case", case_id)
                .detail("grant_id", id.clone())
                .detail("expires_at", expires_at.and_utc().to_rfc3339()),
        )?;
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        crate::referrals::notices::break_glass_opened(
            conn,
            context,
            &id,
            case_id,
            &case.school_id,
            expires_at,
        )?;
        Ok(expires_at)
    })
}

#[cfg(test)]
mod break_glass_tests {
    use super::*;

    #[test]
    fn a_break_glass_reason_is_20_to_2000_characters_trimmed() {
        assert!(BreakGlassReason::parse("too short").is_err());
        assert!(BreakGlassReason::parse(&format!("  {}  ", "ă".repeat(19))).is_err());
        assert!(BreakGlassReason::parse(&"ă".repeat(20)).is_ok());
        assert!(BreakGlassReason::parse(&"ă".repeat(2000)).is_ok());
        assert_eq!(
            BreakGlassReason::parse(&"ă".repeat(2001)).err(),
            Some(ReasonLength)
        );
    }
}
