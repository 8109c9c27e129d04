//! The administrator's and the auditor's pages: the accounts of the
//! organisation (with new accounts' activation links), the audit log and
//! the state of its chain.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::cases::Choice;
use super::{CsrfForm, Frame, PageUser, not_found, render, render_with};
use crate::audit::search::{AuditFilter, RawFilter};
use crate::audit::{AuditEvent, Outcome, action};
use crate::authn::accounts::{self, NewAccount};
use crate::authz::Action;
use crate::db::{organisations, users};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, Role};
use crate::web::AppState;
use crate::web::i18n::Tr;

pub struct AccountLine {
    pub name: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
}

#[derive(askama::Template)]
#[template(path = "pages/users.html")]
pub struct UsersPage<'a> {
    pub frame: Frame<'a>,
    pub org: String,
    pub accounts: Vec<AccountLine>,
    pub roles: Vec<Choice>,
    pub orgs: Vec<Choice>,
    pub created: Option<String>,
    pub problem: Option<String>,
}

/// The organisation's name, its accounts and the organisations below it.
type Accounts = (String, Vec<AccountLine>, Vec<Choice>);

fn load_users(state: &AppState, user: &PageUser) -> Result<Option<Accounts>, crate::db::DbError> {
    let mut conn = state.db.get()?;
    let caller = &user.caller;
    let org_id = caller.user.org_id.clone();
    if state
        .authz
        .check(
            &mut conn,
            &caller.actor(),
            &caller.request,
            Action::UserList,
            &org_id,
        )
        .is_err()
    {
        return Ok(None);
    }
    let t = Tr::new(user.lang, &state.taxonomy);
    let org = organisations::find(&mut conn, &org_id)?
        .ok_or(crate::db::DbError::Task("organisation".into()))?;
    let ids = organisations::subtree_ids(&mut conn, &org_id)?;
    let mut accounts = Vec::new();
    let mut orgs = Vec::new();
    for row in organisations::all(&mut conn)?
        .into_iter()
        .filter(|o| ids.contains(&o.id))
    {
        for account in users::in_org(&mut conn, &row.id)? {
            accounts.push(AccountLine {
                name: account.display_name,
                email: account.email,
                role: t.t(&format!("role-{}", account.role)),
                disabled: account.disabled_at.is_some(),
            });
        }
        orgs.push(Choice {
            code: row.code.clone(),
            label: format!("{} ({})", row.name, row.code),
        });
    }
    Ok(Some((org.name, accounts, orgs)))
}

fn users_page(
    state: &AppState,
    user: &PageUser,
    created: Option<String>,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let frame = Frame::for_user(user, state, "/users");
    let t = frame.t;
    match load_users(state, user) {
        Ok(Some((org, accounts, orgs))) => render_with(
            status,
            &UsersPage {
                roles: Role::ALL
                    .iter()
                    .map(|r| Choice {
                        code: r.as_str().to_owned(),
                        label: t.t(&format!("role-{r}")),
                    })
                    .collect(),
                frame,
                org,
                accounts,
                orgs,
                created,
                problem,
            },
        ),
        Ok(None) => not_found(frame),
        Err(error) => {
            tracing::error!(%error, "the accounts page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub async fn users(State(state): State<AppState>, user: PageUser) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || users_page(&state2, &user, None, None, StatusCode::OK))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A new account: the person gets an activation link to set a password and
/// add the authenticator (shown here once, to pass on).
pub async fn create_user(
    State(state): State<AppState>,
    user: PageUser,
    form: CsrfForm,
) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || {
        let t = user.tr(&state2);
        let problem = |key: &str| {
            users_page(
                &state2,
                &user,
                None,
                Some(t.t(key)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        };
        let Some(role) = form.get("role").and_then(|r| Role::parse(&r).ok()) else {
            return problem("users-problem-role");
        };
        let Some(email) = form.get("email").and_then(|e| EmailAddress::parse(&e).ok()) else {
            return problem("users-problem-email");
        };
        let Some(name) = form.get("name").and_then(|n| DisplayName::parse(&n).ok()) else {
            return problem("users-problem-name");
        };
        let Some(code) = form.get("org").and_then(|c| OrgCode::parse(&c).ok()) else {
            return problem("users-problem-org");
        };
        let Ok(mut conn) = state2.db.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let caller = &user.caller;
        let Ok(Some(org)) = organisations::find_by_code(&mut conn, code.as_str()) else {
            return problem("users-problem-org");
        };
        let Ok(capability) = state2.authz.check(
            &mut conn,
            &caller.actor(),
            &caller.request,
            Action::UserCreate,
            &org.id,
        ) else {
            return problem("users-problem-org");
        };
        let created = accounts::create(
            &mut conn,
            &state2.keyring.current(),
            &state2.auditor,
            state2.clock.as_ref(),
            NewAccount {
                org: code,
                role,
                email,
                name,
                password_hash: None,
                totp_secret: None,
            },
            &capability,
        );
        drop(conn);
        match created {
            Ok(created) => {
                let link = format!(
                    "{}/enrol/{}",
                    state2.authn.issuer,
                    created.enrolment_token.unwrap_or_default()
                );
                users_page(&state2, &user, Some(link), None, StatusCode::CREATED)
            }
            Err(_) => problem("users-problem-create"),
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

pub struct EntryLine {
    pub seq: i64,
    pub when: String,
    pub action: String,
    pub outcome: String,
    pub role: String,
    pub target: String,
    /// The target's id, to search for everything done to it.
    pub target_id: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "pages/audit.html")]
pub struct AuditPage<'a> {
    pub frame: Frame<'a>,
    pub intact: bool,
    pub entries_total: i64,
    pub checkpoints: usize,
    pub problem: Option<String>,
    pub entries: Vec<EntryLine>,
    /// The search as typed, shown again.
    pub search: RawFilter,
    pub outcomes: Vec<Choice>,
    /// Per-field problems of the search, in the user's language.
    pub errors: Vec<(String, String)>,
    /// The next (older) page's query string, when there may be one.
    pub older: Option<String>,
}

impl AuditPage<'_> {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn typed<'s>(&self, value: &'s Option<String>) -> &'s str {
        value.as_deref().unwrap_or("")
    }
}

/// Entries shown per page.
const AUDIT_PAGE: i64 = 100;

/// The query string of the page of entries older than `seq` (the values are
/// checked codes, ids and dates, all URL-safe).
fn older_query(filter: &AuditFilter, raw: &RawFilter, seq: i64) -> String {
    let mut parts = vec![format!("before={seq}")];
    for (name, value) in [
        ("action", filter.action.as_ref()),
        ("outcome", filter.outcome.as_ref()),
        ("target", filter.target_id.as_ref()),
        ("from", filter.from.and(raw.from.as_ref())),
        ("until", filter.until.and(raw.until.as_ref())),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name}={}", value.trim()));
        }
    }
    parts.join("&")
}

/// The auditor's page: the chain's state and the newest entries of the
/// auditor's part of the tree, searchable by action, outcome, target and
/// days (reading the log is itself audited).
pub async fn audit(
    State(state): State<AppState>,
    user: PageUser,
    Query(raw): Query<RawFilter>,
) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || -> Response {
        let frame = Frame::for_user(&user, &state2, "/audit");
        let t = frame.t;
        let Ok(mut conn) = state2.db.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let caller = &user.caller;
        let org_id = caller.user.org_id.clone();
        let allowed = state2
            .authz
            .check(
                &mut conn,
                &caller.actor(),
                &caller.request,
                Action::AuditRead,
                &org_id,
            )
            .is_ok()
            && state2
                .authz
                .check(
                    &mut conn,
                    &caller.actor(),
                    &caller.request,
                    Action::AuditVerify,
                    &org_id,
                )
                .is_ok();
        if !allowed {
            return not_found(frame);
        }
        let outcomes = crate::audit::search::OUTCOMES
            .iter()
            .map(|o| Choice {
                code: (*o).to_owned(),
                label: t.t(&format!("audit-outcome-{o}")),
            })
            .collect();
        let (filter, errors) = match raw.parse() {
            Ok(filter) => (Some(filter), Vec::new()),
            Err(problems) => (
                None,
                problems
                    .iter()
                    .map(|p| (p.field.to_owned(), t.t(p.code)))
                    .collect(),
            ),
        };
        let loaded = (|| -> Result<_, crate::db::DbError> {
            let report = crate::audit::verify(&mut conn, &state2.keyring.current())?;
            let Some(filter) = &filter else {
                return Ok((report, Vec::new()));
            };
            let scope = match organisations::find(&mut conn, &org_id)? {
                Some(org) if org.parent_id.is_some() => {
                    Some(organisations::subtree_ids(&mut conn, &org_id)?)
                }
                _ => None,
            };
            let rows = crate::db::audit::search(&mut conn, filter, AUDIT_PAGE, scope.as_deref())?;
            crate::db::write_transaction(&mut conn, |conn| {
                state2.auditor.append(
                    conn,
                    state2.clock.as_ref(),
                    &AuditEvent::new(action::AUDIT_READ, Outcome::Success)
                        .actor(Some(caller.actor()))
                        .request(&caller.request)
                        .detail("entries", rows.len().to_string()),
                )
            })
            .map_err(|e| crate::db::DbError::Task(e.to_string()))?;
            Ok((report, rows))
        })();
        match loaded {
            Ok((report, rows)) => {
                let older = match (&filter, rows.last()) {
                    (Some(filter), Some(last)) if rows.len() as i64 == AUDIT_PAGE => {
                        Some(older_query(filter, &raw, last.seq))
                    }
                    _ => None,
                };
                let page = AuditPage {
                    intact: report.is_intact(),
                    entries_total: report.entries,
                    checkpoints: report.checkpoints,
                    problem: report.problem.map(|p| p.to_string()),
                    entries: rows
                        .into_iter()
                        .map(|r| EntryLine {
                            seq: r.seq,
                            when: t.datetime(r.occurred_at),
                            action: r.action,
                            outcome: t.t(&format!("audit-outcome-{}", r.outcome)),
                            role: r
                                .actor_role
                                .map(|role| t.t(&format!("role-{role}")))
                                .unwrap_or_default(),
                            target: r.target_type.unwrap_or_default(),
                            target_id: r.target_id,
                        })
                        .collect(),
                    search: raw,
                    outcomes,
                    older,
                    errors,
                    frame,
                };
                if page.errors.is_empty() {
                    render(&page)
                } else {
                    render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
                }
            }
            Err(error) => {
                tracing::error!(%error, "the audit page failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Administrators and auditors: the organisation pages are theirs. The
/// check goes through the policy like every other (a denial is audited).
fn manager_allowed(state: &AppState, user: &PageUser, conn: &mut crate::db::DbConnection) -> bool {
    let caller = &user.caller;
    let action = if caller.user.role == Role::Admin.as_str() {
        Action::UserList
    } else {
        Action::AuditRead
    };
    state
        .authz
        .check(
            conn,
            &caller.actor(),
            &caller.request,
            action,
            &caller.user.org_id,
        )
        .is_ok()
}

pub struct OrgLine {
    pub depth: usize,
    pub name: String,
    pub code: String,
    pub kind: String,
    pub accounts: usize,
}

#[derive(askama::Template)]
#[template(path = "pages/organisations.html")]
pub struct OrganisationsPage<'a> {
    pub frame: Frame<'a>,
    pub orgs: Vec<OrgLine>,
}

/// The caller's part of the organisation tree, depth first, with each
/// organisation's kind and number of accounts.
fn org_tree(
    conn: &mut crate::db::DbConnection,
    t: &Tr<'_>,
    root_id: &str,
) -> Result<Vec<OrgLine>, crate::db::DbError> {
    let all = organisations::all(conn)?;
    let mut lines = Vec::new();
    let mut stack = vec![(root_id.to_owned(), 0usize)];
    while let Some((id, depth)) = stack.pop() {
        let Some(org) = all.iter().find(|o| o.id == id) else {
            continue;
        };
        let kind = match (&org.agency_type, &org.school_level) {
            (Some(agency), _) => t.t(&format!("agency-{agency}")),
            (None, Some(level)) => format!("{} · {level}", t.t("org-kind-school")),
            (None, None) => format!(
                "{} · {}",
                t.t("org-kind-area"),
                org.area_level.as_deref().unwrap_or("")
            ),
        };
        lines.push(OrgLine {
            depth: depth.min(5),
            name: org.name.clone(),
            code: org.code.clone(),
            kind,
            accounts: users::in_org(conn, &org.id)?.len(),
        });
        // Children in reverse code order, so they come off the stack sorted.
        let mut children: Vec<_> = all
            .iter()
            .filter(|o| o.parent_id.as_deref() == Some(id.as_str()))
            .collect();
        children.sort_by(|a, b| b.code.cmp(&a.code));
        stack.extend(children.into_iter().map(|o| (o.id.clone(), depth + 1)));
    }
    Ok(lines)
}

pub async fn organisations_page(State(state): State<AppState>, user: PageUser) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || -> Response {
        let frame = Frame::for_user(&user, &state2, "/organisations");
        let Ok(mut conn) = state2.db.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        if !manager_allowed(&state2, &user, &mut conn) {
            return not_found(frame);
        }
        match org_tree(&mut conn, &frame.t, &user.caller.user.org_id) {
            Ok(orgs) => render(&OrganisationsPage { frame, orgs }),
            Err(error) => {
                tracing::error!(%error, "the organisations page failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(askama::Template)]
#[template(path = "pages/policies.html")]
pub struct PoliciesPage<'a> {
    pub frame: Frame<'a>,
    pub files: &'a [crate::domain::policy_files::PolicyFile],
    pub min_count: u64,
    pub suppressed_mark: String,
    pub school_min_total: u64,
    pub rounding_base: u64,
}

/// The policies the service runs with, read-only: each file as it was read
/// at start, with its SHA-256 (compare replicas), and the disclosure
/// settings in words.
pub async fn policies_page(State(state): State<AppState>, user: PageUser) -> Response {
    let state2 = state.clone();
    tokio::task::spawn_blocking(move || -> Response {
        let frame = Frame::for_user(&user, &state2, "/policies");
        let Ok(mut conn) = state2.db.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        if !manager_allowed(&state2, &user, &mut conn) {
            return not_found(frame);
        }
        let disclosure = &state2.disclosure;
        render(&PoliciesPage {
            files: &state2.policy_files,
            min_count: disclosure.min_count,
            suppressed_mark: disclosure.suppressed_mark.clone(),
            school_min_total: disclosure.school_min_total,
            rounding_base: disclosure.rounding_base,
            frame,
        })
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
