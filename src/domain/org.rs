//! Organisations: areas of any depth, schools and partner agencies.

use std::fmt;

/// Maximum depth of the organisation tree (a root area is depth 0). Deep
/// enough for country → region → province → district → commune → school.
pub const MAX_TREE_DEPTH: usize = 8;

/// An organisation's stable code, chosen by the operator (e.g. `AL-TH-01`).
/// Letters, digits, `.`, `_` and `-`; stored upper-case so `al-th-01` and
/// `AL-TH-01` cannot both exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode(String);

impl OrgCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim();
        if code.is_empty() {
            return Err("code is empty".into());
        }
        if code.chars().count() > 64 {
            return Err("code is longer than 64 characters".into());
        }
        let mut chars = code.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "code `{}` may only hold letters A–Z, digits, `.`, `_` and `-`, starting with a letter or digit",
                code.escape_debug()
            ));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation's display name (public, not personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
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

/// The level of an area in the tree, as the operator names it
/// (`province`, `district`, `commune`, `ward`, …). The tree's depth and the
/// names of its levels are data, not code: Vietnam removed the district tier in
/// 2025 in places, and other countries have other tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaLevel(String);

impl AreaLevel {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let level = raw.trim();
        let valid = (1..=32).contains(&level.len())
            && level.starts_with(|c: char| c.is_ascii_lowercase())
            && level
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "area level `{}` must be a lower-case word such as province, district or commune",
                level.escape_debug()
            ));
        }
        Ok(Self(level.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Declares a closed vocabulary: an enum with stable codes, `parse`,
/// `as_str` and the list of codes for error messages.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw.trim() {
                    $($code => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{}` (expected one of: {})",
                        $what,
                        other.escape_debug(),
                        Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// What an organisation is.
    OrgKind, "organisation kind" {
        Area => "area",
        School => "school",
        Agency => "agency",
    }
}

vocabulary! {
    /// The level of education a school provides. Combined-level schools
    /// (trường liên cấp) are common in Vietnam and have their own codes.
    SchoolLevel, "school level" {
        Kindergarten => "kindergarten",
        Primary => "primary",
        LowerSecondary => "lower_secondary",
        UpperSecondary => "upper_secondary",
        PrimaryLowerSecondary => "primary_lower_secondary",
        LowerUpperSecondary => "lower_upper_secondary",
        ContinuingEducation => "continuing_education",
        SpecialEducation => "special_education",
    }
}

vocabulary! {
    /// The kind of partner agency (DESIGN §1).
    AgencyType, "agency type" {
        Police => "police",
        Health => "health",
        SocialProtection => "social_protection",
        WomensUnion => "womens_union",
        LegalAid => "legal_aid",
        Hotline => "hotline",
        Other => "other",
    }
}

/// What kind of organisation, with what only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgDetails {
    Area { level: AreaLevel },
    School { level: SchoolLevel },
    Agency { agency_type: AgencyType },
}

impl OrgDetails {
    pub fn kind(&self) -> OrgKind {
        match self {
            Self::Area { .. } => OrgKind::Area,
            Self::School { .. } => OrgKind::School,
            Self::Agency { .. } => OrgKind::Agency,
        }
    }
}

/// A valid description of one organisation, as imported or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSpec {
    pub code: OrgCode,
    pub name: OrgName,
    /// Schools and agencies always have a parent area; only areas may be roots.
    pub parent: Option<OrgCode>,
    pub details: OrgDetails,
}

impl OrgSpec {
    /// Builds a spec from the fields of an import row, naming the first
    /// problem. `level` is the area level for areas and the school level for
    /// schools; `agency_type` is only for agencies.
    pub fn parse(
        kind: &str,
        code: &str,
        name: &str,
        parent: Option<&str>,
        level: Option<&str>,
        agency_type: Option<&str>,
    ) -> Result<Self, String> {
        let kind = OrgKind::parse(kind)?;
        let code = OrgCode::parse(code)?;
        let name = OrgName::parse(name)?;
        let parent = parent
            .map(OrgCode::parse)
            .transpose()
            .map_err(|e| format!("parent {e}"))?;
        let details = match kind {
            OrgKind::Area => {
                if agency_type.is_some() {
                    return Err("an area has no agency_type".into());
                }
                let level =
                    level.ok_or("an area needs a level (e.g. province, district, commune)")?;
                OrgDetails::Area {
                    level: AreaLevel::parse(level)?,
                }
            }
            OrgKind::School => {
                if agency_type.is_some() {
                    return Err("a school has no agency_type".into());
                }
                let level = level.ok_or("a school needs a level (e.g. primary)")?;
                OrgDetails::School {
                    level: SchoolLevel::parse(level)?,
                }
            }
            OrgKind::Agency => {
                if level.is_some() {
                    return Err("an agency has no level; use agency_type".into());
                }
                let agency_type = agency_type.ok_or("an agency needs an agency_type")?;
                OrgDetails::Agency {
                    agency_type: AgencyType::parse(agency_type)?,
                }
            }
        };
        if parent.is_none() && kind != OrgKind::Area {
            return Err(format!("a {kind} needs a parent area"));
        }
        if parent.as_ref() == Some(&code) {
            return Err("an organisation cannot be its own parent".into());
        }
        Ok(Self {
            code,
            name,
            parent,
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_normalised_to_upper_case() {
        assert_eq!(OrgCode::parse(" al-th-01 ").unwrap().as_str(), "AL-TH-01");
        assert!(OrgCode::parse("-x").is_err());
        assert!(OrgCode::parse("a b").is_err());
        assert!(OrgCode::parse("trường").is_err());
        assert!(OrgCode::parse(&"A".repeat(65)).is_err());
    }

    #[test]
    fn vocabulary_errors_list_the_choices() {
        let err = SchoolLevel::parse("high").unwrap_err();
        assert!(
            err.contains("unknown school level `high`") && err.contains("lower_secondary"),
            "{err}"
        );
        assert_eq!(
            AgencyType::parse("womens_union").unwrap(),
            AgencyType::WomensUnion
        );
    }

    #[test]
    fn names_collapse_whitespace_and_keep_vietnamese() {
        let name = OrgName::parse("  Trường  Tiểu học\tAn Bình ").unwrap();
        assert_eq!(name.as_str(), "Trường Tiểu học An Bình");
        assert!(OrgName::parse("   ").is_err());
    }

    #[test]
    fn specs_check_what_each_kind_needs() {
        assert!(OrgSpec::parse("school", "S1", "School", None, Some("primary"), None).is_err());
        assert!(
            OrgSpec::parse(
                "agency",
                "P1",
                "Police",
                Some("D"),
                Some("x"),
                Some("police")
            )
            .is_err()
        );
        assert!(
            OrgSpec::parse("area", "D", "District", Some("D"), Some("district"), None).is_err()
        );
        let spec =
            OrgSpec::parse("agency", "p1", "Công an", Some("d"), None, Some("police")).unwrap();
        assert_eq!(spec.parent.unwrap().as_str(), "D");
        assert_eq!(spec.details.kind(), OrgKind::Agency);
    }

    proptest! {
        #[test]
        fn parsed_codes_round_trip(raw in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            let code = OrgCode::parse(&raw).unwrap();
            prop_assert_eq!(OrgCode::parse(code.as_str()).unwrap(), code.clone());
            prop_assert_eq!(code.as_str(), raw.to_ascii_uppercase());
        }

        #[test]
        fn accepted_names_are_clean_and_stable(raw in "\\PC{0,80}|[\\t\\n a-z]{0,20}") {
            if let Ok(name) = OrgName::parse(&raw) {
                prop_assert!(!name.as_str().chars().any(char::is_control));
                prop_assert_eq!(name.as_str().trim(), name.as_str());
                prop_assert_eq!(OrgName::parse(name.as_str()).unwrap(), name.clone());
            }
            if let Ok(level) = AreaLevel::parse(&raw) {
                prop_assert!(level.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            }
        }
    }
}
