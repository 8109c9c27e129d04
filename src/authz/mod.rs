//! What a caller may do: one module, default deny (DESIGN §4, ASVS 8.2).
//!
//! Decisions are made by Cedar policies (`policies/authz.cedar`), validated
//! against their schema (`policies/authz.cedarschema`) at start: an invalid
//! policy stops the start with the parser's message. Entities come from the
//! database — the user, their organisation and its ancestors, the resource
//! organisation and its ancestors — so a change of role, organisation or
//! tree acts on the next request.
//!
//! A permitted check returns a capability (STYLE §4): a value that the
//! functions doing the work require, so forgetting a check does not compile.
//! A refused check writes an `authz.denied` audit entry. An error in loading
//! entities or evaluating a policy denies (fail closed, ASVS 16.5.3).

pub mod capability;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::db::DbConnection;
use crate::db::organisations::{self, OrganisationRow};
use crate::domain::org::MAX_TREE_DEPTH;

/// The policies shipped with caseguard.
pub const DEFAULT_POLICIES: &str = include_str!("../../policies/authz.cedar");
/// Their schema.
pub const DEFAULT_SCHEMA: &str = include_str!("../../policies/authz.cedarschema");

/// Declares the actions: Rust name, Cedar id.
macro_rules! actions {
    ($($variant:ident => $id:literal),+ $(,)?) => {
        /// Everything a policy decides about.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($variant),+ }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $id),+ }
            }
        }
    };
}

actions! {
    OrgRead => "org.read",
    UserList => "user.list",
    UserCreate => "user.create",
    UserDisable => "user.disable",
    UserResetMfa => "user.reset_mfa",
    AuditRead => "audit.read",
    AuditVerify => "audit.verify",
    CaseCreate => "case.create",
    CaseList => "case.list",
    CaseRead => "case.read",
    CaseBreakGlass => "case.break_glass",
    BreakGlassReview => "break_glass.review",
    CaseUpdate => "case.update",
    CaseAssign => "case.assign",
    CaseApproveClosure => "case.approve_closure",
    CaseLegalHold => "case.legal_hold",
    CaseTransfer => "case.transfer",
    CaseTransferAnswer => "case.transfer_answer",
    ReferralSend => "referral.send",
    ReferralOverrideConsent => "referral.override_consent",
    ReferralList => "referral.list",
    ReferralRead => "referral.read",
    ReferralRespond => "referral.respond",
    ReferralManage => "referral.manage",
    EscalationList => "escalation.list",
    StatsRead => "stats.read",
    StatsRelease => "stats.release",
    IndicatorsSubmit => "indicators.submit",
}

/// The loaded, validated policies.
pub struct Policies {
    schema: Schema,
    set: PolicySet,
    authorizer: Authorizer,
    org_type: EntityTypeName,
    user_type: EntityTypeName,
    case_type: EntityTypeName,
    referral_type: EntityTypeName,
    action_type: EntityTypeName,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.set.policies().count())
            .finish()
    }
}

impl Policies {
    /// Parses and strictly validates policies against the schema.
    pub fn parse(policies: &str, schema: &str) -> Result<Self, String> {
        let (schema, _warnings) = Schema::from_cedarschema_str(schema)
            .map_err(|e| format!("authorization schema: {e}"))?;
        let set =
            PolicySet::from_str(policies).map_err(|e| format!("authorization policies: {e}"))?;
        let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !validation.validation_passed() {
            let problems: Vec<String> = validation
                .validation_errors()
                .map(ToString::to_string)
                .collect();
            return Err(format!(
                "authorization policies do not match their schema: {}",
                problems.join("; ")
            ));
        }
        let name = |n: &str| EntityTypeName::from_str(n).map_err(|e| e.to_string());
        Ok(Self {
            schema,
            set,
            authorizer: Authorizer::new(),
            org_type: name("Caseguard::Org")?,
            user_type: name("Caseguard::User")?,
            case_type: name("Caseguard::Case")?,
            referral_type: name("Caseguard::Referral")?,
            action_type: name("Caseguard::Action")?,
        })
    }

    /// The shipped policies, or those in `dir` (`authz.cedar` and
    /// `authz.cedarschema`) when configured.
    pub fn load(dir: Option<&Path>) -> Result<Self, String> {
        match dir {
            None => Self::parse(DEFAULT_POLICIES, DEFAULT_SCHEMA),
            Some(dir) => {
                let read = |name: &str| {
                    std::fs::read_to_string(dir.join(name))
                        .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
                };
                Self::parse(&read("authz.cedar")?, &read("authz.cedarschema")?)
            }
        }
    }

    fn uid(&self, kind: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    }

    /// The decision for `principal` doing `action` on organisation
    /// `resource`. Any error is a denial.
    pub fn decide(&self, principal: &Principal, action: Action, resource: &OrgChain) -> bool {
        self.decide_on(principal, action, &Resource::Org(resource.clone()))
    }

    /// The decision for `principal` doing `action` on `resource`. Any error
    /// is a denial.
    pub fn decide_on(&self, principal: &Principal, action: Action, resource: &Resource) -> bool {
        self.try_decide(principal, action, resource)
            .unwrap_or(false)
    }

    fn try_decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
    ) -> Result<bool, String> {
        let resource_orgs = match resource {
            Resource::Org(chain) => chain,
            Resource::Case { org_chain, .. } => org_chain,
            Resource::Referral { agency_chain, .. } => agency_chain,
        };
        let school_chain = match resource {
            Resource::Referral { school_chain, .. } => Some(school_chain),
            _ => None,
        };
        let mut orgs: HashMap<String, Entity> = HashMap::new();
        for org in principal
            .org_chain
            .0
            .iter()
            .chain(resource_orgs.0.iter())
            .chain(school_chain.iter().flat_map(|c| c.0.iter()))
        {
            if orgs.contains_key(&org.id) {
                continue;
            }
            let parents: HashSet<EntityUid> = org
                .parent_id
                .iter()
                .map(|p| self.uid(&self.org_type, p))
                .collect();
            let attrs = HashMap::from([(
                "kind".to_owned(),
                RestrictedExpression::new_string(org.kind.clone()),
            )]);
            let entity = Entity::new(self.uid(&self.org_type, &org.id), attrs, parents)
                .map_err(|e| e.to_string())?;
            orgs.insert(org.id.clone(), entity);
        }
        let principal_org = principal
            .org_chain
            .0
            .first()
            .ok_or("principal without organisation")?;
        let resource_org = resource_orgs
            .0
            .first()
            .ok_or("resource without organisation")?;
        let org_uid = self.uid(&self.org_type, &principal_org.id);
        let user = Entity::new(
            self.uid(&self.user_type, &principal.user_id),
            HashMap::from([
                (
                    "role".to_owned(),
                    RestrictedExpression::new_string(principal.role.clone()),
                ),
                (
                    "org".to_owned(),
                    RestrictedExpression::new_entity_uid(org_uid.clone()),
                ),
            ]),
            HashSet::from([org_uid]),
        )
        .map_err(|e| e.to_string())?;
        let mut entities = vec![user];
        let (resource_uid, context) = match resource {
            Resource::Org(_) => (self.uid(&self.org_type, &resource_org.id), Context::empty()),
            Resource::Referral {
                referral_id,
                status,
                school_chain,
                ..
            } => {
                let school = school_chain.org_id().ok_or("referral without school")?;
                let referral_uid = self.uid(&self.referral_type, referral_id);
                entities.push(
                    Entity::new(
                        referral_uid.clone(),
                        HashMap::from([
                            (
                                "status".to_owned(),
                                RestrictedExpression::new_string(status.clone()),
                            ),
                            (
                                "school".to_owned(),
                                RestrictedExpression::new_entity_uid(
                                    self.uid(&self.org_type, school),
                                ),
                            ),
                        ]),
                        HashSet::from([self.uid(&self.org_type, &resource_org.id)]),
                    )
                    .map_err(|e| e.to_string())?,
                );
                (referral_uid, Context::empty())
            }
            Resource::Case {
                case_id,
                status,
                child,
                break_glass,
                ..
            } => {
                let case_uid = self.uid(&self.case_type, case_id);
                entities.push(
                    Entity::new(
                        case_uid.clone(),
                        HashMap::from([
                            (
                                "status".to_owned(),
                                RestrictedExpression::new_string(status.clone()),
                            ),
                            ("child".to_owned(), RestrictedExpression::new_bool(*child)),
                        ]),
                        HashSet::from([self.uid(&self.org_type, &resource_org.id)]),
                    )
                    .map_err(|e| e.to_string())?,
                );
                let context = if action == Action::CaseRead {
                    Context::from_pairs([(
                        "break_glass".to_owned(),
                        RestrictedExpression::new_bool(*break_glass),
                    )])
                    .map_err(|e| e.to_string())?
                } else {
                    Context::empty()
                };
                (case_uid, context)
            }
        };
        let entities =
            Entities::from_entities(orgs.into_values().chain(entities), Some(&self.schema))
                .map_err(|e| e.to_string())?;
        let request = Request::new(
            self.uid(&self.user_type, &principal.user_id),
            self.uid(&self.action_type, action.as_str()),
            resource_uid,
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &entities);
        if response.diagnostics().errors().next().is_some() {
            // A policy that errors must not let anything through.
            return Ok(false);
        }
        Ok(response.decision() == Decision::Allow)
    }
}

/// An organisation and its ancestors, nearest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgChain(pub Vec<OrgNode>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgNode {
    pub id: String,
    pub kind: String,
    pub parent_id: Option<String>,
}

impl From<&OrganisationRow> for OrgNode {
    fn from(row: &OrganisationRow) -> Self {
        Self {
            id: row.id.clone(),
            kind: row.kind.clone(),
            parent_id: row.parent_id.clone(),
        }
    }
}

impl OrgChain {
    /// Loads `org_id` and its ancestors; `None` when it does not exist.
    pub fn load(
        conn: &mut DbConnection,
        org_id: &str,
    ) -> Result<Option<Self>, diesel::result::Error> {
        let max = i64::try_from(MAX_TREE_DEPTH + 2).unwrap_or(i64::MAX);
        let rows = organisations::chain(conn, org_id, max)?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self(
            rows.into_iter()
                .map(|row| OrgNode {
                    id: row.id,
                    kind: row.kind,
                    parent_id: row.parent_id,
                })
                .collect(),
        )))
    }

    pub fn org_id(&self) -> Option<&str> {
        self.0.first().map(|n| n.id.as_str())
    }
}

/// What an action is about.
#[derive(Debug, Clone)]
pub enum Resource {
    /// An organisation (with its ancestors).
    Org(OrgChain),
    /// A case, with its school's chain and whether the caller holds an
    /// unexpired break-glass grant for it.
    Case {
        case_id: String,
        status: String,
        org_chain: OrgChain,
        /// Under 18, or of unknown age.
        child: bool,
        break_glass: bool,
    },
    /// A referral, with the recipient agency's chain and the school's.
    Referral {
        referral_id: String,
        status: String,
        agency_chain: OrgChain,
        school_chain: OrgChain,
    },
}

/// Who is asking, as the policies see them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub role: String,
    pub org_chain: OrgChain,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_validate() {
        Policies::load(None).unwrap();
    }

    #[test]
    fn invalid_policies_are_refused_with_the_parsers_message() {
        let err = Policies::parse(
            "permit (principal, action, resource) when { principal.rol == 1 };",
            DEFAULT_SCHEMA,
        )
        .err()
        .unwrap();
        assert!(err.contains("do not match their schema"), "{err}");
        let err = Policies::parse("permit (principal, action resource);", DEFAULT_SCHEMA)
            .err()
            .unwrap();
        assert!(err.starts_with("authorization policies:"), "{err}");
    }

    #[test]
    fn every_action_is_in_the_schema() {
        for action in Action::ALL {
            assert!(
                DEFAULT_SCHEMA.contains(&format!("action \"{}\"", action.as_str())),
                "{action:?}"
            );
        }
    }
}
