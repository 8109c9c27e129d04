//! Intake: the form that opens a case (kept as typed when refused, with
//! each field's problem) and its drafts, sealed, saved by the button or
//! the script's autosave and restored when the form is opened again.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{Choice, choices, granted, outcome};
use crate::authz::Action;
use crate::cases::input::{RawCase, RawIncident, RawPupil};
use crate::cases::{self, CaseError, CaseInput, FieldError};
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::pages::{
    CsrfForm, Frame, PageUser, failure_page, not_found, render, render_with, see_other,
};
use crate::web::{AppState, blocking};

/// The intake form's values and problems.
#[derive(Default)]
pub struct IntakeValues {
    pub fields: std::collections::HashMap<String, String>,
    pub contexts: Vec<String>,
    pub disability: bool,
}

impl IntakeValues {
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    pub fn is(&self, name: &str, code: &str) -> bool {
        self.get(name) == code
    }

    pub fn has_context(&self, code: &str) -> bool {
        self.contexts.iter().any(|c| c == code)
    }
}

#[derive(askama::Template)]
#[template(path = "pages/intake.html")]
pub struct IntakePage<'a> {
    pub frame: Frame<'a>,
    pub notice: Option<String>,
    pub values: IntakeValues,
    /// Field name → the localized problem.
    pub problems: Vec<(String, String)>,
    pub incident_types: Vec<Choice>,
    pub csa_subtypes: Vec<Choice>,
    pub contexts: Vec<Choice>,
    pub locations: Vec<Choice>,
    pub relations: Vec<Choice>,
    pub sexes: Vec<Choice>,
    pub risks: Vec<Choice>,
}

impl IntakePage<'_> {
    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn intake_form<'a>(
    frame: Frame<'a>,
    state: &'a AppState,
    values: IntakeValues,
    problems: Vec<(String, String)>,
) -> IntakePage<'a> {
    let t = frame.t;
    IntakePage {
        notice: None,
        incident_types: choices(&t, state, "incident_type"),
        csa_subtypes: choices(&t, state, "csa_subtype"),
        contexts: choices(&t, state, "context"),
        locations: choices(&t, state, "location_type"),
        relations: choices(&t, state, "perpetrator_relation"),
        sexes: choices(&t, state, "sex"),
        risks: choices(&t, state, "risk_level"),
        frame,
        values,
        problems,
    }
}

/// The values of a submitted (or saved) intake form.
fn intake_values(pairs: &[(String, String)]) -> IntakeValues {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut values = IntakeValues::default();
    for name in INTAKE_FIELDS {
        if let Some(value) = get(name) {
            values.fields.insert((*name).to_owned(), value);
        }
    }
    values.contexts = pairs
        .iter()
        .filter(|(k, v)| k == "incident.contexts" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    values.disability = get("pupil.disability").is_some();
    values
}

/// The form's fields worth keeping in a draft (not the CSRF token).
fn draft_fields(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| {
            INTAKE_FIELDS.contains(&k.as_str())
                || k == "incident.contexts"
                || k == "pupil.disability"
        })
        .cloned()
        .collect()
}

pub async fn intake_page(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let user_id = user.caller.user.id.clone();
    let loaded = blocking(&state, move |conn, state| {
        outcome(crate::cases::drafts::load(
            conn,
            &state.keyring.current(),
            state.clock.as_ref(),
            &user_id,
        ))
    })
    .await;
    // A failure to read the draft is the failure page (one that cannot be
    // opened is no draft: `load` says so itself).
    let draft = match loaded {
        Ok(draft) => draft.ok().flatten(),
        Err(error) => return failure_page(&error),
    };
    let frame = Frame::for_user(&user, &state, "/cases/new");
    let t = frame.t;
    let mut page = intake_form(frame, &state, IntakeValues::default(), Vec::new());
    if let Some((fields, saved_at)) = draft {
        page.values = intake_values(&fields);
        page.notice = Some(t.t1("draft-restored", "time", t.datetime(saved_at)));
    }
    render(&page)
}

/// Saves what was typed so far, sealed (the "save draft" button, and the
/// script's autosave, which says so with `x-autosave` and gets 204).
pub async fn save_draft(
    state: web::Data<AppState>,
    user: PageUser,
    req: HttpRequest,
    form: CsrfForm,
) -> HttpResponse {
    let fields = draft_fields(&form.pairs);
    let (actor, request) = (user.caller.actor(), user.caller.request.clone());
    let kept = fields.clone();
    let saved = blocking(&state, move |conn, state| {
        outcome(crate::cases::drafts::save(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &actor,
            &request,
            &kept,
        ))
    })
    .await;
    let autosave = req.headers().contains_key("x-autosave");
    match saved {
        Ok(Ok(())) if autosave => HttpResponse::NoContent().finish(),
        Ok(Ok(())) => {
            let frame = Frame::for_user(&user, &state, "/cases/new");
            let t = frame.t;
            let mut page = intake_form(frame, &state, intake_values(&fields), Vec::new());
            page.notice = Some(t.t("draft-saved"));
            render(&page)
        }
        Ok(Err(CaseError::Invalid(_))) => HttpResponse::PayloadTooLarge().finish(),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

/// The fields of the intake form, in the order of the page.
const INTAKE_FIELDS: &[&str] = &[
    "incident.type",
    "incident.csa_subtype",
    "incident.date",
    "incident.location_type",
    "incident.perpetrator_relation",
    "incident.narrative",
    "pupil.name",
    "pupil.date_of_birth",
    "pupil.sex",
    "pupil.class",
    "pupil.guardian",
    "pupil.contact",
    "risk_level",
];

/// A problem's message in the person's language, per field.
fn localize(t: &Tr<'_>, problem: &FieldError) -> (String, String) {
    let field = problem
        .field
        .split('[')
        .next()
        .unwrap_or(&problem.field)
        .to_owned();
    let message = t.t(&format!("err-{}", field.replace('.', "-")));
    (field, message)
}

/// The intake form again (422), with what was typed and each field's
/// problem.
fn refused_intake(
    state: &AppState,
    user: &PageUser,
    values: IntakeValues,
    problems: &[FieldError],
) -> HttpResponse {
    let t = user.tr(state);
    let problems = problems.iter().map(|p| localize(&t, p)).collect();
    render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &intake_form(
            Frame::for_user(user, state, "/cases/new"),
            state,
            values,
            problems,
        ),
    )
}

pub async fn intake(state: web::Data<AppState>, user: PageUser, form: CsrfForm) -> HttpResponse {
    let values = intake_values(&form.pairs);
    let raw = RawCase {
        risk_level: values.get("risk_level").to_owned(),
        pupil: RawPupil {
            name: values.get("pupil.name").to_owned(),
            date_of_birth: values.get("pupil.date_of_birth").to_owned(),
            sex: values.get("pupil.sex").to_owned(),
            class: form.get("pupil.class"),
            disability: values.disability,
            guardian: form.get("pupil.guardian"),
            contact: form.get("pupil.contact"),
        },
        incident: RawIncident {
            incident_type: values.get("incident.type").to_owned(),
            csa_subtype: form.get("incident.csa_subtype"),
            contexts: values.contexts.clone(),
            date: values.get("incident.date").to_owned(),
            location_type: values.get("incident.location_type").to_owned(),
            perpetrator_relation: values.get("incident.perpetrator_relation").to_owned(),
            narrative: values.get("incident.narrative").to_owned(),
        },
    };
    let school = user.caller.user.org_id.clone();
    let input = match CaseInput::parse(&raw, &state.taxonomy, &school) {
        Ok(input) => input,
        Err(problems) => return refused_intake(&state, &user, values, &problems),
    };
    // A resubmitted form (a double click, a reload) makes one case.
    let key = form.get("submission").filter(|k| k.len() <= 64);
    let caller = user.caller.clone();
    let created = blocking(&state, move |conn, state| {
        let Some(capability) = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseCreate,
            &school,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        let created = cases::create(
            conn,
            &state.case_context(),
            &capability,
            &input,
            key.as_deref(),
        );
        if created.is_ok()
            && let Err(error) = crate::cases::drafts::discard(conn, &caller.user.id)
        {
            tracing::warn!(%error, "an intake draft could not be dropped");
        }
        outcome(created)
    })
    .await;
    match created {
        Ok(Ok(created)) => {
            let mut to = format!("/cases/{}?done=case_created", created.case.id);
            if !created.open_cases_for_pupil.is_empty() {
                to.push_str("&others=");
                to.push_str(&created.open_cases_for_pupil.join(","));
            }
            see_other(&to)
        }
        Ok(Err(CaseError::Invalid(problems))) => refused_intake(&state, &user, values, &problems),
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/cases/new")),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}
