//! Live statistics cannot be differenced (issue 21, item 1): no pair of
//! answers a caller can obtain — live views, ad-hoc windows, drafts and
//! released reports, of any areas and windows — has matching published
//! cells a count from 1 to k−1 apart; the three probes of the issue; an
//! ad-hoc window around one case (issue 17).

use std::collections::{BTreeMap, BTreeSet};

use caseguard::db::organisations::{self, NewOrganisation};
use caseguard::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, marked_case};
use crate::stats::{assert_no_small_counts, generate, published};

on_both_backends!(
    an_area_and_its_commune_cannot_be_differenced_live,
    two_live_windows_of_one_area_cannot_be_differenced,
    a_lone_school_is_not_shown_through_an_and_other_row,
    no_pair_of_obtainable_answers_differs_by_a_small_count,
    an_ad_hoc_window_around_one_case_shows_no_small_count,
);

/// Every published count of `a` that is 1 to k−1 away from the matching
/// count of `b` (table, row and column codes; schools by code).
fn small_differences(a: &Value, b: &Value) -> Vec<String> {
    let k = a["min_count"].as_u64().unwrap();
    let other = published(b);
    published(a)
        .into_iter()
        .filter_map(|(key, x)| {
            let y = other.get(&key)?;
            (1..k)
                .contains(&x.abs_diff(*y))
                .then(|| format!("{key:?}: {x} and {y}"))
        })
        .collect()
}

async fn officer(app: &TestApp) -> String {
    let officer = app.user(Role::DistrictOfficer, "SX").await;
    app.token(&officer).await
}

async fn live(app: &TestApp, token: &str, area: &str, period: &str) -> Value {
    let (status, body) = app
        .call_with_token(
            token,
            "GET",
            &format!("/api/v1/stats/report?area={area}&period={period}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{area} {period}: {body}");
    body
}

async fn ad_hoc(
    app: &TestApp,
    token: &str,
    area: &str,
    from: &str,
    to: &str,
) -> (StatusCode, Value) {
    app.call_with_token(
        token,
        "GET",
        &format!("/api/v1/stats/ad-hoc?area={area}&from={from}&to={to}"),
        None,
    )
    .await
}

/// Issue 21, first probe: the district's total minus a commune's.
async fn an_area_and_its_commune_cannot_be_differenced_live(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    generate(&app, 300, 7).await;
    let token = officer(&app).await;
    for period in ["year_end-2026", "six_month-2026", "semester_1-2026"] {
        let district = live(&app, &token, "SX-AL", period).await;
        for commune in ["SX-AL-AB", "SX-AL-PM"] {
            let commune = live(&app, &token, commune, period).await;
            let leaks = small_differences(&district, &commune);
            assert!(leaks.is_empty(), "{period}: {leaks:?}");
            assert_no_small_counts(&commune);
        }
        assert_no_small_counts(&district);
    }
}

/// Issue 21, second probe: the same table in `school_year` and `six_month`.
async fn two_live_windows_of_one_area_cannot_be_differenced(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    generate(&app, 300, 7).await;
    let token = officer(&app).await;
    let periods = [
        "school_year-2026",
        "six_month-2026",
        "half_year_1-2026",
        "year_end-2026",
        "semester_2-2026",
    ];
    let mut answers = Vec::new();
    for period in periods {
        answers.push((period, live(&app, &token, "SX-AL", period).await));
    }
    for (i, (p, a)) in answers.iter().enumerate() {
        for (q, b) in answers.iter().skip(i + 1) {
            let leaks = small_differences(a, b);
            assert!(leaks.is_empty(), "{p} / {q}: {leaks:?}");
        }
    }
}

fn insert_org(app: &TestApp, code: &str, kind: &str, parent: &str, level: &str) -> String {
    let mut conn = app.state.db.get().unwrap();
    let parent = organisations::find_by_code(&mut conn, parent)
        .unwrap()
        .unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::helpers::test_start().naive_utc();
    let (area_level, school_level) = if kind == "area" {
        (Some(level.to_owned()), None)
    } else {
        (None, Some(level.to_owned()))
    };
    organisations::insert(
        &mut conn,
        &NewOrganisation {
            id: id.clone(),
            code: code.to_owned(),
            kind: kind.to_owned(),
            name: format!("Test {code}"),
            parent_id: Some(parent.id),
            area_level,
            school_level,
            agency_type: None,
            created_at: now,
            updated_at: now,
        },
    )
    .unwrap();
    id
}

/// Issue 21, third probe: a commune with one school, merged into another
/// commune's row ("… and other"), gave that school's count by subtracting
/// the other commune's own report.
async fn a_lone_school_is_not_shown_through_an_and_other_row(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    generate(&app, 300, 11).await;
    // The lone school opens later: a few cases, below school_min_total.
    insert_org(&app, "SX-AL-LS", "area", "SX-AL", "commune");
    insert_org(&app, "SX-AL-LS-TH", "school", "SX-AL-LS", "primary");
    generate(&app, 40, 12).await;
    let token = officer(&app).await;
    let k = 10; // school_min_total
    for period in ["year_end-2026", "six_month-2026", "school_year-2026"] {
        let district = live(&app, &token, "SX-AL", period).await;
        let Some(table) = district["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == "cases_by_area")
        else {
            continue;
        };
        for (row, total) in table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .zip(table["row_totals"].as_array().unwrap())
        {
            let code = row["code"].as_str().unwrap();
            if !code.starts_with("SX-AL-") {
                continue;
            }
            let commune = live(&app, &token, code, period).await;
            let (Some(row_total), Some(own)) =
                (total.as_u64(), commune["tables"][0]["total"].as_u64())
            else {
                continue;
            };
            assert!(
                !(1..k).contains(&row_total.abs_diff(own)),
                "{period}: row {code} ({}) is {row_total}, the commune's own report {own}",
                row["en"]
            );
        }
    }
    // The district's report still has its other tables.
    let district = live(&app, &token, "SX-AL", "year_end-2026").await;
    assert!(district["tables"].as_array().unwrap().len() >= 6);
}

/// Whether two reports cover some schools and some days in common: one
/// area is the other or above it (codes here nest by prefix), and the
/// windows overlap.
fn overlapping_scope(a: &Value, b: &Value) -> bool {
    let (x, y) = (
        a["area"]["code"].as_str().unwrap(),
        b["area"]["code"].as_str().unwrap(),
    );
    let nested =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}-"));
    let day = |r: &Value, key: &str| r["period"][key].as_str().unwrap().to_owned();
    (nested(x, y) || nested(y, x))
        && day(a, "first_day") <= day(b, "last_day")
        && day(b, "first_day") <= day(a, "last_day")
}

/// A small deterministic generator for the property test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The property of issue 21: over random organisation trees, random case
/// sets and random windows, with some reports drafted and released, no two
/// obtainable answers of different scope have matching published cells a
/// count from 1 to k−1 apart.
async fn no_pair_of_obtainable_answers_differs_by_a_small_count(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let token = officer(&app).await;
    let seed: u64 = std::env::var("CG_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let mut rng = Rng(seed);
    let levels = [
        "kindergarten",
        "primary",
        "lower_secondary",
        "upper_secondary",
    ];
    let mut areas: Vec<String> = vec![
        "SX".into(),
        "SX-AL".into(),
        "SX-AL-AB".into(),
        "SX-AL-PM".into(),
    ];
    let mut checked = 0;
    let mut drafts: Vec<(String, Value)> = Vec::new();
    for round in 0..2 {
        // A random piece of tree: communes (under the district or under a
        // commune) with one to three schools each.
        for c in 0..1 + rng.below(3) {
            let parent = areas[1 + usize::try_from(rng.below(3)).unwrap()].clone();
            let code = format!("{parent}-R{round}{c}");
            insert_org(&app, &code, "area", &parent, "commune");
            for s in 0..1 + rng.below(3) {
                let level = levels[usize::try_from(rng.below(4)).unwrap()];
                insert_org(&app, &format!("{code}-S{s}"), "school", &code, level);
            }
            areas.push(code);
        }
        generate(
            &app,
            60 + usize::try_from(rng.below(120)).unwrap(),
            seed + round,
        )
        .await;
        // Some reports drafted, some released.
        for _ in 0..2 {
            let area = &areas[usize::try_from(rng.below(areas.len() as u64)).unwrap()];
            let period = ["year_end-2026", "six_month-2026", "semester_2-2026"]
                [usize::try_from(rng.below(3)).unwrap()];
            let (status, draft) = app
                .call_with_token(
                    &token,
                    "POST",
                    "/api/v1/stats/reports",
                    Some(json!({"area": area, "period": period})),
                )
                .await;
            if status != StatusCode::CREATED {
                continue;
            }
            drafts.push((format!("{area} {period} draft"), draft.clone()));
            if rng.below(2) == 0 {
                let path = format!(
                    "/api/v1/stats/reports/{}/release",
                    draft["id"].as_str().unwrap()
                );
                let (status, body) = app.call_with_token(&token, "POST", &path, None).await;
                assert!(
                    status == StatusCode::OK || status == StatusCode::CONFLICT,
                    "{body}"
                );
            }
        }
        // Every answer obtainable now: live views of every period, random
        // ad-hoc windows, every stored report.
        let (_, periods) = app
            .call_with_token(&token, "GET", "/api/v1/stats/periods", None)
            .await;
        let periods: Vec<String> = periods
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        let start = chrono::NaiveDate::from_ymd_opt(2024, 11, 1).unwrap();
        let windows: Vec<(String, String)> = (0..4)
            .map(|_| {
                let a = start + chrono::Duration::days(i64::try_from(rng.below(700)).unwrap());
                let b = a + chrono::Duration::days(i64::try_from(rng.below(300)).unwrap());
                let b = b.min(chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
                (a.to_string(), b.to_string())
            })
            .collect();
        let mut answers: Vec<(String, Value)> = drafts.clone();
        for area in &areas {
            for period in &periods {
                let (status, body) = app
                    .call_with_token(
                        &token,
                        "GET",
                        &format!("/api/v1/stats/report?area={area}&period={period}"),
                        None,
                    )
                    .await;
                if status == StatusCode::OK {
                    answers.push((format!("{area} {period}"), body));
                }
            }
            for (from, to) in &windows {
                let (status, body) = ad_hoc(&app, &token, area, from, to).await;
                if status == StatusCode::OK {
                    answers.push((format!("{area} ad_hoc-{from}-{to}"), body));
                }
            }
            let (_, stored) = app
                .call_with_token(
                    &token,
                    "GET",
                    &format!("/api/v1/stats/reports?area={area}"),
                    None,
                )
                .await;
            for report in stored.as_array().into_iter().flatten() {
                let path = format!("/api/v1/stats/reports/{}", report["id"].as_str().unwrap());
                let (_, body) = app.call_with_token(&token, "GET", &path, None).await;
                answers.push((format!("{area} {}", report["period"]), body));
            }
        }
        let scopes: BTreeSet<&str> = answers.iter().map(|(s, _)| s.as_str()).collect();
        assert!(scopes.len() > 20, "{scopes:?}");
        let mut leaks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, (p, a)) in answers.iter().enumerate() {
            assert_no_small_counts(a);
            for (q, b) in answers.iter().skip(i + 1) {
                // The same area and window: one answer (a released report
                // read twice, or a draft and its live view).
                if a["area"]["id"] == b["area"]["id"] && a["period"]["id"] == b["period"]["id"] {
                    continue;
                }
                // Only answers of overlapping scope count something in
                // common: subtracting disjoint ones gives no one's count.
                if !overlapping_scope(a, b) {
                    continue;
                }
                checked += 1;
                let found = small_differences(a, b);
                if !found.is_empty() {
                    leaks.insert(format!("{p} / {q}"), found);
                }
            }
        }
        assert!(leaks.is_empty(), "seed {seed}, round {round}: {leaks:#?}");
    }
    assert!(checked > 500, "{checked} pairs");
}

/// Issue 17: an ad-hoc window that holds one case more than a released
/// report shows no count below k and no cell a small count away from the
/// released one; a window around that case alone publishes nothing small.
async fn an_ad_hoc_window_around_one_case_shows_no_small_count(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    generate(&app, 300, 5).await;
    let token = officer(&app).await;
    let (status, draft) = app
        .call_with_token(
            &token,
            "POST",
            "/api/v1/stats/reports",
            Some(json!({"area": "SX-AL", "period": "year_end-2026"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let path = format!(
        "/api/v1/stats/reports/{}/release",
        draft["id"].as_str().unwrap()
    );
    let (status, released) = app.call_with_token(&token, "POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    // One more case, today (2 November 2026), after the released window.
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let focal = app.token(&focal).await;
    // It counts in the tables by context, sub-type and disability too.
    let mut case = marked_case("one", 3);
    case["pupil"]["disability"] = json!(true);
    case["incident"]["contexts"] = json!(["sexual_harassment", "online_abuse", "trafficking"]);
    case["incident"]["csa_subtype"] = json!("dam_o");
    let (status, body) = app.post_case(&focal, "one-case", &case).await;
    assert_eq!(status, 201, "{body}");

    // The released window and the two days after it.
    let (status, wider) = ad_hoc(&app, &token, "SX-AL", "2025-11-01", "2026-11-02").await;
    assert_eq!(status, StatusCode::OK, "{wider}");
    assert_eq!(wider["released"], false);
    assert_eq!(wider["period"]["first_day"], "2025-11-01");
    assert_no_small_counts(&wider);
    let leaks = small_differences(&wider, &released);
    assert!(leaks.is_empty(), "{leaks:?}");
    assert_ne!(
        published(&wider),
        published(&released),
        "the window must publish something"
    );
    // The day of that case alone: nothing but hidden cells and zeros.
    let (status, day) = ad_hoc(&app, &token, "SX-AL", "2026-11-02", "2026-11-02").await;
    assert_eq!(status, StatusCode::OK, "{day}");
    for (key, n) in published(&day) {
        assert!(n == 0 || n >= 5, "{key:?}: {n}");
    }
    let cases = day["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "cases_by_age")
        .unwrap();
    assert!(
        cases["total"].is_string(),
        "the day's total is hidden: {cases}"
    );
    for code in crate::stats_contexts::new_tables() {
        let table = day["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {day}"));
        assert!(
            table["total"].is_string(),
            "the day's {code} is hidden: {table}"
        );
        for cell in table["cells"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
        {
            assert!(
                cell.is_string() || cell == 0,
                "{code} publishes {cell} for the day"
            );
        }
    }
    // The wider window publishes nothing a small count away from the
    // released report in the new tables either (`small_differences` above
    // compares every table); the released report has them as well.
    assert!(
        released["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "incidents_by_context"),
        "{released}"
    );
    // Bad windows: a clear error, nothing computed.
    for (from, to, code) in [
        ("2026-11-03", "2026-11-01", "invalid_window"),
        ("2026-11-01", "2026-12-01", "invalid_window"),
        ("2020-01-01", "2026-11-01", "invalid_window"),
        ("1 Nov", "2026-11-01", "invalid_window"),
    ] {
        let (status, body) = ad_hoc(&app, &token, "SX-AL", from, to).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{from} {to}: {body}"
        );
        assert_eq!(body["error"]["code"], code);
    }
    // Only those who may release the area's reports ask for ad-hoc windows.
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    let (status, _) = ad_hoc(&app, &monitor, "SX-AL", "2026-01-01", "2026-02-01").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn page(app: &TestApp, user: &crate::helpers::TestUser, lang: &str, query: &str) -> String {
    caseguard::db::users::set_language(
        &mut app.db.connect(),
        &user.id,
        lang,
        caseguard::clock::Clock::now(&app.clock).naive_utc(),
    )
    .unwrap();
    let (cookie, _) = app.browser_session(user).await;
    let response = app
        .client
        .get(app.url(&format!("/stats?{query}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The statistics page: a district officer asks for an ad-hoc window in
/// either language and gets its tables and files; a monitor is not offered
/// the form; a bad window says so and shows the period instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_page_answers_an_ad_hoc_window_in_both_languages() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    generate(&app, 200, 3).await;
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let vi = page(&app, &officer, "vi", "from=2026-01-05&to=2026-03-20").await;
    assert!(
        vi.contains("Báo cáo đột xuất theo khoảng thời gian chọn"),
        "{vi}"
    );
    assert!(
        vi.contains("Báo cáo đột xuất từ 05/01/2026 đến 20/03/2026"),
        "{vi}"
    );
    assert!(vi.contains("table-cases_by_age"), "{vi}");
    let href = "/api/v1/stats/ad-hoc/export?area=SX-AL&#38;from=2026-01-05&#38;to=2026-03-20&#38;format=csv&#38;lang=vi";
    assert!(vi.contains(href), "{vi}");
    let en = page(&app, &officer, "en", "from=2026-01-05&to=2026-03-20").await;
    assert!(en.contains("Ad-hoc report over chosen dates"), "{en}");
    assert!(
        en.contains("Ad-hoc report, 2026-01-05 to 2026-03-20"),
        "{en}"
    );
    let bad = page(&app, &officer, "en", "from=2026-03-20&to=2026-01-05").await;
    assert!(bad.contains("id=\"ad-hoc-invalid\""), "{bad}");
    assert!(!bad.contains("Ad-hoc report, "), "{bad}");
    let vi_bad = page(&app, &officer, "vi", "from=x&to=2026-01-05").await;
    assert!(vi_bad.contains("Hai ngày phải theo thứ tự"), "{vi_bad}");
    let plain = page(&app, &monitor, "en", "from=2026-01-05&to=2026-03-20").await;
    assert!(!plain.contains("id=\"ad-hoc\""), "{plain}");
    assert!(!plain.contains("Ad-hoc report, "), "{plain}");
}
