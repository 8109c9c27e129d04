//! Hostile inputs against the real server (issue 9), on both backends.
//!
//! Every input of the hostile list must be refused with a 4xx, carry the
//! JSON error body (the web forms: their HTML refusal page), and store
//! nothing: the rows of every content table are counted before and after
//! each one. Text that is merely strange — SQL, template and markup
//! metacharacters — is valid text: it is stored sealed and must come back
//! verbatim, never executed or interpreted. The test prints a tally.

use std::collections::BTreeMap;

use caseguard::db::{DbConnection, schema};
use caseguard::domain::user::Role;
use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, TestApp};

on_both_backends!(hostile_inputs_are_refused_and_store_nothing);

const SCHOOL: &str = "SX-AL-AB-TH";
const POLICE: &str = "SX-AL-CA";
const HEALTH: &str = "SX-AL-YT";

/// Valid text a careless server would execute or interpret.
const METACHARACTERS: &[&str] = &[
    "'; DROP TABLE cases;--",
    "\" OR 1=1 --",
    "{{7*7}}",
    "${7*7}",
    "<%= 7*7 %> #{7*7} {0} %s%n",
    "<script>alert(1)</script>",
];

/// Rows of every table a request could add to (not the audit log: refusals
/// are audited on purpose).
fn counts(conn: &mut DbConnection) -> BTreeMap<&'static str, i64> {
    macro_rules! count {
        ($($table:ident),+ $(,)?) => {
            BTreeMap::from([$(
                (stringify!($table), schema::$table::table.count().get_result::<i64>(conn).unwrap()),
            )+])
        };
    }
    count!(
        organisations,
        users,
        credentials,
        recovery_codes,
        sessions,
        revoked_tokens,
        cases,
        case_requests,
        case_keys,
        pupils,
        incidents,
        chronology,
        break_glass,
        consents,
        perpetrators,
        attachments,
        referrals,
        suggestion_skips,
        deadlines,
        escalations,
        partner_links,
        partner_sessions,
        drafts,
        outbox,
    )
}

fn case_body(text: &str) -> Value {
    json!({
        "risk_level": "medium",
        "pupil": {
            "name": format!("Nguyễn Văn {text}"),
            "date_of_birth": "2014-05-02",
            "sex": "male",
            "class": format!("6A {text}"),
            "disability": false,
            "guardian": format!("Mẹ {text}"),
            "contact": format!("0912 {text}")
        },
        "incident": {
            "type": "sexual_assault",
            "contexts": ["on_premises"],
            "date": "2026-10-30",
            "location_type": "school_premises",
            "perpetrator_relation": "teacher_or_staff",
            "narrative": format!("Em kể lại: {text}")
        }
    })
}

/// One hostile request.
struct Probe {
    label: String,
    method: Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<(String, Vec<u8>)>,
    bearer: bool,
}

fn probe(label: impl Into<String>, method: Method, path: impl Into<String>) -> Probe {
    Probe {
        label: label.into(),
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        bearer: true,
    }
}

impl Probe {
    fn json(self, body: &Value) -> Self {
        self.raw("application/json", serde_json::to_vec(body).unwrap())
    }

    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn anonymous(mut self) -> Self {
        self.bearer = false;
        self
    }
}

struct Tally {
    tried: usize,
    accepted: Vec<String>,
    server_errors: Vec<String>,
    problems: Vec<String>,
    valid_text_stored: usize,
}

impl Tally {
    fn refused(&mut self, label: &str, status: StatusCode, body: &str, json_body: bool) {
        self.tried += 1;
        if status.is_server_error() {
            self.server_errors.push(format!("{label}: {status} {body}"));
        } else if !status.is_client_error() {
            self.accepted.push(format!("{label}: {status} {body}"));
        } else if json_body {
            let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if !parsed["error"]["code"].is_string() || !parsed["error"]["message"].is_string() {
                self.problems.push(format!(
                    "{label}: {status} without a JSON error body: {body}"
                ));
            }
        }
    }
}

struct World {
    app: TestApp,
    token: String,
    case: String,
    cookie: String,
    csrf: String,
    conn: DbConnection,
    baseline: BTreeMap<&'static str, i64>,
    tally: Tally,
}

impl World {
    async fn send(&self, probe: &Probe) -> (StatusCode, String) {
        let mut request = self
            .app
            .client
            .request(probe.method.clone(), self.app.url(&probe.path));
        if probe.bearer {
            request = request.bearer_auth(&self.token);
        }
        for (name, value) in &probe.headers {
            request = request.header(
                name.as_str(),
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        if let Some((content_type, body)) = &probe.body {
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            request = request.body(body.clone());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                (status, response.text().await.unwrap_or_default())
            }
            // The server may answer a declared oversized body at once and
            // close while the client is still writing: ask again with the
            // headers only and read the answer.
            Err(error)
                if error.is_request()
                    && probe.body.as_ref().is_some_and(|(_, b)| b.len() > 1 << 20) =>
            {
                let (content_type, body) = probe.body.as_ref().unwrap();
                let head = format!(
                    "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    probe.method,
                    probe.path,
                    self.token,
                    body.len()
                );
                let (status, answer) = self.raw_http(head.into_bytes()).await;
                let body = answer
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                (StatusCode::from_u16(status).unwrap(), body)
            }
            Err(error) => panic!("{}: {error}", probe.label),
        }
    }

    /// Sends a probe that must be refused and leave every table as it was.
    async fn refuse(&mut self, probe: Probe) {
        let (status, body) = self.send(&probe).await;
        self.tally.refused(&probe.label, status, &body, true);
        self.unchanged(&probe.label);
    }

    fn unchanged(&mut self, label: &str) {
        let now = counts(&mut self.conn);
        if now != self.baseline {
            let changed: Vec<String> = now
                .iter()
                .filter(|(table, n)| self.baseline.get(*table) != Some(n))
                .map(|(table, n)| format!("{table}: {} → {n}", self.baseline[table]))
                .collect();
            self.tally
                .problems
                .push(format!("{label}: rows changed ({})", changed.join(", ")));
            self.baseline = now;
        }
    }

    /// A raw HTTP/1.1 request over TCP, for what reqwest refuses to send.
    async fn raw_http(&self, request: Vec<u8>) -> (u16, String) {
        let address = self.app.address.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

async fn hostile_inputs_are_refused_and_store_nothing(backend: Backend) {
    let Some(app) =
        TestApp::spawn_configured(backend, None, &[("outbox_poll_seconds", json!(0))]).await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, SCHOOL).await;
    let officer = app.user(Role::AgencyOfficer, POLICE).await;
    let token = app.token(&focal).await;

    // A case and a referral for the routes that need them.
    let created = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&token)
        .json(&case_body("Ổn"))
        .send()
        .await
        .unwrap();
    let status = created.status();
    let created: Value = created.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let case = created["id"].as_str().unwrap().to_owned();
    let police_id = app.org_id(POLICE).await;
    let health_id = app.org_id(HEALTH).await;
    let sent = app
        .client
        .post(app.url(&format!("/api/v1/cases/{case}/referrals")))
        .bearer_auth(&token)
        .json(&json!({"agency_id": police_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    let referral = sent.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A browser session for the web forms.
    let (cookie, csrf) = app.browser_session(&focal).await;

    let mut conn = app.db.connect();
    let baseline = counts(&mut conn);
    let mut world = World {
        app,
        token,
        case: case.clone(),
        cookie,
        csrf,
        conn,
        baseline,
        tally: Tally {
            tried: 0,
            accepted: Vec::new(),
            server_errors: Vec::new(),
            problems: Vec::new(),
            valid_text_stored: 0,
        },
    };

    for probe in hostile_list(&case, &referral, &police_id, &health_id) {
        world.refuse(probe).await;
    }
    header_injection(&mut world).await;
    web_forms_without_csrf(&mut world).await;
    let (tried, accepted) = (world.tally.tried, world.tally.accepted.len());

    metacharacters_are_stored_verbatim(&mut world, &officer, &health_id).await;

    eprintln!(
        "hostile inputs ({backend:?}): tried {tried}, accepted {accepted}, 5xx {}, other problems {}; \
         valid text with metacharacters stored sealed and read back verbatim: {}",
        world.tally.server_errors.len(),
        world.tally.problems.len(),
        world.tally.valid_text_stored,
    );
    let Tally {
        accepted,
        server_errors,
        problems,
        ..
    } = &world.tally;
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
    assert!(server_errors.is_empty(), "5xx: {server_errors:#?}");
    assert!(problems.is_empty(), "problems: {problems:#?}");
}

/// The API part of the list: every item must be refused.
fn hostile_list(case: &str, referral: &str, police_id: &str, health_id: &str) -> Vec<Probe> {
    let post = Method::POST;
    let cases = "/api/v1/cases";
    let notes = format!("/api/v1/cases/{case}/notes");
    let transitions = format!("/api/v1/cases/{case}/transitions");
    let consent = format!("/api/v1/cases/{case}/consent");
    let referrals = format!("/api/v1/cases/{case}/referrals");
    let attachments = format!("/api/v1/cases/{case}/attachments");
    let open = "/api/v1/partner-links/open";
    let good_consent = json!({
        "given_by": "guardian", "services": true, "reporting": true,
        "disclosure": false, "legal_basis": "consent"
    });
    let pdf = b"%PDF-1.4\n% caseguard test\n".to_vec();
    let mut list = Vec::new();

    // Oversized bodies (limit 1 MiB; attachments 10 MiB).
    let big = "x".repeat(2 * 1024 * 1024);
    list.push(
        probe("intake body of 2 MiB", post.clone(), cases)
            .raw("application/json", format!("{{\"risk_level\": \"{big}\"}}")),
    );
    list.push(
        probe("note body of 2 MiB", post.clone(), &notes).json(&json!({ "note": big.clone() })),
    );
    list.push(
        probe("sign-in body of 2 MiB", post.clone(), "/api/v1/auth/token")
            .anonymous()
            .json(&json!({"email": "a@b.invalid", "password": big.clone(), "totp": "123456"})),
    );
    list.push(
        probe("attachment of 11 MiB", post.clone(), &attachments).raw("application/pdf", {
            let mut body = pdf.clone();
            body.resize(11 * 1024 * 1024, b'x');
            body
        }),
    );
    list.push(
        probe("note of 10 001 characters", post.clone(), &notes)
            .json(&json!({ "note": "ư".repeat(10_001) })),
    );
    let mut long_name = case_body("x");
    long_name["pupil"]["name"] = json!("ư".repeat(201));
    list.push(probe("pupil name of 201 characters", post.clone(), cases).json(&long_name));
    list.push(
        probe("referral note of 4001 characters", post.clone(), &referrals).json(
            &json!({"agency_id": health_id, "override_reason": "a long enough reason", "note": "a".repeat(4001)}),
        ),
    );

    // Deeply nested JSON.
    for (label, body) in [
        ("100 000 nested arrays", "[".repeat(100_000)),
        (
            "5 000 nested objects",
            "{\"a\":".repeat(5_000) + &"}".repeat(5_000),
        ),
    ] {
        list.push(
            probe(format!("intake: {label}"), post.clone(), cases)
                .raw("application/json", body.clone()),
        );
        list.push(
            probe(format!("note: {label}"), post.clone(), &notes)
                .raw("application/json", body.clone()),
        );
    }
    let mut deep = case_body("x");
    deep["pupil"]["name"] =
        serde_json::from_str(&("[".repeat(200) + &"]".repeat(200))).unwrap_or(json!([[[[[[]]]]]]));
    list.push(probe("intake: nested arrays in a text field", post.clone(), cases).json(&deep));

    // Invalid UTF-8.
    let mut invalid = br#"{"note": "caf"#.to_vec();
    invalid.extend_from_slice(b"\xff\xfe\xc3\x28\"}");
    list.push(
        probe("note: invalid UTF-8", post.clone(), &notes).raw("application/json", invalid.clone()),
    );
    let intake = serde_json::to_vec(&case_body("x")).unwrap();
    let mut broken = intake.clone();
    if let Some(at) = broken.windows(6).position(|w| w == b"Nguy\xe1\xbb") {
        broken[at + 4] = 0xff;
    }
    list.push(
        probe("intake: invalid UTF-8 in the name", post.clone(), cases)
            .raw("application/json", broken),
    );
    list.push(
        probe("sign-in: invalid UTF-8", post.clone(), "/api/v1/auth/token")
            .anonymous()
            .raw(
                "application/json",
                b"{\"email\": \"\xff@x\", \"password\": \"p\"}".to_vec(),
            ),
    );
    list.push(
        probe("partner link: invalid UTF-8", post.clone(), open)
            .anonymous()
            .raw(
                "application/json",
                b"{\"token\": \"\xc0\xaf\", \"code\": \"1\"}".to_vec(),
            ),
    );

    // Attachment names: traversal, control characters, bad encodings.
    for name in [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fcaseguard.db",
        "..\\..\\windows\\win.ini",
        "/etc/shadow",
        "..",
        "a%00b.pdf",
        "report%0D%0ASet-Cookie:%20x=1.pdf",
        "%FF%FE.pdf",
        "%zz.pdf",
        "%",
    ] {
        list.push(
            probe(
                format!("attachment name {name}"),
                post.clone(),
                &attachments,
            )
            .header("x-attachment-name", name)
            .raw("application/pdf", pdf.clone()),
        );
    }
    list.push(
        probe("attachment name with raw bytes", post.clone(), &attachments)
            .header("x-attachment-name", b"\xff\xfe../x".to_vec())
            .raw("application/pdf", pdf.clone()),
    );

    // Wrong content types.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
    ] {
        list.push(
            probe(format!("intake as {content_type:?}"), post.clone(), cases)
                .raw(content_type, intake.clone()),
        );
    }
    list.push(
        probe("note as text/plain", post.clone(), &notes)
            .raw("text/plain", br#"{"note": "x"}"#.to_vec()),
    );
    for (content_type, body) in [
        ("application/x-msdownload", b"MZ\x90\x00".to_vec()),
        ("application/pdf", b"MZ\x90\x00 not a pdf".to_vec()),
        ("text/html", b"<script>alert(1)</script>".to_vec()),
        ("image/svg+xml", b"<svg onload=alert(1)>".to_vec()),
        ("application/json", br#"{"a": 1}"#.to_vec()),
    ] {
        list.push(
            probe(
                format!("attachment as {content_type}"),
                post.clone(),
                &attachments,
            )
            .raw(content_type, body),
        );
    }

    // Unknown fields and mass assignment.
    for (field, value) in [
        ("school_id", json!("00000000-0000-0000-0000-000000000000")),
        ("status", json!("closed")),
        ("id", json!("x")),
        ("version", json!(7)),
    ] {
        let mut body = case_body("x");
        body[field] = value;
        list.push(probe(format!("intake with `{field}`"), post.clone(), cases).json(&body));
    }
    list.push(
        probe("note with `author_id`", post.clone(), &notes)
            .json(&json!({"note": "x", "author_id": "someone"})),
    );
    let mut consent_extra = good_consent.clone();
    consent_extra["case_id"] = json!("x");
    list.push(probe("consent with `case_id`", post.clone(), &consent).json(&consent_extra));
    list.push(
        probe("referral with `legal_basis`", post.clone(), &referrals)
            .json(&json!({"agency_id": police_id, "legal_basis": "statutory_report"})),
    );
    list.push(
        probe("partner link with `referral_id`", post.clone(), open)
            .anonymous()
            .json(&json!({"token": "x", "code": "1", "referral_id": referral})),
    );

    // Huge numbers, negative and mistyped versions, absurd dates.
    for version in [
        json!(-1),
        json!(0),
        json!(2_147_483_647_i64),
        json!(2_147_483_648_i64),
        json!(-9_223_372_036_854_775_808_i64),
        json!(1e300),
        json!(18_446_744_073_709_551_615_u64),
        json!("1"),
        json!(null),
    ] {
        list.push(
            probe(
                format!("transition with version {version}"),
                post.clone(),
                &transitions,
            )
            .json(&json!({"to": "assessing", "version": version})),
        );
        list.push(
            probe(
                format!("update with version {version}"),
                Method::PATCH,
                format!("/api/v1/cases/{case}"),
            )
            .json(&json!({"version": version, "risk_level": "high"})),
        );
    }
    list.push(
        probe("transition with a huge literal", post.clone(), &transitions).raw(
            "application/json",
            format!(
                "{{\"to\": \"assessing\", \"version\": 1{}}}",
                "0".repeat(5000)
            ),
        ),
    );
    for limit in ["0", "-1", "501", "99999999999999999999", "1e3", "NaN"] {
        list.push(probe(
            format!("list with limit={limit}"),
            Method::GET,
            format!("{cases}?limit={limit}"),
        ));
    }
    for (field, value) in [
        ("date", "99999-01-01"),
        ("date", "+275760-09-13"),
        ("date", "0000-00-00"),
        ("date", "1899-12-31"),
        ("date", "2026-02-30"),
    ] {
        let mut body = case_body("x");
        body["incident"][field] = json!(value);
        list.push(probe(format!("incident date {value}"), post.clone(), cases).json(&body));
        let mut born = case_body("x");
        born["pupil"]["date_of_birth"] = json!(value);
        list.push(probe(format!("birth date {value}"), post.clone(), cases).json(&born));
    }
    let mut contexts = case_body("x");
    contexts["incident"]["contexts"] = json!(vec!["on_premises"; 1000]);
    list.push(probe("1000 contexts", post.clone(), cases).json(&contexts));

    // Metacharacters where only a code or an id is allowed.
    for meta in METACHARACTERS {
        for (path, field) in [
            ("pupil", "sex"),
            ("incident", "type"),
            ("incident", "location_type"),
        ] {
            let mut body = case_body("x");
            body[path][field] = json!(meta);
            list.push(
                probe(
                    format!("intake {path}.{field} = {meta}"),
                    post.clone(),
                    cases,
                )
                .json(&body),
            );
        }
        let mut risk = case_body("x");
        risk["risk_level"] = json!(meta);
        list.push(probe(format!("intake risk_level = {meta}"), post.clone(), cases).json(&risk));
        list.push(
            probe(format!("transition to {meta}"), post.clone(), &transitions)
                .json(&json!({"to": meta, "version": 1})),
        );
        let mut giver = good_consent.clone();
        giver["given_by"] = json!(meta);
        list.push(probe(format!("consent given_by = {meta}"), post.clone(), &consent).json(&giver));
        let mut to = good_consent.clone();
        to["disclosure_to"] = json!([meta]);
        list.push(
            probe(
                format!("consent disclosure_to = {meta}"),
                post.clone(),
                &consent,
            )
            .json(&to),
        );
        list.push(
            probe(
                format!("referral agency_id = {meta}"),
                post.clone(),
                &referrals,
            )
            .json(&json!({"agency_id": meta})),
        );
        list.push(
            probe(format!("partner link token = {meta}"), post.clone(), open)
                .anonymous()
                .json(&json!({"token": meta, "code": meta})),
        );
        list.push(
            probe(
                format!("sign-in as {meta}"),
                post.clone(),
                "/api/v1/auth/token",
            )
            .anonymous()
            .json(&json!({"email": meta, "password": meta, "totp": meta})),
        );
        let encoded: String = meta.bytes().map(|b| format!("%{b:02X}")).collect();
        list.push(probe(
            format!("case id = {meta}"),
            Method::GET,
            format!("{cases}/{encoded}"),
        ));
        list.push(probe(
            format!("list status = {meta}"),
            Method::GET,
            format!("{cases}?status={encoded}"),
        ));
        list.push(probe(
            format!("referral id = {meta}"),
            Method::GET,
            format!("/api/v1/referrals/{encoded}"),
        ));
    }
    // Partner-link recipients the outbox would refuse (was a 500: the link
    // checked the address more loosely than the outbox).
    for email in [
        "a@@example.org",
        "a@b_c.example",
        "a@-x.example",
        "x@y.z<script>",
        "'; DROP TABLE partner_links;--@x.org",
    ] {
        list.push(
            probe(
                format!("partner link for {email}"),
                post.clone(),
                format!("/api/v1/referrals/{referral}/links"),
            )
            .json(&json!({ "email": email })),
        );
    }
    list.push(
        probe(
            "partner link token of 10 000 characters",
            post.clone(),
            open,
        )
        .anonymous()
        .json(&json!({"token": "A".repeat(10_000), "code": "12345678"})),
    );
    list.push(
        probe(
            "a referral override reason that is too short",
            post.clone(),
            &referrals,
        )
        .json(&json!({"agency_id": health_id, "override_reason": "{{7*7}}"})),
    );
    list.push(probe(
        "case id with traversal",
        Method::GET,
        format!("{cases}/..%2F..%2Fetc%2Fpasswd"),
    ));
    list.push(probe(
        "case id of 10 000 characters",
        Method::GET,
        format!("{cases}/{}", "9".repeat(10_000)),
    ));

    // Idempotency keys.
    for key in ["a".repeat(129), "two words".to_owned(), String::new()] {
        list.push(
            probe(
                format!(
                    "idempotency key {:?}",
                    key.chars().take(12).collect::<String>()
                ),
                post.clone(),
                cases,
            )
            .header("idempotency-key", key.clone())
            .json(&case_body("x")),
        );
    }
    list.push(
        probe("idempotency key with raw bytes", post.clone(), cases)
            .header("idempotency-key", b"k\xc3\xa9y".to_vec())
            .json(&case_body("x")),
    );
    list
}

/// CR and LF in headers: refused by the HTTP parser or by our own checks,
/// and never reflected into a response header.
async fn header_injection(world: &mut World) {
    let case = world.case.clone();
    let token = world.token.clone();
    let note = br#"{"note": "header injection"}"#;
    for (label, header) in [
        (
            "bare CR in X-Request-Id",
            b"X-Request-Id: abcdefgh\rSet-Cookie: evil=1".to_vec(),
        ),
        (
            "bare CR in Idempotency-Key",
            b"Idempotency-Key: k1\rSet-Cookie: evil=1".to_vec(),
        ),
        (
            "NUL in X-Attachment-Name",
            b"X-Attachment-Name: a\0b.pdf".to_vec(),
        ),
        (
            "folded header (obs-fold)",
            b"X-Request-Id: abcdefgh\r\n Set-Cookie: evil=1".to_vec(),
        ),
    ] {
        let mut request = format!(
            "POST /api/v1/cases/{case}/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            note.len()
        )
        .into_bytes();
        request.extend_from_slice(&header);
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(note);
        let (status, answer) = world.raw_http(request).await;
        world.tally.tried += 1;
        // hyper answers a malformed request itself, with an empty body.
        if !(400..500).contains(&status) {
            world
                .tally
                .accepted
                .push(format!("{label}: {status} {answer}"));
        }
        if answer.to_ascii_lowercase().contains("evil") {
            world
                .tally
                .problems
                .push(format!("{label}: reflected: {answer}"));
        }
        world.unchanged(label);
    }
    // Encoded CR/LF in the request id: not believed, not echoed.
    let response = world
        .app
        .client
        .get(world.app.url("/api/v1/me"))
        .bearer_auth(&world.token)
        .header("x-request-id", "abcdefgh%0d%0aSet-Cookie:%20evil=1")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
    assert!(response.headers().get("set-cookie").is_none());
}

/// The web forms: without the session's CSRF token, or from another
/// origin, refused with 403 before anything is read or stored.
async fn web_forms_without_csrf(world: &mut World) {
    let intake = [
        ("risk_level", "medium"),
        ("pupil.name", "Nguyễn CSRF"),
        ("pupil.date_of_birth", "2014-05-02"),
        ("pupil.sex", "male"),
        ("incident.type", "sexual_assault"),
        ("incident.contexts", "on_premises"),
        ("incident.date", "2026-10-30"),
        ("incident.location_type", "school_premises"),
        ("incident.perpetrator_relation", "teacher_or_staff"),
        ("incident.narrative", "CSRF narrative"),
    ];
    let form = |csrf: Option<&str>| {
        let mut pairs: Vec<(&str, &str)> = intake.to_vec();
        if let Some(csrf) = csrf {
            pairs.push(("csrf", csrf));
        }
        serde_urlencoded::to_string(pairs).unwrap()
    };
    let wrong = "A".repeat(world.csrf.len());
    let cases: [(&str, String, Option<&str>); 5] = [
        ("intake form without a CSRF token", form(None), None),
        (
            "intake form with a wrong CSRF token",
            form(Some(&wrong)),
            None,
        ),
        ("intake form with an empty CSRF token", form(Some("")), None),
        (
            "intake form from another origin",
            form(Some(&world.csrf)),
            Some("https://evil.example"),
        ),
        (
            "intake form, cross-site fetch",
            form(Some(&world.csrf)),
            Some("null"),
        ),
    ];
    for (label, body, origin) in cases {
        let mut request = world
            .app
            .client
            .post(world.app.url("/cases/new"))
            .header("cookie", &world.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = origin {
            request = request
                .header("origin", origin)
                .header("sec-fetch-site", "cross-site");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        world.tally.refused(label, status, "", false);
        if status != StatusCode::FORBIDDEN {
            world
                .tally
                .problems
                .push(format!("{label}: {status}, not 403"));
        }
        world.unchanged(label);
    }
    // The sign-in and partner forms have no session yet: the origin check
    // is their CSRF defence.
    for (label, path, body) in [
        (
            "sign-in form from another origin",
            "/login".to_owned(),
            "email=a%40b.invalid&password=xxxxxxxxxxxx&totp=123456".to_owned(),
        ),
        (
            "partner form from another origin",
            format!("/partner/{}", "A".repeat(43)),
            "code=12345678".to_owned(),
        ),
    ] {
        let response = world
            .app
            .client
            .post(world.app.url(&path))
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        world.tally.refused(label, status, "", false);
        if status != StatusCode::FORBIDDEN {
            world
                .tally
                .problems
                .push(format!("{label}: {status}, not 403"));
        }
        world.unchanged(label);
    }
}

/// Valid text full of metacharacters in every free-text field: stored
/// sealed, read back byte for byte, and escaped in the pages.
async fn metacharacters_are_stored_verbatim(
    world: &mut World,
    officer: &crate::helpers::TestUser,
    health_id: &str,
) {
    let all = METACHARACTERS.join(" ");
    let created = world
        .app
        .client
        .post(world.app.url("/api/v1/cases"))
        .bearer_auth(&world.token)
        .json(&{
            let mut body = case_body(&all);
            // The class holds at most 40 characters.
            body["pupil"]["class"] = json!("6A '; DROP TABLE cases;--");
            body
        })
        .send()
        .await
        .unwrap();
    let status = created.status();
    let created: Value = created.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    world.tally.valid_text_stored += 1;
    for meta in METACHARACTERS {
        let response = world
            .app
            .client
            .post(world.app.url(&format!("/api/v1/cases/{id}/notes")))
            .bearer_auth(&world.token)
            .json(&json!({ "note": meta }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "note {meta}");
        world.tally.valid_text_stored += 1;
    }
    let consent = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/cases/{id}/consent")))
        .bearer_auth(&world.token)
        .json(&json!({
            "given_by": "guardian", "services": false, "reporting": true,
            "disclosure": false, "legal_basis": "consent", "withheld": all
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::CREATED);
    world.tally.valid_text_stored += 1;
    let police_id = world.app.org_id(POLICE).await;
    for (agency, extra) in [
        (police_id, json!({"note": all})),
        (
            health_id.to_owned(),
            json!({"override_reason": all, "note": all}),
        ),
    ] {
        let mut body = json!({ "agency_id": agency });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        let response = world
            .app
            .client
            .post(world.app.url(&format!("/api/v1/cases/{id}/referrals")))
            .bearer_auth(&world.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        world.tally.valid_text_stored += 1;
        if body.get("override_reason").is_none() {
            let referral: Value = serde_json::from_str(&text).unwrap();
            let officer_token = world.app.token(officer).await;
            let view: Value = world
                .app
                .get_with_token(
                    &format!("/api/v1/referrals/{}", referral["id"].as_str().unwrap()),
                    &officer_token,
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(view["note"], json!(all), "the note must come back verbatim");
        }
    }

    // Read back: byte for byte, nothing evaluated.
    let case: Value = world
        .app
        .get_with_token(&format!("/api/v1/cases/{id}"), &world.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(case["pupil"]["name"], json!(format!("Nguyễn Văn {all}")));
    assert_eq!(case["pupil"]["class"], json!("6A '; DROP TABLE cases;--"));
    assert_eq!(case["pupil"]["guardian"], json!(format!("Mẹ {all}")));
    assert_eq!(case["pupil"]["contact"], json!(format!("0912 {all}")));
    assert_eq!(
        case["incidents"][0]["narrative"],
        json!(format!("Em kể lại: {all}"))
    );
    let notes: Vec<&str> = case["chronology"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["note"].as_str())
        .collect();
    for meta in METACHARACTERS {
        assert!(
            notes.contains(meta),
            "note {meta} not back verbatim: {notes:?}"
        );
    }
    // The tables the SQL would have dropped are still there.
    assert!(counts(&mut world.conn)["cases"] >= 2);
    // The workspace page escapes the markup and shows the template text as text.
    let page = world
        .app
        .client
        .get(world.app.url(&format!("/cases/{id}")))
        .header("cookie", &world.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "markup not escaped");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || html.contains("&#60;script&#62;"),
        "the escaped markup is missing"
    );
    assert!(
        html.contains("{{7*7}}") && html.contains("${7*7}"),
        "template text not shown as text"
    );
}
