//! Setup the benchmarks share.

use caseguard::audit::{Actor, RequestContext};
use caseguard::authn::accounts::{self, BOOTSTRAP_EMAIL};
use caseguard::authz::Action;
use caseguard::authz::capability::Capability;
use caseguard::db::DbConnection;
use caseguard::web::AppState;

/// A capability to create accounts in organisation `org_code`, as the
/// policies grant it to the root area's administrator. A benchmark is
/// outside the crate and cannot mint an operator capability: it makes the
/// bootstrap administrator, as a first `caseguard serve` does, and acts as
/// that account.
pub fn user_create(state: &AppState, conn: &mut DbConnection, org_code: &str) -> Capability {
    accounts::bootstrap_admin(
        conn,
        &state.keyring.current(),
        &state.auditor,
        state.clock.as_ref(),
    )
    .expect("bootstrap administrator");
    let admin = caseguard::db::users::find_by_email(conn, BOOTSTRAP_EMAIL)
        .expect("read accounts")
        .expect("the bootstrap administrator exists");
    let org = caseguard::db::organisations::find_by_code(conn, org_code)
        .expect("read organisations")
        .expect("the organisation exists");
    let actor = Actor {
        user_id: admin.id,
        org_id: admin.org_id,
        role: admin.role,
    };
    state
        .authz
        .check(
            conn,
            &actor,
            &RequestContext::default(),
            Action::UserCreate,
            &org.id,
        )
        .expect("the policies let the root administrator create accounts")
}
