//! `/api/v1`: transfer of a case to another school (`cases::transfer`).
//!
//! - `POST /cases/{id}/transfers` — the case's focal point starts one;
//! - `GET /cases/{id}/transfers` — the transfers of a case (case readers);
//! - `POST /transfers/{id}/cancel` — the sender cancels an open one;
//! - `GET /transfers/incoming`, `GET /transfers/outgoing` — the caller's
//!   school's lists;
//! - `GET /transfers/{id}` — the receiver opens one (marks it viewed);
//! - `POST /transfers/{id}/accept`, `POST /transfers/{id}/refuse`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::cases::{case_error, context};
use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::FieldError;
use crate::cases::transfer::{
    self, CaseTransferView, IncomingView, OutgoingView, Reason, TransferError, TransferRequest,
};
use crate::db::PooledConnection;
use crate::db::transfers::TransferRow;
use crate::web::AppState;
use crate::web::error::ApiError;

/// The transfer routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cases/{id}/transfers")
            .route(web::post().to(start))
            .route(crate::web::get().to(of_case)),
    )
    .service(web::resource("/transfers/incoming").route(crate::web::get().to(incoming)))
    .service(web::resource("/transfers/outgoing").route(crate::web::get().to(outgoing)))
    .service(web::resource("/transfers/{id}").route(crate::web::get().to(open)))
    .service(web::resource("/transfers/{id}/accept").route(web::post().to(accept)))
    .service(web::resource("/transfers/{id}/refuse").route(web::post().to(refuse)))
    .service(web::resource("/transfers/{id}/cancel").route(web::post().to(cancel)));
}

fn invalid(problems: &[FieldError]) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_transfer",
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// The HTTP answer to each refusal: specific, never repeating a value.
pub(crate) fn transfer_error(error: TransferError) -> ApiError {
    let unprocessable = |code: &'static str, message: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.to_owned())
    };
    match error {
        TransferError::NotFound => ApiError::not_found(),
        TransferError::Invalid(problems) => invalid(&problems),
        TransferError::NotASchool => unprocessable(
            "transfer_target_not_a_school",
            "`to_school_id`: a case can only be transferred to a school, not to an area or an agency.",
        ),
        TransferError::SameSchool => unprocessable(
            "transfer_same_school",
            "`to_school_id`: the case is already at this school.",
        ),
        TransferError::OutsideTree => unprocessable(
            "transfer_target_unknown",
            "`to_school_id`: not a school of your organisation tree.",
        ),
        TransferError::AlreadyInTransfer => ApiError::new(
            StatusCode::CONFLICT,
            "transfer_already_open",
            "This case already has an open transfer; cancel it or wait for the answer.",
        ),
        TransferError::CaseClosed => ApiError::new(
            StatusCode::CONFLICT,
            "case_closed",
            "The case is closed; a closed case is not transferred.",
        ),
        TransferError::NotOpen { status } => ApiError::new(
            StatusCode::CONFLICT,
            "transfer_not_open",
            format!("The transfer is no longer open (it is {status}); nothing was changed."),
        ),
        TransferError::Case(error) => case_error(error),
    }
}

fn at(time: chrono::NaiveDateTime) -> String {
    time.and_utc().to_rfc3339()
}

fn opt_at(time: Option<chrono::NaiveDateTime>) -> Option<String> {
    time.map(at)
}

/// A transfer's state, as every view shows it.
#[derive(Serialize)]
pub struct TransferState {
    id: String,
    status: String,
    version: i32,
    requested_at: String,
    answer_by: String,
    viewed_at: Option<String>,
    answered_at: Option<String>,
}

impl From<&TransferRow> for TransferState {
    fn from(row: &TransferRow) -> Self {
        Self {
            id: row.id.clone(),
            status: row.status.clone(),
            version: row.version,
            requested_at: at(row.requested_at),
            answer_by: at(row.answer_by),
            viewed_at: opt_at(row.viewed_at),
            answered_at: opt_at(row.answered_at),
        }
    }
}

/// What the receiving school sees.
#[derive(Serialize)]
pub struct IncomingDto {
    #[serde(flatten)]
    state: TransferState,
    case_reference: String,
    from_school_id: String,
    from_school: String,
    risk_level: String,
    incident_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&IncomingView> for IncomingDto {
    fn from(view: &IncomingView) -> Self {
        Self {
            state: TransferState::from(&view.transfer),
            case_reference: view.case_reference.clone(),
            from_school_id: view.transfer.from_school_id.clone(),
            from_school: view.from_school.clone(),
            risk_level: view.risk_level.clone(),
            incident_types: view.incident_types.clone(),
            reason: view.reason.as_ref().map(|r| r.expose().to_owned()),
        }
    }
}

/// The sender's list.
#[derive(Serialize)]
pub struct OutgoingDto {
    #[serde(flatten)]
    state: TransferState,
    case_id: String,
    case_reference: String,
    to_school_id: String,
    to_school: String,
}

impl From<&OutgoingView> for OutgoingDto {
    fn from(view: &OutgoingView) -> Self {
        Self {
            state: TransferState::from(&view.transfer),
            case_id: view.transfer.case_id.clone(),
            case_reference: view.case_reference.clone(),
            to_school_id: view.transfer.to_school_id.clone(),
            to_school: view.to_school.clone(),
        }
    }
}

/// A transfer on its case.
#[derive(Serialize)]
pub struct CaseTransferDto {
    #[serde(flatten)]
    state: TransferState,
    case_id: String,
    from_school_id: String,
    from_school: String,
    to_school_id: String,
    to_school: String,
    reason: String,
    answer: Option<String>,
}

impl From<&CaseTransferView> for CaseTransferDto {
    fn from(view: &CaseTransferView) -> Self {
        Self {
            state: TransferState::from(&view.transfer),
            case_id: view.transfer.case_id.clone(),
            from_school_id: view.transfer.from_school_id.clone(),
            from_school: view.from_school.clone(),
            to_school_id: view.transfer.to_school_id.clone(),
            to_school: view.to_school.clone(),
            reason: view.reason.expose().to_owned(),
            answer: view.answer.as_ref().map(|a| a.expose().to_owned()),
        }
    }
}

/// The answer to a start, a cancel or a refusal.
#[derive(Serialize)]
pub struct TransferDto {
    #[serde(flatten)]
    state: TransferState,
    case_id: String,
    from_school_id: String,
    to_school_id: String,
}

impl From<&TransferRow> for TransferDto {
    fn from(row: &TransferRow) -> Self {
        Self {
            state: TransferState::from(row),
            case_id: row.case_id.clone(),
            from_school_id: row.from_school_id.clone(),
            to_school_id: row.to_school_id.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    to_school_id: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefuseBody {
    reason: String,
}

/// The capability to answer transfer `id` (the receiving school's focal
/// points). An unknown transfer is refused like a forbidden one, audited.
pub(crate) fn may_answer(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::authz::capability::Capability, ApiError> {
    let school = crate::db::transfers::find(conn, id)
        .map_err(crate::db::DbError::Query)?
        .map_or_else(|| id.to_owned(), |row| row.to_school_id);
    Ok(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::CaseTransferAnswer,
        &school,
    )?)
}

async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let request =
        TransferRequest::parse(&body.to_school_id, Some(&body.reason)).map_err(|p| invalid(&p))?;
    let row = blocking(&state, move |conn, state| {
        let capability = super::cases::may(conn, state, &caller, Action::CaseTransfer, &id)?;
        transfer::start(conn, &context(state), &capability, &id, &request).map_err(transfer_error)
    })
    .await?;
    Ok(HttpResponse::Created().json(TransferDto::from(&row)))
}

async fn of_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<CaseTransferDto>>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = super::cases::may(conn, state, &caller, Action::CaseRead, &id)?;
        let views =
            transfer::of_case(conn, &context(state), &capability, &id).map_err(transfer_error)?;
        Ok(web::Json(views.iter().map(CaseTransferDto::from).collect()))
    })
    .await
}

async fn incoming(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<IncomingDto>>, ApiError> {
    blocking(&state, move |conn, state| {
        let school = caller.actor().org_id;
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseTransferAnswer,
            &school,
        )?;
        let views = transfer::incoming(conn, &capability, &school).map_err(transfer_error)?;
        Ok(web::Json(views.iter().map(IncomingDto::from).collect()))
    })
    .await
}

async fn outgoing(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<OutgoingDto>>, ApiError> {
    blocking(&state, move |conn, state| {
        let school = caller.actor().org_id;
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseList,
            &school,
        )?;
        let views = transfer::outgoing(conn, &capability, &school).map_err(transfer_error)?;
        Ok(web::Json(views.iter().map(OutgoingDto::from).collect()))
    })
    .await
}

async fn open(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<IncomingDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = may_answer(conn, state, &caller, &id)?;
        let view =
            transfer::open(conn, &context(state), &capability, &id).map_err(transfer_error)?;
        Ok(web::Json(IncomingDto::from(&view)))
    })
    .await
}

/// The answer to an acceptance: the transfer and where the case is now.
#[derive(Serialize)]
pub struct AcceptedDto {
    #[serde(flatten)]
    transfer: TransferDto,
    case: super::cases::CaseSummary,
}

async fn accept(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<AcceptedDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = may_answer(conn, state, &caller, &id)?;
        let (row, case) =
            transfer::accept(conn, &context(state), &capability, &id).map_err(transfer_error)?;
        Ok(web::Json(AcceptedDto {
            transfer: TransferDto::from(&row),
            case: super::cases::CaseSummary::from(&case),
        }))
    })
    .await
}

async fn refuse(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RefuseBody>,
) -> Result<web::Json<TransferDto>, ApiError> {
    let id = path.into_inner();
    let reason = Reason::parse(Some(&body.reason), "reason").map_err(|p| invalid(&[p]))?;
    blocking(&state, move |conn, state| {
        let capability = may_answer(conn, state, &caller, &id)?;
        let row = transfer::refuse(conn, &context(state), &capability, &id, &reason)
            .map_err(transfer_error)?;
        Ok(web::Json(TransferDto::from(&row)))
    })
    .await
}

async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TransferDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let case_id = crate::db::transfers::find(conn, &id)
            .map_err(crate::db::DbError::Query)?
            .map_or_else(|| id.clone(), |row| row.case_id);
        let capability = super::cases::may(conn, state, &caller, Action::CaseTransfer, &case_id)?;
        let row =
            transfer::cancel(conn, &context(state), &capability, &id).map_err(transfer_error)?;
        Ok(web::Json(TransferDto::from(&row)))
    })
    .await
}
