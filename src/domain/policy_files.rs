//! The policy files the service runs with, kept as they were read at start
//! so administrators and auditors can see exactly what governs it (the
//! read-only policies page) and compare digests between replicas.
//!
//! The loaders (`Taxonomy::load`, `Protocol::load`, `Policies::load`…) read
//! the same files: from `policy_dir` when it is set (every file must be
//! there), otherwise the copies built into the binary.

use std::path::Path;

use crate::authz::{DEFAULT_POLICIES, DEFAULT_SCHEMA};
use crate::cases::retention::DEFAULT_RETENTION;
use crate::domain::calendar::DEFAULT_CALENDAR;
use crate::domain::protocol::DEFAULT_PROTOCOL;
use crate::domain::taxonomy::DEFAULT_TAXONOMY;
use crate::stats::policy::{DEFAULT_DISCLOSURE, DEFAULT_REPORTING};

/// Every policy file: its name and the copy built into the binary.
pub const FILES: [(&str, &str); 8] = [
    ("authz.cedar", DEFAULT_POLICIES),
    ("authz.cedarschema", DEFAULT_SCHEMA),
    ("taxonomy.toml", DEFAULT_TAXONOMY),
    ("referral-protocol.toml", DEFAULT_PROTOCOL),
    ("calendar-vn.toml", DEFAULT_CALENDAR),
    ("retention.toml", DEFAULT_RETENTION),
    ("reporting.toml", DEFAULT_REPORTING),
    ("disclosure.toml", DEFAULT_DISCLOSURE),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub name: &'static str,
    pub text: String,
    /// Lower-case hex SHA-256 of the text.
    pub sha256: String,
    /// Read from `policy_dir` (false: built into the binary).
    pub from_dir: bool,
}

fn digest(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// The files as the loaders read them.
pub fn load(dir: Option<&Path>) -> Result<Vec<PolicyFile>, String> {
    FILES
        .iter()
        .map(|(name, shipped)| {
            let text = match dir {
                None => (*shipped).to_owned(),
                Some(dir) => {
                    let path = dir.join(name);
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                }
            };
            Ok(PolicyFile {
                name,
                sha256: digest(&text),
                text,
                from_dir: dir.is_some(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_are_the_ones_in_policies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let shipped = load(None).unwrap();
        let read = load(Some(&dir)).unwrap();
        for (a, b) in shipped.iter().zip(&read) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.sha256, b.sha256, "{}", a.name);
            assert!(!a.from_dir && b.from_dir);
            assert_eq!(a.sha256.len(), 64);
        }
        let missing = load(Some(Path::new("/nonexistent-policy-dir"))).unwrap_err();
        assert!(missing.contains("authz.cedar"), "{missing}");
    }
}
