//! The web interface in a real browser: headless Chromium from Debian,
//! driven over WebDriver (chromedriver) with fantoccini. Screenshots of
//! every page go to `target/screenshots/*.png` for a reviewer.
//!
//! Skipped when chromedriver is not installed, unless
//! `CG_TEST_REQUIRE_BROWSER=1` (as `.ci/run` sets, after installing it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use caseguard::domain::user::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestUser, free_port};

pub(crate) struct Driver {
    process: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub(crate) fn chromedriver() -> Option<Driver> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        if std::env::var("CG_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("CG_TEST_REQUIRE_BROWSER=1 but chromedriver is not installed");
        }
        eprintln!("skipping the browser test: chromedriver is not installed");
        return None;
    }
    let port = free_port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Driver { process, port })
}

pub(crate) async fn browser(driver: &Driver, javascript: bool) -> Client {
    // fantoccini's connector needs a TLS provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        // A phone's screen.
        "--window-size=412,915",
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({"args": args}));
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return client,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("chromedriver did not answer");
}

/// The server on a port known before it starts, so its public URL (which
/// the forms' origin check compares with) is the address the browser uses.
pub(crate) async fn spawn_app() -> TestApp {
    let port = free_port();
    TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[
            ("listen", json!(format!("127.0.0.1:{port}"))),
            ("public_url", json!(format!("http://127.0.0.1:{port}/"))),
            ("outbox_poll_seconds", json!(0)),
        ],
    )
    .await
    .unwrap()
    .with_demo_orgs()
    .await
}

/// Where `npm ci --prefix tests/browser` puts axe-core (scripts/test does
/// it when npm is there).
pub(crate) fn axe_source() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(error) => {
            if std::env::var("CG_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!(
                    "CG_TEST_REQUIRE_BROWSER=1 but {} is missing ({error}): run `npm ci --prefix tests/browser`",
                    path.display()
                );
            }
            eprintln!("no accessibility check: {} is missing", path.display());
            None
        }
    }
}

/// Takes a screenshot of the page for a reviewer, then (where the browser
/// runs scripts) checks it: every resource it loaded came from its own
/// origin, and axe-core finds no serious or critical accessibility
/// violation (WCAG 2.0–2.2 A and AA rules, contrast included). The full
/// axe result goes next to the screenshot.
pub(crate) async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    // app.js marks the page when it runs; WebDriver itself can run scripts
    // even where the page's own are off, so ask the page.
    let scripted = client
        .execute(
            "return document.documentElement.getAttribute('data-js') === '1'",
            vec![],
        )
        .await
        .unwrap();
    if scripted != json!(true) {
        return;
    }

    let origins = client
        .execute(
            "const here = location.origin;
             return performance.getEntriesByType('resource')
               .map(e => e.name)
               .filter(u => new URL(u).origin !== here);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(origins, json!([]), "{name}: requests to another origin");

    let Some(axe) = axe_source() else { return };
    client.execute(&axe, vec![]).await.unwrap();
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
               .then(r => done(r.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))
               .catch(e => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    std::fs::write(
        dir.join(format!("{name}.axe.json")),
        serde_json::to_string_pretty(&result).unwrap(),
    )
    .unwrap();
    let violations = result
        .as_array()
        .unwrap_or_else(|| panic!("{name}: axe failed: {result}"));
    let grave: Vec<_> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        grave.is_empty(),
        "{name}: accessibility violations {grave:#?}"
    );
}

pub(crate) async fn fill(client: &Client, id: &str, text: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub(crate) async fn choose(client: &Client, id: &str, value: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks something that loads a new page, and waits for it.
pub(crate) async fn submit(client: &Client, css: &str) {
    let old = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} did not load a page");
}

pub(crate) async fn text(client: &Client) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn sign_in(app: &TestApp, client: &Client, user: &TestUser) {
    client.goto(&app.url("/login")).await.unwrap();
    fill(client, "email", &user.email).await;
    fill(client, "password", &user.password).await;
    app.clock.advance(chrono::Duration::seconds(30));
    fill(client, "totp", &app.totp(user)).await;
    submit(client, "form[action='/login'] button[type=submit]").await;
}

pub(crate) fn earlier_case(i: u32) -> serde_json::Value {
    json!({
        "risk_level": "low",
        "pupil": {
            "name": format!("Earlier Canary {i}"),
            "date_of_birth": "2013-03-03",
            "sex": "male",
            "class": "6B",
            "disability": false,
            "guardian": "Earlier guardian",
            "contact": "0912 000 000"
        },
        "incident": {
            "type": "psychological_abuse",
            "contexts": ["bullying"],
            "date": "2026-10-20",
            "location_type": "school_premises",
            "perpetrator_relation": "peer_pupil",
            "narrative": "Earlier narrative"
        }
    })
}

/// The published number of cases of the area in the statistics page's
/// period (the grand total of the cases-by-age table).
pub(crate) async fn cases_total(client: &Client) -> u64 {
    let total = client
        .find(Locator::Css("#table-cases_by_age .grand-total"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    total
        .replace(['.', ','], "")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the cases total is {total:?}"))
}

/// Sends the one-time link of the partner-link box `details` (open) to an
/// address, as the case page does: the link's path (from the e-mail in
/// the outbox) and the code the page shows once.
pub(crate) async fn partner_link(
    app: &TestApp,
    client: &Client,
    details: &fantoccini::elements::Element,
) -> (String, String) {
    details
        .find(Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys("hoi.phu.nu@example.invalid")
        .await
        .unwrap();
    submit(client, "details.partner-link[open] button[type=submit]").await;
    let notice = client
        .find(Locator::Css(".notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code: String = notice
        .split_whitespace()
        .find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {notice:?}"))
        .to_owned();
    let state = app.state.clone();
    let link = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn)
            .unwrap()
            .into_iter()
            .find(|m| m.template == "partner_link")
            .expect("the partner's e-mail is in the outbox")
    })
    .await
    .unwrap();
    let params: serde_json::Value = serde_json::from_str(&link.params).unwrap();
    let partner_path = format!(
        "/partner/{}",
        params["link"].as_str().unwrap().rsplit('/').next().unwrap()
    );
    (partner_path, code)
}

pub(crate) async fn sign_out(client: &Client) {
    submit(client, "form[action='/logout'] button").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_goes_from_the_school_to_the_agency_and_back() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let officer = app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let district = app.user(Role::DistrictOfficer, "SX-AL").await;
    let client = browser(&driver, true).await;

    // Seven cases the school recorded earlier, so the area's count is at
    // least k and published. A live view rounds every count to a multiple
    // of 5 (docs/SECURITY.md, issue 21 item 1): the monitor sees 5 now, and
    // 10 once the case recorded below makes it 8.
    let token = app.token(&focal).await;
    for i in 0..7 {
        let response = app
            .client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&token)
            .json(&earlier_case(i))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    sign_in(&app, &client, &monitor).await;
    let before = cases_total(&client).await;
    assert_eq!(before, 5, "seven cases, rounded");
    sign_out(&client).await;

    // Sign-in page, Vietnamese first; a wrong password keeps the e-mail.
    client.goto(&app.url("/login")).await.unwrap();
    shot(&client, "01-login").await;
    assert!(text(&client).await.contains("Đăng nhập"));
    fill(&client, "email", &focal.email).await;
    fill(&client, "password", "not the password at all").await;
    submit(&client, "form[action='/login'] button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đăng nhập không thành công"), "{page}");
    let kept = client
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some(focal.email.as_str()));
    sign_in(&app, &client, &focal).await;
    assert!(
        text(&client).await.contains("Tổng quan của trường"),
        "{}",
        text(&client).await
    );
    shot(&client, "02-dashboard").await;

    // Intake: a rejected form shows its problems and keeps the values.
    client.goto(&app.url("/cases/new")).await.unwrap();
    shot(&client, "03-intake").await;
    fill(&client, "pupil.name", "Lò Thị Canary Browser").await;
    fill(
        &client,
        "incident.narrative",
        "Em kể lại sự việc xảy ra sau giờ học.",
    )
    .await;
    submit(&client, "#intake-submit").await;
    let page = text(&client).await;
    assert!(page.contains("Biểu mẫu có chỗ cần sửa"), "{page}");
    assert!(page.contains("Chọn loại sự việc"), "{page}");
    let kept = client
        .find(Locator::Id("pupil.name"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("Lò Thị Canary Browser"));
    shot(&client, "04-intake-errors").await;

    choose(&client, "incident.type", "physical_assault").await;
    client
        .execute("document.getElementById('incident.date').value = '2026-10-31'; document.getElementById('pupil.date_of_birth').value = '2014-05-05';", vec![])
        .await
        .unwrap();
    choose(&client, "incident.location_type", "school_premises").await;
    choose(&client, "incident.perpetrator_relation", "peer_pupil").await;
    choose(&client, "pupil.sex", "female").await;
    click(&client, "input[name=risk_level][value=high]").await;
    submit(&client, "#intake-submit").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu trường hợp"), "{page}");
    assert!(page.contains("Gợi ý chuyển gửi theo quy chế"), "{page}");
    assert!(page.contains("Bảo vệ trẻ em"), "{page}");
    shot(&client, "05-case-suggestions").await;
    let case_url = client.current_url().await.unwrap();

    // Send the statutory report to child protection.
    submit(
        &client,
        "#suggestion-social_protection form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    let page = text(&client).await;
    assert!(
        page.contains("Đã gửi. Cơ quan nhận được thông báo."),
        "{page}"
    );
    shot(&client, "06-referral-sent").await;
    // Consent to services and to sharing with the Women's Union, then a
    // service referral goes on that basis.
    click(&client, "#consent-form input[name=services]").await;
    click(
        &client,
        "#consent-form input[name=disclosure_to][value=womens_union]",
    )
    .await;
    choose(&client, "given_by", "pupil_and_guardian").await;
    choose(&client, "legal_basis", "consent").await;
    submit(&client, "#consent-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu sự đồng ý"), "{page}");
    submit(
        &client,
        "#suggestion-womens_union form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    let page = text(&client).await;
    assert!(
        page.contains("Đã gửi. Cơ quan nhận được thông báo."),
        "{page}"
    );
    assert!(page.contains("Có sự đồng ý"), "{page}");
    shot(&client, "06b-consent-and-referrals").await;

    // The rest of the workspace: a perpetrator, a note, an attachment.
    click(&client, "#perpetrators summary").await;
    choose(&client, "p-relation", "peer_pupil").await;
    choose(&client, "p-sex", "male").await;
    submit(&client, "#perpetrator-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(
        page.contains("Người gây hại") && page.contains("Hãy chọn quan hệ"),
        "{page}"
    );
    // The refused form is open, its problem beside it, its choices kept.
    assert!(
        client
            .find(Locator::Css("#perpetrators[data-refused]"))
            .await
            .is_ok()
    );
    for (id, value) in [
        ("p-relation", "peer_pupil"),
        ("p-sex", "male"),
        ("p-age", ""),
    ] {
        let kept = client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some(value), "{id}");
    }
    shot(&client, "06bb-perpetrator-refused").await;
    choose(&client, "p-age", "12_17").await;
    fill(&client, "p-identity", "Bạn cùng lớp PerpCanary").await;
    submit(&client, "#perpetrator-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu thông tin người gây hại"), "{page}");
    assert!(page.contains("PerpCanary"), "{page}");
    fill(&client, "case-note", "Đã gọi cho mẹ em lúc 16:00.").await;
    submit(&client, "#note-form button[type=submit]").await;
    assert!(text(&client).await.contains("Đã gọi cho mẹ em lúc 16:00."));
    let scratch = tempfile::tempdir().unwrap();
    let fake = scratch.path().join("trang.html");
    std::fs::write(&fake, "<script>alert(1)</script>").unwrap();
    let photo = scratch.path().join("vết-bầm.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 64]);
    std::fs::write(&photo, png).unwrap();
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(fake.to_str().unwrap())
        .await
        .unwrap();
    submit(&client, "#attachment-form button[type=submit]").await;
    assert!(text(&client).await.contains("Tệp không nhận được"));
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    submit(&client, "#attachment-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(
        page.contains("Đã đính kèm tệp") && page.contains("vết-bầm.png"),
        "{page}"
    );
    let link = client
        .find(Locator::Css("#attachments a[download]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    // With the session the file comes back as it went in, sandboxed.
    let fetched = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async r => done([r.status, r.headers.get('content-type'),
                 r.headers.get('content-security-policy'), (await r.arrayBuffer()).byteLength]));",
            vec![json!(link)],
        )
        .await
        .unwrap();
    assert_eq!(
        fetched,
        json!([200, "image/png", "sandbox; default-src 'none'", 72])
    );
    // Without it there is nothing to download.
    let download = app.client.get(app.url(&link)).send().await.unwrap();
    assert!(
        download.status().is_redirection() || download.url().path().starts_with("/login"),
        "{} {}",
        download.status(),
        download.url()
    );
    shot(&client, "06c-workspace-perpetrator-attachment").await;

    // The Women's Union officer has no account: a one-time link by e-mail,
    // its code shown once to read out by phone.
    let women = client
        .find(Locator::XPath(
            "//details[contains(@class, 'partner-link')][summary[contains(., 'Phụ nữ')]]",
        ))
        .await
        .unwrap();
    women
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (partner_path, code) = partner_link(&app, &client, &women).await;
    sign_out(&client).await;
    client.goto(&app.url(&partner_path)).await.unwrap();
    shot(&client, "06d-partner-code").await;
    fill(&client, "code", "00000000").await;
    submit(&client, "form[action^='/partner/'] button").await;
    assert!(text(&client).await.contains("không mở được"));
    fill(&client, "code", &code).await;
    submit(&client, "form[action^='/partner/'] button").await;
    let page = text(&client).await;
    assert!(
        page.contains("Lò Thị Canary Browser") && page.contains("Có sự đồng ý"),
        "{page}"
    );
    shot(&client, "06e-partner-referral").await;
    // Once only. (The partner's session cookie goes first: with it, the
    // link's page is outside the session's referral and would end it with
    // "not found", tests/it/casework_partner.rs.)
    client.delete_all_cookies().await.unwrap();
    client.goto(&app.url(&partner_path)).await.unwrap();
    fill(&client, "code", &code).await;
    submit(&client, "form[action^='/partner/'] button").await;
    assert!(text(&client).await.contains("không mở được"));

    // The agency officer: inbox, the referral through its profile, answers.
    sign_in(&app, &client, &officer).await;
    assert!(text(&client).await.contains("Hồ sơ chuyển đến"));
    shot(&client, "07-inbox").await;
    submit(&client, "#inbox a").await;
    let page = text(&client).await;
    assert!(page.contains("Lò Thị Canary Browser"), "{page}");
    shot(&client, "08-referral").await;
    click(&client, "input[name=to][value=accepted]").await;
    submit(&client, "#answer-form button[type=submit]").await;
    assert!(text(&client).await.contains("Đã lưu phản hồi"));
    click(&client, "input[name=to][value=completed]").await;
    fill(
        &client,
        "answer-text",
        "Đã gặp em và gia đình; phản hồi Feedback4Browser.",
    )
    .await;
    submit(&client, "#answer-form button[type=submit]").await;
    assert!(text(&client).await.contains("Hoàn thành"));
    shot(&client, "09-referral-completed").await;
    sign_out(&client).await;

    // The school sees the feedback in the chronology.
    sign_in(&app, &client, &focal).await;
    assert!(text(&client).await.contains("Phản hồi của các cơ quan"));
    client.goto(case_url.as_str()).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains("Feedback4Browser"), "{page}");
    shot(&client, "10-case-feedback").await;
    sign_out(&client).await;

    // A monitor sees the area's statistics, and reaches no case.
    sign_in(&app, &client, &monitor).await;
    let page = text(&client).await;
    assert!(
        page.contains("Thống kê của địa bàn") && !page.contains("Canary"),
        "{page}"
    );
    assert!(client.find(Locator::Css("table[id^=table-]")).await.is_ok());
    assert_eq!(cases_total(&client).await, 10, "eight cases, rounded");
    shot(&client, "11a-statistics").await;
    client.goto(case_url.as_str()).await.unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("Không tìm thấy") && !page.contains("Canary"),
        "{page}"
    );
    shot(&client, "11-monitor-no-case").await;

    // Recovery codes, shown once.
    client.goto(&app.url("/account")).await.unwrap();
    submit(&client, "form[action='/account/recovery-codes'] button").await;
    let codes = client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert!(codes.len() >= 8, "{}", codes.len());
    shot(&client, "11aa-recovery-codes").await;
    sign_out(&client).await;

    // Nobody acted on the missed deadlines for two days: the district
    // officer sees the escalation and opens the case with a reason.
    app.clock.advance(chrono::Duration::hours(48));
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::referrals::escalation::pass(&mut conn, &state.case_context(), 100).unwrap()
    })
    .await
    .unwrap();
    sign_in(&app, &client, &district).await;
    let page = text(&client).await;
    assert!(page.contains("Cảnh báo quá hạn"), "{page}");
    shot(&client, "11b-escalations").await;
    // The case recorded above (the earlier ones escalated too).
    let case_id = case_url.path().rsplit('/').next().unwrap().to_owned();
    submit(&client, &format!("#escalations a[href*='{case_id}']")).await;
    fill(&client, "reason", "ngắn").await;
    submit(&client, "form[action$='/break-glass'] button").await;
    assert!(text(&client).await.contains("20 đến 2000"));
    fill(
        &client,
        "reason",
        "Trường không phản hồi, cần kiểm tra an toàn của em ngay hôm nay.",
    )
    .await;
    submit(&client, "form[action$='/break-glass'] button").await;
    let page = text(&client).await;
    assert!(
        page.contains("Lò Thị Canary Browser") && page.contains("Đã mở hồ sơ"),
        "{page}"
    );
    shot(&client, "11c-break-glass").await;
    sign_out(&client).await;
    sign_in(&app, &client, &monitor).await;

    // English, chosen on the page, stays with the person.
    submit(&client, "form[action='/lang'] button").await;
    let page = text(&client).await;
    assert!(
        page.contains("Statistics of the area") && page.contains("Tiếng Việt"),
        "{page}"
    );
    sign_out(&client).await;

    // Quick exit leaves for a neutral page, replacing this one in the history.
    client.goto(&app.url("/login")).await.unwrap();
    click(&client, "#quick-exit").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = client.current_url().await.unwrap();
    assert!(!url.as_str().contains("127.0.0.1"), "{url}");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_without_javascript() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let client = browser(&driver, false).await;
    sign_in(&app, &client, &focal).await;
    // A draft, saved without scripts, sealed, and back on the next visit.
    client.goto(&app.url("/cases/new")).await.unwrap();
    fill(&client, "pupil.name", "Hà Văn DraftCanary").await;
    submit(&client, "#draft-save").await;
    assert!(text(&client).await.contains("Đã lưu nháp"));
    {
        let path = app.db.url.trim_start_matches("sqlite://").to_owned();
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
        }
        assert!(!String::from_utf8_lossy(&bytes).contains("DraftCanary"));
    }
    client.goto(&app.url("/cases/new")).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains("Đã khôi phục bản nháp"), "{page}");
    let kept = client
        .find(Locator::Id("pupil.name"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("Hà Văn DraftCanary"));
    choose(&client, "incident.type", "psychological_abuse").await;
    // Without scripts, dates are typed as the browser's date field takes them.
    fill(&client, "incident.date", "10312026").await;
    fill(&client, "pupil.date_of_birth", "05052013").await;
    choose(&client, "incident.location_type", "online").await;
    choose(&client, "incident.perpetrator_relation", "online_contact").await;
    fill(
        &client,
        "incident.narrative",
        "Em bị nhắn tin đe doạ trên mạng.",
    )
    .await;
    fill(&client, "pupil.name", "Hà Văn NoScript").await;
    choose(&client, "pupil.sex", "male").await;
    click(&client, "input[name=risk_level][value=medium]").await;
    submit(&client, "#intake-submit").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu trường hợp"), "{page}");
    shot(&client, "12-no-javascript-case").await;
    // Saving the case dropped the draft.
    client.goto(&app.url("/cases/new")).await.unwrap();
    assert!(!text(&client).await.contains("Đã khôi phục bản nháp"));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_is_activated_in_the_browser() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let admin = app.user(Role::Admin, "SX-AL").await;
    let auditor = app.user(Role::Auditor, "SX-AL").await;
    let client = browser(&driver, true).await;
    // The administrator makes the account on the accounts page.
    sign_in(&app, &client, &admin).await;
    client.goto(&app.url("/users")).await.unwrap();
    fill(&client, "name", "Cô Mới").await;
    fill(&client, "email", "moi.kichhoat@example.org").await;
    choose(&client, "role", "focal_point").await;
    choose(&client, "org", "SX-AL-AB-TH").await;
    submit(&client, "#new-user button[type=submit]").await;
    shot(&client, "15-users").await;
    // The page says the link was mailed; the link itself is only in the
    // person's e-mail (issue 21).
    let page = text(&client).await;
    assert!(!page.contains("/enrol/"), "{page}");
    let url = app
        .mailed_account_link("moi.kichhoat@example.org")
        .await
        .expect("the activation e-mail is in the outbox");
    let path = url[url.find("/enrol/").unwrap()..].to_owned();
    sign_out(&client).await;
    client.goto(&app.url(&path)).await.unwrap();
    assert!(
        client.find(Locator::Css(".qr svg")).await.is_ok(),
        "no QR code"
    );
    shot(&client, "13-enrol").await;
    // Inside a closed <details>: its text is hidden, its content is there.
    let uri = client
        .find(Locator::Css("details code"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let totp = totp_rs::TOTP::from_url_unchecked(&uri).unwrap();
    let password = "mùa xuân trên cao nguyên đá 2026";
    fill(&client, "password", password).await;
    fill(&client, "password_again", "something else entirely").await;
    submit(&client, "form[action^='/enrol/'] button[type=submit]").await;
    assert!(
        text(&client)
            .await
            .contains("Hai mật khẩu không giống nhau")
    );
    fill(&client, "password", password).await;
    fill(&client, "password_again", password).await;
    use caseguard::clock::Clock;
    let now = u64::try_from(app.clock.now().timestamp()).unwrap();
    fill(&client, "totp", &totp.generate(now)).await;
    submit(&client, "form[action^='/enrol/'] button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Tài khoản đã được kích hoạt"), "{page}");
    shot(&client, "14-enrolled").await;
    // The link worked once.
    client.goto(&app.url(&path)).await.unwrap();
    assert!(text(&client).await.contains("không còn hiệu lực"));
    // The auditor sees the chain intact and the account's creation.
    sign_in(&app, &client, &auditor).await;
    client.goto(&app.url("/audit")).await.unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("Chuỗi nhật ký nguyên vẹn") && page.contains("Tạo tài khoản"),
        "{page}"
    );
    // Actions read as words, never as codes (issue 20 item 5).
    assert!(!page.contains("user.created"), "{page}");
    shot(&client, "16-audit").await;
    // Searching: by action prefix, the entries shown all match it.
    fill(&client, "action", "user.").await;
    submit(&client, "#audit-search button[type=submit]").await;
    let actions = client
        .find_all(Locator::Css("#entries tbody tr td:nth-child(3)"))
        .await
        .unwrap();
    assert!(!actions.is_empty());
    for cell in actions {
        let action = cell.attr("data-code").await.unwrap().unwrap_or_default();
        assert!(action.starts_with("user."), "{action}");
        assert!(!cell.text().await.unwrap().contains("user."));
    }
    // A bad search names each bad field, keeps what was typed, lists nothing.
    client
        .goto(&app.url("/audit?action=user%27%20OR%201%3D1&target=not-an-id&outcome=denied"))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("Mã hành động chỉ gồm") && page.contains("Mã đối tượng phải là"),
        "{page}"
    );
    let kept = client
        .find(Locator::Id("target"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("not-an-id"));
    assert!(
        client
            .find_all(Locator::Css("#entries tbody tr"))
            .await
            .unwrap()
            .is_empty()
    );
    shot(&client, "16b-audit-search-errors").await;
    // The organisation tree and the policies in force (read-only).
    client.goto(&app.url("/organisations")).await.unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("SX-AL-AB-TH") && page.contains("Cây đơn vị"),
        "{page}"
    );
    shot(&client, "17-organisations").await;
    client.goto(&app.url("/policies")).await.unwrap();
    let files = client.find_all(Locator::Css(".policy-file")).await.unwrap();
    assert_eq!(files.len(), caseguard::domain::policy_files::FILES.len());
    let digests = client.find_all(Locator::Css(".digest")).await.unwrap();
    assert_eq!(digests[0].text().await.unwrap().len(), 64);
    shot(&client, "18-policies").await;
    sign_out(&client).await;
    // Somebody else reaches neither.
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    sign_in(&app, &client, &focal).await;
    for path in ["/organisations", "/policies", "/audit"] {
        client.goto(&app.url(path)).await.unwrap();
        let page = text(&client).await;
        assert!(page.contains("Không tìm thấy"), "{path}: {page}");
    }
    client.close().await.unwrap();
}
