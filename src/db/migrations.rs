//! The embedded migrations of both backends and the checks on them.
//!
//! `migrations/sqlite` and `migrations/postgres` hold reviewed SQL, one folder
//! per backend, compiled into the binary. They are applied by
//! `caseguard migrate` and at the start of every command that uses the
//! database. On PostgreSQL an advisory lock makes concurrent starts of several
//! replicas apply each migration exactly once.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationVersion;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConnection;

pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Arbitrary, fixed key of the advisory lock that serialises migrations.
const PG_MIGRATION_LOCK: i64 = 0x6361_7365_6775_6172; // "caseguar"

#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

impl From<diesel::result::Error> for MigrationError {
    fn from(error: diesel::result::Error) -> Self {
        Self(error.to_string())
    }
}

fn wrap(error: Box<dyn std::error::Error + Send + Sync>) -> MigrationError {
    MigrationError(error.to_string())
}

/// Whether the database matches the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Migrations in the binary that the database has not applied.
    pub pending: Vec<String>,
    /// Migrations the database has applied that this binary does not know:
    /// the database was migrated by a newer release.
    pub unknown: Vec<String>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map_err(wrap)?
            .iter()
            .map(ToString::to_string)
            .collect(),
        DbConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(wrap);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            result?
        }
    };
    Ok(applied)
}

/// Applies pending migrations, oldest first, while the next one is among
/// `wanted` (versions as `status` reports them); returns how many ran. Brings
/// an empty store to the schema of a backup made by an older release.
pub fn run_while_wanted(
    conn: &mut DbConnection,
    wanted: &[String],
) -> Result<usize, MigrationError> {
    let mut ran = 0;
    loop {
        let Some(next) = status(conn)?.pending.into_iter().next() else {
            return Ok(ran);
        };
        if !wanted.contains(&next) {
            return Ok(ran);
        }
        match conn {
            DbConnection::Sqlite(c) => c.run_next_migration(SQLITE).map(drop).map_err(wrap)?,
            DbConnection::Postgresql(c) => {
                c.run_next_migration(POSTGRES).map(drop).map_err(wrap)?
            }
        }
        ran += 1;
    }
}

/// Every migration version this binary carries for the connection's backend.
pub fn known(conn: &DbConnection) -> Vec<String> {
    known_versions(conn)
}

/// Reverts every applied migration, newest first. For tests and for an
/// operator who must rebuild a database from scratch.
pub fn revert_all(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => versions(&c.revert_all_migrations(SQLITE).map_err(wrap)?),
        DbConnection::Postgresql(c) => versions(&c.revert_all_migrations(POSTGRES).map_err(wrap)?),
    };
    Ok(reverted)
}

fn versions(list: &[MigrationVersion<'_>]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Reverts the newest applied migration.
pub fn revert_last(conn: &mut DbConnection) -> Result<String, MigrationError> {
    let version = match conn {
        DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE).map_err(wrap)?,
        DbConnection::Postgresql(c) => c.revert_last_migration(POSTGRES).map_err(wrap)?,
    };
    Ok(version.to_string())
}

/// Compares the database with the binary's migrations.
pub fn status(conn: &mut DbConnection) -> Result<MigrationStatus, MigrationError> {
    let (pending, applied) = match conn {
        DbConnection::Sqlite(c) => (
            c.pending_migrations(SQLITE)
                .map_err(wrap)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect::<Vec<_>>(),
            c.applied_migrations()
                .map_err(wrap)?
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        ),
        DbConnection::Postgresql(c) => (
            c.pending_migrations(POSTGRES)
                .map_err(wrap)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect(),
            c.applied_migrations()
                .map_err(wrap)?
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
    };
    let known = known_versions(conn);
    let unknown = applied
        .into_iter()
        .filter(|version| !known.contains(version))
        .collect();
    Ok(MigrationStatus { pending, unknown })
}

fn known_versions(conn: &DbConnection) -> Vec<String> {
    use diesel::migration::MigrationSource;
    let source = match conn {
        DbConnection::Sqlite(_) => MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE),
        DbConnection::Postgresql(_) => {
            return MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES)
                .map(|list| {
                    list.iter()
                        .map(|m| m.name().version().to_string())
                        .collect()
                })
                .unwrap_or_default();
        }
    };
    source
        .map(|list| {
            list.iter()
                .map(|m| m.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
}
