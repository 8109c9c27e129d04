//! `caseguard demo`: a fictional district with accounts of every role, for
//! trials and demonstrations. Every place, school, agency and person here is
//! invented. The demo's passwords and TOTP secrets are public, so the
//! command refuses to run in production.

use crate::audit::Auditor;
use crate::authn::accounts::{self, AccountError, NewAccount};
use crate::authn::password;
use crate::authn::totp;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::keyring::Keyring;
use crate::crypto::{SecretBytes, sha256_hex};
use crate::db::{DbConnection, users};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, NewPassword, Role};
use crate::orgs::import::{self, ImportError, ImportSummary};

/// The demo district, in the import format.
pub const DISTRICT: &str = include_str!("district.toml");

/// Loads the demo organisations. Running it again changes nothing.
pub fn load_organisations(
    conn: &mut DbConnection,
    clock: &dyn Clock,
) -> Result<ImportSummary, ImportError> {
    let rows = import::parse_toml(DISTRICT)?;
    import::import(conn, &rows, clock)
}

/// One demo account: (role, organisation code, email, display name).
pub const ACCOUNTS: &[(Role, &str, &str, &str)] = &[
    (
        Role::Reporter,
        "SX-AL-AB-TH",
        "giaovien.anbinh@demo.caseguard.invalid",
        "Cô Trần Thị Mai (demo)",
    ),
    (
        Role::FocalPoint,
        "SX-AL-AB-TH",
        "daumoi.anbinh@demo.caseguard.invalid",
        "Cô Lê Thị Hoa (demo)",
    ),
    (
        Role::FocalPoint,
        "SX-AL-PM-THCS",
        "daumoi.phumy@demo.caseguard.invalid",
        "Thầy Phạm Văn Nam (demo)",
    ),
    (
        Role::AgencyOfficer,
        "SX-AL-CA",
        "congan.anlac@demo.caseguard.invalid",
        "Đại úy Võ Minh Tuấn (demo)",
    ),
    (
        Role::AgencyOfficer,
        "SX-AL-YT",
        "yte.anlac@demo.caseguard.invalid",
        "Bác sĩ Ngô Thị Lan (demo)",
    ),
    (
        Role::DistrictOfficer,
        "SX-AL",
        "phonggd.anlac@demo.caseguard.invalid",
        "Ông Đặng Quốc Bảo (demo)",
    ),
    (
        Role::Monitor,
        "SX-AL",
        "thongke.anlac@demo.caseguard.invalid",
        "Bà Hồ Thị Thu (demo)",
    ),
    (
        Role::Admin,
        "SX",
        "quantri@demo.caseguard.invalid",
        "Quản trị hệ thống (demo)",
    ),
    (
        Role::Auditor,
        "SX",
        "kiemtra@demo.caseguard.invalid",
        "Kiểm tra viên (demo)",
    ),
];

/// The demo password of an account: public, long enough and not common.
pub fn password_for(email: &str) -> String {
    let name = email.split('@').next().unwrap_or_default();
    format!("{name} thử nghiệm sông xanh")
}

/// The demo TOTP secret of an account: derived, so it is the same on every
/// machine and every run.
pub fn totp_secret_for(email: &str) -> SecretBytes {
    let digest = sha256_hex(format!("caseguard demo totp {email}").as_bytes());
    SecretBytes::new(digest.as_bytes().iter().take(20).copied().collect())
}

/// A demo login, as printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoLogin {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub org: String,
    pub totp_uri: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("demo data is invalid: {0}")]
    Invalid(String),
}

/// Creates the demo accounts that do not exist yet; returns every demo login.
pub fn load_accounts(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
) -> Result<Vec<DemoLogin>, DemoError> {
    let mut logins = Vec::new();
    for (role, org, email, name) in ACCOUNTS {
        let email = EmailAddress::parse(email).map_err(DemoError::Invalid)?;
        let password = password_for(email.as_str());
        let secret = totp_secret_for(email.as_str());
        let totp_uri = totp::otpauth_uri(&secret, email.as_str())
            .map_err(|e| DemoError::Invalid(e.to_string()))?;
        let user_id =
            match users::find_by_email(conn, email.as_str()).map_err(AccountError::from)? {
                Some(user) => user.id,
                None => {
                    let checked = NewPassword::parse(&password, &[email.local_part()])
                        .map_err(DemoError::Invalid)?;
                    let hash = password::hash_blocking(checked.expose())
                        .map_err(|e| DemoError::Invalid(e.to_string()))?;
                    accounts::create(
                        conn,
                        keyring,
                        auditor,
                        clock,
                        NewAccount {
                            org: OrgCode::parse(org).map_err(DemoError::Invalid)?,
                            role: *role,
                            email: email.clone(),
                            name: DisplayName::parse(name).map_err(DemoError::Invalid)?,
                            password_hash: Some(hash),
                            totp_secret: Some(secret),
                        },
                        &Capability::for_operator(Action::UserCreate),
                    )?
                    .user_id
                }
            };
        logins.push(DemoLogin {
            user_id,
            email: email.as_str().to_owned(),
            role: role.as_str().to_owned(),
            org: (*org).to_owned(),
            totp_uri,
            password,
        });
    }
    Ok(logins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::{AgencyType, OrgSpec};

    #[test]
    fn demo_district_has_what_trials_need() {
        let rows = import::parse_toml(DISTRICT).unwrap();
        let specs: Vec<OrgSpec> = rows
            .iter()
            .map(|r| {
                OrgSpec::parse(
                    &r.kind,
                    &r.code,
                    &r.name,
                    r.parent.as_deref(),
                    r.level.as_deref(),
                    r.agency_type.as_deref(),
                )
                .unwrap()
            })
            .collect();
        let count = |level: &str| {
            rows.iter()
                .filter(|r| r.level.as_deref() == Some(level))
                .count()
        };
        assert!(count("commune") >= 2);
        assert!(rows.iter().filter(|r| r.kind == "school").count() >= 6);
        let school_levels: std::collections::HashSet<_> = rows
            .iter()
            .filter(|r| r.kind == "school")
            .filter_map(|r| r.level.clone())
            .collect();
        assert!(school_levels.len() >= 3, "{school_levels:?}");
        for agency_type in AgencyType::ALL {
            assert!(
                rows.iter()
                    .any(|r| r.agency_type.as_deref() == Some(agency_type.as_str())),
                "no {agency_type} agency"
            );
        }
        assert_eq!(specs.len(), rows.len());
    }

    #[test]
    fn every_role_has_a_demo_account_with_a_policy_passing_password() {
        for role in Role::ALL {
            assert!(ACCOUNTS.iter().any(|(r, ..)| r == role), "{role}");
        }
        for (_, _, email, _) in ACCOUNTS {
            let local = email.split('@').next().unwrap();
            NewPassword::parse(&password_for(email), &[local]).unwrap();
        }
    }
}
