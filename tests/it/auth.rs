//! Sign-in, tokens, sessions and their attacks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caseguard::authn::AUDIENCE;
use caseguard::clock::Clock;
use caseguard::crypto::jwt::TokenKeys;
use caseguard::crypto::keyring::{KeyPurpose, Keyring};
use caseguard::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser};

on_both_backends!(
    token_sign_in_and_me,
    session_cookie_csrf_and_logout,
    disabling_ends_access_at_once
);

const SCHOOL: &str = "SX-AL-AB-TH";

async fn app(backend: Backend) -> Option<TestApp> {
    Some(TestApp::spawn(backend).await?.with_demo_orgs().await)
}

fn unauthorized() -> Value {
    json!({"error": {"code": "unauthorized", "message": "Valid credentials are required."}})
}

async fn token_sign_in_and_me(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&app.login_body(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();

    let me = app.get_with_token("/api/v1/me", token).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["cache-control"], "no-store");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user_id"], user.id.as_str());
    assert_eq!(me["role"], "focal_point");
    assert_eq!(me["org"], SCHOOL);

    let anonymous = app.get("/api/v1/me").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json::<Value>().await.unwrap(), unauthorized());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_works_once() {
    let app = app(Backend::Sqlite).await.unwrap();
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let body = app.login_body(&user);
    let first = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let replay = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    // The next step's code works.
    assert_eq!(
        app.client
            .post(app.url("/api/v1/auth/token"))
            .json(&app.login_body(&user))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_accounts_and_wrong_passwords_look_the_same() {
    let app = app(Backend::Sqlite).await.unwrap();
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let mut bodies = Vec::new();
    for body in [
        json!({"email": "nobody@test.caseguard.invalid", "password": user.password, "totp": app.totp(&user)}),
        json!({"email": user.email, "password": "not the password at all", "totp": app.totp(&user)}),
        json!({"email": user.email, "password": user.password, "totp": "000000"}),
        json!({"email": user.email, "password": user.password}),
        json!({"email": "not an email", "password": "x"}),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        bodies.push((response.status(), response.text().await.unwrap()));
    }
    for (status, body) in &bodies {
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, &bodies[0].1);
        assert!(
            !body.contains(&user.email) && !body.contains(&user.password),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_slow_down_then_lock_the_account() {
    let app = app(Backend::Sqlite).await.unwrap();
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let wrong = json!({"email": user.email, "password": "not the password at all"});
    let attempt = |body: Value| {
        let request = app.client.post(app.url("/api/v1/auth/token")).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    for _ in 0..5 {
        assert_eq!(attempt(wrong.clone()).await, StatusCode::UNAUTHORIZED);
    }
    // Five failures: even the right password and code must wait (2 s).
    let right = json!({"email": user.email, "password": user.password, "totp": app.totp(&user)});
    assert_eq!(attempt(right.clone()).await, StatusCode::UNAUTHORIZED);
    app.clock.advance(chrono::Duration::seconds(3));
    assert_eq!(
        attempt(right).await,
        StatusCode::OK,
        "the delay should be over"
    );

    // Twenty consecutive failures lock the account for good.
    for _ in 0..20 {
        app.clock.advance(chrono::Duration::seconds(901));
        attempt(wrong.clone()).await;
    }
    app.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        attempt(app.login_body(&user)).await,
        StatusCode::UNAUTHORIZED,
        "locked account signed in"
    );
    let locked = app
        .state
        .db
        .read(|conn| Ok(caseguard::db::audit::latest(conn, None, 200)?))
        .await
        .unwrap();
    assert!(locked.iter().any(|e| e.action == "auth.account_locked"));
    assert!(locked.iter().any(|e| e.details.contains("throttled")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited_per_address() {
    let app = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[("login_attempts_per_minute", json!(3))],
    )
    .await
    .unwrap();
    let body = json!({"email": "nobody@test.caseguard.invalid", "password": "whatever whatever"});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.client
                .post(app.url("/api/v1/auth/token"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(&statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
}

/// Signs `claims` with the app's real token key, `kid` and `typ`.
fn sign(app: &TestApp, claims: &Value) -> String {
    TokenKeys::from_keyring(&app.state.keyring.current())
        .unwrap()
        .sign(claims)
        .unwrap()
}

fn valid_claims(app: &TestApp, user: &TestUser) -> Value {
    let now = app.clock.now();
    json!({
        "iss": app.state.authn.issuer, "aud": AUDIENCE, "sub": user.id, "org": "x", "role": "focal_point",
        "iat": now.timestamp(), "nbf": now.timestamp(), "exp": now.timestamp() + 600,
        "jti": uuid::Uuid::new_v4().to_string(), "iat_us": now.timestamp_micros()
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stale_tokens_are_refused() {
    let app = app(Backend::Sqlite).await.unwrap();
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    // Tokens made in the very instant the account was created are void.
    app.clock.advance(chrono::Duration::seconds(1));
    let good = sign(&app, &valid_claims(&app, &user));
    assert_eq!(
        app.get_with_token("/api/v1/me", &good).await.status(),
        StatusCode::OK,
        "control token refused"
    );

    let kid = app
        .state
        .keyring
        .current()
        .active(KeyPurpose::TokenSigning)
        .unwrap()
        .id
        .clone();
    let public = app
        .state
        .keyring
        .current()
        .active(KeyPurpose::TokenSigning)
        .unwrap()
        .ed25519_public_key()
        .unwrap();
    let payload = b64(&valid_claims(&app, &user));
    let mut forged: Vec<(&str, String)> = Vec::new();

    forged.push((
        "alg none",
        format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}))
        ),
    ));
    let hs_header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let signing_input = format!("{hs_header}.{payload}");
    let mac = caseguard::crypto::hmac_sha256(&public, signing_input.as_bytes());
    forged.push((
        "HS256 with the public key",
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac)),
    ));

    let mut wrong_aud = valid_claims(&app, &user);
    wrong_aud["aud"] = json!("another-api");
    forged.push(("wrong aud", sign(&app, &wrong_aud)));
    let mut wrong_iss = valid_claims(&app, &user);
    wrong_iss["iss"] = json!("https://evil.example");
    forged.push(("wrong iss", sign(&app, &wrong_iss)));
    let mut expired = valid_claims(&app, &user);
    expired["iat"] = json!(app.clock.now().timestamp() - 1000);
    expired["nbf"] = expired["iat"].clone();
    expired["exp"] = json!(app.clock.now().timestamp() - 100);
    forged.push(("expired", sign(&app, &expired)));
    let mut early = valid_claims(&app, &user);
    early["nbf"] = json!(app.clock.now().timestamp() + 120);
    forged.push(("nbf in the future", sign(&app, &early)));
    let mut no_exp = valid_claims(&app, &user);
    no_exp.as_object_mut().unwrap().remove("exp");
    forged.push(("no exp", sign(&app, &no_exp)));

    let mut stranger = Keyring::default();
    stranger
        .add_key(KeyPurpose::TokenSigning, &app.clock)
        .unwrap();
    forged.push((
        "unknown kid",
        TokenKeys::from_keyring(&stranger)
            .unwrap()
            .sign(&valid_claims(&app, &user))
            .unwrap(),
    ));

    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered_claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    tampered_claims["sub"] = json!(uuid::Uuid::new_v4().to_string());
    forged.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]),
    ));
    let mut wrong_typ = parts[0].to_owned();
    wrong_typ = b64(&{
        let mut header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&wrong_typ).unwrap()).unwrap();
        header["typ"] = json!("JWT");
        header
    });
    forged.push((
        "wrong typ",
        format!("{wrong_typ}.{}.{}", parts[1], parts[2]),
    ));

    let revoked = app.token(&user).await;
    let revoke = app
        .client
        .delete(app.url("/api/v1/auth/token"))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    forged.push(("revoked", revoked));

    for (name, token) in forged {
        let response = app.get_with_token("/api/v1/me", &token).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{name} accepted"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            unauthorized(),
            "{name}"
        );
    }

    // A real token dies 15 minutes (plus leeway) after it was made.
    let token = app.token(&user).await;
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        app.get_with_token("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn session_cookie_csrf_and_logout(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&app.login_body(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "__Host-caseguard_session=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(!set_cookie.contains("Domain="));
    let body: Value = response.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let cookie = cookie_pair(&set_cookie);

    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // State changes need the CSRF token and our own origin.
    let post = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/auth/logout-everywhere"))
            .header("cookie", &cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap() }
    };
    let refused = post(None, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "csrf_failed"
    );
    assert_eq!(
        post(Some("0".repeat(64).as_str()), None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(&csrf), Some("https://evil.example"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let cross_site = app
        .client
        .post(app.url("/api/v1/auth/logout-everywhere"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    // Still signed in after the refused attempts.
    assert_eq!(
        app.client
            .get(app.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let origin = app.state.settings.public_url.origin().ascii_serialization();
    let done = post(Some(&csrf), Some(&origin)).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let after = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

async fn new_session(app: &TestApp, user: &TestUser) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&app.login_body(user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    cookie_pair(response.headers()["set-cookie"].to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_when_idle_and_absolutely() {
    let app = app(Backend::Sqlite).await.unwrap();
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let me = |cookie: String| {
        let request = app
            .client
            .get(app.url("/api/v1/me"))
            .header("cookie", cookie);
        async move { request.send().await.unwrap().status() }
    };

    let idle = new_session(&app, &user).await;
    app.clock.advance(chrono::Duration::minutes(14));
    assert_eq!(me(idle.clone()).await, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(14));
    assert_eq!(
        me(idle.clone()).await,
        StatusCode::OK,
        "activity should renew the idle timer"
    );
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        me(idle).await,
        StatusCode::UNAUTHORIZED,
        "idle session still valid"
    );

    let busy = new_session(&app, &user).await;
    let started = app.clock.now();
    while app.clock.now() - started < chrono::Duration::hours(8) - chrono::Duration::minutes(10) {
        app.clock.advance(chrono::Duration::minutes(10));
        assert_eq!(me(busy.clone()).await, StatusCode::OK);
    }
    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(
        me(busy).await,
        StatusCode::UNAUTHORIZED,
        "session outlived its absolute limit"
    );
}

async fn disabling_ends_access_at_once(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let user = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&user).await;
    let cookie = new_session(&app, &user).await;
    assert_eq!(
        app.get_with_token("/api/v1/me", &token).await.status(),
        StatusCode::OK
    );

    let state = app.state.clone();
    let clock = app.clock.clone();
    let id = user.id.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let org_id = caseguard::db::users::find(&mut conn, &id)
            .unwrap()
            .unwrap()
            .org_id;
        let admin = crate::helpers::root_admin(&state, &mut conn);
        let by = crate::helpers::capability_of(
            &state,
            &mut conn,
            &admin,
            caseguard::authz::Action::UserDisable,
            &org_id,
        );
        caseguard::authn::accounts::disable(&mut conn, &state.auditor, &clock, &id, &by).unwrap();
    })
    .await
    .unwrap();
    assert_eq!(
        app.get_with_token("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let with_cookie = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::UNAUTHORIZED);
    let again = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&app.login_body(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sign_in_bodies_name_the_problem() {
    let app = app(Backend::Sqlite).await.unwrap();
    let post = |body: &'static str, content_type: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(r#"{"email": "a@b.org"}"#, "application/json").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `password`"),
        "{body}"
    );
    let (status, body) = post(
        r#"{"email": "a@b.org", "password": "Canary-Secret-77", "role": "admin"}"#,
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `role`"),
        "{body}"
    );
    let (status, body) = post(
        r#"{"email": "a@b.org", "password": 12345678901234}"#,
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !body.to_string().contains("12345678901234"),
        "value echoed: {body}"
    );
    let (status, _) = post("{not json", "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(r#"{"email":"a@b.org","password":"x"}"#, "text/plain").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_link_sets_password_and_authenticator_once() {
    let app = app(Backend::Sqlite).await.unwrap();
    let admin = app.user(Role::Admin, "SX-AL").await;
    let admin_token = app.token(&admin).await;
    let created: Value = app
        .client
        .post(app.url("/api/v1/organisations/SX-AL-AB-TH/users"))
        .bearer_auth(&admin_token)
        .json(&json!({"role": "focal_point", "email": "lan.nguyen@example.org", "name": "Nguyễn Thị Lan"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The link went to the person's mailbox, not to the administrator.
    assert_eq!(created["enrolment"], "sent_to_account_email", "{created}");
    assert!(created.get("enrolment_url").is_none(), "{created}");
    let url = app
        .mailed_account_link("lan.nguyen@example.org")
        .await
        .expect("the activation e-mail is in the outbox");
    let token = url.rsplit('/').next().unwrap().to_owned();

    let start = app
        .client
        .post(app.url("/api/v1/auth/enrol/start"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::OK);
    let start: Value = start.json().await.unwrap();
    assert!(
        start["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || start["qr_svg"].as_str().unwrap().contains("<svg")
    );
    let totp = totp_rs::TOTP::from_url(start["totp_uri"].as_str().unwrap()).unwrap();
    let code = |app: &TestApp| totp.generate(u64::try_from(app.clock.now().timestamp()).unwrap());

    let weak = app
        .client
        .post(app.url("/api/v1/auth/enrol"))
        .json(&json!({"token": token, "password": "password1234", "totp": code(&app)}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let password = "nắng vàng trên mái ngói rêu";
    let done = app
        .client
        .post(app.url("/api/v1/auth/enrol"))
        .json(&json!({"token": token, "password": password, "totp": code(&app)}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let again = app
        .client
        .post(app.url("/api/v1/auth/enrol"))
        .json(&json!({"token": token, "password": password, "totp": code(&app)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NOT_FOUND,
        "an enrolment link worked twice"
    );

    app.clock.advance(chrono::Duration::seconds(30));
    let login = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "lan.nguyen@example.org", "password": password, "totp": code(&app)}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_every_session_and_token() {
    let app = app(Backend::Sqlite).await.unwrap();
    let mut user = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&user).await;
    let change = |current: String, new: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": current, "new_password": new}));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        change("not it at all, sorry".into(), "mưa phùn tháng hai lất phất").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        change(user.password.clone(), "short").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        change(user.password.clone(), "mưa phùn tháng hai lất phất").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get_with_token("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let old = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&app.login_body(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    user.password = "mưa phùn tháng hai lất phất".into();
    app.clock.advance(chrono::Duration::seconds(1));
    let new = app.token(&user).await;
    assert_eq!(
        app.get_with_token("/api/v1/me", &new).await.status(),
        StatusCode::OK
    );
}
