//! Case-work (issue 16): reminders. API tests on both stores, hostile cases, the
//! browser journey.

use caseguard::domain::user::Role;
use caseguard::notify::outbox::OutboxRow;
use caseguard::referrals::reminders::{self, PassReport};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser};

on_both_backends!(
    reminders_go_once_at_each_point_to_those_responsible_and_stop_with_the_clock,
    a_scheduler_that_was_away_sends_the_latest_point_only,
    two_schedulers_racing_send_each_reminder_once,
    break_glass_is_told_and_its_reason_read_by_the_school_and_the_auditors,
    the_break_glass_limit_and_the_reminder_points_are_policy_data,
);

const SCHOOL: &str = "SX-AL-AB-TH";
const AGENCY: &str = "SX-AL-BTXH";

/// A pupil of 12 at high risk: emergency assessment within 12 h, a support
/// plan within 5 working days, the statutory report to social protection
/// within 2 h (policies/referral-protocol.toml).
fn case_body(marker: &str) -> Value {
    json!({
        "risk_level": "high",
        "pupil": {
            "name": format!("Lê Thị {marker}Name"),
            "date_of_birth": "2014-04-04",
            "sex": "female",
            "class": format!("6B-{marker}Class"),
            "disability": false,
            "guardian": format!("Bố {marker}Guardian"),
            "contact": format!("0987-{marker}Contact")
        },
        "incident": {
            "type": "physical_assault",
            "contexts": ["on_premises"],
            "date": "2026-10-31",
            "location_type": "school_premises",
            "perpetrator_relation": "peer_pupil",
            "narrative": format!("Em kể {marker}Narrative ở sân trường.")
        }
    })
}

pub(crate) struct World {
    pub app: TestApp,
    pub focal: TestUser,
}

impl World {
    pub async fn new(backend: Backend) -> Option<Self> {
        // The outbox is inspected, not sent.
        let app = TestApp::spawn_configured(backend, None, &[("outbox_poll_seconds", json!(0))])
            .await?
            .with_demo_orgs()
            .await;
        let focal = app.user(Role::FocalPoint, SCHOOL).await;
        Some(Self { app, focal })
    }

    pub async fn call(
        &self,
        user: &TestUser,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.app.call_as(user, method, path, body).await
    }

    pub async fn new_case(&self, marker: &str) -> String {
        let (status, body) = self
            .call(
                &self.focal,
                "POST",
                "/api/v1/cases",
                Some(case_body(marker)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn remind(&self) -> PassReport {
        let state = self.app.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            reminders::pass(&mut conn, &state.case_context(), 50).unwrap()
        })
        .await
        .unwrap()
    }

    /// The reminders in the outbox.
    pub async fn reminders(&self) -> Vec<OutboxRow> {
        let state = self.app.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::notify::outbox::all(&mut conn)
                .unwrap()
                .into_iter()
                .filter(|m| m.template == "deadline_reminder")
                .collect()
        })
        .await
        .unwrap()
    }

    /// The id of the case's clock of `kind`.
    pub async fn deadline(&self, case: &str, kind: &str) -> String {
        let (status, view) = self
            .call(&self.focal, "GET", &format!("/api/v1/cases/{case}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        view["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} clock in {}", view["deadlines"]))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A page's HTML as `user` sees it.
    pub async fn page(&self, user: &TestUser, path: &str) -> String {
        let (cookie, _) = self.app.browser_session(user).await;
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }
}

fn keys(rows: &[OutboxRow]) -> Vec<String> {
    let mut keys: Vec<String> = rows.iter().map(|m| m.idempotency_key.clone()).collect();
    keys.sort();
    keys
}

/// The "due soon" section of the dashboard.
fn due_soon_section(html: &str) -> &str {
    let start = html.find("id=\"due-soon\"").expect("a due-soon section");
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap()]
}

async fn reminders_go_once_at_each_point_to_those_responsible_and_stop_with_the_clock(
    backend: Backend,
) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let officer = world.app.user(Role::AgencyOfficer, AGENCY).await;
    let case = world.new_case("R1").await;
    let send = world.deadline(&case, "send").await;
    let assessed = world.deadline(&case, "assessed").await;
    let focal = &world.focal.id;

    assert_eq!(world.remind().await.sent, 0, "no point has come yet");
    let html = world.page(&world.focal, "/").await;
    assert!(
        !due_soon_section(&html).contains(&format!("/cases/{case}\"")),
        "nothing is due soon at the start"
    );

    // Half-way through the 2 h report clock; its "2 h before" point fell
    // at the start and does not exist for it.
    world.app.clock.advance(Duration::hours(1));
    assert_eq!(world.remind().await.sent, 1);
    assert_eq!(world.remind().await.sent, 0, "once per clock and point");
    let sent = world.reminders().await;
    assert_eq!(keys(&sent), [format!("reminder:{send}:elapsed_50:{focal}")]);
    assert_eq!(sent[0].recipient, world.focal.email);
    let params: Value = serde_json::from_str(&sent[0].params).unwrap();
    assert!(
        params["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/cases/{case}")),
        "{params}"
    );
    // Content-free: a link, the deadline, an opaque reference.
    let mut names: Vec<&String> = params.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["deadline", "link", "reference"]);
    assert!(!format!("{sent:?}").contains("R1"), "{sent:?}");
    // The dashboard shows the report as due soon, with the time left.
    let html = world.page(&world.focal, "/").await;
    let soon = due_soon_section(&html);
    assert!(soon.contains(&format!("/cases/{case}\"")), "{soon}");
    // The time left, under an hour (signing in moves the test clock a little).
    assert!(under_an_hour(soon), "{soon}");

    // The report goes out: its clock stops, the agency's starts (12 h).
    let (status, referral) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{case}/referrals"),
            Some(json!({"agency_id": world.app.org_id(AGENCY).await})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{referral}");
    let referral_id = referral["id"].as_str().unwrap().to_owned();
    let acknowledge = world.deadline(&case, "acknowledge").await;

    // 6 h: half-way through the emergency assessment.
    world.app.clock.advance(Duration::hours(5));
    assert_eq!(world.remind().await.sent, 1);
    // 7 h: half-way through the agency's clock: to the agency.
    world.app.clock.advance(Duration::hours(1));
    assert_eq!(world.remind().await.sent, 1);
    let to_agency: Vec<OutboxRow> = world
        .reminders()
        .await
        .into_iter()
        .filter(|m| m.recipient == officer.email)
        .collect();
    assert_eq!(
        keys(&to_agency),
        [format!("reminder:{acknowledge}:elapsed_50:{}", officer.id)]
    );
    let params: Value = serde_json::from_str(&to_agency[0].params).unwrap();
    assert!(
        params["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/referrals/{referral_id}")),
        "{params}"
    );
    let inbox = world.page(&officer, "/referrals").await;
    assert!(inbox.contains("card due-soon"), "{inbox}");

    // The agency acknowledges: its clock stops and sends nothing more.
    let (status, answered) = world
        .call(
            &officer,
            "POST",
            &format!("/api/v1/referrals/{referral_id}/answers"),
            Some(json!({"to": "acknowledged", "version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    let inbox = world.page(&officer, "/referrals").await;
    assert!(!inbox.contains("card due-soon"), "{inbox}");
    world.app.clock.advance(Duration::hours(4));
    // 11 h: the assessment's "2 h before" point only.
    assert_eq!(world.remind().await.sent, 1);
    assert_eq!(keys(&world.reminders().await), {
        let mut expected = vec![
            format!("reminder:{send}:elapsed_50:{focal}"),
            format!("reminder:{assessed}:elapsed_50:{focal}"),
            format!("reminder:{assessed}:hours_2:{focal}"),
            format!("reminder:{acknowledge}:elapsed_50:{}", officer.id),
        ];
        expected.sort();
        expected
    });

    // Assessed: the clock stops, the case leaves "due soon".
    let (status, moved) = world
        .call(
            &world.focal,
            "POST",
            &format!("/api/v1/cases/{case}/transitions"),
            Some(json!({"to": "assessing", "version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let html = world.page(&world.focal, "/").await;
    assert!(
        !due_soon_section(&html).contains(&format!("/cases/{case}\"")),
        "{}",
        due_soon_section(&html)
    );
    assert_eq!(world.remind().await.sent, 0);
}

async fn a_scheduler_that_was_away_sends_the_latest_point_only(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let case = world.new_case("R2").await;
    let assessed = world.deadline(&case, "assessed").await;
    // Away for 11 h: the 12 h clock's half-way and 2-h-before points have
    // both come; the 2 h report clock is past due (escalation's business).
    world.app.clock.advance(Duration::hours(11));
    let report = world.remind().await;
    assert_eq!((report.sent, report.skipped), (1, 1), "{report:?}");
    assert_eq!(
        keys(&world.reminders().await),
        [format!("reminder:{assessed}:hours_2:{}", world.focal.id)]
    );
    // The skipped point is never sent late.
    let report = world.remind().await;
    assert_eq!((report.sent, report.skipped), (0, 0), "{report:?}");
    assert_eq!(world.reminders().await.len(), 1);
}

async fn two_schedulers_racing_send_each_reminder_once(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let second_focal = world.app.user(Role::FocalPoint, SCHOOL).await;
    let cases = 6;
    for i in 0..cases {
        world.new_case(&format!("X{i}")).await;
    }
    // Half-way through every case's 2 h report clock.
    world.app.clock.advance(Duration::hours(1));
    let connections: Vec<_> = (0..2).map(|_| world.app.db.connect()).collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let passes: Vec<_> = connections
        .into_iter()
        .map(|mut conn| {
            let state = world.app.state.clone();
            let barrier = barrier.clone();
            // A connection of its own, as another replica would have.
            std::thread::spawn(move || {
                barrier.wait();
                reminders::pass(&mut conn, &state.case_context(), 2).unwrap()
            })
        })
        .collect();
    let sent: usize = passes.into_iter().map(|p| p.join().unwrap().sent).sum();
    assert_eq!(sent, cases, "one reminder per clock, not one per scheduler");
    let rows = world.reminders().await;
    // Each of the two focal points once per clock.
    assert_eq!(rows.len(), cases * 2, "{:?}", keys(&rows));
    assert_eq!(
        rows.iter()
            .filter(|m| m.recipient == second_focal.email)
            .count(),
        cases
    );
    let mut unique = keys(&rows);
    unique.dedup();
    assert_eq!(unique.len(), rows.len());
    assert_eq!(world.remind().await.sent, 0);
}

const REASON: &str = "Trường không phản hồi quá hạn, cần kiểm tra an toàn của em ngay (BGcanary).";

async fn break_glass_is_told_and_its_reason_read_by_the_school_and_the_auditors(backend: Backend) {
    let Some(world) = World::new(backend).await else {
        return;
    };
    let officer = world.app.user(Role::DistrictOfficer, "SX-AL").await;
    let auditor = world.app.user(Role::Auditor, "SX-AL").await;
    let province_auditor = world.app.user(Role::Auditor, "SX").await;
    let sibling = world.app.user(Role::FocalPoint, "SX-AL-AB-MN").await;
    let case = world.new_case("G1").await;
    let grants_path = format!("/api/v1/cases/{case}/break-glass");

    // Nothing to review yet, and nothing is told.
    let (status, none) = world.call(&world.focal, "GET", &grants_path, None).await;
    assert_eq!(
        (status, none.clone()),
        (StatusCode::OK, json!([])),
        "{none}"
    );

    let token = world.app.token(&officer).await;
    let opened_at = world.app.state.clock.now();
    let response = world
        .app
        .client
        .post(world.app.url(&grants_path))
        .bearer_auth(token)
        .json(&json!({"reason": REASON}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let grant: Value = response.json().await.unwrap();
    // The time limit is the protocol's ([break_glass] hours = 2).
    let expires = chrono::DateTime::parse_from_rfc3339(grant["expires_at"].as_str().unwrap())
        .unwrap()
        .to_utc();
    assert_eq!(expires, opened_at + Duration::hours(2));

    // Told, content-free: the school's focal point and the area's auditor,
    // not a sibling school nor the province above.
    let state = world.app.state.clone();
    let told: Vec<OutboxRow> = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::notify::outbox::all(&mut conn)
            .unwrap()
            .into_iter()
            .filter(|m| m.template == "break_glass_opened")
            .collect()
    })
    .await
    .unwrap();
    let mut recipients: Vec<&str> = told.iter().map(|m| m.recipient.as_str()).collect();
    recipients.sort_unstable();
    let mut expected = vec![world.focal.email.as_str(), auditor.email.as_str()];
    expected.sort_unstable();
    assert_eq!(recipients, expected);
    for message in &told {
        let params: Value = serde_json::from_str(&message.params).unwrap();
        let link = params["link"].as_str().unwrap();
        if message.recipient == world.focal.email {
            assert!(
                link.ends_with(&format!("/cases/{case}#break-glass")),
                "{link}"
            );
        } else {
            assert!(link.ends_with("/audit/break-glass"), "{link}");
        }
    }
    assert!(!format!("{told:?}").contains("BGcanary"), "{told:?}");
    assert!(!format!("{told:?}").contains("G1"), "{told:?}");

    // The focal point reads officer, time, expiry and reason.
    let (status, grants) = world.call(&world.focal, "GET", &grants_path, None).await;
    assert_eq!(status, StatusCode::OK, "{grants}");
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants[0]["reason"], REASON);
    assert_eq!(grants[0]["officer"]["id"], officer.id.as_str());
    assert_eq!(grants[0]["expires_at"], grant["expires_at"]);
    assert_eq!(grants[0]["case_id"], case.as_str());
    // So do the auditors of the area and above, through the API.
    for who in [&auditor, &province_auditor] {
        let (status, listed) = world.call(who, "GET", "/api/v1/break-glass", None).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["reason"], REASON);
    }
    // Outside their reach, or without the role, it is not there.
    for (who, path) in [
        (&sibling, grants_path.as_str()),
        (&officer, grants_path.as_str()),
        (&officer, "/api/v1/break-glass"),
    ] {
        let (status, body) = world.call(who, "GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.to_string().contains("BGcanary"));
    }
    let (status, _) = world
        .call(
            &auditor,
            "GET",
            &format!(
                "/api/v1/break-glass?org_id={}",
                world.app.org_id("SX").await
            ),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "above the auditor's own area"
    );

    // The case page shows the grant to the focal point.
    let html = world.page(&world.focal, &format!("/cases/{case}")).await;
    let section = &html[html
        .find("id=\"break-glass\"")
        .expect("a break-glass section")..];
    assert!(section.contains("BGcanary"), "{section}");

    // Each read is audited, without the reason.
    let entries = world
        .app
        .state
        .db
        .read(|c| Ok(caseguard::db::audit::latest(c, None, 500)?))
        .await
        .unwrap();
    let reviewed = entries
        .iter()
        .filter(|e| e.action == "authz.break_glass_reviewed")
        .count();
    assert_eq!(reviewed, 4, "focal point, two auditors, the case page");
    assert!(entries.iter().all(|e| !e.details.contains("BGcanary")));
}

/// The browser journey: the focal point sees a clock as due soon on the
/// dashboard; after a district officer breaks glass, the focal point reads
/// the reason on the case page and the auditor on the review page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_a_reminder_is_due_soon_and_a_break_glass_reason_is_read() {
    use crate::browser::{
        browser, chromedriver, fill, shot, sign_in, sign_out, spawn_app, submit, text,
    };
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let district = app.user(Role::DistrictOfficer, "SX-AL").await;
    let auditor = app.user(Role::Auditor, "SX-AL").await;
    let token = app.token(&focal).await;
    let (status, created) = app
        .post_case(&token, "browser-reminder-1", &case_body("B1"))
        .await;
    assert_eq!(status, 201, "{created}");
    let case = created["id"].as_str().unwrap().to_owned();

    // Half-way through the 2 h report clock: reminded, and due soon.
    app.clock.advance(Duration::hours(1));
    let state = app.state.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        reminders::pass(&mut conn, &state.case_context(), 50).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let client = browser(&driver, true).await;
    sign_in(&app, &client, &focal).await;
    let due_soon = client
        .find(fantoccini::Locator::Css("#due-soon"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        due_soon.contains("Sắp đến hạn") && under_an_hour(&due_soon),
        "{due_soon}"
    );
    assert!(
        client
            .find(fantoccini::Locator::Css(&format!(
                "#due-soon a[href='/cases/{case}']"
            )))
            .await
            .is_ok(),
        "the case is linked from the due-soon list"
    );
    shot(&client, "reminders-01-due-soon").await;
    sign_out(&client).await;

    // A district officer opens the case with a written reason.
    sign_in(&app, &client, &district).await;
    client
        .goto(&app.url(&format!("/cases/{case}/break-glass")))
        .await
        .unwrap();
    fill(&client, "reason", REASON).await;
    submit(&client, "form[action$='/break-glass'] button").await;
    assert!(text(&client).await.contains("Lê Thị B1Name"));
    sign_out(&client).await;

    // The focal point reads who, when, until when and why on the case page.
    sign_in(&app, &client, &focal).await;
    client
        .goto(&app.url(&format!("/cases/{case}")))
        .await
        .unwrap();
    let section = client
        .find(fantoccini::Locator::Css("#break-glass"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        section.contains("Các lần truy cập khẩn cấp")
            && section.contains("BGcanary")
            && section.contains("Đang còn hiệu lực"),
        "{section}"
    );
    client
        .execute(
            "document.getElementById('break-glass').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    shot(&client, "reminders-02-break-glass-on-the-case").await;
    sign_out(&client).await;

    // The area's auditor, from the audit page.
    sign_in(&app, &client, &auditor).await;
    client.goto(&app.url("/audit")).await.unwrap();
    submit(&client, "#break-glass-review").await;
    let page = text(&client).await;
    assert!(
        page.contains("Truy cập khẩn cấp cần kiểm tra") && page.contains("BGcanary"),
        "{page}"
    );
    shot(&client, "reminders-03-break-glass-review").await;
    sign_out(&client).await;
    client.close().await.unwrap();
}

/// The shipped policies, copied to `dir`, with `edit` applied to the protocol.
fn policies_with(dir: &std::path::Path, edit: impl Fn(String) -> String) {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "referral-protocol.toml" {
            text = edit(text);
        }
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
}

async fn the_break_glass_limit_and_the_reminder_points_are_policy_data(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    policies_with(dir.path(), |text| {
        let text = text.replace("hours = 2 # break-glass", "hours = 5");
        assert!(text.contains("hours = 5"));
        text.replace(
            "hours = [{ elapsed_percent = 50 }, { hours_before = 2 }]",
            "hours = [{ elapsed_percent = 25 }]",
        )
    });
    let Some(app) = TestApp::spawn_configured(
        backend,
        None,
        &[
            ("outbox_poll_seconds", json!(0)),
            ("policy_dir", json!(dir.path())),
        ],
    )
    .await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let world = World { app, focal };
    let case = world.new_case("P1").await;
    let send = world.deadline(&case, "send").await;

    // A quarter of the 2 h report clock: 30 minutes, the only point.
    world.app.clock.advance(Duration::minutes(29));
    assert_eq!(world.remind().await.sent, 0);
    world.app.clock.advance(Duration::minutes(1));
    assert_eq!(world.remind().await.sent, 1);
    world.app.clock.advance(Duration::minutes(60));
    assert_eq!(world.remind().await.sent, 0, "no half-way point any more");
    assert_eq!(
        keys(&world.reminders().await),
        [format!("reminder:{send}:elapsed_25:{}", world.focal.id)]
    );

    // Break-glass lasts the protocol's 5 hours, and the form says so.
    let officer = world.app.user(Role::DistrictOfficer, "SX-AL").await;
    let token = world.app.token(&officer).await;
    let opened_at = world.app.state.clock.now();
    let response = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/cases/{case}/break-glass")))
        .bearer_auth(token)
        .json(&json!({"reason": REASON}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let grant: Value = response.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(grant["expires_at"].as_str().unwrap())
        .unwrap()
        .to_utc();
    assert_eq!(expires, opened_at + Duration::hours(5));
    let form = world
        .page(&officer, &format!("/cases/{case}/break-glass"))
        .await;
    assert!(form.contains("trong 5 giờ"), "{form}");
}

/// Two application instances (replicas) on one PostgreSQL database, their
/// schedulers racing: each reminder is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_send_each_reminder_once() {
    let Some(world) = World::new(Backend::Postgres).await else {
        return;
    };
    // The replica starts first: its own scheduler's first tick (at start,
    // the next a minute later) finds nothing to do before the cases exist.
    let replica = TestApp::spawn_on(
        crate::helpers::TestDb::external(Backend::Postgres, world.app.db.url.clone()),
        None,
        &[
            ("outbox_poll_seconds", json!(0)),
            // The same keyring, as replicas share it.
            ("keyring", json!(world.app.db.data_dir().join("keyring"))),
        ],
    )
    .await;
    let cases = 8;
    for i in 0..cases {
        world.new_case(&format!("Y{i}")).await;
    }
    world.app.clock.advance(Duration::hours(1));
    replica.clock.set(world.app.state.clock.now());
    let passes: Vec<_> = [world.app.state.clone(), replica.state.clone()]
        .into_iter()
        .map(|state| {
            std::thread::spawn(move || {
                let mut conn = state.db.get().unwrap();
                reminders::pass(&mut conn, &state.case_context(), 3).unwrap()
            })
        })
        .collect();
    let reports: Vec<PassReport> = passes.into_iter().map(|p| p.join().unwrap()).collect();
    let sent: usize = reports.iter().map(|r| r.sent).sum();
    assert_eq!(sent, cases, "{reports:?}");
    let rows = world.reminders().await;
    let state = world.app.state.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        use caseguard::db::schema::deadline_reminders;
        use diesel::prelude::*;
        let mut conn = state.db.get().unwrap();
        deadline_reminders::table
            .select((
                deadline_reminders::point,
                deadline_reminders::outcome,
                deadline_reminders::recipients,
            ))
            .load::<(String, String, i32)>(&mut *conn)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), cases, "sent {sent}, recorded {recorded:?}");
    let mut unique = keys(&rows);
    unique.dedup();
    assert_eq!(unique.len(), cases);
}

/// Whether `text` states a time left of minutes only ("còn 59 phút"), as
/// the pages write less than an hour.
fn under_an_hour(text: &str) -> bool {
    text.split("còn ").skip(1).any(|rest| {
        let minutes: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !minutes.is_empty() && rest[minutes.len()..].starts_with(" phút")
    })
}
