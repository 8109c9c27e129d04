//! Checking the whole audit log: chain, sequence and signed checkpoints.

use std::collections::HashMap;
use std::fmt;

use super::{GENESIS_HASH, checkpoint_message, entry_hash};
use crate::crypto::jwt::ed25519_verify;
use crate::crypto::keyring::{KeyPurpose, Keyring};
use crate::db::DbConnection;
use crate::db::audit as table;

const PAGE: i64 = 2000;

/// The first thing found wrong, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry where the chain first fails.
    pub seq: i64,
    pub entry_id: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry_id {
            Some(id) => write!(f, "entry {} (id {id}): {}", self.seq, self.message),
            None => write!(f, "entry {}: {}", self.seq, self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: i64,
    pub checkpoints: usize,
    pub last_checkpoint: Option<i64>,
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Walks the whole chain and every checkpoint. Reads only.
pub fn verify(
    conn: &mut DbConnection,
    keyring: &Keyring,
) -> Result<VerifyReport, diesel::result::Error> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut expected_seq = 1_i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut hashes: HashMap<i64, String> = HashMap::new();
    let mut after = 0_i64;
    let checkpoints = table::checkpoints(conn)?;
    let checkpointed: std::collections::HashSet<i64> = checkpoints.iter().map(|c| c.seq).collect();
    loop {
        let page = table::page(conn, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            if problems.is_empty() {
                if row.seq != expected_seq {
                    problems.push(Problem {
                        seq: expected_seq,
                        entry_id: None,
                        message: format!(
                            "is missing: the sequence jumps from {} to {} (entries removed)",
                            expected_seq - 1,
                            row.seq
                        ),
                    });
                } else if row.prev_hash != prev_hash {
                    problems.push(Problem {
                        seq: row.seq,
                        entry_id: Some(row.id.clone()),
                        message: format!(
                            "does not follow entry {} (entries inserted, removed or reordered)",
                            row.seq - 1
                        ),
                    });
                } else if entry_hash(row) != row.entry_hash {
                    problems.push(Problem {
                        seq: row.seq,
                        entry_id: Some(row.id.clone()),
                        message: "was altered: its hash does not match its contents".into(),
                    });
                }
            }
            expected_seq = row.seq + 1;
            prev_hash = row.entry_hash.clone();
            if checkpointed.contains(&row.seq) {
                hashes.insert(row.seq, row.entry_hash.clone());
            }
        }
    }
    let entries = expected_seq - 1;
    let public_keys: HashMap<&str, Vec<u8>> = keyring
        .keys(KeyPurpose::AuditSigning)
        .iter()
        .filter_map(|key| {
            key.ed25519_public_key()
                .map(|public| (key.id.as_str(), public))
        })
        .collect();
    for checkpoint in &checkpoints {
        let problem = |message: String| Problem {
            seq: checkpoint.seq,
            entry_id: None,
            message,
        };
        let signature = hex::decode(&checkpoint.signature).unwrap_or_default();
        let signed = public_keys
            .get(checkpoint.key_id.as_str())
            .is_some_and(|public| {
                ed25519_verify(
                    public,
                    checkpoint_message(checkpoint.seq, &checkpoint.entry_hash).as_bytes(),
                    &signature,
                )
            });
        if !signed {
            problems.push(problem(format!(
                "its signed checkpoint does not verify with audit key {} (checkpoint forged or key missing)",
                checkpoint.key_id
            )));
        } else if checkpoint.seq > entries {
            problems.push(problem(format!(
                "is covered by a signed checkpoint, but the log ends at entry {entries} (entries removed from the end)"
            )));
        } else if hashes.get(&checkpoint.seq) != Some(&checkpoint.entry_hash) {
            problems.push(problem(
                "does not match its signed checkpoint (the chain was rewritten)".into(),
            ));
        }
    }
    problems.sort_by_key(|p| p.seq);
    Ok(VerifyReport {
        entries,
        checkpoints: checkpoints.len(),
        last_checkpoint: checkpoints.last().map(|c| c.seq),
        problem: problems.into_iter().next(),
    })
}
