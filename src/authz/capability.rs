//! Capabilities: proof that a check passed, required by the code that acts.
//!
//! Each capability can only be made here, in one of two ways:
//!
//! - by [`Authz::check`] (and its `check_case`/`check_referral`), after the
//!   policies allowed the caller the action: this is how every request gets
//!   one; a partner's session through a one-time link gets its (one
//!   referral's `referral.read` and `referral.respond`) from
//!   [`Authz::check_partner`], which requires the session `authn::partner`
//!   admitted;
//! - by `Capability::for_operator`, for the person at the server's command
//!   line, who already holds the database and the keyring and so needs no
//!   policy's permission. Such a capability covers every organisation.
//!
//! `for_operator` requires a `crate::cli::OperatorConsole`, and only
//! `crate::cli` can make one (its field is private there), so it is the
//! compiler that keeps the rest of the crate from minting operator
//! capabilities: a handler, a worker or a domain function that wants to act
//! must get its capability from `Authz::check`, or be handed one. The
//! command line hands them on where it needs other code to act for the
//! operator (the demo loader gets its [`crate::demo::Grants`]). A plain
//! `pub(in crate::cli)` on `for_operator` is not possible (a restriction
//! can only name a module the item is inside), hence the proof type, which
//! lives in `cli`; `for_operator` is `pub(crate)` because the proof is.
//!
//! The bootstrap administrator of a first start needs no capability at all
//! (`authn::accounts::bootstrap_admin`: with no account in the store there is
//! no one to ask, and it makes only that first account). The integration
//! tests and benchmarks, outside the crate, cannot mint either: they create
//! that first administrator the same way and get every other capability from
//! `Authz::check`, as a signed-in caller would.

use std::sync::Arc;

use super::{Action, OrgChain, Policies, Principal, Resource};
use crate::audit::{Actor, AuditEvent, Auditor, Outcome, RequestContext, action};
use crate::cli::OperatorConsole;
use crate::clock::SharedClock;
use crate::db::cases::{self, CaseRow};
use crate::db::referrals::{self, ReferralRow};
use crate::db::{DbConnection, DbError, write_transaction};

/// A permitted action on one organisation.
#[derive(Debug, Clone)]
pub struct Capability {
    action: Action,
    org_id: Option<String>,
    case_id: Option<String>,
    referral_id: Option<String>,
    break_glass: bool,
    actor: Option<Actor>,
    request: RequestContext,
}

impl Capability {
    /// An operator at the server's command line, who already holds the
    /// database and the keyring: `action` on every organisation, by nobody
    /// in particular (the audit log records no actor). Only the command line
    /// can call this, for want of another way to get an [`OperatorConsole`].
    pub(crate) fn for_operator(_console: &OperatorConsole, action: Action) -> Self {
        Self {
            action,
            org_id: None,
            case_id: None,
            referral_id: None,
            break_glass: false,
            actor: None,
            request: RequestContext::default(),
        }
    }

    /// True when this capability is for `action` on case `case_id`.
    pub fn allows_case(&self, action: Action, case_id: &str) -> bool {
        self.action == action && self.case_id.as_deref().is_none_or(|id| id == case_id)
    }

    /// True when this capability is for `action` on referral `referral_id`.
    pub fn allows_referral(&self, action: Action, referral_id: &str) -> bool {
        self.action == action
            && self
                .referral_id
                .as_deref()
                .is_none_or(|id| id == referral_id)
    }

    /// Whether the permission rests on a break-glass grant.
    pub fn via_break_glass(&self) -> bool {
        self.break_glass
    }

    pub fn action(&self) -> Action {
        self.action
    }

    /// Who acts (`None` for the command line).
    pub fn actor(&self) -> Option<Actor> {
        self.actor.clone()
    }

    /// Who to record as the author of a change: the caller's user id, or
    /// `operator` for the command line.
    pub fn author(&self) -> String {
        self.actor
            .as_ref()
            .map_or_else(|| "operator".to_owned(), |a| a.user_id.clone())
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
        if self.may(conn, actor, action, org_id)? {
            return Ok(Capability {
                action,
                org_id: Some(org_id.to_owned()),
                case_id: None,
                referral_id: None,
                break_glass: false,
                actor: Some(actor.clone()),
                request: request.clone(),
            });
        }
        self.refuse(conn, actor, request, action, "organisation", org_id)
    }

    /// Whether `actor` may do `action` on organisation `org_id`, without a
    /// capability and without an audit entry: only for trimming what an
    /// answer shows (a refusal here is not an attempt to act).
    pub fn may(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        action: Action,
        org_id: &str,
    ) -> Result<bool, Refused> {
        let principal_chain = OrgChain::load(conn, &actor.org_id)?;
        let resource_chain = OrgChain::load(conn, org_id)?;
        Ok(match (principal_chain, resource_chain) {
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
        })
    }

    /// Checks `actor` doing `action` on case `case_id`; returns the
    /// capability and the case. An unknown case is refused like a forbidden
    /// one, and audited the same way.
    pub fn check_case(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        request: &RequestContext,
        action: Action,
        case_id: &str,
    ) -> Result<(Capability, CaseRow), Refused> {
        let Some(case) = cases::find(conn, case_id)? else {
            return self.refuse(conn, actor, request, action, "case", case_id);
        };
        let principal_chain = OrgChain::load(conn, &actor.org_id)?;
        let school_chain = OrgChain::load(conn, &case.school_id)?;
        let break_glass = action == Action::CaseRead
            && cases::break_glass_active(conn, &actor.user_id, case_id, self.clock.now_naive())?;
        let allowed = match (principal_chain, school_chain) {
            (Some(org_chain), Some(school)) => self.policies.decide_on(
                &Principal {
                    user_id: actor.user_id.clone(),
                    role: actor.role.clone(),
                    org_chain,
                },
                action,
                &Resource::Case {
                    case_id: case.id.clone(),
                    status: case.status.clone(),
                    org_chain: school,
                    child: case.under_18 != Some(false),
                    break_glass,
                },
            ),
            _ => false,
        };
        if !allowed {
            return self.refuse(conn, actor, request, action, "case", case_id);
        }
        Ok((
            Capability {
                action,
                org_id: Some(case.school_id.clone()),
                case_id: Some(case.id.clone()),
                referral_id: None,
                break_glass,
                actor: Some(actor.clone()),
                request: request.clone(),
            },
            case,
        ))
    }

    /// Checks `actor` doing `action` on referral `referral_id`; returns the
    /// capability and the referral. Unknown and forbidden look the same.
    pub fn check_referral(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        request: &RequestContext,
        action: Action,
        referral_id: &str,
    ) -> Result<(Capability, ReferralRow), Refused> {
        let Some(referral) = referrals::find(conn, referral_id)? else {
            return self.refuse(conn, actor, request, action, "referral", referral_id);
        };
        let principal_chain = OrgChain::load(conn, &actor.org_id)?;
        let agency_chain = OrgChain::load(conn, &referral.agency_id)?;
        let school_chain = OrgChain::load(conn, &referral.school_id)?;
        let allowed = match (principal_chain, agency_chain, school_chain) {
            (Some(org_chain), Some(agency_chain), Some(school_chain)) => self.policies.decide_on(
                &Principal {
                    user_id: actor.user_id.clone(),
                    role: actor.role.clone(),
                    org_chain,
                },
                action,
                &Resource::Referral {
                    referral_id: referral.id.clone(),
                    status: referral.status.clone(),
                    agency_chain,
                    school_chain,
                },
            ),
            _ => false,
        };
        if !allowed {
            return self.refuse(conn, actor, request, action, "referral", referral_id);
        }
        Ok((
            Capability {
                action,
                org_id: Some(referral.agency_id.clone()),
                case_id: Some(referral.case_id.clone()),
                referral_id: Some(referral.id.clone()),
                break_glass: false,
                actor: Some(actor.clone()),
                request: request.clone(),
            },
            referral,
        ))
    }

    /// A partner session (`authn::partner`) reading or answering its one
    /// referral: no policy is asked, because the session's whole scope is a
    /// stored fact (the referral its link was made for) that
    /// `authn::partner::admit` has just checked, and the partner is no
    /// member of the organisation tree the policies are written about. Only
    /// `referral.read` and `referral.respond` on that referral are granted;
    /// anything else is refused and audited. The actor is the link, never a
    /// user: `partner_link:<link id>` with the role `partner_link`.
    pub fn check_partner(
        &self,
        conn: &mut DbConnection,
        session: &crate::authn::partner::PartnerSession,
        request: &RequestContext,
        action: Action,
        referral_id: &str,
    ) -> Result<(Capability, ReferralRow), Refused> {
        let referral = referrals::find(conn, session.referral_id())?;
        let actor = crate::authn::partner::link_actor(session.link_id(), referral.as_ref());
        let permitted = matches!(action, Action::ReferralRead | Action::ReferralRespond)
            && referral_id == session.referral_id();
        let Some(referral) = referral.filter(|_| permitted) else {
            return self.refuse(conn, &actor, request, action, "referral", referral_id);
        };
        Ok((
            Capability {
                action,
                org_id: Some(referral.agency_id.clone()),
                case_id: Some(referral.case_id.clone()),
                referral_id: Some(referral.id.clone()),
                break_glass: false,
                actor: Some(actor),
                request: request.clone(),
            },
            referral,
        ))
    }

    /// Audits a refusal and refuses.
    fn refuse<T>(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        request: &RequestContext,
        action: Action,
        target_kind: &'static str,
        target_id: &str,
    ) -> Result<T, Refused> {
        write_transaction(conn, |conn| {
            self.auditor.append(
                conn,
                self.clock.as_ref(),
                &AuditEvent::new(action::ACCESS_DENIED, Outcome::Denied)
                    .actor(Some(actor.clone()))
                    .target(target_kind, target_id)
                    .request(request)
                    .detail("action", action.as_str()),
            )
        })?;
        Err(Refused::Denied)
    }
}
