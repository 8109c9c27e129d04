//! Graceful shutdown: stop accepting, finish what is in flight, then exit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use tokio::sync::{Notify, mpsc};

use crate::helpers::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_after_the_stop_signal() {
    let release = Arc::new(Notify::new());
    let (entered_tx, mut entered_rx) = mpsc::channel::<()>(1);
    let slow: caseguard::web::ExtraRoutes = {
        let release = release.clone();
        Arc::new(move |cfg: &mut web::ServiceConfig| {
            let release = release.clone();
            let entered_tx = entered_tx.clone();
            cfg.route(
                "/test/slow",
                web::get().to(move || {
                    let release = release.clone();
                    let entered_tx = entered_tx.clone();
                    async move {
                        let _ = entered_tx.send(()).await;
                        release.notified().await;
                        "finished"
                    }
                }),
            );
        })
    };
    let mut app = TestApp::spawn_with(Backend::Sqlite, Some(slow))
        .await
        .unwrap();

    let client = app.client.clone();
    let url = app.url("/test/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    entered_rx.recv().await.expect("the slow handler started");

    let server = app.begin_stop();
    // New connections are refused once the server has stopped accepting.
    let fresh = reqwest::Client::new();
    let mut refused = false;
    for _ in 0..100 {
        if fresh.get(app.url("/healthz")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the server kept accepting new connections after the stop signal"
    );
    assert!(
        !server.is_finished(),
        "the server exited with a request in flight"
    );

    release.notify_one();
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().expect("clean stop");
}

#[test]
fn sigterm_stops_the_binary_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_caseguard"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("CASEGUARD_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("log line before exit").unwrap();
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            break rest.split('/').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let health = reqwest::blocking_get(port);
    assert_eq!(health, 200);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}; log: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    // The default SQLite store was created under ./data.
    assert!(dir.path().join("data/caseguard.db").is_file());
}

mod reqwest {
    pub use ::reqwest::*;

    /// A plain HTTP/1.1 GET over a std socket, returning the status code.
    pub fn blocking_get(port: u16) -> u16 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
