//! The `users`, `credentials`, `recovery_codes`, `sessions` and
//! `revoked_tokens` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{credentials, recovery_codes, revoked_tokens, sessions, users};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub role: String,
    pub email: String,
    pub display_name: String,
    pub disabled_at: Option<NaiveDateTime>,
    pub tokens_not_before: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `vi` or `en`: the interface and the messages to this person.
    pub language: String,
}

#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = credentials, treat_none_as_null = true)]
pub struct CredentialRow {
    pub user_id: String,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<NaiveDateTime>,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub mfa_enrolled_at: Option<NaiveDateTime>,
    pub failed_logins: i32,
    pub throttled_until: Option<NaiveDateTime>,
    pub locked_at: Option<NaiveDateTime>,
    pub enrolment_token_hash: Option<String>,
    pub enrolment_expires_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRow")
            .field("user_id", &self.user_id)
            .field("failed_logins", &self.failed_logins)
            .field("locked_at", &self.locked_at)
            .finish_non_exhaustive()
    }
}

pub fn insert_user(
    conn: &mut DbConnection,
    user: &UserRow,
    credential: &CredentialRow,
) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    diesel::insert_into(credentials::table)
        .values(credential)
        .execute(conn)?;
    Ok(())
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// The active users of `org_id` with `role`, `(id, display name)` by name
/// (who a case can be assigned to).
pub fn active_of_org_with_role(
    conn: &mut DbConnection,
    org_id: &str,
    role: &str,
) -> QueryResult<Vec<(String, String)>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::role.eq(role))
        .filter(users::disabled_at.is_null())
        .order((users::display_name.asc(), users::id.asc()))
        .select((users::id, users::display_name))
        .load(conn)
}

/// The display names of users, by id (names staff see beside a case).
pub fn display_names(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<std::collections::BTreeMap<String, String>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn credential(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<CredentialRow>> {
    credentials::table
        .find(user_id)
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()
}

pub fn save_credential(conn: &mut DbConnection, credential: &CredentialRow) -> QueryResult<()> {
    diesel::update(credentials::table.find(&credential.user_id))
        .set(credential)
        .execute(conn)
        .map(drop)
}

pub fn find_by_enrolment_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<CredentialRow>> {
    credentials::table
        .filter(credentials::enrolment_token_hash.eq(token_hash))
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()
}

/// Disables an account and voids every session and token issued so far.
pub fn set_language(
    conn: &mut DbConnection,
    id: &str,
    language: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::language.eq(language), users::updated_at.eq(now)))
        .execute(conn)
}

pub fn disable(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::disabled_at.eq(Some(now)),
            users::tokens_not_before.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Voids every session and token issued before `now`.
pub fn void_tokens(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::tokens_not_before.eq(now), users::updated_at.eq(now)))
        .execute(conn)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct RecoveryCodeRow {
    pub id: String,
    pub user_id: String,
    pub code_hash: String,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    user_id: &str,
    codes: &[RecoveryCodeRow],
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for code in codes {
        diesel::insert_into(recovery_codes::table)
            .values(code)
            .execute(conn)?;
    }
    Ok(())
}

/// Marks an unused recovery code as used; true if there was one.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(updated > 0)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub mfa_verified: bool,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_session(conn: &mut DbConnection, session: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

pub fn find_session(conn: &mut DbConnection, id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch_session(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
        .map(drop)
}

pub fn revoke_session(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(Some(now)))
    .execute(conn)
}

pub fn revoke_sessions_of(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(Some(now)))
    .execute(conn)
}

pub fn revoke_token(
    conn: &mut DbConnection,
    jti: &str,
    user_id: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::user_id.eq(user_id),
            revoked_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn token_revoked(conn: &mut DbConnection, jti: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(revoked_tokens::table.find(jti))).get_result(conn)
}

pub fn in_org(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .order(users::email.asc())
        .select(UserRow::as_select())
        .load(conn)
}

/// Lifts a disable: the account may sign in again (its old sessions and
/// tokens stay void: they ended when it was disabled).
pub fn enable(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::disabled_at.eq(None::<NaiveDateTime>),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// The latest successful sign-in of each of `ids`, read from the audit log
/// (every sign-in is an `auth.login` entry targeting the account).
pub fn last_sign_ins(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<Vec<(Option<String>, Option<NaiveDateTime>)>> {
    use crate::db::schema::audit_log;
    audit_log::table
        .filter(audit_log::action.eq(crate::audit::action::LOGIN))
        .filter(audit_log::outcome.eq("success"))
        .filter(audit_log::target_id.eq_any(ids))
        .group_by(audit_log::target_id)
        .select((
            audit_log::target_id,
            diesel::dsl::max(audit_log::occurred_at),
        ))
        .load(conn)
}

/// What the accounts pages show of an account beside its row.
#[derive(Debug, Clone, Default)]
pub struct AccountState {
    /// A password is set (and the second factor, when one was asked for).
    pub activated: bool,
    /// An activation or password link is out and unused.
    pub link_pending: bool,
    pub last_sign_in: Option<NaiveDateTime>,
}

/// The [`AccountState`] of each of `rows`, in order.
pub fn account_states(conn: &mut DbConnection, rows: &[UserRow]) -> QueryResult<Vec<AccountState>> {
    let ids: Vec<String> = rows.iter().map(|u| u.id.clone()).collect();
    let last = last_sign_ins(conn, &ids)?;
    let mut states = Vec::with_capacity(rows.len());
    for row in rows {
        let credential = credential(conn, &row.id)?;
        states.push(AccountState {
            activated: credential.as_ref().is_some_and(|c| {
                c.password_hash.is_some()
                    && (c.mfa_enrolled_at.is_some() || c.enrolment_token_hash.is_none())
            }),
            link_pending: credential
                .as_ref()
                .is_some_and(|c| c.enrolment_token_hash.is_some()),
            last_sign_in: last
                .iter()
                .find(|(id, _)| id.as_deref() == Some(row.id.as_str()))
                .and_then(|(_, at)| *at),
        });
    }
    Ok(states)
}
