//! The plan's non-count targets (`[[unit_indicator]]`): a unit's answers
//! are checked field by field and stored once (bad input changes nothing),
//! aggregated up the tree against their targets with the trend, who is
//! late, and the reminders to units that have not answered: once per unit,
//! period and point however many schedulers race.

use caseguard::authz::Action;
use caseguard::domain::user::Role;
use caseguard::stats::unit_indicators::{self, Answers, RawAnswer, RawValue};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

on_both_backends!(
    unit_answers_are_checked_and_stored_once,
    unit_indicators_are_aggregated_against_targets_with_the_trend,
    late_units_are_reminded_once_per_point,
    evidence_notes_are_sealed_read_back_by_the_unit_only_and_rewrapped,
    notes_stored_in_plain_before_the_upgrade_are_sealed_at_start,
);

/// Open at the test clock (2 November 2026), due 10 November.
const PERIOD: &str = "year_end-2026";
/// Due 10 May 2026: over.
const PAST: &str = "six_month-2026";

const SCHOOLS: [&str; 6] = [
    "SX-AL-AB-MN",
    "SX-AL-AB-TH",
    "SX-AL-AB-THCS",
    "SX-AL-PM-MN",
    "SX-AL-PM-TH",
    "SX-AL-PM-THCS",
];

fn answers(trained: bool, website: bool, women: &str) -> Value {
    json!({
        "staff_trained_on_abuse": {"value": trained, "evidence": "Biên bản tập huấn số 12/BB ngày 15/3"},
        "website_gender_column": {"value": website, "evidence": "https://school.example.edu.vn/binh-dang-gioi"},
        "women_in_management": {"value": women.parse::<f64>().unwrap()},
    })
}

async fn status_of(app: &TestApp, monitor: &str, period: &str) -> Vec<Value> {
    let (status, body) = app
        .call_with_token(
            monitor,
            "GET",
            &format!("/api/v1/stats/indicators/status?area=SX-AL&period={period}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn state_of<'a>(rows: &'a [Value], code: &str) -> &'a str {
    rows.iter()
        .find(|r| r["code"] == code)
        .and_then(|r| r["state"].as_str())
        .unwrap_or_else(|| panic!("{code} is not in {rows:?}"))
}

async fn unit_answers_are_checked_and_stored_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOLS[0]).await;
    let focal = app.token(&focal).await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    let post = |body: Value| {
        let app = &app;
        let focal = focal.clone();
        async move {
            app.call_with_token(&focal, "POST", "/api/v1/stats/unit-indicators", Some(body))
                .await
        }
    };
    // Each bad input is refused with what is wrong, and stores nothing.
    let mut out_of_range = answers(true, true, "40");
    out_of_range["women_in_management"]["value"] = json!(120);
    let mut unknown = answers(true, true, "40");
    unknown["share_of_unicorns"] = json!({"value": true, "evidence": "x"});
    let mut no_evidence = answers(true, true, "40");
    no_evidence["staff_trained_on_abuse"]["evidence"] = json!("  ");
    let mut not_yes_no = answers(true, true, "40");
    not_yes_no["website_gender_column"]["value"] = json!("maybe");
    let refusals = [
        (
            json!({"period": PERIOD, "answers": out_of_range}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`women_in_management`: the percentage must be between 0 and 100",
        ),
        (
            json!({"period": PERIOD, "answers": unknown}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`share_of_unicorns` is not a unit indicator of this period",
        ),
        (
            json!({"period": PERIOD, "answers": no_evidence}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`staff_trained_on_abuse`: the evidence note is required",
        ),
        (
            json!({"period": PERIOD, "answers": not_yes_no}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`website_gender_column`: the answer must be yes or no",
        ),
        (
            json!({"period": "semester_1-2026", "answers": answers(true, true, "40")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unit indicators are entered for these period kinds only: six_month, year_end",
        ),
        (
            json!({"period": "six_month-2028", "answers": answers(true, true, "40")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "the period has not started yet",
        ),
        (
            json!({"period": "weekly-2026", "answers": answers(true, true, "40")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected <kind>-<year>",
        ),
    ];
    for (body, status, message) in refusals {
        let (got, answer) = post(body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{body}: {text}");
    }
    // Another unit's answers: not this focal point's (as if it did not exist).
    let mut other = json!({"period": PERIOD, "answers": answers(true, true, "40")});
    other["unit"] = json!(SCHOOLS[1]);
    let (got, _) = post(other).await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    // A monitor enters nothing.
    let (got, _) = app
        .call_with_token(
            &monitor,
            "POST",
            "/api/v1/stats/unit-indicators",
            Some(json!({"period": PERIOD, "answers": answers(true, true, "40")})),
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    let rows = status_of(&app, &monitor, PERIOD).await;
    assert!(rows.iter().all(|r| r["state"] == "pending"), "{rows:?}");
    // The good answer, once.
    let good = json!({"period": PERIOD, "answers": answers(true, false, "42.5")});
    let (got, body) = post(good.clone()).await;
    assert_eq!(got, StatusCode::CREATED, "{body}");
    let (got, body) = post(good).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_submitted"))
    );
    let rows = status_of(&app, &monitor, PERIOD).await;
    assert_eq!(state_of(&rows, SCHOOLS[0]), "submitted");
    assert_eq!(state_of(&rows, SCHOOLS[1]), "pending");
    // The past period's due day is over: everyone is late there.
    let rows = status_of(&app, &monitor, PAST).await;
    assert!(rows.iter().all(|r| r["state"] == "late"), "{rows:?}");
    assert_eq!(rows.len(), SCHOOLS.len());
    // Stored as entered: yes, no, 42.5 % (in tenths), with the notes.
    let state = app.state.clone();
    let school = app.org_id(SCHOOLS[0]).await;
    let stored = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::db::unit_indicators::entries_of(&mut conn, &[school], &[PERIOD.to_owned()])
            .unwrap()
    })
    .await
    .unwrap();
    let values: Vec<(&str, i32)> = stored
        .iter()
        .map(|r| (r.indicator.as_str(), r.value))
        .collect();
    assert_eq!(
        values,
        [
            ("staff_trained_on_abuse", 1),
            ("website_gender_column", 0),
            ("women_in_management", 425)
        ]
    );
    // The notes are sealed: the row holds no note in clear.
    assert!(stored.iter().all(|r| {
        r.evidence_unsealed.is_empty()
            && r.evidence_enc
                .as_ref()
                .is_some_and(|e| !e.windows(5).any(|w| w == b"12/BB"))
    }));
}

/// Enters `answers` for `school` and `period` directly, as its focal point.
async fn enter(app: &TestApp, school: &str, period: &str, trained: bool, women: f64) {
    let focal = app.user(Role::FocalPoint, school).await.id;
    let state = app.state.clone();
    let (school, period) = (school.to_owned(), period.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let unit = caseguard::db::organisations::find_by_code(&mut conn, &school)
            .unwrap()
            .unwrap();
        let by = crate::helpers::capability_of(
            &state,
            &mut conn,
            &focal,
            Action::IndicatorsSubmit,
            &unit.id,
        );
        let period = state.reporting.period(&period).unwrap();
        let answer = |value: RawValue, evidence: &str| RawAnswer {
            value: Some(value),
            evidence: Some(evidence.to_owned()),
        };
        let answers: Answers = [
            (
                "staff_trained_on_abuse".to_owned(),
                answer(RawValue::Bool(trained), "Biên bản 1"),
            ),
            (
                "website_gender_column".to_owned(),
                answer(RawValue::Text("yes".into()), "https://example.edu.vn/bdg"),
            ),
            (
                "women_in_management".to_owned(),
                answer(RawValue::Number(women), ""),
            ),
        ]
        .into_iter()
        .collect();
        unit_indicators::submit(
            &mut conn,
            &state.stats_context(),
            &state.keyring.current(),
            &state.auditor,
            &by,
            &unit,
            &period,
            &answers,
        )
        .unwrap();
    })
    .await
    .unwrap();
}

async fn unit_indicators_are_aggregated_against_targets_with_the_trend(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    // Last year: four schools; this year: five (one of AB, all of PM, one
    // more of AB). By hand, this year: trained 4 of 5 = 80 % (target 100:
    // not met); website 5 of 5 = 100 % (met); women in management mean of
    // 40, 50, 30, 60, 45 = 45 % against last year's mean of 40, 40, 50, 50
    // = 45 %: maintained (met).
    for (school, women) in [
        (SCHOOLS[0], 40.0),
        (SCHOOLS[1], 40.0),
        (SCHOOLS[3], 50.0),
        (SCHOOLS[4], 50.0),
    ] {
        enter(&app, school, "year_end-2025", true, women).await;
    }
    for (school, trained, women) in [
        (SCHOOLS[0], true, 40.0),
        (SCHOOLS[3], true, 50.0),
        (SCHOOLS[4], false, 30.0),
        (SCHOOLS[5], true, 60.0),
        (SCHOOLS[1], true, 45.0),
    ] {
        enter(&app, school, PERIOD, trained, women).await;
    }
    let (status, rows) = app
        .call_with_token(
            &monitor,
            "GET",
            &format!("/api/v1/stats/unit-indicators?area=SX-AL&period={PERIOD}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    let rows = rows.as_array().unwrap();
    let value = |area: &str, code: &str| -> Value {
        rows.iter()
            .find(|r| r["code"] == area)
            .unwrap_or_else(|| panic!("{area} missing"))["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["code"] == code)
            .unwrap()
            .clone()
    };
    let trained = value("SX-AL", "staff_trained_on_abuse");
    assert_eq!(
        (&trained["percent"], &trained["met"], &trained["answering"]),
        (&json!(80.0), &json!(false), &json!(5))
    );
    assert_eq!(trained["trend"].as_array().unwrap().len(), 3);
    assert_eq!(trained["trend"][2]["period"], "year_end-2025");
    assert_eq!(trained["trend"][2]["percent"], json!(100.0));
    assert_eq!(trained["trend"][1]["percent"], Value::Null);
    let website = value("SX-AL", "website_gender_column");
    assert_eq!(
        (&website["percent"], &website["met"]),
        (&json!(100.0), &json!(true))
    );
    let women = value("SX-AL", "women_in_management");
    assert_eq!(
        (
            &women["percent"],
            &women["met"],
            &women["trend"][2]["percent"]
        ),
        (&json!(45.0), &json!(true), &json!(45.0))
    );
    // The PM commune: three answers (50, 30, 60: 46.7 %); AB: two (40, 45).
    let pm = value("SX-AL-PM", "women_in_management");
    assert_eq!(pm["percent"], json!(46.7));
    let ab = value("SX-AL-AB", "staff_trained_on_abuse");
    assert_eq!(
        (&ab["percent"], &ab["answering"]),
        (&json!(100.0), &json!(2))
    );
    // AB last year had two answers too, PM two: both shown. One answer
    // alone is never an area's value: AB's women in management of the
    // year before last had none.
    assert_eq!(
        value("SX-AL-AB", "women_in_management")["trend"][1]["percent"],
        Value::Null
    );
}

async fn late_units_are_reminded_once_per_point(backend: Backend) {
    let Some(app) =
        TestApp::spawn_configured(backend, None, &[("outbox_poll_seconds", json!(0))]).await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let mut focal_ids = Vec::new();
    for school in SCHOOLS {
        focal_ids.push(app.user(Role::FocalPoint, school).await.id);
    }
    enter(&app, SCHOOLS[0], PERIOD, true, 40.0).await;
    let pass = || {
        let state = app.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            unit_indicators::remind(
                &mut conn,
                &state.stats_context(),
                &state.auditor,
                state.settings.public_url.as_str(),
            )
            .unwrap()
        })
    };
    let reminders = || {
        let state = app.state.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = state.db.get().unwrap();
                caseguard::notify::outbox::all(&mut conn)
                    .unwrap()
                    .into_iter()
                    .filter(|m| m.template == "indicators_reminder")
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap()
        }
    };
    // 2 November, 15:30 local: no point has come (the first is 3 November).
    pass().await.unwrap();
    assert!(reminders().await.is_empty());
    let schools = {
        let state = app.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::db::organisations::all(&mut conn)
                .unwrap()
                .into_iter()
                .filter(|o| o.kind == "school")
                .count()
        })
        .await
        .unwrap()
    };
    // 3 November: seven days before. Two schedulers at once send once.
    app.clock.advance(chrono::Duration::hours(9));
    let (a, b) = tokio::join!(pass(), pass());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.sent + b.sent < schools);
    pass().await.unwrap();
    let sent = reminders().await;
    // Every unanswered demo school's focal point (the first school answered).
    assert_eq!(sent.len(), SCHOOLS.len() - 1, "{sent:?}");
    let answered_focal = focal_ids[0].clone();
    assert!(
        sent.iter()
            .all(|m| !m.idempotency_key.ends_with(&answered_focal))
    );
    for message in &sent {
        let params: Value = serde_json::from_str(&message.params).unwrap();
        let keys: Vec<&String> = params.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["deadline", "link"], "content-free: {params}");
        assert!(
            params["link"]
                .as_str()
                .unwrap()
                .ends_with("/indicators/entry")
        );
        assert_eq!(params["deadline"], "2026-11-10T16:59:59+00:00");
    }
    // Another school answers; on the due day only the rest are reminded.
    enter(&app, SCHOOLS[1], PERIOD, true, 40.0).await;
    app.clock.advance(chrono::Duration::days(7));
    pass().await.unwrap();
    pass().await.unwrap();
    let sent = reminders().await;
    assert_eq!(sent.len(), (SCHOOLS.len() - 1) + (SCHOOLS.len() - 2));
    assert_eq!(
        sent.iter()
            .filter(|m| m.idempotency_key.contains(":d0:"))
            .count(),
        SCHOOLS.len() - 2
    );
    // The status page counts them; after the due day the rest are late.
    app.clock.advance(chrono::Duration::days(1));
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    let rows = status_of(&app, &monitor, PERIOD).await;
    assert_eq!(state_of(&rows, SCHOOLS[0]), "submitted");
    assert_eq!(state_of(&rows, SCHOOLS[5]), "late");
    let five = rows.iter().find(|r| r["code"] == SCHOOLS[5]).unwrap();
    assert_eq!(five["reminders"], 2);
    // Past the due day nothing more is sent.
    pass().await.unwrap();
    assert_eq!(
        reminders().await.len(),
        (SCHOOLS.len() - 1) + (SCHOOLS.len() - 2)
    );
}

/// A note that names a person, as a school might type it.
const NOTE: &str = "Canary-note-5521 cô Nguyễn Thị Hoa tập huấn";

/// The stored rows of `school`'s answers for `period`, straight from the
/// store.
async fn stored_rows(
    app: &TestApp,
    school: &str,
    period: &str,
) -> Vec<caseguard::db::unit_indicators::UnitEntryRow> {
    let state = app.state.clone();
    let school = app.org_id(school).await;
    let period = period.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        caseguard::db::unit_indicators::entries_of(&mut conn, &[school], &[period]).unwrap()
    })
    .await
    .unwrap()
}

/// The unit's answers read back through the API, as `token` asks.
async fn read_back(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.call_with_token(
        token,
        "GET",
        &format!("/api/v1/stats/unit-indicators/answers?{query}"),
        None,
    )
    .await
}

async fn evidence_notes_are_sealed_read_back_by_the_unit_only_and_rewrapped(backend: Backend) {
    use caseguard::crypto::keyring::KeyPurpose;
    use diesel::prelude::*;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal_user = app.user(Role::FocalPoint, SCHOOLS[0]).await;
    let focal = app.token(&focal_user).await;
    let mut body = answers(true, true, "40");
    body["staff_trained_on_abuse"]["evidence"] = json!(NOTE);
    let (status, created) = app
        .call_with_token(
            &focal,
            "POST",
            "/api/v1/stats/unit-indicators",
            Some(json!({"period": PERIOD, "answers": body})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // Not in the stored bytes (the whole store, files or every table).
    let mut conn = app.db.connect();
    let raw = crate::cases::raw_store(&app, &mut conn);
    assert!(
        raw.contains("staff_trained_on_abuse"),
        "the dump misses the answers"
    );
    assert!(
        !crate::cases::holds(&raw, "Canary-note-5521"),
        "a note is stored in clear"
    );
    assert!(
        !crate::cases::holds(&raw, "12/BB"),
        "a note is stored in clear"
    );

    // Read back on the API and on the entry page, by the unit's focal point.
    let (status, back) = read_back(&app, &focal, &format!("period={PERIOD}")).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["unit"], SCHOOLS[0]);
    assert_eq!(back["answers"]["staff_trained_on_abuse"]["evidence"], NOTE);
    assert_eq!(back["answers"]["staff_trained_on_abuse"]["value"], true);
    assert_eq!(back["answers"]["women_in_management"]["value"], json!(40.0));
    assert_eq!(
        back["answers"]["website_gender_column"]["evidence"],
        "https://school.example.edu.vn/binh-dang-gioi"
    );
    let (cookie, _) = app.browser_session(&focal_user).await;
    let page = app
        .client
        .get(app.url(&format!("/indicators/entry?period={PERIOD}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(NOTE));

    // Nobody else reads them: another unit's focal point, the area's
    // monitor and district officer get what a missing unit gets, and the
    // area's views carry no note.
    let other = app.user(Role::FocalPoint, SCHOOLS[1]).await;
    let other = app.token(&other).await;
    let monitor = app.user(Role::Monitor, "SX-AL").await;
    let monitor = app.token(&monitor).await;
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let officer = app.token(&officer).await;
    for token in [&other, &monitor, &officer] {
        let (status, body) =
            read_back(&app, token, &format!("period={PERIOD}&unit={}", SCHOOLS[0])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(!body.to_string().contains("Canary"));
    }
    for path in [
        format!("/api/v1/stats/unit-indicators?area=SX-AL&period={PERIOD}"),
        format!("/api/v1/stats/indicators/status?area=SX-AL&period={PERIOD}"),
    ] {
        let (status, body) = app.call_with_token(&monitor, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.to_string().contains("Canary"), "{path}");
    }

    // A sealed note (with its key) copied onto another answer does not
    // open there: the read fails closed, and says nothing of the note.
    let rows = stored_rows(&app, SCHOOLS[0], PERIOD).await;
    let from = rows
        .iter()
        .find(|r| r.indicator == "staff_trained_on_abuse")
        .unwrap()
        .clone();
    let to = rows
        .iter()
        .find(|r| r.indicator == "website_gender_column")
        .unwrap()
        .clone();
    use caseguard::db::schema::unit_indicator_entries as t;
    let copy = |onto: &str, row: &caseguard::db::unit_indicators::UnitEntryRow| {
        diesel::update(t::table.filter(t::id.eq(onto.to_owned())))
            .set((
                t::kek_id.eq(row.kek_id.clone()),
                t::wrapped_dek.eq(row.wrapped_dek.clone()),
                t::evidence_enc.eq(row.evidence_enc.clone()),
            ))
            .execute(&mut app.db.connect())
            .unwrap()
    };
    assert_eq!(copy(&to.id, &from), 1);
    let (status, body) = read_back(&app, &focal, &format!("period={PERIOD}")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.to_string().contains("Canary"));
    assert_eq!(copy(&to.id, &to), 1);
    let (status, _) = read_back(&app, &focal, &format!("period={PERIOD}")).await;
    assert_eq!(status, StatusCode::OK);

    // Rotation: a new field KEK rewraps the notes' data keys (the sealed
    // notes stay as they are) and the notes still open under it.
    use caseguard::cases::keys;
    let mut keyring = (*app.state.keyring.current()).clone();
    let old = keyring.active(KeyPurpose::FieldKek).unwrap().id.clone();
    app.clock.advance(chrono::Duration::minutes(1));
    let new = keyring
        .add_key(KeyPurpose::FieldKek, &app.clock)
        .unwrap()
        .id
        .clone();
    let mut conn = app.db.connect();
    assert_eq!(keys::pending(&mut conn, &keyring).unwrap(), 3);
    assert_eq!(keys::wraps_by_kek(&mut conn).unwrap()[&old], 3);
    app.clock.advance(keys::RETIRE_AFTER);
    assert!(
        keys::retirable(&mut conn, &keyring, &app.clock)
            .unwrap()
            .is_empty(),
        "a KEK that still wraps notes' keys would be retired"
    );
    while keys::rewrap_batch(&mut conn, &keyring, &app.clock, 2).unwrap() > 0 {}
    assert_eq!(keys::pending(&mut conn, &keyring).unwrap(), 0);
    let after = stored_rows(&app, SCHOOLS[0], PERIOD).await;
    for row in &after {
        let before = rows.iter().find(|r| r.id == row.id).unwrap();
        assert_eq!(row.kek_id.as_deref(), Some(new.as_str()));
        assert_ne!(row.wrapped_dek, before.wrapped_dek);
        assert_eq!(row.evidence_enc, before.evidence_enc);
    }
    let note = after
        .iter()
        .find(|r| r.indicator == "staff_trained_on_abuse")
        .unwrap();
    assert_eq!(
        caseguard::stats::unit_notes::open(&keyring, note)
            .unwrap()
            .expose(),
        NOTE
    );
    // The service's keyring, without the new KEK, no longer opens them:
    // the keys truly moved; and the old KEK may now be retired.
    assert!(caseguard::stats::unit_notes::open(&app.state.keyring.current(), note).is_err());
    assert_eq!(
        keys::retirable(&mut conn, &keyring, &app.clock).unwrap(),
        [old]
    );
}

async fn notes_stored_in_plain_before_the_upgrade_are_sealed_at_start(backend: Backend) {
    use caseguard::db::migrations;
    use diesel::connection::SimpleConnection;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let school = app.org_id(SCHOOLS[2]).await;
    // The store as it was before migration 000021, with a note in clear.
    let mut conn = app.db.connect();
    loop {
        let reverted = migrations::revert_last(&mut conn).unwrap();
        if reverted.contains("000021") {
            break;
        }
    }
    let insert = format!(
        "INSERT INTO unit_indicator_entries (id, school_id, period, indicator, kind, value, \
         evidence, submitted_by, submitted_at) VALUES ('{}', '{school}', '{PERIOD}', \
         'staff_trained_on_abuse', 'yes_no', 1, '{NOTE}', 'user', '2026-11-02 08:00:00')",
        uuid::Uuid::now_v7()
    );
    match &mut conn {
        caseguard::db::DbConnection::Sqlite(c) => c.batch_execute(&insert).unwrap(),
        caseguard::db::DbConnection::Postgresql(c) => c.batch_execute(&insert).unwrap(),
    }
    drop(conn);
    // The upgraded service starts on that store (same keyring): it
    // migrates, then seals the note before it serves.
    let upgraded = TestApp::spawn_on(
        crate::helpers::TestDb::external(backend, app.db.url.clone()),
        None,
        &[("keyring", json!(app.db.data_dir().join("keyring")))],
    )
    .await;
    let rows = stored_rows(&upgraded, SCHOOLS[2], PERIOD).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].evidence_unsealed.is_empty(), "still in clear");
    assert!(rows[0].evidence_enc.is_some() && rows[0].kek_id.is_some());
    let mut conn = app.db.connect();
    let raw = crate::cases::raw_store(&app, &mut conn);
    assert!(
        raw.contains("staff_trained_on_abuse"),
        "the dump misses the answers"
    );
    if backend == Backend::Sqlite {
        // On PostgreSQL the old row version stays until autovacuum reuses
        // its space (docs/SECURITY.md); SQLite's files are scrubbed.
        assert!(
            !crate::cases::holds(&raw, "Canary-note-5521"),
            "the note is still in the files"
        );
    }
    // It reads back, sealed, for the unit's focal point.
    let focal = upgraded.user(Role::FocalPoint, SCHOOLS[2]).await;
    let focal = upgraded.token(&focal).await;
    let (status, back) = read_back(&upgraded, &focal, &format!("period={PERIOD}")).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["answers"]["staff_trained_on_abuse"]["evidence"], NOTE);
    // A second start finds nothing left to seal and changes nothing.
    let sealed = {
        let state = upgraded.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::stats::unit_notes::seal_unsealed(&mut conn, &state.keyring.current())
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert_eq!(sealed, 0);
    assert_eq!(stored_rows(&upgraded, SCHOOLS[2], PERIOD).await, rows);
}
