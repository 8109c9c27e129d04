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
    new_case(app, token, &earlier_case(i)).await
}

/// The case `body` recorded through the API; its id.
async fn new_case(app: &TestApp, token: &str, body: &serde_json::Value) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The text of the element `locator` finds.
async fn text_at(client: &Client, locator: Locator<'_>) -> String {
    client.find(locator).await.unwrap().text().await.unwrap()
}

/// Back, through the whole history: no page of the service shows, and
/// nothing of it (`canary` included) is in what the browser shows.
async fn back_shows_nothing(app: &TestApp, client: &Client, canary: &str) {
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
            !source.contains("caseguard") && !source.contains(canary),
            "back {step}: {url} shows {source}"
        );
    }
}

/// The first Tab reaches quick exit; then Esc Esc (with scripts) or Enter
/// on it (without); the browser leaves for the neutral page.
async fn quick_exit_by_keyboard(app: &TestApp, client: &Client, javascript: bool) {
    press(client, &[Key::Tab]).await;
    let first = client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(first, json!("quick-exit"));
    if javascript {
        press(client, &[Key::Escape, Key::Escape]).await;
    } else {
        press(client, &[Key::Enter]).await;
    }
    let url = left(app, client).await;
    assert!(url.starts_with("https://www.google.com/"), "{url}");
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

    // The first Tab reaches quick exit; Esc twice works from anywhere.
    quick_exit_by_keyboard(&app, &client, javascript).await;

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

    back_shows_nothing(&app, &client, "Canary").await;
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
    let case = new_case(&app, &token, &assault_case()).await;
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
    let title = text_at(&client, Locator::Css("h1")).await;
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
    let feedback = text_at(&client, Locator::Id("feedback")).await;
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

/// The words of the English catalogue that the Vietnamese one does not
/// have (four letters or more, case aside): none of them may show on a
/// Vietnamese page. "English" itself is the language switch's name for
/// the other language.
fn english_only_words() -> std::collections::HashSet<String> {
    let words = |text: &str| -> std::collections::HashSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(" = ").map(|(_, v)| v).or(Some(l)))
            .flat_map(|v| {
                v.split(|c: char| !c.is_alphabetic())
                    .filter(|w| w.len() >= 4 && w.is_ascii())
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
    let en = words(&std::fs::read_to_string(root.join("en.ftl")).unwrap());
    let vi = words(&std::fs::read_to_string(root.join("vi.ftl")).unwrap());
    en.difference(&vi)
        .filter(|w| *w != "english")
        .cloned()
        .collect()
}

async fn no_english(client: &Client, name: &str) {
    let page = text(client).await;
    // Identifiers shown as such (policy file names, digests) are code,
    // not words.
    let code = client
        .execute(
            "return Array.from(document.querySelectorAll('code, pre')).map(e => e.innerText);",
            vec![],
        )
        .await
        .unwrap();
    let mut words = page.clone();
    for shown in code.as_array().unwrap() {
        words = words.replace(shown.as_str().unwrap_or_default(), " ");
    }
    let english = english_only_words();
    // E-mail addresses are data (the test accounts' name their role).
    let found: Vec<&str> = words
        .split_whitespace()
        .filter(|token| !token.contains('@'))
        .flat_map(|token| token.split(|c: char| !c.is_alphabetic()))
        .filter(|w| english.contains(&w.to_lowercase()))
        .collect();
    assert!(
        found.is_empty(),
        "{name}: English words {found:?} on a Vietnamese page:\n{page}"
    );
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
    // What people type is Vietnamese too: only the interface is checked.
    body["pupil"]["guardian"] = json!("Mẹ của em");
    body["incident"]["narrative"] = json!("Em kể lại sự việc sau giờ học.");
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
    // A link for the partner, whose pages come last.
    open_details(&client, "details.partner-link", true).await;
    let details = client
        .find(Locator::Css("details.partner-link"))
        .await
        .unwrap();
    let (partner_path, code) = crate::browser::partner_link(&app, &client, &details).await;
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

    // The agency's pages in English: none scrolls sideways either.
    sign_in(&app, &client, &officer).await;
    submit(&client, "form[action='/lang'] button").await;
    for path in ["/referrals", "/referrals?show=finished"] {
        client.goto(&app.url(path)).await.unwrap();
        look(
            &client,
            &format!("05-en{}", path.replace(['/', '?', '='], "_")),
        )
        .await;
    }
    client.goto(&app.url("/referrals")).await.unwrap();
    submit(&client, "#inbox a").await;
    look(&client, "05-en-referral").await;
    submit(&client, "form[action='/lang'] button").await;
    crate::browser::sign_out(&client).await;

    // Every other role's pages, in Vietnamese then in English.
    let district = app.user(Role::DistrictOfficer, "SX-AL").await;
    let admin = app.user(Role::Admin, "SX-AL").await;
    let auditor = app.user(Role::Auditor, "SX-AL").await;
    let break_glass = format!("/cases/{case}/break-glass");
    let walks: [(&crate::helpers::TestUser, &str, Vec<&str>); 4] = [
        (&monitor, "monitor", vec!["/", "/stats", "/account"]),
        (&district, "district", vec!["/escalations", &break_glass]),
        (
            &admin,
            "admin",
            vec!["/users", "/organisations", "/policies"],
        ),
        (&auditor, "auditor", vec!["/audit", "/audit/break-glass"]),
    ];
    for (user, role, paths) in &walks {
        sign_in(&app, &client, user).await;
        for english in [false, true] {
            let lang = if english { "en" } else { "vi" };
            for path in paths {
                client.goto(&app.url(path)).await.unwrap();
                let page = text(&client).await;
                assert!(!page.contains("Không tìm thấy"), "{role} {path}: {page}");
                if !english {
                    no_english(&client, &format!("{role} {path}")).await;
                }
                look(
                    &client,
                    &format!("05-{lang}-{role}{}", path.replace(['/', '?', '='], "_")),
                )
                .await;
            }
            submit(&client, "form[action='/lang'] button").await;
        }
        crate::browser::sign_out(&client).await;
    }

    // The partner's pages, through the link and its code.
    client.goto(&app.url(&partner_path)).await.unwrap();
    no_english(&client, "partner link").await;
    look(&client, "05-vi-partner-code").await;
    fill(&client, "code", &code).await;
    submit(&client, "form[action^='/partner/'] button").await;
    assert!(text(&client).await.contains("PhoneCanary"));
    no_english(&client, "partner referral").await;
    look(&client, "05-vi-partner-referral").await;
    // The partner's language switch is a link that stays on this page.
    submit(&client, "a.lang").await;
    assert!(text(&client).await.contains("PhoneCanary"));
    look(&client, "05-en-partner-referral").await;
    client.close().await.unwrap();
}

/// Opens the `<details>` that `css` finds: a tap on its summary where
/// scripts run, else (a tap would do the same) by the driver.
async fn open_details(client: &Client, css: &str, javascript: bool) {
    if javascript {
        click(client, &format!("{css} > summary")).await;
    } else {
        client
            .execute(
                "document.querySelector(arguments[0]).open = true;",
                vec![json!(css)],
            )
            .await
            .unwrap();
    }
}

/// What the focused element is (its id, else its tag).
async fn focused(client: &Client) -> String {
    client
        .execute(
            "const e = document.activeElement; return e.id || e.tagName;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Field `id`'s `aria-invalid`, and the text of what its
/// `aria-describedby` names (every id must exist).
async fn tie_of(client: &Client, id: &str) -> (Option<String>, String) {
    let found = client
        .execute(
            "const f = document.getElementById(arguments[0]);
             const ids = (f.getAttribute('aria-describedby') || '').split(' ').filter(x => x);
             return [f.getAttribute('aria-invalid'),
                     ids.map(i => { const d = document.getElementById(i);
                                    return d ? d.textContent : 'MISSING ' + i; }).join(' | ')];",
            vec![json!(id)],
        )
        .await
        .unwrap();
    (
        found[0].as_str().map(str::to_owned),
        found[1].as_str().unwrap().to_owned(),
    )
}

async fn forms_say_what_is_required_and_what_went_wrong(javascript: bool) {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let officer = app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let token = app.token(&focal).await;
    let case = new_case(&app, &token, &assault_case()).await;
    let client = phone(&driver, javascript).await;
    let mode = if javascript { "js" } else { "nojs" };
    sign_in(&app, &client, &focal).await;

    for english in [false, true] {
        client.goto(&app.url("/cases/new")).await.unwrap();
        // Required fields: marked, and the mark explained once.
        let note = text_at(&client, Locator::Id("required-note")).await;
        let wanted = if english {
            "Fields marked * are required."
        } else {
            "Ô có dấu * là bắt buộc."
        };
        assert_eq!(note, wanted);
        for id in ["incident.type", "incident.date", "pupil.name", "pupil.sex"] {
            let field = client.find(Locator::Id(id)).await.unwrap();
            assert_eq!(
                field.attr("aria-required").await.unwrap().as_deref(),
                Some("true"),
                "{id}"
            );
            assert!(field.attr("required").await.unwrap().is_some(), "{id}");
            let label = client
                .find(Locator::Css(&format!("label[for='{id}'] .req")))
                .await
                .unwrap();
            assert_eq!(label.text().await.unwrap(), "*", "{id}");
        }
        // The contexts in their groups, none of them an incident type.
        let groups = client
            .find_all(Locator::Css("#contexts fieldset.context-group"))
            .await
            .unwrap();
        assert_eq!(groups.len(), 3);
        let types: Vec<String> = {
            let options = client
                .find_all(Locator::Css("select[name='incident.type'] option"))
                .await
                .unwrap();
            let mut labels = Vec::new();
            for o in options {
                labels.push(o.text().await.unwrap().to_lowercase());
            }
            labels
        };
        for group in groups {
            for label in group.find_all(Locator::Css("label")).await.unwrap() {
                let label = label.text().await.unwrap().to_lowercase();
                assert!(
                    !types.contains(&label),
                    "the context {label:?} is an incident type"
                );
            }
        }

        // A refused intake: the summary has the focus, each field its message.
        fill(&client, "pupil.name", "Lò Văn FormCanary").await;
        submit(&client, "#intake-submit").await;
        assert_eq!(focused(&client).await, "form-problems");
        let (invalid, message) = tie_of(&client, "incident.type").await;
        assert_eq!(invalid.as_deref(), Some("true"));
        let wanted = if english {
            "Choose the type of incident"
        } else {
            "Chọn loại sự việc"
        };
        assert!(message.contains(wanted), "{message}");
        let (invalid, message) = tie_of(&client, "risk_level").await;
        assert_eq!(invalid.as_deref(), Some("true"), "{message}");
        assert!(
            !message.is_empty() && !message.contains("MISSING"),
            "{message}"
        );
        // A field without a problem is not marked.
        let (invalid, described) = tie_of(&client, "pupil.name").await;
        assert_eq!((invalid, described.as_str()), (None, ""));
        let lang = if english { "en" } else { "vi" };
        look(&client, &format!("07-intake-refused-{lang}-{mode}")).await;
        if !english {
            submit(&client, "form[action='/lang'] button").await;
        }
    }
    submit(&client, "form[action='/lang'] button").await;

    // The case page: a refused perpetrator form, its message focused and
    // tied to the field it is about.
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    assert!(client.find(Locator::Id("required-note")).await.is_ok());
    open_details(&client, "#perpetrators details", javascript).await;
    choose(&client, "p-relation", "peer_pupil").await;
    choose(&client, "p-sex", "male").await;
    submit(&client, "#perpetrator-form button[type=submit]").await;
    assert_eq!(focused(&client).await, "perpetrators");
    let (invalid, message) = tie_of(&client, "p-age").await;
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(message.contains("Hãy chọn"), "{message}");
    let (invalid, message) = tie_of(&client, "p-relation").await;
    assert_eq!(invalid, None, "the relation was chosen");
    assert!(message.contains("Hãy chọn"), "{message}");
    look(&client, &format!("07-perpetrator-refused-{mode}")).await;
    // A refused note.
    submit(&client, "#note-form button[type=submit]").await;
    assert_eq!(focused(&client).await, "notes");
    let (invalid, message) = tie_of(&client, "case-note").await;
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(!message.is_empty() && !message.contains("MISSING"));
    // The statutory report, for the agency's answer below.
    submit(
        &client,
        "#suggestion-social_protection form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    assert!(
        text(&client)
            .await
            .contains("Đã gửi. Cơ quan nhận được thông báo.")
    );
    crate::browser::sign_out(&client).await;

    // The agency's answer: refused without a choice, the message focused
    // and tied to the choice, the required choice marked.
    sign_in(&app, &client, &officer).await;
    client.goto(&app.url("/referrals")).await.unwrap();
    submit(&client, "#inbox a").await;
    assert!(client.find(Locator::Id("required-note")).await.is_ok());
    client
        .execute(
            "document.getElementById('answer-form').noValidate = true;",
            vec![],
        )
        .await
        .unwrap();
    submit(&client, "#answer-form button[type=submit]").await;
    assert_eq!(focused(&client).await, "answer");
    let message = text_at(&client, Locator::Id("answer")).await;
    assert_eq!(message, "Hãy chọn một câu trả lời.");
    let first = client
        .find(Locator::Css("#answer-form input[name=to]"))
        .await
        .unwrap();
    assert_eq!(
        first.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        first.attr("aria-describedby").await.unwrap().as_deref(),
        Some("answer")
    );
    // The text was not what the refusal is about.
    let (invalid, described) = tie_of(&client, "answer-text").await;
    assert_eq!(invalid, None, "{described}");
    assert!(!described.contains("MISSING"), "{described}");
    look(&client, &format!("07-answer-refused-{mode}")).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_say_what_is_required_and_what_went_wrong_with_javascript() {
    forms_say_what_is_required_and_what_went_wrong(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_say_what_is_required_and_what_went_wrong_without_javascript() {
    forms_say_what_is_required_and_what_went_wrong(false).await;
}

/// The partner's link session (30 minutes, no account) ends on quick exit
/// too: its cookie opens nothing afterwards, and Back shows nothing.
async fn quick_exit_ends_the_partner_session(javascript: bool) {
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;
    let case = new_case(&app, &token, &assault_case()).await;
    let client = phone(&driver, javascript).await;
    let mode = if javascript { "js" } else { "nojs" };
    sign_in(&app, &client, &focal).await;
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    submit(
        &client,
        "#suggestion-social_protection form[action$='/referrals#suggestions'] button[type=submit]",
    )
    .await;
    open_details(&client, "details.partner-link", javascript).await;
    let details = client
        .find(Locator::Css("details.partner-link"))
        .await
        .unwrap();
    let (path, code) = crate::browser::partner_link(&app, &client, &details).await;
    crate::browser::sign_out(&client).await;

    client.goto(&app.url(&path)).await.unwrap();
    fill(&client, "code", &code).await;
    submit(&client, "form[action^='/partner/'] button").await;
    let page = text(&client).await;
    assert!(page.contains("PhoneCanary"), "{page}");
    let here = client.current_url().await.unwrap().to_string();
    let session = client
        .get_named_cookie(caseguard::authn::partner::COOKIE)
        .await
        .unwrap()
        .value()
        .to_owned();
    look(&client, &format!("08-partner-before-exit-{mode}")).await;

    quick_exit_by_keyboard(&app, &client, javascript).await;
    // The partner's session ended on the server: its cookie opens nothing.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(&here)
        .header(
            "cookie",
            format!("{}={session}", caseguard::authn::partner::COOKIE),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status != 200 && !body.contains("PhoneCanary"),
        "{status}: {body}"
    );
    assert!(
        client
            .get_named_cookie(caseguard::authn::partner::COOKIE)
            .await
            .is_err(),
        "the browser still holds the partner's cookie"
    );
    back_shows_nothing(&app, &client, "PhoneCanary").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_ends_the_partner_session_with_javascript() {
    quick_exit_ends_the_partner_session(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_ends_the_partner_session_without_javascript() {
    quick_exit_ends_the_partner_session(false).await;
}
