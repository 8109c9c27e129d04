//! Statistics without disclosure: released reports never change, exports
//! match the JSON, no small count is published, monitors reach no case, the
//! plan's indicators against a hand-computed example, the command line.

use caseguard::authz::Action;
use caseguard::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, TestUser, caseguard, stderr, stdout};

on_both_backends!(
    released_reports_never_change_and_corrections_go_to_the_next_period,
    no_published_count_is_small_and_exports_match_the_json,
    indicator_progress_matches_a_hand_computed_example,
    overlapping_released_reports_cannot_be_differenced,
);

/// The test clock is 2 November 2026: this period is over.
const PERIOD: &str = "year_end-2026";

pub(crate) async fn generate(app: &TestApp, count: usize, seed: u64) {
    let state = app.state.clone();
    let clock = app.clock.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::demo::generate::generate_cases(
            &mut conn,
            &state.keyring.current(),
            &state.auditor,
            &clock,
            count,
            seed,
            |_| {},
        )
        .unwrap()
    })
    .await
    .unwrap();
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

struct Office {
    app: TestApp,
    officer: String,
    monitor: String,
}

async fn office(backend: Backend) -> Option<Office> {
    let app = TestApp::spawn(backend).await?.with_demo_orgs().await;
    let officer: TestUser = app.user(Role::DistrictOfficer, "SX-AL").await;
    let monitor: TestUser = app.user(Role::Monitor, "SX-AL").await;
    let officer = app.token(&officer).await;
    let monitor = app.token(&monitor).await;
    Some(Office {
        app,
        officer,
        monitor,
    })
}

async fn released_reports_never_change_and_corrections_go_to_the_next_period(backend: Backend) {
    let Some(Office {
        app,
        officer,
        monitor,
    }) = office(backend).await
    else {
        return;
    };
    generate(&app, 300, 7).await;
    let (status, draft) = call(
        &app,
        &officer,
        "POST",
        "/api/v1/stats/reports",
        Some(json!({"area": "SX-AL", "period": PERIOD})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert_eq!(draft["status"], "draft");
    let id = draft["id"].as_str().unwrap().to_owned();
    // Drafts are for the office that reviews them.
    let (status, _) = call(
        &app,
        &monitor,
        "GET",
        &format!("/api/v1/stats/reports/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        &monitor,
        "POST",
        &format!("/api/v1/stats/reports/{id}/release"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A period that is not over cannot be released.
    let (_, open) = call(
        &app,
        &officer,
        "POST",
        "/api/v1/stats/reports",
        Some(json!({"area": "SX-AL", "period": "year_end-2027"})),
    )
    .await;
    let (status, body) = call(
        &app,
        &officer,
        "POST",
        &format!(
            "/api/v1/stats/reports/{}/release",
            open["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("period_not_over"))
    );

    let (status, released) = call(
        &app,
        &officer,
        "POST",
        &format!("/api/v1/stats/reports/{id}/release"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["status"], "released");
    let (status, again) = call(
        &app,
        &officer,
        "POST",
        &format!("/api/v1/stats/reports/{id}/release"),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_released"))
    );
    let (_, second) = call(
        &app,
        &officer,
        "POST",
        "/api/v1/stats/reports",
        Some(json!({"area": "SX-AL", "period": PERIOD})),
    )
    .await;
    let (status, _) = call(
        &app,
        &officer,
        "POST",
        &format!(
            "/api/v1/stats/reports/{}/release",
            second["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (_, first_read) = call(
        &app,
        &monitor,
        "GET",
        &format!("/api/v1/stats/reports/{id}"),
        None,
    )
    .await;
    let live_path = format!("/api/v1/stats/report?area=SX-AL&period={PERIOD}");
    let (_, first_live) = call(&app, &monitor, "GET", &live_path, None).await;
    assert_eq!(first_live["released"], true);
    assert_eq!(first_live["tables"], released["tables"]);

    // New cases arrive (the generator spreads them over two years, so some
    // land in the released window); the released report stays as it was.
    generate(&app, 200, 8).await;
    let (_, second_read) = call(
        &app,
        &monitor,
        "GET",
        &format!("/api/v1/stats/reports/{id}"),
        None,
    )
    .await;
    assert_eq!(first_read, second_read);
    let (_, second_live) = call(&app, &monitor, "GET", &live_path, None).await;
    assert_eq!(first_live, second_live);
    let (_, fresh) = call(
        &app,
        &officer,
        "POST",
        "/api/v1/stats/reports",
        Some(json!({"area": "SX-AL", "period": PERIOD})),
    )
    .await;
    assert_ne!(
        fresh["tables"], released["tables"],
        "the live figures did change"
    );

    // The database itself refuses to change a released report.
    let mut conn = app.db.connect();
    use diesel::RunQueryDsl;
    let edited = diesel::sql_query(format!(
        "UPDATE stats_reports SET body = '{{}}' WHERE id = '{id}'"
    ))
    .execute(&mut conn);
    assert!(edited.is_err(), "{edited:?}");
    let removed = diesel::sql_query(format!("DELETE FROM stats_reports WHERE id = '{id}'"))
        .execute(&mut conn);
    assert!(removed.is_err(), "{removed:?}");

    // The next period's report carries the correction as a note.
    let (_, next) = call(
        &app,
        &monitor,
        "GET",
        "/api/v1/stats/report?area=SX-AL&period=year_end-2027",
        None,
    )
    .await;
    let notes = next["notes"].to_string();
    assert!(
        notes.contains("Correction to Year-end report 2026"),
        "{notes}"
    );
    assert!(
        notes.contains("Đính chính số liệu Báo cáo cuối năm 2026"),
        "{notes}"
    );

    // Released and exported, both audited.
    let (_, listed) = call(
        &app,
        &monitor,
        "GET",
        "/api/v1/stats/reports?area=SX-AL",
        None,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let auditor = app.user(Role::Auditor, "SX").await;
    let auditor = app.token(&auditor).await;
    let (_, log) = call(&app, &auditor, "GET", "/api/v1/audit?limit=500", None).await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "stats.report_released")
    );
}

pub(crate) fn assert_no_small_counts(report: &Value) {
    let k = report["min_count"].as_u64().unwrap();
    let mut published = 0;
    for table in report["tables"].as_array().unwrap() {
        let mut cells: Vec<&Value> = table["cells"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .collect();
        cells.extend(table["row_totals"].as_array().unwrap());
        cells.extend(table["column_totals"].as_array().unwrap());
        cells.push(&table["total"]);
        for cell in cells {
            match cell {
                Value::Number(n) => {
                    let n = n.as_u64().unwrap();
                    assert!(n == 0 || n >= k, "{} publishes {n}", table["code"]);
                    published += 1;
                }
                Value::String(mark) => {
                    assert_eq!(mark, report["suppressed_mark"].as_str().unwrap())
                }
                other => panic!("unexpected cell {other}"),
            }
        }
    }
    assert!(published > 0);
    for school in report["schools"].as_array().unwrap() {
        if let Some(n) = school["cases"].as_u64() {
            assert!(n == 0 || n >= 10, "{school}");
        }
    }
}

async fn no_published_count_is_small_and_exports_match_the_json(backend: Backend) {
    let Some(Office { app, monitor, .. }) = office(backend).await else {
        return;
    };
    // Few cases: many small cells.
    generate(&app, 120, 3).await;
    let base = format!("/api/v1/stats/report?area=SX-AL&period={PERIOD}");
    let (status, report) = call(&app, &monitor, "GET", &base, None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["released"], false);
    assert_no_small_counts(&report);
    // Every case has an incident: the incident tables (school and sex copied
    // onto each incident by the migration's triggers) count at least as many.
    let total = |code: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == code)
            .unwrap()["total"]
            .as_u64()
            .unwrap()
    };
    assert!(total("cases_by_age") > 20);
    assert!(total("incidents_by_type") >= total("cases_by_age"));
    let hidden = report.to_string().matches("\"x\"").count();
    assert!(hidden > 0, "with 120 cases some cells must be hidden");

    // CSV: each table's lines hold exactly the JSON's values.
    let csv = app
        .client
        .get(app.url(&format!(
            "/api/v1/stats/report/export?area=SX-AL&period={PERIOD}&format=csv&lang=en"
        )))
        .bearer_auth(&monitor)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let text_of = |v: &Value| match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for table in report["tables"].as_array().unwrap() {
        let title = rows
            .iter()
            .position(|r| r[0] == table["en"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in the CSV", table["en"]));
        for (i, row) in table["rows"].as_array().unwrap().iter().enumerate() {
            let line = &rows[title + 2 + i];
            assert_eq!(line[0], row["en"].as_str().unwrap());
            let mut expected: Vec<String> = table["cells"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(text_of)
                .collect();
            expected.push(text_of(&table["row_totals"][i]));
            assert_eq!(&line[1..], expected.as_slice(), "{}", table["code"]);
        }
        let totals = &rows[title + 2 + table["rows"].as_array().unwrap().len()];
        assert_eq!(totals.last().unwrap(), &text_of(&table["total"]));
    }

    // XLSX: the same grid, counts as numbers.
    let xlsx = app
        .client
        .get(app.url(&format!(
            "/api/v1/stats/report/export?area=SX-AL&period={PERIOD}&format=xlsx&lang=en"
        )))
        .bearer_auth(&monitor)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), StatusCode::OK);
    let bytes = xlsx.bytes().await.unwrap();
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("Report").unwrap();
    let grid: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    calamine::Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
                    calamine::Data::Float(f) => format!("{f:.1}"),
                    calamine::Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let trim = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                let mut r = r.clone();
                while r.last().is_some_and(String::is_empty) {
                    r.pop();
                }
                r
            })
            .filter(|r| !r.is_empty())
            .collect()
    };
    assert_eq!(trim(&grid), trim(&rows));

    // Vietnamese labels by default, with their diacritics.
    let vi = app
        .client
        .get(app.url(&format!(
            "/api/v1/stats/report/export?area=SX-AL&period={PERIOD}&format=csv"
        )))
        .bearer_auth(&monitor)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        vi.contains("Số vụ việc theo độ tuổi và giới tính của học sinh")
            && vi.contains("Báo cáo cuối năm 2026"),
        "{vi}"
    );

    // A chart is SVG drawn from the published cells, no script.
    let svg = app
        .client
        .get(app.url(&format!(
            "/api/v1/stats/chart?area=SX-AL&period={PERIOD}&table=incidents_by_type"
        )))
        .bearer_auth(&monitor)
        .send()
        .await
        .unwrap();
    assert_eq!(
        svg.headers()["content-type"],
        "image/svg+xml; charset=utf-8"
    );
    let svg = svg.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Bạo lực thể chất") && !svg.contains("<script"),
        "{svg}"
    );

    // Inputs are refused with a reason; schools are not areas.
    for (path, code) in [
        (
            "/api/v1/stats/report?area=SX-AL&period=weekly-2026".to_owned(),
            "invalid_period",
        ),
        (
            format!("/api/v1/stats/report?area=SX-AL-AB-TH&period={PERIOD}"),
            "not_found",
        ),
        (
            format!("/api/v1/stats/report/export?area=SX-AL&period={PERIOD}&format=pdf"),
            "invalid_query",
        ),
        (
            format!("/api/v1/stats/chart?area=SX-AL&period={PERIOD}&table=pupils"),
            "invalid_table",
        ),
    ] {
        let (_, body) = call(&app, &monitor, "GET", &path, None).await;
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    // Another district looks like nothing at all.
    let (status, _) = call(
        &app,
        &monitor,
        "GET",
        &format!("/api/v1/stats/report?area=SX&period={PERIOD}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The statistics page says which days a report counts and when it is due,
/// in each language's way of writing a date (the windows are data in
/// `policies/reporting.toml`), and offers the report as CSV and XLSX files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_page_states_its_window_and_offers_its_files() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let (cookie, _) = app.browser_session(&monitor).await;
    let page = |lang: &'static str| {
        let cookie = cookie.clone();
        let app = &app;
        let id = monitor.id.clone();
        async move {
            // A signed-in person's pages speak their own setting.
            caseguard::db::users::set_language(
                &mut app.db.connect(),
                &id,
                lang,
                caseguard::clock::Clock::now(&app.clock).naive_utc(),
            )
            .unwrap();
            let response = app
                .client
                .get(app.url(&format!("/stats?period={PERIOD}")))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let vi = page("vi").await;
    assert!(
        vi.contains(
            "Khoảng thời gian số liệu: 01/11/2025 – 31/10/2026 · Hạn nộp báo cáo: 10/11/2026"
        ),
        "{vi}"
    );
    // The page offers the report as files, and the links work with the
    // page's own session (the live view: this period has no released one).
    for format in ["csv", "xlsx"] {
        let href = format!(
            "/api/v1/stats/report/export?area=SX-AL&#38;period={PERIOD}&#38;format={format}&#38;lang=vi"
        );
        assert!(vi.contains(&format!("href=\"{href}\" download")), "{vi}");
        let file = app
            .client
            .get(app.url(&href.replace("&#38;", "&")))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), StatusCode::OK, "{format}");
        assert!(
            file.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment"),
            "{format}"
        );
    }
    let en = page("en").await;
    assert!(
        en.contains("Data covers: 1 Nov 2025 – 31 Oct 2026 · Report due: 10 Nov 2026"),
        "{en}"
    );
    // The tables by context, sub-type and disability (issue 17), each with
    // its chart, and how to read the contexts' totals, in both languages.
    for (page, title, note) in [
        (
            &vi,
            "Số sự việc theo bối cảnh và giới tính của học sinh",
            "Một sự việc có nhiều bối cảnh được tính ở mỗi bối cảnh của nó",
        ),
        (
            &en,
            "Incidents by context and the pupil&#39;s sex",
            "An incident with several contexts counts once in each of them",
        ),
    ] {
        assert!(page.contains(title) && page.contains(note), "{page}");
        for code in crate::stats_contexts::new_tables() {
            assert!(page.contains(&format!("id=\"table-{code}\"")), "{code}");
            assert!(page.contains(&format!("table={code}&#38;")), "{code} chart");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_reaches_no_case_level_endpoint() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    generate(&app, 5, 11).await;
    let case_id: String = {
        use caseguard::db::schema::cases;
        use diesel::prelude::*;
        let mut conn = app.db.connect();
        cases::table.select(cases::id).first(&mut conn).unwrap()
    };
    let referral_id: String = {
        use caseguard::db::schema::referrals;
        use diesel::prelude::*;
        let mut conn = app.db.connect();
        referrals::table
            .select(referrals::id)
            .first(&mut conn)
            .unwrap()
    };
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let token = app.token(&monitor).await;
    let mut tried = 0;
    for (method, path, action) in crate::authz::PROTECTED_ROUTES {
        let Some(action) = action else { continue };
        if action.starts_with("stats.read") || *action == "org.read" {
            continue;
        }
        let path = path
            .replace(
                "/cases/0193a000-0000-7000-8000-000000000000",
                &format!("/cases/{case_id}"),
            )
            .replace(
                "/referrals/0193a000-0000-7000-8000-000000000000",
                &format!("/referrals/{referral_id}"),
            );
        let body = json!({"period": PERIOD, "figures": {}, "area": "SX-AL"});
        let (status, _) = call(&app, &token, method, &path, Some(body)).await;
        // Refused like a missing resource; a POST may be refused for its
        // body first. Never an answer with data.
        if *method == "GET" {
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} ({action})");
        } else {
            assert!(
                status.is_client_error() && status != StatusCode::UNAUTHORIZED,
                "a monitor got {status} from {method} {path} ({action})"
            );
        }
        tried += 1;
    }
    assert!(tried > 20);
    // What a monitor does reach: the aggregates.
    let (status, _) = call(
        &app,
        &token,
        "GET",
        &format!("/api/v1/stats/report?area=SX-AL&period={PERIOD}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Staff figures (women, men) of the six demo schools, in the figures'
/// order: planning, trained, key leadership, masters, S&T leads.
const FIGURES: &[(&str, [(u32, u32); 5])] = &[
    ("SX-AL-AB-MN", [(3, 1), (2, 1), (1, 1), (2, 2), (1, 3)]),
    ("SX-AL-AB-TH", [(2, 2), (2, 0), (0, 2), (3, 1), (0, 2)]),
    ("SX-AL-AB-THCS", [(0, 3), (0, 2), (1, 0), (1, 4), (1, 1)]),
    ("SX-AL-PM-MN", [(8, 0), (3, 0), (1, 1), (2, 0), (0, 1)]),
    ("SX-AL-PM-TH", [(1, 2), (1, 1), (1, 2), (2, 3), (1, 1)]),
    ("SX-AL-PM-THCS", [(2, 1), (1, 1), (0, 1), (0, 2), (2, 2)]),
];

const CODES: [&str; 5] = [
    "leadership_planning",
    "planning_trained",
    "key_leadership",
    "masters",
    "st_task_leads",
];

fn body_of(figures: &[(u32, u32); 5]) -> Value {
    let map: serde_json::Map<String, Value> = CODES
        .iter()
        .zip(figures)
        .map(|(code, (women, men))| ((*code).to_owned(), json!({"women": women, "men": men})))
        .collect();
    json!({"period": PERIOD, "figures": map})
}

async fn indicator_progress_matches_a_hand_computed_example(backend: Backend) {
    let Some(Office { app, monitor, .. }) = office(backend).await else {
        return;
    };
    // The first school through the API, as its focal point.
    let focal = app.user(Role::FocalPoint, FIGURES[0].0).await;
    let focal = app.token(&focal).await;
    let mut bad = body_of(&FIGURES[0].1);
    bad["figures"]["planning_trained"] = json!({"women": 9, "men": 0});
    let (status, body) = call(&app, &focal, "POST", "/api/v1/stats/indicators", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`planning_trained`: women (9) cannot be more"),
        "{body}"
    );
    let (status, body) = call(
        &app,
        &focal,
        "POST",
        "/api/v1/stats/indicators",
        Some(body_of(&FIGURES[0].1)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        &app,
        &focal,
        "POST",
        "/api/v1/stats/indicators",
        Some(body_of(&FIGURES[0].1)),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_submitted"))
    );
    let (status, _) = call(
        &app,
        &monitor,
        "POST",
        "/api/v1/stats/indicators",
        Some(body_of(&FIGURES[0].1)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The others directly, each as its school's focal point.
    let mut focal_points = Vec::new();
    for (code, _) in &FIGURES[1..] {
        focal_points.push(app.user(Role::FocalPoint, code).await.id);
    }
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let ctx = state.stats_context();
        let period = state.reporting.period(PERIOD).unwrap();
        for ((code, figures), focal) in FIGURES[1..].iter().zip(&focal_points) {
            let school = caseguard::db::organisations::find_by_code(&mut conn, code)
                .unwrap()
                .unwrap();
            let by = crate::helpers::capability_of(
                &state,
                &mut conn,
                focal,
                Action::IndicatorsSubmit,
                &school.id,
            );
            let figures = CODES
                .iter()
                .zip(figures)
                .map(|(c, f)| ((*c).to_owned(), *f))
                .collect();
            caseguard::stats::indicators::submit(
                &mut conn,
                &ctx,
                &state.auditor,
                &by,
                &school,
                &period,
                &figures,
            )
            .unwrap();
        }
    })
    .await
    .unwrap();
    let (_, report) = call(
        &app,
        &monitor,
        "GET",
        &format!("/api/v1/stats/report?area=SX-AL&period={PERIOD}"),
        None,
    )
    .await;
    let rows = report["indicators"].as_array().unwrap();
    let district = rows.iter().find(|r| r["code"] == "SX-AL").unwrap();
    let value = |row: &Value, code: &str| -> (Value, Value) {
        let v = row["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["code"] == code)
            .unwrap();
        (v["percent"].clone(), v["met"].clone())
    };
    // By hand: 5 of 6 schools have a woman in planning (83.3 %, target ≥ 90);
    // 4 of 6 a woman in key leadership (66.7 %, > 80); 9 of the 16 women in
    // planning were trained (56.3 %, ≥ 80); 10 of 22 masters are women
    // (45.5 %, ≥ 50); 5 of 15 S&T leads are women (33.3 %, > 25: met).
    assert_eq!(district["schools_reporting"], 6);
    assert_eq!(
        value(district, "institutions_with_women_in_planning"),
        (json!(83.3), json!(false))
    );
    assert_eq!(
        value(district, "units_with_women_in_key_leadership"),
        (json!(66.7), json!(false))
    );
    assert_eq!(
        value(district, "women_in_planning_trained"),
        (json!(56.3), json!(false))
    );
    assert_eq!(
        value(district, "women_among_masters"),
        (json!(45.5), json!(false))
    );
    assert_eq!(
        value(district, "women_leading_st_tasks"),
        (json!(33.3), json!(true))
    );
    // A commune of three schools: 2 of 3 with a woman in planning; 6 of 13
    // masters are women; its 2 women S&T leads are too few to publish.
    let an_binh = rows.iter().find(|r| r["code"] == "SX-AL-AB").unwrap();
    assert_eq!(
        value(an_binh, "institutions_with_women_in_planning"),
        (json!(66.7), json!(false))
    );
    assert_eq!(
        value(an_binh, "women_among_masters"),
        (json!(46.2), json!(false))
    );
    assert_eq!(
        value(an_binh, "women_leading_st_tasks"),
        (Value::Null, Value::Null)
    );
}

#[test]
fn the_command_line_prints_a_report_in_every_format() {
    let db = TestDb::create(Backend::Sqlite).unwrap();
    let data = db.data_dir();
    let env = [
        ("CASEGUARD_DATABASE_URL", db.url.as_str()),
        ("CASEGUARD_DATA_DIR", data.to_str().unwrap()),
    ];
    let out = caseguard(
        db.dir.path(),
        &env,
        &["demo", "--cases", "150", "--seed", "4"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("generated 150 fictional case(s)"),
        "{}",
        stdout(&out)
    );
    let out = caseguard(
        db.dir.path(),
        &env,
        &[
            "stats",
            "report",
            "--area",
            "SX-AL",
            "--period",
            "calendar_year-2026",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["released"], false);
    assert_no_small_counts(&json["report"]);
    let file = db.dir.path().join("report.xlsx");
    let out = caseguard(
        db.dir.path(),
        &env,
        &[
            "stats",
            "report",
            "--area",
            "SX-AL",
            "--period",
            "calendar_year-2026",
            "--format",
            "xlsx",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&file).unwrap().starts_with(b"PK"));
    let out = caseguard(
        db.dir.path(),
        &env,
        &[
            "stats",
            "report",
            "--area",
            "SX-AL",
            "--period",
            "calendar_year-2026",
            "--format",
            "csv",
            "--lang",
            "en",
        ],
    );
    assert!(stdout(&out).contains("Cases by the pupil's age and sex"));
    // The tables of issue 17 as well: the demo's incidents carry contexts
    // (bullying), sub-types (molestation) and disabilities.
    for title in [
        "Cases by disability and the pupil's sex",
        "Incidents by context and the pupil's sex (an incident with several contexts counts in each)",
        "Incidents by context and the pupil's age",
        "Incidents by context and school level",
        "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and the pupil's sex",
        "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and the pupil's age",
        "Child sexual abuse incidents by sub-type (Decree 56/2017/ND-CP) and school level",
    ] {
        assert!(stdout(&out).contains(title), "{title}: {}", stdout(&out));
    }
    let bullying = json["report"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "incidents_by_context")
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["code"] == "bullying")
        .unwrap();
    let table = json["report"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "incidents_by_context")
        .unwrap();
    assert_ne!(table["row_totals"][bullying], 0, "{table}");
    let out = caseguard(
        db.dir.path(),
        &env,
        &[
            "stats",
            "report",
            "--area",
            "NOWHERE",
            "--period",
            "calendar_year-2026",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--area: no organisation has the code NOWHERE"),
        "{}",
        stderr(&out)
    );
    let out = caseguard(
        db.dir.path(),
        &env,
        &[
            "stats",
            "report",
            "--area",
            "SX-AL",
            "--period",
            "weekly-2026",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--period: expected <kind>-<year>"),
        "{}",
        stderr(&out)
    );
}

/// The codes of a report table's `rows` or `columns`, in order.
pub(crate) fn line_codes(table: &Value, key: &str) -> Vec<String> {
    table[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Every published count of a report's JSON, by (table, row, column) —
/// written apart from `caseguard::stats::differencing`, as a reader would.
pub(crate) fn published(
    report: &Value,
) -> std::collections::BTreeMap<(String, String, String), u64> {
    let mut out = std::collections::BTreeMap::new();
    for table in report["tables"].as_array().unwrap() {
        let code = table["code"].as_str().unwrap().to_owned();
        let (rows, columns) = (line_codes(table, "rows"), line_codes(table, "columns"));
        let mut put = |row: &str, column: &str, cell: &Value| {
            if let Some(n) = cell.as_u64() {
                out.insert((code.clone(), row.to_owned(), column.to_owned()), n);
            }
        };
        for (r, row) in rows.iter().enumerate() {
            for (c, column) in columns.iter().enumerate() {
                put(row, column, &table["cells"][r][c]);
            }
            put(row, "total", &table["row_totals"][r]);
        }
        for (c, column) in columns.iter().enumerate() {
            put("total", column, &table["column_totals"][c]);
        }
        put("total", "total", &table["total"]);
    }
    for school in report["schools"].as_array().unwrap() {
        if let Some(n) = school["cases"].as_u64() {
            out.insert(
                (
                    "schools".into(),
                    school["code"].as_str().unwrap().into(),
                    "cases".into(),
                ),
                n,
            );
        }
    }
    out
}

/// The matching published cells of two reports whose difference is a
/// count from 1 to k−1.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let k = a["min_count"].as_u64().unwrap();
    let (a, b) = (published(a), published(b));
    a.iter()
        .filter_map(|(key, x)| {
            let y = b.get(key)?;
            (1..k)
                .contains(&x.abs_diff(*y))
                .then(|| format!("{key:?}: {x} and {y}"))
        })
        .collect()
}

async fn draft_of(app: &TestApp, officer: &str, area: &str, period: &str) -> Value {
    let (status, draft) = call(
        app,
        officer,
        "POST",
        "/api/v1/stats/reports",
        Some(json!({"area": area, "period": period})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    draft
}

async fn release_of(app: &TestApp, officer: &str, draft: &Value) -> (StatusCode, Value) {
    call(
        app,
        officer,
        "POST",
        &format!(
            "/api/v1/stats/reports/{}/release",
            draft["id"].as_str().unwrap()
        ),
        None,
    )
    .await
}

async fn raw_text(app: &TestApp, token: &str, path: &str) -> String {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn overlapping_released_reports_cannot_be_differenced(backend: Backend) {
    let Some(Office {
        app,
        officer,
        monitor,
    }) = office(backend).await
    else {
        return;
    };
    generate(&app, 300, 7).await;
    // The first half of 2026 (January–June) overlaps the six-month report
    // (November–April). Its draft, computed before anything is stored, is
    // not compared with anything; the six-month draft computed after it is
    // compared with it (a stored draft is an answer its readers hold, issue
    // 21), so no pair of matching cells differs by 1 to k−1, and the cells
    // that would have are hidden and said so.
    let half_year = draft_of(&app, &officer, "SX-AL", "half_year_1-2026").await;
    let six_month = draft_of(&app, &officer, "SX-AL", "six_month-2026").await;
    assert!(
        differences(&half_year, &six_month).is_empty(),
        "{:?}",
        differences(&half_year, &six_month)
    );
    let notes = six_month["notes"].to_string();
    assert!(
        notes.contains("released report of overlapping scope or of a stored draft"),
        "the example must hold a cell that subtraction would reveal: {notes}"
    );
    assert!(notes.contains("SX-AL half_year_1-2026"), "{notes}");
    let (status, six_month) = release_of(&app, &officer, &six_month).await;
    assert_eq!(status, StatusCode::OK, "{six_month}");
    // The half-year draft, released after the six-month report, still
    // cannot be subtracted from it.
    let (status, half_year) = release_of(&app, &officer, &half_year).await;
    assert_eq!(status, StatusCode::OK, "{half_year}");
    assert!(differences(&half_year, &six_month).is_empty());

    // A commune of the district, same window as the six-month report: its
    // cells are not a small count away from the district's.
    let commune = draft_of(&app, &officer, "SX-AL-AB", "six_month-2026").await;
    let (status, commune) = release_of(&app, &officer, &commune).await;
    assert_eq!(status, StatusCode::OK, "{commune}");
    for other in [&six_month, &half_year] {
        assert!(differences(&commune, other).is_empty());
    }
    // No cell of one of them is a small count away from any other.
    assert_no_small_counts(&commune);
    assert_no_small_counts(&half_year);

    // Released reports stay byte for byte what they were, across requests
    // and after new cases arrive.
    let paths: Vec<String> = [&six_month, &half_year, &commune]
        .iter()
        .map(|r| format!("/api/v1/stats/reports/{}", r["id"].as_str().unwrap()))
        .collect();
    let mut first = Vec::new();
    for path in &paths {
        first.push(raw_text(&app, &monitor, path).await);
    }
    generate(&app, 100, 9).await;
    for (path, text) in paths.iter().zip(&first) {
        assert_eq!(&raw_text(&app, &monitor, path).await, text);
        assert_eq!(&raw_text(&app, &monitor, path).await, text);
    }
    let live = raw_text(
        &app,
        &monitor,
        "/api/v1/stats/report?area=SX-AL&period=six_month-2026",
    )
    .await;
    let live: Value = serde_json::from_str(&live).unwrap();
    assert_eq!(live["tables"], six_month["tables"]);
}
