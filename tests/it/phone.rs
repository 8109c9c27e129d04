//! The pages as a teacher on a phone meets them (issue 20), in a real
//! Chromium at 390×844, with and without JavaScript: quick exit that hides
//! the service, the case page in working order, one reference per case,
//! the agency's answer form, Vietnamese without English, the charts, the
//! forms. Screenshots go to `target/screenshots/phone-*.png`; every page
//! shown is checked by axe (where scripts run) and for sideways scrolling.

use std::time::Duration;

use caseguard::domain::user::Role;
use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::json;

use crate::browser::{browser, chromedriver, earlier_case, shot, sign_in, spawn_app, text};
use crate::helpers::TestApp;

/// The phone of the issue: 390 CSS pixels wide.
async fn phone(driver: &crate::browser::Driver, javascript: bool) -> Client {
    let client = browser(driver, javascript).await;
    client.set_window_size(390, 844).await.unwrap();
    client
}

/// The screenshot and axe check of `browser::shot`, and the page must not
/// scroll sideways (measured: the document is no wider than the window).
async fn look(client: &Client, name: &str) {
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
