//! Staff accounts: roles, email addresses, names and passwords.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::org::OrgKind;

/// Declares the role vocabulary (DESIGN §1).
macro_rules! roles {
    ($($variant:ident => $code:literal),+ $(,)?) => {
        /// What a user may do, fixed per account (DESIGN §1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Role { $($variant),+ }

        impl Role {
            pub const ALL: &'static [Role] = &[$(Role::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Role::$variant => $code),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw.trim() {
                    $($code => Ok(Role::$variant),)+
                    other => Err(format!(
                        "unknown role `{}` (expected one of: {})",
                        other.escape_debug(),
                        Self::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }
    };
}

roles! {
    Reporter => "reporter",
    FocalPoint => "focal_point",
    AgencyOfficer => "agency_officer",
    DistrictOfficer => "district_officer",
    Monitor => "monitor",
    Admin => "admin",
    Auditor => "auditor",
}

impl Role {
    /// The kind of organisation an account of this role belongs to.
    pub fn org_kind(self) -> OrgKind {
        match self {
            Self::Reporter | Self::FocalPoint => OrgKind::School,
            Self::AgencyOfficer => OrgKind::Agency,
            Self::DistrictOfficer | Self::Monitor | Self::Admin | Self::Auditor => OrgKind::Area,
        }
    }

    /// Whether a second factor is required to sign in. Every role that can
    /// see case content (ASVS 6.3.3), and the roles that manage accounts and
    /// read the audit log, must present one. Reporters only file concerns and
    /// see their own filings' status; they may enrol but are not forced to.
    pub fn requires_mfa(self) -> bool {
        !matches!(self, Self::Reporter)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A work email address, lower-cased. Used to sign in; never logged.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let problem = || "email must look like name@example.org".to_owned();
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(problem());
        }
        let (local, domain) = email.split_once('@').ok_or_else(problem)?;
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(problem());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, as context for the password-strength check.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress([redacted])")
    }
}

/// A person's display name.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err("name is empty".into());
        }
        if name.chars().count() > 200 {
            return Err("name is longer than 200 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("name contains control characters".into());
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisplayName([redacted])")
    }
}

/// Shortest password accepted (ASVS 6.2.1 asks at least 8; we ask 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: long passphrases are welcome (ASVS 6.2.9).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A new password that passed the policy. The text is secret.
#[derive(Debug, Clone)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks length and guessability. `context` holds words the password
    /// must not be built from (the user's name, email, the service name).
    /// zxcvbn carries frequency lists of common and breached passwords, names
    /// and words; anything it rates below "safely unguessable" is refused.
    pub fn parse(raw: &str, context: &[&str]) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!(
                "password must have at least {MIN_PASSWORD_CHARS} characters"
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!(
                "password must have at most {MAX_PASSWORD_CHARS} characters"
            ));
        }
        // zxcvbn's cost grows with length; the first 100 characters decide.
        let probe: String = raw.chars().take(100).collect();
        let mut words = vec!["caseguard"];
        words.extend_from_slice(context);
        let estimate = zxcvbn::zxcvbn(&probe, &words);
        if estimate.score() < zxcvbn::Score::Three {
            return Err("password is too common or too easy to guess; a few unrelated words make a good one".into());
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse(" Lan.Nguyen@Example.ORG ")
                .unwrap()
                .as_str(),
            "lan.nguyen@example.org"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@example.org",
            "a b@example.org",
            "a@@example.org",
            "a@-x.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(
            !format!("{:?}", EmailAddress::parse("x@example.org").unwrap()).contains("example")
        );
    }

    #[test]
    fn roles_round_trip_and_belong_to_the_right_kind() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), *role);
        }
        assert_eq!(Role::FocalPoint.org_kind(), OrgKind::School);
        assert_eq!(Role::AgencyOfficer.org_kind(), OrgKind::Agency);
        assert!(Role::FocalPoint.requires_mfa() && !Role::Reporter.requires_mfa());
        assert!(Role::parse("root").unwrap_err().contains("focal_point"));
    }

    #[test]
    fn password_policy() {
        assert!(
            NewPassword::parse("short", &[])
                .unwrap_err()
                .contains("at least 12")
        );
        for common in [
            "password1234",
            "123456789012",
            "qwertyuiopasdf",
            "caseguard2026!",
        ] {
            assert!(
                NewPassword::parse(common, &[]).is_err(),
                "{common} accepted"
            );
        }
        assert!(NewPassword::parse("lan.nguyen.2026", &["lan.nguyen"]).is_err());
        assert!(NewPassword::parse("mây trắng bay qua cánh đồng lúa", &[]).is_ok());
        assert!(NewPassword::parse("correct horse battery staple", &[]).is_ok());
        assert!(NewPassword::parse(&"x".repeat(257), &[]).is_err());
    }
}
