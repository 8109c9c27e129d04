//! Retention (`policies/retention.toml`): when a closed case's content has
//! been kept long enough, its data key is destroyed in the same transaction
//! as the audit entry saying so. Run hourly by the server and on demand by
//! `caseguard retention run`; safe to run on several replicas at once.

use chrono::Duration;
use serde::Deserialize;

use super::CaseError;
use crate::audit::{AuditEvent, Auditor, Outcome, action};
use crate::clock::Clock;
use crate::db::cases as table;
use crate::db::{DbConnection, write_transaction};

pub const DEFAULT_RETENTION: &str = include_str!("../../policies/retention.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    pub closed_case_content_days: i64,
}

impl RetentionPolicy {
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Self = toml::from_str(text)
            .map_err(|e| format!("retention policy: {}", e.message().trim()))?;
        if !(1..=36_500).contains(&policy.closed_case_content_days) {
            return Err(
                "retention policy: closed_case_content_days must be between 1 and 36500".into(),
            );
        }
        Ok(policy)
    }

    /// `retention.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Self::parse(DEFAULT_RETENTION),
            Some(dir) => {
                let path = dir.join("retention.toml");
                Self::parse(
                    &std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                )
            }
        }
    }
}

/// Destroys the content of every case past its retention; returns how many.
pub fn run(
    conn: &mut DbConnection,
    auditor: &Auditor,
    clock: &dyn Clock,
    policy: &RetentionPolicy,
) -> Result<usize, CaseError> {
    let cutoff = clock.now_naive() - Duration::days(policy.closed_case_content_days);
    let mut destroyed = 0;
    loop {
        let due = table::due_for_destruction(conn, cutoff, 100)?;
        if due.is_empty() {
            return Ok(destroyed);
        }
        let mut progressed = false;
        for case_id in due {
            let done = write_transaction(conn, |conn| -> Result<bool, CaseError> {
                if !table::destroy_content(conn, &case_id, clock.now_naive())? {
                    return Ok(false);
                }
                auditor.append(
                    conn,
                    clock,
                    &AuditEvent::new(action::CONTENT_DESTROYED, Outcome::Success)
                        .target("case", case_id.clone())
                        .detail("policy_days", policy.closed_case_content_days.to_string()),
                )?;
                Ok(true)
            })?;
            if done {
                destroyed += 1;
                progressed = true;
            }
        }
        if !progressed {
            return Ok(destroyed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_checked() {
        assert_eq!(
            RetentionPolicy::parse(DEFAULT_RETENTION)
                .unwrap()
                .closed_case_content_days,
            1825
        );
        assert!(RetentionPolicy::parse("closed_case_content_days = 0").is_err());
        assert!(
            RetentionPolicy::parse("closed_case_content_days = 10\nkeep = true")
                .unwrap_err()
                .contains("keep")
        );
    }
}
