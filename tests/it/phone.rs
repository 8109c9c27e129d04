//! The pages as a teacher on a phone meets them (issue 20), in a real
//! Chromium at 390×844, with and without JavaScript: quick exit that hides
//! the service, the case page in working order, one reference per case,
//! the agency's answer form, Vietnamese without English, the charts, the
//! forms. Screenshots go to `target/screenshots/phone-*.png`; every page
//! shown is checked by axe (where scripts run) and for sideways scrolling.

use std::time::Duration;

use caseguard::domain::user::Role;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::browser::{
    browser, choose, chromedriver, click, earlier_case, fill, shot, sign_in, spawn_app, submit,
    text,
};
use crate::helpers::TestApp;

/// The phone of the issue: 390 CSS pixels wide.
pub(crate) async fn phone(driver: &crate::browser::Driver, javascript: bool) -> Client {
    let client = browser(driver, javascript).await;
    client.set_window_size(390, 844).await.unwrap();
    client
}

/// The screenshot and axe check of `browser::shot`, and the page must not
/// scroll sideways (measured: the document is no wider than the window).
pub(crate) async fn look(client: &Client, name: &str) {
    shot(client, &format!("phone-{name}")).await;
    let widths = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "{name}: the page scrolls sideways ({scroll} px wide in a {inner} px window)"
    );
}

async fn press(client: &Client, keys: &[Key]) {
    let mut actions = KeyActions::new("keyboard".to_owned());
    for key in keys {
        actions = actions
            .then(KeyAction::Down {
                value: char::from(*key),
            })
            .then(KeyAction::Up {
                value: char::from(*key),
            });
    }
    client.perform_actions(actions).await.unwrap();
}

/// Waits until the browser has left the service (the neutral page may not
/// load in a test without internet; its address is what counts).
async fn left(app: &TestApp, client: &Client) -> String {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap().to_string();
        if !url.starts_with(&app.address) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser stayed on the service");
}

/// A case recorded by `focal` through the API; its id.
async fn case_of(app: &TestApp, token: &str, i: u32) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(token)
        .json(&earlier_case(i))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn quick_exit_hides_the_service(javascript: bool) {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;
    let case = case_of(&app, &token, 1).await;
    let client = phone(&driver, javascript).await;
    let mode = if javascript { "js" } else { "nojs" };

    sign_in(&app, &client, &focal).await;
    client.goto(&app.url("/cases")).await.unwrap();
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    assert!(text(&client).await.contains("Earlier Canary 1"));
    look(&client, &format!("01-case-before-exit-{mode}")).await;
    let session = client
        .get_named_cookie(caseguard::authn::sessions::COOKIE)
        .await
        .unwrap()
        .value()
        .to_owned();

    // The first Tab reaches quick exit.
    press(&client, &[Key::Tab]).await;
    let first = client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(first, json!("quick-exit"));
    if javascript {
        // Esc twice, from anywhere on the page.
        press(&client, &[Key::Escape, Key::Escape]).await;
    } else {
        press(&client, &[Key::Enter]).await;
    }
    let url = left(&app, &client).await;
    assert!(url.starts_with("https://www.google.com/"), "{url}");

    // The session ended on the server: its cookie opens nothing now.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(app.url(&format!("/cases/{case}")))
        .header(
            "cookie",
            format!("{}={session}", caseguard::authn::sessions::COOKIE),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    assert!(
        client
            .get_named_cookie(caseguard::authn::sessions::COOKIE)
            .await
            .is_err(),
        "the browser still holds the session cookie"
    );

    // Back, through the whole history: no page of the service shows.
    let length = client
        .execute("return history.length;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(length >= 3, "{length}");
    for step in 0..length {
        client.back().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let url = client.current_url().await.unwrap().to_string();
        assert!(!url.starts_with(&app.address), "back {step}: {url}");
        let source = client.source().await.unwrap();
        assert!(
            !source.contains("caseguard") && !source.contains("Canary"),
            "back {step}: {url} shows {source}"
        );
    }
    // Someone who wants to come back types the address of the sign-in page.
    client.goto(&app.url("/login")).await.unwrap();
    assert!(text(&client).await.contains("Đăng nhập"));
    look(&client, &format!("01-login-after-exit-{mode}")).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_hides_the_service_with_javascript() {
    quick_exit_hides_the_service(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_hides_the_service_without_javascript() {
    quick_exit_hides_the_service(false).await;
}

/// The case of the walk-through: high risk, physical assault, so
/// that the protocol suggests a statutory report and a service referral.
fn assault_case() -> serde_json::Value {
    let mut case = earlier_case(7);
    case["risk_level"] = json!("high");
    case["incident"]["type"] = json!("physical_assault");
    case["pupil"]["name"] = json!("Lò Thị PhoneCanary");
    case
}

/// The ids of the page's sections, in the order they come.
async fn section_order(client: &Client) -> Vec<String> {
    let ids = client
        .execute(
            "return Array.from(document.querySelectorAll('main section[id]')).map(s => s.id);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ids).unwrap()
}

async fn hash(client: &Client) -> String {
    client
        .execute("return location.hash;", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Items 2, 3 and 4 of issue 20 in one journey: the case page in the order a
/// focal point works (in-page menu, every form back at its section, no
/// "reason to send without consent" once consent covers the agency), one
/// reference on the school's page, the agency's and in the e-mail, and the
/// agency's answer form keeping what was chosen and typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_reads_in_order_with_one_reference_and_the_answer_form_keeps_its_input() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let officer = app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let token = app.token(&focal).await;
    let response = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&token)
        .json(&assault_case())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    let case = body["id"].as_str().unwrap().to_owned();
    let reference = caseguard::domain::case_ref::case_reference(&case);
    let client = phone(&driver, true).await;
    sign_in(&app, &client, &focal).await;

    // The list names the case by its reference, with its risk.
    client.goto(&app.url("/cases")).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains(&format!("Trường hợp {reference}")), "{page}");
    look(&client, "02-case-list").await;

    // The sections in working order, from what is due to the history.
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    let title = client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, format!("Trường hợp {reference}"));
    let order = section_order(&client).await;
    let wanted = [
        "deadlines",
        "consent",
        "suggestions",
        "sent-referrals",
        "feedback",
        "pupil",
        "incidents",
        "perpetrators",
        "attachments",
        "notes",
        "assignment",
        "history",
    ];
    let positions: Vec<usize> = wanted
        .iter()
        .map(|id| {
            order
                .iter()
                .position(|o| o == id)
                .unwrap_or_else(|| panic!("no section {id} in {order:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "sections out of order: {order:?}"
    );
    look(&client, "02-case-page-top").await;
    // The in-page menu reaches a section.
    click(&client, "#toc a[href='#feedback']").await;
    assert_eq!(hash(&client).await, "#feedback");
    let top = client
        .execute(
            "return document.getElementById('feedback').getBoundingClientRect().top;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((0.0..200.0).contains(&top), "the section is at {top}");

    // Before consent the service referral asks for a reason to send without it.
    assert!(
        client
            .find(Locator::Id("override-womens_union"))
            .await
            .is_ok()
    );
    // The statutory report: back at the suggestions.
    submit(
        &client,
        "#suggestion-social_protection form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    assert_eq!(hash(&client).await, "#suggestions");
    assert!(
        text(&client)
            .await
            .contains("Đã gửi. Cơ quan nhận được thông báo.")
    );
    // Consent: back at the consent, and the reason box is gone.
    click(&client, "#consent-form input[name=services]").await;
    click(
        &client,
        "#consent-form input[name=disclosure_to][value=womens_union]",
    )
    .await;
    choose(&client, "given_by", "pupil_and_guardian").await;
    choose(&client, "legal_basis", "consent").await;
    submit(&client, "#consent-form button[type=submit]").await;
    assert_eq!(hash(&client).await, "#consent");
    assert!(text(&client).await.contains("Đã lưu sự đồng ý"));
    assert!(
        client
            .find(Locator::Id("override-womens_union"))
            .await
            .is_err(),
        "the reason to send without consent is still asked for"
    );
    look(&client, "02-case-after-consent").await;
    // A refused note comes back at the notes, the refused form's section.
    submit(&client, "#note-form button[type=submit]").await;
    assert_eq!(hash(&client).await, "#notes");
    sign_out_phone(&client).await;

    // The e-mail to the agency carries the same reference.
    let state = app.state.clone();
    let mail = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn)
            .unwrap()
            .into_iter()
            .find(|m| m.template == "referral_received")
            .expect("the agency's e-mail is in the outbox")
    })
    .await
    .unwrap();
    let params: serde_json::Value = serde_json::from_str(&mail.params).unwrap();
    assert_eq!(params["reference"], reference.as_str());

    // The agency: the same reference, with the school and the risk.
    sign_in(&app, &client, &officer).await;
    client.goto(&app.url("/referrals")).await.unwrap();
    let inbox = text(&client).await;
    assert!(
        inbox.contains(&format!("Trường hợp {reference}")) && inbox.contains("Cao"),
        "{inbox}"
    );
    look(&client, "03-inbox").await;
    submit(&client, "#inbox a").await;
    let page = text(&client).await;
    assert!(page.contains(&format!("Trường hợp {reference}")), "{page}");
    assert!(page.contains("Hạn xác nhận"), "{page}");
    click(&client, "input[name=to][value=accepted]").await;
    submit(&client, "#answer-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu phản hồi"), "{page}");
    // Acknowledged: its acknowledgement deadline is no longer shown.
    assert!(!page.contains("Hạn xác nhận"), "{page}");
    // Completing without feedback: refused, saying the feedback is missing,
    // the choice and the text kept.
    click(&client, "input[name=to][value=completed]").await;
    fill(&client, "answer-text", "ngắn").await;
    submit(&client, "#answer-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Cần ghi phản hồi"), "{page}");
    assert!(!page.contains("Cần ghi lý do"), "{page}");
    let checked = client
        .find(Locator::Css("input[name=to][value=completed]"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(checked.as_deref(), Some("true"));
    let kept = client
        .find(Locator::Id("answer-text"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("ngắn"));
    look(&client, "04-answer-refused").await;
    fill(
        &client,
        "answer-text",
        "Đã gặp em và gia đình; PhoneFeedback ổn.",
    )
    .await;
    submit(&client, "#answer-form button[type=submit]").await;
    assert!(text(&client).await.contains("Hoàn thành"));
    // Completed: gone from the open list, there under "finished".
    client.goto(&app.url("/referrals")).await.unwrap();
    assert!(!text(&client).await.contains(&reference));
    submit(&client, "#inbox-finished").await;
    let page = text(&client).await;
    assert!(page.contains(&format!("Trường hợp {reference}")), "{page}");
    look(&client, "04-inbox-finished").await;
    sign_out_phone(&client).await;

    // The school reads the feedback in its own section.
    sign_in(&app, &client, &focal).await;
    client
        .goto(&app.url(&format!("/cases/{case}#feedback")))
        .await
        .unwrap();
    let feedback = client
        .find(Locator::Id("feedback"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(feedback.contains("PhoneFeedback"), "{feedback}");
    look(&client, "02-case-feedback").await;
    client.close().await.unwrap();
}

async fn sign_out_phone(client: &Client) {
    crate::browser::sign_out(client).await;
}

/// English that must never show on a Vietnamese page (issue 20): the
/// citations, MIME types, an administrator's English name, the JSON error
/// body, hour spans written as clock times.
const ENGLISH: &[&str] = &[
    "WHO/UNHCR",
    "Clinical management",
    "Keeping children safe",
    "image/png",
    "image/jpeg",
    "application/pdf",
    "Bootstrap administrator",
    "\"error\"",
    "not_found",
    "Not Found",
    "LĐ-TB-XH",
];

async fn no_english(client: &Client, name: &str) {
    let page = text(client).await;
    for word in ENGLISH {
        assert!(
            !page.contains(word),
            "{name}: {word:?} on a Vietnamese page:\n{page}"
        );
    }
    // "còn 1 giờ 17 phút", never "còn 1:17 giờ".
    let clock_span = regex_lite_hours(&page);
    assert!(clock_span.is_none(), "{name}: {clock_span:?}");
}

/// An hour span written as a clock time ("1:17 giờ"), if the page has one.
fn regex_lite_hours(page: &str) -> Option<String> {
    page.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| {
            w[1].starts_with("giờ")
                && w[0].contains(':')
                && w[0].chars().all(|c| c.is_ascii_digit() || c == ':')
        })
        .map(|w| w.join(" "))
}

/// Item 5 and 8 of issue 20: every page a focal point, an agency officer
/// and a monitor reach, in Vietnamese without English, and in both
/// languages without sideways scrolling at 390 px; an unknown address is an
/// HTML page for a browser; the favicon is served and cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vietnamese_pages_carry_no_english_and_no_page_scrolls_sideways() {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let officer = app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let token = app.token(&focal).await;
    // A sexual assault: its health suggestion cites WHO and UNHCR.
    let mut body = assault_case();
    body["incident"]["type"] = json!("sexual_assault");
    let response = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    let case = created["id"].as_str().unwrap().to_owned();

    // The favicon, cached and revalidated by its ETag.
    let icon = app
        .client
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/x-icon");
    assert!(
        icon.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let tag = icon.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/static/app.css"))
        .send()
        .await
        .unwrap();
    let css_tag = again.headers()["etag"].clone();
    let unchanged = app
        .client
        .get(app.url("/static/app.css"))
        .header("if-none-match", css_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_ne!(tag, again.headers()["etag"]);

    let client = phone(&driver, true).await;
    // An unknown address: the "not found" page, not a JSON body.
    client.goto(&app.url("/no/such/page")).await.unwrap();
    assert!(text(&client).await.contains("Không tìm thấy"));
    no_english(&client, "unknown address").await;
    look(&client, "05-not-found").await;

    sign_in(&app, &client, &focal).await;
    // An attachment, to show its kind.
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let photo = scratch.path().join("anh.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 64]);
    std::fs::write(&photo, png).unwrap();
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    submit(&client, "#attachment-form button[type=submit]").await;
    assert!(text(&client).await.contains("ảnh PNG"));
    submit(
        &client,
        "#suggestion-social_protection form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    let focal_pages = [
        "/".to_owned(),
        "/cases".to_owned(),
        "/cases/new".to_owned(),
        format!("/cases/{case}"),
        "/escalations".to_owned(),
        "/account".to_owned(),
    ];
    for path in &focal_pages {
        client.goto(&app.url(path)).await.unwrap();
        no_english(&client, path).await;
        look(&client, &format!("05-vi{}", path.replace('/', "_"))).await;
    }
    // The same pages in English: none scrolls sideways either.
    submit(&client, "form[action='/lang'] button").await;
    for path in &focal_pages {
        client.goto(&app.url(path)).await.unwrap();
        look(&client, &format!("05-en{}", path.replace('/', "_"))).await;
    }
    submit(&client, "form[action='/lang'] button").await;
    crate::browser::sign_out(&client).await;

    sign_in(&app, &client, &officer).await;
    for path in ["/referrals", "/referrals?show=finished"] {
        client.goto(&app.url(path)).await.unwrap();
        no_english(&client, path).await;
        look(
            &client,
            &format!("05-vi{}", path.replace(['/', '?', '='], "_")),
        )
        .await;
    }
    client.goto(&app.url("/referrals")).await.unwrap();
    submit(&client, "#inbox a").await;
    no_english(&client, "referral").await;
    look(&client, "05-vi-referral").await;
    crate::browser::sign_out(&client).await;

    sign_in(&app, &client, &monitor).await;
    client.goto(&app.url("/stats")).await.unwrap();
    no_english(&client, "/stats").await;
    look(&client, "05-vi-stats").await;
    client.close().await.unwrap();
}
