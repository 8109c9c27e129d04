//! Case-work on the case page and the legal-hold page (issue 16): the
//! assigned case worker, closure that needs a second focal point's approval,
//! and the legal hold. The workspace shows them in `case/casework.html`
//! (assembled by [`panel`]); the forms are handled here like the other
//! workspace actions. District officers and admins, who never read cases,
//! find a case by its reference on `/legal-holds` and set or lift its hold.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::actions::act_on_case;
use super::workspace::Attempt;
use super::{Choice, case_capability, choices, outcome, short};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::approval::{self, ClosureRequest, Decision};
use crate::cases::assignment::{self, Assignment};
use crate::cases::legal_hold::{self, HoldChange, HoldStatus};
use crate::cases::lifecycle::ClosureReason;
use crate::cases::{CaseError, CaseView, Casework, FieldError};
use crate::crypto::envelope::SecretText;
use crate::domain::user::Role;
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::pages::{
    CsrfForm, Frame, PageUser, failure_page, not_found, render_with, see_other,
};
use crate::web::{AppState, blocking};

/// The closure awaiting approval, as the page shows it.
pub struct PendingLine {
    pub id: String,
    pub reason: String,
    pub note: String,
    pub by: String,
    pub when: String,
    /// The viewer asked for it (and so cannot decide on it).
    pub own: bool,
}

/// The legal hold in force, as the case's focal points see it.
pub struct HoldLine {
    pub reason: String,
    pub note: Option<String>,
    pub when: String,
}

/// What `case/casework.html` shows.
pub struct CaseworkPanel {
    pub assignee: Option<String>,
    pub assignee_id: String,
    pub may_assign: bool,
    /// The school's active focal points.
    pub candidates: Vec<Choice>,
    pub needs_approval: bool,
    pub pending: Option<PendingLine>,
    /// The request form (approval needed, none pending, the case open).
    pub may_request: bool,
    /// The approve and return forms (pending, asked by someone else).
    pub may_decide: bool,
    pub hold: Option<HoldLine>,
}

/// Assembles the panel for the case page.
#[expect(clippy::too_many_arguments, reason = "the page's parts, all needed")]
pub(super) fn panel(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    t: &Tr<'_>,
    view: &CaseView,
    casework: Casework,
    may_update: bool,
    case_id: &str,
) -> Result<CaseworkPanel, ApiError> {
    let focal = caller.role == Role::FocalPoint;
    let open = view.case.status != "closed";
    let may_assign = focal
        && open
        && case_capability(conn, state, caller, Action::CaseAssign, case_id)?.is_some();
    let candidates = if may_assign {
        outcome(assignment::candidates(conn, &view.case.school_id))?
            .unwrap_or_default()
            .into_iter()
            .map(|(code, label)| Choice { code, label })
            .collect()
    } else {
        Vec::new()
    };
    let pending = match casework.pending_closure {
        Some(p) => {
            let names =
                crate::db::users::display_names(conn, std::slice::from_ref(&p.requested_by))
                    .map_err(crate::db::DbError::from)?;
            Some(PendingLine {
                own: p.requested_by == caller.user.id,
                by: names.get(&p.requested_by).cloned().unwrap_or_default(),
                id: p.id,
                reason: t.code("closure_reason", &p.closure_reason),
                note: p.note.expose().to_owned(),
                when: t.datetime(p.requested_at),
            })
        }
        None => None,
    };
    let may_decide = focal
        && pending.as_ref().is_some_and(|p| !p.own)
        && case_capability(conn, state, caller, Action::CaseApproveClosure, case_id)?.is_some();
    Ok(CaseworkPanel {
        assignee: casework.assignee.as_ref().map(|(_, name)| name.clone()),
        assignee_id: casework.assignee.map(|(id, _)| id).unwrap_or_default(),
        may_assign,
        candidates,
        needs_approval: casework.closure_needs_approval,
        may_request: focal
            && may_update
            && casework.closure_needs_approval
            && pending.is_none()
            && cases_can_close(&view.case.status),
        pending,
        may_decide,
        hold: casework.legal_hold.map(|h| HoldLine {
            reason: t.code("legal_hold_reason", &h.reason),
            note: h.note.as_ref().map(|n| n.expose().to_owned()),
            when: t.datetime(h.decided_at),
        }),
    })
}

fn cases_can_close(status: &str) -> bool {
    crate::cases::lifecycle::next_statuses(status).contains(&"closed")
}

/// The chronology's label of a case-work entry; `None` for other kinds.
pub(super) fn chronology_label(t: &Tr<'_>, kind: &str) -> Option<String> {
    let mut parts = kind.split(':');
    Some(match (parts.next(), parts.next(), parts.next()) {
        (Some("assigned"), Some(_), _) => t.t("chrono-assigned"),
        (Some("unassigned"), ..) => t.t("chrono-unassigned"),
        (Some("closure_requested"), Some(reason), _) => t.t1(
            "chrono-closure-requested",
            "reason",
            t.code("closure_reason", reason),
        ),
        (Some("closure_approved"), ..) => t.t("chrono-closure-approved"),
        (Some("closure_returned"), ..) => t.t("chrono-closure-returned"),
        (Some("legal_hold"), Some("set"), Some(reason)) => t.t1(
            "chrono-legal-hold-set",
            "reason",
            t.code("legal_hold_reason", reason),
        ),
        (Some("legal_hold"), Some("lifted"), Some(reason)) => t.t1(
            "chrono-legal-hold-lifted",
            "reason",
            t.code("legal_hold_lift_reason", reason),
        ),
        _ => return None,
    })
}

/// The message key of a case-work refusal on the case page.
pub(super) fn problem_key(error: &CaseError) -> &'static str {
    match error {
        CaseError::ClosureNeedsApproval => "problem-closure-needs-approval",
        CaseError::ClosureAwaitingApproval => "problem-closure-awaiting",
        CaseError::OwnClosureRequest => "problem-own-closure-request",
        CaseError::Invalid(problems) => match problems.first().map(|p| p.field.as_str()) {
            Some("assignee") => "problem-assignee",
            Some("closure_request") => "problem-closure-not-needed",
            Some("request_id") => "problem-closure-request-gone",
            Some("decision_note") => "problem-return-note",
            _ => "problem-invalid",
        },
        _ => "problem-invalid",
    }
}

fn version(form: &CsrfForm) -> i32 {
    form.get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

fn page_note(form: &CsrfForm, field: &str) -> Result<Option<SecretText>, CaseError> {
    crate::cases::lifecycle::note_text(form.get("note").as_deref()).map_err(|_| {
        CaseError::Invalid(vec![FieldError::new(
            field,
            format!(
                "is longer than {} characters",
                crate::cases::lifecycle::NOTE_MAX_CHARS
            ),
        )])
    })
}

pub async fn assign(
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
        Action::CaseAssign,
        "case_assigned",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let change = Assignment::parse(form.get("assignee").as_deref(), version(&form))?;
            assignment::assign(conn, &state.case_context(), capability, &case_id, &change).map(drop)
        },
    )
    .await
}

pub async fn request_closure(
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
        "closure_requested",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let reason = ClosureReason::parse(
                &form.get("closure_reason").unwrap_or_default(),
                &state.taxonomy,
            );
            let note = page_note(&form, "note")?;
            let (Ok(closure_reason), Some(note)) = (reason, note) else {
                return Err(CaseError::Invalid(vec![FieldError::new(
                    "closure_reason",
                    "and `note` are required to close a case",
                )]));
            };
            approval::request(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                &ClosureRequest {
                    expected_version: version(&form),
                    closure_reason,
                    note,
                },
            )
            .map(drop)
        },
    )
    .await
}

async fn decide(
    state: web::Data<AppState>,
    user: PageUser,
    id: String,
    form: CsrfForm,
    approve: bool,
) -> HttpResponse {
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseApproveClosure,
        if approve {
            "closure_approved"
        } else {
            "closure_returned"
        },
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let note = page_note(&form, "decision_note")?;
            if !approve && note.is_none() {
                return Err(CaseError::Invalid(vec![FieldError::new(
                    "decision_note",
                    "is required to return a closure request",
                )]));
            }
            approval::decide(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                &Decision {
                    request_id: form.get("request_id").unwrap_or_default(),
                    expected_version: version(&form),
                    approve,
                    note,
                },
            )
            .map(drop)
        },
    )
    .await
}

pub async fn approve_closure(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    decide(state, user, path.into_inner(), form, true).await
}

pub async fn return_closure(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    decide(state, user, path.into_inner(), form, false).await
}

/// The legal-hold page: find a case by its reference, see its hold, set or
/// lift it. Nothing of the case's content is on it.
#[derive(askama::Template)]
#[template(path = "pages/legal_hold.html")]
pub struct LegalHoldPage<'a> {
    pub frame: Frame<'a>,
    /// The reference as typed.
    pub reference: String,
    pub found: Option<HoldStatusLine>,
    pub reasons: Vec<Choice>,
    pub notice: Option<String>,
    pub problem: Option<String>,
    /// What the refused form held: reason, note.
    pub kept_reason: String,
    pub kept_note: String,
}

pub struct HoldStatusLine {
    pub id: String,
    pub short: String,
    pub held: bool,
    pub latest: Option<String>,
    pub content_destroyed: bool,
}

#[derive(Deserialize, Default)]
pub struct HoldQuery {
    case: Option<String>,
    done: Option<String>,
}

fn status_line(t: &Tr<'_>, status: &HoldStatus) -> HoldStatusLine {
    HoldStatusLine {
        short: short(&status.case_id),
        id: status.case_id.clone(),
        held: status.held,
        latest: status.latest.as_ref().map(|(reason, _, when)| {
            let category = if status.held {
                "legal_hold_reason"
            } else {
                "legal_hold_lift_reason"
            };
            format!("{} — {}", t.code(category, reason), t.datetime(*when))
        }),
        content_destroyed: status.content_destroyed,
    }
}

/// The hold of `case_id` for the caller, or `None` where it is not theirs
/// to hold (or does not exist).
async fn find_hold(
    state: &AppState,
    user: &PageUser,
    case_id: &str,
) -> Result<Option<HoldStatus>, ApiError> {
    let caller = user.caller.clone();
    let case_id = case_id.to_owned();
    blocking(state, move |conn, state| {
        let Some(capability) =
            case_capability(conn, state, &caller, Action::CaseLegalHold, &case_id)?
        else {
            return Ok(None);
        };
        Ok(outcome(legal_hold::status(conn, &capability, &case_id))?.ok())
    })
    .await
}

struct Shown {
    notice: Option<String>,
    problem: Option<String>,
    kept_reason: String,
    kept_note: String,
}

fn hold_page<'a>(
    frame: Frame<'a>,
    state: &AppState,
    reference: String,
    found: Option<HoldStatusLine>,
    shown: Shown,
) -> LegalHoldPage<'a> {
    let t = frame.t;
    let category = if found.as_ref().is_some_and(|f| f.held) {
        "legal_hold_lift_reason"
    } else {
        "legal_hold_reason"
    };
    LegalHoldPage {
        reasons: choices(&t, state, category),
        frame,
        reference,
        found,
        notice: shown.notice,
        problem: shown.problem,
        kept_reason: shown.kept_reason,
        kept_note: shown.kept_note,
    }
}

pub async fn legal_hold_page(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<HoldQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let frame = Frame::for_user(&user, &state, "/legal-holds");
    let t = frame.t;
    let shown = Shown {
        notice: query
            .done
            .as_deref()
            .filter(|d| matches!(*d, "set" | "lifted"))
            .map(|d| t.t(&format!("legal-hold-done-{d}"))),
        problem: None,
        kept_reason: String::new(),
        kept_note: String::new(),
    };
    let Some(reference) = query.case.map(|c| c.trim().to_owned()) else {
        return render_with(
            StatusCode::OK,
            &hold_page(frame, &state, String::new(), None, shown),
        );
    };
    if uuid::Uuid::parse_str(&reference).is_err() {
        let shown = Shown {
            problem: Some(t.t("legal-hold-bad-reference")),
            ..shown
        };
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &hold_page(frame, &state, reference, None, shown),
        );
    }
    match find_hold(&state, &user, &reference).await {
        Ok(Some(status)) => {
            let line = status_line(&t, &status);
            render_with(
                StatusCode::OK,
                &hold_page(frame, &state, reference, Some(line), shown),
            )
        }
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}

/// Sets or lifts the hold from the page's form.
pub async fn legal_hold(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let frame = Frame::for_user(&user, &state, "/legal-holds");
    let t = frame.t;
    let held = form.get("held").as_deref() == Some("1");
    let reason = form.get("reason").unwrap_or_default();
    let note = form.get("note").unwrap_or_default();
    let change = HoldChange::parse(held, &reason, &note, &state.taxonomy);
    let caller = user.caller.clone();
    let case_id = id.clone();
    let result = blocking(&state, move |conn, state| {
        let Some(capability) =
            case_capability(conn, state, &caller, Action::CaseLegalHold, &case_id)?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        let change = match change {
            Ok(change) => change,
            Err(problems) => return Ok(Err(CaseError::Invalid(problems))),
        };
        outcome(legal_hold::change(
            conn,
            &state.case_context(),
            &capability,
            &case_id,
            &change,
        ))
    })
    .await;
    let problem = match result {
        Ok(Ok(_)) => {
            return see_other(&format!(
                "/legal-holds?case={id}&done={}",
                if held { "set" } else { "lifted" }
            ));
        }
        Ok(Err(CaseError::NotFound)) => return not_found(frame),
        Ok(Err(CaseError::ContentDestroyed)) => t.t("legal-hold-destroyed"),
        Ok(Err(CaseError::Invalid(problems))) => match problems.first().map(|p| p.field.as_str()) {
            Some("reason") => t.t("legal-hold-problem-reason"),
            Some("note") => t.t1("legal-hold-problem-note", "min", legal_hold::NOTE_MIN_CHARS),
            _ => t.t("legal-hold-problem-unchanged"),
        },
        Ok(Err(_)) => t.t("problem-invalid"),
        Err(error) => return failure_page(&error),
    };
    let found = match find_hold(&state, &user, &id).await {
        Ok(Some(status)) => Some(status_line(&t, &status)),
        Ok(None) => return not_found(frame),
        Err(error) => return failure_page(&error),
    };
    render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &hold_page(
            frame,
            &state,
            id,
            found,
            Shown {
                notice: None,
                problem: Some(problem),
                kept_reason: reason,
                kept_note: note,
            },
        ),
    )
}
