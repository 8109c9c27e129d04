//! The authorization matrix: every role × every action × every relation,
//! compared with a reviewed snapshot (`snapshots/it__authz__matrix.snap`).
//! Also: every protected route refuses anonymous callers, and HTTP answers
//! follow the policy (outside your reach looks like "not there").

use caseguard::authz::{Action, OrgChain, Policies, Principal, Resource};
use caseguard::db::organisations;
use caseguard::domain::user::Role;
use caseguard::orgs::import;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, test_start};

/// A second district, for "another area" and "an unrelated agency".
const OTHER_DISTRICT: &str = "kind,code,name,parent,level,agency_type\n\
area,SX-BX,Huyện Bình Xuyên (demo),SX,district,\n\
area,SX-BX-TT,Thị trấn Bình Xuyên (demo),SX-BX,commune,\n\
school,SX-BX-TT-TH,Trường Tiểu học Thị trấn (demo),SX-BX-TT,primary,\n\
agency,SX-BX-CA,Công an huyện Bình Xuyên (demo),SX-BX,,police\n";

/// Where each role sits in the matrix.
fn home_of(role: Role) -> &'static str {
    match role {
        Role::Reporter | Role::FocalPoint => "SX-AL-AB-TH",
        Role::AgencyOfficer => "SX-AL-CA",
        Role::DistrictOfficer | Role::Monitor | Role::Admin | Role::Auditor => "SX-AL",
    }
}

const RELATIONS: &[&str] = &[
    "own organisation",
    "a child organisation",
    "the parent area",
    "a sibling school",
    "another area",
    "a recipient agency",
    "an unrelated agency",
];

/// The target organisation of each relation, for a caller at `home`.
fn target(home: &str, relation: &str) -> Option<&'static str> {
    match (home, relation) {
        (_, "another area") => Some("SX-BX"),
        (_, "a recipient agency") => Some("SX-AL-YT"),
        (_, "an unrelated agency") => Some("SX-BX-CA"),
        ("SX-AL-AB-TH", "own organisation") => Some("SX-AL-AB-TH"),
        ("SX-AL-AB-TH", "the parent area") => Some("SX-AL-AB"),
        ("SX-AL-AB-TH", "a sibling school") => Some("SX-AL-AB-MN"),
        ("SX-AL-CA", "own organisation") => Some("SX-AL-CA"),
        ("SX-AL-CA", "the parent area") => Some("SX-AL"),
        ("SX-AL-CA", "a sibling school") => Some("SX-AL-PM-TH"),
        ("SX-AL", "own organisation") => Some("SX-AL"),
        ("SX-AL", "a child organisation") => Some("SX-AL-AB"),
        ("SX-AL", "the parent area") => Some("SX"),
        ("SX-AL", "a sibling school") => Some("SX-BX-TT-TH"),
        _ => None,
    }
}

/// What a matrix question is about.
enum Ask {
    Org,
    Case { grant: bool, child: bool },
    Referral,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    let mut conn = app.db.connect();
    let rows = import::parse_csv(OTHER_DISTRICT).unwrap();
    import::import(&mut conn, &rows, &app.clock).unwrap();
    let policies = Policies::load(None).unwrap();
    let chain = |conn: &mut caseguard::db::DbConnection, code: &str| {
        let org = organisations::find_by_code(conn, code).unwrap().unwrap();
        OrgChain::load(conn, &org.id).unwrap().unwrap()
    };
    let mut table = String::new();
    let mut allowed = 0;
    for role in Role::ALL {
        let home = home_of(*role);
        let principal = Principal {
            user_id: format!("user-{}", role.as_str()),
            role: role.as_str().to_owned(),
            org_chain: chain(&mut conn, home),
        };
        // case.read is asked twice: without and with a break-glass grant;
        // overriding consent for a child and for an adult pupil.
        let mut asks: Vec<(Action, Ask, String)> = Vec::new();
        for action in Action::ALL {
            let label = action.as_str().to_owned();
            match action {
                Action::CaseRead => {
                    asks.push((
                        *action,
                        Ask::Case {
                            grant: false,
                            child: true,
                        },
                        label.clone(),
                    ));
                    asks.push((
                        *action,
                        Ask::Case {
                            grant: true,
                            child: true,
                        },
                        format!("{label}+grant"),
                    ));
                }
                Action::ReferralOverrideConsent => {
                    asks.push((
                        *action,
                        Ask::Case {
                            grant: false,
                            child: true,
                        },
                        format!("{label}+child"),
                    ));
                    asks.push((
                        *action,
                        Ask::Case {
                            grant: false,
                            child: false,
                        },
                        format!("{label}+adult"),
                    ));
                }
                Action::CaseBreakGlass
                | Action::CaseUpdate
                | Action::ReferralSend
                | Action::CaseTransfer
                | Action::CaseAssign
                | Action::CaseApproveClosure
                | Action::CaseLegalHold => asks.push((
                    *action,
                    Ask::Case {
                        grant: false,
                        child: true,
                    },
                    label,
                )),
                Action::ReferralRead | Action::ReferralRespond | Action::ReferralManage => {
                    asks.push((*action, Ask::Referral, label))
                }
                _ => asks.push((*action, Ask::Org, label)),
            }
        }
        for (action, on_case, label) in &asks {
            for relation in RELATIONS {
                let verdict = match target(home, relation) {
                    None => "n/a".to_owned(),
                    Some(code) => {
                        let org_chain = chain(&mut conn, code);
                        let resource = match on_case {
                            // A case recorded at the target organisation.
                            Ask::Case { grant, child } => Resource::Case {
                                case_id: format!("case-at-{code}"),
                                status: "reported".into(),
                                org_chain,
                                child: *child,
                                break_glass: *grant,
                            },
                            // A referral to the target when it is an agency
                            // (from the focal point's school), else from the
                            // target to the health centre.
                            Ask::Referral => {
                                let (agency, school) =
                                    if org_chain.0.first().is_some_and(|o| o.kind == "agency") {
                                        (org_chain, chain(&mut conn, "SX-AL-AB-TH"))
                                    } else {
                                        (chain(&mut conn, "SX-AL-YT"), org_chain)
                                    };
                                Resource::Referral {
                                    referral_id: format!("referral-at-{code}"),
                                    status: "sent".into(),
                                    agency_chain: agency,
                                    school_chain: school,
                                }
                            }
                            Ask::Org => Resource::Org(org_chain),
                        };
                        if policies.decide_on(&principal, *action, &resource) {
                            allowed += 1;
                            format!("ALLOW ({code})")
                        } else {
                            format!("deny  ({code})")
                        }
                    }
                };
                table.push_str(&format!(
                    "{:<17} {:<22} {:<21} {verdict}\n",
                    role.as_str(),
                    label,
                    relation
                ));
            }
        }
    }
    assert!(allowed > 0);
    insta::assert_snapshot!("matrix", table);
}

/// Every route behind authentication, with the action it is checked for.
pub(crate) const PROTECTED_ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/me", None),
    ("PATCH", "/api/v1/me", None),
    ("DELETE", "/api/v1/auth/token", None),
    ("DELETE", "/api/v1/auth/session", None),
    ("POST", "/api/v1/auth/logout-everywhere", None),
    ("POST", "/api/v1/auth/recovery-codes", None),
    ("GET", "/api/v1/organisations/SX-AL", Some("org.read")),
    (
        "GET",
        "/api/v1/organisations/SX-AL/users",
        Some("user.list"),
    ),
    (
        "POST",
        "/api/v1/organisations/SX-AL/users",
        Some("user.create"),
    ),
    (
        "POST",
        "/api/v1/users/0193a000-0000-7000-8000-000000000000/disable",
        Some("user.disable"),
    ),
    (
        "POST",
        "/api/v1/users/0193a000-0000-7000-8000-000000000000/reset-mfa",
        Some("user.reset_mfa"),
    ),
    (
        "POST",
        "/api/v1/users/0193a000-0000-7000-8000-000000000000/password-reset",
        Some("user.reset_mfa"),
    ),
    (
        "POST",
        "/api/v1/users/0193a000-0000-7000-8000-000000000000/enable",
        Some("user.disable"),
    ),
    ("GET", "/api/v1/audit", Some("audit.read")),
    ("GET", "/api/v1/audit/verify", Some("audit.verify")),
    ("POST", "/api/v1/cases", Some("case.create")),
    ("GET", "/api/v1/cases", Some("case.list")),
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000",
        Some("case.read"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/break-glass",
        Some("case.break_glass"),
    ),
    // Finding cases (issue 16): a pupil's chronology needs `case.read` on
    // every one of the pupil's cases.
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/pupil-chronology",
        Some("case.read"),
    ),
    // Break-glass review (issue 16).
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/break-glass",
        Some("break_glass.review"),
    ),
    ("GET", "/api/v1/break-glass", Some("break_glass.review")),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/transitions",
        Some("case.update"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/notes",
        Some("case.update"),
    ),
    // Case-work (issue 16): assignment, approval of closure, legal hold.
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/assignment",
        Some("case.assign"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/closure-request",
        Some("case.update"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/closure-request/approve",
        Some("case.approve_closure"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/closure-request/return",
        Some("case.approve_closure"),
    ),
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/legal-hold",
        Some("case.legal_hold"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/legal-hold",
        Some("case.legal_hold"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/consent",
        Some("case.update"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/incidents",
        Some("case.update"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/perpetrators",
        Some("case.update"),
    ),
    (
        "PATCH",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000",
        Some("case.update"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/attachments",
        Some("case.update"),
    ),
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/suggestions",
        Some("referral.send"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/suggestions/police/skip",
        Some("referral.send"),
    ),
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/referrals",
        Some("referral.override_consent"),
    ),
    ("GET", "/api/v1/referrals", Some("referral.list")),
    (
        "GET",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000",
        Some("referral.read"),
    ),
    (
        "POST",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000/answers",
        Some("referral.respond"),
    ),
    (
        "POST",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000/notes",
        Some("referral.respond"),
    ),
    (
        "POST",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000/withdraw",
        Some("referral.manage"),
    ),
    (
        "POST",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000/links",
        Some("referral.manage"),
    ),
    (
        "DELETE",
        "/api/v1/referrals/0193a000-0000-7000-8000-000000000000/links/0193a000-0000-7000-8000-000000000001",
        Some("referral.manage"),
    ),
    ("GET", "/api/v1/escalations", Some("escalation.list")),
    // Transfer of a case to another school (issue 16).
    (
        "POST",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/transfers",
        Some("case.transfer"),
    ),
    (
        "GET",
        "/api/v1/cases/0193a000-0000-7000-8000-000000000000/transfers",
        Some("case.read"),
    ),
    (
        "GET",
        "/api/v1/transfers/incoming",
        Some("case.transfer_answer"),
    ),
    ("GET", "/api/v1/transfers/outgoing", Some("case.list")),
    (
        "GET",
        "/api/v1/transfers/0193a000-0000-7000-8000-000000000000",
        Some("case.transfer_answer"),
    ),
    (
        "POST",
        "/api/v1/transfers/0193a000-0000-7000-8000-000000000000/accept",
        Some("case.transfer_answer"),
    ),
    (
        "POST",
        "/api/v1/transfers/0193a000-0000-7000-8000-000000000000/refuse",
        Some("case.transfer_answer"),
    ),
    (
        "POST",
        "/api/v1/transfers/0193a000-0000-7000-8000-000000000000/cancel",
        Some("case.transfer"),
    ),
    ("GET", "/api/v1/stats/periods", None),
    ("GET", "/api/v1/stats/report", Some("stats.read")),
    ("GET", "/api/v1/stats/report/export", Some("stats.read")),
    ("GET", "/api/v1/stats/chart", Some("stats.read")),
    ("GET", "/api/v1/stats/reports", Some("stats.read")),
    ("POST", "/api/v1/stats/reports", Some("stats.release")),
    (
        "GET",
        "/api/v1/stats/reports/0193a000-0000-7000-8000-000000000000",
        Some("stats.read"),
    ),
    (
        "GET",
        "/api/v1/stats/reports/0193a000-0000-7000-8000-000000000000/export",
        Some("stats.read"),
    ),
    (
        "POST",
        "/api/v1/stats/reports/0193a000-0000-7000-8000-000000000000/release",
        Some("stats.release"),
    ),
    (
        "POST",
        "/api/v1/stats/indicators",
        Some("indicators.submit"),
    ),
    (
        "POST",
        "/api/v1/stats/unit-indicators",
        Some("indicators.submit"),
    ),
    ("GET", "/api/v1/stats/unit-indicators", Some("stats.read")),
    ("GET", "/api/v1/stats/indicators/status", Some("stats.read")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_refuses_anonymous_callers_and_every_action_has_a_route() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for (method, path, _) in PROTECTED_ROUTES {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    for action in Action::ALL {
        assert!(
            PROTECTED_ROUTES
                .iter()
                .any(|(_, _, a)| *a == Some(action.as_str())),
            "{} has no route in PROTECTED_ROUTES",
            action.as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_follow_the_policy() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .unwrap()
        .with_demo_orgs()
        .await;
    {
        let mut conn = app.db.connect();
        import::import(
            &mut conn,
            &import::parse_csv(OTHER_DISTRICT).unwrap(),
            &app.clock,
        )
        .unwrap();
    }
    let admin = app.user(Role::Admin, "SX-AL").await;
    let admin_token = app.token(&admin).await;
    let create = |code: &'static str, email: &'static str| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/organisations/{code}/users")))
            .bearer_auth(&admin_token)
            .json(&json!({"role": "focal_point", "email": email, "name": "Cô giáo thử"}));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = create("SX-AL-AB-TH", "new.teacher@example.org").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["enrolment"], "sent_to_account_email", "{body}");
    assert!(!body.to_string().contains("/enrol/"), "{body}");
    // Another district's school answers like a school that does not exist.
    let (other, other_body) = create("SX-BX-TT-TH", "other.teacher@example.org").await;
    let (missing, missing_body) = create("NO-SUCH-SCHOOL", "ghost.teacher@example.org").await;
    assert_eq!((other, &other_body), (StatusCode::NOT_FOUND, &missing_body));
    assert_eq!(missing, StatusCode::NOT_FOUND);

    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let focal_token = app.token(&focal).await;
    let listing = app
        .get_with_token("/api/v1/organisations/SX-AL-AB-TH/users", &focal_token)
        .await;
    assert_eq!(listing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_with_token("/api/v1/audit", &focal_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with_token("/api/v1/organisations/SX-AL-AB-TH", &focal_token)
            .await
            .status(),
        StatusCode::OK
    );

    let auditor = app.user(Role::Auditor, "SX").await;
    let auditor_token = app.token(&auditor).await;
    let entries: Vec<Value> = app
        .get_with_token("/api/v1/audit?limit=500", &auditor_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "authz.denied" && e["details"]["action"] == "user.list")
    );
    assert!(entries.iter().any(|e| e["action"] == "user.created"));
    // Searching: denials only; an action and everything below it; a day.
    let denied: Vec<Value> = app
        .get_with_token("/api/v1/audit?outcome=denied&limit=500", &auditor_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(!denied.is_empty() && denied.len() < entries.len());
    assert!(
        denied.iter().all(|e| e["outcome"] == "denied"),
        "{denied:?}"
    );
    let users: Vec<Value> = app
        .get_with_token("/api/v1/audit?action=user&limit=500", &auditor_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(!users.is_empty());
    assert!(
        users
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("user.")),
        "{users:?}"
    );
    let day = test_start().date_naive();
    let next_day: Vec<Value> = app
        .get_with_token(
            &format!("/api/v1/audit?from={}", day.succ_opt().unwrap()),
            &auditor_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(next_day.is_empty(), "{next_day:?}");
    let on_the_day: Vec<Value> = app
        .get_with_token(
            &format!("/api/v1/audit?from={day}&until={day}&limit=500"),
            &auditor_token,
        )
        .await
        .json()
        .await
        .unwrap();
    // What the first listing saw, and the four reads since.
    assert_eq!(on_the_day.len(), entries.len() + 4);
    for bad in [
        "action=user%25",
        "action=User",
        "outcome=maybe",
        "target=1%20OR%201%3D1",
        "from=2026-02-30",
        "from=2026-11-05&until=2026-11-01",
    ] {
        let response = app
            .get_with_token(&format!("/api/v1/audit?{bad}"), &auditor_token)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_filter", "{bad}: {body}");
    }
    let verify: Value = app
        .get_with_token("/api/v1/audit/verify", &auditor_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verify["intact"], true, "{verify}");
    // The log cannot be changed through the API.
    let delete = app
        .client
        .delete(app.url("/api/v1/audit"))
        .bearer_auth(&auditor_token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_is_in_the_openapi_document() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    for (method, path, _) in PROTECTED_ROUTES {
        let segments: Vec<&str> = path.trim_start_matches("/api/v1").split('/').collect();
        let template: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(i, &segment)| {
                let after = |name: &str| i > 0 && segments.get(i - 1) == Some(&name);
                if after("suggestions") {
                    "{agency_type}".to_owned()
                } else if after("links") {
                    "{link_id}".to_owned()
                } else if uuid::Uuid::parse_str(segment).is_ok() {
                    "{id}".to_owned()
                } else if segment == "SX-AL" {
                    "{code}".to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect();
        let template = template.join("/");
        assert!(
            doc["paths"][&template][method.to_ascii_lowercase()].is_object(),
            "{method} {template} is not in the OpenAPI document"
        );
    }
}
