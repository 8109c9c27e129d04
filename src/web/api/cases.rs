//! `/api/v1/cases`: intake, reading, listing, break-glass.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::input::RawCase;
use crate::cases::{self, CaseContext, CaseError, CaseInput, CaseView};
use crate::crypto::envelope::SecretText;
use crate::db::cases::CaseRow;
use crate::db::{DbError, PooledConnection};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The case routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cases")
            .route(web::post().to(create_case))
            .route(crate::web::get().to(list_cases)),
    )
    .service(
        web::resource("/cases/{id}")
            .route(crate::web::get().to(read_case))
            .route(web::patch().to(update_case)),
    )
    .service(
        web::resource("/cases/{id}/break-glass")
            .route(web::post().to(break_glass))
            .route(crate::web::get().to(super::break_glass::of_case)),
    )
    .service(
        web::resource("/cases/{id}/pupil-chronology").route(crate::web::get().to(pupil_chronology)),
    )
    .service(web::resource("/cases/{id}/transitions").route(web::post().to(transition)))
    .service(web::resource("/cases/{id}/notes").route(web::post().to(add_note)))
    .service(web::resource("/cases/{id}/consent").route(web::post().to(record_consent)))
    .service(web::resource("/cases/{id}/incidents").route(web::post().to(add_incident)))
    .service(web::resource("/cases/{id}/perpetrators").route(web::post().to(add_perpetrator)))
    // The path must stay `middleware::UPLOAD_ROUTES`' (the upload limit).
    .service(web::resource("/cases/{id}/attachments").route(web::post().to(upload_attachment)))
    .service(
        web::resource("/cases/{id}/attachments/{attachment_id}")
            .route(crate::web::get().to(download_attachment)),
    );
}

/// Asks the policy whether the caller may do `action` on case `id`.
pub(super) fn may(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    id: &str,
) -> Result<crate::authz::capability::Capability, ApiError> {
    Ok(state
        .authz
        .check_case(conn, &caller.actor(), &caller.request, action, id)?
        .0)
}

/// The header a client sends so a retried submission makes no second case.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(super) fn context(state: &AppState) -> CaseContext<'_> {
    state.case_context()
}

pub(super) fn case_error(error: CaseError) -> ApiError {
    match error {
        CaseError::NotFound => ApiError::not_found(),
        CaseError::ContentDestroyed => ApiError::new(
            StatusCode::GONE,
            "content_destroyed",
            "The content of this case was destroyed under the retention policy; its coded fields remain for statistics.",
        ),
        CaseError::IdempotencyConflict => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key for a new case.",
        ),
        CaseError::Invalid(problems) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_case",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        CaseError::Stale { current } => ApiError::new(
            StatusCode::CONFLICT,
            "stale_version",
            format!(
                "The case changed since you loaded it (it is now version {current}). Reload it and try again; nothing was changed."
            ),
        ),
        CaseError::InvalidTransition { from, allowed } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transition",
            format!(
                "`to`: a {from} case can only go to: {}.",
                allowed.join(", ")
            ),
        ),
        CaseError::ClosureNeedsApproval => ApiError::new(
            StatusCode::CONFLICT,
            "closure_needs_approval",
            "Closing this case (high risk, or a statutory report was made) needs a second person's approval: request it with POST /api/v1/cases/{id}/closure-request. Nothing was changed.",
        ),
        CaseError::ClosureAwaitingApproval => ApiError::new(
            StatusCode::CONFLICT,
            "closure_awaiting_approval",
            "A closure of this case already awaits approval: another focal point of the school approves or returns it. Nothing was changed.",
        ),
        CaseError::OwnClosureRequest => ApiError::new(
            StatusCode::FORBIDDEN,
            "own_closure_request",
            "You asked for this closure: another focal point of the school must approve or return it. Nothing was changed.",
        ),
        CaseError::Db(error) => error.into(),
        other => ApiError::internal(anyhow::anyhow!(other.to_string())),
    }
}

#[derive(Serialize)]
pub struct CaseSummary {
    id: String,
    status: String,
    version: i32,
    risk_level: String,
    survivor_sex: String,
    age_band: Option<String>,
    under_16: Option<bool>,
    under_18: Option<bool>,
    disability: bool,
    school_level: String,
    created_at: String,
    updated_at: String,
    /// The assigned focal point's user id (none: unassigned).
    assigned_to: Option<String>,
    /// Retention keeps the content while a legal hold is in force.
    legal_hold: bool,
}

impl From<&CaseRow> for CaseSummary {
    fn from(row: &CaseRow) -> Self {
        Self {
            id: row.id.clone(),
            status: row.status.clone(),
            version: row.version,
            risk_level: row.risk_level.clone(),
            survivor_sex: row.survivor_sex.clone(),
            age_band: row.age_band.clone(),
            under_16: row.under_16,
            under_18: row.under_18,
            disability: row.disability,
            school_level: row.school_level.clone(),
            created_at: row.created_at.and_utc().to_rfc3339(),
            updated_at: row.updated_at.and_utc().to_rfc3339(),
            assigned_to: row.assigned_to.clone(),
            legal_hold: row.legal_hold,
        }
    }
}

#[derive(Serialize)]
pub struct CreatedCase {
    #[serde(flatten)]
    case: CaseSummary,
    /// Other open cases of the same pupil at this school.
    open_cases_for_pupil: Vec<String>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "`Idempotency-Key` must be 1 to 128 visible ASCII characters (a UUID is ideal).",
        )
    })
}

async fn create_case(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    JsonBody(raw): JsonBody<RawCase>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(req.headers())?;
    let created = blocking(&state, move |conn, state| {
        let school_id = caller.user.org_id.clone();
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseCreate,
            &school_id,
        )?;
        let input = CaseInput::parse(&raw, &state.taxonomy, &school_id)
            .map_err(|p| case_error(CaseError::Invalid(p)))?;
        let mut created = cases::create(conn, &context(state), &capability, &input, key.as_deref())
            .map_err(case_error)?;
        // The pupil's other open cases are named only to those who may list
        // the school's cases: a reporter learns nothing of them.
        if !state
            .authz
            .may(conn, &caller.actor(), Action::CaseList, &school_id)?
        {
            created.open_cases_for_pupil.clear();
        }
        Ok(created)
    })
    .await?;
    let location = format!("/api/v1/cases/{}", created.case.id);
    let mut response = HttpResponse::Created().json(CreatedCase {
        case: CaseSummary::from(&created.case),
        open_cases_for_pupil: created.open_cases_for_pupil,
    });
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if created.replayed {
        response.headers_mut().insert(
            header::HeaderName::from_static("idempotency-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

fn filter_error(message: String) -> ApiError {
    ApiError::bad_request("invalid_filter", message)
}

/// `GET /cases`: one page of the school's cases, newest first, filtered
/// (`cases::search`). The body is the array it always was; the total is in
/// `X-Total-Count` and the next page, when there is one, in a `Link`
/// header (`rel="next"`).
async fn list_cases(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<cases::search::RawCaseSearch>,
) -> Result<HttpResponse, ApiError> {
    let search = cases::search::CaseSearch::parse(
        &query.into_inner(),
        &state.taxonomy,
        cases::search::DEFAULT_PAGE_SIZE,
    )
    .map_err(|problems| {
        filter_error(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let filter = search.filter(&caller.user.id);
    let (limit, offset) = (search.limit, search.offset());
    let (rows, total) = blocking(&state, move |conn, state| {
        let school_id = caller.user.org_id.clone();
        state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseList,
            &school_id,
        )?;
        let rows = crate::db::cases::page_of_school(conn, &school_id, &filter, limit, offset)
            .map_err(DbError::from)?;
        let total =
            crate::db::cases::count_of_school(conn, &school_id, &filter).map_err(DbError::from)?;
        Ok((rows, total))
    })
    .await?;
    let mut response = HttpResponse::Ok();
    response.insert_header(("x-total-count", total.to_string()));
    if offset + limit < total {
        let next = format!(
            "</api/v1/cases?{}>; rel=\"next\"",
            search.query_for_page(search.page + 1, cases::search::DEFAULT_PAGE_SIZE)
        );
        response.insert_header((header::LINK, next));
    }
    Ok(response.json(rows.iter().map(CaseSummary::from).collect::<Vec<_>>()))
}

#[derive(Serialize)]
pub struct PupilDto {
    name: String,
    date_of_birth: String,
    sex: String,
    class: Option<String>,
    disability: bool,
    guardian: Option<String>,
    contact: Option<String>,
}

#[derive(Serialize)]
pub struct IncidentDto {
    id: String,
    #[serde(rename = "type")]
    incident_type: String,
    csa_subtype: Option<String>,
    contexts: Vec<String>,
    date: String,
    incident_month: String,
    reporting_delay: String,
    location_type: String,
    perpetrator_relation: String,
    narrative: String,
}

#[derive(Serialize)]
pub struct ChronologyDto {
    kind: String,
    from_status: Option<String>,
    to_status: Option<String>,
    note: Option<String>,
    author_id: String,
    at: String,
}

#[derive(Serialize)]
pub struct ConsentDto {
    id: String,
    given_by: String,
    services: bool,
    reporting: bool,
    disclosure: bool,
    disclosure_to: Vec<String>,
    legal_basis: String,
    withheld: Option<String>,
    recorded_by: String,
    recorded_at: String,
}

fn consent_dto(row: crate::db::cases::ConsentRow, withheld: Option<&SecretText>) -> ConsentDto {
    ConsentDto {
        id: row.id,
        given_by: row.given_by,
        services: row.services,
        reporting: row.reporting,
        disclosure: row.disclosure,
        disclosure_to: row
            .disclosure_to
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        legal_basis: row.legal_basis,
        withheld: withheld.map(reveal),
        recorded_by: row.recorded_by,
        recorded_at: row.recorded_at.and_utc().to_rfc3339(),
    }
}

#[derive(Serialize)]
pub struct CaseDto {
    #[serde(flatten)]
    case: CaseSummary,
    school: String,
    pupil: PupilDto,
    incidents: Vec<IncidentDto>,
    chronology: Vec<ChronologyDto>,
    consent: Option<ConsentDto>,
    perpetrators: Vec<PerpetratorDto>,
    attachments: Vec<AttachmentDto>,
    /// Referrals of the case (no case content; answers are in the chronology).
    referrals: Vec<serde_json::Value>,
    /// Every clock of the case, with its rule and legal source.
    deadlines: Vec<serde_json::Value>,
    escalations: Vec<serde_json::Value>,
    /// Case-work: the assignee, a closure awaiting approval, the legal hold.
    casework: serde_json::Value,
}

#[derive(Serialize)]
pub struct AttachmentDto {
    id: String,
    content_type: String,
    size_bytes: i64,
    name: Option<String>,
    uploaded_at: String,
}

#[derive(Serialize)]
pub struct PerpetratorDto {
    id: String,
    incident_id: Option<String>,
    relation: String,
    sex: String,
    age_group: String,
    identity: Option<String>,
    description: Option<String>,
}

fn reveal(text: &SecretText) -> String {
    text.expose().to_owned()
}

impl From<CaseView> for CaseDto {
    fn from(view: CaseView) -> Self {
        Self {
            case: CaseSummary::from(&view.case),
            school: view.school_code,
            pupil: PupilDto {
                name: reveal(&view.pupil.name),
                date_of_birth: reveal(&view.pupil.date_of_birth),
                sex: view.case.survivor_sex.clone(),
                class: view.pupil.class.as_ref().map(reveal),
                disability: view.case.disability,
                guardian: view.pupil.guardian.as_ref().map(reveal),
                contact: view.pupil.contact.as_ref().map(reveal),
            },
            incidents: view
                .incidents
                .into_iter()
                .map(|i| IncidentDto {
                    id: i.row.id,
                    incident_type: i.row.incident_type,
                    csa_subtype: i.row.csa_subtype,
                    contexts: i
                        .row
                        .contexts
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    date: reveal(&i.date),
                    incident_month: i.row.incident_month,
                    reporting_delay: i.row.reporting_delay,
                    location_type: i.row.location_type,
                    perpetrator_relation: i.row.perpetrator_relation,
                    narrative: reveal(&i.narrative),
                })
                .collect(),
            chronology: view
                .chronology
                .into_iter()
                .map(|c| ChronologyDto {
                    kind: c.row.kind,
                    from_status: c.row.from_status,
                    to_status: c.row.to_status,
                    note: c.note.as_ref().map(reveal),
                    author_id: c.row.author_id,
                    at: c.row.created_at.and_utc().to_rfc3339(),
                })
                .collect(),
            consent: view
                .consent
                .map(|(row, withheld)| consent_dto(row, withheld.as_ref())),
            perpetrators: view
                .perpetrators
                .into_iter()
                .map(|p| PerpetratorDto {
                    id: p.row.id,
                    incident_id: p.row.incident_id,
                    relation: p.row.relation,
                    sex: p.row.sex,
                    age_group: p.row.age_group,
                    identity: p.identity.as_ref().map(reveal),
                    description: p.description.as_ref().map(reveal),
                })
                .collect(),
            attachments: view
                .attachments
                .into_iter()
                .map(|a| AttachmentDto {
                    id: a.meta.id,
                    content_type: a.meta.content_type,
                    size_bytes: a.meta.size_bytes,
                    name: a.name.as_ref().map(reveal),
                    uploaded_at: a.meta.uploaded_at.and_utc().to_rfc3339(),
                })
                .collect(),
            referrals: Vec::new(),
            deadlines: Vec::new(),
            escalations: Vec::new(),
            casework: serde_json::Value::Null,
        }
    }
}

async fn read_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<CaseDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseRead, &id)?;
        let file = cases::read_file(conn, &context(state), &capability, &id).map_err(case_error)?;
        let mut dto = CaseDto::from(file.view);
        dto.referrals = file
            .referrals
            .iter()
            .map(crate::referrals::view::summary)
            .collect();
        dto.deadlines = file
            .deadlines
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "kind": d.kind,
                    "subject": d.subject,
                    "rule": d.rule,
                    "source": d.source,
                    "started_at": d.started_at.and_utc().to_rfc3339(),
                    "due_at": d.due_at.and_utc().to_rfc3339(),
                    "met_at": d.met_at.map(|t| t.and_utc().to_rfc3339()),
                    "outcome": d.outcome,
                    "escalation_level": d.level,
                })
            })
            .collect();
        dto.escalations = file
            .escalations
            .iter()
            .map(super::referrals::escalation_dto)
            .collect();
        dto.casework = super::casework::casework_dto(&file.casework);
        Ok(web::Json(dto))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    reason: String,
}

#[derive(Serialize)]
pub struct BreakGlassGrant {
    case_id: String,
    expires_at: String,
}

async fn break_glass(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<BreakGlassBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let reason = cases::BreakGlassReason::parse(&body.reason).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reason",
            e.to_string(),
        )
    })?;
    let grant = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseBreakGlass, &id)?;
        let expires = cases::break_glass(conn, &context(state), &capability, &id, &reason)
            .map_err(case_error)?;
        Ok(BreakGlassGrant {
            case_id: id,
            expires_at: expires.and_utc().to_rfc3339(),
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(grant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: String,
    version: i32,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    closure_reason: Option<String>,
}

fn note_text(note: Option<&str>, field: &str) -> Result<Option<SecretText>, ApiError> {
    cases::lifecycle::note_text(note).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            format!(
                "`{field}` is longer than {} characters.",
                cases::lifecycle::NOTE_MAX_CHARS
            ),
        )
    })
}

async fn transition(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<TransitionBody>,
) -> Result<web::Json<CaseSummary>, ApiError> {
    let id = path.into_inner();
    let change = cases::lifecycle::Transition::parse(
        &body.to,
        body.version,
        body.note.as_deref(),
        body.closure_reason.as_deref(),
        &state.taxonomy,
    )
    .map_err(|problem| {
        use cases::lifecycle::TransitionProblem as P;
        let code = match problem {
            P::UnknownStatus => "invalid_transition",
            P::ClosureReason(_) => "invalid_closure_reason",
            P::NoteTooLong => "invalid_note",
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, problem.to_string())
    })?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let case = cases::lifecycle::transition(conn, &context(state), &capability, &id, &change)
            .map_err(case_error)?;
        Ok(web::Json(CaseSummary::from(&case)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub(super) note: String,
}

async fn add_note(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let note = note_text(Some(&body.note), "note")?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
            "`note` is empty.",
        )
    })?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        cases::lifecycle::add_note(conn, &context(state), &capability, &id, &note)
            .map_err(case_error)
    })
    .await?;
    Ok(HttpResponse::Created().finish())
}

async fn record_consent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(raw): JsonBody<cases::consent::RawConsent>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let input = cases::consent::ConsentInput::parse(&raw, &state.taxonomy)
        .map_err(|p| case_error(CaseError::Invalid(p)))?;
    let consent = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let row = cases::consent::record(conn, &context(state), &capability, &id, &input)
            .map_err(case_error)?;
        let withheld = input.withheld.clone();
        Ok(consent_dto(row, withheld.as_ref()))
    })
    .await?;
    Ok(HttpResponse::Created().json(consent))
}

#[derive(Serialize)]
pub struct AddedIncident {
    id: String,
}

async fn add_incident(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(raw): JsonBody<crate::cases::input::RawIncident>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let incident = cases::IncidentInput::parse(&raw, &state.taxonomy)
        .map_err(|p| case_error(CaseError::Invalid(p)))?;
    let added = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let incident_id = cases::add_incident(conn, &context(state), &capability, &id, &incident)
            .map_err(case_error)?;
        Ok(AddedIncident { id: incident_id })
    })
    .await?;
    Ok(HttpResponse::Created().json(added))
}

async fn add_perpetrator(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(raw): JsonBody<crate::cases::perpetrators::RawPerpetrator>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let input = cases::perpetrators::PerpetratorInput::parse(&raw, &state.taxonomy)
        .map_err(|p| case_error(CaseError::Invalid(p)))?;
    let added = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let created = cases::perpetrators::record(conn, &context(state), &capability, &id, &input)
            .map_err(case_error)?;
        Ok(AddedIncident { id: created })
    })
    .await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    version: i32,
    #[serde(default)]
    risk_level: Option<String>,
    #[serde(default)]
    disability: Option<bool>,
}

async fn update_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<web::Json<CaseSummary>, ApiError> {
    let id = path.into_inner();
    let risk_level = body
        .risk_level
        .as_deref()
        .map(|r| state.taxonomy.code("risk_level", r))
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_case",
                format!("`risk_level` {e}"),
            )
        })?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let change = cases::lifecycle::CodedChange {
            expected_version: body.version,
            risk_level,
            disability: body.disability,
        };
        let case = cases::lifecycle::update_coded(conn, &context(state), &capability, &id, &change)
            .map_err(case_error)?;
        Ok(web::Json(CaseSummary::from(&case)))
    })
    .await
}

/// The header carrying an attachment's file name, percent-encoded UTF-8.
pub const ATTACHMENT_NAME: &str = "x-attachment-name";

async fn upload_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = read_upload(payload, state.settings.attachment_max_bytes).await?;
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let content_type = cases::attachments::sniff(declared, &body).map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_attachment",
            format!("{e}."),
        )
    })?;
    let name = match headers.get(ATTACHMENT_NAME) {
        None => None,
        Some(value) => {
            let raw = value.to_str().ok().unwrap_or_default();
            let decoded = percent_decode(raw).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_name",
                    "`X-Attachment-Name` must be percent-encoded UTF-8.",
                )
            })?;
            Some(cases::attachments::parse_name(&decoded).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_name",
                    format!("{e}."),
                )
            })?)
        }
    };
    let added = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseUpdate, &id)?;
        let attachment = cases::attachments::upload(
            conn,
            &context(state),
            &capability,
            &id,
            content_type,
            name.as_ref(),
            &body,
        )
        .map_err(case_error)?;
        Ok(AddedIncident { id: attachment })
    })
    .await?;
    Ok(HttpResponse::Created().json(added))
}

/// The raw body of an upload, read under the attachment limit (not the
/// general body limit): too large is a 413, a body cut short a 400.
async fn read_upload(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        // `middleware::limit_body` stops a body without a declared length.
        Ok(Err(error))
            if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Ok(Err(_)) => Err(ApiError::for_status(StatusCode::BAD_REQUEST)),
        Err(_too_large) => Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)),
    }
}

fn percent_decode(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(b) = input.next() {
        if b == b'%' {
            let hex = [input.next()?, input.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn download_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = path.into_inner();
    let download = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::CaseRead, &id)?;
        cases::attachments::download(conn, &context(state), &capability, &id, &attachment_id)
            .map_err(case_error)
    })
    .await?;
    attachment_response(&download).map_err(ApiError::internal)
}

/// An attachment as a download: its type, its name (percent-encoded), and a
/// sandbox so that opened in a browser it runs nothing and reaches nothing.
pub(crate) fn attachment_response(
    download: &cases::attachments::Download,
) -> Result<HttpResponse, header::InvalidHeaderValue> {
    let disposition = match &download.name {
        Some(name) => format!(
            "attachment; filename*=UTF-8''{}",
            percent_encode(name.expose())
        ),
        None => "attachment".to_owned(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_str(&download.content_type)?,
        ))
        .insert_header((
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition)?,
        ))
        // Opened in a browser, it runs nothing and reaches nothing.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'"),
        ))
        .body(download.content.expose().to_vec()))
}

/// One entry of `GET /cases/{id}/pupil-chronology`.
#[derive(Serialize)]
pub struct PupilEntryDto {
    case_id: String,
    kind: String,
    from_status: Option<String>,
    to_status: Option<String>,
    note: Option<String>,
    author_id: String,
    at: String,
}

#[derive(Serialize)]
pub struct PupilChronologyDto {
    /// The pupil's cases at the school, this one included, oldest first.
    cases: Vec<CaseSummary>,
    /// Their chronologies merged, oldest first.
    entries: Vec<PupilEntryDto>,
}

/// `GET /cases/{id}/pupil-chronology`: the chronology across the cases of
/// this case's pupil at the school (found by the blind index), for callers
/// who may read every one of them (else 404). Each case's read is audited.
async fn pupil_chronology(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<PupilChronologyDto>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let readable = crate::web::pupil::readable_pupil_cases(conn, state, &caller, &id)
            .map_err(case_error)?
            .ok_or_else(ApiError::not_found)?;
        let cases = readable
            .iter()
            .map(|(_, row)| CaseSummary::from(row))
            .collect();
        let capabilities: Vec<_> = readable
            .into_iter()
            .map(|(capability, row)| (capability, row.id))
            .collect();
        let entries = cases::pupil::chronology(conn, &context(state), &capabilities)
            .map_err(case_error)?
            .into_iter()
            .map(|e| PupilEntryDto {
                kind: e.entry.row.kind,
                from_status: e.entry.row.from_status,
                to_status: e.entry.row.to_status,
                note: e.entry.note.map(|n| n.expose().to_owned()),
                author_id: e.entry.row.author_id,
                at: e.entry.row.created_at.and_utc().to_rfc3339(),
                case_id: e.case_id,
            })
            .collect();
        Ok(web::Json(PupilChronologyDto { cases, entries }))
    })
    .await
}
