//! Referrals under the protocol: consent and statutory bases, field
//! profiles in the API and behind partner links, answers back to the
//! school, clocks and their escalation.

use caseguard::domain::user::Role;
use caseguard::referrals::escalation;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser};

on_both_backends!(
    a_statutory_report_goes_without_consent_and_a_service_referral_needs_it,
    police_and_health_see_different_fields,
    answers_go_back_to_the_school_and_a_decline_needs_a_reason,
    partner_links_open_once_with_their_code_and_die_with_the_referral,
    each_missed_deadline_escalates_once_then_one_level_up_and_resolving_closes_it,
);

const SCHOOL: &str = "SX-AL-AB-TH";

fn case_body(marker: &str, born: &str, incident_type: &str, risk: &str) -> Value {
    json!({
        "risk_level": risk,
        "pupil": {
            "name": format!("Trần Thị {marker}Name"),
            "date_of_birth": born,
            "sex": "female",
            "class": format!("5A-{marker}Class"),
            "disability": false,
            "guardian": format!("Mẹ {marker}Guardian"),
            "contact": format!("0912-{marker}Contact")
        },
        "incident": {
            "type": incident_type,
            "contexts": ["on_premises"],
            "date": "2026-10-31",
            "location_type": "school_premises",
            "perpetrator_relation": "teacher_or_staff",
            "narrative": format!("Em kể lại {marker}Narrative sau giờ học.")
        }
    })
}

struct World {
    app: TestApp,
    focal: TestUser,
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        // The outbox is inspected, not sent, here (tests/it/notify.rs sends).
        let app = TestApp::spawn_configured(backend, None, &[("outbox_poll_seconds", json!(0))])
            .await?
            .with_demo_orgs()
            .await;
        let focal = app.user(Role::FocalPoint, SCHOOL).await;
        Some(Self { app, focal })
    }

    async fn org_id(&self, code: &str) -> String {
        let state = self.app.state.clone();
        let code = code.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::db::organisations::find_by_code(&mut conn, &code)
                .unwrap()
                .unwrap()
                .id
        })
        .await
        .unwrap()
    }

    async fn call(
        &self,
        user: &TestUser,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.app.call_as(user, method, path, body).await
    }

    async fn new_case(&self, marker: &str, born: &str, incident_type: &str, risk: &str) -> String {
        let (status, body) = self
            .call(
                &self.focal,
                "POST",
                "/api/v1/cases",
                Some(case_body(marker, born, incident_type, risk)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn send(&self, case: &str, agency: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"agency_id": self.org_id(agency).await});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        self.call(
            &self.focal,
            "POST",
            &format!("/api/v1/cases/{case}/referrals"),
            Some(body),
        )
        .await
    }

    async fn escalate(&self) -> escalation::PassReport {
        let state = self.app.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            escalation::pass(&mut conn, &state.case_context(), 50).unwrap()
        })
        .await
        .unwrap()
    }
}

async fn a_statutory_report_goes_without_consent_and_a_service_referral_needs_it(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let child = world
        .new_case("Q1", "2015-03-14", "sexual_assault", "medium")
        .await;

    let (status, suggestions) = world
        .call(
            &world.focal,
            "GET",
            &format!("/api/v1/cases/{child}/suggestions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{suggestions}");
    let find = |agency: &str| {
        suggestions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agency_type"] == agency)
            .cloned()
            .unwrap_or_else(|| panic!("no {agency} suggestion in {suggestions}"))
    };
    let police = find("police");
    assert_eq!(
        (police["kind"].as_str(), police["need"].as_str()),
        (Some("statutory_report"), Some("required"))
    );
    assert_eq!(police["send_within"], "2h");
    assert!(
        police["sources"][0]
            .as_str()
            .unwrap()
            .contains("Luật Trẻ em"),
        "{police}"
    );
    assert!(police["agencies"][0]["code"] == "SX-AL-CA", "{police}");
    let health = find("health");
    assert_eq!(
        (health["kind"].as_str(), health["need"].as_str()),
        (Some("service_referral"), Some("required"))
    );

    // Statutory: no consent needed, the basis is recorded.
    let (status, report) = world.send(&child, "SX-AL-CA", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    assert_eq!(report["legal_basis"], "statutory_report");
    assert_eq!(report["status"], "sent");
    // The same agency twice while the first is open: refused.
    let (status, twice) = world.send(&child, "SX-AL-CA", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{twice}");

    // Service referral without consent: refused, nothing stored.
    let (status, refused) = world.send(&child, "SX-AL-YT", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("consent"),
        "{refused}"
    );
    // An override needs a real reason...
    let (status, short) = world
        .send(&child, "SX-AL-YT", json!({"override_reason": "urgent"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{short}");
    // ... and then goes, for a child, with the override recorded.
    let (status, overridden) = world
        .send(
            &child,
            "SX-AL-YT",
            json!({"override_reason": "Bé cần khám trong 72 giờ; mẹ không liên lạc được."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{overridden}");
    assert_eq!(overridden["legal_basis"], "override");

    // With consent to services and disclosure to the Women's Union: consent.
    let (status, consent) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{child}/consent"),
            Some(json!({"given_by": "pupil_and_guardian", "services": true, "reporting": true,
                        "disclosure": true, "disclosure_to": ["womens_union"], "legal_basis": "consent"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{consent}");
    let (status, consented) = world.send(&child, "SX-AL-HPN", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{consented}");
    assert_eq!(consented["legal_basis"], "consent");

    // An adult pupil's missing consent cannot be overridden.
    let adult = world
        .new_case("Q2", "2007-01-05", "physical_assault", "medium")
        .await;
    let (status, adult_refused) = world
        .send(
            &adult,
            "SX-AL-HPN",
            json!({"override_reason": "Em ấy cần hỗ trợ tâm lý ngay lập tức."}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{adult_refused}");
    assert!(
        adult_refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not override"),
        "{adult_refused}"
    );

    let (_, case) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{child}"), None)
        .await;
    assert_eq!(case["referrals"].as_array().unwrap().len(), 3, "{case}");
    // The override reason is in the chronology, sealed and readable by the school.
    assert!(
        case["chronology"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "referral_sent:health:override"
                && e["note"].as_str().unwrap().contains("72 giờ")),
        "{case}"
    );
}

async fn police_and_health_see_different_fields(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world.new_case("Z9", "2014-06-01", "rape", "high").await;
    let (status, _) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{case}/perpetrators"),
            Some(
                json!({"relation": "teacher_or_staff", "sex": "male", "age_group": "26_40",
                        "identity": "Thầy Z9Perp", "description": "Cao, đeo kính Z9Desc"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The officers exist before the referrals; the health officer reads English.
    let police_officer = world.app.user(Role::AgencyOfficer, "SX-AL-CA").await;
    let health_officer = world.app.user(Role::AgencyOfficer, "SX-AL-YT").await;
    let (status, me) = world
        .call(
            &health_officer,
            "PATCH",
            "/api/v1/me",
            Some(json!({"language": "en"})),
        )
        .await;
    assert_eq!(
        (status, me["language"].as_str()),
        (StatusCode::OK, Some("en")),
        "{me}"
    );
    let (status, _) = world
        .call(
            &health_officer,
            "PATCH",
            "/api/v1/me",
            Some(json!({"language": "fr"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, police) = world
        .send(&case, "SX-AL-CA", json!({"note": "Xin gọi trước Z9Note"}))
        .await;
    let (_, health) = world
        .send(
            &case,
            "SX-AL-YT",
            json!({"override_reason": "Trong 72 giờ, cần PEP ngay hôm nay."}),
        )
        .await;

    let police_id = police["id"].as_str().unwrap();
    let health_id = health["id"].as_str().unwrap();
    let (status, seen_by_police) = world
        .call(
            &police_officer,
            "GET",
            &format!("/api/v1/referrals/{police_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seen_by_police}");
    let (status, seen_by_health) = world
        .call(
            &health_officer,
            "GET",
            &format!("/api/v1/referrals/{health_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seen_by_health}");

    let police_text = seen_by_police.to_string();
    for present in [
        "Z9Name",
        "Z9Narrative",
        "Z9Perp",
        "Z9Desc",
        "Z9Guardian",
        "Z9Note",
    ] {
        assert!(
            police_text.contains(present),
            "police should see {present}: {police_text}"
        );
    }
    assert!(
        !police_text.contains("Z9Class"),
        "police must not see the class: {police_text}"
    );
    let health_text = seen_by_health.to_string();
    assert!(
        health_text.contains("Z9Name") && health_text.contains("Z9Contact"),
        "{health_text}"
    );
    for absent in ["Z9Narrative", "Z9Perp", "Z9Desc", "Z9Class", "Z9Note"] {
        assert!(
            !health_text.contains(absent),
            "health must not see {absent}: {health_text}"
        );
    }
    assert_eq!(seen_by_health["fields"].as_array().unwrap().len(), 9);

    // Neither reaches the other's referral, nor the case itself.
    let (status, _) = world
        .call(
            &health_officer,
            "GET",
            &format!("/api/v1/referrals/{police_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = world
        .call(
            &police_officer,
            "GET",
            &format!("/api/v1/cases/{case}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The inbox lists the referral with its deadline, and no case content.
    let (status, inbox) = world
        .call(&health_officer, "GET", "/api/v1/referrals", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    assert_eq!(inbox[0]["id"], health_id);
    assert!(inbox[0]["acknowledge_by"].is_string());
    assert!(!inbox.to_string().contains("Z9"), "{inbox}");

    // Each officer was told in their language, without the case.
    let state = world.app.state.clone();
    let outbox = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn).unwrap()
    })
    .await
    .unwrap();
    let told = |email: &str| {
        outbox
            .iter()
            .find(|m| m.recipient == email && m.template == "referral_received")
            .map(|m| m.language.clone())
    };
    assert_eq!(told(&police_officer.email).as_deref(), Some("vi"));
    assert_eq!(told(&health_officer.email).as_deref(), Some("en"));
    assert!(!format!("{outbox:?}").contains("Z9"));

    // The partner link shows the same trimmed view.
    let (status, link) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/referrals/{health_id}/links"),
            Some(json!({"email": "tiepnhan@tramyte.example.invalid"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let token = partner_token(&world, link["id"].as_str().unwrap()).await;
    let opened = open_link(&world, &token, link["code"].as_str().unwrap()).await;
    assert_eq!(opened.0, StatusCode::OK, "{}", opened.1);
    let partner_text = opened.1.to_string();
    assert!(partner_text.contains("Z9Name"));
    for absent in ["Z9Narrative", "Z9Perp", "Z9Class"] {
        assert!(
            !partner_text.contains(absent),
            "the link must not show {absent}"
        );
    }
    assert_eq!(opened.1["status"], "acknowledged");
}

/// The link's token, from the e-mail waiting in the outbox (the only place
/// it exists in clear).
async fn partner_token(world: &World, link_id: &str) -> String {
    let state = world.app.state.clone();
    let key = format!("partner_link:{link_id}");
    let row = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::find_by_key(&mut conn, &key)
            .unwrap()
            .expect("the partner's e-mail is in the outbox")
    })
    .await
    .unwrap();
    assert_eq!(row.template, "partner_link");
    let params: Value = serde_json::from_str(&row.params).unwrap();
    let link = params["link"].as_str().unwrap();
    assert!(
        link.starts_with(
            &world
                .app
                .state
                .settings
                .public_url
                .to_string()
                .trim_end_matches('/')
                .to_owned()
        ),
        "{link}"
    );
    link.rsplit('/').next().unwrap().to_owned()
}

async fn open_link(world: &World, token: &str, code: &str) -> (StatusCode, Value) {
    let response = world
        .app
        .client
        .post(world.app.url("/api/v1/partner-links/open"))
        .json(&json!({"token": token, "code": code}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn answers_go_back_to_the_school_and_a_decline_needs_a_reason(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world
        .new_case("D4", "2013-09-09", "physical_assault", "high")
        .await;
    let (_, referral) = world.send(&case, "SX-AL-BTXH", json!({})).await;
    let id = referral["id"].as_str().unwrap();
    let officer = world.app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let answer = |to: &str, version: i64, text: Option<&str>| {
        let mut body = json!({"to": to, "version": version});
        if let Some(text) = text {
            body["text"] = json!(text);
        }
        body
    };
    let path = format!("/api/v1/referrals/{id}/answers");
    let (status, acked) = world
        .call(
            &officer,
            "POST",
            &path,
            Some(answer("acknowledged", 1, None)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    let (status, stale) = world
        .call(&officer, "POST", &path, Some(answer("accepted", 1, None)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    let (status, no_reason) = world
        .call(&officer, "POST", &path, Some(answer("declined", 2, None)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{no_reason}");
    let (status, declined) = world
        .call(
            &officer,
            "POST",
            &path,
            Some(answer(
                "declined",
                2,
                Some("Không thuộc thẩm quyền; chuyển Phòng LĐ-TB-XH D4Reason."),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(declined["status"], "declined");
    let (status, after) = world
        .call(&officer, "POST", &path, Some(answer("accepted", 3, None)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{after}");

    // A second referral goes all the way to feedback.
    let (_, health) = world
        .send(
            &case,
            "SX-AL-YT",
            json!({"override_reason": "Chấn thương cần khám ngay trong hôm nay."}),
        )
        .await;
    let health_id = health["id"].as_str().unwrap();
    let doctor = world.app.user(Role::AgencyOfficer, "SX-AL-YT").await;
    let path = format!("/api/v1/referrals/{health_id}/answers");
    for (to, version) in [("accepted", 1), ("in_service", 2)] {
        let (status, body) = world
            .call(&doctor, "POST", &path, Some(answer(to, version, None)))
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
    }
    let (status, _) = world
        .call(
            &doctor,
            "POST",
            &format!("/api/v1/referrals/{health_id}/notes"),
            Some(json!({"note": "Đã khám D4Service."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Closing the case waits for the open referral.
    let (_, current) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let (status, closing) = world
        .call(&world.focal, "POST", &format!("/api/v1/cases/{case}/transitions"),
              Some(json!({"to": "closed", "version": current["version"], "closure_reason": "needs_met", "note": "Xong."})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{closing}");
    assert!(
        closing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("referrals are open")
    );
    let (status, done) = world
        .call(
            &doctor,
            "POST",
            &path,
            Some(answer(
                "completed",
                3,
                Some("Điều trị xong, hẹn tái khám D4Feedback."),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");

    let (_, case_view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let chronology = case_view["chronology"].to_string();
    for text in ["D4Reason", "D4Service", "D4Feedback"] {
        assert!(
            chronology.contains(text),
            "{text} missing from the chronology: {chronology}"
        );
    }
    // No referral holds the closure back any more; this high-risk case now
    // waits only for a second focal point's approval
    // (tests/it/casework_approval.rs).
    let (status, closed) = world
        .call(&world.focal, "POST", &format!("/api/v1/cases/{case}/transitions"),
              Some(json!({"to": "closed", "version": case_view["version"], "closure_reason": "needs_met", "note": "Xong."})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{closed}");
    assert_eq!(closed["error"]["code"], "closure_needs_approval");
}

async fn partner_links_open_once_with_their_code_and_die_with_the_referral(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world
        .new_case("L5", "2012-02-02", "psychological_abuse", "low")
        .await;
    let (_, referral) = world.send(&case, "SX-AL-BTXH", json!({})).await;
    let id = referral["id"].as_str().unwrap();
    let links = format!("/api/v1/referrals/{id}/links");
    let (status, bad) = world
        .call(
            &world.focal,
            "POST",
            &links,
            Some(json!({"email": "not an address"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    // Opens once, only with the code.
    let (_, first) = world
        .call(
            &world.focal,
            "POST",
            &links,
            Some(json!({"email": "a@btxh.example.invalid"})),
        )
        .await;
    let code = first["code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    let token = partner_token(&world, first["id"].as_str().unwrap()).await;
    // A real token with a wrong code answers exactly like a guessed token
    // (issue 21.8): same status, same body.
    let wrong = open_link(&world, &token, "00000000").await;
    let guessed = open_link(&world, &"Q".repeat(token.len()), "00000000").await;
    assert_eq!(wrong.0, StatusCode::NOT_FOUND);
    assert_eq!(wrong, guessed);
    assert_eq!(open_link(&world, &token, code).await.0, StatusCode::OK);
    assert_eq!(
        open_link(&world, &token, code).await.0,
        StatusCode::NOT_FOUND
    );

    // Too many wrong codes revoke a link.
    let (_, second) = world
        .call(
            &world.focal,
            "POST",
            &links,
            Some(json!({"email": "b@btxh.example.invalid"})),
        )
        .await;
    let token = partner_token(&world, second["id"].as_str().unwrap()).await;
    for _ in 0..5 {
        assert_eq!(
            open_link(&world, &token, "11111111").await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        open_link(&world, &token, second["code"].as_str().unwrap())
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A withdrawn referral's link stops working.
    let (_, third) = world
        .call(
            &world.focal,
            "POST",
            &links,
            Some(json!({"email": "c@btxh.example.invalid"})),
        )
        .await;
    let token = partner_token(&world, third["id"].as_str().unwrap()).await;
    let (_, current) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let version = current["referrals"][0]["version"].clone();
    let (status, withdrawn) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/referrals/{id}/withdraw"),
            Some(json!({"version": version, "reason": "Gửi nhầm đơn vị, sẽ gửi lại."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(
        open_link(&world, &token, third["code"].as_str().unwrap())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // An unknown token looks the same.
    assert_eq!(
        open_link(&world, "no-such-token", "12345678").await.0,
        StatusCode::NOT_FOUND
    );

    // Every opening and refusal is audited.
    let auditor = world.app.user(Role::Auditor, "SX").await;
    let (_, entries) = world
        .call(&auditor, "GET", "/api/v1/audit?limit=500", None)
        .await;
    let count = |name: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == name)
            .count()
    };
    assert_eq!(count("referral.link_opened"), 1);
    assert!(count("referral.link_refused") >= 9, "{entries}");
}

async fn each_missed_deadline_escalates_once_then_one_level_up_and_resolving_closes_it(
    backend: Backend,
) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let district = world.app.user(Role::DistrictOfficer, "SX-AL").await;
    let province = world.app.user(Role::DistrictOfficer, "SX").await;
    let (sx_al, sx) = (world.org_id("SX-AL").await, world.org_id("SX").await);
    // A child at high risk: assess within 12 h, report within 2 h, plan in 5 working days.
    let case = world
        .new_case("E7", "2014-04-04", "physical_assault", "high")
        .await;
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let kinds: Vec<(String, String)> = view["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("assessed".into(), "assessed".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("plan_made".into(), "plan_made".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("send".into(), "social_protection".into())),
        "{kinds:?}"
    );
    assert!(
        view["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| !d["source"].as_str().unwrap().is_empty())
    );

    assert_eq!(world.escalate().await.raised, 0, "nothing is late yet");
    world.app.clock.advance(Duration::hours(3));
    let first = world.escalate().await;
    assert!(first.raised >= 1, "{first:?}");
    assert_eq!(
        world.escalate().await.raised,
        0,
        "a missed deadline escalates once"
    );
    let escalations = |who: &'static str| {
        let world = &world;
        let user = if who == "district" {
            &district
        } else {
            &province
        };
        async move {
            world
                .call(user, "GET", "/api/v1/escalations?status=all", None)
                .await
                .1
        }
    };
    let seen = escalations("district").await;
    let not_sent: Vec<&Value> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "referral_not_sent")
        .collect();
    assert!(!not_sent.is_empty(), "{seen}");
    assert!(
        not_sent
            .iter()
            .all(|e| e["level"] == 1 && e["area_id"] == sx_al.as_str()),
        "{seen}"
    );
    // The school sees them too.
    let at_school = world
        .call(&world.focal, "GET", "/api/v1/escalations", None)
        .await
        .1;
    assert_eq!(
        at_school.as_array().unwrap().len(),
        seen.as_array().unwrap().len()
    );

    // 12 h: not assessed; a day later everything still open goes one level up.
    world.app.clock.advance(Duration::hours(10));
    world.escalate().await;
    world.app.clock.advance(Duration::hours(25));
    world.escalate().await;
    let seen = escalations("province").await;
    let level2: Vec<&Value> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == 2)
        .collect();
    assert!(
        level2
            .iter()
            .any(|e| e["reason"] == "referral_not_sent" && e["area_id"] == sx.as_str()),
        "{seen}"
    );
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "not_assessed"),
        "{seen}"
    );
    assert_eq!(
        world.escalate().await.raised,
        0,
        "nothing above the top level"
    );

    // Resolving the cause closes the escalation.
    let (status, sent) = world.send(&case, "SX-AL-BTXH", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let (status, _) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{case}/transitions"),
            Some(json!({"to": "assessing", "version": view["version"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    let state_of = |reason: &str, subject_filter: &dyn Fn(&Value) -> bool| {
        view["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == reason && subject_filter(e))
            .map(|e| e["resolved_at"].is_string())
            .collect::<Vec<_>>()
    };
    let deadline_of = |kind: &str, subject: &str| {
        view["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == kind && d["subject"] == subject)
            .unwrap()["id"]
            .clone()
    };
    let btxh_send = deadline_of("send", "social_protection");
    assert_eq!(
        state_of("referral_not_sent", &|e| e["deadline_id"] == btxh_send),
        [true, true]
    );
    assert_eq!(state_of("not_assessed", &|_| true), vec![true, true]);

    // Not acknowledged: the agency's 12 h pass, then its answer resolves it.
    world.app.clock.advance(Duration::hours(13));
    world.escalate().await;
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert!(
        view["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "not_acknowledged" && e["resolved_at"].is_null()),
        "{}",
        view["escalations"]
    );
    let officer = world.app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let id = sent["id"].as_str().unwrap();
    let (status, _) = world
        .call(
            &officer,
            "POST",
            &format!("/api/v1/referrals/{id}/answers"),
            Some(json!({"to": "acknowledged", "version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert!(
        view["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "not_acknowledged")
            .all(|e| e["resolved_at"].is_string())
    );

    // Plan not made: 5 working days.
    world.app.clock.advance(Duration::days(8));
    world.escalate().await;
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert!(
        view["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "plan_not_made"),
        "{}",
        view["escalations"]
    );
    // A report to the hotline nobody acknowledges, and still no plan: both
    // climb to the second level.
    let (status, hotline) = world.send(&case, "SX-111", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{hotline}");
    world.app.clock.advance(Duration::hours(13));
    world.escalate().await;
    world.app.clock.advance(Duration::hours(25));
    world.escalate().await;
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    for reason in [
        "not_assessed",
        "plan_not_made",
        "referral_not_sent",
        "not_acknowledged",
    ] {
        for level in [1, 2] {
            assert!(
                view["escalations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["reason"] == reason && e["level"] == level),
                "{reason} at level {level}: {}",
                view["escalations"]
            );
        }
    }
    // Making the plan resolves both of its escalations.
    let (status, _) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{case}/transitions"),
            Some(json!({"to": "action_planned", "version": view["version"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, view) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert!(
        view["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "plan_not_made")
            .all(|e| e["resolved_at"].is_string())
    );
    // Each clock and level once, whatever the number of passes.
    let mut pairs: Vec<(String, i64)> = view["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["deadline_id"].as_str().unwrap().to_owned(),
                e["level"].as_i64().unwrap(),
            )
        })
        .collect();
    let total = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), total);
    // The district officers were told, in their language, without the case.
    let state = world.app.state.clone();
    let outbox = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn).unwrap()
    })
    .await
    .unwrap();
    let to_district: Vec<_> = outbox
        .iter()
        .filter(|m| m.template == "escalation_raised" && m.recipient == district.email)
        .collect();
    assert!(!to_district.is_empty());
    assert!(
        outbox
            .iter()
            .any(|m| m.template == "escalation_raised" && m.recipient == province.email)
    );
    // The agency's answer reached the school's focal point.
    assert!(
        outbox
            .iter()
            .any(|m| m.template == "referral_update" && m.recipient == world.focal.email)
    );
    for message in &outbox {
        assert!(!format!("{message:?}").contains("E7"), "{message:?}");
    }
    // The escalation is in the case's chronology.
    assert!(
        view["chronology"]
            .to_string()
            .contains("escalated:referral_not_sent:1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_on_one_postgres_escalate_each_clock_once() {
    let Some(world) = World::new(Backend::Postgres).await else {
        return;
    };
    let _district = world.app.user(Role::DistrictOfficer, "SX-AL").await;
    for i in 0..12 {
        world
            .new_case(&format!("P{i}"), "2014-04-04", "physical_assault", "high")
            .await;
    }
    world.app.clock.advance(Duration::hours(3));
    let url = world.app.db.url.clone();
    let passes: Vec<_> = (0..2)
        .map(|_| {
            let state = world.app.state.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                use diesel::Connection;
                // A connection of its own, as another replica would have.
                let mut conn = caseguard::db::DbConnection::establish(&url).unwrap();
                escalation::pass(&mut conn, &state.case_context(), 5).unwrap()
            })
        })
        .collect();
    let raised: usize = passes.into_iter().map(|p| p.join().unwrap().raised).sum();
    let state = world.app.state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        use caseguard::db::schema::escalations;
        use diesel::prelude::*;
        let mut conn = state.db.get().unwrap();
        escalations::table
            .count()
            .get_result::<i64>(&mut *conn)
            .unwrap()
    })
    .await
    .unwrap();
    // One required report per case, missed: twelve escalations, not 24.
    assert_eq!(raised, 12);
    assert_eq!(usize::try_from(stored).unwrap(), raised);
}

on_both_backends!(a_finished_referral_no_longer_shows_the_pupil_to_the_agency);

/// The agency's page of a referral, as its officer's browser gets it.
async fn referral_page_as(world: &World, user: &TestUser, id: &str) -> String {
    let (cookie, _) = world.app.browser_session(user).await;
    let page = world
        .app
        .client
        .get(world.app.url(&format!("/referrals/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

/// Issue 21.7: after the school withdraws a referral — and once the
/// protocol's `[after_close] completed_days` have passed after completion —
/// the agency sees only that the referral existed and its answers (status
/// and times), through the API and on its page; no pupil field.
async fn a_finished_referral_no_longer_shows_the_pupil_to_the_agency(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let pupil_markers = ["R7Name", "R7Guardian", "R7Contact", "R7Class", "2012-05-06"];
    let shows_pupil = |text: &str| pupil_markers.iter().any(|m| text.contains(m));
    let case = world
        .new_case("R7", "2012-05-06", "physical_assault", "high")
        .await;

    // Withdrawn: at once.
    let (status, referral) = world.send(&case, "SX-AL-BTXH", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{referral}");
    let id = referral["id"].as_str().unwrap().to_owned();
    let officer = world.app.user(Role::AgencyOfficer, "SX-AL-BTXH").await;
    let path = format!("/api/v1/referrals/{id}");
    let (_, before) = world.call(&officer, "GET", &path, None).await;
    assert!(shows_pupil(&before.to_string()), "{before}");
    assert!(shows_pupil(&referral_page_as(&world, &officer, &id).await));
    let (status, withdrawn) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/referrals/{id}/withdraw"),
            Some(json!({"version": before["version"], "reason": "Gửi nhầm đơn vị, sẽ gửi lại."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    let (status, after) = world.call(&officer, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert!(!shows_pupil(&after.to_string()), "{after}");
    assert_eq!(after["status"], "withdrawn");
    assert_eq!(after["withheld"], "withdrawn");
    assert_eq!(after["pupil"], json!({}));
    assert_eq!(after["fields"], json!([]));
    let page = referral_page_as(&world, &officer, &id).await;
    assert!(
        !shows_pupil(&page),
        "the withdrawn referral's page shows the pupil"
    );
    assert!(page.contains(r#"id="notice""#), "{page}");

    // Completed: until the retention period has passed.
    let (status, health) = world
        .send(
            &case,
            "SX-AL-YT",
            json!({"override_reason": "Chấn thương cần khám ngay trong hôm nay."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{health}");
    let health_id = health["id"].as_str().unwrap().to_owned();
    let doctor = world.app.user(Role::AgencyOfficer, "SX-AL-YT").await;
    let answers = format!("/api/v1/referrals/{health_id}/answers");
    for (to, version) in [("accepted", 1), ("in_service", 2)] {
        let (status, body) = world
            .call(
                &doctor,
                "POST",
                &answers,
                Some(json!({"to": to, "version": version})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
    }
    let (status, completed) = world
        .call(
            &doctor,
            "POST",
            &answers,
            Some(json!({"to": "completed", "version": 3, "text": "Đã khám và điều trị xong."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    let path = format!("/api/v1/referrals/{health_id}");
    let (_, kept) = world.call(&doctor, "GET", &path, None).await;
    assert!(shows_pupil(&kept.to_string()), "{kept}");
    let days = world.app.state.protocol.after_close.completed_days;
    world
        .app
        .clock
        .advance(Duration::days(i64::from(days)) + Duration::minutes(1));
    let (status, later) = world.call(&doctor, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{later}");
    assert!(!shows_pupil(&later.to_string()), "{later}");
    assert_eq!(later["status"], "completed");
    assert_eq!(later["withheld"], "retention_passed");
    assert!(later["answered_at"].is_string(), "{later}");
    let page = referral_page_as(&world, &doctor, &health_id).await;
    assert!(
        !shows_pupil(&page),
        "the completed referral's page shows the pupil"
    );
}
