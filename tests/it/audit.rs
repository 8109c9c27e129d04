//! The audit log detects every edit, removal, insertion and reordering, on
//! both backends, through `caseguard audit verify`.

use caseguard::audit::{Actor, AuditEvent, Auditor, Outcome, RequestContext, action, entry_hash};
use caseguard::clock::FixedClock;
use caseguard::crypto::keyring::{FileKeyProvider, KeyProvider};
use caseguard::db::audit::{self as table, AuditRow};
use caseguard::db::{DbConnection, migrations, write_transaction};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::helpers::{Backend, TestDb, caseguard, stderr, stdout, test_start};

on_both_backends!(
    an_untouched_log_verifies,
    an_edited_entry_is_found,
    a_removed_entry_is_found,
    an_inserted_entry_is_found,
    reordered_entries_are_found,
    entries_removed_from_the_end_are_found,
    a_rewritten_chain_is_found_by_the_checkpoint,
    the_application_cannot_change_entries,
    an_acknowledged_entry_cut_off_the_end_is_found_once_the_bound_has_passed,
);

const ENTRIES: i64 = 12;

/// A database with `ENTRIES` audit entries and a checkpoint on the last.
fn audited(backend: Backend) -> Option<TestDb> {
    let db = TestDb::create(backend)?;
    let mut conn = db.connect();
    migrations::run_pending(&mut conn).unwrap();
    let clock = FixedClock::new(test_start());
    let keyring = FileKeyProvider::new(db.data_dir().join("keyring"))
        .load(&clock)
        .unwrap();
    let auditor = Auditor::new(&keyring).unwrap();
    for i in 0..ENTRIES {
        clock.advance(chrono::Duration::seconds(7));
        let event = AuditEvent::new(
            action::LOGIN,
            if i % 3 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            },
        )
        .actor(Some(Actor {
            user_id: format!("0193a000-0000-7000-8000-0000000000{i:02}"),
            org_id: "0193a000-0000-7000-8000-00000000aaaa".into(),
            role: "focal_point".into(),
        }))
        .target("user", format!("user-{i}"))
        .request(&RequestContext {
            request_id: Some(format!("req-{i}")),
            client_ip: Some("192.0.2.10".into()),
        })
        .detail("method", "password_totp");
        write_transaction(&mut conn, |c| auditor.append(c, &clock, &event)).unwrap();
    }
    let signed = write_transaction(&mut conn, |c| auditor.checkpoint(c, &clock)).unwrap();
    assert_eq!(signed, Some(ENTRIES));
    Some(db)
}

/// Lets the test play a tamperer with direct database access.
fn disable_guards(conn: &mut DbConnection) {
    match conn {
        DbConnection::Sqlite(c) => c
            .batch_execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap(),
        DbConnection::Postgresql(c) => c
            .batch_execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
            .unwrap(),
    }
}

fn verify(db: &TestDb) -> std::process::Output {
    let data = db.data_dir();
    caseguard(
        db.dir.path(),
        &[
            ("CASEGUARD_DATABASE_URL", db.url.as_str()),
            ("CASEGUARD_DATA_DIR", data.to_str().unwrap()),
        ],
        &["audit", "verify"],
    )
}

fn assert_caught(db: &TestDb, needle: &str) {
    let output = verify(db);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "tampering not detected; stdout: {}",
        stdout(&output)
    );
    assert!(err.contains("audit log verification failed at"), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

fn rows(conn: &mut DbConnection) -> Vec<AuditRow> {
    table::page(conn, 0, 1000).unwrap()
}

async fn an_untouched_log_verifies(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let output = verify(&db);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(
            "audit log intact: 12 entries, 1 signed checkpoint(s), signed up to entry 12"
        ),
        "{}",
        stdout(&output)
    );
}

async fn an_edited_entry_is_found(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    diesel::update(caseguard::db::schema::audit_log::table.find(5))
        .set(caseguard::db::schema::audit_log::outcome.eq("denied"))
        .execute(&mut conn)
        .unwrap();
    assert_caught(&db, "entry 5 (id ");
    assert_caught(&db, "was altered");
}

async fn a_removed_entry_is_found(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    diesel::delete(caseguard::db::schema::audit_log::table.find(7))
        .execute(&mut conn)
        .unwrap();
    assert_caught(&db, "entry 7: is missing: the sequence jumps from 6 to 8");
}

async fn an_inserted_entry_is_found(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    let all = rows(&mut conn);
    // Make room at 5 and forge a well-formed entry there, hash and all.
    use caseguard::db::schema::audit_log::dsl as a;
    for seq in (5..=ENTRIES).rev() {
        diesel::update(a::audit_log.find(seq))
            .set(a::seq.eq(seq + 1))
            .execute(&mut conn)
            .unwrap();
    }
    let mut forged = all[4].clone();
    forged.id = uuid::Uuid::now_v7().to_string();
    forged.prev_hash = all[3].entry_hash.clone();
    forged.action = "user.created".into();
    forged.entry_hash = entry_hash(&forged);
    table::insert(&mut conn, &forged).unwrap();
    assert_caught(&db, "entry 6 (id ");
    assert_caught(&db, "does not follow entry 5");
}

async fn reordered_entries_are_found(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    let all = rows(&mut conn);
    use caseguard::db::schema::audit_log::dsl as a;
    // Swap entries 8 and 9, keeping their sequence numbers.
    diesel::delete(a::audit_log.filter(a::seq.eq_any([8_i64, 9])))
        .execute(&mut conn)
        .unwrap();
    let mut eighth = all[8].clone();
    eighth.seq = 8;
    let mut ninth = all[7].clone();
    ninth.seq = 9;
    table::insert(&mut conn, &eighth).unwrap();
    table::insert(&mut conn, &ninth).unwrap();
    assert_caught(&db, "entry 8 (id ");
    assert_caught(&db, "does not follow entry 7");
}

async fn entries_removed_from_the_end_are_found(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    use caseguard::db::schema::audit_log::dsl as a;
    diesel::delete(a::audit_log.filter(a::seq.gt(10_i64)))
        .execute(&mut conn)
        .unwrap();
    assert_caught(
        &db,
        "entry 12: is covered by a signed checkpoint, but the log ends at entry 10",
    );
}

async fn a_rewritten_chain_is_found_by_the_checkpoint(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    disable_guards(&mut conn);
    use caseguard::db::schema::audit_log::dsl as a;
    // A careful tamperer edits entry 3 and recomputes every hash after it.
    let mut all = rows(&mut conn);
    all[2].client_ip = Some("203.0.113.99".into());
    let mut prev = all[1].entry_hash.clone();
    for row in all.iter_mut().skip(2) {
        row.prev_hash = prev.clone();
        row.entry_hash = entry_hash(row);
        prev = row.entry_hash.clone();
    }
    diesel::delete(a::audit_log.filter(a::seq.ge(3_i64)))
        .execute(&mut conn)
        .unwrap();
    for row in all.iter().skip(2) {
        table::insert(&mut conn, row).unwrap();
    }
    assert_caught(&db, "entry 12: does not match its signed checkpoint");
}

async fn the_application_cannot_change_entries(backend: Backend) {
    let Some(db) = audited(backend) else { return };
    let mut conn = db.connect();
    use caseguard::db::schema::audit_log::dsl as a;
    let update = diesel::update(a::audit_log.find(2))
        .set(a::action.eq("x"))
        .execute(&mut conn);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = diesel::delete(a::audit_log.find(2)).execute(&mut conn);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert!(verify(&db).status.success());
}

/// The bound: with `audit_checkpoint_interval_secs = 1`, the running
/// service signs every acknowledged entry within about a second. A case is
/// recorded (answered 201), the bound passes, then a tamperer cuts the
/// case's entry off the end of the log: `audit verify` finds it.
async fn an_acknowledged_entry_cut_off_the_end_is_found_once_the_bound_has_passed(
    backend: Backend,
) {
    use caseguard::domain::user::Role;
    let Some(app) = crate::helpers::TestApp::spawn_configured(
        backend,
        None,
        &[("audit_checkpoint_interval_secs", serde_json::json!(1))],
    )
    .await
    else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;
    let body = crate::helpers::marked_case("cut", 1);
    let (status, case) = app.post_case(&token, "cut-1", &body).await;
    assert_eq!(status, 201, "{case}");
    let case_id = case["id"].as_str().unwrap().to_owned();
    let mut conn = app.db.connect();
    use caseguard::db::schema::audit_log::dsl as a;
    let recorded: i64 = a::audit_log
        .filter(a::target_id.eq(&case_id))
        .filter(a::action.eq(action::CASE_CREATED))
        .select(a::seq)
        .first(&mut conn)
        .unwrap();
    // Wait for the bound to pass: a signed checkpoint at or after the entry
    // (polled; generous on a loaded machine, the bound itself is 1 s).
    let mut signed = None;
    for _ in 0..600 {
        signed = table::last_checkpoint_seq(&mut conn).unwrap();
        if signed.is_some_and(|s| s >= recorded) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let signed = signed.unwrap_or(0);
    assert!(signed >= recorded, "no checkpoint covers entry {recorded}");
    // Nothing else is written after the case; the tamperer cuts from its
    // entry to the end, leaving the chain itself consistent.
    disable_guards(&mut conn);
    diesel::delete(a::audit_log.filter(a::seq.ge(recorded)))
        .execute(&mut conn)
        .unwrap();
    assert_caught(
        &app.db,
        &format!(
            "entry {signed}: is covered by a signed checkpoint, but the log ends at entry {}",
            recorded - 1
        ),
    );
}
