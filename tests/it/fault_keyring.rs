//! Fault: the keyring is missing, unreadable, corrupted or the wrong one when
//! `caseguard serve` starts. The real binary on a store the demo filled:
//! serve must refuse to start with exit code 2 and one clear line, and must
//! never write a new keyring over a store that holds encrypted data (that
//! would make every sealed field unreadable for good).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestDb, caseguard, stderr};

on_both_backends!(a_missing_keyring_over_existing_data_is_never_recreated);

fn env(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("CASEGUARD_DATABASE_URL", db.url.clone()),
        ("CASEGUARD_DATA_DIR", db.data_dir().display().to_string()),
        ("CASEGUARD_LISTEN", "127.0.0.1:0".to_owned()),
    ]
}

fn run(db: &TestDb, args: &[&str]) -> Output {
    let env = env(db);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    caseguard(db.dir.path(), &pairs, args)
}

/// A store with the demo district in it (accounts, cases, audit log), and
/// the path of its keyring.
fn demo_store(backend: Backend) -> Option<(TestDb, PathBuf)> {
    let db = TestDb::create(backend)?;
    let out = run(&db, &["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keyring = db.data_dir().join("keyring");
    assert!(keyring.is_file());
    Some((db, keyring))
}

/// Runs `caseguard serve` and waits for it to exit. A serve that is still
/// running after two minutes has started, which is the failure this module
/// looks for: it is stopped and the test fails (a bound, not a timing).
fn serve_must_exit(db: &TestDb) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caseguard"));
    command
        .arg("serve")
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env(db) {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("serve started; stderr: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exit code 2, one line on stderr containing every needle, no panic.
fn assert_refused(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    for needle in needles {
        assert!(lines[0].contains(needle), "`{needle}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

async fn a_missing_keyring_over_existing_data_is_never_recreated(backend: Backend) {
    let Some((db, keyring)) = demo_store(backend) else {
        return;
    };
    let saved = read(&keyring);
    std::fs::remove_file(&keyring).unwrap();

    let out = serve_must_exit(&db);
    assert_refused(
        &out,
        &[
            &keyring.display().to_string(),
            "the file is missing",
            "already holds data",
            "Refusing to create a new keyring",
        ],
    );
    assert!(!keyring.exists(), "serve created a new keyring");
    // The command line opens the store the same way.
    let out = run(&db, &["keys", "status"]);
    assert_refused(&out, &["the file is missing"]);
    assert!(!keyring.exists(), "`keys status` created a new keyring");

    // With the keyring back, everything opens and verifies.
    std::fs::write(&keyring, &saved).unwrap();
    set_private(&keyring);
    let out = run(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A fresh store still gets its keyring on first start (the other side of
/// the rule above): `demo` made one, and its data opens with it.
#[test]
fn a_fresh_store_gets_a_new_keyring() {
    let (db, keyring) = demo_store(Backend::Sqlite).unwrap();
    assert!(read(&keyring).starts_with(b"# caseguard keyring"));
    let out = run(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Root reads any file whatever its mode, so "unreadable" is made with a
/// directory where the file should be: every read fails.
#[test]
fn an_unreadable_keyring_stops_serve() {
    let (db, keyring) = demo_store(Backend::Sqlite).unwrap();
    std::fs::remove_file(&keyring).unwrap();
    std::fs::create_dir(&keyring).unwrap();
    set_private(&keyring);
    let out = serve_must_exit(&db);
    assert_refused(&out, &[&keyring.display().to_string(), "cannot read"]);
    assert!(keyring.is_dir(), "the directory was replaced");
}

#[test]
fn a_corrupted_keyring_stops_serve_and_is_left_as_it_is() {
    let (db, keyring) = demo_store(Backend::Sqlite).unwrap();
    let good = read(&keyring);
    // Bytes flipped in the middle of a key, and a file cut short.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    for byte in &mut flipped[middle..middle + 8] {
        *byte = b'\x01';
    }
    let cut = good[..good.len() / 3].to_vec();
    for (what, bytes) in [("flipped", flipped), ("cut short", cut)] {
        std::fs::write(&keyring, &bytes).unwrap();
        set_private(&keyring);
        let out = serve_must_exit(&db);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("keyring"), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(read(&keyring), bytes, "{what}: the file was rewritten");
    }
}

/// Another store's keyring parses and has every purpose, but holds none of
/// the keys this store's case keys were wrapped with.
#[test]
fn another_stores_keyring_stops_serve() {
    let (db, keyring) = demo_store(Backend::Sqlite).unwrap();
    let (_other, other_keyring) = demo_store(Backend::Sqlite).unwrap();
    std::fs::copy(&other_keyring, &keyring).unwrap();
    set_private(&keyring);
    let out = serve_must_exit(&db);
    assert_refused(&out, &["does not hold the key(s)", "case key(s)"]);
}
