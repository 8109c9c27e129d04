//! Referral endpoints: suggestions and sending (focal point), the inbox and
//! answers (agency officer), withdrawal and one-time links (focal point),
//! opening a link (a partner without an account), escalations.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cases::{NoteBody, case_error, context, may};
use super::{JsonBody, blocking};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::crypto::envelope::SecretText;
use crate::db::referrals::{self as table, EscalationRow, OPEN_STATUSES};
use crate::domain::org::AgencyType;
use crate::referrals::{self, escalation, links, view};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::extract::request_context;

/// The referral routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cases/{id}/suggestions").route(crate::web::get().to(suggestions)))
        .service(
            web::resource("/cases/{id}/suggestions/{agency_type}/skip").route(web::post().to(skip)),
        )
        .service(web::resource("/cases/{id}/referrals").route(web::post().to(send)))
        .service(web::resource("/referrals").route(crate::web::get().to(inbox)))
        .service(web::resource("/referrals/{id}").route(crate::web::get().to(read)))
        .service(web::resource("/referrals/{id}/answers").route(web::post().to(answer)))
        .service(web::resource("/referrals/{id}/notes").route(web::post().to(service_note)))
        .service(web::resource("/referrals/{id}/withdraw").route(web::post().to(withdraw)))
        .service(web::resource("/referrals/{id}/links").route(web::post().to(create_link)))
        .service(
            web::resource("/referrals/{id}/links/{link_id}").route(web::delete().to(revoke_link)),
        )
        .service(web::resource("/partner-links/open").route(web::post().to(open_link)))
        .service(web::resource("/escalations").route(crate::web::get().to(escalations)));
}

fn referral_capability(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    id: &str,
) -> Result<crate::authz::capability::Capability, ApiError> {
    Ok(state
        .authz
        .check_referral(conn, &caller.actor(), &caller.request, action, id)?
        .0)
}

#[derive(Serialize)]
pub struct SuggestionDto {
    agency_type: String,
    kind: String,
    need: String,
    profile: String,
    fields: Vec<String>,
    send_within: String,
    acknowledge_within: String,
    send_by: String,
    state: String,
    referral_ids: Vec<String>,
    rules: Vec<String>,
    sources: Vec<String>,
    /// Agencies of this type the case's school can send to.
    agencies: Vec<AgencyDto>,
}

#[derive(Serialize)]
pub struct AgencyDto {
    id: String,
    code: String,
    name: String,
}

async fn suggestions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<SuggestionDto>>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::ReferralSend, &id)?;
        let list =
            referrals::suggestions(conn, &context(state), &capability, &id).map_err(case_error)?;
        let agencies = crate::db::organisations::all(conn).map_err(crate::db::DbError::Query)?;
        Ok(web::Json(
            list.into_iter()
                .map(|s| {
                    let agency_type = s.suggestion.agency_type.as_str().to_owned();
                    SuggestionDto {
                        fields: state
                            .protocol
                            .profile(&s.suggestion.profile)
                            .map(|p| p.fields.iter().cloned().collect())
                            .unwrap_or_default(),
                        kind: s.suggestion.kind.as_str().to_owned(),
                        need: s.suggestion.need.as_str().to_owned(),
                        profile: s.suggestion.profile.clone(),
                        send_within: s.suggestion.send_within.to_string(),
                        acknowledge_within: s.suggestion.acknowledge_within.to_string(),
                        send_by: s.send_by.and_utc().to_rfc3339(),
                        state: s.state.to_owned(),
                        referral_ids: s.referral_ids,
                        rules: s.suggestion.rules,
                        sources: s.sources,
                        agencies: agencies
                            .iter()
                            .filter(|o| {
                                o.kind == "agency"
                                    && o.agency_type.as_deref() == Some(agency_type.as_str())
                            })
                            .map(|o| AgencyDto {
                                id: o.id.clone(),
                                code: o.code.clone(),
                                name: o.name.clone(),
                            })
                            .collect(),
                        agency_type,
                    }
                })
                .collect(),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn skip(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<SkipBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, agency_type) = path.into_inner();
    let agency_type = AgencyType::parse(&agency_type).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_agency_type",
            format!("`agency_type`: {e}"),
        )
    })?;
    blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::ReferralSend, &id)?;
        referrals::skip(
            conn,
            &context(state),
            &capability,
            &id,
            agency_type,
            body.reason.as_deref(),
        )
        .map_err(case_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    agency_id: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn send(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SendBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let referral = blocking(&state, move |conn, state| {
        let capability = may(conn, state, &caller, Action::ReferralSend, &id)?;
        // Whether this caller may override a missing consent on this case;
        // asked only when an override is offered (a refusal is audited).
        let may_override = body.override_reason.is_some()
            && state
                .authz
                .check_case(
                    conn,
                    &caller.actor(),
                    &caller.request,
                    Action::ReferralOverrideConsent,
                    &id,
                )
                .is_ok();
        let outgoing = referrals::Outgoing {
            agency_id: body.agency_id,
            note: body
                .note
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .map(SecretText::new),
            override_reason: body.override_reason,
        };
        let row = referrals::send(
            conn,
            &context(state),
            &capability,
            may_override,
            &id,
            &outgoing,
        )
        .map_err(case_error)?;
        Ok(view::summary(&row))
    })
    .await?;
    Ok(HttpResponse::Created().json(referral))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// `open` (default: awaiting the agency) or `all`.
    #[serde(default)]
    status: Option<String>,
}

#[derive(Serialize)]
pub struct InboxItem {
    #[serde(flatten)]
    referral: Value,
    /// The acknowledgement deadline has passed without an answer.
    overdue: bool,
}

async fn inbox(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InboxQuery>,
) -> Result<web::Json<Vec<InboxItem>>, ApiError> {
    let statuses: &[&str] = match query.status.as_deref() {
        None | Some("open") => OPEN_STATUSES,
        Some("all") => &[
            "sent",
            "acknowledged",
            "accepted",
            "declined",
            "in_service",
            "completed",
            "withdrawn",
        ],
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`status` must be `open` or `all`.",
            ));
        }
    };
    blocking(&state, move |conn, state| {
        let org_id = caller.user.org_id.clone();
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralList,
            &org_id,
        )?;
        if !capability.allows(Action::ReferralList, &org_id) {
            return Err(ApiError::not_found());
        }
        let now = state.clock.now_naive();
        let rows = table::inbox(conn, &org_id, statuses, 500).map_err(crate::db::DbError::Query)?;
        Ok(web::Json(
            rows.iter()
                .map(|row| InboxItem {
                    referral: view::summary(row),
                    overdue: row.status == "sent" && row.acknowledge_by < now,
                })
                .collect(),
        ))
    })
    .await
}

async fn read(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Value>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralRead, &id)?;
        Ok(web::Json(
            view::read(conn, &context(state), &capability, &id).map_err(case_error)?,
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    to: String,
    version: i32,
    #[serde(default)]
    text: Option<String>,
    /// A decline's coded reason (taxonomy `decline_reason`), optional.
    #[serde(default)]
    reason: Option<String>,
}

async fn answer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<AnswerBody>,
) -> Result<web::Json<Value>, ApiError> {
    let id = path.into_inner();
    const ANSWERS: &[&str] = &[
        "acknowledged",
        "accepted",
        "declined",
        "in_service",
        "completed",
    ];
    if !ANSWERS.contains(&body.to.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transition",
            format!("`to` must be one of: {}.", ANSWERS.join(", ")),
        ));
    }
    blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralRespond, &id)?;
        let row = referrals::answer(
            conn,
            &context(state),
            &capability,
            &id,
            &referrals::Answer {
                to: body.to,
                expected_version: body.version,
                text: body.text,
                reason: body.reason,
            },
        )
        .map_err(case_error)?;
        Ok(web::Json(view::summary(&row)))
    })
    .await
}

async fn service_note(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralRespond, &id)?;
        referrals::service_note(conn, &context(state), &capability, &id, &body.note)
            .map_err(case_error)
    })
    .await?;
    Ok(HttpResponse::Created().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    version: i32,
    reason: String,
}

async fn withdraw(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<WithdrawBody>,
) -> Result<web::Json<Value>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralManage, &id)?;
        let row = referrals::withdraw(
            conn,
            &context(state),
            &capability,
            &id,
            body.version,
            Some(&body.reason),
        )
        .map_err(case_error)?;
        Ok(web::Json(view::summary(&row)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    email: String,
}

#[derive(Serialize)]
pub struct LinkDto {
    id: String,
    /// Shown once: pass it to the partner by another channel (phone, SMS).
    code: String,
    expires_at: String,
}

async fn create_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<LinkBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let link = blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralManage, &id)?;
        let link = links::create(conn, &context(state), &capability, &id, &body.email)
            .map_err(case_error)?;
        Ok(LinkDto {
            id: link.id,
            code: link.code,
            expires_at: link.expires_at.and_utc().to_rfc3339(),
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(link))
}

async fn revoke_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, link_id) = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = referral_capability(conn, state, &caller, Action::ReferralManage, &id)?;
        links::revoke(conn, &context(state), &capability, &id, &link_id).map_err(case_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLinkBody {
    token: String,
    code: String,
}

/// The one answer to a link that did not open — an unknown token, a real
/// one with a wrong code, an expired, used or withdrawn one — so that the
/// answer never tells a guessed token from a real one.
fn link_refused() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_link",
        "This link and code did not open a referral. Check the code the school gave you; a link stops working after 5 wrong codes, when it expires, once it is used or when the referral is withdrawn. Ask the school for a new one.",
    )
}

async fn open_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<OpenLinkBody>,
) -> Result<web::Json<Value>, ApiError> {
    if body.token.len() > 200 || body.code.len() > 32 {
        return Err(link_refused());
    }
    let request = request_context(&req);
    blocking(&state, move |conn, state| {
        match links::open(conn, &context(state), &request, &body.token, &body.code)
            .map_err(case_error)?
        {
            Ok(view) => Ok(web::Json(view)),
            Err(links::Refusal::WrongCode | links::Refusal::NotValid) => Err(link_refused()),
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationQuery {
    #[serde(default)]
    org_id: Option<String>,
    /// `open` (default) or `all`.
    #[serde(default)]
    status: Option<String>,
}

pub fn escalation_dto(row: &EscalationRow) -> Value {
    json!({
        "id": row.id,
        "case_id": row.case_id,
        "deadline_id": row.deadline_id,
        "school_id": row.school_id,
        "area_id": row.area_id,
        "level": row.level,
        "reason": row.reason,
        "raised_at": row.raised_at.and_utc().to_rfc3339(),
        "resolved_at": row.resolved_at.map(|t| t.and_utc().to_rfc3339()),
    })
}

async fn escalations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<EscalationQuery>,
) -> Result<web::Json<Vec<Value>>, ApiError> {
    let query = query.into_inner();
    let open_only = match query.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`status` must be `open` or `all`.",
            ));
        }
    };
    blocking(&state, move |conn, state| {
        let org_id = query.org_id.unwrap_or_else(|| caller.user.org_id.clone());
        let capability = state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::EscalationList,
            &org_id,
        )?;
        let rows = escalation::list(conn, &capability, &org_id, open_only).map_err(case_error)?;
        Ok(web::Json(rows.iter().map(escalation_dto).collect()))
    })
    .await
}
