//! Case-work (issue 16): approval. API tests on both stores, hostile cases, the
//! browser journey.
//!
//! The assigned case worker (a focal point of the school; reassignment
//! checked, audited and in the chronology; "mine"), closure that needs a
//! second focal point's approval (high risk, or a statutory report), and the
//! legal hold (district officers of the area and admins; retention keeps a
//! held case).

use caseguard::domain::user::Role;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser};

on_both_backends!(
    a_case_is_assigned_to_a_focal_point_of_its_school_and_only_there,
    closing_a_high_risk_case_needs_another_focal_points_approval,
    a_statutory_report_makes_closure_need_approval_and_other_cases_close_directly,
    a_legal_hold_is_set_and_lifted_with_a_reason_and_retention_respects_it,
    the_command_line_sets_and_lifts_a_legal_hold,
    the_case_page_forms_refuse_bad_input_and_the_requesters_own_approval,
);

const SCHOOL: &str = "SX-AL-AB-TH";
const SIBLING_SCHOOL: &str = "SX-AL-AB-MN";

fn case_body(marker: &str, risk: &str) -> Value {
    case_of_type(marker, risk, "psychological_abuse")
}

fn case_of_type(marker: &str, risk: &str, incident_type: &str) -> Value {
    json!({
        "risk_level": risk,
        "pupil": {"name": format!("Lê Thị {marker}"), "date_of_birth": "2014-02-11", "sex": "female",
                  "class": "6B", "guardian": "Bà ngoại"},
        "incident": {"type": incident_type, "contexts": ["on_premises"], "date": "2026-10-20",
                     "location_type": "school_premises", "perpetrator_relation": "peer_pupil",
                     "narrative": format!("Em {marker} bị bạn cùng lớp đe doạ nhiều lần.")}
    })
}

struct World {
    app: TestApp,
    focal: TestUser,
    second: TestUser,
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        let app = TestApp::spawn(backend).await?.with_demo_orgs().await;
        let focal = app.user(Role::FocalPoint, SCHOOL).await;
        let second = app.user(Role::FocalPoint, SCHOOL).await;
        Some(Self { app, focal, second })
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

    async fn new_case(&self, by: &TestUser, marker: &str, risk: &str) -> Value {
        let (status, body) = self
            .call(by, "POST", "/api/v1/cases", Some(case_body(marker, risk)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn case(&self, id: &str) -> Value {
        let (status, body) = self
            .call(&self.focal, "GET", &format!("/api/v1/cases/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn chronology_kinds(case: &Value) -> Vec<String> {
        case["chronology"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Audit actions recorded for `case_id`, in order.
    fn audit_actions(&self, case_id: &str) -> Vec<String> {
        use caseguard::db::schema::audit_log;
        audit_log::table
            .filter(audit_log::target_id.eq(case_id))
            .order(audit_log::seq.asc())
            .select(audit_log::action)
            .load(&mut self.app.db.connect())
            .unwrap()
    }
}

async fn a_case_is_assigned_to_a_focal_point_of_its_school_and_only_there(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let reporter = world.app.user(Role::Reporter, SCHOOL).await;
    let elsewhere = world.app.user(Role::FocalPoint, SIBLING_SCHOOL).await;
    let mine = world.new_case(&world.focal, "A1", "medium").await;
    assert_eq!(mine["assigned_to"], world.focal.id.as_str(), "{mine}");
    let filed = world.new_case(&reporter, "A2", "low").await;
    assert!(filed["assigned_to"].is_null(), "{filed}");
    let filed_id = filed["id"].as_str().unwrap();

    let assign = |who: Value, version: i64| json!({"assignee": who, "version": version});
    let path = format!("/api/v1/cases/{filed_id}/assignment");
    // Not a focal point, a focal point of another school, not a user at all:
    // refused with the field named, and nothing changes.
    for wrong in [
        json!(reporter.id),
        json!(elsewhere.id),
        json!("0193a000-0000-7000-8000-00000000dead"),
        json!("Nguyễn Văn Tên"),
    ] {
        let (status, body) = world
            .call(&world.focal, "POST", &path, Some(assign(wrong, 1)))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("assignee"),
            "{body}"
        );
        assert!(!body.to_string().contains("Nguyễn"), "{body}");
    }
    let unchanged = world.case(filed_id).await;
    assert!(unchanged["assigned_to"].is_null());
    assert_eq!(unchanged["version"], 1);

    // A stale version is refused; the right one assigns.
    let (status, _) = world
        .call(
            &world.focal,
            "POST",
            &path,
            Some(assign(json!(world.second.id), 7)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = world
        .call(
            &world.focal,
            "POST",
            &path,
            Some(assign(json!(world.second.id), 1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assigned_to"], world.second.id.as_str());
    assert_eq!(body["version"], 2);
    let read = world.case(filed_id).await;
    assert_eq!(read["casework"]["assignee"]["id"], world.second.id.as_str());
    assert!(
        World::chronology_kinds(&read).contains(&format!("assigned:{}", world.second.id)),
        "{read}"
    );
    assert!(
        world
            .audit_actions(filed_id)
            .contains(&"case.assigned".to_owned())
    );

    // "Mine": only the caller's cases.
    let (status, listed) = world
        .call(&world.second, "GET", "/api/v1/cases?mine=true", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![filed_id]);
    let (_, all) = world
        .call(&world.second, "GET", "/api/v1/cases", None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    // Unassigning; and outside the school, or without the role, "not there".
    let (status, body) = world
        .call(&world.second, "POST", &path, Some(assign(Value::Null, 2)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["assigned_to"].is_null());
    for outsider in [&elsewhere, &reporter] {
        let (status, _) = world
            .call(outsider, "POST", &path, Some(assign(json!(outsider.id), 3)))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert!(world.case(filed_id).await["assigned_to"].is_null());
}

async fn closing_a_high_risk_case_needs_another_focal_points_approval(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world.new_case(&world.focal, "B1", "high").await;
    let id = case["id"].as_str().unwrap();
    let close = json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Đã hỗ trợ xong."});
    let (status, body) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{id}/transitions"),
            Some(close),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "closure_needs_approval");

    // Lowering the risk first does not dodge the second person.
    let (status, lowered) = world
        .call(
            &world.focal,
            "PATCH",
            &format!("/api/v1/cases/{id}"),
            Some(json!({"version": 1, "risk_level": "medium"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{lowered}");
    let (status, body) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{id}/transitions"),
            Some(json!({"to": "closed", "version": 2, "closure_reason": "needs_met", "note": "Đã hỗ trợ xong."})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "closure_needs_approval");

    let request_path = format!("/api/v1/cases/{id}/closure-request");
    // Bad input changes nothing.
    for bad in [
        json!({"version": 1, "closure_reason": "because", "note": "Đã hỗ trợ xong."}),
        json!({"version": 1, "closure_reason": "needs_met", "note": "   "}),
    ] {
        let (status, body) = world
            .call(&world.focal, "POST", &request_path, Some(bad))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert!(world.case(id).await["casework"]["closure_request"].is_null());

    let ask = json!({"version": 2, "closure_reason": "needs_met", "note": "Kế hoạch hỗ trợ đã hoàn thành."});
    let (status, requested) = world
        .call(&world.focal, "POST", &request_path, Some(ask.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{requested}");
    assert_eq!(requested["status"], "pending");
    let request_id = requested["id"].as_str().unwrap().to_owned();
    // The other focal point is told, content-free; the requester is not.
    {
        use caseguard::db::schema::outbox;
        let told: Vec<(String, String, String)> = outbox::table
            .filter(outbox::template.eq("closure_approval"))
            .select((outbox::recipient, outbox::params, outbox::idempotency_key))
            .load(&mut world.app.db.connect())
            .unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].0, world.second.email);
        assert!(told[0].1.contains(&format!("/cases/{id}")), "{told:?}");
        assert!(!told[0].1.contains("Lê Thị"), "{told:?}");
    }
    let (status, twice) = world
        .call(&world.second, "POST", &request_path, Some(ask.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{twice}");
    assert_eq!(twice["error"]["code"], "closure_awaiting_approval");
    let read = world.case(id).await;
    assert_eq!(
        read["casework"]["closure_request"]["id"],
        request_id.as_str()
    );
    assert_eq!(
        read["casework"]["closure_request"]["note"],
        "Kế hoạch hỗ trợ đã hoàn thành."
    );
    assert_eq!(read["status"], "reported");

    // Hostile: the person who asked cannot approve (nor return) their own.
    let decision =
        |note: Option<&str>| json!({"request_id": request_id, "version": 2, "note": note});
    for verb in ["approve", "return"] {
        let (status, own) = world
            .call(
                &world.focal,
                "POST",
                &format!("{request_path}/{verb}"),
                Some(decision(Some("Tôi tự duyệt."))),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{own}");
        assert_eq!(own["error"]["code"], "own_closure_request");
    }
    // Nor can a focal point of another school (it is not there for them).
    let elsewhere = world.app.user(Role::FocalPoint, SIBLING_SCHOOL).await;
    let (status, _) = world
        .call(
            &elsewhere,
            "POST",
            &format!("{request_path}/approve"),
            Some(decision(None)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(world.case(id).await["status"], "reported");

    // Returning needs a note; with one the case stays open.
    let (status, _) = world
        .call(
            &world.second,
            "POST",
            &format!("{request_path}/return"),
            Some(decision(None)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, returned) = world
        .call(
            &world.second,
            "POST",
            &format!("{request_path}/return"),
            Some(decision(Some("Chờ phản hồi của trạm y tế."))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(returned["status"], "reported");
    assert!(world.case(id).await["casework"]["closure_request"].is_null());

    // Asked again, approved by the other focal point: the case closes.
    let (status, again) = world
        .call(&world.focal, "POST", &request_path, Some(ask))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let second_id = again["id"].as_str().unwrap();
    let (status, stale) = world
        .call(
            &world.second,
            "POST",
            &format!("{request_path}/approve"),
            Some(json!({"request_id": request_id, "version": 2})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the returned request: {stale}"
    );
    let (status, approved) = world
        .call(
            &world.second,
            "POST",
            &format!("{request_path}/approve"),
            Some(json!({"request_id": second_id, "version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "closed");
    assert_eq!(approved["version"], 3);
    // Deciding twice: there is nothing pending any more.
    let (status, _) = world
        .call(
            &world.second,
            "POST",
            &format!("{request_path}/approve"),
            Some(json!({"request_id": second_id, "version": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The requester is told of each decision (the return, then the
    // approval), content-free; nobody else gets that mail.
    {
        use caseguard::db::schema::outbox;
        let told: Vec<(String, String)> = outbox::table
            .filter(outbox::template.eq("closure_decided"))
            .select((outbox::recipient, outbox::params))
            .load(&mut world.app.db.connect())
            .unwrap();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told.iter().all(|(to, params)| to == &world.focal.email
            && params.contains(&format!("/cases/{id}"))
            && !params.contains("Chờ phản hồi")));
    }
    let read = world.case(id).await;
    let kinds = World::chronology_kinds(&read);
    let at = |kind: &str| {
        kinds
            .iter()
            .position(|k| k == kind)
            .unwrap_or_else(|| panic!("no {kind} in {kinds:?}"))
    };
    assert!(at("closure_requested:needs_met") < at("closure_returned"));
    assert!(at("closure_returned") < at("closure_approved"));
    assert!(at("closure_approved") < at("closed:needs_met"));
    let approver = read["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "closed:needs_met")
        .unwrap()["author_id"]
        .clone();
    assert_eq!(approver, world.second.id.as_str());
    let audit = world.audit_actions(id);
    for action in [
        "case.closure_requested",
        "case.closure_returned",
        "case.closure_approved",
    ] {
        assert!(audit.contains(&action.to_owned()), "{action} in {audit:?}");
    }
}

async fn a_statutory_report_makes_closure_need_approval_and_other_cases_close_directly(
    backend: Backend,
) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    // A medium-risk case without a statutory report closes as before.
    let plain = world.new_case(&world.focal, "C1", "medium").await;
    let plain_id = plain["id"].as_str().unwrap();
    let (status, closed) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{plain_id}/transitions"),
            Some(json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Đã ổn định."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    // Asking for an approval it does not need is refused.
    let (status, other) = world
        .call(
            &world.focal,
            "POST",
            "/api/v1/cases",
            Some(case_of_type("C2", "low", "sexual_assault")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other_id = other["id"].as_str().unwrap();
    let (status, body) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{other_id}/closure-request"),
            Some(json!({"version": 1, "closure_reason": "needs_met", "note": "Không cần duyệt."})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A statutory report, even withdrawn, makes closure need approval.
    let police = world.app.org_id("SX-AL-CA").await;
    let (status, report) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{other_id}/referrals"),
            Some(json!({"agency_id": police})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    assert_eq!(report["kind"], "statutory_report");
    let (status, withdrawn) = world
        .call(
            &world.focal,
            "POST",
            &format!(
                "/api/v1/referrals/{}/withdraw",
                report["id"].as_str().unwrap()
            ),
            Some(json!({"version": report["version"], "reason": "Gửi nhầm đơn vị, sẽ gửi lại."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    let version = world.case(other_id).await["version"].clone();
    let (status, body) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{other_id}/transitions"),
            Some(json!({"to": "closed", "version": version, "closure_reason": "needs_met", "note": "Đã ổn định."})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "closure_needs_approval");
    assert_eq!(
        world.case(other_id).await["casework"]["closure_needs_approval"],
        true
    );
}

async fn a_legal_hold_is_set_and_lifted_with_a_reason_and_retention_respects_it(backend: Backend) {
    use caseguard::cases::retention::{RetentionPolicy, run};
    let Some(world) = World::new(backend).await else {
        return;
    };
    let officer = world.app.user(Role::DistrictOfficer, "SX-AL").await;
    let admin = world.app.user(Role::Admin, "SX-AL").await;
    let monitor = world.app.user(Role::Monitor, "SX-AL").await;
    let importer = caseguard::orgs::import::parse_csv(
        "kind,code,name,parent,level,agency_type\narea,SX-BX,Huyện Bình Xuyên (demo),SX,district,\n",
    )
    .unwrap();
    caseguard::orgs::import::import(&mut world.app.db.connect(), &importer, &world.app.clock)
        .unwrap();
    let foreign_officer = world.app.user(Role::DistrictOfficer, "SX-BX").await;

    let mut ids = Vec::new();
    for marker in ["D1", "D2"] {
        let case = world.new_case(&world.focal, marker, "medium").await;
        let id = case["id"].as_str().unwrap().to_owned();
        let (status, _) = world
            .call(
                &world.focal,
                "POST",
                &format!("/api/v1/cases/{id}/transitions"),
                Some(json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Đã ổn định."})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        ids.push(id);
    }
    let held = ids[0].clone();
    let path = format!("/api/v1/cases/{held}/legal-hold");
    let set = json!({"held": true, "reason": "court_proceedings", "note": "Tòa án tỉnh thụ lý, xét xử tháng 3."});

    // Outside the area, without the role, or the case's own focal point:
    // "not there"; and nothing is held.
    for outsider in [&foreign_officer, &monitor, &world.focal] {
        let (status, _) = world.call(outsider, "POST", &path, Some(set.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Bad input: a reason outside the list, a lifting reason to set, a note
    // too short. Each names its field; nothing changes.
    for (bad, field) in [
        (
            json!({"held": true, "reason": "because", "note": "Tòa án tỉnh thụ lý."}),
            "reason",
        ),
        (
            json!({"held": true, "reason": "proceedings_concluded", "note": "Tòa án tỉnh thụ lý."}),
            "reason",
        ),
        (
            json!({"held": true, "reason": "court_proceedings", "note": "ngắn"}),
            "note",
        ),
    ] {
        let (status, body) = world.call(&officer, "POST", &path, Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    assert_eq!(world.case(&held).await["legal_hold"], false);

    let (status, body) = world.call(&officer, "POST", &path, Some(set.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["legal_hold"], true);
    assert_eq!(body["latest"]["reason"], "court_proceedings");
    let (status, twice) = world.call(&admin, "POST", &path, Some(set)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{twice}");
    assert_eq!(twice["error"]["code"], "legal_hold_unchanged");
    // The holder sees the hold, never the case.
    let (status, seen) = world.call(&officer, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["legal_hold"], true);
    assert!(!seen.to_string().contains("Tòa án"), "{seen}");
    let (status, _) = world
        .call(&officer, "GET", &format!("/api/v1/cases/{held}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The focal point sees it on the case, with the note.
    let read = world.case(&held).await;
    assert_eq!(read["legal_hold"], true);
    assert_eq!(
        read["casework"]["legal_hold"]["reason"],
        "court_proceedings"
    );
    assert_eq!(
        read["casework"]["legal_hold"]["note"],
        "Tòa án tỉnh thụ lý, xét xử tháng 3."
    );
    assert!(
        World::chronology_kinds(&read).contains(&"legal_hold:set:court_proceedings".to_owned())
    );

    // Retention past the date: the held case stays, the other goes.
    let policy = RetentionPolicy::parse("closed_case_content_days = 30").unwrap();
    world.app.clock.advance(chrono::Duration::days(31));
    let mut conn = world.app.db.connect();
    assert_eq!(
        run(
            &mut conn,
            &world.app.state.auditor,
            &world.app.clock,
            &policy
        )
        .unwrap(),
        1
    );
    assert_eq!(world.case(&held).await["pupil"]["name"], "Lê Thị D1");
    let (status, _) = world
        .call(
            &world.focal,
            "GET",
            &format!("/api/v1/cases/{}", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    // A destroyed case cannot be held any more.
    let (status, _) = world
        .call(
            &officer,
            "POST",
            &format!("/api/v1/cases/{}/legal-hold", ids[1]),
            Some(
                json!({"held": true, "reason": "court_proceedings", "note": "Tòa án tỉnh thụ lý."}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);

    // Lifted by an admin, with its reason: the next run destroys it.
    let (status, body) = world
        .call(
            &admin,
            "POST",
            &path,
            Some(json!({"held": false, "reason": "proceedings_concluded", "note": "Bản án đã có hiệu lực."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["legal_hold"], false);
    let audit = world.audit_actions(&held);
    assert!(
        audit.contains(&"case.legal_hold_set".to_owned()),
        "{audit:?}"
    );
    assert!(
        audit.contains(&"case.legal_hold_lifted".to_owned()),
        "{audit:?}"
    );
    assert_eq!(
        run(
            &mut conn,
            &world.app.state.auditor,
            &world.app.clock,
            &policy
        )
        .unwrap(),
        1
    );
    let (status, _) = world
        .call(&world.focal, "GET", &format!("/api/v1/cases/{held}"), None)
        .await;
    assert_eq!(status, StatusCode::GONE);
    // Its sealed notes are gone with the key.
    use caseguard::db::schema::legal_holds;
    let notes: Vec<Option<Vec<u8>>> = legal_holds::table
        .filter(legal_holds::case_id.eq(&held))
        .select(legal_holds::note_enc)
        .load(&mut conn)
        .unwrap();
    assert_eq!(notes, vec![None, None]);
}

/// The browser journey: a focal point asks to close a high-risk case, a
/// second focal point of the school approves it; a district officer finds the
/// case by its reference and sets a legal hold, which the focal point then
/// sees on the case. Screenshots (with the axe check) at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_closure_is_approved_by_a_second_focal_point_and_a_legal_hold_is_set() {
    use crate::browser::{
        browser, choose, chromedriver, fill, shot, sign_in, sign_out, spawn_app, submit, text,
    };
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let second = app.user(Role::FocalPoint, SCHOOL).await;
    let district = app.user(Role::DistrictOfficer, "SX-AL").await;
    let token = app.token(&focal).await;
    let (status, created) = app
        .post_case(&token, "casework-1", &case_body("E1", "high"))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let client = browser(&driver, true).await;

    // The recorder is the case worker; "mine" lists the case.
    sign_in(&app, &client, &focal).await;
    client.goto(&app.url("/?mine=1")).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains("Trường hợp tôi phụ trách"), "{page}");
    assert!(page.contains("Phụ trách: Người dùng thử"), "{page}");
    shot(&client, "casework-01-dashboard-mine").await;
    client
        .goto(&app.url(&format!("/cases/{id}")))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(page.contains("Người phụ trách"), "{page}");
    assert!(page.contains("Đề nghị đóng trường hợp"), "{page}");
    // Closing directly is not offered: the request is.
    let move_options = client
        .find(fantoccini::Locator::Id("to"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    assert!(!move_options.contains("value=\"closed\""), "{move_options}");
    choose(&client, "request-reason", "needs_met").await;
    fill(
        &client,
        "request-note",
        "Kế hoạch hỗ trợ đã hoàn thành, gia đình đồng ý.",
    )
    .await;
    submit(&client, "#closure-request-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã gửi đề nghị đóng"), "{page}");
    assert!(
        page.contains("Đề nghị đóng trường hợp đang chờ phê duyệt"),
        "{page}"
    );
    assert!(page.contains("không thể tự phê duyệt"), "{page}");
    assert!(
        client
            .find(fantoccini::Locator::Id("closure-approve-form"))
            .await
            .is_err(),
        "the requester is offered the approval"
    );
    shot(&client, "casework-02-closure-awaiting-approval").await;
    sign_out(&client).await;

    // The second focal point's dashboard shows what awaits approval.
    sign_in(&app, &client, &second).await;
    let page = text(&client).await;
    assert!(
        page.contains("Đề nghị đóng trường hợp đang chờ phê duyệt"),
        "{page}"
    );
    shot(&client, "casework-02b-dashboard-awaiting-approval").await;

    // The second focal point approves: the case closes.
    client
        .goto(&app.url(&format!("/cases/{id}")))
        .await
        .unwrap();
    shot(&client, "casework-03-closure-to-approve").await;
    fill(&client, "approve-note", "Đồng ý đóng.").await;
    submit(&client, "#closure-approve-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã phê duyệt; trường hợp đã đóng."), "{page}");
    assert!(page.contains("Đã đóng"), "{page}");
    assert!(page.contains("Phê duyệt đóng trường hợp"), "{page}");
    shot(&client, "casework-04-closure-approved").await;
    sign_out(&client).await;

    // The district officer finds the case by its reference and holds it.
    sign_in(&app, &client, &district).await;
    submit(&client, "a[href='/legal-holds']").await;
    fill(&client, "case-reference", "not-a-reference").await;
    submit(&client, "#find-form button[type=submit]").await;
    assert!(
        text(&client)
            .await
            .contains("Mã trường hợp không đúng định dạng"),
        "a wrong reference"
    );
    fill(&client, "case-reference", &id).await;
    submit(&client, "#find-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Không lưu giữ"), "{page}");
    assert!(
        !page.contains("Lê Thị"),
        "the pupil's name on the hold page"
    );
    choose(&client, "hold-reason", "court_proceedings").await;
    fill(&client, "hold-note", "ngắn").await;
    submit(&client, "#hold-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Ghi chú cần có ít nhất 10 ký tự."), "{page}");
    let kept = client
        .find(fantoccini::Locator::Id("hold-note"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("ngắn"), "the typed note is kept");
    shot(&client, "casework-05-legal-hold-refused").await;
    choose(&client, "hold-reason", "court_proceedings").await;
    fill(
        &client,
        "hold-note",
        "Tòa án tỉnh thụ lý, công văn số 12/TA.",
    )
    .await;
    submit(&client, "#hold-form button[type=submit]").await;
    let page = text(&client).await;
    assert!(page.contains("Đã đặt lưu giữ."), "{page}");
    assert!(page.contains("Đang lưu giữ"), "{page}");
    shot(&client, "casework-06-legal-hold-set").await;
    sign_out(&client).await;

    // The focal point sees the hold on the case.
    sign_in(&app, &client, &focal).await;
    client
        .goto(&app.url(&format!("/cases/{id}")))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(page.contains("Đang lưu giữ theo yêu cầu pháp lý"), "{page}");
    assert!(
        page.contains("Vụ việc đang được Tòa án thụ lý, giải quyết"),
        "{page}"
    );
    assert!(page.contains("công văn số 12/TA"), "{page}");
    shot(&client, "casework-07-case-under-legal-hold").await;
    client.close().await.unwrap();
}

/// `caseguard retention legal-hold set|lift`, through the real binary, on
/// the running service's store; the note comes on standard input.
fn hold_command(world: &World, args: &[&str], note: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_caseguard"))
        .args(args)
        .current_dir(world.app.db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CASEGUARD_DATABASE_URL", &world.app.db.url)
        .env("CASEGUARD_DATA_DIR", world.app.db.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(note.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn the_command_line_sets_and_lifts_a_legal_hold(backend: Backend) {
    use crate::helpers::{stderr, stdout};
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world.new_case(&world.focal, "F1", "medium").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let set = ["retention", "legal-hold", "set", "--case", id.as_str()];

    // Bad input: exit 2, the argument named, nothing held.
    let bad = hold_command(
        &world,
        &[&set[..], &["--reason", "because"]].concat(),
        "Công an huyện đề nghị giữ hồ sơ.",
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--reason"), "{}", stderr(&bad));
    let short = hold_command(
        &world,
        &[&set[..], &["--reason", "criminal_investigation"]].concat(),
        "ngắn",
    );
    assert_eq!(short.status.code(), Some(2));
    assert!(stderr(&short).contains("note"), "{}", stderr(&short));
    assert_eq!(world.case(&id).await["legal_hold"], false);

    let held = hold_command(
        &world,
        &[&set[..], &["--reason", "criminal_investigation"]].concat(),
        "Công an huyện đề nghị giữ hồ sơ, công văn 45/CAH.\n",
    );
    assert!(held.status.success(), "{}", stderr(&held));
    assert!(
        stdout(&held).contains("legal hold set"),
        "{}",
        stdout(&held)
    );
    assert!(!stdout(&held).contains("Công an"), "the note is not echoed");
    let read = world.case(&id).await;
    assert_eq!(read["legal_hold"], true);
    assert_eq!(
        read["casework"]["legal_hold"]["note"],
        "Công an huyện đề nghị giữ hồ sơ, công văn 45/CAH."
    );
    assert_eq!(read["casework"]["legal_hold"]["set_by"], "operator");
    let twice = hold_command(
        &world,
        &[&set[..], &["--reason", "criminal_investigation"]].concat(),
        "Công an huyện đề nghị giữ hồ sơ.",
    );
    assert_eq!(twice.status.code(), Some(2));
    assert!(stderr(&twice).contains("already"), "{}", stderr(&twice));

    let lifted = hold_command(
        &world,
        &[
            "retention",
            "legal-hold",
            "lift",
            "--case",
            id.as_str(),
            "--reason",
            "no_longer_required",
        ],
        "Cơ quan điều tra đã trả lời không cần giữ.",
    );
    assert!(lifted.status.success(), "{}", stderr(&lifted));
    assert_eq!(world.case(&id).await["legal_hold"], false);
    let audit = world.audit_actions(&id);
    assert!(
        audit.contains(&"case.legal_hold_set".to_owned()),
        "{audit:?}"
    );
    assert!(
        audit.contains(&"case.legal_hold_lifted".to_owned()),
        "{audit:?}"
    );
}

/// A case-page form as the browser sends it (without JavaScript): the status
/// and the page.
async fn post_form(
    world: &World,
    session: &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form: Vec<(&str, &str)> = vec![("csrf", session.1.as_str())];
    form.extend_from_slice(fields);
    let response = world
        .app
        .client
        .post(world.app.url(path))
        .header("cookie", &session.0)
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn the_case_page_forms_refuse_bad_input_and_the_requesters_own_approval(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let reporter = world.app.user(Role::Reporter, SCHOOL).await;
    let case = world.new_case(&world.focal, "G1", "high").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let mine = world.app.browser_session(&world.focal).await;
    let theirs = world.app.browser_session(&world.second).await;

    let (status, page) = post_form(
        &world,
        &mine,
        &format!("/cases/{id}/assignment"),
        &[
            ("form", "assign"),
            ("version", "1"),
            ("assignee", &reporter.id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Chỉ có thể giao cho một đầu mối đang hoạt động của trường."),
        "{page}"
    );
    assert_eq!(
        world.case(&id).await["assigned_to"],
        world.focal.id.as_str()
    );

    // A request without its note: refused, the reason chosen is kept.
    let (status, page) = post_form(
        &world,
        &mine,
        &format!("/cases/{id}/closure-request"),
        &[
            ("form", "closure-request"),
            ("version", "1"),
            ("closure_reason", "pupil_left_school"),
            ("note", "  "),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Khi đóng trường hợp cần chọn lý do và ghi chú."),
        "{page}"
    );
    assert!(
        page.contains(r#"<option value="pupil_left_school" selected>"#),
        "the chosen reason is kept"
    );
    assert!(world.case(&id).await["casework"]["closure_request"].is_null());

    let (status, _) = post_form(
        &world,
        &mine,
        &format!("/cases/{id}/closure-request"),
        &[
            ("form", "closure-request"),
            ("version", "1"),
            ("closure_reason", "pupil_left_school"),
            ("note", "Em đã chuyển trường, hồ sơ đã gửi trường mới."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let request_id = world.case(&id).await["casework"]["closure_request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Hostile: the requester approves through the form anyway.
    let (status, page) = post_form(
        &world,
        &mine,
        &format!("/cases/{id}/closure-request/approve"),
        &[
            ("form", "closure-decide"),
            ("version", "1"),
            ("request_id", &request_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Người gửi đề nghị không thể tự phê duyệt"),
        "{page}"
    );
    assert_eq!(world.case(&id).await["status"], "reported");
    // Returning without a reason.
    let (status, page) = post_form(
        &world,
        &theirs,
        &format!("/cases/{id}/closure-request/return"),
        &[
            ("form", "closure-decide"),
            ("version", "1"),
            ("request_id", &request_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Khi trả lại cần ghi rõ lý do."), "{page}");
    let (status, _) = post_form(
        &world,
        &theirs,
        &format!("/cases/{id}/closure-request/approve"),
        &[
            ("form", "closure-decide"),
            ("version", "1"),
            ("request_id", &request_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(world.case(&id).await["status"], "closed");
}
