//! Whole-store operations: `caseguard backup`, `restore` and `migrate-store`.
//!
//! One backend-neutral copy serves all three. The tables are those the
//! database's catalog lists ([`catalog`]), in foreign-key order, so a table a
//! later migration adds is included without a code change; rows are read and
//! written generically ([`rows`]). A backup is that copy written as JSON lines
//! into an encrypted, chunk-authenticated archive ([`archive`],
//! `crypto/stream.rs`) — it holds no key, and it restores into either
//! backend. After a restore or a move, the copy is checked before it is
//! committed ([`check`]): every table's row count, the audit chain and its
//! signatures, and every case's data key and one sealed field.
//!
//! This module never prints or logs a value it copies.

pub mod archive;
pub mod catalog;
pub mod check;
pub mod rows;

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;

use crate::audit::{AuditError, AuditEvent, Auditor, Outcome};
use crate::clock::Clock;
use crate::crypto::keyring::Keyring;
use crate::db::migrations::{self, MigrationError};
use crate::db::{DbConnection, write_transaction};
use catalog::Table;
use rows::{Inserter, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Schema(String),
    #[error("{0}")]
    Archive(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    NotEmpty(String),
    #[error("{0}")]
    Incompatible(String),
    #[error("the copy did not verify, so nothing was kept: {0}")]
    Unverified(String),
}

/// Rows per table.
pub type Counts = BTreeMap<String, u64>;

/// Runs `work` in a read-only snapshot: every table is read as of one
/// instant while the service goes on writing.
pub fn read_snapshot<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let begin = match conn {
        DbConnection::Postgresql(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        // Deferred: the snapshot is taken at the first read and kept (WAL).
        DbConnection::Sqlite(_) => "BEGIN",
    };
    conn.batch_execute(begin)?;
    let outcome = work(conn);
    let end = conn.batch_execute(if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    });
    let value = outcome?;
    end?;
    Ok(value)
}

/// Reads every table of `conn` (which should be in a snapshot), handing
/// each table and its rows to `sink`.
pub fn read_all(
    conn: &mut DbConnection,
    tables: &[Table],
    sink: &mut dyn RowSink,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::new();
    for table in tables {
        sink.begin_table(table)?;
        let n = rows::read_table(conn, table, &mut |row| sink.row(row))?;
        sink.end_table(table, n)?;
        counts.insert(table.name.clone(), n);
    }
    Ok(counts)
}

/// Where copied rows go: an archive, or another database.
pub trait RowSink {
    fn begin_table(&mut self, table: &Table) -> Result<(), StoreError>;
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError>;
    fn end_table(&mut self, table: &Table, rows: u64) -> Result<(), StoreError>;
}

/// Writes rows into a database, checking each table's count.
pub struct DatabaseSink<'c> {
    conn: &'c mut DbConnection,
    inserter: Inserter,
    /// Tables that held rows before (seeded by a migration): emptied first.
    seeded: Vec<String>,
    pub counts: Counts,
}

impl<'c> DatabaseSink<'c> {
    pub fn new(conn: &'c mut DbConnection, seeded: Vec<String>) -> Self {
        Self {
            conn,
            inserter: Inserter::new(),
            seeded,
            counts: Counts::new(),
        }
    }
}

impl RowSink for DatabaseSink<'_> {
    fn begin_table(&mut self, table: &Table) -> Result<(), StoreError> {
        if self.seeded.contains(&table.name) {
            catalog::identifier(&table.name)?;
            self.conn
                .batch_execute(&format!("DELETE FROM \"{}\"", table.name))?;
        }
        self.inserter.begin(self.conn, table)
    }

    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        self.inserter.push(self.conn, row)
    }

    fn end_table(&mut self, table: &Table, rows: u64) -> Result<(), StoreError> {
        self.inserter.flush(self.conn)?;
        let stored = catalog::count(self.conn, &table.name)?;
        if self.inserter.inserted != rows || stored != rows {
            return Err(StoreError::Unverified(format!(
                "table {}: {rows} row(s) expected, {} inserted, {stored} stored",
                table.name, self.inserter.inserted
            )));
        }
        self.counts.insert(table.name.clone(), stored);
        Ok(())
    }
}

/// Tables whose rows mean a store has been used. A store where they are all
/// empty holds nothing but what its migrations may have seeded.
const USE_MARKERS: &[&str] = &["audit_log", "users", "organisations", "cases"];

/// Prepares `conn` to receive a copy of a store with the given migrations
/// and tables: it must be empty (or not exist yet); it is then brought to
/// exactly those migrations, and its tables must match. Returns the tables
/// that migrations seeded with rows (the copy replaces those rows).
pub fn prepare_target(
    conn: &mut DbConnection,
    source_migrations: &[String],
    source_tables: &[Table],
) -> Result<Vec<String>, StoreError> {
    let known = migrations::known(conn);
    if let Some(newer) = source_migrations.iter().find(|v| !known.contains(v)) {
        return Err(StoreError::Incompatible(format!(
            "the source was migrated by a newer caseguard (migration {newer}); use that release or a later one"
        )));
    }
    let existing = catalog::tables(conn)?;
    for table in &existing {
        if USE_MARKERS.contains(&table.name.as_str()) && catalog::count(conn, &table.name)? > 0 {
            return Err(StoreError::NotEmpty(format!(
                "the target store is not empty (table {} has rows): restore and migrate-store only fill an empty store; create a new database or file",
                table.name
            )));
        }
    }
    let applied = catalog::applied_migrations(conn)?;
    if !source_migrations.starts_with(&applied) {
        // Migrated further than the source (by a newer release, say), but
        // empty: take the schema back and build it again.
        migrations::revert_all(conn)?;
    }
    migrations::run_while_wanted(conn, source_migrations)?;
    let applied = catalog::applied_migrations(conn)?;
    if applied != source_migrations {
        return Err(StoreError::Incompatible(format!(
            "the target cannot be brought to the source's migrations ({} applied, {} wanted)",
            applied.len(),
            source_migrations.len()
        )));
    }
    let target_tables = catalog::tables(conn)?;
    let names = |tables: &[Table]| tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let (mut want, mut have) = (names(source_tables), names(&target_tables));
    want.sort();
    have.sort();
    if want != have {
        return Err(StoreError::Incompatible(format!(
            "the source's tables ({}) differ from the target's ({})",
            want.join(", "),
            have.join(", ")
        )));
    }
    let mut seeded = Vec::new();
    for table in source_tables {
        let matching = target_tables.iter().find(|t| t.name == table.name);
        if !matching.is_some_and(|t| t.same_shape(table)) {
            return Err(StoreError::Incompatible(format!(
                "table {} has different columns in the source and the target",
                table.name
            )));
        }
        if catalog::count(conn, &table.name)? > 0 {
            seeded.push(table.name.clone());
        }
    }
    Ok(seeded)
}

/// What a finished restore or move checked.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub counts: Counts,
    pub check: check::StoreCheck,
}

/// What checks a copy and records it.
#[derive(Clone, Copy)]
pub struct Verification<'a> {
    pub keyring: &'a Keyring,
    pub auditor: &'a Auditor,
    pub clock: &'a dyn Clock,
    /// Keep a copy whose audit chain or cases do not verify (reporting it).
    pub allow_unverified: bool,
}

/// Fills the prepared target inside one write transaction: `fill` copies
/// the rows, then the copy is checked (counts against `expected` when
/// given, the audit chain, every case), an audit entry records it, and only
/// then is it committed. Anything wrong rolls everything back.
pub fn fill_and_verify(
    target: &mut DbConnection,
    seeded: Vec<String>,
    verify: &Verification<'_>,
    event: AuditEvent,
    fill: impl FnOnce(&mut DatabaseSink<'_>) -> Result<Counts, StoreError>,
) -> Result<CopyReport, StoreError> {
    let Verification {
        keyring,
        auditor,
        clock,
        allow_unverified,
    } = *verify;
    write_transaction(target, |conn| {
        match conn {
            DbConnection::Sqlite(_) => {
                // Rows arrive in foreign-key order already; deferring the
                // check to the commit only helps if a future table has a
                // cycle.
                conn.batch_execute("PRAGMA defer_foreign_keys = ON")?;
            }
            DbConnection::Postgresql(_) => {
                // The statistics' summary triggers are deferred to the
                // commit (migration 000012); in one transaction of a whole
                // store they would queue an event per row until then. The
                // only deferrable constraints are those triggers.
                conn.batch_execute("SET CONSTRAINTS ALL IMMEDIATE")?;
            }
        }
        let mut sink = DatabaseSink::new(conn, seeded);
        let expected = fill(&mut sink)?;
        let counts = std::mem::take(&mut sink.counts);
        drop(sink);
        if expected != counts {
            return Err(StoreError::Unverified(format!(
                "row counts differ from the source: {expected:?} vs {counts:?}"
            )));
        }
        let check = check::check(conn, keyring)?;
        if let Some(problem) = check.problem()
            && !allow_unverified
        {
            return Err(StoreError::Unverified(problem));
        }
        let rows: u64 = counts.values().sum();
        auditor.append(
            conn,
            clock,
            &event
                .detail("tables", counts.len().to_string())
                .detail("rows", rows.to_string())
                .detail("cases_readable", check.cases_readable.to_string())
                .detail(
                    "verified",
                    if check.problem().is_none() {
                        "yes"
                    } else {
                        "no"
                    },
                ),
        )?;
        Ok(CopyReport { counts, check })
    })
}

/// An audit event for a whole-store operation run by the operator.
pub fn operator_event(action: &'static str) -> AuditEvent {
    AuditEvent::new(action, Outcome::Success).detail("by", "operator")
}

/// What `caseguard backup` wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub counts: Counts,
    pub bytes: u64,
    pub key_id: String,
}

/// Writes an encrypted archive of the whole store to `out`, from one
/// consistent snapshot, while the service runs; reads it back to check it.
pub fn backup(
    conn: &mut DbConnection,
    verify: &Verification<'_>,
    out: &std::path::Path,
) -> Result<BackupReport, StoreError> {
    if out.exists() {
        return Err(StoreError::Io(format!(
            "{} exists already; choose a new name (a backup is never overwritten)",
            out.display()
        )));
    }
    // Recorded first, so the archive holds the record of its own making.
    write_transaction(conn, |conn| -> Result<(), StoreError> {
        verify.auditor.append(
            conn,
            verify.clock,
            &operator_event(crate::audit::action::STORE_BACKUP),
        )?;
        Ok(())
    })?;
    let backend = conn.backend();
    let counts = read_snapshot(conn, |conn| {
        let manifest = archive::Manifest {
            caseguard_backup: archive::FORMAT,
            created_at: verify.clock.now().to_rfc3339(),
            release: env!("CARGO_PKG_VERSION").to_owned(),
            backend: backend.as_str().to_owned(),
            migrations: catalog::applied_migrations(conn)?,
        };
        let tables = catalog::tables(conn)?;
        let mut writer = archive::ArchiveWriter::create(out, verify.keyring, &manifest)?;
        match read_all(conn, &tables, &mut writer) {
            Ok(counts) => {
                writer.finish()?;
                Ok(counts)
            }
            Err(error) => {
                writer.abandon();
                Err(error)
            }
        }
    })?;
    let written = archive::read(out, verify.keyring, &mut archive::Discard)?;
    if written.counts != counts {
        return Err(StoreError::Archive(
            "the archive read back differs from what was written".into(),
        ));
    }
    Ok(BackupReport {
        counts,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        key_id: written.key_id,
    })
}

/// Restores an archive into an empty store; see [`fill_and_verify`].
pub fn restore(
    path: &std::path::Path,
    target: &mut DbConnection,
    verify: &Verification<'_>,
) -> Result<(archive::ArchiveSummary, CopyReport), StoreError> {
    // The whole archive is checked before the target is touched.
    let summary = archive::read(path, verify.keyring, &mut archive::Discard)?;
    let seeded = prepare_target(target, &summary.manifest.migrations, &summary.tables)?;
    let event = operator_event(crate::audit::action::STORE_RESTORED)
        .detail("backup_key", summary.key_id.clone())
        .detail("backup_created_at", summary.manifest.created_at.clone());
    let report = fill_and_verify(target, seeded, verify, event, |sink| {
        let again = archive::read(path, verify.keyring, sink)?;
        if again.counts != summary.counts {
            return Err(StoreError::Archive(
                "the backup changed while it was being restored".into(),
            ));
        }
        Ok(again.counts)
    })?;
    migrations::run_pending(target)?;
    Ok((summary, report))
}

/// Copies every table of `source` into the empty `target` (either backend
/// to either), from one snapshot of the source; see [`fill_and_verify`].
pub fn migrate_store(
    source: &mut DbConnection,
    target: &mut DbConnection,
    verify: &Verification<'_>,
) -> Result<CopyReport, StoreError> {
    let pending = migrations::status(source)?;
    if !pending.is_current() {
        return Err(StoreError::Incompatible(
            "the source's migrations do not match this release: run `caseguard migrate` on it first".into(),
        ));
    }
    let source_migrations = catalog::applied_migrations(source)?;
    let source_tables = catalog::tables(source)?;
    let seeded = prepare_target(target, &source_migrations, &source_tables)?;
    let event = operator_event(crate::audit::action::STORE_MIGRATED)
        .detail("from", source.backend().as_str());
    let report = read_snapshot(source, |source| {
        let tables = catalog::tables(source)?;
        fill_and_verify(target, seeded, verify, event, |sink| {
            read_all(source, &tables, sink)
        })
    })?;
    migrations::run_pending(target)?;
    Ok(report)
}
