//! What an agency sees of a case: the referral and the fields of its
//! profile, nothing else. A field outside the profile is never decrypted —
//! its sealed column is not even opened — and every view is audited with
//! the fields it showed.

use serde_json::{Map, Value, json};

use super::utc;
use crate::audit::{AuditEvent, Outcome, action};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::{CaseContext, CaseError, binding, case_key};
use crate::db::DbConnection;
use crate::db::cases as case_table;
use crate::db::organisations;
use crate::db::referrals::{self as table, ReferralRow};

/// How the view was reached, for the audit entry.
pub enum Via<'a> {
    Account(&'a Capability),
    PartnerLink(&'a str),
}

/// The referral as its agency sees it. The caller holds `referral.read`.
pub fn read(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    referral_id: &str,
) -> Result<Value, CaseError> {
    if !by.allows_referral(Action::ReferralRead, referral_id) {
        return Err(CaseError::NotFound);
    }
    crate::db::write_transaction(conn, |conn| {
        let referral = table::find(conn, referral_id)?.ok_or(CaseError::NotFound)?;
        trimmed(conn, context, &referral, &Via::Account(by))
    })
}

/// The referral's summary without any case field (the inbox, the sender's list).
pub fn summary(referral: &ReferralRow) -> Value {
    json!({
        "id": referral.id,
        "case_id": referral.case_id,
        "agency_id": referral.agency_id,
        "agency_type": referral.agency_type,
        "kind": referral.kind,
        "need": referral.need,
        "legal_basis": referral.legal_basis,
        "profile": referral.profile,
        "status": referral.status,
        "version": referral.version,
        "sent_at": utc(referral.sent_at).to_rfc3339(),
        "acknowledge_by": utc(referral.acknowledge_by).to_rfc3339(),
        "acknowledged_at": referral.acknowledged_at.map(|t| utc(t).to_rfc3339()),
        "answered_at": referral.answered_at.map(|t| utc(t).to_rfc3339()),
        "closed_at": referral.closed_at.map(|t| utc(t).to_rfc3339()),
    })
}

/// Opens the profile's fields of the referral's case, inside the caller's
/// transaction, and audits the view.
pub(crate) fn trimmed(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
    via: &Via<'_>,
) -> Result<Value, CaseError> {
    if let Some(reason) = withheld(context, referral) {
        audit_view(conn, context, referral, "", via)?;
        return Ok(withheld_view(referral, reason));
    }
    let profile = context
        .protocol
        .profile(&referral.profile)
        .or_else(|| context.protocol.profile("minimal"))
        .ok_or(CaseError::NotFound)?;
    let case_id = referral.case_id.as_str();
    let case = case_table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
    if case.content_destroyed_at.is_some() {
        return Err(CaseError::ContentDestroyed);
    }
    let dek = case_key(conn, context, case_id)?;
    let open = |table: &str, column: &str, row_id: &str, stored: Option<&[u8]>| {
        stored
            .map(|s| {
                dek.open_text(&binding(table, column, row_id, case_id), s)
                    .map(|t| Value::String(t.expose().to_owned()))
            })
            .transpose()
            .map(|v| v.unwrap_or(Value::Null))
    };
    let allows = |field: &str| profile.allows(field);

    let mut pupil = Map::new();
    let stored = case_table::pupil(conn, case_id)?.ok_or(CaseError::NotFound)?;
    for (field, column, value) in [
        ("name", "name_enc", Some(stored.name_enc.as_slice())),
        (
            "date_of_birth",
            "date_of_birth_enc",
            Some(stored.date_of_birth_enc.as_slice()),
        ),
        ("class", "class_enc", stored.class_enc.as_deref()),
        ("guardian", "guardian_enc", stored.guardian_enc.as_deref()),
        ("contact", "contact_enc", stored.contact_enc.as_deref()),
    ] {
        if allows(&format!("pupil.{field}")) {
            pupil.insert(field.into(), open("pupils", column, case_id, value)?);
        }
    }
    if allows("pupil.sex") {
        pupil.insert("sex".into(), json!(case.survivor_sex));
    }
    if allows("pupil.age_band") {
        pupil.insert("age_band".into(), json!(case.age_band));
    }
    if allows("pupil.disability") {
        pupil.insert("disability".into(), json!(case.disability));
    }

    let mut incidents = Vec::new();
    for row in case_table::incidents_of(conn, case_id)? {
        let mut incident = Map::new();
        if allows("incident.type") {
            incident.insert("incident_type".into(), json!(row.incident_type));
        }
        if allows("incident.csa_subtype") {
            incident.insert("csa_subtype".into(), json!(row.csa_subtype));
        }
        if allows("incident.contexts") {
            let contexts: Vec<&str> = row.contexts.split(',').filter(|c| !c.is_empty()).collect();
            incident.insert("contexts".into(), json!(contexts));
        }
        if allows("incident.location_type") {
            incident.insert("location_type".into(), json!(row.location_type));
        }
        if allows("incident.date") {
            incident.insert(
                "date".into(),
                open(
                    "incidents",
                    "incident_date_enc",
                    &row.id,
                    Some(&row.incident_date_enc),
                )?,
            );
        }
        if allows("incident.narrative") {
            incident.insert(
                "narrative".into(),
                open(
                    "incidents",
                    "narrative_enc",
                    &row.id,
                    Some(&row.narrative_enc),
                )?,
            );
        }
        if !incident.is_empty() {
            incidents.push(Value::Object(incident));
        }
    }

    let mut perpetrators = Vec::new();
    for row in case_table::perpetrators_of(conn, case_id)? {
        let mut perpetrator = Map::new();
        if allows("perpetrator.relation") {
            perpetrator.insert("relation".into(), json!(row.relation));
        }
        if allows("perpetrator.identity") {
            perpetrator.insert(
                "identity".into(),
                open(
                    "perpetrators",
                    "identity_enc",
                    &row.id,
                    row.identity_enc.as_deref(),
                )?,
            );
        }
        if allows("perpetrator.description") {
            perpetrator.insert(
                "description".into(),
                open(
                    "perpetrators",
                    "description_enc",
                    &row.id,
                    row.description_enc.as_deref(),
                )?,
            );
        }
        if !perpetrator.is_empty() {
            perpetrators.push(Value::Object(perpetrator));
        }
    }

    let mut view = summary(referral);
    if let Value::Object(map) = &mut view {
        map.insert("fields".into(), json!(profile.fields));
        map.insert(
            "note".into(),
            open(
                "referrals",
                "note_enc",
                &referral.id,
                referral.note_enc.as_deref(),
            )?,
        );
        map.insert("pupil".into(), Value::Object(pupil));
        map.insert("incidents".into(), Value::Array(incidents));
        map.insert("perpetrators".into(), Value::Array(perpetrators));
        if allows("school.name") {
            let school = organisations::find(conn, &case.school_id)?.map(|o| o.name);
            map.insert("school".into(), json!({ "name": school }));
        }
        if allows("case.risk_level") {
            map.insert("risk_level".into(), json!(case.risk_level));
        }
    }
    let fields = profile.fields.iter().cloned().collect::<Vec<_>>().join(",");
    audit_view(conn, context, referral, &fields, via)?;
    Ok(view)
}

/// Why the case's fields are no longer shown to the agency, if they are
/// not: the school withdrew the referral, or it was completed longer ago
/// than the protocol's `[after_close] completed_days`.
fn withheld(context: &CaseContext<'_>, referral: &ReferralRow) -> Option<&'static str> {
    match referral.status.as_str() {
        "withdrawn" => Some("withdrawn"),
        "completed" => {
            let kept = context.protocol.after_close.completed_for();
            let closed = referral.closed_at.unwrap_or(referral.updated_at);
            (closed + kept <= context.clock.now_naive()).then_some("retention_passed")
        }
        _ => None,
    }
}

/// A finished referral as its agency still sees it: that it existed, its
/// status and the times of the agency's answers — no case field, nothing
/// decrypted (the case's key is not even opened).
fn withheld_view(referral: &ReferralRow, reason: &'static str) -> Value {
    let mut view = summary(referral);
    if let Value::Object(map) = &mut view {
        map.insert("fields".into(), json!([]));
        map.insert("note".into(), Value::Null);
        map.insert("pupil".into(), json!({}));
        map.insert("incidents".into(), json!([]));
        map.insert("perpetrators".into(), json!([]));
        map.insert("withheld".into(), json!(reason));
    }
    view
}

fn audit_view(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    referral: &ReferralRow,
    fields: &str,
    via: &Via<'_>,
) -> Result<(), CaseError> {
    let event = AuditEvent::new(action::REFERRAL_READ, Outcome::Success)
        .target("case", referral.case_id.clone())
        .detail("referral_id", referral.id.clone())
        .detail("profile", referral.profile.clone())
        .detail("fields", fields.to_owned());
    let event = match via {
        Via::Account(by) => event.actor(by.actor()).request(by.request()).detail(
            "via",
            // A partner's session acts as its link, not as an account.
            if by.actor().is_some_and(|a| a.role == "partner_link") {
                "partner_session"
            } else {
                "account"
            },
        ),
        Via::PartnerLink(link_id) => event
            .detail("via", "partner_link")
            .detail("link_id", (*link_id).to_owned()),
    };
    context.auditor.append(conn, context.clock, &event)?;
    Ok(())
}
