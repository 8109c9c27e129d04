//! Is a store whole and readable with this keyring? The audit chain and its
//! signed checkpoints verify, and every case whose content has not been
//! destroyed by retention has a data key the keyring unwraps and a sealed
//! field that key opens. Plaintext is opened only to prove it opens and is
//! dropped (zeroized) at once; nothing of it is returned or printed.

use diesel::prelude::*;

use super::StoreError;
use crate::audit::VerifyReport;
use crate::crypto::envelope::{DataKey, KeyBinding};
use crate::crypto::keyring::Keyring;
use crate::crypto::sealed::{self, Binding};
use crate::db::DbConnection;
use crate::db::schema::{case_keys, cases, pupils};

#[derive(Debug, Clone)]
pub struct StoreCheck {
    pub audit: VerifyReport,
    pub cases: usize,
    /// Cases whose data key unwrapped and whose pupil's name opened.
    pub cases_readable: usize,
    /// Cases whose content retention destroyed (nothing to open).
    pub cases_destroyed: usize,
    /// The cases that failed, with why (ids and key ids only).
    pub case_problems: Vec<String>,
}

impl StoreCheck {
    /// The first thing wrong, for a one-line message.
    pub fn problem(&self) -> Option<String> {
        if let Some(problem) = &self.audit.problem {
            return Some(format!("audit log: {problem}"));
        }
        self.case_problems.first().map(|first| {
            format!(
                "{} case(s) cannot be opened with this keyring; first: {first}",
                self.case_problems.len()
            )
        })
    }

    /// One line for the operator.
    pub fn summary(&self) -> String {
        let audit = match &self.audit.problem {
            None => format!(
                "audit log intact ({} entries, {} signed checkpoint(s))",
                self.audit.entries, self.audit.checkpoints
            ),
            Some(problem) => format!("audit log BROKEN at {problem}"),
        };
        format!(
            "{audit}; {} case(s): {} readable, {} with content destroyed by retention, {} unreadable",
            self.cases,
            self.cases_readable,
            self.cases_destroyed,
            self.case_problems.len()
        )
    }
}

/// A case id, whether its content was destroyed, its wrapped data key, its
/// pupil's sealed name, and the school its key is bound to now (a
/// transferred case's: the case's school) if it is bound to one.
type CaseKeyRow = (
    String,
    bool,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
    String,
);

/// Checks the audit chain and opens every case.
pub fn check(conn: &mut DbConnection, keyring: &Keyring) -> Result<StoreCheck, StoreError> {
    let audit = crate::audit::verify(conn, keyring)?;
    let rows: Vec<CaseKeyRow> = cases::table
        .left_join(case_keys::table)
        .left_join(pupils::table)
        .select((
            cases::id,
            cases::content_destroyed_at.is_not_null(),
            case_keys::wrapped_dek.nullable(),
            pupils::name_enc.nullable(),
            case_keys::bound_school_id.nullable(),
            cases::school_id,
        ))
        .order(cases::id)
        .load(conn)?;
    let mut report = StoreCheck {
        audit,
        cases: rows.len(),
        cases_readable: 0,
        cases_destroyed: 0,
        case_problems: Vec::new(),
    };
    for (case_id, destroyed, wrapped, name, bound, school_id) in rows {
        let bound = bound.map(|_| school_id);
        if destroyed {
            report.cases_destroyed += 1;
            continue;
        }
        match open_case(
            keyring,
            &case_id,
            bound.as_deref(),
            wrapped.as_deref(),
            name.as_deref(),
        ) {
            Ok(()) => report.cases_readable += 1,
            Err(why) => report.case_problems.push(format!("case {case_id}: {why}")),
        }
    }
    Ok(report)
}

fn open_case(
    keyring: &Keyring,
    case_id: &str,
    bound_school: Option<&str>,
    wrapped: Option<&[u8]>,
    name: Option<&[u8]>,
) -> Result<(), String> {
    let wrapped = wrapped.ok_or("its data key is missing")?;
    let bound = bound_school.map_or(KeyBinding::Case, KeyBinding::School);
    let dek = DataKey::unwrap_bound(keyring, case_id, bound, wrapped).map_err(|_| {
        match sealed::key_id(wrapped) {
            Ok(kek) if keyring.get(crate::crypto::keyring::KeyPurpose::FieldKek, kek).is_none() => format!(
                "its data key is wrapped by key-encryption key {kek}, which this keyring does not hold"
            ),
            _ => "its data key does not unwrap (damaged or moved)".to_owned(),
        }
    })?;
    let name = name.ok_or("the pupil row is missing")?;
    let binding = Binding {
        table: "pupils",
        column: "name_enc",
        row_id: case_id,
        case_id,
    };
    dek.open(&binding, name)
        .map(drop)
        .map_err(|_| "the pupil's sealed name does not open with its data key".to_owned())
}
