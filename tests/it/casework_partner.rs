//! Case-work (issue 16): partner. API tests on both stores, hostile cases, the
//! browser journey.
//!
//! A partner without an account opens a one-time link with its code and
//! gets a session scoped to that one referral (`authn::partner`): it
//! answers as an agency officer would, and anything outside the referral's
//! partner pages ends it with the missing-resource answer.

use caseguard::domain::user::Role;
use chrono::Duration;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{browser, chromedriver, fill, shot, spawn_app, submit, text};
use crate::helpers::{Backend, TestApp, TestUser};

on_both_backends!(
    a_partner_declines_with_a_coded_reason_and_the_school_sees_it,
    a_partner_accepts_records_services_and_completes_with_feedback,
    a_partner_session_reaching_anything_else_gets_not_found_and_ends,
    the_partner_cookie_is_no_sign_in_session,
    an_expired_partner_session_ends,
    a_withdrawn_referral_ends_the_partner_session,
    a_used_code_opens_no_second_session,
    a_partner_form_without_its_csrf_token_is_refused,
    an_agency_officer_may_give_the_same_coded_reason,
);

const SCHOOL: &str = "SX-AL-AB-TH";
const AGENCY: &str = "SX-AL-BTXH";
const COOKIE: &str = "__Host-caseguard_partner";

struct World {
    app: TestApp,
    focal: TestUser,
    token: String,
}

/// A partner session as a client holds it: the cookie pair.
struct Partner {
    cookie: String,
    referral: String,
    link_id: String,
}

fn case_body(marker: &str) -> Value {
    json!({
        "risk_level": "low",
        "pupil": {
            "name": format!("Trần Thị {marker}Name"),
            "date_of_birth": "2012-02-02",
            "sex": "female",
            "class": format!("6A-{marker}Class"),
            "disability": false,
            "guardian": format!("Mẹ {marker}Guardian"),
            "contact": format!("0912-{marker}Contact")
        },
        "incident": {
            "type": "psychological_abuse",
            "contexts": ["on_premises"],
            "date": "2026-10-31",
            "location_type": "school_premises",
            "perpetrator_relation": "teacher_or_staff",
            "narrative": format!("Em kể lại {marker}Narrative sau giờ học.")
        }
    })
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        Some(
            Self::on(
                TestApp::spawn_configured(backend, None, &[("outbox_poll_seconds", json!(0))])
                    .await?,
            )
            .await,
        )
    }

    async fn on(app: TestApp) -> Self {
        let app = app.with_demo_orgs().await;
        let focal = app.user(Role::FocalPoint, SCHOOL).await;
        let token = app.token(&focal).await;
        Self { app, focal, token }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app
            .call_with_token(&self.token, method, path, body)
            .await
    }

    async fn org_id(&self, code: &str) -> String {
        self.app.org_id(code).await
    }

    /// A case with a referral to the social-protection office: (case, referral).
    async fn referral(&self, marker: &str) -> (String, String) {
        let (status, case) = self
            .call("POST", "/api/v1/cases", Some(case_body(marker)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        let case = case["id"].as_str().unwrap().to_owned();
        let agency = self.org_id(AGENCY).await;
        let (status, referral) = self
            .call(
                "POST",
                &format!("/api/v1/cases/{case}/referrals"),
                Some(json!({"agency_id": agency})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{referral}");
        (case, referral["id"].as_str().unwrap().to_owned())
    }

    /// A new link for `referral`: its token (from the e-mail in the outbox),
    /// code and id.
    async fn link(&self, referral: &str) -> (String, String, String) {
        let (status, link) = self
            .call(
                "POST",
                &format!("/api/v1/referrals/{referral}/links"),
                Some(json!({"email": "tiepnhan@btxh.example.invalid"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{link}");
        let id = link["id"].as_str().unwrap().to_owned();
        let state = self.app.state.clone();
        let key = format!("partner_link:{id}");
        let row = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::notify::outbox::find_by_key(&mut conn, &key)
                .unwrap()
                .expect("the partner's e-mail is in the outbox")
        })
        .await
        .unwrap();
        let params: Value = serde_json::from_str(&row.params).unwrap();
        let token = params["link"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        (token, link["code"].as_str().unwrap().to_owned(), id)
    }

    /// Posts the code to the link's page, as its form does.
    async fn enter_code(&self, token: &str, code: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(&format!("/partner/{token}")))
            .form(&[("code", code)])
            .send()
            .await
            .unwrap()
    }

    /// Opens a new link of `referral` into a partner session.
    async fn open(&self, referral: &str) -> Partner {
        let (token, code, link_id) = self.link(referral).await;
        let response = self.enter_code(&token, &code).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()["location"],
            format!("/partner/referrals/{referral}?done=partner_opened").as_str()
        );
        let set = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=1800",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let cookie = set.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
        Partner {
            cookie,
            referral: referral.to_owned(),
            link_id,
        }
    }

    async fn get_as(&self, partner: &Partner, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .header("cookie", &partner.cookie)
            .send()
            .await
            .unwrap()
    }

    /// The partner's page: its status and HTML.
    async fn page(&self, partner: &Partner) -> (StatusCode, String) {
        let response = self
            .get_as(partner, &format!("/partner/referrals/{}", partner.referral))
            .await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts the answer form with the page's CSRF token and version.
    async fn answer(&self, partner: &Partner, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let (status, html) = self.page(partner).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let csrf = hidden(&html, "csrf");
        let version = hidden(&html, "version");
        let mut form = vec![("csrf", csrf.as_str()), ("version", version.as_str())];
        form.extend_from_slice(fields);
        self.post_answer(partner, &form).await
    }

    async fn post_answer(&self, partner: &Partner, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .app
            .client
            .post(
                self.app
                    .url(&format!("/partner/referrals/{}/answer", partner.referral)),
            )
            .header("cookie", &partner.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// The referral as the school sees it through the API.
    async fn school_view(&self, case: &str) -> Value {
        let (status, body) = self
            .call("GET", &format!("/api/v1/cases/{case}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn audit(&self) -> Vec<Value> {
        let auditor = self.app.user(Role::Auditor, "SX").await;
        let token = self.app.token(&auditor).await;
        let response = self
            .app
            .get_with_token("/api/v1/audit?limit=500", &token)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The partner sessions as stored: (link, referral, ended reason).
    fn sessions(&self) -> Vec<(String, String, Option<String>)> {
        use caseguard::db::schema::partner_sessions::dsl as s;
        s::partner_sessions
            .select((s::link_id, s::referral_id, s::ended_reason))
            .load(&mut self.app.db.connect())
            .unwrap()
    }

    fn ended_reason(&self, partner: &Partner) -> Option<String> {
        self.sessions()
            .into_iter()
            .find(|(link, _, _)| *link == partner.link_id)
            .and_then(|(_, _, reason)| reason)
    }
}

/// The value of the hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The referral in the school's view of the case.
fn referral_of<'a>(case: &'a Value, id: &str) -> &'a Value {
    case["referrals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn ends_cookie(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with(&format!("{COOKIE}=;")))
}

async fn a_partner_declines_with_a_coded_reason_and_the_school_sees_it(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P1").await;
    let partner = world.open(&referral).await;
    // Opening acknowledges; the page shows the profile and the answers.
    let (status, html) = world.page(&partner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("P1Name"), "{html}");
    assert!(html.contains("value=\"declined\""), "{html}");
    assert!(
        html.contains("value=\"outside_area\""),
        "the taxonomy's reasons: {html}"
    );
    // (The focal point's token of half an hour ago has expired too.)
    let token = world.app.token(&world.focal).await;
    let school: Value = world
        .app
        .get_with_token(&format!("/api/v1/cases/{case}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referral_of(&school, &referral)["status"], "acknowledged");
    let chronology_len = || async {
        world.school_view(&case).await["chronology"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = chronology_len().await;

    // Declining without a coded reason: refused, the typed text and the
    // chosen answer kept, nothing changed.
    let (status, html) = world
        .answer(
            &partner,
            &[
                ("to", "declined"),
                ("text", "Gia đình đã chuyển đi nơi khác sống."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Hãy chọn lý do từ chối"), "{html}");
    assert!(
        html.contains("Gia đình đã chuyển đi nơi khác sống.</textarea>"),
        "{html}"
    );
    let declined = html
        .split('<')
        .find(|tag| tag.starts_with("input") && tag.contains("value=\"declined\""))
        .unwrap_or_default();
    assert!(declined.contains(" checked"), "{html}");
    // A reason outside the taxonomy, and a written reason too short.
    let (status, html) = world
        .answer(
            &partner,
            &[
                ("to", "declined"),
                ("reason", "bored"),
                ("text", "Gia đình đã chuyển đi nơi khác sống."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Hãy chọn lý do từ chối"), "{html}");
    let (status, html) = world
        .answer(
            &partner,
            &[
                ("to", "declined"),
                ("reason", "outside_area"),
                ("text", "Xa"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("hãy viết rõ lý do"), "{html}");
    assert!(
        html.contains("<option value=\"outside_area\" selected>"),
        "{html}"
    );
    let school = world.school_view(&case).await;
    assert_eq!(referral_of(&school, &referral)["status"], "acknowledged");
    assert_eq!(school["chronology"].as_array().unwrap().len(), before);

    // Declined with a reason: the session ends with the work done.
    let response = world
        .app
        .client
        .post(
            world
                .app
                .url(&format!("/partner/referrals/{referral}/answer")),
        )
        .header("cookie", &partner.cookie)
        .form(&[
            (
                "csrf",
                hidden(&world.page(&partner).await.1, "csrf").as_str(),
            ),
            ("version", "2"),
            ("to", "declined"),
            ("reason", "outside_area"),
            ("text", "Gia đình đã chuyển sang tỉnh khác, ngoài địa bàn."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(ends_cookie(&response));
    assert!(response.text().await.unwrap().contains("Đã gửi phản hồi"));
    assert_eq!(world.page(&partner).await.0, StatusCode::NOT_FOUND);
    assert_eq!(world.ended_reason(&partner).as_deref(), Some("answered"));

    // The school sees the answer, its reason and who gave it.
    let school = world.school_view(&case).await;
    assert_eq!(referral_of(&school, &referral)["status"], "declined");
    let entry = school["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["to_status"] == "declined")
        .unwrap();
    assert_eq!(
        entry["kind"],
        "referral:social_protection:declined:outside_area"
    );
    assert_eq!(
        entry["author_id"],
        format!("partner_link:{}", partner.link_id)
    );
    assert_eq!(
        entry["note"],
        "Gia đình đã chuyển sang tỉnh khác, ngoài địa bàn."
    );
    let (cookie, _) = world.app.browser_session(&world.focal).await;
    let page = world
        .app
        .client
        .get(world.app.url(&format!("/cases/{case}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Ngoài địa bàn phụ trách của đơn vị"),
        "{page}"
    );
    assert!(page.contains("đối tác (qua đường dẫn)"), "{page}");

    // Audited as the link, never as a user.
    let audit = world.audit().await;
    let answered = audit
        .iter()
        .find(|e| e["action"] == "referral.updated" && e["details"]["to"] == "declined")
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(
        answered["actor_user_id"],
        format!("partner_link:{}", partner.link_id)
    );
    assert_eq!(answered["actor_role"], "partner_link");
    assert_eq!(answered["details"]["reason"], "outside_area");
    assert!(
        !format!("{audit:?}").contains("Gia đình"),
        "no text in the audit log"
    );
}

async fn a_partner_accepts_records_services_and_completes_with_feedback(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P2").await;
    let partner = world.open(&referral).await;
    let (status, _) = world.answer(&partner, &[("to", "accepted")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Services: an empty note is refused, a real one goes to the school.
    let (status, html) = world
        .answer(&partner, &[("to", "note"), ("text", "  ")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Hãy mô tả dịch vụ đã cung cấp"), "{html}");
    let (status, _) = world
        .answer(
            &partner,
            &[
                ("to", "note"),
                ("text", "Tư vấn tâm lý 2 buổi cho em và mẹ."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = world.answer(&partner, &[("to", "in_service")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A stale version changes nothing.
    let (status, html) = world
        .post_answer(
            &partner,
            &[
                (
                    "csrf",
                    hidden(&world.page(&partner).await.1, "csrf").as_str(),
                ),
                ("version", "1"),
                ("to", "completed"),
                ("text", "Đã hoàn thành hỗ trợ tâm lý."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Hồ sơ vừa được cập nhật"), "{html}");
    // Completing needs feedback.
    let (status, html) = world
        .answer(&partner, &[("to", "completed"), ("text", "xong")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("hãy viết phản hồi cho trường"), "{html}");
    assert!(html.contains(">xong</textarea>"), "{html}");
    assert_eq!(
        referral_of(&world.school_view(&case).await, &referral)["status"],
        "in_service"
    );
    let (status, html) = world
        .answer(
            &partner,
            &[
                ("to", "completed"),
                ("text", "Em đã ổn định, tiếp tục theo dõi tại trường."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let school = world.school_view(&case).await;
    assert_eq!(referral_of(&school, &referral)["status"], "completed");
    let by_partner: Vec<&Value> = school["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["author_id"] == format!("partner_link:{}", partner.link_id))
        .collect();
    let kinds: Vec<&str> = by_partner
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "referral:social_protection:acknowledged",
            "referral:social_protection:accepted",
            "referral_note:social_protection",
            "referral:social_protection:in_service",
            "referral:social_protection:completed",
        ]
    );
    assert_eq!(by_partner[2]["note"], "Tư vấn tâm lý 2 buổi cho em và mẹ.");
    assert_eq!(
        by_partner[4]["note"],
        "Em đã ổn định, tiếp tục theo dõi tại trường."
    );
    assert_eq!(world.ended_reason(&partner).as_deref(), Some("answered"));
}

async fn a_partner_session_reaching_anything_else_gets_not_found_and_ends(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P3").await;
    let (other_case, other_referral) = world.referral("P3b").await;
    let (link_token, _, _) = world.link(&referral).await;
    let elsewhere = [
        format!("/partner/referrals/{other_referral}"),
        format!("/partner/referrals/{other_referral}/answer"),
        format!("/partner/referrals/{referral}/other"),
        format!("/referrals/{referral}"),
        format!("/cases/{case}"),
        format!("/cases/{other_case}"),
        format!("/api/v1/referrals/{referral}"),
        format!("/api/v1/cases/{case}"),
        format!("/partner/{link_token}"),
        "/".to_owned(),
        "/login".to_owned(),
        "/referrals".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/no-such-page".to_owned(),
    ];
    for path in &elsewhere {
        let partner = world.open(&referral).await;
        assert_eq!(world.page(&partner).await.0, StatusCode::OK, "{path}");
        let response = world.get_as(&partner, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(ends_cookie(&response), "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("P3"), "{path}: {body}");
        if path.starts_with("/api/") {
            assert!(body.contains("\"not_found\""), "{path}: {body}");
        }
        // The session is over, on its own page too.
        assert_eq!(
            world.page(&partner).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            world.ended_reason(&partner).as_deref(),
            Some("other_path"),
            "{path}"
        );
    }
    // A post elsewhere too, and the other referral did not move.
    let partner = world.open(&referral).await;
    let csrf = hidden(&world.page(&partner).await.1, "csrf");
    let response = world
        .app
        .client
        .post(
            world
                .app
                .url(&format!("/partner/referrals/{other_referral}/answer")),
        )
        .header("cookie", &partner.cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("to", "declined"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        referral_of(&world.school_view(&other_case).await, &other_referral)["status"],
        "sent"
    );
    // The stylesheet and script of the page itself do not end it.
    let partner = world.open(&referral).await;
    for asset in ["/static/app.css", "/static/app.js"] {
        assert_eq!(world.get_as(&partner, asset).await.status(), StatusCode::OK);
    }
    assert_eq!(world.page(&partner).await.0, StatusCode::OK);
    let audit = world.audit().await;
    let ended = audit
        .iter()
        .filter(|e| {
            e["action"] == "referral.partner_session_ended"
                && e["details"]["reason"] == "other_path"
        })
        .count();
    assert_eq!(ended, elsewhere.len() + 1);
    // Opened and ended by the link, never by a user.
    for name in [
        "referral.partner_session_opened",
        "referral.partner_session_ended",
    ] {
        assert!(
            audit
                .iter()
                .filter(|e| e["action"] == name)
                .all(|e| e["actor_role"] == "partner_link"
                    && e["actor_user_id"]
                        .as_str()
                        .unwrap()
                        .starts_with("partner_link:")),
            "{name}"
        );
    }
}

async fn the_partner_cookie_is_no_sign_in_session(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P4").await;
    let partner = world.open(&referral).await;
    let token = partner.cookie.split_once('=').unwrap().1.to_owned();
    let as_session = format!("__Host-caseguard_session={token}");
    for path in [
        "/api/v1/cases",
        &format!("/api/v1/cases/{case}"),
        &format!("/api/v1/referrals/{referral}"),
    ] {
        let response = world
            .app
            .client
            .get(world.app.url(path))
            .header("cookie", &as_session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in ["/".to_owned(), format!("/referrals/{referral}")] {
        let response = world
            .app
            .client
            .get(world.app.url(&path))
            .header("cookie", &as_session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/login");
    }
    // As a bearer token neither.
    let response = world
        .app
        .get_with_token(&format!("/api/v1/referrals/{referral}"), &token)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The partner's own session is untouched by all this.
    assert_eq!(world.page(&partner).await.0, StatusCode::OK);
}

async fn an_expired_partner_session_ends(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P5").await;
    let partner = world.open(&referral).await;
    world.app.clock.advance(Duration::minutes(29));
    assert_eq!(world.page(&partner).await.0, StatusCode::OK);
    let (status, html) = world.page(&partner).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf");
    world.app.clock.advance(Duration::minutes(1));
    // At 30 minutes it is over, for a form as for the page.
    let (status, _) = world
        .post_answer(
            &partner,
            &[
                ("csrf", csrf.as_str()),
                ("version", "2"),
                ("to", "accepted"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(world.ended_reason(&partner).as_deref(), Some("expired"));
    assert_eq!(world.page(&partner).await.0, StatusCode::NOT_FOUND);
    // (The focal point's token of half an hour ago has expired too.)
    let token = world.app.token(&world.focal).await;
    let school: Value = world
        .app
        .get_with_token(&format!("/api/v1/cases/{case}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referral_of(&school, &referral)["status"], "acknowledged");
}

async fn a_withdrawn_referral_ends_the_partner_session(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P6").await;
    let partner = world.open(&referral).await;
    assert_eq!(world.page(&partner).await.0, StatusCode::OK);
    let version = referral_of(&world.school_view(&case).await, &referral)["version"].clone();
    let (status, body) = world
        .call(
            "POST",
            &format!("/api/v1/referrals/{referral}/withdraw"),
            Some(json!({"version": version, "reason": "Gửi nhầm đơn vị, sẽ gửi lại."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = world
        .get_as(&partner, &format!("/partner/referrals/{referral}"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(ends_cookie(&response));
    assert!(!response.text().await.unwrap().contains("P6Name"));
    assert_eq!(world.ended_reason(&partner).as_deref(), Some("withdrawn"));
}

async fn a_used_code_opens_no_second_session(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (_, referral) = world.referral("P7").await;
    let (token, code, link_id) = world.link(&referral).await;
    // A wrong code first: no session.
    let wrong = world.enter_code(&token, "00000000").await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    assert!(wrong.headers().get("set-cookie").is_none());
    let first = world.enter_code(&token, &code).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    // The same code again, by the page or the API: nothing opens.
    let again = world.enter_code(&token, &code).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.text().await.unwrap().contains("không mở được"));
    let api = world
        .app
        .client
        .post(world.app.url("/api/v1/partner-links/open"))
        .json(&json!({"token": token, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let sessions = world.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].0, link_id);
    assert_eq!(sessions[0].1, referral);
    // A link the school revoked opens nothing.
    let (token, code, link_id) = world.link(&referral).await;
    let (status, _) = world
        .call(
            "DELETE",
            &format!("/api/v1/referrals/{referral}/links/{link_id}"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        world.enter_code(&token, &code).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(world.sessions().len(), 1);
}

async fn a_partner_form_without_its_csrf_token_is_refused(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P8").await;
    let partner = world.open(&referral).await;
    let csrf = hidden(&world.page(&partner).await.1, "csrf");
    let token = partner.cookie.split_once('=').unwrap().1;
    let sign_in_style = caseguard::authn::sessions::csrf_token(token);
    for form in [
        vec![("version", "2"), ("to", "accepted")],
        vec![("csrf", ""), ("version", "2"), ("to", "accepted")],
        vec![
            ("csrf", sign_in_style.as_str()),
            ("version", "2"),
            ("to", "accepted"),
        ],
    ] {
        let (status, _) = world.post_answer(&partner, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form:?}");
    }
    // The right token from another site.
    let response = world
        .app
        .client
        .post(
            world
                .app
                .url(&format!("/partner/referrals/{referral}/answer")),
        )
        .header("cookie", &partner.cookie)
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("version", "2"),
            ("to", "accepted"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // (The focal point's token of half an hour ago has expired too.)
    let token = world.app.token(&world.focal).await;
    let school: Value = world
        .app
        .get_with_token(&format!("/api/v1/cases/{case}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referral_of(&school, &referral)["status"], "acknowledged");
    // With it, the same answer goes through.
    let (status, _) = world
        .post_answer(
            &partner,
            &[
                ("csrf", csrf.as_str()),
                ("version", "2"),
                ("to", "accepted"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        referral_of(&world.school_view(&case).await, &referral)["status"],
        "accepted"
    );
}

async fn an_agency_officer_may_give_the_same_coded_reason(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let (case, referral) = world.referral("P9").await;
    let officer = world.app.user(Role::AgencyOfficer, AGENCY).await;
    let token = world.app.token(&officer).await;
    let answer = |body: Value| {
        world
            .app
            .client
            .post(
                world
                    .app
                    .url(&format!("/api/v1/referrals/{referral}/answers")),
            )
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let text = "Đơn vị đang quá tải, đề nghị chuyển cho đơn vị khác.";
    let refused = answer(json!({"to": "declined", "version": 1, "text": text, "reason": "bored"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert!(body.to_string().contains("reason"), "{body}");
    assert_eq!(
        referral_of(&world.school_view(&case).await, &referral)["status"],
        "sent"
    );
    let done =
        answer(json!({"to": "declined", "version": 1, "text": text, "reason": "no_capacity"}))
            .await
            .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let school = world.school_view(&case).await;
    let entry = school["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["to_status"] == "declined")
        .unwrap();
    assert_eq!(
        entry["kind"],
        "referral:social_protection:declined:no_capacity"
    );
    assert_eq!(entry["author_id"], officer.id);
}

/// The partner's journey on a phone: the link, the code, acknowledging,
/// services, completing with feedback; in Vietnamese with a switch to
/// English on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_answers_through_the_link_in_the_browser() {
    let Some(driver) = chromedriver() else { return };
    let world = World::on_spawned(spawn_app().await).await;
    let (case, referral) = world.referral("Browser").await;
    let (token, code, _) = world.link(&referral).await;
    let client = browser(&driver, true).await;

    client
        .goto(&world.app.url(&format!("/partner/{token}")))
        .await
        .unwrap();
    shot(&client, "partner-01-code").await;
    fill(&client, "code", &code).await;
    submit(&client, "form[action^='/partner/'] button").await;
    let page = text(&client).await;
    assert!(page.contains("BrowserName"), "{page}");
    assert!(
        page.contains("Đã ghi nhận cơ quan của bạn đã nhận hồ sơ"),
        "{page}"
    );
    shot(&client, "partner-02-referral").await;

    // Accept; an empty service note is refused with the choice kept.
    client
        .find(fantoccini::Locator::Id("to-accepted"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    submit(&client, "#partner-answer button[type=submit]").await;
    assert!(text(&client).await.contains("Đã lưu phản hồi"));
    client
        .find(fantoccini::Locator::Id("to-note"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    submit(&client, "#partner-answer button[type=submit]").await;
    assert!(
        text(&client)
            .await
            .contains("Hãy mô tả dịch vụ đã cung cấp")
    );
    shot(&client, "partner-03-problem").await;
    fill(
        &client,
        "answer-text",
        "Tư vấn tâm lý cho em tại trung tâm.",
    )
    .await;
    submit(&client, "#partner-answer button[type=submit]").await;
    assert!(text(&client).await.contains("Đã lưu phản hồi"));

    // In English, then complete with feedback.
    submit(&client, "a.lang").await;
    assert!(text(&client).await.contains("Record the services given"));
    shot(&client, "partner-04-english").await;
    client
        .find(fantoccini::Locator::Id("to-completed"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        &client,
        "answer-text",
        "The pupil is settled; the school keeps watch.",
    )
    .await;
    submit(&client, "#partner-answer button[type=submit]").await;
    assert!(text(&client).await.contains("Answer sent"));
    shot(&client, "partner-05-done").await;

    // Over: the page does not open again.
    client
        .goto(&world.app.url(&format!("/partner/referrals/{referral}")))
        .await
        .unwrap();
    assert!(!text(&client).await.contains("BrowserName"));
    let school = world.school_view(&case).await;
    assert_eq!(referral_of(&school, &referral)["status"], "completed");
    client.close().await.unwrap();
}

impl World {
    /// The world on the browser tests' server (already with the demo tree).
    async fn on_spawned(app: TestApp) -> Self {
        let focal = app.user(Role::FocalPoint, SCHOOL).await;
        let token = app.token(&focal).await;
        Self { app, focal, token }
    }
}
