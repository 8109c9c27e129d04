//! Referrals to partner agencies under the protocol (DESIGN §3): the
//! protocol's suggestions for a case and the focal point's decisions on
//! them, sending (consent, statutory basis or a written override), the
//! agency's answers (`sent → acknowledged → accepted | declined →
//! in_service → completed`, `withdrawn` by the sender), the view an agency
//! gets through its field profile, the clocks and their escalation, and
//! one-time links for partners without an account.
//!
//! Must never: open a sealed field outside the referral's profile, send a
//! service referral without consent or a permitted override, or let an
//! answer to a referral be lost (every step is in the case's chronology and
//! the audit log, in the same transaction).

pub mod clocks;
pub mod escalation;
pub mod links;
pub mod notices;
pub mod reminders;
pub mod view;

use chrono::{NaiveDateTime, TimeZone, Utc};

use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::lifecycle::chronology_note;
use crate::cases::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::crypto::envelope::SecretText;
use crate::db::cases::{self as case_table, CaseRow, ChronologyRow};
use crate::db::referrals::{self as table, OPEN_STATUSES, ReferralRow, SkipRow};
use crate::db::{DbConnection, organisations, write_transaction};
use crate::domain::org::AgencyType;
use crate::domain::protocol::{
    AgeGroup, Facts, IncidentFacts, Need, ReferralKind, Suggestion, Within,
};

/// How long an agency has to acknowledge a referral the protocol did not
/// suggest.
pub const ADDED_ACKNOWLEDGE: Within = Within::WorkingDays { working_days: 2 };
/// The shortest written reason (an override, a skip, a decline).
pub const MIN_REASON_CHARS: usize = 10;
pub const MAX_TEXT_CHARS: usize = 4000;

/// The coded facts of a case the protocol looks at.
pub fn facts(conn: &mut DbConnection, case: &CaseRow) -> Result<Facts, CaseError> {
    let incidents = case_table::incidents_of(conn, &case.id)?
        .into_iter()
        .map(|i| IncidentFacts {
            incident_type: i.incident_type,
            csa_subtype: i.csa_subtype,
            contexts: i
                .contexts
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            reporting_delay: i.reporting_delay,
        })
        .collect();
    Ok(Facts {
        age: AgeGroup::from_flags(case.under_16, case.under_18),
        risk_level: case.risk_level.clone(),
        incidents,
    })
}

pub(crate) fn utc(at: NaiveDateTime) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&at)
}

/// A suggestion with where the focal point stands on it.
#[derive(Debug, Clone)]
pub struct SuggestionState {
    pub suggestion: Suggestion,
    /// When it must (required) or should (recommended) be sent.
    pub send_by: NaiveDateTime,
    /// `pending`, `sent` or `skipped`.
    pub state: &'static str,
    pub referral_ids: Vec<String>,
    /// The legal sources of the rules behind it.
    pub sources: Vec<String>,
}

/// What the protocol asks for this case now, and what was done about it.
pub fn suggestions(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
) -> Result<Vec<SuggestionState>, CaseError> {
    if !by.allows_case(Action::ReferralSend, case_id) {
        return Err(CaseError::NotFound);
    }
    let case = case_table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    let facts = facts(conn, &case)?;
    let referrals = table::of_case(conn, case_id)?;
    let skips = table::skips_of(conn, case_id)?;
    let deadlines = table::deadlines_of(conn, case_id)?;
    let mut out = Vec::new();
    for suggestion in context.protocol.suggest(&facts) {
        let agency = suggestion.agency_type.as_str();
        let referral_ids: Vec<String> = referrals
            .iter()
            .filter(|r| r.agency_type == agency && r.status != "withdrawn")
            .map(|r| r.id.clone())
            .collect();
        let state = if !referral_ids.is_empty() {
            "sent"
        } else if skips.iter().any(|s| s.agency_type == agency) {
            "skipped"
        } else {
            "pending"
        };
        let send_by = deadlines
            .iter()
            .find(|d| d.kind == "send" && d.subject == agency)
            .map_or_else(
                || {
                    suggestion
                        .send_within
                        .deadline(utc(case.created_at), context.calendar)
                        .naive_utc()
                },
                |d| d.due_at,
            );
        let sources = suggestion
            .rules
            .iter()
            .filter_map(|id| context.protocol.rule(id).map(|r| r.source.clone()))
            .collect();
        out.push(SuggestionState {
            suggestion,
            send_by,
            state,
            referral_ids,
            sources,
        });
    }
    Ok(out)
}

/// Checks a written reason: trimmed, long enough to mean something.
pub fn reason(field: &str, text: Option<&str>) -> Result<SecretText, CaseError> {
    let text = text.map(str::trim).unwrap_or_default();
    let chars = text.chars().count();
    if chars < MIN_REASON_CHARS {
        return Err(CaseError::Invalid(vec![FieldError::new(
            field,
            format!("is required: write at least {MIN_REASON_CHARS} characters"),
        )]));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(CaseError::Invalid(vec![FieldError::new(
            field,
            format!("is longer than {MAX_TEXT_CHARS} characters"),
        )]));
    }
    Ok(SecretText::new(text.to_owned()))
}

/// Records that the focal point will not make a suggested referral. A
/// required one needs a written reason (sealed in the case, audited).
pub fn skip(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    agency_type: AgencyType,
    why: Option<&str>,
) -> Result<(), CaseError> {
    if !by.allows_case(Action::ReferralSend, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = case_table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        let facts = facts(conn, &case)?;
        let suggestion = context
            .protocol
            .suggest(&facts)
            .into_iter()
            .find(|s| s.agency_type == agency_type)
            .ok_or_else(|| {
                CaseError::Invalid(vec![FieldError::new(
                    "agency_type",
                    "is not among this case's suggestions",
                )])
            })?;
        let why = match (suggestion.need, why) {
            (Need::Required, why) => Some(reason("reason", why)?),
            (Need::Recommended, Some(why)) if !why.trim().is_empty() => {
                Some(reason("reason", Some(why))?)
            }
            (Need::Recommended, _) => None,
        };
        if table::skips_of(conn, case_id)?
            .iter()
            .any(|s| s.agency_type == agency_type.as_str())
        {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "agency_type",
                "was already skipped",
            )]));
        }
        let now = context.clock.now_naive();
        let reason_enc = match &why {
            Some(text) => {
                let dek = case_key(conn, context, case_id)?;
                Some(dek.seal(
                    &binding(
                        "suggestion_skips",
                        "reason_enc",
                        agency_type.as_str(),
                        case_id,
                    ),
                    text.expose().as_bytes(),
                )?)
            }
            None => None,
        };
        table::insert_skip(
            conn,
            &SkipRow {
                case_id: case_id.to_owned(),
                agency_type: agency_type.as_str().to_owned(),
                need: suggestion.need.as_str().to_owned(),
                reason_enc,
                skipped_by: author.clone(),
                skipped_at: now,
            },
        )?;
        if let Some(deadline) = table::open_deadline(conn, case_id, "send", agency_type.as_str())? {
            table::meet_deadline(conn, &deadline.id, "skipped", now)?;
        }
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: format!("referral_skipped:{agency_type}"),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            why.as_ref(),
        )?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::SUGGESTION_SKIPPED, case_id)
                .detail("agency_type", agency_type.as_str())
                .detail("need", suggestion.need.as_str()),
        )?;
        Ok(())
    })
}

/// What the focal point sends.
pub struct Outgoing {
    pub agency_id: String,
    /// A message to the agency (sealed; the agency always sees it).
    pub note: Option<SecretText>,
    /// Why a service referral goes without consent.
    pub override_reason: Option<String>,
}

/// Sends a referral. A statutory report goes without consent and records
/// its basis; a service referral needs consent for services and for
/// disclosure to the agency type, or an override: a written reason and
/// `may_override` (the policy's `referral.override_consent`).
pub fn send(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    may_override: bool,
    case_id: &str,
    outgoing: &Outgoing,
) -> Result<ReferralRow, CaseError> {
    if !by.allows_case(Action::ReferralSend, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let case = case_table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        if case.status == "closed" {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "case",
                "is closed; reopen it to send a referral",
            )]));
        }
        let agency = organisations::find(conn, &outgoing.agency_id)?
            .filter(|o| o.kind == "agency")
            .ok_or_else(|| {
                CaseError::Invalid(vec![FieldError::new("agency_id", "is not an agency")])
            })?;
        let agency_type = agency
            .agency_type
            .as_deref()
            .and_then(|t| AgencyType::parse(t).ok())
            .unwrap_or(AgencyType::Other);
        if table::of_case(conn, case_id)?
            .iter()
            .any(|r| r.agency_id == agency.id && OPEN_STATUSES.contains(&r.status.as_str()))
        {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "agency_id",
                "already has an open referral for this case",
            )]));
        }
        let facts = facts(conn, &case)?;
        let suggestion = context
            .protocol
            .suggest(&facts)
            .into_iter()
            .find(|s| s.agency_type == agency_type);
        let (kind, need, profile, rules, acknowledge_within) = match &suggestion {
            Some(s) => (
                s.kind,
                s.need.as_str(),
                s.profile.clone(),
                s.rules.join(","),
                s.acknowledge_within,
            ),
            None => (
                ReferralKind::ServiceReferral,
                "added",
                context.protocol.default_profile(agency_type).to_owned(),
                String::new(),
                ADDED_ACKNOWLEDGE,
            ),
        };
        let mut override_reason = None;
        let legal_basis = if kind == ReferralKind::StatutoryReport {
            "statutory_report"
        } else if consent_covers(conn, case_id, agency_type)? {
            "consent"
        } else if outgoing.override_reason.is_some() {
            if !may_override {
                return Err(CaseError::Invalid(vec![FieldError::new(
                    "override_reason",
                    "cannot be used here: your role may not override consent for this pupil (an adult pupil's decision stands)",
                )]));
            }
            override_reason = Some(reason(
                "override_reason",
                outgoing.override_reason.as_deref(),
            )?);
            "override"
        } else {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "consent",
                format!(
                    "this service referral needs the pupil's consent to services and to disclosure to `{agency_type}`; record the consent, or give `override_reason` if you may override it"
                ),
            )]));
        };
        if let Some(note) = &outgoing.note
            && note.expose().chars().count() > MAX_TEXT_CHARS
        {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "note",
                format!("is longer than {MAX_TEXT_CHARS} characters"),
            )]));
        }
        let now = context.clock.now_naive();
        let id = uuid::Uuid::now_v7().to_string();
        let dek = case_key(conn, context, case_id)?;
        let seal = |column: &str, text: Option<&SecretText>| {
            text.map(|t| {
                dek.seal(
                    &binding("referrals", column, &id, case_id),
                    t.expose().as_bytes(),
                )
            })
            .transpose()
        };
        let acknowledge_by = acknowledge_within
            .deadline(utc(now), context.calendar)
            .naive_utc();
        let row = ReferralRow {
            id: id.clone(),
            case_id: case_id.to_owned(),
            school_id: case.school_id.clone(),
            agency_id: agency.id.clone(),
            agency_type: agency_type.as_str().to_owned(),
            kind: kind.as_str().to_owned(),
            need: need.to_owned(),
            profile,
            rules,
            legal_basis: legal_basis.to_owned(),
            status: "sent".to_owned(),
            note_enc: seal("note_enc", outgoing.note.as_ref())?,
            override_reason_enc: seal("override_reason_enc", override_reason.as_ref())?,
            acknowledge_by,
            version: 1,
            sent_by: author.clone(),
            sent_at: now,
            acknowledged_at: None,
            answered_at: None,
            closed_at: None,
            updated_at: now,
        };
        table::insert(conn, &row)?;
        table::delete_skip(conn, case_id, agency_type.as_str())?;
        clocks::on_sent(conn, context, &row, suggestion.as_ref())?;
        chronology_note(
            conn,
            context,
            case_id,
            ChronologyRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case_id.to_owned(),
                kind: format!("referral_sent:{agency_type}:{legal_basis}"),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: author.clone(),
                created_at: now,
            },
            override_reason.as_ref(),
        )?;
        case_table::touch(conn, case_id, now)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::REFERRAL_SENT, case_id)
                .detail("referral_id", id.clone())
                .detail("agency_id", agency.id.clone())
                .detail("kind", kind.as_str())
                .detail("legal_basis", legal_basis),
        )?;
        notices::referral_sent(conn, context, &row)?;
        Ok(row)
    })
}

/// Whether the newest consent allows services and disclosure to this agency type.
fn consent_covers(
    conn: &mut DbConnection,
    case_id: &str,
    agency_type: AgencyType,
) -> Result<bool, CaseError> {
    Ok(
        case_table::current_consent(conn, case_id)?.is_some_and(|c| {
            c.services
                && c.disclosure
                && c.disclosure_to
                    .split(',')
                    .any(|t| t == agency_type.as_str())
        }),
    )
}

/// Where a referral may go from `status`, on the agency's side.
pub fn next_statuses(status: &str) -> &'static [&'static str] {
    match status {
        "sent" => &["acknowledged", "accepted", "declined"],
        "acknowledged" => &["accepted", "declined"],
        "accepted" => &["in_service", "completed"],
        "in_service" => &["completed"],
        _ => &[],
    }
}

/// An agency's answer.
pub struct Answer {
    pub to: String,
    pub expected_version: i32,
    /// The reason (declined), the feedback (completed) or a note; goes to
    /// the school's chronology, sealed.
    pub text: Option<String>,
    /// A decline's coded reason (taxonomy `decline_reason`): optional for
    /// an agency officer, required of a partner through a link. Plaintext
    /// and coded, so the school's chronology and the audit log can name it.
    pub reason: Option<String>,
}

/// The agency moves a referral on. Declining needs a reason, completing
/// needs feedback; both go back to the school's chronology.
pub fn answer(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
    answer: &Answer,
) -> Result<ReferralRow, CaseError> {
    if !by.allows_referral(Action::ReferralRespond, referral_id) {
        return Err(CaseError::NotFound);
    }
    let coded = match (answer.to.as_str(), answer.reason.as_deref()) {
        ("declined", Some(raw)) => Some(
            context
                .taxonomy
                .code("decline_reason", raw)
                .map_err(|why| CaseError::Invalid(vec![FieldError::new("reason", why)]))?,
        ),
        _ => None,
    };
    let text = match answer.to.as_str() {
        "declined" => Some(reason("text", answer.text.as_deref())?),
        "completed" => Some(reason("text", answer.text.as_deref())?),
        _ => optional_text(answer.text.as_deref())?,
    };
    write_transaction(conn, |conn| {
        let row = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        move_referral(
            conn,
            context,
            by,
            &row,
            &answer.to,
            answer.expected_version,
            Said {
                text: text.as_ref(),
                reason: coded.as_deref(),
            },
        )
    })
}

fn optional_text(text: Option<&str>) -> Result<Option<SecretText>, CaseError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > MAX_TEXT_CHARS => {
            Err(CaseError::Invalid(vec![FieldError::new(
                "text",
                format!("is longer than {MAX_TEXT_CHARS} characters"),
            )]))
        }
        Some(t) => Ok(Some(SecretText::new(t.to_owned()))),
        None => Ok(None),
    }
}

/// What comes with a move: the sealed text (reason, feedback, note) and a
/// decline's coded reason.
#[derive(Clone, Copy, Default)]
struct Said<'a> {
    text: Option<&'a SecretText>,
    reason: Option<&'a str>,
}

/// The shared step of every move: version check, allowed target, clocks,
/// chronology, audit, notices.
fn move_referral(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    row: &ReferralRow,
    to: &str,
    expected_version: i32,
    said: Said<'_>,
) -> Result<ReferralRow, CaseError> {
    let (text, coded_reason) = (said.text, said.reason);
    if row.version != expected_version {
        return Err(CaseError::Stale {
            current: row.version,
        });
    }
    let allowed: &[&str] = if to == "withdrawn" {
        if OPEN_STATUSES.contains(&row.status.as_str()) {
            &["withdrawn"]
        } else {
            &[]
        }
    } else {
        next_statuses(&row.status)
    };
    if !allowed.contains(&to) {
        return Err(CaseError::InvalidTransition {
            from: row.status.clone(),
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        });
    }
    let now = context.clock.now_naive();
    let acknowledged = matches!(to, "acknowledged" | "accepted" | "declined");
    let answered = matches!(to, "accepted" | "declined");
    let closed = matches!(to, "declined" | "completed" | "withdrawn");
    if table::set_status(
        conn,
        &row.id,
        row.version,
        to,
        now,
        acknowledged,
        answered,
        closed,
    )? == 0
    {
        let current = table::find(conn, &row.id)?.map_or(row.version, |r| r.version);
        return Err(CaseError::Stale { current });
    }
    if acknowledged || closed {
        clocks::on_acknowledged(conn, &row.id, &row.case_id, to, now)?;
    }
    if to == "withdrawn" {
        table::revoke_links(conn, &row.id, None, now)?;
    }
    chronology_note(
        conn,
        context,
        &row.case_id,
        ChronologyRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: row.case_id.clone(),
            kind: match coded_reason {
                Some(code) => format!("referral:{}:{to}:{code}", row.agency_type),
                None => format!("referral:{}:{to}", row.agency_type),
            },
            from_status: Some(row.status.clone()),
            to_status: Some(to.to_owned()),
            note_enc: None,
            author_id: by.author(),
            created_at: now,
        },
        text,
    )?;
    case_table::touch(conn, &row.case_id, now)?;
    let event = case_event(by, action::REFERRAL_UPDATED, row.case_id.clone())
        .detail("referral_id", row.id.clone())
        .detail("from", row.status.clone())
        .detail("to", to);
    let event = match coded_reason {
        Some(code) => event.detail("reason", code.to_owned()),
        None => event,
    };
    context.auditor.append(conn, context.clock, &event)?;
    let updated = table::find(conn, &row.id)?.ok_or(CaseError::NotFound)?;
    if to == "withdrawn" {
        notices::referral_withdrawn(conn, context, &updated)?;
    } else {
        notices::referral_answered(conn, context, &updated, &format!("v{}", updated.version))?;
    }
    Ok(updated)
}

/// A service note from the agency: into the school's chronology, sealed.
pub fn service_note(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
    note: &str,
) -> Result<(), CaseError> {
    if !by.allows_referral(Action::ReferralRespond, referral_id) {
        return Err(CaseError::NotFound);
    }
    let note = optional_text(Some(note))?
        .ok_or_else(|| CaseError::Invalid(vec![FieldError::new("note", "must not be empty")]))?;
    write_transaction(conn, |conn| {
        let row = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        if !matches!(
            row.status.as_str(),
            "accepted" | "in_service" | "acknowledged"
        ) {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "note",
                format!("cannot be added to a {} referral", row.status),
            )]));
        }
        let now = context.clock.now_naive();
        let entry = uuid::Uuid::now_v7().to_string();
        chronology_note(
            conn,
            context,
            &row.case_id,
            ChronologyRow {
                id: entry.clone(),
                case_id: row.case_id.clone(),
                kind: format!("referral_note:{}", row.agency_type),
                from_status: None,
                to_status: None,
                note_enc: None,
                author_id: by.author(),
                created_at: now,
            },
            Some(&note),
        )?;
        case_table::touch(conn, &row.case_id, now)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::REFERRAL_UPDATED, row.case_id.clone())
                .detail("referral_id", row.id.clone())
                .detail("chronology_entry", entry.clone()),
        )?;
        notices::referral_answered(conn, context, &row, &format!("note-{entry}"))?;
        Ok(())
    })
}

/// The sender withdraws a referral (with a reason); its links stop working.
pub fn withdraw(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
    expected_version: i32,
    why: Option<&str>,
) -> Result<ReferralRow, CaseError> {
    if !by.allows_referral(Action::ReferralManage, referral_id) {
        return Err(CaseError::NotFound);
    }
    let why = reason("reason", why)?;
    write_transaction(conn, |conn| {
        let row = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        move_referral(
            conn,
            context,
            by,
            &row,
            "withdrawn",
            expected_version,
            Said {
                text: Some(&why),
                reason: None,
            },
        )
    })
}
