//! The backup archive: JSON lines inside the encrypted stream of
//! `crypto/stream.rs`.
//!
//! ```text
//! {"caseguard_backup":1,"created_at":…,"release":…,"backend":…,"migrations":[…]}
//! {"table":{"name":…,"columns":[{"name":…,"kind":…}],…}}
//! [value, value, …]                      one line per row
//! {"end_table":"organisations","rows":12}
//! …                                      every table, referenced tables first
//! {"complete":{"tables":24,"rows":5678}}
//! ```
//!
//! Values keep their column's type: text, integers, booleans, timestamps as
//! `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC), bytes in base64. The sealed columns
//! stay sealed: the archive holds what the database holds, never plaintext
//! and never a key.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::Table;
use super::rows::Value;
use super::{Counts, RowSink, StoreError};
use crate::crypto::keyring::Keyring;
use crate::crypto::stream::{StreamReader, StreamWriter, stream_error};

pub const FORMAT: u32 = 1;

/// The first line of an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub caseguard_backup: u32,
    pub created_at: String,
    pub release: String,
    pub backend: String,
    pub migrations: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Table { table: Table },
    EndTable { end_table: String, rows: u64 },
    Complete { complete: Complete },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Complete {
    tables: usize,
    rows: u64,
}

fn io_error(what: &str, error: &std::io::Error) -> StoreError {
    match stream_error(error) {
        Some(problem) => StoreError::Archive(problem.to_string()),
        None => StoreError::Io(format!("{what}: {error}")),
    }
}

/// Writes an archive to `FILE.partial`, renamed to `FILE` once complete and
/// on disk, so a backup that was interrupted never looks like one.
pub struct ArchiveWriter {
    out: StreamWriter<BufWriter<std::fs::File>>,
    partial: PathBuf,
    path: PathBuf,
    tables: usize,
    rows: u64,
}

impl ArchiveWriter {
    pub fn create(path: &Path, keyring: &Keyring, manifest: &Manifest) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Io(format!(
                "{} exists already; choose a new name (a backup is never overwritten)",
                path.display()
            )));
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        // A `.partial` left by an interrupted backup is never worth keeping.
        let _ = std::fs::remove_file(&partial);
        let file = crate::crypto::keyring::open_private(&partial)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", partial.display())))?;
        let out = StreamWriter::new(BufWriter::new(file), keyring).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            match stream_error(&e) {
                Some(crate::crypto::stream::StreamError::NoKey) => StoreError::Archive(
                    "the keyring has no backup key: with a keyring file, any caseguard command adds one (back the keyring up again); with a keyring from the environment, add one to a file copy (CASEGUARD_KEYRING=/path/to/copy caseguard keys status) and replace the secret".into(),
                ),
                _ => io_error("cannot start the archive", &e),
            }
        })?;
        let mut writer = Self {
            out,
            partial,
            path: path.to_owned(),
            tables: 0,
            rows: 0,
        };
        writer.line(&serde_json::to_value(manifest).map_err(encode)?)?;
        Ok(writer)
    }

    fn line(&mut self, value: &serde_json::Value) -> Result<(), StoreError> {
        serde_json::to_writer(&mut self.out, value).map_err(encode)?;
        self.out
            .write_all(b"\n")
            .map_err(|e| io_error("cannot write the archive", &e))
    }

    /// Writes the last line and chunk, syncs, and gives the archive its name.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        let complete = serde_json::to_value(Line::Complete {
            complete: Complete {
                tables: self.tables,
                rows: self.rows,
            },
        })
        .map_err(encode)?;
        self.line(&complete)?;
        let buffered = self
            .out
            .finish()
            .map_err(|e| io_error("cannot write the archive", &e))?;
        let file = buffered
            .into_inner()
            .map_err(|e| StoreError::Io(format!("cannot write the archive: {}", e.error())))?;
        file.sync_all()
            .map_err(|e| StoreError::Io(format!("cannot sync the archive: {e}")))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        std::fs::rename(&self.partial, &self.path)
            .map_err(|e| StoreError::Io(format!("cannot name the archive: {e}")))?;
        Ok(size)
    }

    /// Removes the unfinished file after a failure.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn encode(error: serde_json::Error) -> StoreError {
    StoreError::Io(format!("cannot encode the archive: {error}"))
}

impl RowSink for ArchiveWriter {
    fn begin_table(&mut self, table: &Table) -> Result<(), StoreError> {
        let line = serde_json::to_value(Line::Table {
            table: table.clone(),
        })
        .map_err(encode)?;
        self.line(&line)
    }

    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        let values: Vec<serde_json::Value> = row.iter().map(Value::to_portable).collect();
        self.rows += 1;
        self.line(&serde_json::Value::Array(values))
    }

    fn end_table(&mut self, table: &Table, rows: u64) -> Result<(), StoreError> {
        self.tables += 1;
        let line = serde_json::to_value(Line::EndTable {
            end_table: table.name.clone(),
            rows,
        })
        .map_err(encode)?;
        self.line(&line)
    }
}

/// What reading a whole archive found.
#[derive(Debug, Clone)]
pub struct ArchiveSummary {
    pub manifest: Manifest,
    pub key_id: String,
    pub tables: Vec<Table>,
    pub counts: Counts,
}

/// A sink that keeps nothing: reading into it checks the whole archive.
pub struct Discard;

impl RowSink for Discard {
    fn begin_table(&mut self, _table: &Table) -> Result<(), StoreError> {
        Ok(())
    }
    fn row(&mut self, _row: Vec<Value>) -> Result<(), StoreError> {
        Ok(())
    }
    fn end_table(&mut self, _table: &Table, _rows: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

fn damaged(line: u64, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Archive(format!(
        "the backup's content is damaged at line {line}: {problem}"
    ))
}

/// Reads the archive at `path` into `sink`, checking every chunk, every
/// line, every value against its column and every table's row count.
pub fn read(
    path: &Path,
    keyring: &Keyring,
    sink: &mut dyn RowSink,
) -> Result<ArchiveSummary, StoreError> {
    let file = std::fs::File::open(path)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
    let stream = StreamReader::new(std::io::BufReader::new(file), keyring)
        .map_err(|e| io_error("cannot read the backup", &e))?;
    let key_id = stream.key_id.clone();
    read_lines(BufReader::new(stream), key_id, sink)
}

fn read_lines(
    mut input: impl BufRead,
    key_id: String,
    sink: &mut dyn RowSink,
) -> Result<ArchiveSummary, StoreError> {
    let mut text = String::new();
    let mut next = |text: &mut String| -> Result<bool, StoreError> {
        text.clear();
        let n = input
            .read_line(text)
            .map_err(|e| io_error("cannot read the backup", &e))?;
        Ok(n > 0)
    };
    if !next(&mut text)? {
        return Err(damaged(1, "it is empty"));
    }
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| damaged(1, format!("no manifest ({e})")))?;
    if manifest.caseguard_backup != FORMAT {
        return Err(StoreError::Archive(format!(
            "this backup's content has format {}, which this release cannot read",
            manifest.caseguard_backup
        )));
    }
    let mut line_no = 1_u64;
    let mut tables: Vec<Table> = Vec::new();
    let mut counts = Counts::new();
    let mut current: Option<(Table, u64)> = None;
    let mut total = 0_u64;
    loop {
        if !next(&mut text)? {
            return Err(damaged(line_no + 1, "it ends before its last line"));
        }
        line_no += 1;
        if text.starts_with('[') {
            let Some((table, rows)) = current.as_mut() else {
                return Err(damaged(line_no, "a row outside a table"));
            };
            let values: Vec<serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| damaged(line_no, e))?;
            if values.len() != table.columns.len() {
                return Err(damaged(line_no, "a row with the wrong number of values"));
            }
            let row = values
                .into_iter()
                .zip(&table.columns)
                .map(|(json, column)| {
                    Value::from_portable(column.kind, json).ok_or_else(|| {
                        damaged(
                            line_no,
                            format!(
                                "a value of {}.{} has the wrong type",
                                table.name, column.name
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            sink.row(row)?;
            *rows += 1;
            total += 1;
            continue;
        }
        match serde_json::from_str::<Line>(&text).map_err(|e| damaged(line_no, e))? {
            Line::Table { table } => {
                if current.is_some() {
                    return Err(damaged(line_no, "a table inside a table"));
                }
                super::catalog::identifier(&table.name)?;
                sink.begin_table(&table)?;
                current = Some((table, 0));
            }
            Line::EndTable { end_table, rows } => {
                let Some((table, seen)) = current.take() else {
                    return Err(damaged(line_no, "the end of a table that did not start"));
                };
                if table.name != end_table || seen != rows {
                    return Err(damaged(
                        line_no,
                        format!("table {end_table} should have {rows} row(s), has {seen}"),
                    ));
                }
                sink.end_table(&table, rows)?;
                counts.insert(table.name.clone(), rows);
                tables.push(table);
            }
            Line::Complete { complete } => {
                if current.is_some()
                    || complete
                        != (Complete {
                            tables: tables.len(),
                            rows: total,
                        })
                {
                    return Err(damaged(line_no, "its totals do not match its content"));
                }
                if next(&mut text)? {
                    return Err(damaged(line_no + 1, "content after the last line"));
                }
                return Ok(ArchiveSummary {
                    manifest,
                    key_id,
                    tables,
                    counts,
                });
            }
        }
    }
}
