//! Notifications: the outbox is written with the event, and the worker
//! delivers each message once, over real SMTP (the in-process sink), through
//! outages, crashes and a second worker — and never with personal data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use caseguard::clock::{Clock, FixedClock};
use caseguard::db::{DatabaseUrl, Db, DbError, migrations};
use caseguard::domain::user::Role;
use caseguard::notify::outbox::{self, OutboxRow};
use caseguard::notify::{
    self, Language, Message, Outbox, OutboxConfig, PassReport, Template, Transport,
};
use chrono::FixedOffset;
use diesel::prelude::*;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, test_start};
use crate::smtp_sink::{Accepted, SmtpSink};

on_both_backends!(
    messages_arrive_in_the_readers_language_without_personal_data,
    a_server_that_is_down_gets_every_message_once_it_is_back,
    a_worker_killed_mid_send_sends_nothing_twice,
    a_message_is_dead_after_the_last_attempt_and_not_retried,
    two_workers_send_each_message_once,
    enqueue_is_checked_transactional_and_idempotent,
    the_service_takes_work_through_hours_without_smtp_and_sends_each_notice_once,
);

const CANARY: &str = "Xq7Canary";

/// A fresh, migrated database with a pool and a fixed clock.
struct Env {
    db: TestDb,
    pool: Db,
    clock: FixedClock,
}

async fn pool_for(url: &str) -> Db {
    let url = DatabaseUrl::parse(&SecretString::from(url.to_owned())).unwrap();
    tokio::task::spawn_blocking(move || {
        let pool = Db::connect(&url, 4, Duration::from_secs(5)).unwrap();
        migrations::run_pending(&mut pool.get().unwrap()).unwrap();
        pool
    })
    .await
    .unwrap()
}

impl Env {
    async fn new(backend: Backend) -> Option<Self> {
        let db = TestDb::create(backend)?;
        let pool = pool_for(&db.url).await;
        Some(Self {
            db,
            pool,
            clock: FixedClock::new(test_start()),
        })
    }

    fn outbox(&self, pool: Db, transport: Transport, max_attempts: u32) -> Outbox {
        Outbox::new(
            pool,
            Arc::new(self.clock.clone()),
            transport,
            config(max_attempts),
        )
    }

    /// A worker sending to a sink that is stopped (its port closed).
    async fn with_server_down(&self, max_attempts: u32) -> (SmtpSink, Outbox) {
        let mut sink = SmtpSink::start().await;
        let worker = self.outbox(self.pool.clone(), smtp(&sink), max_attempts);
        sink.stop().await;
        (sink, worker)
    }

    async fn enqueue(&self, messages: Vec<Message>) {
        enqueue_into(&self.pool, &self.clock, messages).await;
    }

    async fn rows(&self) -> Vec<OutboxRow> {
        self.pool.read(|conn| Ok(outbox::all(conn)?)).await.unwrap()
    }
}

async fn enqueue_into(pool: &Db, clock: &FixedClock, messages: Vec<Message>) {
    let clock = clock.clone();
    pool.write(move |conn| -> Result<(), DbError> {
        for message in &messages {
            assert!(notify::enqueue(conn, &clock, message)?);
        }
        Ok(())
    })
    .await
    .unwrap();
}

fn config(max_attempts: u32) -> OutboxConfig {
    OutboxConfig {
        from: "caseguard <no-reply@caseguard.example.org>"
            .parse()
            .unwrap(),
        max_attempts,
        batch_size: 10,
        send_timeout: Duration::from_secs(10),
        local_offset: FixedOffset::east_opt(7 * 3600).unwrap(),
    }
}

fn smtp(sink: &SmtpSink) -> Transport {
    Transport::smtp(&SecretString::from(sink.url()), Duration::from_secs(10)).unwrap()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// "A referral awaits you", number `i`.
fn referral(i: usize, language: Language) -> Message {
    Message::new(
        &format!("referral:{i}:received"),
        &format!("officer{i}@agency.example.org"),
        language,
        Template::ReferralReceived,
        params(&[
            (
                "link",
                &format!("https://caseguard.example.org/referrals/{i}"),
            ),
            ("deadline", "2026-11-05T10:00:00Z"),
            ("reference", &format!("R-{i:04}")),
        ]),
    )
    .unwrap()
}

fn statuses(rows: &[OutboxRow]) -> Vec<&str> {
    rows.iter().map(|r| r.status.as_str()).collect()
}

/// Every message id was accepted exactly once, and there are `n` of them.
fn assert_each_once(sink: &SmtpSink, n: usize) {
    let counts = sink.counts_by_message_id();
    assert_eq!(counts.len(), n, "{counts:?}");
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
}

async fn messages_arrive_in_the_readers_language_without_personal_data(backend: Backend) {
    let Some(app) = TestApp::spawn_configured(
        backend,
        None,
        &[
            ("outbox_poll_seconds", json!(0)),
            ("public_url", json!("https://caseguard.example.org/")),
        ],
    )
    .await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    // A real case full of personal data the messages are about.
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;
    let created = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&token)
        .json(&json!({
            "risk_level": "high",
            "pupil": {"name": format!("Nguyễn Thị {CANARY}"), "date_of_birth": "2015-03-14",
                      "sex": "female", "class": format!("5A-{CANARY}"), "disability": false,
                      "guardian": format!("Mẹ {CANARY}"), "contact": format!("0912-{CANARY}")},
            "incident": {"type": "sexual_assault", "csa_subtype": "dam_o",
                         "contexts": ["sexual_harassment"], "date": "2026-10-28",
                         "location_type": "school_premises", "perpetrator_relation": "teacher_or_staff",
                         "narrative": format!("Em kể lại {CANARY} sau giờ học.")}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let case: Value = created.json().await.unwrap();
    let case_id = case["id"].as_str().unwrap().to_owned();
    let link = format!("{}cases/{case_id}", app.state.settings.public_url);

    let to_school = Message::new(
        &format!("case:{case_id}:update:{}", focal.id),
        &focal.email,
        Language::Vi,
        Template::ReferralUpdate,
        params(&[("link", &link), ("reference", case_id.get(..8).unwrap())]),
    )
    .unwrap();
    let to_agency = Message::new(
        &format!("case:{case_id}:received:officer"),
        "officer@agency.example.org",
        Language::En,
        Template::ReferralReceived,
        params(&[("link", &link), ("deadline", "2026-11-05T10:00:00Z")]),
    )
    .unwrap();
    enqueue_into(
        &app.state.db,
        &app.clock,
        vec![to_school.clone(), to_agency.clone()],
    )
    .await;

    let sink = SmtpSink::start().await;
    let worker = Outbox::new(
        app.state.db.clone(),
        Arc::new(app.clock.clone()),
        smtp(&sink),
        config(10),
    );
    let report = worker.run_once().await.unwrap();
    assert_eq!((report.claimed, report.sent), (2, 2), "{report:?}");

    let accepted = sink.accepted();
    let vi = accepted
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.contains(&focal.email)))
        .unwrap();
    let en = accepted
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.contains("officer@agency")))
        .unwrap();
    let (vi_text, en_text) = (vi.decoded(), en.decoded());
    assert_eq!(vi.header("content-language").as_deref(), Some("vi"));
    assert!(
        vi_text.contains("Subject: [caseguard] Có phản hồi mới"),
        "{vi_text}"
    );
    assert!(vi_text.contains("Kính gửi anh/chị"), "{vi_text}");
    assert!(
        vi_text.contains("Một cơ quan đối tác vừa trả lời"),
        "{vi_text}"
    );
    assert!(!vi_text.contains("Hello"), "{vi_text}");
    assert_eq!(en.header("content-language").as_deref(), Some("en"));
    assert!(
        en_text.contains("Subject: [caseguard] A new referral awaits you"),
        "{en_text}"
    );
    assert!(
        en_text.contains("acknowledge it by 17:00 on 5 November 2026 (UTC+7)"),
        "{en_text}"
    );
    assert!(!en_text.contains("Kính gửi"), "{en_text}");
    for (message, text) in [(vi, &vi_text), (en, &en_text)] {
        assert!(text.contains(&link), "{text}");
        assert!(message.mail_from.contains("no-reply@caseguard.example.org"));
    }

    // Neither the wire, nor the decoded subjects and bodies, nor the outbox
    // rows hold anything of the case.
    let offset = FixedOffset::east_opt(7 * 3600).unwrap();
    let mut everything = String::new();
    for message in &accepted {
        everything.push_str(&message.raw);
        everything.push_str(&message.decoded());
    }
    for message in [&to_school, &to_agency] {
        let rendered = notify::render(message, offset).unwrap();
        everything.push_str(&rendered.subject);
        everything.push_str(&rendered.body);
    }
    let db = app.state.db.clone();
    let rows = db.read(|c| Ok(outbox::all(c)?)).await.unwrap();
    everything.push_str(&format!("{rows:?}"));
    for canary in [
        CANARY,
        "Nguyễn Thị",
        "2015-03-14",
        "2026-10-28",
        "Trường Tiểu học An Bình",
        "An Bình",
        "SX-AL-AB-TH",
        "sexual_assault",
        "Tấn công tình dục",
        "Sexual assault",
        "dam_o",
        "Dâm ô",
        "teacher_or_staff",
        "Giáo viên",
        "school_premises",
        "sexual_harassment",
    ] {
        assert!(!everything.contains(canary), "a message holds {canary}");
    }
}

async fn a_server_that_is_down_gets_every_message_once_it_is_back(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let (mut sink, worker) = env.with_server_down(10).await;
    env.enqueue((0..4).map(|i| referral(i, Language::Vi)).collect())
        .await;

    // Port closed: every message fails and waits 30 s (plus a little).
    let report = worker.run_once().await.unwrap();
    assert_eq!((report.claimed, report.retried), (4, 4), "{report:?}");
    let now = env.clock.now_naive();
    for row in env.rows().await {
        assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
        assert_eq!(row.last_error.as_deref(), Some("smtp_connection"));
        assert!(row.locked_by.is_none() && row.locked_until.is_none());
        let wait = row.next_attempt_at - now;
        assert!(wait >= chrono::Duration::seconds(30), "{wait}");
        assert!(wait <= chrono::Duration::seconds(33), "{wait}");
    }
    // Nothing is due before then.
    assert_eq!(worker.run_once().await.unwrap(), PassReport::default());

    // Back, but refusing with 421: the wait doubles.
    sink.refuse(true);
    sink.restart().await;
    env.clock.advance(chrono::Duration::seconds(34));
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.retried, 4, "{report:?}");
    let now = env.clock.now_naive();
    for row in env.rows().await {
        assert_eq!((row.status.as_str(), row.attempts), ("pending", 2));
        assert_eq!(row.last_error.as_deref(), Some("smtp_421"));
        let wait = row.next_attempt_at - now;
        assert!(wait >= chrono::Duration::seconds(60), "{wait}");
        assert!(wait <= chrono::Duration::seconds(66), "{wait}");
    }
    assert!(sink.accepted().is_empty());

    sink.refuse(false);
    env.clock.advance(chrono::Duration::seconds(67));
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.sent, 4, "{report:?}");
    assert_eq!(worker.run_once().await.unwrap(), PassReport::default());
    assert_each_once(&sink, 4);
    let rows = env.rows().await;
    assert_eq!(statuses(&rows), ["sent"; 4]);
    assert!(
        rows.iter()
            .all(|r| r.sent_at.is_some() && r.last_error.is_none())
    );
}

async fn a_worker_killed_mid_send_sends_nothing_twice(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    sink.stall(true);
    env.enqueue((0..3).map(|i| referral(i, Language::En)).collect())
        .await;
    let first = env.outbox(env.pool.clone(), smtp(&sink), 10);
    let running = {
        let first = first.clone();
        tokio::spawn(async move { first.run_once().await })
    };
    // The data is in; the server has not said 250 yet. Kill the worker.
    sink.wait_for("a message waiting for its 250", |s| s.stalled() == 1)
        .await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    sink.wait_for("the sender hanging up", |s| s.abandoned() == 1)
        .await;
    sink.stall(false);
    let rows = env.rows().await;
    assert_eq!(statuses(&rows), ["sending"; 3]);
    assert!(
        rows.iter()
            .all(|r| r.locked_by.as_deref() == Some(first.worker_id()))
    );

    // A restarted worker leaves the rows alone while the lease holds…
    let second = env.outbox(env.pool.clone(), smtp(&sink), 10);
    assert_eq!(second.run_once().await.unwrap().claimed, 0);
    // …and takes them once it has run out.
    let lease = chrono::Duration::from_std(config(10).lease()).unwrap();
    env.clock.advance(lease + chrono::Duration::seconds(1));
    let report = second.run_once().await.unwrap();
    assert_eq!((report.claimed, report.sent), (3, 3), "{report:?}");
    assert_each_once(&sink, 3);
    let rows = env.rows().await;
    assert_eq!(statuses(&rows), ["sent"; 3]);
    assert!(rows.iter().all(|r| r.attempts == 2));
}

/// SMTP's irreducible window: the server said 250 and the worker died before
/// recording it. The message goes again — with the same Message-ID, so the
/// receiving side can tell it is the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_lost_commit_carries_the_same_message_id() {
    let env = Env::new(Backend::Sqlite).await.unwrap();
    let sink = SmtpSink::start().await;
    let worker = env.outbox(env.pool.clone(), smtp(&sink), 10);
    env.enqueue(vec![referral(1, Language::Vi)]).await;
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?} {:?}", env.rows().await);
    // As if the commit of "sent" had been lost with the worker.
    let expired = env.clock.now_naive() - chrono::Duration::seconds(1);
    env.pool
        .write(move |conn| -> Result<usize, DbError> {
            use caseguard::db::schema::outbox::dsl as o;
            Ok(diesel::update(o::outbox)
                .set((
                    o::status.eq("sending"),
                    o::locked_by.eq("a-dead-worker"),
                    o::locked_until.eq(expired),
                    o::sent_at.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(worker.run_once().await.unwrap().sent, 1);
    let accepted = sink.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].message_id, accepted[1].message_id);
    let expected = format!(
        "<{}@caseguard>",
        caseguard::crypto::sha256_hex(b"referral:1:received")
    );
    assert_eq!(accepted[0].message_id.as_deref(), Some(expected.as_str()));
}

async fn a_message_is_dead_after_the_last_attempt_and_not_retried(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let (mut sink, worker) = env.with_server_down(3).await;
    let partner = Message::new(
        "referral:9:partner-link",
        "intake@partner.example.org",
        Language::Vi,
        Template::PartnerLink,
        params(&[
            ("link", "https://caseguard.example.org/p/one-time-token-xyz"),
            ("valid_until", "2026-11-03T08:30:00+07:00"),
        ]),
    )
    .unwrap();
    env.enqueue(vec![partner]).await;
    for attempt in 1..=3 {
        let report = worker.run_once().await.unwrap();
        assert_eq!(report.claimed, 1, "attempt {attempt}: {report:?}");
        env.clock.advance(chrono::Duration::hours(2));
    }
    let rows = env.rows().await;
    assert_eq!(statuses(&rows), ["dead"]);
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].last_error.as_deref(), Some("smtp_connection"));
    // A partner's one-time link is not kept once the message is done with.
    assert_eq!(rows[0].params, "{}");

    sink.restart().await;
    env.clock.advance(chrono::Duration::days(2));
    assert_eq!(worker.run_once().await.unwrap(), PassReport::default());
    assert!(sink.accepted().is_empty());
    assert_eq!(statuses(&env.rows().await), ["dead"]);
}

async fn two_workers_send_each_message_once(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    env.enqueue((0..200).map(|i| referral(i, Language::Vi)).collect())
        .await;
    // Two workers as in two replicas: separate pools, separate ids.
    let a = env.outbox(env.pool.clone(), smtp(&sink), 10);
    let b = env.outbox(pool_for(&env.db.url).await, smtp(&sink), 10);
    let drain = |worker: Outbox| {
        tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let report = worker.run_once().await.unwrap();
                assert_eq!(report.deferred, 0, "{report:?}");
                sent += report.sent;
                if report.claimed == 0 {
                    return sent;
                }
            }
        })
    };
    let (a_sent, b_sent) = tokio::join!(drain(a), drain(b));
    assert_eq!(a_sent.unwrap() + b_sent.unwrap(), 200);
    assert_each_once(&sink, 200);
    assert_eq!(statuses(&env.rows().await), ["sent"; 200]);
}

async fn enqueue_is_checked_transactional_and_idempotent(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    // Anything outside the template's allow-list is refused, and the
    // refusal does not repeat the value.
    let reference = format!("Nguyễn {CANARY}");
    for (key, value) in [
        ("pupil_name", CANARY),
        ("reference", reference.as_str()),
        (
            "link",
            "https://caseguard.example.org/cases/1?pupil=Xq7Canary",
        ),
    ] {
        let mut given = params(&[("link", "https://caseguard.example.org/cases/1")]);
        given.insert(key.to_owned(), value.to_owned());
        let refused = Message::new(
            "case:1:update",
            "focal@school.example.org",
            Language::Vi,
            Template::ReferralUpdate,
            given,
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains(key), "{refused}");
        assert!(!refused.contains(CANARY), "{refused}");
    }

    // An event that rolls back takes its message with it.
    let message = referral(1, Language::Vi);
    let clock = env.clock.clone();
    let (m, c) = (message.clone(), clock.clone());
    let failed = env
        .pool
        .write(move |conn| -> Result<(), DbError> {
            assert!(notify::enqueue(conn, &c, &m)?);
            Err(DbError::Task("the event failed".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(env.rows().await.is_empty());

    // The same key twice: one row.
    let (m, c) = (message.clone(), clock.clone());
    let first = env
        .pool
        .write(move |conn| -> Result<bool, DbError> { notify::enqueue(conn, &c, &m) })
        .await
        .unwrap();
    let (m, c) = (message.clone(), clock.clone());
    let second = env
        .pool
        .write(move |conn| -> Result<bool, DbError> { notify::enqueue(conn, &c, &m) })
        .await
        .unwrap();
    assert!(first && !second);
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.status.as_str(), row.attempts, row.language.as_str()),
        ("pending", 0, "vi")
    );
    assert_eq!(row.template, "referral_received");
    assert_eq!(row.next_attempt_at, clock.now_naive());
    let stored: BTreeMap<String, String> = serde_json::from_str(&row.params).unwrap();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["deadline", "link", "reference"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_transport_writes_one_eml_per_message() {
    let env = Env::new(Backend::Sqlite).await.unwrap();
    // No smtp_url: `.eml` files in <data_dir>/outbox/.
    let settings = env.db.settings_with(&[]);
    let worker =
        Outbox::from_settings(env.pool.clone(), Arc::new(env.clock.clone()), &settings).unwrap();
    env.enqueue((0..3).map(|i| referral(i, Language::Vi)).collect())
        .await;
    assert_eq!(worker.run_once().await.unwrap().sent, 3);
    let dir = env.db.data_dir().join("outbox");
    let list = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = (0..3)
        .map(|i| {
            let key = format!("referral:{i}:received");
            format!("{}.eml", caseguard::crypto::sha256_hex(key.as_bytes()))
        })
        .collect();
    expected.sort();
    assert_eq!(list(&dir), expected);
    for i in 0..3 {
        let key = format!("referral:{i}:received");
        let stem = caseguard::crypto::sha256_hex(key.as_bytes());
        let path = dir.join(format!("{stem}.eml"));
        let mail = Accepted::from_raw(std::fs::read_to_string(&path).unwrap());
        assert_eq!(mail.message_id, Some(format!("<{stem}@caseguard>")));
        let text = mail.decoded();
        assert!(text.contains(&format!("https://caseguard.example.org/referrals/{i}")));
        assert!(text.contains("Kính gửi anh/chị"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Sent again (as after a lost commit): the same files, not more.
    env.pool
        .write(|conn| -> Result<usize, DbError> {
            use caseguard::db::schema::outbox::dsl as o;
            Ok(diesel::update(o::outbox)
                .set(o::status.eq("pending"))
                .execute(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(worker.run_once().await.unwrap().sent, 3);
    assert_eq!(list(&dir), expected);
}

/// `serve` runs the worker in the background and shows the outbox on
/// `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_in_the_background_and_counts_the_outbox() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[
            ("smtp_url", json!(sink.url())),
            ("outbox_poll_seconds", json!(1)),
        ],
    )
    .await
    .unwrap();
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("caseguard_outbox_messages{status=\"pending\"} 0"),
        "{metrics}"
    );
    enqueue_into(
        &app.state.db,
        &app.clock,
        vec![referral(1, Language::En), referral(2, Language::Vi)],
    )
    .await;
    sink.wait_for("two messages", |s| s.accepted().len() == 2)
        .await;
    // The row is marked sent just after the 250.
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("caseguard_outbox_messages{status=\"sent\"} 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        metrics.contains("caseguard_outbox_messages{status=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("caseguard_outbox_messages{status=\"dead\"} 0"));
    assert_each_once(&sink, 2);
}

/// Fault: the SMTP server is down for hours (simulated on the fixed clock,
/// with the worker's real backoff). The whole service keeps taking work —
/// cases and statutory referrals through the API, each queueing notices —
/// nothing goes dead within the retry budget, and once the server is back
/// every notice is delivered exactly once.
async fn the_service_takes_work_through_hours_without_smtp_and_sends_each_notice_once(
    backend: Backend,
) {
    let mut sink = SmtpSink::start().await;
    let Some(app) = TestApp::spawn_configured(
        backend,
        None,
        &[
            ("smtp_url", json!(sink.url())),
            // The worker is driven by hand, pass by pass, on the fixed clock.
            ("outbox_poll_seconds", json!(0)),
        ],
    )
    .await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    sink.stop().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let _police = app.user(Role::AgencyOfficer, "SX-AL-CA").await;
    let police_id = app.org_id("SX-AL-CA").await;
    let worker = Outbox::from_settings(
        app.state.db.clone(),
        Arc::new(app.clock.clone()),
        &app.state.settings,
    )
    .unwrap();
    let rows = |app: &TestApp| {
        let db = app.state.db.clone();
        async move { db.read(|conn| Ok(outbox::all(conn)?)).await.unwrap() }
    };

    // Two hours in five-minute steps: a case and a referral each step.
    let mut failed_attempts = 0;
    for step in 0..24 {
        let token = app.token(&focal).await;
        let created = app
            .client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("smtp-outage-{step}"))
            .json(&json!({
                "risk_level": "high",
                "pupil": {"name": "Học sinh", "date_of_birth": "2013-04-05", "sex": "female",
                          "class": "7A", "guardian": "Mẹ"},
                "incident": {"type": "sexual_assault", "contexts": ["on_premises"],
                             "date": "2026-10-05", "location_type": "school_premises",
                             "perpetrator_relation": "teacher_or_staff", "narrative": "Tường thuật"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let case: Value = created.json().await.unwrap();
        let referred = app
            .client
            .post(app.url(&format!(
                "/api/v1/cases/{}/referrals",
                case["id"].as_str().unwrap()
            )))
            .bearer_auth(&token)
            .json(&json!({"agency_id": police_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(referred.status(), 201);
        app.clock.advance(chrono::Duration::minutes(5));
        loop {
            let report = worker.run_once().await.unwrap();
            assert_eq!((report.sent, report.dead), (0, 0), "{report:?}");
            failed_attempts += report.retried;
            if report.claimed == 0 {
                break;
            }
        }
    }
    let queued = rows(&app).await;
    assert!(queued.len() >= 24, "{} notices", queued.len());
    assert!(
        queued.iter().all(|r| r.status == "pending"),
        "{:?}",
        statuses(&queued)
    );
    let most = queued.iter().map(|r| r.attempts).max().unwrap();
    assert!(most >= 6, "the oldest notice was tried {most} times");
    assert!(sink.accepted().is_empty());

    // Back. Within one longest backoff (an hour) every notice goes, once.
    sink.restart().await;
    app.clock.advance(chrono::Duration::minutes(67));
    let mut sent = 0;
    for _ in 0..100 {
        let report = worker.run_once().await.unwrap();
        sent += report.sent;
        if report.claimed == 0 {
            break;
        }
    }
    assert_eq!(sent, queued.len());
    assert_each_once(&sink, queued.len());
    let rows = rows(&app).await;
    assert_eq!(statuses(&rows), vec!["sent"; queued.len()]);
    eprintln!(
        "smtp outage ({backend:?}): 2 h down, 24 cases and referrals taken, {} notices, \
         {failed_attempts} failed attempts, oldest tried {most} times; all sent once after",
        queued.len()
    );
}
