//! Consent (REFERENCE §2; Primero's data-confidentiality form): recorded as
//! history, the newest in force. Referrals (next issue) check it: services
//! need `services`, sharing needs `disclosure` to that agency type — or a
//! statutory basis.

use serde::Deserialize;

use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::{DataKey, SecretText};
use crate::db::cases::{self as table, ConsentRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::org::AgencyType;
use crate::domain::taxonomy::Taxonomy;

/// The body of `POST /api/v1/cases/{id}/consent`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    pub given_by: String,
    pub services: bool,
    pub reporting: bool,
    pub disclosure: bool,
    #[serde(default)]
    pub disclosure_to: Vec<String>,
    pub legal_basis: String,
    #[serde(default)]
    pub withheld: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub given_by: String,
    pub services: bool,
    pub reporting: bool,
    pub disclosure: bool,
    pub disclosure_to: Vec<AgencyType>,
    pub legal_basis: String,
    pub withheld: Option<SecretText>,
}

impl ConsentInput {
    pub fn parse(raw: &RawConsent, taxonomy: &Taxonomy) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let given_by = taxonomy
            .code("consent_giver", &raw.given_by)
            .map_err(|e| problems.push(FieldError::new("given_by", e)))
            .ok();
        let legal_basis = taxonomy
            .code("legal_basis", &raw.legal_basis)
            .map_err(|e| problems.push(FieldError::new("legal_basis", e)))
            .ok();
        let mut disclosure_to = Vec::new();
        for (i, code) in raw.disclosure_to.iter().enumerate() {
            match AgencyType::parse(code) {
                Ok(t) if !disclosure_to.contains(&t) => disclosure_to.push(t),
                Ok(_) => {}
                Err(_) => problems.push(FieldError::new(
                    &format!("disclosure_to[{i}]"),
                    format!(
                        "is not an agency type (expected one of: {})",
                        AgencyType::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        if !raw.disclosure && !raw.disclosure_to.is_empty() {
            problems.push(FieldError::new(
                "disclosure_to",
                "must be empty when `disclosure` is false",
            ));
        }
        if given_by.as_deref() == Some("none")
            && legal_basis.as_deref() == Some("consent")
            && (raw.services || raw.disclosure || raw.reporting)
        {
            problems.push(FieldError::new(
                "legal_basis",
                "cannot be `consent` when nobody gave consent; record what was agreed or the statutory basis",
            ));
        }
        let withheld = match raw
            .withheld
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            Some(text) if text.chars().count() > 2000 => {
                problems.push(FieldError::new(
                    "withheld",
                    "is longer than 2000 characters",
                ));
                None
            }
            Some(text) => Some(SecretText::new(text.to_owned())),
            None => None,
        };
        match (given_by, legal_basis) {
            (Some(given_by), Some(legal_basis)) if problems.is_empty() => Ok(Self {
                given_by,
                services: raw.services,
                reporting: raw.reporting,
                disclosure: raw.disclosure,
                disclosure_to,
                legal_basis,
                withheld,
            }),
            _ => Err(problems),
        }
    }
}

/// Records a new consent for the case (the old stays in the history).
pub fn record(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    input: &ConsentInput,
) -> Result<ConsentRow, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let dek = case_key(conn, context, case_id)?;
        let id = uuid::Uuid::now_v7().to_string();
        let withheld_enc = match &input.withheld {
            Some(text) => Some(dek.seal(
                &binding("consents", "withheld_enc", &id, case_id),
                text.expose().as_bytes(),
            )?),
            None => None,
        };
        let row = ConsentRow {
            id: id.clone(),
            case_id: case_id.to_owned(),
            given_by: input.given_by.clone(),
            services: input.services,
            reporting: input.reporting,
            disclosure: input.disclosure,
            disclosure_to: input
                .disclosure_to
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            legal_basis: input.legal_basis.clone(),
            withheld_enc,
            recorded_by: author.clone(),
            recorded_at: context.clock.now_naive(),
        };
        table::insert_consent(conn, &row)?;
        table::touch(conn, case_id, row.recorded_at)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CONSENT_RECORDED, case_id)
                .detail("consent_id", id)
                .detail("services", input.services.to_string())
                .detail("disclosure", input.disclosure.to_string())
                .detail("legal_basis", input.legal_basis.clone()),
        )?;
        Ok(row)
    })
}

/// Opens the withheld-information field of a consent.
pub fn open_withheld(
    dek: &DataKey,
    case_id: &str,
    row: &ConsentRow,
) -> Result<Option<SecretText>, CaseError> {
    row.withheld_enc
        .as_deref()
        .map(|stored| {
            dek.open_text(
                &binding("consents", "withheld_enc", &row.id, case_id),
                stored,
            )
        })
        .transpose()
        .map_err(CaseError::from)
}
