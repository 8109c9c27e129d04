//! Who is told what when a referral moves or a deadline escalates. Each
//! notice goes into the outbox in the caller's transaction, so it exists
//! exactly when the event committed. A notice carries only a link, a
//! deadline and an opaque reference — never a name, a narrative, a class,
//! a school or an incident type.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::cases::{CaseContext, CaseError};
use crate::db::DbConnection;
use crate::db::referrals::{self as table, DeadlineRow, EscalationRow, ReferralRow};
use crate::notify::{self, Language, Message, Template};

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub idempotency_key: String,
    pub recipient: String,
    pub language: String,
    pub template: Template,
    pub params: BTreeMap<String, String>,
}

use crate::domain::case_ref::case_reference;

fn link(context: &CaseContext<'_>, path: &str) -> String {
    format!("{}{}", context.public_url.trim_end_matches('/'), path)
}

pub(crate) fn reference(id: &str) -> String {
    // The last 8 hex digits of a UUIDv7 are random: a short, opaque handle.
    id.chars()
        .rev()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

fn at(time: NaiveDateTime) -> String {
    time.and_utc().to_rfc3339()
}

/// Sends `template` to every active user with `role` in `org_id`.
fn to_role(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    org_id: &str,
    role: &str,
    key: &str,
    template: Template,
    params: &BTreeMap<String, String>,
) -> Result<(), CaseError> {
    for (user_id, email, language) in table::recipients(conn, org_id, role)? {
        deliver(
            conn,
            context,
            &Notice {
                idempotency_key: format!("{key}:{user_id}"),
                recipient: email,
                language,
                template,
                params: params.clone(),
            },
        )?;
    }
    Ok(())
}

/// The agency's officers: a referral awaits you.
pub fn referral_sent(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/referrals/{}", referral.id)),
        ),
        ("deadline".to_owned(), at(referral.acknowledge_by)),
        ("reference".to_owned(), case_reference(&referral.case_id)),
    ]);
    to_role(
        conn,
        context,
        &referral.agency_id,
        "agency_officer",
        &format!("referral:{}:sent", referral.id),
        Template::ReferralReceived,
        &params,
    )
}

/// The school's focal points: an agency answered (`event` tells answers apart).
pub fn referral_answered(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
    event: &str,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/cases/{}", referral.case_id)),
        ),
        ("reference".to_owned(), case_reference(&referral.case_id)),
    ]);
    to_role(
        conn,
        context,
        &referral.school_id,
        "focal_point",
        &format!("referral:{}:{event}", referral.id),
        Template::ReferralUpdate,
        &params,
    )
}

/// The agency's officers: the school withdrew a referral.
pub fn referral_withdrawn(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/referrals/{}", referral.id)),
        ),
        ("reference".to_owned(), case_reference(&referral.case_id)),
    ]);
    to_role(
        conn,
        context,
        &referral.agency_id,
        "agency_officer",
        &format!("referral:{}:withdrawn", referral.id),
        Template::ReferralUpdate,
        &params,
    )
}

/// The area's district officers: a deadline (`due_at`) was missed.
pub fn escalation_raised(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    escalation: &EscalationRow,
    due_at: NaiveDateTime,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        ("deadline".to_owned(), at(due_at)),
        (
            "link".to_owned(),
            link(context, &format!("/escalations/{}", escalation.id)),
        ),
        ("reference".to_owned(), case_reference(&escalation.case_id)),
    ]);
    to_role(
        conn,
        context,
        &escalation.area_id,
        "district_officer",
        &format!("escalation:{}", escalation.id),
        Template::EscalationRaised,
        &params,
    )
}

/// The people responsible for a running clock (`org_id`'s users with
/// `role`): it falls due soon. Once per clock and reminder `point`.
/// Returns how many people it went to.
pub fn deadline_reminder(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    deadline: &DeadlineRow,
    point: &str,
    (org_id, role, path): (&str, &str, &str),
) -> Result<usize, CaseError> {
    let params = BTreeMap::from([
        ("deadline".to_owned(), at(deadline.due_at)),
        ("link".to_owned(), link(context, path)),
        ("reference".to_owned(), case_reference(&deadline.case_id)),
    ]);
    let count = table::recipients(conn, org_id, role)?.len();
    to_role(
        conn,
        context,
        org_id,
        role,
        &format!("reminder:{}:{point}", deadline.id),
        Template::DeadlineReminder,
        &params,
    )?;
    Ok(count)
}

/// The school's focal points and the auditors of the nearest area above
/// it that has any: a district officer opened a case by break-glass until
/// `expires_at`. No reason and no case content: a link to where they read
/// it (the case page for the focal points, the review page for auditors).
pub fn break_glass_opened(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    grant_id: &str,
    case_id: &str,
    school_id: &str,
    expires_at: NaiveDateTime,
) -> Result<(), CaseError> {
    let params = |path: &str| {
        BTreeMap::from([
            ("link".to_owned(), link(context, path)),
            ("valid_until".to_owned(), at(expires_at)),
            ("reference".to_owned(), reference(grant_id)),
        ])
    };
    let key = format!("break_glass:{grant_id}");
    to_role(
        conn,
        context,
        school_id,
        "focal_point",
        &key,
        Template::BreakGlassOpened,
        &params(&format!("/cases/{case_id}#break-glass")),
    )?;
    let chain = crate::authz::OrgChain::load(conn, school_id)?
        .unwrap_or(crate::authz::OrgChain(Vec::new()));
    for area in chain.0.iter().skip(1).filter(|node| node.kind == "area") {
        if !table::recipients(conn, &area.id, "auditor")?.is_empty() {
            return to_role(
                conn,
                context,
                &area.id,
                "auditor",
                &key,
                Template::BreakGlassOpened,
                &params("/audit/break-glass"),
            );
        }
    }
    Ok(())
}

/// A partner without an account: the one-time link (the code goes by
/// another channel).
pub fn partner_link(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    link_id: &str,
    recipient: &str,
    token: &str,
    expires_at: NaiveDateTime,
) -> Result<(), CaseError> {
    deliver(
        conn,
        context,
        &Notice {
            idempotency_key: format!("partner_link:{link_id}"),
            recipient: recipient.to_owned(),
            language: "vi".to_owned(),
            template: Template::PartnerLink,
            params: BTreeMap::from([
                (
                    "link".to_owned(),
                    link(context, &format!("/partner/{token}")),
                ),
                ("valid_until".to_owned(), at(expires_at)),
                ("reference".to_owned(), reference(link_id)),
            ]),
        },
    )
}

/// The school's other focal points: a closure awaits your approval (the one
/// who asked is not told).
pub fn closure_requested(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    school_id: &str,
    case_id: &str,
    request_id: &str,
    requested_by: &str,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/cases/{case_id}")),
        ),
        ("reference".to_owned(), case_reference(case_id)),
    ]);
    for (user_id, email, language) in table::recipients(conn, school_id, "focal_point")? {
        if user_id == requested_by {
            continue;
        }
        deliver(
            conn,
            context,
            &Notice {
                idempotency_key: format!("closure:{request_id}:requested:{user_id}"),
                recipient: email,
                language,
                template: Template::ClosureApproval,
                params: params.clone(),
            },
        )?;
    }
    Ok(())
}

/// The focal point who asked for a closure: another focal point decided on
/// it (content-free: whether it was approved is read on the case page).
pub fn closure_decided(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    school_id: &str,
    case_id: &str,
    request_id: &str,
    requested_by: &str,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/cases/{case_id}")),
        ),
        ("reference".to_owned(), case_reference(case_id)),
    ]);
    // Only while the requester is still an active focal point of the school.
    for (user_id, email, language) in table::recipients(conn, school_id, "focal_point")? {
        if user_id != requested_by {
            continue;
        }
        deliver(
            conn,
            context,
            &Notice {
                idempotency_key: format!("closure:{request_id}:decided"),
                recipient: email,
                language,
                template: Template::ClosureDecided,
                params: params.clone(),
            },
        )?;
    }
    Ok(())
}

/// The receiving school's focal points: a case transfer awaits your answer
/// (content-free: a link to the request, the deadline, a reference).
pub fn transfer_received(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    transfer: &crate::db::transfers::TransferRow,
) -> Result<(), CaseError> {
    let params = BTreeMap::from([
        (
            "link".to_owned(),
            link(context, &format!("/transfers/{}", transfer.id)),
        ),
        ("deadline".to_owned(), at(transfer.answer_by)),
        ("reference".to_owned(), case_reference(&transfer.case_id)),
    ]);
    to_role(
        conn,
        context,
        &transfer.to_school_id,
        "focal_point",
        &format!("transfer:{}:requested", transfer.id),
        Template::TransferReceived,
        &params,
    )
}

/// The sending school's focal points: the receiving school answered a
/// transfer (`event`: accepted or refused). The link goes to the case while
/// it is still the school's, else to the dashboard's list.
pub fn transfer_answered(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    transfer: &crate::db::transfers::TransferRow,
    event: &str,
) -> Result<(), CaseError> {
    let path = if event == "accepted" {
        "/".to_owned()
    } else {
        format!("/cases/{}", transfer.case_id)
    };
    let params = BTreeMap::from([
        ("link".to_owned(), link(context, &path)),
        ("reference".to_owned(), case_reference(&transfer.case_id)),
    ]);
    to_role(
        conn,
        context,
        &transfer.from_school_id,
        "focal_point",
        &format!("transfer:{}:{event}", transfer.id),
        Template::TransferUpdate,
        &params,
    )
}

/// Puts a notice into the outbox.
fn deliver(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    notice: &Notice,
) -> Result<(), CaseError> {
    let invalid =
        |e: notify::InvalidMessage| CaseError::Db(crate::db::DbError::Task(e.to_string()));
    let message = Message::new(
        &notice.idempotency_key,
        &notice.recipient,
        Language::parse(&notice.language).unwrap_or(Language::Vi),
        notice.template,
        notice.params.clone(),
    )
    .map_err(invalid)?;
    notify::enqueue(conn, context.clock, &message)?;
    Ok(())
}
