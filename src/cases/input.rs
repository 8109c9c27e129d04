//! Intake input: raw JSON fields in, valid case data out, every problem
//! named by its field. Values are never echoed in messages.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::crypto::envelope::SecretText;
use crate::crypto::sha256_hex;
use crate::domain::taxonomy::Taxonomy;

/// A problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.field, self.message)
    }
}

/// The request body of `POST /api/v1/cases`, as sent.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    pub risk_level: String,
    pub pupil: RawPupil,
    pub incident: RawIncident,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPupil {
    pub name: String,
    pub date_of_birth: String,
    pub sex: String,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub disability: bool,
    #[serde(default)]
    pub guardian: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncident {
    #[serde(rename = "type")]
    pub incident_type: String,
    #[serde(default)]
    pub csa_subtype: Option<String>,
    #[serde(default)]
    pub contexts: Vec<String>,
    pub date: String,
    pub location_type: String,
    pub perpetrator_relation: String,
    pub narrative: String,
}

#[derive(Debug, Clone)]
pub struct PupilInput {
    pub name: SecretText,
    pub date_of_birth: NaiveDate,
    pub sex: String,
    pub class: Option<SecretText>,
    pub disability: bool,
    pub guardian: Option<SecretText>,
    pub contact: Option<SecretText>,
}

#[derive(Debug, Clone)]
pub struct IncidentInput {
    pub incident_type: String,
    pub csa_subtype: Option<String>,
    pub contexts: Vec<String>,
    pub date: NaiveDate,
    pub location_type: String,
    pub perpetrator_relation: String,
    pub narrative: SecretText,
}

/// A valid intake for one school.
#[derive(Debug, Clone)]
pub struct CaseInput {
    pub school_id: String,
    pub risk_level: String,
    pub pupil: PupilInput,
    pub incident: IncidentInput,
    fingerprint: String,
}

fn text(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max_chars: usize,
) -> Option<SecretText> {
    let cleaned = value.trim();
    if cleaned.is_empty() {
        problems.push(FieldError::new(field, "is empty"));
        return None;
    }
    if cleaned.chars().count() > max_chars {
        problems.push(FieldError::new(
            field,
            format!("is longer than {max_chars} characters"),
        ));
        return None;
    }
    if cleaned
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        problems.push(FieldError::new(field, "contains control characters"));
        return None;
    }
    Some(SecretText::new(cleaned.to_owned()))
}

fn optional_text(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: Option<&String>,
    max_chars: usize,
) -> Option<SecretText> {
    value
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| text(problems, field, v, max_chars))
}

fn date(problems: &mut Vec<FieldError>, field: &str, value: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(date) if date.year_ce().1 >= 1900 => Some(date),
        _ => {
            problems.push(FieldError::new(field, "must be a date written YYYY-MM-DD"));
            None
        }
    }
}

use chrono::Datelike;

fn code(
    problems: &mut Vec<FieldError>,
    taxonomy: &Taxonomy,
    field: &str,
    category: &str,
    value: &str,
) -> Option<String> {
    match taxonomy.code(category, value) {
        Ok(code) => Some(code),
        Err(message) => {
            problems.push(FieldError::new(field, message));
            None
        }
    }
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks an incident's fields, naming them under `prefix`.
fn parse_incident(
    p: &mut Vec<FieldError>,
    taxonomy: &Taxonomy,
    incident: &RawIncident,
    prefix: &str,
) -> Option<IncidentInput> {
    let incident_type = code(
        p,
        taxonomy,
        &field(prefix, "type"),
        "incident_type",
        &incident.incident_type,
    );
    let csa_subtype = incident
        .csa_subtype
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| code(p, taxonomy, &field(prefix, "csa_subtype"), "csa_subtype", s));
    if incident.contexts.len() > 10 {
        p.push(FieldError::new(
            &field(prefix, "contexts"),
            "has more than 10 entries",
        ));
    }
    let mut contexts = Vec::new();
    for (i, context) in incident.contexts.iter().take(10).enumerate() {
        if let Some(c) = code(
            p,
            taxonomy,
            &field(prefix, &format!("contexts[{i}]")),
            "context",
            context,
        ) && !contexts.contains(&c)
        {
            contexts.push(c);
        }
    }
    contexts.sort();
    let date = date(p, &field(prefix, "date"), &incident.date);
    let location_type = code(
        p,
        taxonomy,
        &field(prefix, "location_type"),
        "location_type",
        &incident.location_type,
    );
    let relation = code(
        p,
        taxonomy,
        &field(prefix, "perpetrator_relation"),
        "perpetrator_relation",
        &incident.perpetrator_relation,
    );
    let narrative = text(p, &field(prefix, "narrative"), &incident.narrative, 20_000);
    Some(IncidentInput {
        incident_type: incident_type?,
        csa_subtype,
        contexts,
        date: date?,
        location_type: location_type?,
        perpetrator_relation: relation?,
        narrative: narrative?,
    })
}

impl IncidentInput {
    /// Checks a further incident of an existing case.
    pub fn parse(raw: &RawIncident, taxonomy: &Taxonomy) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let incident = parse_incident(&mut problems, taxonomy, raw, "");
        match incident {
            Some(incident) if problems.is_empty() => Ok(incident),
            _ => Err(problems),
        }
    }
}

impl CaseInput {
    /// Checks every field, collecting every problem.
    pub fn parse(
        raw: &RawCase,
        taxonomy: &Taxonomy,
        school_id: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut p = Vec::new();
        let risk_level = code(
            &mut p,
            taxonomy,
            "risk_level",
            "risk_level",
            &raw.risk_level,
        );
        let name = text(&mut p, "pupil.name", &raw.pupil.name, 200);
        let date_of_birth = date(&mut p, "pupil.date_of_birth", &raw.pupil.date_of_birth);
        let sex = code(&mut p, taxonomy, "pupil.sex", "sex", &raw.pupil.sex);
        let class = optional_text(&mut p, "pupil.class", raw.pupil.class.as_ref(), 40);
        let guardian = optional_text(&mut p, "pupil.guardian", raw.pupil.guardian.as_ref(), 500);
        let contact = optional_text(&mut p, "pupil.contact", raw.pupil.contact.as_ref(), 500);
        let incident = parse_incident(&mut p, taxonomy, &raw.incident, "incident");
        if !p.is_empty() {
            return Err(p);
        }
        let (Some(risk_level), Some(name), Some(date_of_birth), Some(sex), Some(incident)) =
            (risk_level, name, date_of_birth, sex, incident)
        else {
            return Err(vec![FieldError::new("body", "is incomplete")]);
        };
        let fingerprint = sha256_hex(&serde_json::to_vec(raw).unwrap_or_default());
        Ok(Self {
            school_id: school_id.to_owned(),
            risk_level,
            pupil: PupilInput {
                name,
                date_of_birth,
                sex,
                class,
                disability: raw.pupil.disability,
                guardian,
                contact,
            },
            incident,
            fingerprint,
        })
    }

    /// A hash of the request as sent, to tell a retry from a different request.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}
