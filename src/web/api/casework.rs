//! `/api/v1/cases/{id}/…` for case-work (issue 16): the assigned case
//! worker, closure that needs a second person's approval, and the legal hold.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cases::{CaseSummary, case_error, context, may};
use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::approval::{self, ClosureRequest, Decision};
use crate::cases::assignment::{self, Assignment};
use crate::cases::legal_hold::{self, HoldChange, HoldStatus};
use crate::cases::lifecycle::ClosureReason;
use crate::cases::{CaseError, Casework};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The case-work routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cases/{id}/assignment").route(web::post().to(assign)))
        .service(
            web::resource("/cases/{id}/closure-request").route(web::post().to(request_closure)),
        )
        .service(
            web::resource("/cases/{id}/closure-request/approve")
                .route(web::post().to(approve_closure)),
        )
        .service(
            web::resource("/cases/{id}/closure-request/return")
                .route(web::post().to(return_closure)),
        )
        .service(
            web::resource("/cases/{id}/legal-hold")
                .route(crate::web::get().to(hold_status))
                .route(web::post().to(change_hold)),
        );
}

fn at(time: chrono::NaiveDateTime) -> String {
    time.and_utc().to_rfc3339()
}

/// The case-work part of `GET /cases/{id}`.
pub(super) fn casework_dto(casework: &Casework) -> Value {
    json!({
        "assignee": casework.assignee.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
        "closure_needs_approval": casework.closure_needs_approval,
        "closure_request": casework.pending_closure.as_ref().map(|p| json!({
            "id": p.id,
            "status": "pending",
            "closure_reason": p.closure_reason,
            "note": p.note.expose(),
            "requested_by": p.requested_by,
            "requested_at": at(p.requested_at),
        })),
        "legal_hold": casework.legal_hold.as_ref().map(|h| json!({
            "reason": h.reason,
            "note": h.note.as_ref().map(|n| n.expose().to_owned()),
            "set_by": h.decided_by,
            "set_at": at(h.decided_at),
        })),
    })
}

fn invalid(code: &'static str, problems: &[crate::cases::FieldError]) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn note(raw: Option<&str>) -> Result<Option<crate::crypto::envelope::SecretText>, ApiError> {
    crate::cases::lifecycle::note_text(raw).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            format!(
                "`note` is longer than {} characters.",
                crate::cases::lifecycle::NOTE_MAX_CHARS
            ),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A focal point's user id, or null to leave the case unassigned.
    assignee: Option<String>,
    version: i32,
}

async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<web::Json<CaseSummary>, ApiError> {
    let id = path.into_inner();
    let change = Assignment::parse(body.assignee.as_deref(), body.version).map_err(case_error)?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseAssign, &id)?;
        let case = assignment::assign(conn, &context(state), &capability, &id, &change)
            .map_err(case_error)?;
        Ok(web::Json(CaseSummary::from(&case)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequestBody {
    version: i32,
    closure_reason: String,
    note: String,
}

#[derive(Serialize)]
pub struct ClosureRequestDto {
    id: String,
    case_id: String,
    status: String,
    closure_reason: String,
    requested_by: String,
    requested_at: String,
}

async fn request_closure(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<ClosureRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let closure_reason =
        ClosureReason::parse(&body.closure_reason, &state.taxonomy).map_err(|rule| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_closure_reason",
                format!("`closure_reason`: {rule}"),
            )
        })?;
    let note = note(Some(&body.note))?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            "`note` is required: say why the case can close.",
        )
    })?;
    let asked = ClosureRequest {
        expected_version: body.version,
        closure_reason,
        note,
    };
    let row = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        approval::request(conn, &context(state), &capability, &id, &asked).map_err(case_error)
    })
    .await?;
    Ok(HttpResponse::Created().json(ClosureRequestDto {
        id: row.id,
        case_id: row.case_id,
        status: row.status,
        closure_reason: row.closure_reason,
        requested_by: row.requested_by,
        requested_at: at(row.requested_at),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// The request decided on (`casework.closure_request.id` of the case).
    request_id: String,
    version: i32,
    #[serde(default)]
    note: Option<String>,
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: String,
    body: DecisionBody,
    approve: bool,
) -> Result<web::Json<CaseSummary>, ApiError> {
    let note = note(body.note.as_deref())?;
    if !approve && note.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            "`note` is required: say what must happen before the case can close.",
        ));
    }
    let decision = Decision {
        request_id: body.request_id,
        expected_version: body.version,
        approve,
        note,
    };
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseApproveClosure, &id)?;
        let case = approval::decide(conn, &context(state), &capability, &id, &decision)
            .map_err(case_error)?;
        Ok(web::Json(CaseSummary::from(&case)))
    })
    .await
}

async fn approve_closure(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<web::Json<CaseSummary>, ApiError> {
    decide(state, caller, path.into_inner(), body, true).await
}

async fn return_closure(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<web::Json<CaseSummary>, ApiError> {
    decide(state, caller, path.into_inner(), body, false).await
}

#[derive(Serialize)]
pub struct HoldDto {
    case_id: String,
    legal_hold: bool,
    /// The latest setting or lifting: its reason code, by whom, when.
    latest: Option<Value>,
    content_destroyed: bool,
}

impl From<HoldStatus> for HoldDto {
    fn from(status: HoldStatus) -> Self {
        Self {
            case_id: status.case_id,
            legal_hold: status.held,
            latest: status
                .latest
                .map(|(reason, by, when)| json!({"reason": reason, "by": by, "at": at(when)})),
            content_destroyed: status.content_destroyed,
        }
    }
}

async fn hold_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<HoldDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseLegalHold, &id)?;
        let status = legal_hold::status(conn, &capability, &id).map_err(case_error)?;
        Ok(web::Json(HoldDto::from(status)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// True to set the hold, false to lift it.
    held: bool,
    /// A code of `legal_hold_reason` (set) or `legal_hold_lift_reason` (lift).
    reason: String,
    note: String,
}

async fn change_hold(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<HoldBody>,
) -> Result<web::Json<HoldDto>, ApiError> {
    let id = path.into_inner();
    let change = HoldChange::parse(body.held, &body.reason, &body.note, &state.taxonomy)
        .map_err(|problems| invalid("invalid_legal_hold", &problems))?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseLegalHold, &id)?;
        let status = legal_hold::change(conn, &context(state), &capability, &id, &change).map_err(
            |error| match error {
                CaseError::Invalid(problems) => ApiError::new(
                    StatusCode::CONFLICT,
                    "legal_hold_unchanged",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                other => case_error(other),
            },
        )?;
        Ok(web::Json(HoldDto::from(status)))
    })
    .await
}
