//! Reporting from the web in a real browser (issue 17): a unit enters its
//! indicators (refused field by field first, in both languages); the
//! district officer reviews and releases the six-month report and
//! downloads its XLSX (read back here); the monitor sees who is late.
//! Screenshots and axe checks as the other browser tests.

use caseguard::domain::user::Role;
use fantoccini::{Client, Locator};

use crate::browser::{
    browser, chromedriver, click, fill, shot, sign_in, sign_out, spawn_app, submit, text,
};

/// Over at the test clock (2 November 2026); due 10 May 2026.
const SIX_MONTH: &str = "six_month-2026";
/// Open for entry; due 10 November 2026.
const YEAR_END: &str = "year_end-2026";

/// The browser's cookies as a `Cookie` header, to fetch a download.
async fn cookie_header(client: &Client) -> String {
    client
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an input holds now (what was typed is kept after a refusal).
async fn value_of(client: &Client, id: &str) -> Option<String> {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_enters_its_indicators_and_the_office_releases_and_follows_up() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    crate::stats::generate(&app, 120, 17).await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let client = browser(&driver, true).await;

    // The unit's focal point, in Vietnamese first: bad input is refused at
    // its fields and nothing is stored.
    sign_in(&app, &client, &focal).await;
    client
        .goto(&app.url(&format!("/indicators/entry?period={YEAR_END}")))
        .await
        .unwrap();
    shot(&client, "indicators-entry-vi").await;
    click(&client, "#v-staff_trained_on_abuse-yes").await;
    click(&client, "#v-website_gender_column-no").await;
    fill(&client, "v-women_in_management", "120").await;
    fill(
        &client,
        "e-website_gender_column",
        "https://thcs.example.edu.vn/bdg",
    )
    .await;
    submit(&client, "#indicator-entry button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("tỷ lệ phải từ 0 đến 100"), "{page}");
    assert!(page.contains("cần ghi minh chứng"), "{page}");
    let invalid = client
        .find(Locator::Id("v-women_in_management"))
        .await
        .unwrap()
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    // What was typed is kept.
    assert_eq!(
        value_of(&client, "e-website_gender_column")
            .await
            .as_deref(),
        Some("https://thcs.example.edu.vn/bdg")
    );
    shot(&client, "indicators-entry-errors-vi").await;

    // In English the same refusals read in English.
    submit(&client, "form[action='/lang'] button").await;
    client
        .goto(&app.url(&format!("/indicators/entry?period={YEAR_END}")))
        .await
        .unwrap();
    fill(&client, "v-women_in_management", "abc").await;
    submit(&client, "#indicator-entry button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains(": give an answer."), "{page}");
    assert!(
        page.contains("enter a number with at most one decimal"),
        "{page}"
    );
    shot(&client, "indicators-entry-errors-en").await;

    // Now right: stored, shown back.
    click(&client, "#v-staff_trained_on_abuse-yes").await;
    click(&client, "#v-website_gender_column-yes").await;
    fill(&client, "v-women_in_management", "42.5").await;
    fill(
        &client,
        "e-staff_trained_on_abuse",
        "Training minutes 12/BB, 15 March",
    )
    .await;
    fill(
        &client,
        "e-website_gender_column",
        "https://thcs.example.edu.vn/bdg",
    )
    .await;
    submit(&client, "#indicator-entry button[type=submit]").await;
    client.find(Locator::Id("saved")).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains("42.5 %"), "{page}");
    assert!(client.find(Locator::Id("indicator-entry")).await.is_err());
    shot(&client, "indicators-entered-en").await;

    // The staff figures by sex, from the link beside the unit indicators:
    // refused input by input (in English, then in Vietnamese), then stored.
    click(&client, "#staff-figures-link").await;
    let staff_figures = |leadership_women: &'static str, masters_men: &'static str| {
        let client = client.clone();
        async move {
            for (id, value) in [
                ("w-leadership_planning", "10"),
                ("m-leadership_planning", "5"),
                ("w-planning_trained", leadership_women),
                ("m-planning_trained", "2"),
                ("w-key_leadership", "3"),
                ("m-key_leadership", "2"),
                ("w-masters", "4"),
                ("m-masters", masters_men),
            ] {
                fill(&client, id, value).await;
            }
            submit(&client, "#staff-figures button[type=submit]").await;
        }
    };
    staff_figures("12", "abc").await;
    let page = text(&client).await;
    assert!(
        page.contains("women (12) cannot be more than the women of \"Staff in leadership succession planning\" (10)"),
        "{page}"
    );
    assert!(
        page.contains("women and men must each be whole numbers from 0 to 10,000"),
        "{page}"
    );
    assert!(
        page.contains("give the number of women and of men"),
        "{page}"
    );
    let field = |id: &'static str, attr: &'static str| {
        let client = client.clone();
        async move {
            client
                .find(Locator::Id(id))
                .await
                .unwrap()
                .attr(attr)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        field("w-planning_trained", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(field("m-planning_trained", "aria-invalid").await, None);
    assert!(
        field("m-masters", "aria-describedby")
            .await
            .unwrap()
            .contains("m-masters-error")
    );
    client.find(Locator::Id("m-masters-error")).await.unwrap();
    assert_eq!(value_of(&client, "m-masters").await.as_deref(), Some("abc"));
    shot(&client, "staff-figures-errors-en").await;
    // Back to Vietnamese for the next people on this browser; the same
    // refusals read in Vietnamese.
    submit(&client, "form[action='/lang'] button").await;
    client
        .goto(&app.url(&format!("/indicators/staff?period={YEAR_END}")))
        .await
        .unwrap();
    staff_figures("12", "abc").await;
    let page = text(&client).await;
    assert!(page.contains("không thể nhiều hơn số nữ của"), "{page}");
    assert!(page.contains("phải là số nguyên từ 0 đến 10.000"), "{page}");
    assert!(page.contains("cần nhập số nữ và số nam"), "{page}");
    shot(&client, "staff-figures-errors-vi").await;
    staff_figures("6", "1").await;
    for (id, value) in [("w-st_task_leads", "1"), ("m-st_task_leads", "0")] {
        fill(&client, id, value).await;
    }
    submit(&client, "#staff-figures button[type=submit]").await;
    client.find(Locator::Id("saved")).await.unwrap();
    let rows = client
        .find_all(Locator::Css("#figures tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert!(client.find(Locator::Id("staff-figures")).await.is_err());
    shot(&client, "staff-figures-entered-vi").await;
    sign_out(&client).await;

    // The district officer: prepare the six-month report, review it,
    // confirm, release; the page then offers the released report's files.
    sign_in(&app, &client, &officer).await;
    client
        .goto(&app.url(&format!("/stats?period={SIX_MONTH}")))
        .await
        .unwrap();
    submit(&client, "#prepare-release button").await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/stats/drafts/")
    );
    shot(&client, "release-review-vi").await;
    // Without the confirmation nothing is released.
    submit(&client, "#release").await;
    client.find(Locator::Id("confirm-error")).await.unwrap();
    shot(&client, "release-confirm-needed-vi").await;
    click(&client, "#confirm").await;
    submit(&client, "#release").await;
    let page = text(&client).await;
    assert!(page.contains("Đã công bố"), "{page}");
    // The staff indicators are read where the report is.
    assert!(page.contains("Chỉ tiêu về cán bộ nữ"), "{page}");
    client.find(Locator::Id("staff-indicators")).await.unwrap();
    assert!(client.find(Locator::Id("prepare-release")).await.is_err());
    shot(&client, "release-done-vi").await;
    let href = client
        .find(Locator::XPath(
            "//p[@id='stats-downloads']/a[text()='XLSX']",
        ))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.starts_with("/api/v1/stats/reports/"), "{href}");
    let download = app
        .client
        .get(app.url(&href))
        .header("cookie", cookie_header(&client).await)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), reqwest::StatusCode::OK);
    let bytes = download.bytes().await.unwrap();
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("Báo cáo").unwrap();
    let cells: Vec<String> = sheet
        .rows()
        .flat_map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>())
        .collect();
    assert!(
        cells
            .iter()
            .any(|c| c.contains("Báo cáo 6 tháng đầu năm 2026")),
        "{cells:?}"
    );
    assert!(
        cells
            .iter()
            .any(|c| c.contains("30/04/2026") || c.contains("2026-04-30")),
        "{cells:?}"
    );
    // A period that is not over: the draft can be reviewed, the release is
    // refused with the reason, and nothing is released.
    client
        .goto(&app.url("/stats?period=year_end-2027"))
        .await
        .unwrap();
    submit(&client, "#prepare-release button").await;
    click(&client, "#confirm").await;
    submit(&client, "#release").await;
    let page = text(&client).await;
    assert!(page.contains("Kỳ báo cáo chưa kết thúc"), "{page}");
    client.find(Locator::Id("problem")).await.unwrap();
    client
        .goto(&app.url("/stats?period=year_end-2027"))
        .await
        .unwrap();
    client.find(Locator::Id("prepare-release")).await.unwrap();
    sign_out(&client).await;

    // The monitor: who entered the six-month indicators, who is late.
    sign_in(&app, &client, &monitor).await;
    client
        .goto(&app.url(&format!("/indicators/status?period={SIX_MONTH}")))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(page.contains("Trễ hạn"), "{page}");
    let late_rows = client
        .find_all(Locator::Css("#unit-status tr.late"))
        .await
        .unwrap();
    assert!(late_rows.len() >= 6, "{}", late_rows.len());
    shot(&client, "indicators-status-vi").await;
    client
        .goto(&app.url(&format!("/indicators/status?period={YEAR_END}")))
        .await
        .unwrap();
    let submitted = client
        .find_all(Locator::Css("#unit-status tr.ok"))
        .await
        .unwrap();
    assert_eq!(submitted.len(), 1);
    client
        .goto(&app.url(&format!("/indicators?period={YEAR_END}")))
        .await
        .unwrap();
    shot(&client, "indicators-progress-vi").await;
    client.close().await.unwrap();
}

/// The monitor's indicator pages in English, on a 390 px phone: the
/// late-submission page and the progress page read in English and neither
/// scrolls sideways (measured in the browser). Screenshots and axe checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indicator_status_and_progress_pages_read_in_english_on_a_phone() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    caseguard::db::users::set_language(
        &mut app.db.connect(),
        &monitor.id,
        "en",
        caseguard::clock::Clock::now(&app.clock).naive_utc(),
    )
    .unwrap();
    let client = crate::phone::phone(&driver, true).await;
    sign_in(&app, &client, &monitor).await;
    client
        .goto(&app.url(&format!("/indicators/status?period={SIX_MONTH}")))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(page.contains("Indicator submissions"), "{page}");
    // The period's data window, as on every report.
    let window = client
        .find(Locator::Id("indicator-window"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(window.starts_with("Data covers: "), "{window}");
    assert!(
        window.contains("2025") && window.contains("2026"),
        "{window}"
    );
    assert!(page.contains("Late"), "{page}");
    assert!(!page.contains("Trễ hạn"), "{page}");
    let late_rows = client
        .find_all(Locator::Css("#unit-status tr.late"))
        .await
        .unwrap();
    assert!(late_rows.len() >= 6, "{}", late_rows.len());
    crate::phone::look(&client, "indicators-status-en").await;
    client
        .goto(&app.url(&format!("/indicators?period={YEAR_END}")))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("Unit indicators against their targets"),
        "{page}"
    );
    assert!(page.contains("Target"), "{page}");
    client.find(Locator::Id("indicator-window")).await.unwrap();
    assert!(page.contains("Cannot be assessed yet"), "{page}");
    crate::phone::look(&client, "indicators-progress-en").await;
    client.close().await.unwrap();
}
