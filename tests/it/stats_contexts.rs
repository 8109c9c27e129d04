//! The tables by context, child-sexual-abuse sub-type and disability (issue
//! 17, migration 000020): in every report, under the same disclosure
//! control as the others — no published count from 1 to k−1, and no hidden
//! cell that the linear system of every table of the report, old and new
//! together, gives back — and a report released before them stays byte for
//! byte as it was.

use std::collections::{BTreeMap, HashMap};

use caseguard::db::DbConnection;
use caseguard::domain::user::Role;
use diesel::prelude::*;
use diesel::sql_types::Text;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::stats::{assert_no_small_counts, generate, line_codes};
use crate::stats_summary::{Lcg, contexts_of};

on_both_backends!(
    the_new_tables_hide_no_cell_the_whole_report_gives_back,
    a_report_released_before_the_new_tables_stays_byte_identical,
);

/// The tables of issue 17 (disability, contexts, sub-types), as every
/// report computed now carries them.
pub(crate) fn new_tables() -> Vec<&'static str> {
    let tables: Vec<&str> = caseguard::stats::report::TABLE_CODES
        .iter()
        .copied()
        .filter(|c| {
            *c == "cases_by_disability"
                || c.starts_with("incidents_by_context")
                || c.starts_with("incidents_by_csa_subtype")
        })
        .collect();
    assert_eq!(tables.len(), 7, "{tables:?}");
    tables
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

fn sql(conn: &DbConnection, text: &str) -> String {
    match conn {
        DbConnection::Sqlite(_) => text.replace('$', "?"),
        DbConnection::Postgresql(_) => text.to_owned(),
    }
}

/// Gives the generated incidents varied contexts (several for some, none
/// for others), sub-types and disabilities, through the rows (the
/// triggers keep the summary).
async fn vary(app: &TestApp, seed: u64) {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let conn: &mut DbConnection = &mut conn;
        let mut rng = Lcg(seed);
        let incidents: Vec<String> = diesel::sql_query("SELECT id FROM incidents ORDER BY id")
            .load::<Id>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let contexts = contexts_of(&mut rng, incidents.len());
        let subtypes = ["hiep_dam", "cuong_dam", "giao_cau", "dam_o", ""];
        for (incident, context) in incidents.iter().zip(&contexts) {
            let subtype = subtypes[usize::try_from(rng.below(5)).unwrap()];
            let text = sql(
                conn,
                "UPDATE incidents SET contexts = $1, csa_subtype = NULLIF($2, '') WHERE id = $3",
            );
            diesel::sql_query(text)
                .bind::<Text, _>(context)
                .bind::<Text, _>(subtype)
                .bind::<Text, _>(incident)
                .execute(conn)
                .unwrap();
        }
        let text = sql(
            conn,
            "UPDATE cases SET disability = (substr(id, 36, 1) IN ('0', '3', '6', '9', 'c'))",
        );
        diesel::sql_query(text).execute(conn).unwrap();
    })
    .await
    .unwrap();
}

/// What a published cell stands for: tables that break down the same
/// people share their margins — the cases' tables their counts by sex (the
/// totals row), the incidents' tables theirs, the contexts' and sub-types'
/// tables the count of each context or sub-type (the totals column) — so a
/// cell of one is the same unknown as the matching cell of another.
fn unknown(code: &str, row: Option<&str>, column: Option<&str>) -> String {
    let family = if code.starts_with("cases_by_") {
        "cases"
    } else if code.starts_with("incidents_by_context") {
        "contexts"
    } else if code.starts_with("incidents_by_csa_subtype") {
        "csa"
    } else if code.starts_with("incidents_by_") {
        "incidents"
    } else {
        code
    };
    let shares_columns = matches!(family, "cases" | "incidents");
    let shares_rows = matches!(family, "contexts" | "csa");
    match (row, column) {
        (None, None) => format!("{family}|total"),
        (None, Some(c)) if shares_columns => format!("{family}|column {c}"),
        (Some(r), None) if shares_rows => format!("{family}|row {r}"),
        _ => format!(
            "{code}|{}|{}",
            row.unwrap_or("total"),
            column.unwrap_or("total")
        ),
    }
}

/// The hidden cells of `report` that its published cells determine: every
/// table's rows and columns add up to their totals, shared margins are one
/// unknown (see [`unknown`]); a hidden cell is given back when its unit
/// vector lies in the row space of the equations over the hidden unknowns.
fn recoverable(report: &Value) -> Vec<String> {
    // A shared margin published in one table is known in all.
    let mut known = std::collections::HashSet::new();
    for table in report["tables"].as_array().unwrap() {
        let code = table["code"].as_str().unwrap();
        let (rows, columns) = (line_codes(table, "rows"), line_codes(table, "columns"));
        for (c, column) in columns.iter().enumerate() {
            if table["column_totals"][c].is_u64() {
                known.insert(unknown(code, None, Some(column)));
            }
        }
        for (r, row) in rows.iter().enumerate() {
            if table["row_totals"][r].is_u64() {
                known.insert(unknown(code, Some(row), None));
            }
        }
        if table["total"].is_u64() {
            known.insert(unknown(code, None, None));
        }
    }
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut equations: Vec<BTreeMap<usize, f64>> = Vec::new();
    for table in report["tables"].as_array().unwrap() {
        let code = table["code"].as_str().unwrap();
        let (rows, columns) = (line_codes(table, "rows"), line_codes(table, "columns"));
        // Augmented grid: (key, hidden).
        let mut grid: Vec<Vec<Option<String>>> = Vec::new();
        let hidden_key = |cell: &Value, row: Option<&str>, column: Option<&str>| {
            let key = unknown(code, row, column);
            (cell.is_string() && !known.contains(&key)).then_some(key)
        };
        for (r, row) in rows.iter().enumerate() {
            let mut line: Vec<Option<String>> = columns
                .iter()
                .enumerate()
                .map(|(c, column)| hidden_key(&table["cells"][r][c], Some(row), Some(column)))
                .collect();
            line.push(hidden_key(&table["row_totals"][r], Some(row), None));
            grid.push(line);
        }
        let mut totals: Vec<Option<String>> = columns
            .iter()
            .enumerate()
            .map(|(c, column)| hidden_key(&table["column_totals"][c], None, Some(column)))
            .collect();
        totals.push(hidden_key(&table["total"], None, None));
        grid.push(totals);
        let (height, width) = (grid.len(), columns.len() + 1);
        let mut id = |key: &str| {
            let next = ids.len();
            *ids.entry(key.to_owned()).or_insert(next)
        };
        for line in &grid {
            let mut eq = BTreeMap::new();
            for (c, cell) in line.iter().enumerate() {
                if let Some(key) = cell {
                    *eq.entry(id(key)).or_insert(0.0) += if c + 1 == width { -1.0 } else { 1.0 };
                }
            }
            equations.push(eq);
        }
        for c in 0..width {
            let mut eq = BTreeMap::new();
            for (r, line) in grid.iter().enumerate() {
                if let Some(key) = &line[c] {
                    *eq.entry(id(key)).or_insert(0.0) += if r + 1 == height { -1.0 } else { 1.0 };
                }
            }
            equations.push(eq);
        }
    }
    let n = ids.len();
    let mut m: Vec<Vec<f64>> = equations
        .into_iter()
        .map(|eq| {
            let mut row = vec![0.0; n];
            for (i, v) in eq {
                row[i] = v;
            }
            row
        })
        .collect();
    // Reduced row echelon form; a variable is determined when it is a pivot
    // whose row has no free variable.
    let mut pivots: Vec<(usize, usize)> = Vec::new();
    let mut rank = 0;
    for col in 0..n {
        let Some(pivot) =
            (rank..m.len()).max_by(|&a, &b| m[a][col].abs().partial_cmp(&m[b][col].abs()).unwrap())
        else {
            break;
        };
        if m[pivot][col].abs() < 1e-9 {
            continue;
        }
        m.swap(rank, pivot);
        let p = m[rank][col];
        for v in &mut m[rank] {
            *v /= p;
        }
        let pivot_row = m[rank].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != rank && row[col].abs() > 1e-12 {
                let f = row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row) {
                    *v -= f * p;
                }
            }
        }
        pivots.push((rank, col));
        rank += 1;
    }
    let pivot_columns: std::collections::HashSet<usize> = pivots.iter().map(|(_, c)| *c).collect();
    let names: HashMap<usize, &String> = ids.iter().map(|(k, v)| (*v, k)).collect();
    pivots
        .iter()
        .filter(|(r, _)| (0..n).all(|c| pivot_columns.contains(&c) || m[*r][c].abs() < 1e-9))
        .map(|(_, c)| names[c].clone())
        .collect()
}

/// The `code` of each item of a JSON list.
fn codes_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["code"].as_str().unwrap())
        .collect()
}

fn table<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("no table {code}"))
}

async fn the_new_tables_hide_no_cell_the_whole_report_gives_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let officer = app.user(Role::DistrictOfficer, "SX").await;
    let officer = app.token(&officer).await;
    // Few cases: many small cells, in the new tables too.
    generate(&app, 160, 11).await;
    vary(&app, 17).await;
    let mut hidden_in_new = 0;
    let mut checked = 0;
    for (area, period) in [
        ("SX-AL", "year_end-2026"),
        ("SX-AL", "six_month-2026"),
        ("SX-AL", "year_end-2025"),
        ("SX", "year_end-2026"),
    ] {
        let (status, draft) = app
            .call_with_token(
                &officer,
                "POST",
                "/api/v1/stats/reports",
                Some(json!({"area": area, "period": period})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{area} {period}: {draft}");
        assert_no_small_counts(&draft);
        let codes = codes_of(&draft["tables"]);
        let listed: Vec<&str> = caseguard::stats::report::TABLE_CODES
            .iter()
            .copied()
            .filter(|c| codes.contains(c) || *c != "cases_by_area")
            .collect();
        assert_eq!(codes, listed, "the tables the OpenAPI description lists");
        let found = recoverable(&draft);
        assert!(
            found.is_empty(),
            "{area} {period}: hidden cells given back: {found:?}"
        );
        // The margins the suppression links are indeed the same counts.
        let cases_by_sex = &table(&draft, "cases_by_age")["column_totals"];
        assert_eq!(
            &table(&draft, "cases_by_disability")["column_totals"],
            cases_by_sex
        );
        for family in ["incidents_by_context", "incidents_by_csa_subtype"] {
            let by_sex = table(&draft, family);
            for suffix in ["_and_age", "_and_school_level"] {
                let other = table(&draft, &format!("{family}{suffix}"));
                assert_eq!(other["rows"], by_sex["rows"]);
                assert_eq!(
                    other["row_totals"], by_sex["row_totals"],
                    "{family}{suffix}"
                );
                assert_eq!(other["total"], by_sex["total"]);
            }
        }
        for code in new_tables() {
            hidden_in_new += table(&draft, code).to_string().matches("\"x\"").count();
        }
        checked += 1;
        if period == "year_end-2026" && area == "SX-AL" {
            // Several contexts per incident: more counted than incidents.
            let contexts = table(&draft, "incidents_by_context");
            let rows = codes_of(&contexts["rows"]);
            for code in [
                "school_violence",
                "bullying",
                "sexual_harassment",
                "online_abuse",
                "trafficking",
                "illegal_marriage_brokerage",
                "early_marriage",
            ] {
                assert!(rows.contains(&code), "{code} not a row: {rows:?}");
            }
            let published: u64 = contexts["row_totals"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_u64)
                .sum();
            assert!(published > 0, "{contexts}");
            assert_eq!(
                table(&draft, "incidents_by_csa_subtype")["rows"]
                    .as_array()
                    .unwrap()
                    .len(),
                5
            );
        }
    }
    assert_eq!(checked, 4);
    assert!(
        hidden_in_new > 0,
        "with 160 cases some cells of the new tables must be hidden"
    );
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    body_sha256: String,
}

fn stored(conn: &mut DbConnection, id: &str) -> (String, String) {
    let text = sql(
        conn,
        "SELECT body, body_sha256 FROM stats_reports WHERE id = $1",
    );
    let row: Stored = diesel::sql_query(text)
        .bind::<Text, _>(id)
        .get_result(conn)
        .unwrap();
    (row.body, row.body_sha256)
}

async fn raw(app: &TestApp, token: &str, path: &str) -> String {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// A report released by the previous release (its body without the new
/// tables, as that release computed it) is served, exported and kept byte
/// for byte after migration 000020 and new cases; a report released now
/// carries the new tables.
async fn a_report_released_before_the_new_tables_stays_byte_identical(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let officer = app.user(Role::DistrictOfficer, "SX").await;
    let officer = app.token(&officer).await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    generate(&app, 300, 4).await;
    let (status, draft) = app
        .call_with_token(
            &officer,
            "POST",
            "/api/v1/stats/reports",
            Some(json!({"area": "SX-AL", "period": "year_end-2025"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    // The previous release's body: the same report without the new tables,
    // released as that release stored it.
    let mut old: Value = draft.clone();
    for key in ["id", "status", "released_at", "body_sha256"] {
        old.as_object_mut().unwrap().remove(key);
    }
    old["tables"]
        .as_array_mut()
        .unwrap()
        .retain(|t| !new_tables().contains(&t["code"].as_str().unwrap()));
    let report: caseguard::stats::Report = serde_json::from_value(old).unwrap();
    let body = serde_json::to_string(&report).unwrap();
    let old_id = uuid::Uuid::now_v7().to_string();
    {
        let mut conn = app.db.connect();
        let area = caseguard::stats::area_by_code(&mut conn, "SX-AL")
            .unwrap()
            .id;
        let text = sql(
            &conn,
            "INSERT INTO stats_reports (id, area_id, period, window_start, window_end, status, body,
                 body_sha256, computed_by, computed_at, released_by, released_at)
             SELECT $1, $2, period, window_start, window_end, 'released', $3, $4, computed_by,
                 computed_at, computed_by, computed_at
             FROM stats_reports WHERE id = $5",
        );
        diesel::sql_query(text)
            .bind::<Text, _>(&old_id)
            .bind::<Text, _>(&area)
            .bind::<Text, _>(&body)
            .bind::<Text, _>(caseguard::crypto::sha256_hex(body.as_bytes()))
            .bind::<Text, _>(draft["id"].as_str().unwrap())
            .execute(&mut conn)
            .unwrap();
    }
    let paths = [
        format!("/api/v1/stats/reports/{old_id}"),
        format!("/api/v1/stats/reports/{old_id}/export?format=csv&lang=en"),
        "/api/v1/stats/report?area=SX-AL&period=year_end-2025".to_owned(),
    ];
    let mut before = Vec::new();
    for path in &paths {
        before.push(raw(&app, &monitor, path).await);
    }
    let kept = stored(&mut app.db.connect(), &old_id);
    assert!(!before[0].contains("incidents_by_context"), "{}", before[0]);

    // The upgrade (000020 again, on the populated store), then new cases
    // and a new release.
    {
        let mut conn = app.db.connect();
        let mut reverted = 0;
        while !caseguard::db::migrations::revert_last(&mut conn)
            .unwrap()
            .contains("000020")
        {
            reverted += 1;
            assert!(reverted < 5);
        }
        caseguard::db::migrations::run_pending(&mut conn).unwrap();
    }
    generate(&app, 100, 9).await;
    vary(&app, 3).await;
    for (path, was) in paths.iter().zip(&before) {
        assert_eq!(&raw(&app, &monitor, path).await, was, "{path}");
    }
    let now = stored(&mut app.db.connect(), &old_id);
    assert_eq!(now, kept);
    assert_eq!(now.1, caseguard::crypto::sha256_hex(now.0.as_bytes()));

    let (status, fresh) = app
        .call_with_token(
            &officer,
            "POST",
            "/api/v1/stats/reports",
            Some(json!({"area": "SX-AL", "period": "year_end-2026"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let path = format!(
        "/api/v1/stats/reports/{}/release",
        fresh["id"].as_str().unwrap()
    );
    let (status, released) = app.call_with_token(&officer, "POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    for code in new_tables() {
        table(&released, code);
        // Each is drawn from its published cells, in both languages.
        for lang in ["vi", "en"] {
            let svg = raw(
                &app,
                &monitor,
                &format!(
                    "/api/v1/stats/chart?area=SX-AL&period=year_end-2026&table={code}&lang={lang}"
                ),
            )
            .await;
            assert!(
                svg.starts_with("<svg") && !svg.contains("<script"),
                "{code}"
            );
        }
    }
    let svg = raw(
        &app,
        &monitor,
        "/api/v1/stats/chart?area=SX-AL&period=year_end-2026&table=incidents_by_context&lang=en",
    )
    .await;
    assert!(
        svg.contains("Trafficking") && svg.contains("Female"),
        "{svg}"
    );
}

/// The check itself finds what it must: a lone hidden cell, and a cycle
/// that is safe in one table but not once another table publishes one of
/// its shared totals.
#[test]
fn the_check_gives_back_what_the_published_cells_determine() {
    let labels = |codes: &[&str]| -> Value {
        codes
            .iter()
            .map(|c| json!({"code": c, "vi": c, "en": c}))
            .collect()
    };
    let grid = |code: &str, cells: Value, row_totals: Value, column_totals: Value, total: Value| {
        json!({"code": code, "rows": labels(&["a", "b"]), "columns": labels(&["female", "male"]),
               "cells": cells, "row_totals": row_totals, "column_totals": column_totals, "total": total})
    };
    let lone = json!({"tables": [grid("cases_by_age", json!([["x", 10], [10, 10]]), json!([20, 20]), json!([20, 20]), json!(40))]});
    assert_eq!(recoverable(&lone).len(), 1);
    let cycle = grid(
        "cases_by_age",
        json!([["x", "x"], [10, 10]]),
        json!([20, 20]),
        json!(["x", "x"]),
        json!(40),
    );
    assert!(recoverable(&json!({"tables": [cycle.clone()]})).is_empty());
    let other = grid(
        "cases_by_disability",
        json!([[10, 10], [10, 10]]),
        json!([20, 20]),
        json!([20, 20]),
        json!(40),
    );
    assert!(!recoverable(&json!({"tables": [cycle.clone(), other.clone()]})).is_empty());
    // Tables of different people share nothing.
    let mut unrelated = other;
    unrelated["code"] = json!("referrals_by_agency_and_status");
    assert!(recoverable(&json!({"tables": [cycle, unrelated]})).is_empty());
}
