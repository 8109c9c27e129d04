//! The taxonomy: every closed vocabulary of a case, as data
//! (`policies/taxonomy.toml`), validated at start.
//!
//! Each category is a list of terms with a stable code and labels in
//! Vietnamese and English; banded categories (ages, reporting delays) also
//! carry their bounds so derived codes come from data, not code. Input is
//! accepted only as a code of the right category ([`Taxonomy::code`]).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::org::SchoolLevel;

/// The shipped taxonomy.
pub const DEFAULT_TAXONOMY: &str = include_str!("../../policies/taxonomy.toml");

/// The categories a taxonomy must have.
pub const CATEGORIES: &[&str] = &[
    "sex",
    "incident_type",
    "csa_subtype",
    "context",
    "perpetrator_relation",
    "location_type",
    "age_band",
    "perpetrator_age_group",
    "risk_level",
    "school_level",
    "reporting_delay",
    "closure_reason",
    "consent_giver",
    "legal_basis",
    "legal_hold_reason",
    "legal_hold_lift_reason",
    "decline_reason",
];

/// Categories whose terms are numeric bands.
const BANDED: &[&str] = &["age_band", "reporting_delay"];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub code: String,
    pub vi: String,
    pub en: String,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// The group of a context term (one of [`CONTEXT_GROUPS`]): the
    /// intake form lists each group apart, so no context reads as a type.
    #[serde(default)]
    pub group: Option<String>,
}

/// The groups of the `context` category (REFERENCE.md §5): the GBVIMS
/// contexts, the school contexts, and the forms Vietnamese law names apart
/// from the GBVIMS type.
pub const CONTEXT_GROUPS: &[&str] = &["gbvims", "school", "national"];

/// A loaded, valid taxonomy.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    categories: BTreeMap<String, Vec<Term>>,
}

impl Taxonomy {
    /// Parses and validates; the error names the category, code and rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        let categories: BTreeMap<String, Vec<Term>> =
            toml::from_str(text).map_err(|e| format!("taxonomy: {}", e.message().trim()))?;
        for name in categories.keys() {
            if !CATEGORIES.contains(&name.as_str()) {
                return Err(format!("taxonomy: unknown category `{name}`"));
            }
        }
        for name in CATEGORIES {
            let terms = categories
                .get(*name)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("taxonomy: category `{name}` is missing or empty"))?;
            let mut seen = HashSet::new();
            for term in terms {
                let code_ok = (1..=40).contains(&term.code.len())
                    && term
                        .code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !code_ok {
                    return Err(format!(
                        "taxonomy: {name}: code `{}` must be lower-case letters, digits and `_`",
                        term.code.escape_debug()
                    ));
                }
                if !seen.insert(term.code.as_str()) {
                    return Err(format!("taxonomy: {name}: duplicate code `{}`", term.code));
                }
                for (language, label) in [("vi", &term.vi), ("en", &term.en)] {
                    if label.trim().is_empty() {
                        return Err(format!(
                            "taxonomy: {name}: `{}` has no {language} label",
                            term.code
                        ));
                    }
                }
                let grouped = *name == "context";
                match term.group.as_deref() {
                    Some(g) if grouped && CONTEXT_GROUPS.contains(&g) => {}
                    None if !grouped => {}
                    _ => {
                        return Err(format!(
                            "taxonomy: {name}: `{}` {}",
                            term.code,
                            if grouped {
                                "needs a group: gbvims, school or national"
                            } else {
                                "must not have a group"
                            }
                        ));
                    }
                }
                let banded = BANDED.contains(name);
                if banded != (term.min.is_some() && term.max.is_some()) {
                    return Err(format!(
                        "taxonomy: {name}: `{}` {} min and max",
                        term.code,
                        if banded { "needs" } else { "must not have" }
                    ));
                }
            }
            if BANDED.contains(name) {
                check_bands(name, terms)?;
            }
        }
        let levels: HashSet<&str> = categories
            .get("school_level")
            .map(|terms| terms.iter().map(|t| t.code.as_str()).collect())
            .unwrap_or_default();
        let known: HashSet<&str> = SchoolLevel::ALL.iter().map(|l| l.as_str()).collect();
        if levels != known {
            return Err(
                "taxonomy: school_level must list exactly the school levels organisations use"
                    .into(),
            );
        }
        Ok(Self { categories })
    }

    pub fn default_shipped() -> Result<Self, String> {
        Self::parse(DEFAULT_TAXONOMY)
    }

    /// Loads `taxonomy.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Self::default_shipped(),
            Some(dir) => {
                let path = dir.join("taxonomy.toml");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Self::parse(&text)
            }
        }
    }

    pub fn terms(&self, category: &str) -> &[Term] {
        self.categories.get(category).map_or(&[], Vec::as_slice)
    }

    /// Accepts `raw` only if it is a code of `category`.
    pub fn code(&self, category: &str, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        if self.terms(category).iter().any(|t| t.code == raw) {
            Ok(raw.to_owned())
        } else {
            // The value is not repeated: someone may have typed a name here.
            Err(format!(
                "is not a known {category} code (expected one of: {})",
                self.terms(category)
                    .iter()
                    .map(|t| t.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }

    /// The band of `category` containing `value`.
    pub fn band(&self, category: &str, value: i64) -> Option<&str> {
        self.terms(category)
            .iter()
            .find(|t| {
                t.min.is_some_and(|min| min <= value) && t.max.is_some_and(|max| value <= max)
            })
            .map(|t| t.code.as_str())
    }

    /// A term's label in `language` (`vi` or `en`).
    pub fn label(&self, category: &str, code: &str, language: &str) -> Option<&str> {
        let term = self.terms(category).iter().find(|t| t.code == code)?;
        Some(if language == "en" { &term.en } else { &term.vi })
    }
}

/// Bands must start at 0 and follow each other without gap or overlap.
fn check_bands(name: &str, terms: &[Term]) -> Result<(), String> {
    let mut bands: Vec<(i64, i64, &str)> = terms
        .iter()
        .filter_map(|t| Some((t.min?, t.max?, t.code.as_str())))
        .collect();
    bands.sort_unstable();
    let mut next = 0;
    for (min, max, code) in bands {
        if min != next || max < min {
            return Err(format!(
                "taxonomy: {name}: band `{code}` ({min}–{max}) leaves a gap or overlaps (expected to start at {next})"
            ));
        }
        next = max + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_taxonomy_is_valid_and_complete() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        assert_eq!(
            taxonomy.terms("incident_type").len(),
            6,
            "the six GBVIMS core types"
        );
        assert_eq!(
            taxonomy.terms("csa_subtype").len(),
            5,
            "the Decree 56 sub-types"
        );
        assert_eq!(taxonomy.band("age_band", 9), Some("6_10"));
        assert_eq!(taxonomy.band("age_band", 15), Some("15_17"));
        assert_eq!(taxonomy.band("reporting_delay", 31), Some("over_30_days"));
        assert_eq!(taxonomy.label("risk_level", "high", "vi"), Some("Cao"));
        assert!(taxonomy.code("incident_type", "rape").is_ok());
        let err = taxonomy.code("incident_type", "theft").unwrap_err();
        assert!(
            err.contains("not a known incident_type code") && err.contains("sexual_assault"),
            "{err}"
        );
    }

    #[test]
    fn broken_taxonomies_are_refused_with_a_reason() {
        let shipped = DEFAULT_TAXONOMY;
        let duplicate =
            format!("{shipped}\n[[risk_level]]\ncode = \"low\"\nvi = \"Thấp\"\nen = \"Low\"\n");
        assert!(
            Taxonomy::parse(&duplicate)
                .unwrap_err()
                .contains("risk_level: duplicate code `low`")
        );
        let unlabelled =
            format!("{shipped}\n[[risk_level]]\ncode = \"extreme\"\nvi = \"\"\nen = \"Extreme\"\n");
        assert!(
            Taxonomy::parse(&unlabelled)
                .unwrap_err()
                .contains("`extreme` has no vi label")
        );
        let gap = shipped.replace("min = 6\nmax = 10", "min = 7\nmax = 10");
        assert!(
            Taxonomy::parse(&gap)
                .unwrap_err()
                .contains("gap or overlaps")
        );
        let unknown = format!("{shipped}\n[[colour]]\ncode = \"red\"\nvi = \"Đỏ\"\nen = \"Red\"\n");
        assert!(
            Taxonomy::parse(&unknown)
                .unwrap_err()
                .contains("unknown category `colour`")
        );
        // Every context has its group (the intake form lists them apart).
        let ungrouped =
            format!("{shipped}\n[[context]]\ncode = \"x_new\"\nvi = \"Mới\"\nen = \"New\"\n");
        assert!(
            Taxonomy::parse(&ungrouped)
                .unwrap_err()
                .contains("context: `x_new` needs a group")
        );
        let misgrouped =
            shipped.replace("code = \"rape\"\n", "code = \"rape\"\ngroup = \"school\"\n");
        assert!(
            Taxonomy::parse(&misgrouped)
                .unwrap_err()
                .contains("incident_type: `rape` must not have a group")
        );
    }
}
