//! Intake: the form that opens a case (kept as typed when refused, with
//! each field's problem) and its drafts, sealed, saved by the button or
//! the script's autosave and restored when the form is opened again.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{Choice, choices, granted, outcome};
use crate::authn::caller::{AuthVia, Caller};
use crate::authz::Action;
use crate::cases::consent::{ConsentInput, RawConsent};
use crate::cases::input::{RawCase, RawIncident, RawPupil};
use crate::cases::intake_token::{self, IntakeToken};
use crate::cases::{self, CaseError, CaseInput, FieldError};
use crate::db::write_transaction;
use crate::domain::org::AgencyType;
use crate::domain::user::Role;
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
    /// The agency types consent to disclosure names (intake step 3).
    pub disclosure_to: Vec<String>,
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

    pub fn discloses_to(&self, code: &str) -> bool {
        self.disclosure_to.iter().any(|c| c == code)
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
    /// The contexts by group (GBVIMS, school, national law), each with
    /// its heading: none of them reads as an incident type.
    pub context_groups: Vec<(String, Vec<Choice>)>,
    pub locations: Vec<Choice>,
    pub relations: Vec<Choice>,
    pub sexes: Vec<Choice>,
    pub risks: Vec<Choice>,
    /// The form's single-use token (`cases::intake_token`).
    pub token: String,
    /// Whether the consent step is shown (focal points record consent).
    pub may_consent: bool,
    pub consent_givers: Vec<Choice>,
    pub legal_bases: Vec<Choice>,
    pub agency_types: Vec<Choice>,
}

impl IntakePage<'_> {
    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// `aria-invalid` and `aria-describedby` to the field's message, when
    /// the field has a problem (`|safe` in the template).
    pub fn tie(&self, field: &str) -> String {
        if self.problem(field).is_some() {
            crate::web::pages::tie_to(Some(&format!("{field}-error")), "", true)
        } else {
            String::new()
        }
    }
}

/// The `context` terms by their group, in the order of
/// [`crate::domain::taxonomy::CONTEXT_GROUPS`].
fn context_groups(t: &Tr<'_>, state: &AppState) -> Vec<(String, Vec<Choice>)> {
    let terms = state.taxonomy.terms("context");
    crate::domain::taxonomy::CONTEXT_GROUPS
        .iter()
        .map(|group| {
            let members = terms
                .iter()
                .filter(|term| term.group.as_deref() == Some(*group))
                .map(|term| Choice {
                    code: term.code.clone(),
                    label: t.code("context", &term.code),
                })
                .collect();
            (t.t(&format!("context-group-{group}")), members)
        })
        .collect()
}

fn intake_form<'a>(
    frame: Frame<'a>,
    state: &'a AppState,
    values: IntakeValues,
    problems: Vec<(String, String)>,
    token: &IntakeToken,
) -> IntakePage<'a> {
    let t = frame.t;
    IntakePage {
        token: token.expose().to_owned(),
        may_consent: frame.role == Role::FocalPoint.as_str(),
        consent_givers: choices(&t, state, "consent_giver"),
        legal_bases: choices(&t, state, "legal_basis"),
        agency_types: AgencyType::ALL
            .iter()
            .map(|a| Choice {
                code: a.as_str().to_owned(),
                label: t.t(&format!("agency-{}", a.as_str())),
            })
            .collect(),
        notice: None,
        incident_types: choices(&t, state, "incident_type"),
        csa_subtypes: choices(&t, state, "csa_subtype"),
        context_groups: context_groups(&t, state),
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
    values.disclosure_to = pairs
        .iter()
        .filter(|(k, v)| k == "consent.disclosure_to" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
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
                || k == "consent.disclosure_to"
        })
        .cloned()
        .collect()
}

/// The session a page was asked for in (intake tokens are bound to it).
fn session_of(caller: &Caller) -> Option<String> {
    match &caller.via {
        AuthVia::Session { id } => Some(id.clone()),
        AuthVia::Token { .. } => None,
    }
}

/// The token `sent` back by a form when it is of the issued shape, or a
/// fresh one for this session: every intake form shown carries one.
async fn form_token(
    state: &AppState,
    user: &PageUser,
    sent: Option<String>,
) -> Result<IntakeToken, ApiError> {
    if let Some(token) = sent.as_deref().and_then(IntakeToken::parse) {
        return Ok(token);
    }
    let session = session_of(&user.caller).ok_or_else(ApiError::not_found)?;
    let user_id = user.caller.user.id.clone();
    blocking(state, move |conn, state| {
        Ok(intake_token::issue(
            conn,
            state.clock.as_ref(),
            &session,
            &user_id,
        )?)
    })
    .await
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
    let token = match form_token(&state, &user, None).await {
        Ok(token) => token,
        Err(error) => return failure_page(&error),
    };
    let frame = Frame::for_user(&user, &state, "/cases/new");
    let t = frame.t;
    let mut page = intake_form(frame, &state, IntakeValues::default(), Vec::new(), &token);
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
            let token = match form_token(&state, &user, form.get("intake_token")).await {
                Ok(token) => token,
                Err(error) => return failure_page(&error),
            };
            let frame = Frame::for_user(&user, &state, "/cases/new");
            let t = frame.t;
            let mut page = intake_form(frame, &state, intake_values(&fields), Vec::new(), &token);
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
    "consent.given_by",
    "consent.services",
    "consent.reporting",
    "consent.legal_basis",
    "consent.withheld",
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
/// problem, and the form's token (`None`: a fresh one).
async fn refused_intake(
    state: &AppState,
    user: &PageUser,
    values: IntakeValues,
    problems: &[FieldError],
    token: Option<IntakeToken>,
) -> HttpResponse {
    let token = match form_token(state, user, token.map(|t| t.expose().to_owned())).await {
        Ok(token) => token,
        Err(error) => return failure_page(&error),
    };
    let t = user.tr(state);
    let problems = problems.iter().map(|p| localize(&t, p)).collect();
    render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &intake_form(
            Frame::for_user(user, state, "/cases/new"),
            state,
            values,
            problems,
            &token,
        ),
    )
}

/// The consent of intake step 3, when one was given (`consent.given_by`
/// chosen); its problems are named `consent.…`.
fn intake_consent(
    form: &CsrfForm,
    state: &AppState,
) -> Result<Option<ConsentInput>, Vec<FieldError>> {
    let Some(given_by) = form.get("consent.given_by") else {
        return Ok(None);
    };
    let disclosure_to = form.all("consent.disclosure_to");
    let raw = RawConsent {
        given_by,
        services: form.get("consent.services").is_some(),
        reporting: form.get("consent.reporting").is_some(),
        disclosure: !disclosure_to.is_empty(),
        disclosure_to,
        legal_basis: form.get("consent.legal_basis").unwrap_or_default(),
        withheld: form.get("consent.withheld"),
    };
    ConsentInput::parse(&raw, &state.taxonomy)
        .map(Some)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| FieldError::new(&format!("consent.{}", p.field), p.message))
                .collect()
        })
}

fn raw_case(values: &IntakeValues, form: &CsrfForm) -> RawCase {
    RawCase {
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
    }
}

/// Records the case of an intake form, consuming its token, and the consent
/// of step 3 — one transaction: a consent the caller may not record, or a
/// failure, leaves no case and the token unused. A replayed token records
/// nothing and answers with the case it made.
fn record_intake(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    session: &str,
    token: &IntakeToken,
    input: &CaseInput,
    consent: Option<&ConsentInput>,
) -> Result<Result<cases::Created, CaseError>, ApiError> {
    let school = caller.user.org_id.clone();
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
    let context = state.case_context();
    outcome(write_transaction(conn, |conn| {
        let created =
            intake_token::create_from_form(conn, &context, &capability, session, token, input)?;
        if let Some(consent) = consent.filter(|_| !created.replayed) {
            let checked = state.authz.check_case(
                conn,
                &caller.actor(),
                &caller.request,
                Action::CaseUpdate,
                &created.case.id,
            );
            let Some((may_update, _)) = granted(checked)? else {
                return Err(CaseError::Invalid(vec![FieldError::new(
                    "consent.recorded_by",
                    "only the school's focal point records consent",
                )]));
            };
            crate::cases::consent::record(conn, &context, &may_update, &created.case.id, consent)?;
        }
        Ok(created)
    }))
}

pub async fn intake(state: web::Data<AppState>, user: PageUser, form: CsrfForm) -> HttpResponse {
    let values = intake_values(&form.pairs);
    let token = form
        .get("intake_token")
        .as_deref()
        .and_then(IntakeToken::parse);
    let school = user.caller.user.org_id.clone();
    let parsed = CaseInput::parse(&raw_case(&values, &form), &state.taxonomy, &school);
    let consent = intake_consent(&form, &state);
    let (input, consent) = match (parsed, consent) {
        (Ok(input), Ok(consent)) => (input, consent),
        (parsed, consent) => {
            let mut problems = parsed.err().unwrap_or_default();
            problems.extend(consent.err().unwrap_or_default());
            return refused_intake(&state, &user, values, &problems, token).await;
        }
    };
    // A form sent twice (a double tap, a reload) makes one case: its token
    // is consumed with the case it made.
    let (Some(token), Some(session)) = (token, session_of(&user.caller)) else {
        return refused_intake(&state, &user, values, &[expired()], None).await;
    };
    let caller = user.caller.clone();
    let used = token.clone();
    let created = blocking(&state, move |conn, state| {
        let created = record_intake(
            conn,
            state,
            &caller,
            &session,
            &used,
            &input,
            consent.as_ref(),
        )?;
        if matches!(&created, Ok(c) if !c.replayed)
            && let Err(error) = crate::cases::drafts::discard(conn, &caller.user.id)
        {
            tracing::warn!(%error, "an intake draft could not be dropped");
        }
        Ok(created)
    })
    .await;
    let reporter = user.caller.role == Role::Reporter;
    match created {
        // A reporter reads no case: they land where they started, told that
        // the school's focal points have it (and nothing of other cases).
        Ok(Ok(created)) if reporter => see_other(if created.replayed {
            "/?done=case_already_filed"
        } else {
            "/?done=case_filed"
        }),
        Ok(Ok(created)) if created.replayed => see_other(&format!(
            "/cases/{}?done=case_already_created",
            created.case.id
        )),
        Ok(Ok(created)) => {
            let mut to = format!("/cases/{}?done=case_created", created.case.id);
            if !created.open_cases_for_pupil.is_empty() {
                to.push_str("&others=");
                to.push_str(&created.open_cases_for_pupil.join(","));
            }
            see_other(&to)
        }
        Ok(Err(CaseError::Invalid(problems))) => {
            refused_intake(&state, &user, values, &problems, Some(token)).await
        }
        Ok(Err(CaseError::FormExpired)) => {
            refused_intake(&state, &user, values, &[expired()], None).await
        }
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/cases/new")),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

/// The problem of a form whose token is missing, unknown, expired or
/// another session's.
fn expired() -> FieldError {
    FieldError::new(
        "intake_token",
        "the form expired or was not issued to this session",
    )
}
