//! Alleged perpetrators: relation, sex and age group coded (for statistics
//! and the protocol's rules); identity and description sealed.

use serde::Deserialize;

use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::envelope::{DataKey, SecretText};
use crate::db::cases::{self as table, PerpetratorRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::taxonomy::Taxonomy;

/// The body of `POST /api/v1/cases/{id}/perpetrators`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerpetrator {
    #[serde(default)]
    pub incident_id: Option<String>,
    pub relation: String,
    pub sex: String,
    pub age_group: String,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PerpetratorInput {
    pub incident_id: Option<String>,
    pub relation: String,
    pub sex: String,
    pub age_group: String,
    pub identity: Option<SecretText>,
    pub description: Option<SecretText>,
}

fn sealed_text(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: Option<&String>,
    max: usize,
) -> Option<SecretText> {
    let text = value.map(|v| v.trim()).filter(|v| !v.is_empty())?;
    if text.chars().count() > max {
        problems.push(FieldError::new(
            field,
            format!("is longer than {max} characters"),
        ));
        return None;
    }
    Some(SecretText::new(text.to_owned()))
}

impl PerpetratorInput {
    pub fn parse(raw: &RawPerpetrator, taxonomy: &Taxonomy) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut code = |field: &str, category: &str, value: &str| {
            taxonomy
                .code(category, value)
                .map_err(|e| problems.push(FieldError::new(field, e)))
                .ok()
        };
        let relation = code("relation", "perpetrator_relation", &raw.relation);
        let sex = code("sex", "sex", &raw.sex);
        let age_group = code("age_group", "perpetrator_age_group", &raw.age_group);
        let identity = sealed_text(&mut problems, "identity", raw.identity.as_ref(), 500);
        let description = sealed_text(&mut problems, "description", raw.description.as_ref(), 5000);
        match (relation, sex, age_group) {
            (Some(relation), Some(sex), Some(age_group)) if problems.is_empty() => Ok(Self {
                incident_id: raw.incident_id.clone(),
                relation,
                sex,
                age_group,
                identity,
                description,
            }),
            _ => Err(problems),
        }
    }
}

/// Records an alleged perpetrator of the case (optionally of one incident).
pub fn record(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    input: &PerpetratorInput,
) -> Result<String, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        if let Some(incident) = &input.incident_id
            && !table::incident_of(conn, case_id, incident)?
        {
            return Err(CaseError::Invalid(vec![FieldError::new(
                "incident_id",
                "is not an incident of this case",
            )]));
        }
        let dek = case_key(conn, context, case_id)?;
        let id = uuid::Uuid::now_v7().to_string();
        let seal = |column: &str, text: Option<&SecretText>| {
            text.map(|t| {
                dek.seal(
                    &binding("perpetrators", column, &id, case_id),
                    t.expose().as_bytes(),
                )
            })
            .transpose()
        };
        let now = context.clock.now_naive();
        table::insert_perpetrator(
            conn,
            &PerpetratorRow {
                id: id.clone(),
                case_id: case_id.to_owned(),
                incident_id: input.incident_id.clone(),
                relation: input.relation.clone(),
                sex: input.sex.clone(),
                age_group: input.age_group.clone(),
                identity_enc: seal("identity_enc", input.identity.as_ref())?,
                description_enc: seal("description_enc", input.description.as_ref())?,
                created_by: author.clone(),
                created_at: now,
            },
        )?;
        table::touch(conn, case_id, now)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_UPDATED, case_id).detail("perpetrator_added", id.clone()),
        )?;
        Ok(id)
    })
}

/// A perpetrator with the sealed fields opened.
#[derive(Debug, Clone)]
pub struct PerpetratorView {
    pub row: PerpetratorRow,
    pub identity: Option<SecretText>,
    pub description: Option<SecretText>,
}

pub fn open_all(
    conn: &mut DbConnection,
    dek: &DataKey,
    case_id: &str,
) -> Result<Vec<PerpetratorView>, CaseError> {
    table::perpetrators_of(conn, case_id)?
        .into_iter()
        .map(|row| {
            let open = |column: &str, stored: Option<&Vec<u8>>| {
                stored
                    .map(|s| dek.open_text(&binding("perpetrators", column, &row.id, case_id), s))
                    .transpose()
            };
            Ok(PerpetratorView {
                identity: open("identity_enc", row.identity_enc.as_ref())?,
                description: open("description_enc", row.description_enc.as_ref())?,
                row: row.clone(),
            })
        })
        .collect()
}
