//! The administrator's and the auditor's pages: the accounts of the
//! organisation (with new accounts' activation links), the audit log and
//! the state of its chain.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::auth::account_answer;
use super::cases::Choice;
use super::granted;
use super::{CsrfForm, Frame, PageUser, failure_page, not_found, render, render_with};
use crate::audit::search::{AuditFilter, RawFilter};
use crate::audit::{AuditEvent, Outcome, action};
use crate::authn::accounts::{AccountError, NewAccount};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::db::{DbError, organisations, users};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, Role};
use crate::web::error::ApiError;
use crate::web::i18n::{Lang, Tr};
use crate::web::{AppState, blocking};

pub struct AccountLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// Activation finished (a password and the second factor).
    pub activated: bool,
    /// An activation or password link is out, unused.
    pub link_pending: bool,
    /// The last successful sign-in, in the reader's language; empty if none.
    pub last_sign_in: String,
    /// The reader's own account (no disabling oneself from the page).
    pub is_self: bool,
}

#[derive(askama::Template)]
#[template(path = "pages/users.html")]
pub struct UsersPage<'a> {
    pub frame: Frame<'a>,
    pub org: String,
    pub accounts: Vec<AccountLine>,
    pub roles: Vec<Choice>,
    pub orgs: Vec<Choice>,
    /// What the last action did (a link sent, an account disabled).
    pub notice: Option<String>,
    pub problem: Option<String>,
}

/// The organisation's name, its accounts and the organisations below it.
type Accounts = (String, Vec<AccountLine>, Vec<Choice>);

fn load_users(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    caller: &Caller,
    lang: Lang,
) -> Result<Option<Accounts>, ApiError> {
    let org_id = caller.user.org_id.clone();
    if granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::UserList,
        &org_id,
    ))?
    .is_none()
    {
        return Ok(None);
    }
    let t = Tr::new(lang, &state.taxonomy);
    let org = organisations::find(conn, &org_id)
        .map_err(DbError::Query)?
        .ok_or(DbError::Task("organisation".into()))?;
    let ids = organisations::subtree_ids(conn, &org_id).map_err(DbError::Query)?;
    let mut accounts = Vec::new();
    let mut orgs = Vec::new();
    for row in organisations::all(conn)
        .map_err(DbError::Query)?
        .into_iter()
        .filter(|o| ids.contains(&o.id))
    {
        let rows = users::in_org(conn, &row.id).map_err(DbError::Query)?;
        let states = users::account_states(conn, &rows).map_err(DbError::Query)?;
        for (account, account_state) in rows.into_iter().zip(states) {
            accounts.push(AccountLine {
                is_self: account.id == caller.user.id,
                id: account.id,
                name: account.display_name,
                email: account.email,
                role: t.t(&format!("role-{}", account.role)),
                disabled: account.disabled_at.is_some(),
                activated: account_state.activated,
                link_pending: account_state.link_pending,
                last_sign_in: account_state
                    .last_sign_in
                    .map(|at| t.datetime(at))
                    .unwrap_or_default(),
            });
        }
        orgs.push(Choice {
            code: row.code.clone(),
            label: format!("{} ({})", row.name, row.code),
        });
    }
    Ok(Some((org.name, accounts, orgs)))
}

async fn users_page(
    state: &AppState,
    user: &PageUser,
    notice: Option<String>,
    problem: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let (caller, lang) = (user.caller.clone(), user.lang);
    let loaded = blocking(state, move |conn, state| {
        load_users(conn, state, &caller, lang)
    })
    .await;
    let frame = Frame::for_user(user, state, "/users");
    let t = frame.t;
    match loaded {
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
                notice,
                problem,
            },
        ),
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}

pub async fn users(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    users_page(&state, &user, None, None, StatusCode::OK).await
}

/// A new account: the activation link (a password and the authenticator)
/// goes by e-mail to the person only; the page says it was sent (issue 21).
pub async fn create_user(
    state: web::Data<AppState>,
    user: PageUser,
    form: CsrfForm,
) -> HttpResponse {
    let t = user.tr(&state);
    let problem = |key: &str| {
        users_page(
            &state,
            &user,
            None,
            Some(t.t(key)),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let Some(role) = form.get("role").and_then(|r| Role::parse(&r).ok()) else {
        return problem("users-problem-role").await;
    };
    let Some(email) = form.get("email").and_then(|e| EmailAddress::parse(&e).ok()) else {
        return problem("users-problem-email").await;
    };
    let Some(name) = form.get("name").and_then(|n| DisplayName::parse(&n).ok()) else {
        return problem("users-problem-name").await;
    };
    let Some(code) = form.get("org").and_then(|c| OrgCode::parse(&c).ok()) else {
        return problem("users-problem-org").await;
    };
    let caller = user.caller.clone();
    // The link was sent, or the problem to show.
    let created = blocking(&state, move |conn, state| {
        let Some(org) = organisations::find_by_code(conn, code.as_str()).map_err(DbError::Query)?
        else {
            return Ok(Err("users-problem-org"));
        };
        let Some(capability) = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::UserCreate,
            &org.id,
        ))?
        else {
            return Ok(Err("users-problem-org"));
        };
        match crate::authn::enrolment::create_and_send(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &state.authn.issuer,
            NewAccount {
                org: code,
                role,
                email,
                name,
                password_hash: None,
                totp_secret: None,
            },
            &capability,
        ) {
            Ok(_) => Ok(Ok(())),
            Err(error) => account_answer(error).map(|_| Err("users-problem-create")),
        }
    })
    .await;
    match created {
        Ok(Ok(())) => {
            let notice = t.t("users-created-sent");
            users_page(&state, &user, Some(notice), None, StatusCode::CREATED).await
        }
        Ok(Err(key)) => problem(key).await,
        Err(error) => failure_page(&error),
    }
}

/// What an administrator does to an existing account from the accounts page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AccountChange {
    Disable,
    Enable,
    ResetMfa,
    PasswordReset,
}

impl AccountChange {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "disable" => Some(Self::Disable),
            "enable" => Some(Self::Enable),
            "reset-mfa" => Some(Self::ResetMfa),
            "password-reset" => Some(Self::PasswordReset),
            _ => None,
        }
    }

    fn action(self) -> Action {
        match self {
            Self::Disable | Self::Enable => Action::UserDisable,
            Self::ResetMfa | Self::PasswordReset => Action::UserResetMfa,
        }
    }

    /// The catalogue key of what the page says once it is done.
    fn done_key(self) -> &'static str {
        match self {
            Self::Disable => "users-done-disabled",
            Self::Enable => "users-done-enabled",
            Self::ResetMfa => "users-done-reset-mfa",
            Self::PasswordReset => "users-done-password-reset",
        }
    }
}

/// `POST /users/{id}/{change}`: disable, enable, reset the second factor or
/// send a password link. Every link goes by e-mail to the person, never to
/// this page (issue 21); each change is audited by the account functions.
pub async fn change_user(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<(String, String)>,
    _form: CsrfForm,
) -> HttpResponse {
    let (id, change) = path.into_inner();
    let t = user.tr(&state);
    let Some(change) = AccountChange::parse(&change) else {
        return not_found(Frame::for_user(&user, &state, "/users"));
    };
    if change == AccountChange::Disable && id == user.caller.user.id {
        return users_page(
            &state,
            &user,
            None,
            Some(t.t("users-problem-self")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let caller = user.caller.clone();
    let done = blocking(&state, move |conn, state| {
        let org_id = users::find(conn, &id)
            .map_err(DbError::Query)?
            .map(|u| u.org_id);
        let Some(org_id) = org_id else {
            return Ok(Err("users-problem-account"));
        };
        let Some(capability) = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            change.action(),
            &org_id,
        ))?
        else {
            return Ok(Err("users-problem-account"));
        };
        let (auditor, clock, url) = (
            &state.auditor,
            state.clock.as_ref(),
            state.authn.issuer.as_str(),
        );
        let result = match change {
            AccountChange::Disable => {
                crate::authn::accounts::disable(conn, auditor, clock, &id, &capability)
            }
            AccountChange::Enable => {
                crate::authn::enrolment::enable(conn, auditor, clock, &id, &capability)
            }
            AccountChange::ResetMfa => crate::authn::enrolment::reset_mfa_and_send(
                conn,
                &state.keyring.current(),
                auditor,
                clock,
                url,
                &id,
                &capability,
            )
            .map(drop),
            AccountChange::PasswordReset => crate::authn::enrolment::send_password_reset(
                conn,
                auditor,
                clock,
                url,
                &id,
                &capability,
            )
            .map(drop),
        };
        match result {
            Ok(()) => Ok(Ok(())),
            Err(error) => account_answer(error).map(|answer| {
                Err(match answer {
                    AccountError::Disabled => "users-problem-disabled",
                    _ => "users-problem-account",
                })
            }),
        }
    })
    .await;
    match done {
        Ok(Ok(())) => {
            let notice = t.t(change.done_key());
            users_page(&state, &user, Some(notice), None, StatusCode::OK).await
        }
        Ok(Err(key)) => {
            users_page(
                &state,
                &user,
                None,
                Some(t.t(key)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

pub struct EntryLine {
    pub seq: i64,
    pub when: String,
    /// The action's label; `code` is its code (searched by).
    pub action: String,
    pub code: String,
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
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<RawFilter>,
) -> HttpResponse {
    let raw = query.into_inner();
    let frame = Frame::for_user(&user, &state, "/audit");
    let t = frame.t;
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
    let caller = user.caller.clone();
    let search = filter.clone();
    // The chain's state and the entries found, or `None` when the policy
    // says no (the not-found page).
    let loaded = blocking(&state, move |conn, state| {
        let org_id = caller.user.org_id.clone();
        let allowed = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::AuditRead,
            &org_id,
        ))?
        .is_some()
            && granted(state.authz.check(
                conn,
                &caller.actor(),
                &caller.request,
                Action::AuditVerify,
                &org_id,
            ))?
            .is_some();
        if !allowed {
            return Ok(None);
        }
        let report =
            crate::audit::verify(conn, &state.keyring.current()).map_err(DbError::Query)?;
        let Some(filter) = &search else {
            return Ok(Some((report, Vec::new())));
        };
        let scope = match organisations::find(conn, &org_id).map_err(DbError::Query)? {
            Some(org) if org.parent_id.is_some() => {
                Some(organisations::subtree_ids(conn, &org_id).map_err(DbError::Query)?)
            }
            _ => None,
        };
        let rows = crate::db::audit::search(conn, filter, AUDIT_PAGE, scope.as_deref())
            .map_err(DbError::Query)?;
        crate::db::write_transaction(conn, |conn| {
            state.auditor.append(
                conn,
                state.clock.as_ref(),
                &AuditEvent::new(action::AUDIT_READ, Outcome::Success)
                    .actor(Some(caller.actor()))
                    .request(&caller.request)
                    .detail("entries", rows.len().to_string()),
            )
        })
        .map_err(ApiError::internal)?;
        Ok(Some((report, rows)))
    })
    .await;
    match loaded {
        Ok(Some((report, rows))) => {
            let outcomes = crate::audit::search::OUTCOMES
                .iter()
                .map(|o| Choice {
                    code: (*o).to_owned(),
                    label: t.t(&format!("audit-outcome-{o}")),
                })
                .collect();
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
                        action: t.audit_action(&r.action),
                        code: r.action,
                        outcome: t.t(&format!("audit-outcome-{}", r.outcome)),
                        role: r
                            .actor_role
                            .map(|role| t.t(&format!("role-{role}")))
                            .unwrap_or_default(),
                        target: r
                            .target_type
                            .map(|kind| t.audit_target(&kind))
                            .unwrap_or_default(),
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
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}

/// Administrators and auditors: the organisation pages are theirs. The
/// check goes through the policy like every other (a denial is audited).
fn manager_allowed(
    state: &AppState,
    caller: &Caller,
    conn: &mut crate::db::DbConnection,
) -> Result<bool, ApiError> {
    let action = if caller.user.role == Role::Admin.as_str() {
        Action::UserList
    } else {
        Action::AuditRead
    };
    Ok(granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        action,
        &caller.user.org_id,
    ))?
    .is_some())
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
            (None, Some(level)) => format!(
                "{} · {}",
                t.t("org-kind-school"),
                t.code("school_level", level)
            ),
            // The area's level is a code of the import format: its name
            // (data, e.g. "Xã …") already says what it is, and no level
            // term (such as a district, gone in many provinces since the
            // 2025 reform) is written into the catalogues.
            (None, None) => t.t("org-kind-area"),
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

pub async fn organisations_page(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let (caller, lang) = (user.caller.clone(), user.lang);
    // The tree, or `None` when the policy says no (the not-found page).
    let loaded = blocking(&state, move |conn, state| {
        if !manager_allowed(state, &caller, conn)? {
            return Ok(None);
        }
        let t = Tr::new(lang, &state.taxonomy);
        Ok(Some(org_tree(conn, &t, &caller.user.org_id)?))
    })
    .await;
    let frame = Frame::for_user(&user, &state, "/organisations");
    match loaded {
        Ok(Some(orgs)) => render(&OrganisationsPage { frame, orgs }),
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
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
pub async fn policies_page(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let caller = user.caller.clone();
    let allowed = blocking(&state, move |conn, state| {
        manager_allowed(state, &caller, conn)
    })
    .await;
    let frame = Frame::for_user(&user, &state, "/policies");
    match allowed {
        Ok(true) => {
            let disclosure = &state.disclosure;
            render(&PoliciesPage {
                files: &state.policy_files,
                min_count: disclosure.min_count,
                suppressed_mark: disclosure.suppressed_mark.clone(),
                school_min_total: disclosure.school_min_total,
                rounding_base: disclosure.rounding_base,
                frame,
            })
        }
        Ok(false) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}
