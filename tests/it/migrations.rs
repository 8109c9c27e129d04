//! Migrations run up, down and up again on both backends, and the committed
//! `src/db/schema.rs` matches what they produce.

use std::collections::BTreeMap;

use caseguard::db::{DbConnection, migrations};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use crate::helpers::{Backend, TestDb};

on_both_backends!(migrations_round_trip, schema_matches_migrations);

/// A table as described by `schema.rs` or by the database: columns in order
/// (name, diesel type, nullable) and the primary key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct TableShape {
    columns: Vec<(String, String, bool)>,
    primary_key: Vec<String>,
}

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Integer)]
    cid: i32,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    column_type: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

const SQLITE_COLUMNS: &str = r#"
SELECT m.name AS table_name, p.cid AS cid, p.name AS column_name, p.type AS column_type,
       p."notnull" AS not_null, p.pk AS pk
FROM sqlite_master m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'
ORDER BY m.name, p.cid"#;

const POSTGRES_COLUMNS: &str = r#"
SELECT c.table_name::text AS table_name, c.ordinal_position::int4 AS cid,
       c.column_name::text AS column_name, c.data_type::text AS column_type,
       (CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END)::int4 AS not_null,
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
WHERE c.table_schema = 'public' AND c.table_name <> '__diesel_schema_migrations'
ORDER BY c.table_name, c.ordinal_position"#;

/// The database's type name as diesel's `table!` spells it.
fn diesel_type(backend: Backend, sql: &str) -> String {
    let sql = sql.to_ascii_lowercase();
    let name = match (backend, sql.as_str()) {
        (_, "text") => "Text",
        (_, "integer") => "Integer",
        (_, "bigint") => "BigInt",
        (_, "smallint") => "SmallInt",
        (_, "boolean") => "Bool",
        (Backend::Postgres, "timestamp without time zone") | (Backend::Sqlite, "timestamp") => {
            "Timestamp"
        }
        (Backend::Postgres, "bytea") | (Backend::Sqlite, "blob") => "Binary",
        (Backend::Postgres, "double precision") | (Backend::Sqlite, "double") => "Double",
        (_, "date") => "Date",
        _ => return format!("Unmapped({sql})"),
    };
    name.to_owned()
}

fn database_shape(db: &TestDb) -> BTreeMap<String, TableShape> {
    let mut conn = db.connect();
    let rows: Vec<ColumnInfo> = match &mut conn {
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_COLUMNS).load(c).unwrap(),
        DbConnection::Postgresql(c) => diesel::sql_query(POSTGRES_COLUMNS).load(c).unwrap(),
    };
    let mut tables: BTreeMap<String, TableShape> = BTreeMap::new();
    let mut keys: BTreeMap<String, Vec<(i32, String)>> = BTreeMap::new();
    for row in rows {
        let _ = row.cid;
        let table = tables.entry(row.table_name.clone()).or_default();
        table.columns.push((
            row.column_name.clone(),
            diesel_type(db.backend, &row.column_type),
            row.not_null == 0,
        ));
        if row.pk > 0 {
            keys.entry(row.table_name)
                .or_default()
                .push((row.pk, row.column_name));
        }
    }
    for (table, mut key) in keys {
        key.sort();
        if let Some(shape) = tables.get_mut(&table) {
            shape.primary_key = key.into_iter().map(|(_, c)| c).collect();
        }
    }
    tables
}

/// Reads the `diesel::table!` blocks of `src/db/schema.rs`.
fn committed_shape() -> BTreeMap<String, TableShape> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let mut tables = BTreeMap::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if !line.starts_with("diesel::table!") {
            continue;
        }
        let header = lines
            .by_ref()
            .find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
            .unwrap();
        // `name (pk1, pk2) {`
        let (name, rest) = header.split_once('(').unwrap();
        let (key, _) = rest.split_once(')').unwrap();
        let mut shape = TableShape {
            primary_key: key.split(',').map(|k| k.trim().to_owned()).collect(),
            ..TableShape::default()
        };
        for line in lines.by_ref() {
            if line.starts_with('}') {
                break;
            }
            if line.is_empty() || line.starts_with("//") || line.starts_with('#') {
                continue;
            }
            let (column, ty) = line.trim_end_matches(',').split_once("->").unwrap();
            let ty = ty.trim();
            let (ty, nullable) = match ty
                .strip_prefix("Nullable<")
                .and_then(|t| t.strip_suffix('>'))
            {
                Some(inner) => (inner, true),
                None => (ty, false),
            };
            shape
                .columns
                .push((column.trim().to_owned(), ty.to_owned(), nullable));
        }
        tables.insert(name.trim().to_owned(), shape);
    }
    assert!(!tables.is_empty(), "no table! blocks found in schema.rs");
    tables
}

async fn schema_matches_migrations(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    migrations::run_pending(&mut db.connect()).unwrap();
    let actual = database_shape(&db);
    let committed = committed_shape();
    let names = |m: &BTreeMap<String, TableShape>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&actual),
        "tables in schema.rs vs {backend:?} migrations"
    );
    for (table, shape) in &committed {
        assert_eq!(
            Some(shape),
            actual.get(table),
            "table `{table}`: schema.rs (left) disagrees with the {backend:?} migrations (right)"
        );
    }
}

async fn migrations_round_trip(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    let mut conn = db.connect();
    let applied = migrations::run_pending(&mut conn).unwrap();
    assert!(!applied.is_empty());
    assert!(migrations::status(&mut conn).unwrap().is_current());
    let shape_after_first_run = database_shape(&db);
    assert!(shape_after_first_run.contains_key("organisations"));

    let reverted = migrations::revert_all(&mut conn).unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert!(
        database_shape(&db).is_empty(),
        "tables left after reverting every migration"
    );
    assert_eq!(
        migrations::status(&mut conn).unwrap().pending.len(),
        applied.len()
    );

    let again = migrations::run_pending(&mut conn).unwrap();
    assert_eq!(again, applied);
    assert_eq!(database_shape(&db), shape_after_first_run);
    assert!(migrations::status(&mut conn).unwrap().is_current());
}

#[test]
fn both_backends_carry_the_same_migrations() {
    let list = |backend: &str| {
        let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(list("sqlite"), list("postgres"));
}
