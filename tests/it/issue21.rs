//! The outside probe's findings 4–8 of issue 21, each with the test that
//! would have caught it: open redirects before sign-in, connection
//! exhaustion, file modes of the store, what an agency keeps seeing of a
//! closed referral, and the smaller ones (CSV cells, the session cookie,
//! older sessions, attachment names, partner-link answers).

use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Backend, TestApp};

/// Item 4: The language switch before sign-in sends the browser only to our
/// own pages, whatever `back` says: every known open-redirect payload
/// resolves, as a browser resolves the `Location`, to this server; none
/// answers 500 (CR/LF used to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_never_redirects_off_site() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let origin = Url::parse(&app.url("/")).unwrap();
    let mut raw_queries: Vec<String> = caseguard::web::redirect::KNOWN_OPEN_REDIRECTS
        .iter()
        .map(|payload| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("back", payload)
                .finish()
        })
        .collect();
    // The probe's own request, exactly as sent.
    raw_queries.push("back=/%09/evil.example/".to_owned());
    raw_queries.push("back=/%0d%0aSet-Cookie:%20a=b".to_owned());
    for query in &raw_queries {
        let response = app.get(&format!("/lang/en?{query}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query}");
        let location = response
            .headers()
            .get("location")
            .expect("a Location")
            .to_str()
            .expect("an ASCII Location");
        let resolved = origin.join(location).unwrap();
        assert_eq!(resolved.origin(), origin.origin(), "{query} → {location}");
    }
    // Our own pages still come back, normalised.
    let response = app.get("/lang/en?back=/login%3Fx%3D1").await;
    assert_eq!(response.headers()["location"], "/login?x=1");
}

/// Sends one keep-alive request on `stream` and reads the answer's head:
/// its status line, or `None` when the connection was closed (or reset)
/// without an answer. The connection stays open (and counted) while the
/// caller keeps it.
async fn healthz_on(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return None;
    }
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(60), stream.read(&mut buffer))
                .await
                .expect("the server answers or closes");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(buffer.get(..n).unwrap_or_default()),
        }
    }
    let text = String::from_utf8_lossy(&received);
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

/// A connection to the app from a given local address (all of 127/8 is
/// this machine, so 127.0.0.2 is "another client").
async fn connect_from(app: &TestApp, from: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let to = app.address.trim_start_matches("http://").parse().unwrap();
    socket.connect(to).await.unwrap()
}

/// Item 5: One address holding many idle connections gets its limit and no
/// more — the excess is closed at once, unanswered — while `/healthz`
/// answers another client; once they are gone, the address is served
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_are_capped_and_healthz_still_answers() {
    const CAP: usize = 4;
    const EXTRA: usize = 3;
    let app = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[
            ("max_connections_per_address", serde_json::json!(CAP)),
            // The held connections must outlive the test's slowest run.
            ("header_read_timeout_secs", serde_json::json!(300)),
        ],
    )
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..CAP + EXTRA {
        held.push(connect_from(&app, "127.0.0.1").await);
    }
    // Another client is served while the first holds (and exceeds) its cap.
    let other = healthz_on(&mut connect_from(&app, "127.0.0.2").await).await;
    assert_eq!(other.as_deref(), Some("HTTP/1.1 200 OK"));
    // Answered connections stay open: no slot is freed while this counts.
    let mut answers = Vec::new();
    for stream in &mut held {
        answers.push(healthz_on(stream).await);
    }
    let served = answers
        .iter()
        .filter(|a| a.as_deref() == Some("HTTP/1.1 200 OK"))
        .count();
    let refused = answers.iter().filter(|a| a.is_none()).count();
    assert_eq!((served, refused), (CAP, EXTRA), "{answers:?}");
    // The slots come back as the connections end.
    drop(held);
    let mut again = None;
    for _ in 0..100 {
        again = healthz_on(&mut connect_from(&app, "127.0.0.1").await).await;
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(again.as_deref(), Some("HTTP/1.1 200 OK"));
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

on_both_backends!(the_store_is_the_service_users_alone);

/// Item 6: Started from a shell with the usual umask 022, the real binary makes
/// the data directory 0700 and the keyring, the SQLite store (and its
/// `-wal`/`-shm`) and backups 0600; a store file others can read stops the
/// start with the file and the `chmod` to run, unless the operator says
/// otherwise; a data directory others can read is tightened.
async fn the_store_is_the_service_users_alone(backend: Backend) {
    use crate::helpers::{TestDb, caseguard, stderr};
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    // What a login shell has; the binary must not depend on it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let data = db.data_dir();
    let data_text = data.display().to_string();
    let mut env = vec![
        ("CASEGUARD_DATA_DIR", data_text.as_str()),
        ("CASEGUARD_DATABASE_URL", db.url.as_str()),
    ];
    let sqlite = (backend == Backend::Sqlite).then(|| db.dir.path().join("caseguard.db"));
    let run = |env: &[(&str, &str)], args: &[&str]| caseguard(db.dir.path(), env, args);
    let first = run(&env, &["keys", "status"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("keyring")), 0o600);
    let backup = db.dir.path().join("b.cgbackup");
    let made = run(&env, &["backup", "--out", &backup.display().to_string()]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert_eq!(mode(&backup), 0o600);
    if let Some(store) = &sqlite {
        for file in caseguard::files::sqlite_files(store) {
            if file.exists() {
                assert_eq!(mode(&file), 0o600, "{}", file.display());
            }
        }
        chmod(store, 0o644);
        let refused = run(&env, &["keys", "status"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        let message = stderr(&refused);
        assert!(
            message.contains(&format!("chmod 600 {}", store.display()))
                && message.contains("mode 644")
                && message.contains("allow_insecure_file_modes"),
            "{message}"
        );
        env.push(("CASEGUARD_ALLOW_INSECURE_FILE_MODES", "true"));
        let allowed = run(&env, &["keys", "status"]);
        assert!(allowed.status.success(), "{}", stderr(&allowed));
        env.pop();
        chmod(store, 0o600);
    }
    // A data directory others could enter is made the user's own again.
    chmod(&data, 0o755);
    let again = run(&env, &["keys", "status"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(mode(&data), 0o700);
    // The keyring stays strict whatever the flag says.
    chmod(&data.join("keyring"), 0o644);
    env.push(("CASEGUARD_ALLOW_INSECURE_FILE_MODES", "true"));
    let keyring = run(&env, &["keys", "status"]);
    assert_eq!(keyring.status.code(), Some(2), "{}", stderr(&keyring));
    assert!(
        stderr(&keyring).contains("chmod 600"),
        "{}",
        stderr(&keyring)
    );
}

on_both_backends!(
    a_sign_in_ends_the_older_session_and_the_cookie_dies_with_the_browser,
    attachment_names_that_disguise_their_type_are_refused,
);

/// Item 8: The session cookie carries no `Max-Age` or `Expires` (the browser
/// drops it when it closes; the server's timeouts still end it), and a new
/// sign-in of the same account ends the older session.
async fn a_sign_in_ends_the_older_session_and_the_cookie_dies_with_the_browser(backend: Backend) {
    use caseguard::domain::user::Role;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let user = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&app.login_body(&user))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.starts_with("__Host-caseguard_session="),
        "{set_cookie}"
    );
    let lower = set_cookie.to_ascii_lowercase();
    assert!(
        !lower.contains("max-age") && !lower.contains("expires"),
        "{set_cookie}"
    );
    let first = set_cookie.split(';').next().unwrap().to_owned();
    let me = |cookie: String| {
        let request = app
            .client
            .get(app.url("/api/v1/me"))
            .header("cookie", cookie);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(me(first.clone()).await, StatusCode::OK);
    let (second, _) = app.browser_session(&user).await;
    assert_eq!(me(second).await, StatusCode::OK);
    assert_eq!(me(first).await, StatusCode::UNAUTHORIZED);
}

/// Item 8: An attachment whose name hides its type (a right-to-left override,
/// other bidirectional controls) or names markup (`.html`) is refused with
/// its own message; a plain name still goes in.
async fn attachment_names_that_disguise_their_type_are_refused(backend: Backend) {
    use caseguard::domain::user::Role;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = app.with_demo_orgs().await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let (status, case) = app
        .call_as(
            &focal,
            "POST",
            "/api/v1/cases",
            Some(crate::helpers::marked_case("ATT", 3)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let path = format!("/api/v1/cases/{}/attachments", case["id"].as_str().unwrap());
    let token = app.token(&focal).await;
    let pdf = b"%PDF-1.4\n% caseguard test\n".to_vec();
    for (name, problem) in [
        ("report\u{202E}fdp.exe", "bidirectional"),
        ("\u{2067}report.pdf", "bidirectional"),
        ("report.html", ".html"),
        ("report.pdf.HTM", ".html"),
    ] {
        let encoded: String =
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>();
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("content-type", "application/pdf")
            .header("x-attachment-name", encoded.replace('+', "%20"))
            .body(pdf.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body.to_string().contains(problem), "{name:?}: {body}");
    }
    // A plain name still goes in.
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/pdf")
        .header("x-attachment-name", "bien-ban.pdf")
        .body(pdf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}
