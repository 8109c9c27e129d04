//! An account's life as administrators run it (issues 19 and 21 item 2):
//! links reach only the person, the school is told, disable and enable,
//! the state and last sign-in an administrator sees.

use caseguard::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

on_both_backends!(
    a_second_factor_reset_never_answers_with_a_secret_or_a_link,
    an_account_made_by_an_administrator_is_told_to_the_school,
    disable_enable_and_password_reset_through_the_api
);

const SCHOOL: &str = "SX-AL-AB-TH";

async fn app(backend: Backend) -> Option<TestApp> {
    Some(TestApp::spawn(backend).await?.with_demo_orgs().await)
}

/// The outbox rows as (recipient, template).
async fn outbox(app: &TestApp) -> Vec<(String, String)> {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn)
            .unwrap()
            .into_iter()
            .map(|m| (m.recipient, m.template))
            .collect()
    })
    .await
    .unwrap()
}

/// A request without credentials (sign-in, enrolment).
async fn post_public(app: &TestApp, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(&body.unwrap_or(Value::Null))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_no_secret(what: &str, text: &str) {
    for needle in ["otpauth", "/enrol/", "secret="] {
        assert!(!text.contains(needle), "{what} carries {needle:?}: {text}");
    }
}

async fn a_second_factor_reset_never_answers_with_a_secret_or_a_link(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let admin = app.user(Role::Admin, "SX-AL").await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    // The API.
    let (status, body) = app
        .call_as(
            &admin,
            "POST",
            &format!("/api/v1/users/{}/reset-mfa", focal.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enrolment"], "sent_to_account_email", "{body}");
    assert_no_secret("the API's reset-mfa answer", &body.to_string());
    let link = app
        .mailed_account_link(&focal.email)
        .await
        .expect("the re-activation link is in the person's mail");
    // The person's link shows the new authenticator; the old code is void.
    let token = link.rsplit('/').next().unwrap();
    let (status, start) = post_public(
        &app,
        "/api/v1/auth/enrol/start",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        start["totp_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://")
    );
    let (status, _) = post_public(&app, "/api/v1/auth/token", Some(app.login_body(&focal))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old second factor still works"
    );

    // The page.
    let (cookie, csrf) = app.browser_session(&admin).await;
    let page = app
        .client
        .post(app.url(&format!("/users/{}/reset-mfa", focal.id)))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"notice\""), "{html}");
    assert_no_secret("the accounts page after a reset", &html);
    let newer = app.mailed_account_link(&focal.email).await.unwrap();
    assert_ne!(newer, link, "a second reset sends a new link");
}

async fn an_account_made_by_an_administrator_is_told_to_the_school(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let admin = app.user(Role::Admin, "SX-AL").await;
    let auditor = app.user(Role::Auditor, "SX-AL").await;
    // A school's first account: no focal point to tell, so the area's auditors.
    let (status, body) = app
        .call_as(
            &admin,
            "POST",
            "/api/v1/organisations/SX-AL-PM-MN/users",
            Some(json!({"role": "focal_point", "email": "first.focal@example.org", "name": "Cô Đầu Tiên"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_no_secret("the API's create answer", &body.to_string());
    assert_eq!(body["notified"], 1, "{body}");
    let mail = outbox(&app).await;
    assert!(mail.contains(&("first.focal@example.org".into(), "account_enrolment".into())));
    assert!(
        mail.contains(&(auditor.email.clone(), "account_notice".into())),
        "{mail:?}"
    );

    // A school with a focal point: that focal point is told, not the auditor again.
    let other = app.user(Role::FocalPoint, SCHOOL).await;
    let (status, body) = app
        .call_as(
            &admin,
            "POST",
            &format!("/api/v1/organisations/{SCHOOL}/users"),
            Some(json!({"role": "focal_point", "email": "second.focal@example.org", "name": "Cô Thứ Hai"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["notified"], 1, "{body}");
    let mail = outbox(&app).await;
    assert!(
        mail.contains(&(other.email.clone(), "account_notice".into())),
        "{mail:?}"
    );
    let notices_to_auditor = mail
        .iter()
        .filter(|(to, t)| *to == auditor.email && t == "account_notice")
        .count();
    assert_eq!(notices_to_auditor, 1);
    // The notice names no one and carries no link but the sign-in page.
    let state = app.state.clone();
    let notice = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn)
            .unwrap()
            .into_iter()
            .find(|m| m.template == "account_notice")
            .unwrap()
    })
    .await
    .unwrap();
    assert_no_secret("the notice", &notice.params);
    assert!(!notice.params.contains("first.focal"), "{}", notice.params);

    // The audit log says the link went out and how many were told.
    let (status, entries) = app
        .call_as(
            &auditor,
            "GET",
            "/api/v1/audit?action=user.enrolment_sent",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e["details"]["notified"] == "1"));

    // The new account is listed as not activated yet, never signed in.
    let (_, listed) = app
        .call_as(
            &admin,
            "GET",
            &format!("/api/v1/organisations/{SCHOOL}/users"),
            None,
        )
        .await;
    let new = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "second.focal@example.org")
        .unwrap();
    assert_eq!(new["activated"], false, "{new}");
    assert_eq!(new["last_sign_in_at"], Value::Null);
    let existing = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == other.email.as_str())
        .unwrap();
    assert_eq!(existing["activated"], true, "{existing}");
}

async fn disable_enable_and_password_reset_through_the_api(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let admin = app.user(Role::Admin, "SX-AL").await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let path = |what: &str| format!("/api/v1/users/{}/{what}", focal.id);
    let admin_token = app.token(&admin).await;
    let (status, _) = app
        .call_with_token(&admin_token, "POST", &path("disable"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sign_in = |app: &TestApp| {
        let body = app.login_body(&focal);
        let request = app.client.post(app.url("/api/v1/auth/token")).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(sign_in(&app).await, StatusCode::UNAUTHORIZED);
    // A disabled account gets no links.
    let (status, body) = app
        .call_with_token(&admin_token, "POST", &path("password-reset"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "account_disabled");
    assert!(app.mailed_account_link(&focal.email).await.is_none());
    let (status, _) = app
        .call_with_token(&admin_token, "POST", &path("enable"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sign_in(&app).await, StatusCode::OK);

    // A password link: the second factor stays (not shown again), a code from it is asked.
    let (status, body) = app
        .call_with_token(&admin_token, "POST", &path("password-reset"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_no_secret("the password-reset answer", &body.to_string());
    let link = app.mailed_account_link(&focal.email).await.unwrap();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let (status, start) = post_public(
        &app,
        "/api/v1/auth/enrol/start",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        start["totp_uri"], "",
        "a password link showed the secret: {start}"
    );
    app.clock.advance(chrono::Duration::seconds(30));
    let password = "gió mùa đông bắc về trên núi 2026";
    let (status, _) = post_public(
        &app,
        "/api/v1/auth/enrol",
        Some(json!({"token": token, "password": password, "totp": app.totp(&focal)})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.clock.advance(chrono::Duration::seconds(30));
    let (status, _) = post_public(
        &app,
        "/api/v1/auth/token",
        Some(json!({"email": focal.email, "password": password, "totp": app.totp(&focal)})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the new password with the same authenticator"
    );
    // Another area's administrator cannot touch the account.
    let outsider = app.user(Role::Admin, "SX-AL-PM").await;
    let (status, _) = app.call_as(&outsider, "POST", &path("disable"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Each administrator action on the accounts page, in a real browser with
/// screenshots and axe checks: disable, enable, a password link the person
/// follows (no secret shown again), a second-factor reset (no secret or
/// link on the page), the state and last sign-in, the page in English, and
/// changing one's own password on the account page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_actions_in_the_browser() {
    use crate::browser::{
        browser, chromedriver, fill, shot, sign_in, sign_out, spawn_app, submit, text,
    };
    use fantoccini::Locator;
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let admin = app.user(Role::Admin, "SX-AL").await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    // The focal point has signed in once: its second factor is set up.
    app.token(&focal).await;
    let client = browser(&driver, true).await;
    sign_in(&app, &client, &admin).await;
    let row = format!("#account-{}", focal.id);
    let state_of = |client: &fantoccini::Client| {
        let css = format!("{row} td.state");
        let client = client.clone();
        async move {
            client
                .find(Locator::Css(&css))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    client.goto(&app.url("/users")).await.unwrap();
    assert_eq!(state_of(&client).await, "Đang hoạt động");
    shot(&client, "acc-01-users").await;
    // A new account that has not been activated does not show as active.
    let fresh = app
        .call_as(
            &admin,
            "POST",
            &format!("/api/v1/organisations/{SCHOOL}/users"),
            Some(json!({"role": "focal_point", "email": "chua.kich.hoat@example.org", "name": "Cô Chưa Kích Hoạt"})),
        )
        .await
        .1;
    client.goto(&app.url("/users")).await.unwrap();
    let fresh_state = client
        .find(Locator::Css(&format!(
            "#account-{} td.state",
            fresh["user_id"].as_str().unwrap()
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(fresh_state, "Chưa kích hoạt");

    submit(&client, &format!("{row} button.disable")).await;
    assert!(text(&client).await.contains("Đã khoá tài khoản"));
    assert_eq!(state_of(&client).await, "Đã khoá");
    shot(&client, "acc-02-disabled").await;
    submit(&client, &format!("{row} button.enable")).await;
    assert_eq!(state_of(&client).await, "Đang hoạt động");
    shot(&client, "acc-03-enabled").await;

    submit(&client, &format!("{row} button.password-reset")).await;
    let page = text(&client).await;
    assert!(page.contains("Đường dẫn để chọn mật khẩu mới"), "{page}");
    assert_no_secret("the accounts page", &page);
    assert!(state_of(&client).await.contains("đã gửi đường dẫn"));
    shot(&client, "acc-04-password-link-sent").await;
    sign_out(&client).await;

    // The person follows the mailed link: no QR code, a code from the app.
    let link = app.mailed_account_link(&focal.email).await.unwrap();
    client
        .goto(&app.url(&link[link.find("/enrol/").unwrap()..]))
        .await
        .unwrap();
    assert!(
        client.find(Locator::Css(".qr")).await.is_err(),
        "the secret was shown again"
    );
    assert_no_secret(
        "the password page",
        &client
            .source()
            .await
            .unwrap()
            .replace(&link[link.find("/enrol/").unwrap()..], ""),
    );
    shot(&client, "acc-05-new-password").await;
    let password = "trăng rằm tháng tám sáng trên sông";
    fill(&client, "password", password).await;
    fill(&client, "password_again", password).await;
    app.clock.advance(chrono::Duration::seconds(30));
    fill(&client, "totp", &app.totp(&focal)).await;
    submit(&client, "form[action^='/enrol/'] button[type=submit]").await;
    assert!(
        client.find(Locator::Id("enrolled")).await.is_ok(),
        "{}",
        text(&client).await
    );
    let focal = crate::helpers::TestUser {
        password: password.to_owned(),
        ..focal
    };
    sign_in(&app, &client, &focal).await;
    sign_out(&client).await;

    // The administrator sees the sign-in, then resets the second factor.
    sign_in(&app, &client, &admin).await;
    client.goto(&app.url("/users")).await.unwrap();
    let last = client
        .find(Locator::Css(&format!("{row} td:nth-child(5)")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(last, "chưa bao giờ");
    submit(&client, &format!("{row} button.reset-mfa")).await;
    let page = text(&client).await;
    assert!(page.contains("Đã đặt lại yếu tố thứ hai"), "{page}");
    assert_no_secret(
        "the page after a second-factor reset",
        &client.source().await.unwrap(),
    );
    assert_eq!(state_of(&client).await, "Chưa kích hoạt");
    shot(&client, "acc-06-second-factor-reset").await;

    // The same page in English.
    let (status, _) = app
        .call_as(
            &admin,
            "PATCH",
            "/api/v1/me",
            Some(json!({"language": "en"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    client.goto(&app.url("/users")).await.unwrap();
    let page = text(&client).await;
    assert!(
        page.contains("Reset second factor") && page.contains("Last sign-in"),
        "{page}"
    );
    assert_eq!(state_of(&client).await, "Not activated yet");
    shot(&client, "acc-07-users-en").await;
    // Changing one's own password: every session ends, this one too.
    // (The API sign-in above ended nothing: sign-in again is the other
    // helper's change; this page is signed in afresh to be sure.)
    sign_out(&client).await;
    sign_in(&app, &client, &admin).await;
    client.goto(&app.url("/account")).await.unwrap();
    fill(&client, "current_password", "not my password at all").await;
    fill(&client, "new_password", "mây trôi lững lờ qua đỉnh núi").await;
    fill(
        &client,
        "new_password_again",
        "mây trôi lững lờ qua đỉnh núi",
    )
    .await;
    submit(&client, "#change-password button[type=submit]").await;
    assert!(client.find(Locator::Id("password-problem")).await.is_ok());
    fill(&client, "current_password", &admin.password).await;
    fill(&client, "new_password", "mây trôi lững lờ qua đỉnh núi").await;
    fill(
        &client,
        "new_password_again",
        "mây trôi lững lờ qua đỉnh núi",
    )
    .await;
    shot(&client, "acc-08-account-password").await;
    submit(&client, "#change-password button[type=submit]").await;
    assert!(
        client.find(Locator::Id("password-changed")).await.is_ok(),
        "{}",
        text(&client).await
    );
    shot(&client, "acc-09-password-changed").await;
    client.goto(&app.url("/users")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/login"),
        "the old session still works"
    );
    let admin = crate::helpers::TestUser {
        password: "mây trôi lững lờ qua đỉnh núi".to_owned(),
        ..admin
    };
    sign_in(&app, &client, &admin).await;
    client.goto(&app.url("/users")).await.unwrap();
    assert!(text(&client).await.contains("User accounts"));
    client.close().await.unwrap();
}
