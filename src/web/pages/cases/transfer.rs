//! The pages of a case transfer (`cases::transfer`): the section of the case
//! page (`templates/pages/case_transfer.html`: the transfers, the form
//! to start one, the button to cancel), the receiving school's page of one
//! transfer (accept or refuse), and the dashboard's two lists. Forms work
//! without JavaScript; a refused form comes back (422) with what was typed
//! and a specific message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::workspace::{Attempt, Shown, case_page};
use super::{Choice, case_capability, short};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::CaseError;
use crate::cases::transfer::{self, Reason, TransferError, TransferRequest};
use crate::db::DbConnection;
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::pages::{
    CsrfForm, Frame, PageUser, case_failure, failure_page, not_found, render_with, see_other,
};
use crate::web::{AppState, blocking};

/// One transfer on the case page.
pub struct TransferLine {
    pub id: String,
    pub status_code: String,
    pub status: String,
    pub from: String,
    pub to: String,
    pub requested: String,
    pub answer_by: String,
    pub reason: String,
    pub answer: Option<String>,
    pub open: bool,
}

/// The case page's transfer section.
#[derive(Default)]
pub struct TransferPart {
    pub lines: Vec<TransferLine>,
    /// The caller may start and cancel transfers of this case.
    pub may_transfer: bool,
    pub has_open: bool,
    pub closed: bool,
    /// The schools of the tree the case may go to, by name.
    pub schools: Vec<Choice>,
}

/// A transfer function's outcome, split as `pages::outcome` does.
fn outcome<T>(result: Result<T, TransferError>) -> Result<Result<T, TransferError>, ApiError> {
    match result {
        Err(TransferError::Case(
            error @ (CaseError::Db(_) | CaseError::Crypto(_) | CaseError::Audit(_)),
        )) => Err(case_failure(error)),
        other => Ok(other),
    }
}

/// The message of a refused transfer form.
fn problem_key(error: &TransferError) -> &'static str {
    match error {
        TransferError::Invalid(problems) => match problems.first().map(|p| p.field.as_str()) {
            Some("to_school_id") => "transfer-problem-to",
            _ => "transfer-problem-reason",
        },
        TransferError::NotASchool => "transfer-problem-not-school",
        TransferError::SameSchool => "transfer-problem-same",
        TransferError::OutsideTree => "transfer-problem-unknown",
        TransferError::AlreadyInTransfer => "transfer-problem-open",
        TransferError::CaseClosed => "transfer-problem-closed",
        TransferError::NotOpen { .. } => "transfer-problem-not-open",
        TransferError::NotFound | TransferError::Case(_) => "problem-invalid",
    }
}

/// The section of the case page, for a caller who may read the case.
pub(super) fn transfer_part(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    t: &Tr<'_>,
    case: &crate::db::cases::CaseRow,
    reader: &crate::authz::capability::Capability,
) -> Result<TransferPart, ApiError> {
    // A refusal here (it cannot be: the caller reads the case) shows none.
    let views = outcome(transfer::of_case(
        conn,
        &state.case_context(),
        reader,
        &case.id,
    ))?
    .unwrap_or_default();
    let lines: Vec<TransferLine> = views
        .into_iter()
        .map(|v| TransferLine {
            open: v.transfer.is_open(),
            id: v.transfer.id.clone(),
            status: t.t(&format!("tstatus-{}", v.transfer.status)),
            status_code: v.transfer.status.clone(),
            from: v.from_school,
            to: v.to_school,
            requested: t.datetime(v.transfer.requested_at),
            answer_by: t.datetime(v.transfer.answer_by),
            reason: v.reason.expose().to_owned(),
            answer: v.answer.map(|a| a.expose().to_owned()),
        })
        .collect();
    let may_transfer = case_capability(conn, state, caller, Action::CaseTransfer, &case.id)
        .map_err(ApiError::from)?
        .is_some();
    let schools = if may_transfer {
        match outcome(transfer::target_schools(conn, &case.school_id))? {
            Ok(schools) => schools
                .into_iter()
                .map(|(code, label)| Choice { code, label })
                .collect(),
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    Ok(TransferPart {
        has_open: lines.iter().any(|l| l.open),
        closed: case.status == "closed",
        lines,
        may_transfer,
        schools,
    })
}

/// Re-shows the case page with the transfer form's problem, or goes on.
async fn after_case_form(
    state: &AppState,
    user: &PageUser,
    case_id: &str,
    result: Result<Result<(), TransferError>, ApiError>,
    done: &str,
    attempt: Attempt,
) -> HttpResponse {
    match result {
        Ok(Ok(())) => see_other(&format!("/cases/{case_id}?done={done}")),
        Ok(Err(TransferError::NotFound | TransferError::Case(CaseError::NotFound))) => {
            not_found(Frame::for_user(user, state, "/"))
        }
        Ok(Err(error)) => {
            let problem = user.tr(state).t(problem_key(&error));
            case_page(
                state,
                user,
                case_id,
                Shown::problem(problem, attempt),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

/// `POST /cases/{id}/transfers`: the case's focal point starts a transfer.
pub async fn start(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let case_id = path.into_inner();
    let attempt = Attempt::of(&form);
    let caller = user.caller.clone();
    let id = case_id.clone();
    let result = blocking(&state, move |conn, state| {
        let Some(capability) = case_capability(conn, state, &caller, Action::CaseTransfer, &id)?
        else {
            return Ok(Err(TransferError::NotFound));
        };
        let request = match TransferRequest::parse(
            &form.get("to_school_id").unwrap_or_default(),
            form.get("reason").as_deref(),
        ) {
            Ok(request) => request,
            Err(problems) => return Ok(Err(TransferError::Invalid(problems))),
        };
        outcome(transfer::start(conn, &state.case_context(), &capability, &id, &request).map(drop))
    })
    .await;
    after_case_form(&state, &user, &case_id, result, "transfer_started", attempt).await
}

/// `POST /cases/{id}/transfers/{transfer_id}/cancel`: the sender cancels.
pub async fn cancel(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<(String, String)>,
    form: CsrfForm,
) -> HttpResponse {
    let (case_id, transfer_id) = path.into_inner();
    let attempt = Attempt::of(&form);
    let caller = user.caller.clone();
    let id = case_id.clone();
    let result = blocking(&state, move |conn, state| {
        let Some(capability) = case_capability(conn, state, &caller, Action::CaseTransfer, &id)?
        else {
            return Ok(Err(TransferError::NotFound));
        };
        outcome(transfer::cancel(conn, &state.case_context(), &capability, &transfer_id).map(drop))
    })
    .await;
    after_case_form(
        &state,
        &user,
        &case_id,
        result,
        "transfer_cancelled",
        attempt,
    )
    .await
}

/// The receiving school's page of one transfer.
#[derive(askama::Template)]
#[template(path = "pages/transfer.html")]
pub struct TransferPage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub short: String,
    pub from: String,
    pub status: String,
    pub open: bool,
    pub risk: String,
    pub types: Vec<String>,
    pub reason: String,
    pub answer_by: String,
    pub problem: Option<String>,
    pub kept_reason: String,
}

fn may_answer(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Option<crate::authz::capability::Capability>, ApiError> {
    let school = crate::db::transfers::find(conn, id)
        .map_err(crate::db::DbError::from)?
        .map_or_else(|| id.to_owned(), |row| row.to_school_id);
    Ok(super::granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::CaseTransferAnswer,
        &school,
    ))?)
}

/// The page of transfer `id` (opening it marks it viewed), with a problem
/// and the typed refusal reason when a form was refused.
async fn transfer_page(
    state: &AppState,
    user: &PageUser,
    id: &str,
    problem: Option<String>,
    kept_reason: String,
    status: StatusCode,
) -> HttpResponse {
    let caller = user.caller.clone();
    let lang = user.lang;
    let transfer_id = id.to_owned();
    let loaded = blocking(state, move |conn, state| {
        let Some(capability) = may_answer(conn, state, &caller, &transfer_id)? else {
            return Ok(None);
        };
        let Ok(view) = outcome(transfer::open(
            conn,
            &state.case_context(),
            &capability,
            &transfer_id,
        ))?
        else {
            return Ok(None);
        };
        let t = Tr::new(lang, &state.taxonomy);
        Ok(Some((
            view.case_reference.clone(),
            view.from_school.clone(),
            t.t(&format!("tstatus-{}", view.transfer.status)),
            view.transfer.is_open(),
            t.code("risk_level", &view.risk_level),
            view.incident_types
                .iter()
                .map(|c| t.code("incident_type", c))
                .collect::<Vec<_>>(),
            view.reason
                .as_ref()
                .map(|r| r.expose().to_owned())
                .unwrap_or_default(),
            t.datetime(view.transfer.answer_by),
        )))
    })
    .await;
    match loaded {
        Ok(Some((short, from, status_label, open, risk, types, reason, answer_by))) => render_with(
            status,
            &TransferPage {
                frame: Frame::for_user(user, state, &format!("/transfers/{id}")),
                id: id.to_owned(),
                short,
                from,
                status: status_label,
                open,
                risk,
                types,
                reason,
                answer_by,
                problem,
                kept_reason,
            },
        ),
        Ok(None) => not_found(Frame::for_user(user, state, "/")),
        Err(error) => failure_page(&error),
    }
}

/// `GET /transfers/{id}`.
pub async fn page(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    transfer_page(&state, &user, &id, None, String::new(), StatusCode::OK).await
}

/// `POST /transfers/{id}/accept`: the case comes to the caller's school.
pub async fn accept(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    _form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let caller = user.caller.clone();
    let transfer_id = id.clone();
    let result = blocking(&state, move |conn, state| {
        let Some(capability) = may_answer(conn, state, &caller, &transfer_id)? else {
            return Ok(Err(TransferError::NotFound));
        };
        outcome(
            transfer::accept(conn, &state.case_context(), &capability, &transfer_id)
                .map(|(_, case)| case.id),
        )
    })
    .await;
    match result {
        Ok(Ok(case_id)) => see_other(&format!("/cases/{case_id}?done=transfer_accepted")),
        Ok(Err(TransferError::NotFound)) => not_found(Frame::for_user(&user, &state, "/")),
        Ok(Err(error)) => {
            let problem = user.tr(&state).t(problem_key(&error));
            transfer_page(
                &state,
                &user,
                &id,
                Some(problem),
                String::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

/// `POST /transfers/{id}/refuse`: with a reason; the case stays.
pub async fn refuse(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let typed = form.get("reason").unwrap_or_default();
    let caller = user.caller.clone();
    let transfer_id = id.clone();
    let reason_text = typed.clone();
    let result = blocking(&state, move |conn, state| {
        let Some(capability) = may_answer(conn, state, &caller, &transfer_id)? else {
            return Ok(Err(TransferError::NotFound));
        };
        let reason = match Reason::parse(Some(&reason_text), "reason") {
            Ok(reason) => reason,
            Err(problem) => return Ok(Err(TransferError::Invalid(vec![problem]))),
        };
        outcome(
            transfer::refuse(
                conn,
                &state.case_context(),
                &capability,
                &transfer_id,
                &reason,
            )
            .map(drop),
        )
    })
    .await;
    match result {
        Ok(Ok(())) => see_other(&format!("/transfers/{id}")),
        Ok(Err(TransferError::NotFound)) => not_found(Frame::for_user(&user, &state, "/")),
        Ok(Err(error)) => {
            let problem = user.tr(&state).t(problem_key(&error));
            transfer_page(
                &state,
                &user,
                &id,
                Some(problem),
                typed,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

/// A transfer in one of the dashboard's lists.
pub struct DashboardTransfer {
    pub id: String,
    pub case_id: String,
    pub short: String,
    pub school: String,
    pub status: String,
    pub when: String,
    pub risk: String,
}

/// The dashboard's lists: transfers waiting for the school's answer, and
/// those it started. Empty where the policy allows neither.
pub(super) fn dashboard_lists(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    t: &Tr<'_>,
) -> Result<(Vec<DashboardTransfer>, Vec<DashboardTransfer>), ApiError> {
    let school = caller.user.org_id.clone();
    let mut incoming = Vec::new();
    if let Some(capability) = super::granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::CaseTransferAnswer,
        &school,
    ))? && let Ok(views) = outcome(transfer::incoming(conn, &capability, &school))?
    {
        incoming = views
            .into_iter()
            .map(|v| DashboardTransfer {
                id: v.transfer.id.clone(),
                case_id: String::new(),
                short: v.case_reference,
                school: v.from_school,
                status: t.t(&format!("tstatus-{}", v.transfer.status)),
                when: t.datetime(v.transfer.answer_by),
                risk: t.code("risk_level", &v.risk_level),
            })
            .collect();
    }
    let mut outgoing = Vec::new();
    if let Some(capability) = super::granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::CaseList,
        &school,
    ))? && let Ok(views) = outcome(transfer::outgoing(conn, &capability, &school))?
    {
        outgoing = views
            .into_iter()
            .take(20)
            .map(|v| DashboardTransfer {
                id: v.transfer.id.clone(),
                short: short(&v.transfer.case_id),
                // After an acceptance the case is no longer the school's.
                case_id: if v.transfer.status == "accepted" {
                    String::new()
                } else {
                    v.transfer.case_id.clone()
                },
                school: v.to_school,
                status: t.t(&format!("tstatus-{}", v.transfer.status)),
                when: t.datetime(v.transfer.requested_at),
                risk: String::new(),
            })
            .collect();
    }
    Ok((incoming, outgoing))
}
