//! Rows of any table, read and written without knowing the table at compile
//! time: each column's type comes from the catalog ([`super::catalog`]).
//!
//! Reading asks the database for one JSON array per row (`json_build_array`
//! on PostgreSQL, `json_array` on SQLite; binary columns as hex), streamed
//! row by row. Values are then normalised ([`Value`]) so that a row read from
//! one backend is written identically to the other: booleans that SQLite
//! keeps as 0/1, timestamps in either spelling, bytes. Writing binds every
//! value with its column's SQL type, many rows per `INSERT`.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDateTime;
use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Integer, Nullable, Text, Timestamp};

use super::StoreError;
use super::catalog::{Kind, Table, identifier};
use crate::db::DbConnection;

/// One column's value, the same whichever backend it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Timestamp(NaiveDateTime),
    Binary(Vec<u8>),
}

const TIMESTAMP_FORMATS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];

fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    TIMESTAMP_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

impl Value {
    /// From the JSON a database produced for a column of `kind`.
    fn from_database(kind: Kind, json: serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        Some(match (kind, json) {
            (_, J::Null) => Self::Null,
            (Kind::Text, J::String(text)) => Self::Text(text),
            (Kind::Integer | Kind::BigInt, J::Number(n)) => Self::Int(n.as_i64()?),
            (Kind::Bool, J::Bool(b)) => Self::Bool(b),
            (Kind::Bool, J::Number(n)) => Self::Bool(n.as_i64()? != 0),
            (Kind::Timestamp, J::String(text)) => Self::Timestamp(parse_timestamp(&text)?),
            (Kind::Binary, J::String(text)) => Self::Binary(hex::decode(text).ok()?),
            _ => return None,
        })
    }

    /// The archive's spelling: bytes in base64, timestamps with microseconds.
    pub fn to_portable(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Text(text) => J::String(text.clone()),
            Self::Int(n) => J::from(*n),
            Self::Bool(b) => J::Bool(*b),
            Self::Timestamp(at) => J::String(at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
            Self::Binary(bytes) => J::String(STANDARD.encode(bytes)),
        }
    }

    /// Back from the archive's spelling; `None` when the value does not fit
    /// the column.
    pub fn from_portable(kind: Kind, json: serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        Some(match (kind, json) {
            (_, J::Null) => Self::Null,
            (Kind::Text, J::String(text)) => Self::Text(text),
            (Kind::Integer | Kind::BigInt, J::Number(n)) => Self::Int(n.as_i64()?),
            (Kind::Bool, J::Bool(b)) => Self::Bool(b),
            (Kind::Timestamp, J::String(text)) => Self::Timestamp(parse_timestamp(&text)?),
            (Kind::Binary, J::String(text)) => Self::Binary(STANDARD.decode(text).ok()?),
            _ => return None,
        })
    }

    fn size(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
            _ => 8,
        }
    }
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

fn select_sql(table: &Table, postgres: bool) -> Result<String, StoreError> {
    identifier(&table.name)?;
    let mut exprs = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        identifier(&column.name)?;
        exprs.push(match (column.kind, postgres) {
            (Kind::Binary, true) => format!("encode(\"{}\", 'hex')", column.name),
            (Kind::Binary, false) => format!("hex(\"{}\")", column.name),
            _ => format!("\"{}\"", column.name),
        });
    }
    let order = if table.primary_key.is_empty() {
        String::new()
    } else {
        for key in &table.primary_key {
            identifier(key)?;
        }
        format!(
            " ORDER BY {}",
            table
                .primary_key
                .iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(if postgres {
        format!(
            "SELECT json_build_array({})::text AS row FROM \"{}\"{order}",
            exprs.join(", "),
            table.name
        )
    } else {
        format!(
            "SELECT json_array({}) AS row FROM \"{}\"{order}",
            exprs.join(", "),
            table.name
        )
    })
}

fn decode_row(table: &Table, text: &str) -> Result<Vec<Value>, StoreError> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| StoreError::Schema(format!("table {}: unreadable row ({e})", table.name)))?;
    if values.len() != table.columns.len() {
        return Err(StoreError::Schema(format!(
            "table {}: a row has {} values for {} columns",
            table.name,
            values.len(),
            table.columns.len()
        )));
    }
    values
        .into_iter()
        .zip(&table.columns)
        .map(|(json, column)| {
            Value::from_database(column.kind, json).ok_or_else(|| {
                StoreError::Schema(format!(
                    "column {}.{}: a value is not a {:?}",
                    table.name, column.name, column.kind
                ))
            })
        })
        .collect()
}

/// Calls `each` with every row of `table`, in primary-key order (parents
/// before children in a self-referencing table). Returns the number of rows.
pub fn read_table(
    conn: &mut DbConnection,
    table: &Table,
    each: &mut dyn FnMut(Vec<Value>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut count = 0_u64;
    if !table.self_references.is_empty() {
        let mut rows = Vec::new();
        stream(conn, table, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        for row in parents_first(table, rows) {
            each(row)?;
            count += 1;
        }
        return Ok(count);
    }
    stream(conn, table, &mut |row| {
        count += 1;
        each(row)
    })?;
    Ok(count)
}

fn stream(
    conn: &mut DbConnection,
    table: &Table,
    each: &mut dyn FnMut(Vec<Value>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(c) => {
            let sql = select_sql(table, true)?;
            for row in
                diesel::sql_query(sql).load_iter::<JsonRow, diesel::pg::PgRowByRowLoadingMode>(c)?
            {
                each(decode_row(table, &row?.row)?)?;
            }
        }
        DbConnection::Sqlite(c) => {
            let sql = select_sql(table, false)?;
            for row in diesel::sql_query(sql).load_iter::<JsonRow, DefaultLoadingMode>(c)? {
                each(decode_row(table, &row?.row)?)?;
            }
        }
    }
    Ok(())
}

/// Orders the rows of a self-referencing table so that every row comes
/// after the row it references. Rows whose reference cannot be found keep
/// their place at the end (the database will then name the problem).
fn parents_first(table: &Table, mut rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let links: Vec<(usize, usize)> = table
        .self_references
        .iter()
        .filter_map(|(from, to)| Some((table.column_index(from)?, table.column_index(to)?)))
        .collect();
    let mut placed: HashSet<(usize, Value)> = HashSet::new();
    let mut ordered = Vec::with_capacity(rows.len());
    loop {
        let before = rows.len();
        let mut waiting = Vec::new();
        for row in rows {
            let ready = links.iter().all(|(from, to)| match row.get(*from) {
                None | Some(Value::Null) => true,
                Some(value) => placed.contains(&(*to, value.clone())),
            });
            if ready {
                for (_, to) in &links {
                    if let Some(value) = row.get(*to) {
                        placed.insert((*to, value.clone()));
                    }
                }
                ordered.push(row);
            } else {
                waiting.push(row);
            }
        }
        rows = waiting;
        if rows.is_empty() || rows.len() == before {
            ordered.extend(rows);
            return ordered;
        }
    }
}

/// Most values bound in one statement (SQLite allows 32766).
const MAX_BINDS: usize = 20_000;
/// Most rows in one statement.
const MAX_ROWS: usize = 500;
/// Flush a batch once it holds this many bytes of values.
const MAX_BYTES: usize = 8 << 20;

/// Inserts rows of one table at a time, many per statement.
pub struct Inserter {
    table: Option<Table>,
    batch: Vec<Vec<Value>>,
    bytes: usize,
    pub inserted: u64,
}

impl Default for Inserter {
    fn default() -> Self {
        Self::new()
    }
}

impl Inserter {
    pub fn new() -> Self {
        Self {
            table: None,
            batch: Vec::new(),
            bytes: 0,
            inserted: 0,
        }
    }

    /// Starts a table (flushing the previous one).
    pub fn begin(&mut self, conn: &mut DbConnection, table: &Table) -> Result<(), StoreError> {
        self.flush(conn)?;
        self.table = Some(table.clone());
        self.inserted = 0;
        Ok(())
    }

    pub fn push(&mut self, conn: &mut DbConnection, row: Vec<Value>) -> Result<(), StoreError> {
        let Some(table) = &self.table else {
            return Err(StoreError::Schema("a row before its table".into()));
        };
        if row.len() != table.columns.len() {
            return Err(StoreError::Schema(format!(
                "table {}: a row has {} values for {} columns",
                table.name,
                row.len(),
                table.columns.len()
            )));
        }
        let columns = table.columns.len().max(1);
        self.bytes += row.iter().map(Value::size).sum::<usize>();
        self.batch.push(row);
        if self.batch.len() >= MAX_ROWS
            || (self.batch.len() + 1) * columns > MAX_BINDS
            || self.bytes >= MAX_BYTES
        {
            self.flush(conn)?;
        }
        Ok(())
    }

    /// Writes what is waiting.
    pub fn flush(&mut self, conn: &mut DbConnection) -> Result<(), StoreError> {
        let Some(table) = &self.table else {
            return Ok(());
        };
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.batch);
        self.bytes = 0;
        let written = insert(conn, table, &rows)?;
        self.inserted += u64::try_from(written).unwrap_or(0);
        Ok(())
    }
}

fn insert_sql(table: &Table, rows: usize, postgres: bool) -> Result<String, StoreError> {
    identifier(&table.name)?;
    let names = table
        .columns
        .iter()
        .map(|c| identifier(&c.name).map(|()| format!("\"{}\"", c.name)))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    let mut sql = format!("INSERT INTO \"{}\" ({names}) VALUES ", table.name);
    let mut n = 0_usize;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..table.columns.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if postgres {
                sql.push_str(&format!("${n}"));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    Ok(sql)
}

fn mismatch(table: &Table, column: &str, kind: Kind) -> StoreError {
    StoreError::Schema(format!(
        "column {}.{column}: a value is not a {kind:?}",
        table.name
    ))
}

/// Binds `$value` to `$query` as the SQL type of `$kind`.
macro_rules! bind_value {
    ($query:expr, $table:expr, $column:expr, $value:expr) => {{
        let (kind, value) = ($column.kind, $value);
        match (kind, value) {
            (Kind::Text, Value::Text(v)) => $query.bind::<Nullable<Text>, _>(Some(v.clone())),
            (Kind::Text, Value::Null) => $query.bind::<Nullable<Text>, _>(None::<String>),
            (Kind::Integer, Value::Int(v)) => $query.bind::<Nullable<Integer>, _>(Some(
                i32::try_from(*v).map_err(|_| mismatch($table, &$column.name, kind))?,
            )),
            (Kind::Integer, Value::Null) => $query.bind::<Nullable<Integer>, _>(None::<i32>),
            (Kind::BigInt, Value::Int(v)) => $query.bind::<Nullable<BigInt>, _>(Some(*v)),
            (Kind::BigInt, Value::Null) => $query.bind::<Nullable<BigInt>, _>(None::<i64>),
            (Kind::Bool, Value::Bool(v)) => $query.bind::<Nullable<Bool>, _>(Some(*v)),
            (Kind::Bool, Value::Null) => $query.bind::<Nullable<Bool>, _>(None::<bool>),
            (Kind::Timestamp, Value::Timestamp(v)) => {
                $query.bind::<Nullable<Timestamp>, _>(Some(*v))
            }
            (Kind::Timestamp, Value::Null) => {
                $query.bind::<Nullable<Timestamp>, _>(None::<NaiveDateTime>)
            }
            (Kind::Binary, Value::Binary(v)) => $query.bind::<Nullable<Binary>, _>(Some(v.clone())),
            (Kind::Binary, Value::Null) => $query.bind::<Nullable<Binary>, _>(None::<Vec<u8>>),
            _ => return Err(mismatch($table, &$column.name, kind)),
        }
    }};
}

fn insert(
    conn: &mut DbConnection,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<usize, StoreError> {
    match conn {
        DbConnection::Postgresql(c) => {
            let mut query = diesel::sql_query(insert_sql(table, rows.len(), true)?)
                .into_boxed::<diesel::pg::Pg>();
            for row in rows {
                for (value, column) in row.iter().zip(&table.columns) {
                    query = bind_value!(query, table, column, value);
                }
            }
            Ok(query.execute(c)?)
        }
        DbConnection::Sqlite(c) => {
            let mut query = diesel::sql_query(insert_sql(table, rows.len(), false)?)
                .into_boxed::<diesel::sqlite::Sqlite>();
            for row in rows {
                for (value, column) in row.iter().zip(&table.columns) {
                    query = bind_value!(query, table, column, value);
                }
            }
            Ok(query.execute(c)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_archive_spelling() {
        let at = parse_timestamp("2026-11-02 08:30:00.123456").unwrap();
        assert_eq!(parse_timestamp("2026-11-02T08:30:00.123456"), Some(at));
        for (kind, value) in [
            (Kind::Text, Value::Text("Nguyễn \"x\"".into())),
            (Kind::BigInt, Value::Int(i64::MAX)),
            (Kind::Bool, Value::Bool(true)),
            (Kind::Timestamp, Value::Timestamp(at)),
            (Kind::Binary, Value::Binary(vec![0, 1, 255])),
            (Kind::Text, Value::Null),
        ] {
            assert_eq!(Value::from_portable(kind, value.to_portable()), Some(value));
        }
        assert_eq!(
            Value::from_database(Kind::Bool, serde_json::json!(0)),
            Some(Value::Bool(false))
        );
        assert_eq!(
            Value::from_database(Kind::Binary, serde_json::json!("00FF")),
            Some(Value::Binary(vec![0, 255]))
        );
        assert_eq!(
            Value::from_portable(Kind::Bool, serde_json::json!("yes")),
            None
        );
    }

    #[test]
    fn parents_come_first() {
        let table = Table {
            name: "organisations".into(),
            columns: vec![
                super::super::catalog::Column {
                    name: "id".into(),
                    kind: Kind::Text,
                },
                super::super::catalog::Column {
                    name: "parent_id".into(),
                    kind: Kind::Text,
                },
            ],
            primary_key: vec!["id".into()],
            self_references: vec![("parent_id".into(), "id".into())],
        };
        let row = |id: &str, parent: Option<&str>| {
            vec![
                Value::Text(id.into()),
                parent.map_or(Value::Null, |p| Value::Text(p.into())),
            ]
        };
        let ordered = parents_first(
            &table,
            vec![
                row("a-school", Some("c-commune")),
                row("b-district", None),
                row("c-commune", Some("b-district")),
            ],
        );
        let ids: Vec<_> = ordered.iter().map(|r| r[0].clone()).collect();
        assert_eq!(
            ids,
            vec![
                Value::Text("b-district".into()),
                Value::Text("c-commune".into()),
                Value::Text("a-school".into())
            ]
        );
    }
}
