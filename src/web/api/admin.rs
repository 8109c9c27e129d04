//! Organisations, accounts and the audit log, for the roles that manage and
//! watch them. Every handler asks `authz` first and acts through the
//! capability it gets; an organisation or account outside the caller's reach
//! answers exactly like one that does not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{JsonBody, blocking};
use crate::authn::accounts::{self, AccountError, NewAccount};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::db::audit::AuditRow;
use crate::db::organisations::{self, OrganisationRow};
use crate::db::{DbError, PooledConnection, users};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, Role};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The routes of organisations, accounts and the audit log, relative to
/// `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/organisations/{code}").route(crate::web::get().to(read_organisation)),
    )
    .service(
        web::resource("/organisations/{code}/users")
            .route(crate::web::get().to(list_users))
            .route(web::post().to(create_user)),
    )
    .service(web::resource("/users/{id}/disable").route(web::post().to(disable_user)))
    .service(web::resource("/users/{id}/reset-mfa").route(web::post().to(reset_mfa)))
    .service(web::resource("/users/{id}/enable").route(web::post().to(enable_user)))
    .service(web::resource("/users/{id}/password-reset").route(web::post().to(password_reset)))
    .service(web::resource("/audit").route(crate::web::get().to(read_audit)))
    .service(web::resource("/audit/verify").route(crate::web::get().to(verify_audit)));
}

fn check(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    org_id: &str,
) -> Result<Capability, ApiError> {
    Ok(state
        .authz
        .check(conn, &caller.actor(), &caller.request, action, org_id)?)
}

fn org_by_code(
    conn: &mut PooledConnection,
    code: &str,
) -> Result<Option<OrganisationRow>, ApiError> {
    let Ok(code) = OrgCode::parse(code) else {
        return Ok(None);
    };
    Ok(organisations::find_by_code(conn, code.as_str()).map_err(DbError::from)?)
}

/// An organisation's id, or a placeholder that no policy can match, so an
/// unknown code is refused (and audited) exactly like a forbidden one.
fn org_id_or_missing(org: Option<&OrganisationRow>) -> String {
    org.map_or_else(
        || "00000000-0000-0000-0000-000000000000".to_owned(),
        |o| o.id.clone(),
    )
}

#[derive(Serialize)]
pub struct OrganisationView {
    id: String,
    code: String,
    kind: String,
    name: String,
    parent_id: Option<String>,
    area_level: Option<String>,
    school_level: Option<String>,
    agency_type: Option<String>,
}

impl From<OrganisationRow> for OrganisationView {
    fn from(row: OrganisationRow) -> Self {
        Self {
            id: row.id,
            code: row.code,
            kind: row.kind,
            name: row.name,
            parent_id: row.parent_id,
            area_level: row.area_level,
            school_level: row.school_level,
            agency_type: row.agency_type,
        }
    }
}

async fn read_organisation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<OrganisationView>, ApiError> {
    let code = path.into_inner();
    blocking(&state, move |conn, state| {
        let org = org_by_code(conn, &code)?;
        check(
            conn,
            state,
            &caller,
            Action::OrgRead,
            &org_id_or_missing(org.as_ref()),
        )?;
        org.map(|o| web::Json(o.into()))
            .ok_or_else(ApiError::not_found)
    })
    .await
}

#[derive(Serialize)]
pub struct UserView {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
    disabled: bool,
    /// Whether the person finished activation (a password and, where the
    /// role needs one, a second factor).
    activated: bool,
    last_sign_in_at: Option<String>,
}

async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<UserView>>, ApiError> {
    let code = path.into_inner();
    blocking(&state, move |conn, state| {
        let org = org_by_code(conn, &code)?;
        check(
            conn,
            state,
            &caller,
            Action::UserList,
            &org_id_or_missing(org.as_ref()),
        )?;
        let org = org.ok_or_else(ApiError::not_found)?;
        let rows = users::in_org(conn, &org.id).map_err(DbError::from)?;
        let states = users::account_states(conn, &rows).map_err(DbError::from)?;
        Ok(web::Json(
            rows.into_iter()
                .zip(states)
                .map(|(u, state)| UserView {
                    user_id: u.id,
                    email: u.email,
                    display_name: u.display_name,
                    role: u.role,
                    disabled: u.disabled_at.is_some(),
                    activated: state.activated,
                    last_sign_in_at: state.last_sign_in.map(|at| at.and_utc().to_rfc3339()),
                })
                .collect(),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    role: String,
    email: String,
    name: String,
}

/// A created account. The activation link went by e-mail to the person
/// (issue 21): the answer says so and never carries it.
#[derive(Serialize)]
pub struct CreatedUser {
    user_id: String,
    email: String,
    role: String,
    org: String,
    #[serde(flatten)]
    sent: EnrolmentSent,
}

/// That a one-time link went to the account's own e-mail address, until
/// when it is valid, and how many of the organisation's other accounts (or
/// the area's auditors) were told.
#[derive(Serialize)]
pub struct EnrolmentSent {
    enrolment: &'static str,
    enrolment_valid_until: String,
    notified: usize,
}

impl From<crate::authn::enrolment::LinkSent> for EnrolmentSent {
    fn from(sent: crate::authn::enrolment::LinkSent) -> Self {
        Self {
            enrolment: "sent_to_account_email",
            enrolment_valid_until: sent.valid_until.and_utc().to_rfc3339(),
            notified: sent.notified,
        }
    }
}

fn account_error(error: AccountError) -> ApiError {
    match error {
        AccountError::EmailTaken => ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "An account with this email already exists.",
        ),
        AccountError::WrongOrgKind { role, expected, .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_organisation_kind",
            format!("`role`: a {role} belongs to a {expected}."),
        ),
        AccountError::Disabled => ApiError::new(
            StatusCode::CONFLICT,
            "account_disabled",
            "The account is disabled; enable it first.",
        ),
        AccountError::NotFound | AccountError::OrgNotFound(_) | AccountError::NotAllowed => {
            ApiError::not_found()
        }
        AccountError::Db(error) => DbError::Query(error).into(),
        other => ApiError::internal(anyhow::anyhow!(other.to_string())),
    }
}

async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let code = path.into_inner();
    let role = Role::parse(&body.role).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
            format!("`role`: {e}"),
        )
    })?;
    let email = EmailAddress::parse(&body.email).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            format!("`email`: {e}"),
        )
    })?;
    let name = DisplayName::parse(&body.name).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            format!("`name`: {e}"),
        )
    })?;
    let email_text = email.as_str().to_owned();
    let created = blocking(&state, move |conn, state| {
        let org = org_by_code(conn, &code)?;
        let capability = check(
            conn,
            state,
            &caller,
            Action::UserCreate,
            &org_id_or_missing(org.as_ref()),
        )?;
        let org = org.ok_or_else(ApiError::not_found)?;
        let sent = crate::authn::enrolment::create_and_send(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &state.authn.issuer,
            NewAccount {
                org: OrgCode::parse(&org.code)
                    .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
                role,
                email,
                name,
                password_hash: None,
                totp_secret: None,
            },
            &capability,
        )
        .map_err(account_error)?;
        Ok(CreatedUser {
            user_id: sent.user_id.clone(),
            email: email_text,
            role: role.as_str().to_owned(),
            org: org.code,
            sent: sent.into(),
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Loads an account and checks `action` on its organisation.
fn account_capability(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    action: Action,
    user_id: &str,
) -> Result<Capability, ApiError> {
    let user = users::find(conn, user_id).map_err(DbError::from)?;
    let capability = check(
        conn,
        state,
        caller,
        action,
        &user
            .as_ref()
            .map_or_else(|| org_id_or_missing(None), |u| u.org_id.clone()),
    )?;
    user.map(|_| capability).ok_or_else(ApiError::not_found)
}

async fn disable_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = account_capability(conn, state, &caller, Action::UserDisable, &id)?;
        accounts::disable(conn, &state.auditor, state.clock.as_ref(), &id, &capability)
            .map_err(account_error)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new second factor: the person sets it up from the link mailed to
/// them; the answer never carries the secret or the link (issue 21).
async fn reset_mfa(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<EnrolmentSent>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = account_capability(conn, state, &caller, Action::UserResetMfa, &id)?;
        crate::authn::enrolment::reset_mfa_and_send(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &state.authn.issuer,
            &id,
            &capability,
        )
        .map(|sent| web::Json(sent.into()))
        .map_err(account_error)
    })
    .await
}

/// A link to choose a new password, mailed to the person (the second
/// factor stays). Allowed to whoever may reset the second factor.
async fn password_reset(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<EnrolmentSent>, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = account_capability(conn, state, &caller, Action::UserResetMfa, &id)?;
        crate::authn::enrolment::send_password_reset(
            conn,
            &state.auditor,
            state.clock.as_ref(),
            &state.authn.issuer,
            &id,
            &capability,
        )
        .map(|sent| web::Json(sent.into()))
        .map_err(account_error)
    })
    .await
}

/// Lifts a disable. Allowed to whoever may disable the account.
async fn enable_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    blocking(&state, move |conn, state| {
        let capability = account_capability(conn, state, &caller, Action::UserDisable, &id)?;
        crate::authn::enrolment::enable(
            conn,
            &state.auditor,
            state.clock.as_ref(),
            &id,
            &capability,
        )
        .map_err(account_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
    action: Option<String>,
    outcome: Option<String>,
    target: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

#[derive(Serialize)]
pub struct AuditEntryView {
    seq: i64,
    id: String,
    occurred_at: String,
    actor_user_id: Option<String>,
    actor_org_id: Option<String>,
    actor_role: Option<String>,
    action: String,
    outcome: String,
    target_type: Option<String>,
    target_id: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    details: serde_json::Value,
}

impl From<AuditRow> for AuditEntryView {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            id: row.id,
            occurred_at: row.occurred_at.and_utc().to_rfc3339(),
            actor_user_id: row.actor_user_id,
            actor_org_id: row.actor_org_id,
            actor_role: row.actor_role,
            action: row.action,
            outcome: row.outcome,
            target_type: row.target_type,
            target_id: row.target_id,
            request_id: row.request_id,
            client_ip: row.client_ip,
            details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The newest entries of the caller's part of the tree (all entries for an
/// auditor at the root), newest first, 100 at a time by default.
async fn read_audit(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<Vec<AuditEntryView>>, ApiError> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "`limit` must be between 1 and 1000.",
        ));
    }
    let filter = crate::audit::search::RawFilter {
        before: query.before.map(|b| b.to_string()),
        action: query.action,
        outcome: query.outcome,
        target: query.target,
        from: query.from,
        until: query.until,
    }
    .parse()
    .map_err(|problems| {
        let message = problems
            .iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join(" ");
        ApiError::bad_request("invalid_filter", &message)
    })?;
    blocking(&state, move |conn, state| {
        let org_id = caller.user.org_id.clone();
        check(conn, state, &caller, Action::AuditRead, &org_id)?;
        let org = organisations::find(conn, &org_id)
            .map_err(DbError::from)?
            .ok_or_else(ApiError::not_found)?;
        let scope = if org.parent_id.is_none() {
            None
        } else {
            Some(organisations::subtree_ids(conn, &org_id).map_err(DbError::from)?)
        };
        let rows = crate::db::audit::search(conn, &filter, limit, scope.as_deref())
            .map_err(DbError::from)?;
        // Reading the log is itself a security event.
        crate::db::write_transaction(conn, |conn| {
            state.auditor.append(
                conn,
                state.clock.as_ref(),
                &crate::audit::AuditEvent::new(
                    crate::audit::action::AUDIT_READ,
                    crate::audit::Outcome::Success,
                )
                .actor(Some(caller.actor()))
                .request(&caller.request)
                .detail("entries", rows.len().to_string()),
            )
        })
        .map_err(ApiError::internal)?;
        Ok(web::Json(
            rows.into_iter().map(AuditEntryView::from).collect(),
        ))
    })
    .await
}

#[derive(Serialize)]
pub struct VerifyView {
    intact: bool,
    entries: i64,
    checkpoints: usize,
    last_checkpoint: Option<i64>,
    problem: Option<String>,
}

async fn verify_audit(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<VerifyView>, ApiError> {
    blocking(&state, move |conn, state| {
        let org_id = caller.user.org_id.clone();
        check(conn, state, &caller, Action::AuditVerify, &org_id)?;
        let report = crate::audit::verify(conn, &state.keyring.current()).map_err(DbError::from)?;
        Ok(web::Json(VerifyView {
            intact: report.is_intact(),
            entries: report.entries,
            checkpoints: report.checkpoints,
            last_checkpoint: report.last_checkpoint,
            problem: report.problem.map(|p| p.to_string()),
        }))
    })
    .await
}
