//! What tables a store holds, read from the database's own catalog — not
//! from a list in the code — so a table added by a later migration is copied
//! without anyone remembering to add it here.
//!
//! Tables come out in an order where every table follows the tables it
//! references (foreign keys), so rows can be inserted in that order with
//! every constraint checked. A table that references itself (organisations:
//! `parent_id`) is recorded so its rows can be put parents-first.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::db::DbConnection;

/// The column types caseguard uses (the ones both backends share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    Integer,
    BigInt,
    Bool,
    Timestamp,
    Binary,
}

impl Kind {
    fn from_catalog(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "text" => Self::Text,
            "integer" | "int" | "int4" => Self::Integer,
            "bigint" | "int8" => Self::BigInt,
            "boolean" | "bool" => Self::Bool,
            "timestamp" | "timestamp without time zone" => Self::Timestamp,
            "bytea" | "blob" | "binary" => Self::Binary,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary-key columns, for a stable row order.
    pub primary_key: Vec<String>,
    /// `(column, referenced column)` of foreign keys to the table itself.
    #[serde(default)]
    pub self_references: Vec<(String, String)>,
}

impl Table {
    /// Same name and same columns (names and types, in order).
    pub fn same_shape(&self, other: &Table) -> bool {
        self.name == other.name && self.columns == other.columns
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    column_type: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    from_column: String,
    #[diesel(sql_type = Text)]
    ref_table: String,
    #[diesel(sql_type = Text)]
    ref_column: String,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

const SQLITE_COLUMNS: &str = r#"
SELECT m.name AS table_name, p.cid AS position, p.name AS column_name, p.type AS column_type,
       p.pk AS pk
FROM sqlite_master m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'
ORDER BY m.name, p.cid"#;

const SQLITE_FOREIGN_KEYS: &str = r#"
SELECT m.name AS table_name, f."from" AS from_column, f."table" AS ref_table,
       COALESCE(f."to", '') AS ref_column
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"#;

const POSTGRES_COLUMNS: &str = r#"
SELECT c.table_name::text AS table_name, c.ordinal_position::int4 AS position,
       c.column_name::text AS column_name, c.data_type::text AS column_type,
       COALESCE((
         SELECT k.ordinal_position::int4
         FROM information_schema.table_constraints t
         JOIN information_schema.key_column_usage k
           ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
          AND k.table_name = t.table_name
         WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema
           AND t.table_name = c.table_name AND k.column_name = c.column_name
       ), 0) AS pk
FROM information_schema.columns c
JOIN information_schema.tables tb
  ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
WHERE c.table_schema = current_schema() AND tb.table_type = 'BASE TABLE'
  AND c.table_name <> '__diesel_schema_migrations'
ORDER BY c.table_name, c.ordinal_position"#;

const POSTGRES_FOREIGN_KEYS: &str = r#"
SELECT src.relname::text AS table_name, a.attname::text AS from_column,
       dst.relname::text AS ref_table, b.attname::text AS ref_column
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
JOIN pg_class dst ON dst.oid = con.confrelid
JOIN pg_namespace n ON n.oid = src.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(src_att, dst_att)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.src_att
JOIN pg_attribute b ON b.attrelid = con.confrelid AND b.attnum = k.dst_att
WHERE con.contype = 'f' AND n.nspname = current_schema()"#;

/// Identifiers we put into SQL text: lower-case letters, digits, `_`.
pub(super) fn check_identifier(name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "unexpected table or column name `{name}`"
        )))
    }
}

/// Tables kept by the database's own triggers from the rows of others
/// (the statistics' pre-summed counts, migration `000012`). They are not
/// copied: inserting the rows they are summed from rebuilds them exactly,
/// and copying them as well would count everything twice.
pub const DERIVED: &[&str] = &["stats_counts"];

/// Every table of the store to copy (not the derived ones), referenced
/// tables first.
pub fn tables(conn: &mut DbConnection) -> Result<Vec<Table>, StoreError> {
    let (columns, foreign_keys): (Vec<ColumnRow>, Vec<ForeignKeyRow>) = match conn {
        DbConnection::Sqlite(c) => (
            diesel::sql_query(SQLITE_COLUMNS).load(c)?,
            diesel::sql_query(SQLITE_FOREIGN_KEYS).load(c)?,
        ),
        DbConnection::Postgresql(c) => (
            diesel::sql_query(POSTGRES_COLUMNS).load(c)?,
            diesel::sql_query(POSTGRES_FOREIGN_KEYS).load(c)?,
        ),
    };
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let mut keys: BTreeMap<String, Vec<(i32, String)>> = BTreeMap::new();
    for row in columns {
        check_identifier(&row.table_name)?;
        check_identifier(&row.column_name)?;
        let kind = Kind::from_catalog(&row.column_type).ok_or_else(|| {
            StoreError::Schema(format!(
                "column {}.{} has type {}, which backup and migrate-store do not know how to copy",
                row.table_name, row.column_name, row.column_type
            ))
        })?;
        let _ = row.position;
        let table = tables
            .entry(row.table_name.clone())
            .or_insert_with(|| Table {
                name: row.table_name.clone(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                self_references: Vec::new(),
            });
        table.columns.push(Column {
            name: row.column_name.clone(),
            kind,
        });
        if row.pk > 0 {
            keys.entry(row.table_name)
                .or_default()
                .push((row.pk, row.column_name));
        }
    }
    tables.retain(|name, _| !DERIVED.contains(&name.as_str()));
    for (name, mut key) in keys {
        key.sort();
        if let Some(table) = tables.get_mut(&name) {
            table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        }
    }
    let mut depends: BTreeMap<String, BTreeSet<String>> = tables
        .keys()
        .map(|name| (name.clone(), BTreeSet::new()))
        .collect();
    for fk in foreign_keys {
        if fk.table_name == fk.ref_table {
            if let Some(table) = tables.get_mut(&fk.table_name) {
                let referenced = if fk.ref_column.is_empty() {
                    table.primary_key.first().cloned().unwrap_or_default()
                } else {
                    fk.ref_column
                };
                table.self_references.push((fk.from_column, referenced));
            }
        } else if let Some(set) = depends.get_mut(&fk.table_name) {
            set.insert(fk.ref_table);
        }
    }
    // Kahn's algorithm; among the tables ready at once, alphabetical order.
    let total = tables.len();
    let mut ordered = Vec::with_capacity(total);
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < total {
        let ready: Vec<String> = depends
            .iter()
            .filter(|(name, deps)| !done.contains(*name) && deps.iter().all(|d| done.contains(d)))
            .map(|(name, _)| name.clone())
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = depends
                .keys()
                .filter(|n| !done.contains(*n))
                .map(String::as_str)
                .collect();
            return Err(StoreError::Schema(format!(
                "tables reference each other in a cycle: {}",
                stuck.join(", ")
            )));
        }
        for name in ready {
            if let Some(table) = tables.remove(&name) {
                ordered.push(table);
            }
            done.insert(name);
        }
    }
    Ok(ordered)
}

/// The migrations the store has applied, oldest first (none for a brand-new
/// store).
pub fn applied_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    const SQL: &str = "SELECT version FROM __diesel_schema_migrations ORDER BY version";
    const SQLITE_EXISTS: &str = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '__diesel_schema_migrations'";
    const POSTGRES_EXISTS: &str = "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '__diesel_schema_migrations'";
    let rows: Vec<VersionRow> = match conn {
        DbConnection::Sqlite(c) => {
            if diesel::sql_query(SQLITE_EXISTS)
                .get_result::<CountRow>(c)?
                .n
                == 0
            {
                return Ok(Vec::new());
            }
            diesel::sql_query(SQL).load(c)?
        }
        DbConnection::Postgresql(c) => {
            if diesel::sql_query(POSTGRES_EXISTS)
                .get_result::<CountRow>(c)?
                .n
                == 0
            {
                return Ok(Vec::new());
            }
            diesel::sql_query(SQL).load(c)?
        }
    };
    Ok(rows.into_iter().map(|r| r.version).collect())
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows in a table.
pub fn count(conn: &mut DbConnection, table: &str) -> Result<u64, StoreError> {
    check_identifier(table)?;
    let sql = format!("SELECT COUNT(*) AS n FROM \"{table}\"");
    let row: CountRow = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql).get_result(c)?,
        DbConnection::Postgresql(c) => diesel::sql_query(sql).get_result(c)?,
    };
    Ok(u64::try_from(row.n).unwrap_or(0))
}

pub(super) use self::check_identifier as identifier;
