//! Case-work (issue 16): finding. API tests on both stores, hostile cases, the
//! browser journey.
//!
//! - the case list's filters (status incl. closed and `open`, risk, type,
//!   dates) and its pages, with specific errors for bad filters;
//! - a pupil's chronology across the pupil's cases (blind index), only for
//!   callers who may read every one of them;
//! - the intake form's single-use token: a replayed, foreign, unknown or
//!   expired token makes no second case;
//! - consent recorded in the intake steps, in the case's transaction.

use std::collections::BTreeSet;

use caseguard::domain::user::Role;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, intake_token_in, marked_case};

const SCHOOL: &str = "SX-AL-AB-TH";
const OTHER_SCHOOL: &str = "SX-AL-AB-THCS";

async fn app(backend: Backend) -> Option<TestApp> {
    Some(TestApp::spawn(backend).await?.with_demo_orgs().await)
}

fn cases_in_store(app: &TestApp) -> i64 {
    caseguard::db::schema::cases::table
        .count()
        .get_result(&mut app.db.connect())
        .unwrap()
}

async fn list(
    app: &TestApp,
    token: &str,
    query: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = app
        .get_with_token(&format!("/api/v1/cases?{query}"), token)
        .await;
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

on_both_backends!(
    the_case_list_filters_and_pages,
    a_pupils_chronology_spans_only_their_cases,
    a_replayed_intake_form_token_makes_no_second_case,
    a_reporter_lands_on_their_page_after_filing,
    consent_is_recorded_in_the_intake_steps,
);

async fn the_case_list_filters_and_pages(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let mut body = marked_case(&format!("list{i}"), 3);
        if i == 4 {
            body["risk_level"] = json!("low");
            body["incident"]["type"] = json!("physical_assault");
        }
        let (status, created) = app.post_case(&token, &format!("list-{i}"), &body).await;
        assert_eq!(status, 201, "{created}");
        made.push(created["id"].as_str().unwrap().to_owned());
        app.clock.advance(chrono::Duration::minutes(1));
    }
    // One of them is closed: the list still finds it.
    let closed = &made[0];
    let response = app
        .client
        .post(app.url(&format!("/api/v1/cases/{closed}/transitions")))
        .bearer_auth(&token)
        .json(&json!({"to": "closed", "version": 1, "closure_reason": "needs_met", "note": "Em đã ổn định."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // Pages of two: stable, newest first, every case once; the total and the
    // next page in the headers.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    for page in 1..=3 {
        let (status, body, headers) = list(&app, &token, &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-total-count"], "5");
        seen.extend(ids(&body));
        match headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                assert!(link.ends_with("rel=\"next\""), "{link}");
                assert!(link.contains(&format!("page={}", page + 1)), "{link}");
                query = link
                    .trim_start_matches("</api/v1/cases?")
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            None => assert_eq!(page, 3, "no next page after page {page}"),
        }
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    // Backwards compatible: no paging asked, the whole list as before.
    assert_eq!(ids(&list(&app, &token, "").await.1), newest_first);

    let count = |query: &'static str| {
        let (app, token) = (&app, &token);
        async move { ids(&list(app, token, query).await.1).len() }
    };
    assert_eq!(count("status=closed").await, 1);
    assert_eq!(count("status=open").await, 4);
    assert_eq!(count("status=reported").await, 4);
    assert_eq!(count("risk_level=low").await, 1);
    assert_eq!(count("incident_type=physical_assault&status=open").await, 1);
    assert_eq!(
        count("incident_type=physical_assault&risk_level=medium").await,
        0
    );
    assert_eq!(count("from=2026-01-01&to=2030-12-31&status=open").await, 4);
    assert_eq!(count("to=2020-01-01").await, 0);

    // Bad filters: 400, naming the field, never echoing the value.
    for (bad, field) in [
        ("status=Nguy%E1%BB%85n%20Th%E1%BB%8B%20Mai", "status"),
        ("risk_level=extreme", "risk_level"),
        ("page=0", "page"),
        ("limit=501", "limit"),
        ("from=2026-13-01", "from"),
        ("from=2026-05-02&to=2026-05-01", "from"),
    ] {
        let (status, body, _) = list(&app, &token, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_filter", "{bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{bad}: {message}");
        assert!(!message.contains("Nguyễn"), "{message}");
    }

    // Another school's focal point finds none of them.
    let other = app.user(Role::FocalPoint, OTHER_SCHOOL).await;
    let other_token = app.token(&other).await;
    let (status, body, headers) = list(&app, &other_token, "status=closed").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), Vec::<String>::new());
    assert_eq!(headers["x-total-count"], "0");

    // The page: closed cases too, in both languages, the filters as typed.
    let (cookie, _) = app.browser_session(&focal).await;
    let page = |path: String| {
        let request = app.client.get(app.url(&path)).header("cookie", &cookie);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, html) = page("/cases?status=closed".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/cases/{closed}")), "{html}");
    assert!(!html.contains(&format!("/cases/{}", made[1])));
    let (status, html) = page("/cases?limit=2&page=2".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/cases/{}", made[2])));
    assert!(html.contains("rel=\"prev\"") && html.contains("rel=\"next\""));
    let (status, html) = page("/cases?from=2026-05-02&to=2026-05-01".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("không sau ngày kết thúc"), "{html}");
    assert!(html.contains("value=\"2026-05-02\""));
    let (_, dashboard) = page("/".into()).await;
    assert!(dashboard.contains("href=\"/cases\""));
    // The dashboard keeps to the open cases.
    assert!(dashboard.contains(&format!("href=\"/cases/{}\"", made[1])));
    assert!(!dashboard.contains(&format!("href=\"/cases/{closed}\"")));
    // In English too, once the person chose it.
    let changed = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"language": "en"}))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success(), "{}", changed.status());
    let (_, html) = page("/cases?status=open&risk_level=low".into()).await;
    assert!(html.contains("Cases found: 1"), "{html}");
    assert!(html.contains("Every status but closed"));
}

async fn a_pupils_chronology_spans_only_their_cases(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    // Two cases of the same pupil (same name and date of birth), one of
    // another pupil.
    let mut first = marked_case("same", 2);
    first["incident"]["narrative"] = json!("Lần thứ nhất");
    let (_, a) = app.post_case(&token, "pupil-a", &first).await;
    app.clock.advance(chrono::Duration::minutes(5));
    let (_, other_pupil) = app
        .post_case(&token, "pupil-c", &marked_case("khác", 2))
        .await;
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, b) = app
        .post_case(&token, "pupil-b", &marked_case("same", 2))
        .await;
    assert_eq!(status, 201);
    let (a, b, c) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
        other_pupil["id"].as_str().unwrap().to_owned(),
    );
    let note = app
        .client
        .post(app.url(&format!("/api/v1/cases/{a}/notes")))
        .bearer_auth(&token)
        .json(&json!({"note": "Đã gặp cha mẹ em"}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 201);

    let response = app
        .get_with_token(&format!("/api/v1/cases/{b}/pupil-chronology"), &token)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let listed: Vec<&str> = body["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [a.as_str(), b.as_str()]);
    let entries = body["entries"].as_array().unwrap();
    let of: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["case_id"].as_str().unwrap())
        .collect();
    assert_eq!(of, BTreeSet::from([a.as_str(), b.as_str()]));
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order");
    // A's creation, B's creation, then the note added to A since.
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["case_id"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (a.as_str(), "created"),
            (b.as_str(), "created"),
            (a.as_str(), "note")
        ]
    );
    assert_eq!(entries[2]["note"], "Đã gặp cha mẹ em");

    // Each case's chronology read is audited.
    let audited: i64 = {
        use caseguard::db::schema::audit_log::dsl as log;
        log::audit_log
            .filter(log::action.eq("case.read"))
            .filter(log::details.like("%pupil_chronology%"))
            .count()
            .get_result(&mut app.db.connect())
            .unwrap()
    };
    assert_eq!(audited, 2);

    // The case page links the pupil's other case and the chronology.
    let (cookie, _) = app.browser_session(&focal).await;
    let html = app
        .client
        .get(app.url(&format!("/cases/{a}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("href=\"/cases/{b}\"")), "{html}");
    assert!(html.contains(&format!("href=\"/cases/{a}/pupil\"")));
    let alone = app
        .client
        .get(app.url(&format!("/cases/{c}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!alone.contains("/pupil\""), "a pupil with one case");
    let page = app
        .client
        .get(app.url(&format!("/cases/{a}/pupil")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Đã gặp cha mẹ em") && !page.contains(&c[30..]));

    // Outside the school: not there.
    let other = app.user(Role::FocalPoint, OTHER_SCHOOL).await;
    let other_token = app.token(&other).await;
    let response = app
        .get_with_token(&format!("/api/v1/cases/{a}/pupil-chronology"), &other_token)
        .await;
    assert_eq!(response.status(), 404);
    // A district officer who opened one of the cases (break-glass) may not
    // read the other: no chronology.
    let officer = app.user(Role::DistrictOfficer, "SX-AL").await;
    let officer_token = app.token(&officer).await;
    let glass = app
        .client
        .post(app.url(&format!("/api/v1/cases/{a}/break-glass")))
        .bearer_auth(&officer_token)
        .json(&json!({"reason": "Cán bộ đầu mối nghỉ phép, công an hỏi về nguy cơ khẩn cấp."}))
        .send()
        .await
        .unwrap();
    assert_eq!(glass.status(), 201);
    assert_eq!(
        app.get_with_token(&format!("/api/v1/cases/{a}"), &officer_token)
            .await
            .status(),
        200
    );
    let response = app
        .get_with_token(
            &format!("/api/v1/cases/{a}/pupil-chronology"),
            &officer_token,
        )
        .await;
    assert_eq!(response.status(), 404);
}

/// An intake form as a browser sends it.
fn intake_form(csrf: &str, token: &str, name: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("csrf", csrf),
        ("intake_token", token),
        ("risk_level", "high"),
        ("pupil.name", name),
        ("pupil.date_of_birth", "2013-04-05"),
        ("pupil.sex", "female"),
        ("incident.type", "physical_assault"),
        ("incident.contexts", "bullying"),
        ("incident.date", "2026-10-06"),
        ("incident.location_type", "school_premises"),
        ("incident.perpetrator_relation", "peer_pupil"),
        ("incident.narrative", "Em bị bạn đánh ở sân trường."),
    ];
    pairs.extend_from_slice(extra);
    serde_urlencoded::to_string(pairs).unwrap()
}

struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

impl Browser<'_> {
    async fn open(app: &TestApp, role: Role) -> Browser<'_> {
        let user = app.user(role, SCHOOL).await;
        let (cookie, csrf) = app.browser_session(&user).await;
        Browser { app, cookie, csrf }
    }

    async fn token(&self) -> String {
        let html = self
            .app
            .client
            .get(self.app.url("/cases/new"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        intake_token_in(&html)
    }

    /// Posts the intake form: the status, the `Location` and the page.
    async fn send(&self, body: String) -> (StatusCode, String, String) {
        let response = self
            .app
            .client
            .post(self.app.url("/cases/new"))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }
}

fn case_of(location: &str) -> &str {
    location
        .trim_start_matches("/cases/")
        .split('?')
        .next()
        .unwrap()
}

/// A reporter reads no case: after filing one through the form they land on
/// their own page, told that the focal points have it, and the answer names
/// no case (theirs or the pupil's others).
async fn a_reporter_lands_on_their_page_after_filing(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let phone = Browser::open(&app, Role::Reporter).await;
    let token = phone.token().await;
    let form = intake_form(&phone.csrf, &token, "Lê Thị Reporter", &[]);
    let (status, location, _) = phone.send(form.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/?done=case_filed");
    assert_eq!(cases_in_store(&app), 1);
    let (status, location, _) = phone.send(form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/?done=case_already_filed");
    assert_eq!(cases_in_store(&app), 1);
    let page = app
        .client
        .get(app.url("/?done=case_filed"))
        .header("cookie", &phone.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Đã gửi trường hợp đến cán bộ đầu mối"),
        "the notice is shown"
    );
    // Any other code shows nothing (no text from the URL reaches the page).
    let html = app
        .client
        .get(app.url("/?done=case_created"))
        .header("cookie", &phone.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("id=\"notice\""));
}

async fn a_replayed_intake_form_token_makes_no_second_case(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let phone = Browser::open(&app, Role::FocalPoint).await;
    let token = phone.token().await;
    assert_eq!(token.len(), 43);
    let form = intake_form(&phone.csrf, &token, "Lê Thị Replay", &[]);
    let (status, first, _) = phone.send(form.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(first.ends_with("?done=case_created"), "{first}");
    // The same form again (a double tap, a reload): the same case, shown.
    let (status, again, _) = phone.send(form.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        again,
        format!("/cases/{}?done=case_already_created", case_of(&first))
    );
    assert_eq!(cases_in_store(&app), 1);

    // Sent twice at once: still one case.
    let token = phone.token().await;
    let form = intake_form(&phone.csrf, &token, "Lê Thị Race", &[]);
    let (one, two) = tokio::join!(phone.send(form.clone()), phone.send(form.clone()));
    assert_eq!(
        (one.0, two.0),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    assert_eq!(case_of(&one.1), case_of(&two.1));
    assert_eq!(cases_in_store(&app), 2);

    // Another session's token, an unknown one, none, an expired one: the
    // form again with what was typed and a clear error; nothing made.
    let other = Browser::open(&app, Role::FocalPoint).await;
    let foreign = other.token().await;
    let expired = phone.token().await;
    {
        use caseguard::db::schema::intake_tokens::dsl as t;
        let hash = caseguard::crypto::sha256_hex(expired.as_bytes());
        let past = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let changed = diesel::update(t::intake_tokens.find(hash))
            .set(t::expires_at.eq(past))
            .execute(&mut app.db.connect())
            .unwrap();
        assert_eq!(changed, 1);
    }
    for (label, token) in [
        ("another session's", foreign.as_str()),
        ("unknown", &"x".repeat(43)),
        ("missing", ""),
        ("expired", expired.as_str()),
    ] {
        let (status, _, html) = phone
            .send(intake_form(&phone.csrf, token, "Lê Thị Foreign", &[]))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}");
        assert!(html.contains("Biểu mẫu đã hết hạn"), "{label}: {html}");
        assert!(
            html.contains("value=\"Lê Thị Foreign\""),
            "{label}: typed values kept"
        );
        let fresh = intake_token_in(&html);
        assert_ne!(fresh, token, "{label}: a fresh token");
        assert_eq!(cases_in_store(&app), 2, "{label}");
    }
    // The fresh token of the refused form works once.
    let (_, _, html) = phone
        .send(intake_form(&phone.csrf, "", "Lê Thị Fresh", &[]))
        .await;
    let fresh = intake_token_in(&html);
    let (status, location, _) = phone
        .send(intake_form(&phone.csrf, &fresh, "Lê Thị Fresh", &[]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("?done=case_created"));
    assert_eq!(cases_in_store(&app), 3);
    // A token is stored hashed only.
    let stored: Vec<String> = caseguard::db::schema::intake_tokens::table
        .select(caseguard::db::schema::intake_tokens::token_hash)
        .load(&mut app.db.connect())
        .unwrap();
    assert!(!stored.contains(&fresh) && stored.len() >= 5);
}

async fn consent_is_recorded_in_the_intake_steps(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let (cookie, csrf) = app.browser_session(&focal).await;
    let phone = Browser {
        app: &app,
        cookie,
        csrf,
    };
    // A consent that contradicts itself: the form again, no case, and the
    // same token still good for the corrected form.
    let token = phone.token().await;
    let bad = [
        ("consent.given_by", "none"),
        ("consent.services", "1"),
        ("consent.legal_basis", "consent"),
    ];
    let (status, _, html) = phone
        .send(intake_form(&phone.csrf, &token, "Đỗ Văn Consent", &bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("khi không có ai đồng ý"), "{html}");
    assert!(html.contains("<option value=\"none\" selected>"));
    assert_eq!(intake_token_in(&html), token);
    assert_eq!(cases_in_store(&app), 0);
    // Saving a draft keeps the form's token.
    let draft = app
        .client
        .post(app.url("/cases/new/draft"))
        .header("cookie", &phone.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(intake_form(&phone.csrf, &token, "Đỗ Văn Consent", &bad))
        .send()
        .await
        .unwrap();
    assert_eq!(draft.status(), StatusCode::OK);
    assert_eq!(intake_token_in(&draft.text().await.unwrap()), token);
    let good = [
        ("consent.given_by", "guardian"),
        ("consent.services", "1"),
        ("consent.disclosure_to", "health"),
        ("consent.disclosure_to", "police"),
        ("consent.legal_basis", "consent"),
        ("consent.withheld", "Không báo cho bố em"),
    ];
    let (status, location, _) = phone
        .send(intake_form(&phone.csrf, &token, "Đỗ Văn Consent", &good))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let id = case_of(&location).to_owned();
    let api = app.token(&focal).await;
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &api)
        .await
        .json()
        .await
        .unwrap();
    let consent = &case["consent"];
    assert_eq!(consent["given_by"], "guardian", "{case}");
    assert_eq!(consent["services"], true);
    assert_eq!(consent["reporting"], false);
    assert_eq!(consent["withheld"], "Không báo cho bố em");
    let to: BTreeSet<&str> = consent["disclosure_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(to, BTreeSet::from(["health", "police"]));
    // Recorded with the case, at the same moment.
    assert_eq!(consent["recorded_at"], case["created_at"], "{case}");

    // A reporter files a concern but does not record consent: refused
    // whole, no case.
    let reporter = Browser::open(&app, Role::Reporter).await;
    let token = reporter.token().await;
    let form_page = app
        .client
        .get(app.url("/cases/new"))
        .header("cookie", &reporter.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!form_page.contains("name=\"consent.given_by\""));
    let (status, _, html) = reporter
        .send(intake_form(
            &reporter.csrf,
            &token,
            "Đỗ Văn Reporter",
            &good,
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Chỉ cán bộ đầu mối"), "{html}");
    assert_eq!(cases_in_store(&app), 1);
    let (status, _, _) = reporter
        .send(intake_form(&reporter.csrf, &token, "Đỗ Văn Reporter", &[]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(cases_in_store(&app), 2);
}

/// The journey in a real browser: find cases with filters and pages, open a
/// pupil's chronology, then — without JavaScript — record a case with its
/// consent and send the same form twice: one case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_cases_and_a_double_submitted_intake_in_the_browser() {
    use crate::browser::{
        browser, choose, chromedriver, click, earlier_case, fill, shot, sign_in, spawn_app, submit,
        text,
    };
    use fantoccini::Locator;

    let Some(driver) = chromedriver() else { return };
    let app = spawn_app().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let token = app.token(&focal).await;
    // Four earlier cases of different pupils, two of one pupil.
    let mut ids = Vec::new();
    for (i, key) in [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (7, "e"), (7, "f")] {
        let mut body = earlier_case(i);
        if i == 2 {
            body["risk_level"] = json!("high");
        }
        let (status, created) = app.post_case(&token, key, &body).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
        app.clock.advance(chrono::Duration::minutes(2));
    }
    let client = browser(&driver, true).await;
    sign_in(&app, &client, &focal).await;
    submit(&client, "#find-cases").await;
    assert!(text(&client).await.contains("Số trường hợp tìm thấy: 6"));
    shot(&client, "finding-01-all-cases").await;
    choose(&client, "search-status", "open").await;
    choose(&client, "search-risk_level", "high").await;
    submit(&client, "#search-submit").await;
    let page = text(&client).await;
    assert!(page.contains("Số trường hợp tìm thấy: 1"), "{page}");
    let url = client.current_url().await.unwrap();
    assert_eq!(
        url.query(),
        Some("status=open&risk_level=high&incident_type=&from=&to=")
    );
    assert!(
        client
            .find(Locator::Css(&format!(
                "#results a[href='/cases/{}']",
                ids[2]
            )))
            .await
            .is_ok()
    );
    shot(&client, "finding-02-filtered").await;
    // Pages of two, newest first.
    client.goto(&app.url("/cases?limit=2")).await.unwrap();
    submit(&client, "#page-next").await;
    let page = text(&client).await;
    assert!(page.contains("Trang 2 / 3"), "{page}");
    assert!(
        client
            .find(Locator::Css(&format!(
                "#results a[href='/cases/{}']",
                ids[3]
            )))
            .await
            .is_ok()
    );
    shot(&client, "finding-03-page-two").await;
    // The pupil with two cases: linked from the case, one chronology.
    client
        .goto(&app.url(&format!("/cases/{}", ids[5])))
        .await
        .unwrap();
    assert!(
        client
            .find(Locator::Css(&format!(
                "#pupil-cases a[href='/cases/{}']",
                ids[4]
            )))
            .await
            .is_ok()
    );
    submit(&client, "#pupil-chronology-link").await;
    let page = text(&client).await;
    assert!(
        page.contains("Diễn biến của học sinh qua các trường hợp"),
        "{page}"
    );
    let entries = client
        .find_all(Locator::Css("#pupil-chronology li"))
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    shot(&client, "finding-04-pupil-chronology").await;
    client.close().await.unwrap();

    // Without JavaScript: intake with consent, the form sent twice.
    let client = browser(&driver, false).await;
    sign_in(&app, &client, &focal).await;
    client.goto(&app.url("/cases/new")).await.unwrap();
    choose(&client, "incident.type", "psychological_abuse").await;
    fill(&client, "incident.date", "10312026").await;
    choose(&client, "incident.location_type", "online").await;
    choose(&client, "incident.perpetrator_relation", "online_contact").await;
    fill(
        &client,
        "incident.narrative",
        "Em bị nhắn tin đe doạ trên mạng.",
    )
    .await;
    fill(&client, "pupil.name", "Hà Thị Hai Lần").await;
    fill(&client, "pupil.date_of_birth", "05052013").await;
    choose(&client, "pupil.sex", "female").await;
    choose(&client, "consent.given_by", "pupil_and_guardian").await;
    click(&client, "input[name='consent.services']").await;
    click(&client, "input[name='consent.disclosure_to'][value=health]").await;
    choose(&client, "consent.legal_basis", "consent").await;
    click(&client, "input[name=risk_level][value=medium]").await;
    shot(&client, "finding-05-intake-consent-no-js").await;
    // What the form sends, to send it again as a second tap would.
    let sent = client
        .execute(
            "return new URLSearchParams(new FormData(document.getElementById('intake'))).toString();",
            vec![],
        )
        .await
        .unwrap();
    let sent = sent.as_str().unwrap().to_owned();
    assert!(sent.contains("intake_token="), "{sent}");
    submit(&client, "#intake-submit").await;
    let first = client.current_url().await.unwrap();
    assert!(first.as_str().ends_with("?done=case_created"), "{first}");
    assert!(text(&client).await.contains("Đã lưu trường hợp"));
    client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/cases/new';
             for (const [k, v] of new URLSearchParams(arguments[0])) {
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![json!(sent)],
        )
        .await
        .unwrap();
    let mut again = first.clone();
    for _ in 0..200 {
        again = client.current_url().await.unwrap();
        if again != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(again.path(), first.path(), "the same case");
    assert_eq!(again.query(), Some("done=case_already_created"));
    let page = text(&client).await;
    assert!(page.contains("Biểu mẫu này đã được gửi trước đó"), "{page}");
    shot(&client, "finding-06-sent-twice-one-case").await;
    assert_eq!(cases_in_store(&app), 7);
    // Its consent was recorded with it.
    let id = first.path().trim_start_matches("/cases/").to_owned();
    let token = app.token(&focal).await;
    let case: Value = app
        .get_with_token(&format!("/api/v1/cases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(case["consent"]["given_by"], "pupil_and_guardian", "{case}");
    assert_eq!(case["consent"]["disclosure_to"], json!(["health"]));
    client.close().await.unwrap();
}
