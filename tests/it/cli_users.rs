//! `caseguard user …`, `caseguard demo --json` and the bootstrap admin,
//! through the real binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{Backend, TestDb, caseguard, stderr, stdout};

on_both_backends!(user_create_json_and_lifecycle);

fn env(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("CASEGUARD_DATABASE_URL", db.url.clone()),
        ("CASEGUARD_DATA_DIR", db.data_dir().display().to_string()),
    ]
}

fn run(db: &TestDb, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caseguard"));
    command
        .args(args)
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env(db) {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

async fn user_create_json_and_lifecycle(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    let demo = run(&db, &["demo", "--json"], None);
    assert!(demo.status.success(), "{}", stderr(&demo));
    let logins: Vec<Value> = serde_json::from_str(&stdout(&demo)).unwrap();
    assert_eq!(logins.len(), 9);
    for login in &logins {
        let mut keys: Vec<&str> = login
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["email", "org", "password", "role", "totp_uri", "user_id"]
        );
        assert!(
            login["totp_uri"]
                .as_str()
                .unwrap()
                .starts_with("otpauth://totp/")
        );
    }
    // The demo is idempotent and prints the same logins.
    let again: Vec<Value> =
        serde_json::from_str(&stdout(&run(&db, &["demo", "--json"], None))).unwrap();
    assert_eq!(again, logins);
    // Demo cases across schools, types and states, made once.
    {
        use caseguard::db::schema::{cases, incidents};
        use diesel::prelude::*;
        let mut conn = db.connect();
        let statuses: Vec<String> = cases::table.select(cases::status).load(&mut conn).unwrap();
        assert_eq!(statuses.len(), 8, "{statuses:?}");
        let distinct: std::collections::HashSet<&String> = statuses.iter().collect();
        assert!(distinct.len() >= 4, "{statuses:?}");
        let schools: std::collections::HashSet<String> = cases::table
            .select(cases::school_id)
            .load(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        assert!(schools.len() >= 4);
        let types: std::collections::HashSet<String> = incidents::table
            .select(incidents::incident_type)
            .load(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        assert!(types.len() >= 5, "{types:?}");
        // Referrals in every state, made once, and messages waiting.
        use caseguard::db::schema::{outbox, referrals};
        let states: std::collections::BTreeSet<String> = referrals::table
            .select(referrals::status)
            .load(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            states.into_iter().collect::<Vec<_>>(),
            [
                "accepted",
                "acknowledged",
                "completed",
                "declined",
                "in_service",
                "sent",
                "withdrawn"
            ]
        );
        let messages: i64 = outbox::table.count().get_result(&mut conn).unwrap();
        assert!(messages > 0);
        let recipients: Vec<String> = outbox::table
            .select(outbox::recipient)
            .load(&mut conn)
            .unwrap();
        assert!(
            recipients.iter().all(|r| r.ends_with(".invalid")),
            "{recipients:?}"
        );
    }

    let created = run(
        &db,
        &[
            "user",
            "create",
            "--org",
            "SX-AL-PM-TH",
            "--role",
            "focal_point",
            "--email",
            "Mai.Tran@Example.ORG",
            "--name",
            "Trần Thị Mai",
            "--password-stdin",
            "--json",
        ],
        Some("gió mùa đông bắc về sớm\n"),
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let json: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "org", "role", "totp_uri", "user_id"]);
    assert_eq!(json["email"], "mai.tran@example.org");
    assert_eq!(json["org"], "SX-AL-PM-TH");
    assert_eq!(json["role"], "focal_point");
    assert!(uuid::Uuid::parse_str(json["user_id"].as_str().unwrap()).is_ok());

    // Without a password: an enrolment link instead.
    let link = run(
        &db,
        &[
            "user",
            "create",
            "--org",
            "SX-AL",
            "--role",
            "monitor",
            "--email",
            "thu@example.org",
            "--name",
            "Hồ Thu",
            "--json",
        ],
        None,
    );
    assert!(link.status.success(), "{}", stderr(&link));
    let json: Value = serde_json::from_str(&stdout(&link)).unwrap();
    assert!(json["enrolment_url"].as_str().unwrap().contains("/enrol/"));

    // Refusals name the problem and create nothing.
    for (args, stdin, needle) in [
        (
            vec![
                "--org",
                "SX-AL-PM-TH",
                "--role",
                "focal_point",
                "--email",
                "x1@example.org",
                "--name",
                "X",
                "--password-stdin",
            ],
            Some("password1234\n"),
            "too common",
        ),
        (
            vec![
                "--org",
                "SX-AL-PM-TH",
                "--role",
                "focal_point",
                "--email",
                "x2@example.org",
                "--name",
                "X",
                "--password-stdin",
            ],
            Some("short\n"),
            "at least 12",
        ),
        (
            vec![
                "--org",
                "SX-AL-CA",
                "--role",
                "focal_point",
                "--email",
                "x3@example.org",
                "--name",
                "X",
            ],
            None,
            "belongs to a school",
        ),
        (
            vec![
                "--org",
                "NOPE",
                "--role",
                "focal_point",
                "--email",
                "x4@example.org",
                "--name",
                "X",
            ],
            None,
            "no organisation with code NOPE",
        ),
        (
            vec![
                "--org",
                "SX-AL-PM-TH",
                "--role",
                "focal_point",
                "--email",
                "mai.tran@example.org",
                "--name",
                "X",
            ],
            None,
            "already exists",
        ),
    ] {
        let mut full = vec!["user", "create"];
        full.extend(args);
        let output = run(&db, &full, stdin);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{needle}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(needle),
            "{needle}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("password1234"));
    }
    let bad_role = run(
        &db,
        &[
            "user",
            "create",
            "--org",
            "SX",
            "--role",
            "root",
            "--email",
            "r@example.org",
            "--name",
            "R",
        ],
        None,
    );
    assert_eq!(bad_role.status.code(), Some(2));
    let count = caseguard::db::users::count(&mut db.connect()).unwrap();
    assert_eq!(count, 11, "a refused create left an account behind");

    let reset = run(
        &db,
        &[
            "user",
            "reset-mfa",
            "--email",
            "mai.tran@example.org",
            "--json",
        ],
        None,
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    let reset: Value = serde_json::from_str(&stdout(&reset)).unwrap();
    assert!(
        reset["totp_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://")
    );

    let disabled = run(
        &db,
        &["user", "disable", "--email", "mai.tran@example.org"],
        None,
    );
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    assert!(stdout(&disabled).contains("disabled"));

    let verify = run(&db, &["audit", "verify"], None);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn first_serve_prints_a_bootstrap_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caseguard"))
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("CASEGUARD_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        while let Some(Ok(line)) = lines.next() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("listening on") {
                break;
            }
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        for line in lines.map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
        }
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        (String::from_utf8_lossy(&output.stdout).into_owned(), log)
    };
    let (first, log) = start();
    assert!(
        first.contains("a bootstrap administrator was created"),
        "{first}"
    );
    assert!(
        first.contains("admin@caseguard.invalid") && first.contains("otpauth://totp/"),
        "{first}"
    );
    let password_line = first
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap();
    let password = password_line.split_whitespace().last().unwrap();
    assert!(password.len() >= 32);
    // The password goes to the terminal only, never to the log.
    assert!(!log.contains(password), "{log}");
    let (second, _) = start();
    assert!(
        !second.contains("bootstrap administrator"),
        "printed twice: {second}"
    );
    let verify = caseguard(dir.path(), &[], &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn the_keyring_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let demo = caseguard(dir.path(), &[], &["demo"]);
    assert!(demo.status.success(), "{}", stderr(&demo));
    let keyring = std::fs::read_to_string(dir.path().join("data/keyring")).unwrap();
    std::fs::remove_file(dir.path().join("data/keyring")).unwrap();
    let env = [
        ("CASEGUARD_KEYRING", "env:CG_KEYRING"),
        ("CG_KEYRING", keyring.as_str()),
    ];
    let verify = caseguard(dir.path(), &env, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(
        !dir.path().join("data/keyring").exists(),
        "a keyring file was created"
    );
    let status = caseguard(dir.path(), &env, &["keys", "status"]);
    assert!(
        stdout(&status).contains("wraps 8 data key(s)"),
        "{}",
        stdout(&status)
    );
    let rotate = caseguard(dir.path(), &env, &["keys", "rotate"]);
    assert_eq!(rotate.status.code(), Some(2));
    assert!(
        stderr(&rotate).contains("cannot write"),
        "{}",
        stderr(&rotate)
    );
    let unset = caseguard(
        dir.path(),
        &[("CASEGUARD_KEYRING", "env:CG_KEYRING")],
        &["audit", "verify"],
    );
    assert_eq!(unset.status.code(), Some(2));
    assert!(
        stderr(&unset).contains("environment variable CG_KEYRING: is not set"),
        "{}",
        stderr(&unset)
    );
    let partial: String = keyring
        .split("[[key]]")
        .filter(|block| !block.contains("blind_index"))
        .collect::<Vec<_>>()
        .join("[[key]]");
    let missing = caseguard(
        dir.path(),
        &[
            ("CASEGUARD_KEYRING", "env:CG_KEYRING"),
            ("CG_KEYRING", partial.as_str()),
        ],
        &["audit", "verify"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("has no key for: BlindIndex"),
        "{}",
        stderr(&missing)
    );
}
