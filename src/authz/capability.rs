//! Capabilities: proof that a check passed, required by the code that acts.
//!
//! Each capability can only be made here, by [`Authz::check`] after the
//! policies allowed it, or by [`Capability::for_operator`] for a person at the
//! server's command line (who already holds the database and the keyring).

use std::sync::Arc;

use super::{Action, OrgChain, Policies, Principal};
use crate::audit::{Actor, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::clock::SharedClock;
use crate::db::{DbConnection, DbError, write_transaction};

/// A permitted action on one organisation.
#[derive(Debug, Clone)]
pub struct Capability {
    action: Action,
    org_id: Option<String>,
    actor: Option<Actor>,
    request: RequestContext,
}

impl Capability {
    /// An operator at the server's command line, who already holds the
    /// database and the keyring. Only the command line, the demo loader and
    /// tests may use this; request handlers get capabilities from
    /// [`Authz::check`].
    pub fn for_operator(action: Action) -> Self {
        Self {
            action,
            org_id: None,
            actor: None,
            request: RequestContext::default(),
        }
    }

    pub fn action(&self) -> Action {
        self.action
    }

    /// Who acts (`None` for the command line).
    pub fn actor(&self) -> Option<Actor> {
        self.actor.clone()
    }

    pub fn request(&self) -> &RequestContext {
        &self.request
    }

    /// True when this capability is for `action` on `org_id` (the
    /// operator's covers every organisation).
    pub fn allows(&self, action: Action, org_id: &str) -> bool {
        self.action == action && self.org_id.as_deref().is_none_or(|id| id == org_id)
    }
}

/// Why an action was refused. Deliberately without detail: where existence
/// is confidential, "not allowed" and "not there" look the same.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not allowed")]
    Denied,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for Refused {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl From<crate::audit::AuditError> for Refused {
    fn from(error: crate::audit::AuditError) -> Self {
        Self::Db(DbError::Task(error.to_string()))
    }
}

impl From<Refused> for crate::error::ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Denied => Self::not_found(),
            Refused::Db(error) => error.into(),
        }
    }
}

/// The decision point handlers use.
#[derive(Debug, Clone)]
pub struct Authz {
    policies: Arc<Policies>,
    auditor: Arc<Auditor>,
    clock: SharedClock,
}

impl Authz {
    pub fn new(policies: Policies, auditor: Arc<Auditor>, clock: SharedClock) -> Self {
        Self {
            policies: Arc::new(policies),
            auditor,
            clock,
        }
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Checks `actor` doing `action` on organisation `org_id`. Blocking: run
    /// it on the blocking pool. A refusal (including an unknown organisation)
    /// is audited.
    pub fn check(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        request: &RequestContext,
        action: Action,
        org_id: &str,
    ) -> Result<Capability, Refused> {
        let principal_chain = OrgChain::load(conn, &actor.org_id)?;
        let resource_chain = OrgChain::load(conn, org_id)?;
        let allowed = match (principal_chain, resource_chain) {
            (Some(org_chain), Some(resource)) => self.policies.decide(
                &Principal {
                    user_id: actor.user_id.clone(),
                    role: actor.role.clone(),
                    org_chain,
                },
                action,
                &resource,
            ),
            _ => false,
        };
        if allowed {
            return Ok(Capability {
                action,
                org_id: Some(org_id.to_owned()),
                actor: Some(actor.clone()),
                request: request.clone(),
            });
        }
        write_transaction(conn, |conn| {
            self.auditor.append(
                conn,
                self.clock.as_ref(),
                &AuditEvent::new(action::ACCESS_DENIED, Outcome::Denied)
                    .actor(Some(actor.clone()))
                    .target("organisation", org_id)
                    .request(request)
                    .detail("action", action.as_str()),
            )
        })?;
        Err(Refused::Denied)
    }
}
