//! A setting the operator must fix ends the process with exit code 2 and one
//! clear line naming the problem: no panic, no backtrace, no secret.

use std::net::TcpListener;
use std::process::Output;

use crate::helpers::{caseguard, stderr};

/// Asserts exit code 2 and exactly one line on stderr containing `needle`.
fn assert_config_error(output: &Output, needle: &str) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    let line = lines[0];
    assert!(line.starts_with("caseguard: error: "), "{line}");
    assert!(line.contains(needle), "`{needle}` not in: {line}");
    assert!(
        !err.contains("panicked") && !err.to_lowercase().contains("backtrace"),
        "{err}"
    );
    line.to_owned()
}

#[test]
fn unknown_key_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("caseguard.toml"),
        "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n",
    )
    .unwrap();
    let output = caseguard(dir.path(), &[], &["serve"]);
    let line = assert_config_error(&output, "unknown configuration key `listen_port`");
    assert!(line.contains("caseguard.toml"), "{line}");
}

#[test]
fn unknown_key_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = caseguard(
        dir.path(),
        &[("CASEGUARD_DATABSE_URL", "sqlite://x.db")],
        &["serve"],
    );
    assert_config_error(&output, "CASEGUARD_DATABSE_URL");
}

#[test]
fn config_file_given_but_missing() {
    let dir = tempfile::tempdir().unwrap();
    let output = caseguard(dir.path(), &[], &["--config", "nowhere.toml", "serve"]);
    assert_config_error(&output, "nowhere.toml");
}

#[test]
fn malformed_database_urls_never_echo_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "mysql://root:Canary-Pa55@localhost/caseguard",
        "postgres://app:Canary-Pa55@db.internal:notaport/caseguard",
        "postgres://app:Canary-Pa55@db.internal",
        "Canary-Pa55",
    ] {
        let output = caseguard(dir.path(), &[("CASEGUARD_DATABASE_URL", url)], &["serve"]);
        let line = assert_config_error(&output, "database_url");
        assert!(
            !line.contains("Canary-Pa55"),
            "password echoed for {url}: {line}"
        );
    }
}

#[test]
fn unwritable_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a directory should be: not creatable even as root.
    std::fs::write(dir.path().join("occupied"), b"").unwrap();
    let output = caseguard(
        dir.path(),
        &[("CASEGUARD_DATA_DIR", "occupied/data")],
        &["serve"],
    );
    assert_config_error(&output, "data directory occupied/data is not usable");
}

#[test]
fn port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = caseguard(
        dir.path(),
        &[("CASEGUARD_LISTEN", address.as_str())],
        &["serve"],
    );
    let line = assert_config_error(&output, "address already in use");
    assert!(line.contains(&address), "{line}");
}

#[test]
fn listen_address_that_is_not_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = caseguard(dir.path(), &[("CASEGUARD_LISTEN", "localhost")], &["serve"]);
    assert_config_error(&output, "configuration `listen`");
}

#[test]
fn wrong_type_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = caseguard(
        dir.path(),
        &[("CASEGUARD_DB_POOL_SIZE", "many")],
        &["serve"],
    );
    assert_config_error(&output, "db_pool_size");
}
