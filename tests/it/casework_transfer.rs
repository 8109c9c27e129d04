//! Case-work (issue 16): transfer. API tests on both stores, hostile cases, the
//! browser journey.
//!
//! A case of SX-AL-AB-TH (area SX-AL-AB) goes to SX-AL-PM-TH (area SX-AL-PM):
//! the whole journey, refusal and cancelling, every refused start, the old
//! school locked out (its key binding no longer opens the data key), the
//! statistics unchanged, and the transfer's clock escalating.

use caseguard::crypto::envelope::{DataKey, KeyBinding};
use caseguard::crypto::sealed::Binding;
use caseguard::domain::user::Role;
use caseguard::stats::query;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, marked_case};

const FROM: &str = "SX-AL-AB-TH";
const TO: &str = "SX-AL-PM-TH";
const REASON: &str = "Gia đình chuyển nhà về xã Phú Mỹ; em học ở trường mới từ thứ Hai.";

on_both_backends!(
    transfer_whole_journey,
    transfer_refused_or_cancelled_leaves_the_case,
    transfer_hostile_starts_are_refused,
    transfer_answered_only_by_the_receiving_school,
    transfer_keeps_statistics_where_recorded,
    transfer_clock_escalates,
    transfer_open_keeps_the_case_from_closing,
);

struct World {
    app: TestApp,
    sender: TestUser,
    receiver: TestUser,
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        let app = TestApp::spawn(backend).await?.with_demo_orgs().await;
        let sender = app.user(Role::FocalPoint, FROM).await;
        let receiver = app.user(Role::FocalPoint, TO).await;
        Some(Self {
            app,
            sender,
            receiver,
        })
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

    async fn new_case(&self, marker: &str) -> String {
        let (status, body) = self
            .call(
                &self.sender,
                "POST",
                "/api/v1/cases",
                Some(marked_case(marker, 3)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn start(
        &self,
        by: &TestUser,
        case: &str,
        to: &str,
        reason: &str,
    ) -> (StatusCode, Value) {
        self.call(
            by,
            "POST",
            &format!("/api/v1/cases/{case}/transfers"),
            Some(json!({"to_school_id": to, "reason": reason})),
        )
        .await
    }

    /// Starts a transfer that must start; its id.
    async fn started(&self, case: &str, to: &str) -> String {
        let (status, body) = self.start(&self.sender, case, to, REASON).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .get_result::<Count>(&mut self.app.db.connect())
            .unwrap()
            .n
    }
}

async fn transfer_whole_journey(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let from = w.app.org_id(FROM).await;
    let case = w.new_case("chuyen-truong").await;
    // An open referral travels with the case.
    let police = w.app.org_id("SX-AL-CA").await;
    let (status, referral) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/cases/{case}/referrals"),
            Some(json!({"agency_id": police})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{referral}");

    let (status, started) = w.start(&w.sender, &case, &to, REASON).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["status"], "pending");
    let id = started["id"].as_str().unwrap().to_owned();

    // The receiving focal points are told, without content.
    let notices = w.count(&format!(
        "SELECT COUNT(*) AS n FROM outbox WHERE template = 'transfer_received' AND params LIKE '%/transfers/{id}%'"
    ));
    assert_eq!(notices, 1);
    let leaked = w.count(
        "SELECT COUNT(*) AS n FROM outbox WHERE params LIKE '%chuyen-truong%' OR params LIKE '%Phú Mỹ%'",
    );
    assert_eq!(leaked, 0);

    // Before accepting, the receiver sees the pending transfer and nothing more.
    let (status, list) = w
        .call(&w.receiver, "GET", "/api/v1/transfers/incoming", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let item = &list.as_array().unwrap()[0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["status"], "pending");
    assert_eq!(item["risk_level"], "medium");
    assert_eq!(item["incident_types"], json!(["sexual_assault"]));
    assert_eq!(
        item["case_reference"],
        caseguard::domain::case_ref::case_reference(&case).as_str()
    );
    assert!(item.get("reason").is_none(), "{item}");
    assert!(!list.to_string().contains("chuyen-truong"));
    let (status, _) = w
        .call(&w.receiver, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Opening it shows the reason and marks it viewed; the sender sees that.
    let (status, opened) = w
        .call(&w.receiver, "GET", &format!("/api/v1/transfers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["reason"], REASON);
    assert_eq!(opened["status"], "viewed");
    assert!(!opened.to_string().contains("chuyen-truong"));
    let (_, outgoing) = w
        .call(&w.sender, "GET", "/api/v1/transfers/outgoing", None)
        .await;
    assert_eq!(outgoing[0]["status"], "viewed");
    assert_eq!(outgoing[0]["case_id"], case.as_str());

    // Accepting moves the case.
    let (status, accepted) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["case"]["version"], 2);
    // The sender's focal point is told, without content.
    let told = w.count(&format!(
        "SELECT COUNT(*) AS n FROM outbox WHERE template = 'transfer_update' AND recipient = '{}'",
        w.sender.email
    ));
    assert_eq!(told, 1);
    let (status, read) = w
        .call(&w.receiver, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(
        read["pupil"]["name"]
            .as_str()
            .unwrap()
            .contains("chuyen-truong")
    );
    let (status, transfers) = w
        .call(
            &w.receiver,
            "GET",
            &format!("/api/v1/cases/{case}/transfers"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(transfers[0]["reason"], REASON);
    assert_eq!(transfers[0]["from_school_id"], from.as_str());

    // The old school reaches nothing any more.
    for path in [
        format!("/api/v1/cases/{case}"),
        format!("/api/v1/cases/{case}/transfers"),
    ] {
        let (status, _) = w.call(&w.sender, "GET", &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/transfers/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, outgoing) = w
        .call(&w.sender, "GET", "/api/v1/transfers/outgoing", None)
        .await;
    assert_eq!(outgoing[0]["status"], "accepted");
    let (_, incoming) = w
        .call(&w.receiver, "GET", "/api/v1/transfers/incoming", None)
        .await;
    assert_eq!(incoming, json!([]));

    // The referral, clocks and key moved; the referral counts where it was sent.
    let moved = w.count(&format!(
        "SELECT COUNT(*) AS n FROM referrals WHERE case_id = '{case}' AND school_id = '{to}' AND recorded_school_id = '{from}'"
    ));
    assert_eq!(moved, 1);
    let left = w.count(&format!(
        "SELECT COUNT(*) AS n FROM deadlines WHERE case_id = '{case}' AND school_id <> '{to}'"
    ));
    assert_eq!(left, 0);
    assert_eq!(read["referrals"][0]["id"], referral["id"]);
    // The sender's school no longer manages the referral; the new one does.
    let withdraw =
        json!({"version": referral["version"], "reason": "Trường mới tiếp tục phối hợp."});
    let path = format!(
        "/api/v1/referrals/{}/withdraw",
        referral["id"].as_str().unwrap()
    );
    let (status, _) = w
        .call(&w.sender, "POST", &path, Some(withdraw.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = w.call(&w.receiver, "POST", &path, Some(withdraw)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The data key opens only bound to the new school.
    let (wrapped, bound, name_enc): (Vec<u8>, Option<String>, Vec<u8>) = {
        use caseguard::db::schema::{case_keys, pupils};
        let mut conn = w.app.db.connect();
        let (wrapped, bound) = case_keys::table
            .find(&case)
            .select((case_keys::wrapped_dek, case_keys::bound_school_id))
            .first(&mut conn)
            .unwrap();
        let name = pupils::table
            .find(&case)
            .select(pupils::name_enc)
            .first(&mut conn)
            .unwrap();
        (wrapped, bound, name)
    };
    assert_eq!(bound.as_deref(), Some(to.as_str()));
    let keyring = w.app.state.keyring.current();
    for old in [KeyBinding::Case, KeyBinding::School(&from)] {
        assert!(DataKey::unwrap_bound(&keyring, &case, old, &wrapped).is_err());
    }
    let dek = DataKey::unwrap_bound(&keyring, &case, KeyBinding::School(&to), &wrapped).unwrap();
    let name = dek
        .open_text(
            &Binding {
                table: "pupils",
                column: "name_enc",
                row_id: &case,
                case_id: &case,
            },
            &name_enc,
        )
        .unwrap();
    assert!(name.expose().contains("chuyen-truong"));

    // Every step is in the chronology and the audit log.
    let steps = w.count(&format!(
        "SELECT COUNT(*) AS n FROM chronology WHERE case_id = '{case}' AND kind IN ('transfer:requested', 'transfer:viewed', 'transfer:accepted')"
    ));
    assert_eq!(steps, 3);
    let audited = w.count(&format!(
        "SELECT COUNT(*) AS n FROM audit_log WHERE target_id = '{case}' AND action IN ('case.transfer_requested', 'case.transfer_viewed', 'case.transfer_accepted')"
    ));
    assert_eq!(audited, 3);
    let reason_in_audit =
        w.count("SELECT COUNT(*) AS n FROM audit_log WHERE details LIKE '%Phú Mỹ%'");
    assert_eq!(reason_in_audit, 0);

    // A case accepted at the new school can go on (another transfer, back).
    let (status, again) = w.start(&w.receiver, &case, &from, REASON).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
}

async fn transfer_refused_or_cancelled_leaves_the_case(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let case = w.new_case("o-lai").await;
    let id = w.started(&case, &to).await;

    let (status, body) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/refuse"),
            Some(json!({"reason": "ngắn"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_transfer");
    let refusal = "Học sinh chưa nộp hồ sơ nhập học tại trường chúng tôi.";
    let (status, refused) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/refuse"),
            Some(json!({"reason": refusal})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["status"], "refused");
    let (status, again) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["error"]["code"], "transfer_not_open");

    // The case stays, readable by the sender, who reads the refusal.
    let (status, transfers) = w
        .call(
            &w.sender,
            "GET",
            &format!("/api/v1/cases/{case}/transfers"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(transfers[0]["status"], "refused");
    assert_eq!(transfers[0]["answer"], refusal);
    let (status, read) = w
        .call(&w.sender, "GET", &format!("/api/v1/cases/{case}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["version"], 1);

    // A new transfer may start; the sender cancels it while pending.
    let (status, second) = w.start(&w.sender, &case, &to, REASON).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    let (status, cancelled) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/transfers/{second}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{second}/accept"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, incoming) = w
        .call(&w.receiver, "GET", "/api/v1/transfers/incoming", None)
        .await;
    assert_eq!(incoming, json!([]));
    let open_clocks = w.count(&format!(
        "SELECT COUNT(*) AS n FROM deadlines WHERE case_id = '{case}' AND kind = 'transfer' AND met_at IS NULL"
    ));
    assert_eq!(open_clocks, 0);
    let school = w.count(&format!(
        "SELECT COUNT(*) AS n FROM cases WHERE id = '{case}' AND school_id = '{}' AND recorded_school_id IS NULL",
        w.app.org_id(FROM).await
    ));
    assert_eq!(school, 1);
}

/// A second tree: a root area of its own with one school.
const OTHER_TREE: &str = "kind,code,name,parent,level,agency_type\n\
area,HN,Thành phố Hà Nội (demo),,province,\n\
area,HN-BD,Phường Ba Đình (demo),HN,commune,\n\
school,HN-BD-TH,Trường Tiểu học Ba Đình (demo),HN-BD,primary,\n";

async fn transfer_hostile_starts_are_refused(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    {
        let mut conn = w.app.db.connect();
        let rows = caseguard::orgs::import::parse_csv(OTHER_TREE).unwrap();
        caseguard::orgs::import::import(&mut conn, &rows, &w.app.clock).unwrap();
    }
    let case = w.new_case("ke-xau").await;
    let to = w.app.org_id(TO).await;
    let expect = [
        (
            w.app.org_id("SX-AL-PM").await,
            "transfer_target_not_a_school",
        ),
        (
            w.app.org_id("SX-AL-CA").await,
            "transfer_target_not_a_school",
        ),
        (w.app.org_id(FROM).await, "transfer_same_school"),
        (w.app.org_id("HN-BD-TH").await, "transfer_target_unknown"),
        (uuid::Uuid::now_v7().to_string(), "transfer_target_unknown"),
        ("not a school id!".to_owned(), "invalid_transfer"),
    ];
    for (target, code) in &expect {
        let (status, body) = w.start(&w.sender, &case, target, REASON).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {body}");
        assert_eq!(body["error"]["code"], *code, "{body}");
    }
    let (status, body) = w.start(&w.sender, &case, &to, "ngắn").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reason")
    );

    // Not a focal point of the case's school: not there.
    let foreign = w.app.user(Role::FocalPoint, "SX-AL-PM-THCS").await;
    let reporter = w.app.user(Role::Reporter, FROM).await;
    let officer = w.app.user(Role::DistrictOfficer, "SX-AL").await;
    for user in [&foreign, &reporter, &officer, &w.receiver] {
        let (status, _) = w.start(user, &case, &to, REASON).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = w
        .start(&w.sender, &uuid::Uuid::now_v7().to_string(), &to, REASON)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.count("SELECT COUNT(*) AS n FROM case_transfers"), 0);
    assert_eq!(
        w.count("SELECT COUNT(*) AS n FROM outbox WHERE template = 'transfer_received'"),
        0
    );

    // Already in transfer.
    let (status, _) = w.start(&w.sender, &case, &to, REASON).await;
    assert_eq!(status, StatusCode::CREATED);
    let other = w.app.org_id("SX-AL-PM-THCS").await;
    let (status, body) = w.start(&w.sender, &case, &other, REASON).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "transfer_already_open");

    // Closed.
    let closed = w.new_case("da-dong").await;
    let (status, body) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/cases/{closed}/transitions"),
            Some(json!({"to": "closed", "version": 1, "closure_reason": "pupil_left_school", "note": "Em đã chuyển đi."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = w.start(&w.sender, &closed, &to, REASON).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "case_closed");
    assert_eq!(w.count("SELECT COUNT(*) AS n FROM case_transfers"), 1);
}

async fn transfer_answered_only_by_the_receiving_school(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let case = w.new_case("chi-truong-nhan").await;
    let id = w.started(&case, &to).await;
    let bystander = w.app.user(Role::FocalPoint, "SX-AL-PM-THCS").await;
    let reporter = w.app.user(Role::Reporter, TO).await;
    let officer = w.app.user(Role::DistrictOfficer, "SX-AL").await;
    for user in [&bystander, &reporter, &officer, &w.sender] {
        for (method, path) in [
            ("GET", format!("/api/v1/transfers/{id}")),
            ("POST", format!("/api/v1/transfers/{id}/accept")),
        ] {
            let (status, _) = w.call(user, method, &path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        }
        let (status, _) = w
            .call(
                user,
                "POST",
                &format!("/api/v1/transfers/{id}/refuse"),
                Some(json!({"reason": "Không phải trường của chúng tôi."})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for user in [&reporter, &officer] {
        let (status, _) = w
            .call(user, "GET", "/api/v1/transfers/incoming", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Another school's focal point sees only its own (empty) list.
    let (status, list) = w
        .call(&bystander, "GET", "/api/v1/transfers/incoming", None)
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    // Nobody else but the sender cancels.
    let (status, _) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(
            &w.receiver,
            "GET",
            &format!("/api/v1/transfers/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.count(&format!(
            "SELECT COUNT(*) AS n FROM case_transfers WHERE id = '{id}' AND status = 'pending'"
        )),
        1
    );
}

async fn transfer_keeps_statistics_where_recorded(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let police = w.app.org_id("SX-AL-CA").await;
    let mut cases = Vec::new();
    for marker in ["thong-ke-1", "thong-ke-2"] {
        let case = w.new_case(marker).await;
        let (status, _) = w
            .call(
                &w.sender,
                "POST",
                &format!("/api/v1/cases/{case}/referrals"),
                Some(json!({"agency_id": police})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        cases.push(case);
    }
    let now = caseguard::clock::Clock::now_naive(&w.app.clock);
    // A window with hour edges (read from rows) and whole days (summed).
    let from = now - chrono::Duration::days(40) - chrono::Duration::hours(5);
    let until = now + chrono::Duration::days(3) + chrono::Duration::hours(3);
    let snapshot = |area: &str| {
        let mut conn = w.app.db.connect();
        let area = caseguard::db::organisations::find_by_code(&mut conn, area)
            .unwrap()
            .unwrap()
            .id;
        let summed = query::tallies(&mut conn, &area, from, until, now).unwrap();
        let rows = query::from_rows(&mut conn, &area, from, until, now).unwrap();
        assert!(
            summed.differences(&rows).is_empty(),
            "{:?}",
            summed.differences(&rows)
        );
        let cases: u64 = summed.of("case").map(|(_, _, _, n)| n).sum();
        let referrals: u64 = summed.of("referral").map(|(_, _, _, n)| n).sum();
        (summed, cases, referrals)
    };
    let (before_ab, cases_ab, referrals_ab) = snapshot("SX-AL-AB");
    let (before_pm, cases_pm, _) = snapshot("SX-AL-PM");
    assert_eq!((cases_ab, cases_pm), (2, 0));
    assert_eq!(referrals_ab, 2);
    let summary_before = w.count("SELECT CAST(SUM(n) AS BIGINT) AS n FROM stats_counts");

    for case in &cases {
        let id = w.started(case, &to).await;
        let (status, body) = w
            .call(
                &w.receiver,
                "POST",
                &format!("/api/v1/transfers/{id}/accept"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (after_ab, _, _) = snapshot("SX-AL-AB");
    let (after_pm, _, _) = snapshot("SX-AL-PM");
    assert_eq!(after_ab, before_ab);
    assert_eq!(after_pm, before_pm);
    let school_rows = w.count(&format!(
        "SELECT COUNT(*) AS n FROM stats_counts WHERE school_id = '{to}'"
    ));
    assert_eq!(school_rows, 0);
    assert_eq!(
        w.count("SELECT CAST(SUM(n) AS BIGINT) AS n FROM stats_counts"),
        summary_before
    );
}

async fn transfer_clock_escalates(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let case = w.new_case("qua-han").await;
    let (status, started) = w.start(&w.sender, &case, &to, REASON).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // Started Monday 2 November 2026 (UTC+7 15:30): five working days end
    // on Monday 9 November, local end of day.
    let due = chrono::DateTime::parse_from_rfc3339(started["answer_by"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        due.with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
            .date_naive(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 9).unwrap()
    );
    let escalate = || {
        let state = w.app.state.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = state.db.get().unwrap();
                caseguard::referrals::escalation::pass(&mut conn, &state.case_context(), 50)
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    w.app.clock.set(due - chrono::Duration::minutes(1));
    escalate().await;
    let raised = format!(
        "SELECT COUNT(*) AS n FROM escalations e JOIN organisations o ON o.id = e.area_id \
         WHERE e.case_id = '{case}' AND e.reason = 'transfer_not_answered' AND o.code = 'SX-AL-PM' AND e.resolved_at IS NULL"
    );
    assert_eq!(w.count(&raised), 0);
    w.app.clock.set(due + chrono::Duration::minutes(1));
    escalate().await;
    assert_eq!(w.count(&raised), 1);
    // On the receiving school's dashboard the escalation leads to the
    // incoming transfers (the case is not theirs to open yet).
    let (cookie, _) = w.app.browser_session(&w.receiver).await;
    let html = w
        .app
        .client
        .get(w.app.url("/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("href=\"#transfers-in\""), "{html}");
    assert!(!html.contains(&format!("href=\"/cases/{case}\"")));
    let (status, _) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/refuse"),
            Some(json!({"reason": "Học sinh không chuyển đến trường chúng tôi."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.count(&raised), 0);
}

async fn transfer_open_keeps_the_case_from_closing(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let to = w.app.org_id(TO).await;
    let from = w.app.org_id(FROM).await;
    let case = w.new_case("dong-giua-chung").await;
    let id = w.started(&case, &to).await;
    let close = || json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Đã hỗ trợ xong."});
    // While the transfer is open the case does not close: the receiving
    // school would be asked to take a closed case.
    let (status, body) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/cases/{case}/transitions"),
            Some(close()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_case");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("transfer"),
        "{body}"
    );
    assert_eq!(
        w.count(&format!(
            "SELECT COUNT(*) AS n FROM cases WHERE id = '{case}' AND school_id = '{from}' AND status <> 'closed'"
        )),
        1,
        "nothing changed"
    );
    // Refused, the transfer is over and the sender closes the case.
    let (status, _) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/refuse"),
            Some(json!({"reason": "Học sinh không chuyển đến trường chúng tôi."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w
        .call(
            &w.sender,
            "POST",
            &format!("/api/v1/cases/{case}/transitions"),
            Some(close()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A closed case cannot be accepted, even by a transfer still marked
    // open (as a store restored from before the check would hold).
    let (status, body) = w
        .call(
            &w.receiver,
            "POST",
            &format!("/api/v1/transfers/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// The browser journey, without JavaScript (the forms work without it) and
/// with it (the accessibility check): the sender starts a transfer from the
/// case page (a refused form first), the receiver finds it on the
/// dashboard, opens it and accepts; the case is then the receiver's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_start_and_accept_in_the_browser() {
    use crate::browser::{
        browser, choose, chromedriver, fill, shot, sign_in, sign_out, spawn_app, submit, text,
    };
    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let sender = app.user(Role::FocalPoint, FROM).await;
    let receiver = app.user(Role::FocalPoint, TO).await;
    let to = app.org_id(TO).await;
    let token = app.token(&sender).await;
    let (status, case) = app
        .post_case(&token, "browser-transfer", &marked_case("trinh-duyet", 2))
        .await;
    assert_eq!(status, 201, "{case}");
    let case_id = case["id"].as_str().unwrap().to_owned();

    for javascript in [false, true] {
        let client = browser(&driver, javascript).await;
        let run = if javascript { "js" } else { "nojs" };
        sign_in(&app, &client, &sender).await;
        client
            .goto(&app.url(&format!("/cases/{case_id}")))
            .await
            .unwrap();
        // A reason too short: the form comes back with the school kept.
        choose(&client, "transfer-to", &to).await;
        fill(&client, "transfer-reason", "ngắn").await;
        submit(&client, "#transfer-form button[type=submit]").await;
        let page = text(&client).await;
        assert!(
            page.contains("Lý do phải dài từ 10 đến 2000 ký tự."),
            "{page}"
        );
        let kept = client
            .find(fantoccini::Locator::Css("#transfer-to option[selected]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some(to.as_str()));
        shot(&client, &format!("transfer-{run}-01-refused-form")).await;
        fill(&client, "transfer-reason", REASON).await;
        submit(&client, "#transfer-form button[type=submit]").await;
        let page = text(&client).await;
        assert!(page.contains("Đã gửi đề nghị chuyển hồ sơ"), "{page}");
        assert!(page.contains("Chờ trường nhận mở"), "{page}");
        shot(&client, &format!("transfer-{run}-02-requested")).await;
        sign_out(&client).await;

        sign_in(&app, &client, &receiver).await;
        let page = text(&client).await;
        assert!(
            page.contains("Hồ sơ chuyển đến chờ trường mình trả lời"),
            "{page}"
        );
        assert!(!page.contains("trinh-duyet"), "{page}");
        shot(&client, &format!("transfer-{run}-03-dashboard")).await;
        submit(&client, "#transfers-in a").await;
        let page = text(&client).await;
        assert!(page.contains(REASON), "{page}");
        assert!(page.contains("Trường nhận đã xem"), "{page}");
        assert!(!page.contains("trinh-duyet"), "{page}");
        shot(&client, &format!("transfer-{run}-04-decide")).await;
        submit(&client, "#transfer-accept").await;
        let page = text(&client).await;
        assert!(page.contains("Đã tiếp nhận hồ sơ"), "{page}");
        assert!(page.contains("trinh-duyet"), "{page}");
        shot(&client, &format!("transfer-{run}-05-accepted")).await;
        sign_out(&client).await;

        // The sender's dashboard shows the acceptance; the case is gone.
        sign_in(&app, &client, &sender).await;
        let page = text(&client).await;
        assert!(page.contains("Đã tiếp nhận"), "{page}");
        client
            .goto(&app.url(&format!("/cases/{case_id}")))
            .await
            .unwrap();
        assert!(!text(&client).await.contains("trinh-duyet"));
        client.goto(&app.url("/")).await.unwrap();
        sign_out(&client).await;
        client.close().await.unwrap();

        // Back to the sender for the next run.
        let back = app.token(&receiver).await;
        let from = app.org_id(FROM).await;
        let response = app
            .client
            .post(app.url(&format!("/api/v1/cases/{case_id}/transfers")))
            .bearer_auth(&back)
            .json(&json!({"to_school_id": from, "reason": REASON}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = app
            .client
            .post(app.url(&format!("/api/v1/transfers/{id}/accept")))
            .bearer_auth(app.token(&sender).await)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}
