//! The forms that act on a case from its workspace: referrals and skipped
//! suggestions, transitions, consent, notes, the one-time partner link,
//! perpetrators, attachment uploads, and break-glass with its page. Each
//! checks the policy, does the work, then goes back to the workspace with
//! the outcome, or shows it again (422) with the problem and what was sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::workspace::{Attempt, Shown, case_page};
use super::{case_capability, granted, outcome, short};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::{self, CaseError, FieldError};
use crate::crypto::envelope::SecretText;
use crate::db::DbError;
use crate::db::referrals as referral_table;
use crate::domain::org::AgencyType;
use crate::web::error::ApiError;
use crate::web::pages::{
    CsrfForm, CsrfUpload, Frame, PageUser, failure_page, not_found, render, render_with, see_other,
};
use crate::web::{AppState, blocking};

/// A workspace action's problem, as a message key.
fn problem_key(error: &CaseError) -> &'static str {
    match error {
        CaseError::Invalid(problems) => match problems
            .first()
            .map(|p| (p.field.as_str(), p.message.as_str()))
        {
            Some(("consent", _)) => "problem-consent",
            Some(("override_reason", m)) if m.contains("may not") => "problem-override-not-allowed",
            Some(("override_reason" | "reason" | "text", _)) => "problem-reason",
            Some(("status", _)) => "problem-open-referrals",
            Some(("transfer", _)) => "problem-open-transfer",
            Some(("closure_reason" | "note", _)) => "problem-closure",
            Some(("given_by" | "legal_basis" | "withheld" | "disclosure_to", _)) => {
                "problem-consent-form"
            }
            Some(("agency_id", _)) => "problem-agency",
            Some(("case_note", _)) => "problem-note",
            Some(("name", m)) if m.contains("bidirectional") => "problem-attachment-bidi",
            Some(("name", m)) if m.contains(".html") => "problem-attachment-markup",
            Some(("file" | "Content-Type" | "name", _)) => "problem-attachment",
            Some(("relation" | "sex" | "age_group" | "identity" | "description", _)) => {
                "problem-perpetrator"
            }
            Some(("assignee" | "closure_request" | "request_id" | "decision_note", _)) => {
                super::casework::problem_key(error)
            }
            _ => "problem-invalid",
        },
        CaseError::Stale { .. } => "problem-stale",
        CaseError::InvalidTransition { .. } => "problem-transition",
        CaseError::ClosureNeedsApproval
        | CaseError::ClosureAwaitingApproval
        | CaseError::OwnClosureRequest => super::casework::problem_key(error),
        _ => "problem-invalid",
    }
}

/// Re-shows the workspace with the problem (422), or goes on.
async fn after_action(
    state: &AppState,
    user: &PageUser,
    id: &str,
    result: Result<Result<(), CaseError>, ApiError>,
    done: &str,
    attempt: Attempt,
) -> HttpResponse {
    match result {
        Ok(Ok(())) => see_other(&format!("/cases/{id}?done={done}")),
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(user, state, "/")),
        Ok(Err(error)) => {
            let problem = user.tr(state).t(problem_key(&error));
            let mut attempt = attempt;
            if let CaseError::Invalid(problems) = &error {
                attempt.field = problems.first().map(|p| p.field.clone());
            }
            case_page(
                state,
                user,
                id,
                Shown::problem(problem, attempt),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

/// A workspace action: the policy's check for `action` on the case, the
/// work, then the workspace again (with the outcome or the problem).
pub(super) async fn act_on_case<F>(
    state: &AppState,
    user: &PageUser,
    id: &str,
    action: Action,
    done: &str,
    attempt: Attempt,
    work: F,
) -> HttpResponse
where
    F: FnOnce(
            &mut crate::db::PooledConnection,
            &AppState,
            &Caller,
            &Capability,
        ) -> Result<(), CaseError>
        + Send
        + 'static,
{
    let caller = user.caller.clone();
    let case_id = id.to_owned();
    let result = blocking(state, move |conn, state| {
        let Some(capability) = case_capability(conn, state, &caller, action, &case_id)? else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(work(conn, state, &caller, &capability))
    })
    .await;
    after_action(state, user, id, result, done, attempt).await
}

pub async fn send_referral(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::ReferralSend,
        "referral_sent",
        Attempt::of(&form),
        move |conn, state, caller, capability| {
            let override_reason = form.get("override_reason");
            let may_override = override_reason.is_some()
                && case_capability(
                    conn,
                    state,
                    caller,
                    Action::ReferralOverrideConsent,
                    &case_id,
                )?
                .is_some();
            let outgoing = crate::referrals::Outgoing {
                agency_id: form.get("agency_id").unwrap_or_default(),
                note: form.get("note").map(SecretText::new),
                override_reason,
            };
            crate::referrals::send(
                conn,
                &state.case_context(),
                capability,
                may_override,
                &case_id,
                &outgoing,
            )
            .map(drop)
        },
    )
    .await
}

pub async fn skip_suggestion(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::ReferralSend,
        "suggestion_skipped",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let agency_type = form
                .get("agency_type")
                .and_then(|a| AgencyType::parse(&a).ok())
                .ok_or_else(|| {
                    CaseError::Invalid(vec![FieldError::new("agency_type", "is missing")])
                })?;
            crate::referrals::skip(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                agency_type,
                form.get("reason").as_deref(),
            )
        },
    )
    .await
}

pub async fn transition(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "case_moved",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let change = cases::lifecycle::Transition::parse(
                &form.get("to").unwrap_or_default(),
                form.get("version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default(),
                form.get("note").as_deref(),
                form.get("closure_reason").as_deref(),
                &state.taxonomy,
            )
            .map_err(transition_problem)?;
            cases::lifecycle::transition(conn, &state.case_context(), capability, &case_id, &change)
                .map(drop)
        },
    )
    .await
}

pub async fn record_consent(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let raw = crate::cases::consent::RawConsent {
        given_by: form.get("given_by").unwrap_or_default(),
        services: form.get("services").is_some(),
        reporting: form.get("reporting").is_some(),
        disclosure: !form.all("disclosure_to").is_empty(),
        disclosure_to: form.all("disclosure_to"),
        legal_basis: form.get("legal_basis").unwrap_or_default(),
        withheld: form.get("withheld"),
    };
    let input = crate::cases::consent::ConsentInput::parse(&raw, &state.taxonomy);
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "consent_recorded",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let input = input.map_err(CaseError::Invalid)?;
            crate::cases::consent::record(conn, &state.case_context(), capability, &case_id, &input)
                .map(drop)
        },
    )
    .await
}

#[derive(askama::Template)]
#[template(path = "pages/break_glass.html")]
pub struct BreakGlassPage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub short: String,
    pub hours: i64,
    pub reason: String,
    pub problem: Option<String>,
}

fn break_glass_form<'a>(
    frame: Frame<'a>,
    id: &str,
    reason: String,
    problem: Option<String>,
    hours: u32,
) -> BreakGlassPage<'a> {
    BreakGlassPage {
        frame,
        id: id.to_owned(),
        short: short(id),
        hours: i64::from(hours),
        reason,
        problem,
    }
}

/// A district officer opens one case of the area, with a written reason
/// and for a limited time (audited).
pub async fn break_glass_page(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    render(&break_glass_form(
        Frame::for_user(&user, &state, &format!("/cases/{id}/break-glass")),
        &id,
        String::new(),
        None,
        state.protocol.break_glass.hours,
    ))
}

pub async fn break_glass(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let reason = form.get("reason").unwrap_or_default();
    let frame = Frame::for_user(&user, &state, &format!("/cases/{id}/break-glass"));
    let Ok(sealed_reason) = cases::BreakGlassReason::parse(&reason) else {
        let problem = frame.t.t("break-glass-reason-short");
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &break_glass_form(
                frame,
                &id,
                reason,
                Some(problem),
                state.protocol.break_glass.hours,
            ),
        );
    };
    let caller = user.caller.clone();
    let case_id = id.clone();
    let granted = blocking(&state, move |conn, state| {
        let Some(capability) =
            case_capability(conn, state, &caller, Action::CaseBreakGlass, &case_id)?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(cases::break_glass(
            conn,
            &state.case_context(),
            &capability,
            &case_id,
            &sealed_reason,
        ))
    })
    .await;
    match granted {
        Ok(Ok(_)) => see_other(&format!("/cases/{id}?done=break_glass")),
        Ok(Err(CaseError::NotFound)) => not_found(frame),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

/// The refusal of a missing or over-long note (shown as `problem-note`).
fn note_problem() -> CaseError {
    CaseError::Invalid(vec![FieldError::new(
        "case_note",
        format!(
            "a note of 1 to {} characters is needed",
            cases::lifecycle::NOTE_MAX_CHARS
        ),
    )])
}

/// A transition the form asked for that cannot be parsed, as the page has
/// always shown it: a status the case cannot go to is `problem-transition`
/// (whatever the case's status), an over-long note `problem-note`.
fn transition_problem(problem: cases::lifecycle::TransitionProblem) -> CaseError {
    use cases::lifecycle::TransitionProblem;
    match problem {
        TransitionProblem::UnknownStatus => CaseError::InvalidTransition {
            from: String::new(),
            allowed: Vec::new(),
        },
        TransitionProblem::NoteTooLong => note_problem(),
        problem @ TransitionProblem::ClosureReason(_) => problem.into(),
    }
}

/// The form's `note`, checked like the API's.
fn page_note(form: &CsrfForm) -> Result<Option<SecretText>, CaseError> {
    cases::lifecycle::note_text(form.get("note").as_deref()).map_err(|_| note_problem())
}

pub async fn add_note(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "note_added",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let note = page_note(&form)?.ok_or_else(note_problem)?;
            cases::lifecycle::add_note(conn, &state.case_context(), capability, &case_id, &note)
        },
    )
    .await
}

pub async fn add_perpetrator(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let raw = cases::perpetrators::RawPerpetrator {
        incident_id: None,
        relation: form.get("relation").unwrap_or_default(),
        sex: form.get("sex").unwrap_or_default(),
        age_group: form.get("age_group").unwrap_or_default(),
        identity: form.get("identity"),
        description: form.get("description"),
    };
    let input = cases::perpetrators::PerpetratorInput::parse(&raw, &state.taxonomy);
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "perpetrator_added",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let input = input.map_err(CaseError::Invalid)?;
            cases::perpetrators::record(conn, &state.case_context(), capability, &case_id, &input)
                .map(drop)
        },
    )
    .await
}

/// An attachment from the case page's form: the same checks as the API
/// (the file's first bytes must match an accepted type; the name is
/// sealed and never a path).
pub async fn upload_attachment(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    upload: CsrfUpload,
) -> HttpResponse {
    let id = path.into_inner();
    let checked = upload
        .file
        .ok_or_else(|| CaseError::Invalid(vec![FieldError::new("file", "choose a file to attach")]))
        .and_then(|file| {
            let kind = cases::attachments::sniff(&file.content_type, &file.bytes)
                .map_err(|e| CaseError::Invalid(vec![FieldError::new("file", e.message)]))?;
            let name = file
                .name
                .as_deref()
                .map(cases::attachments::parse_name)
                .transpose()
                .map_err(|e| CaseError::Invalid(vec![FieldError::new("name", e.message)]))?;
            Ok((kind, name, file.bytes))
        });
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "attachment_added",
        Attempt::named("attachment"),
        move |conn, state, _, capability| {
            let (kind, name, bytes) = checked?;
            cases::attachments::upload(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                kind,
                name.as_ref(),
                &bytes,
            )
            .map(drop)
        },
    )
    .await
}

/// The focal point sends a one-time link to an agency officer without an
/// account: the link goes by e-mail, the 8-digit code is shown here once,
/// to be read out by phone.
pub async fn send_partner_link(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<(String, String)>,
    form: CsrfForm,
) -> HttpResponse {
    let (id, referral_id) = path.into_inner();
    let caller = user.caller.clone();
    let email = form.get("email").unwrap_or_default();
    let attempt = Attempt::of(&form);
    let case_id = id.clone();
    let result = blocking(&state, move |conn, state| {
        // The referral must be one of this case's.
        let belongs = referral_table::find(conn, &referral_id)
            .map_err(DbError::from)?
            .is_some_and(|r| r.case_id == case_id);
        if !belongs {
            return Ok(Err(CaseError::NotFound));
        }
        let Some((capability, _)) = granted(state.authz.check_referral(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralManage,
            &referral_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(crate::referrals::links::create(
            conn,
            &state.case_context(),
            &capability,
            &referral_id,
            &email,
        ))
    })
    .await;
    match result {
        Ok(Ok(link)) => {
            let notice = user
                .tr(&state)
                .t1("done-link_sent", "code", link.code.as_str());
            case_page(&state, &user, &id, Shown::notice(notice), StatusCode::OK).await
        }
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/")),
        Ok(Err(_)) => {
            let problem = user.tr(&state).t("problem-link");
            case_page(
                &state,
                &user,
                &id,
                Shown::problem(problem, attempt),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}
