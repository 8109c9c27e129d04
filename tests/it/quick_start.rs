//! The README's quick start, followed as written, in a real browser on a
//! fresh directory (issue 19): the release-like binary's first `serve`, the
//! bootstrap administrator's sign-in, `caseguard org import` of the sample
//! tree, a focal point created on the accounts page, activated from the link
//! in its e-mail (read from `data/outbox/`, as without SMTP), and its first
//! case recorded. Screenshots and axe checks at every step.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::browser::{browser, chromedriver, fill, shot, submit, text};
use crate::helpers::{caseguard, free_port, stderr};
use crate::smtp_sink::Accepted;

/// `caseguard serve` in `dir`, its output lines as they come.
struct Serve {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env_for(port: u16) -> Vec<(&'static str, String)> {
    vec![("CASEGUARD_LISTEN", format!("127.0.0.1:{port}"))]
}

fn serve(dir: &std::path::Path, port: u16) -> Serve {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caseguard"));
    command
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env_for(port) {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Serve { child, lines }
}

/// The value after `label` in the first-start block.
fn printed(lines: &[String], label: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {label:?} in the first start's output: {lines:#?}"))
}

/// A code of the authenticator, at a step not used yet (each code works once).
async fn fresh_code(totp: &totp_rs::TOTP, used: &mut u64) -> String {
    loop {
        use caseguard::clock::Clock;
        // The binary runs on the real clock; so do the codes.
        let now = u64::try_from(caseguard::clock::SystemClock.now().timestamp()).unwrap();
        let step = now / 30;
        if step > *used {
            *used = step;
            return totp.generate(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The activation link in the e-mail to `email` in `data/outbox/` (the
/// file transport used when no SMTP server is set).
async fn link_in_outbox(dir: &std::path::Path, email: &str) -> String {
    let outbox = dir.join("data/outbox");
    for _ in 0..240 {
        for entry in std::fs::read_dir(&outbox).into_iter().flatten().flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mail = Accepted::from_raw(raw);
            let text = mail.decoded();
            if mail.raw.contains(email)
                && let Some(at) = text.find("/enrol/")
            {
                let start = text[..at].rfind("http").unwrap();
                let end = text[at..]
                    .find(char::is_whitespace)
                    .map_or(text.len(), |e| at + e);
                return text[start..end].to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no activation e-mail to {email} in {}", outbox.display());
}

async fn sign_in(client: &Client, base: &str, email: &str, password: &str, code: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    fill(client, "email", email).await;
    fill(client, "password", password).await;
    fill(client, "totp", code).await;
    submit(client, "form[action='/login'] button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_as_the_readme_says() {
    let Some(driver) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // 1. Start it in an empty directory.
    let server = serve(dir.path(), port);
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("====="))
        .count()
        < 2
    {
        let line = server
            .lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("serve printed no first-start block: {lines:#?}"));
        lines.push(line);
    }
    let base = printed(&lines, "open:").trim_end_matches('/').to_owned();
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    let email = printed(&lines, "email:");
    let password = printed(&lines, "password:");
    // 2. The second factor from the printed otpauth:// line.
    let admin_totp = totp_rs::TOTP::from_url_unchecked(printed(&lines, "TOTP:")).unwrap();
    let mut admin_step = 0;
    // The server is up once it answers.
    let http = reqwest::Client::new();
    for _ in 0..240 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 3. Open the address and sign in as the bootstrap administrator.
    let client = browser(&driver, true).await;
    let code = fresh_code(&admin_totp, &mut admin_step).await;
    sign_in(&client, &base, &email, &password, &code).await;
    assert!(
        client.find(Locator::Id("next-steps")).await.is_ok(),
        "{}",
        text(&client).await
    );
    shot(&client, "qs-01-admin-first-steps").await;

    // 4. Import the sample tree, while the service runs.
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/org-sample.toml");
    let env: Vec<(&str, String)> = env_for(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let imported = caseguard(
        dir.path(),
        &env,
        &["org", "import", sample.to_str().unwrap()],
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    client.goto(&format!("{base}/organisations")).await.unwrap();
    let page = text(&client).await;
    assert!(page.contains("Trường Tiểu học Đông An (mẫu)"), "{page}");
    assert!(page.contains("Công an huyện Hoà Lạc (mẫu)"), "{page}");
    shot(&client, "qs-02-organisations").await;

    // 6. A focal point, created on the accounts page; its link is e-mailed.
    let focal = "co.lan@dongan.example.org";
    client.goto(&format!("{base}/users")).await.unwrap();
    fill(&client, "name", "Nguyễn Thị Lan").await;
    fill(&client, "email", focal).await;
    crate::browser::choose(&client, "role", "focal_point").await;
    crate::browser::choose(&client, "org", "TM-HL-DA-TH").await;
    submit(&client, "#new-user button[type=submit]").await;
    let page = text(&client).await;
    assert!(client.find(Locator::Id("notice")).await.is_ok(), "{page}");
    assert!(
        !page.contains("/enrol/") && !page.contains("otpauth"),
        "{page}"
    );
    shot(&client, "qs-03-focal-point-created").await;
    crate::browser::sign_out(&client).await;

    // The person opens the link from the e-mail in data/outbox/.
    let link = link_in_outbox(dir.path(), focal).await;
    assert!(link.starts_with(&base), "{link}");
    client.goto(&link).await.unwrap();
    shot(&client, "qs-04-activation").await;
    let uri = client
        .find(Locator::Id("totp-uri"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let focal_totp = totp_rs::TOTP::from_url_unchecked(&uri).unwrap();
    let mut focal_step = 0;
    let focal_password = "hoa ban nở trắng núi rừng tây bắc";
    fill(&client, "password", focal_password).await;
    fill(&client, "password_again", focal_password).await;
    let code = fresh_code(&focal_totp, &mut focal_step).await;
    fill(&client, "totp", &code).await;
    submit(&client, "form[action^='/enrol/'] button[type=submit]").await;
    assert!(client.find(Locator::Id("enrolled")).await.is_ok());
    shot(&client, "qs-05-activated").await;

    // Signed in, the focal point records a first case.
    let code = fresh_code(&focal_totp, &mut focal_step).await;
    sign_in(&client, &base, focal, focal_password, &code).await;
    client.goto(&format!("{base}/cases/new")).await.unwrap();
    fill(&client, "pupil.name", "Lò Văn QuickStart").await;
    fill(
        &client,
        "incident.narrative",
        "Em kể lại sự việc xảy ra ở cổng trường.",
    )
    .await;
    crate::browser::choose(&client, "incident.type", "physical_assault").await;
    client
        .execute("document.getElementById('incident.date').value = '2026-10-31'; document.getElementById('pupil.date_of_birth').value = '2014-05-05';", vec![])
        .await
        .unwrap();
    crate::browser::choose(&client, "incident.location_type", "school_premises").await;
    crate::browser::choose(&client, "incident.perpetrator_relation", "peer_pupil").await;
    crate::browser::choose(&client, "pupil.sex", "male").await;
    crate::browser::click(&client, "input[name=risk_level][value=medium]").await;
    submit(&client, "#intake-submit").await;
    let page = text(&client).await;
    assert!(page.contains("Đã lưu trường hợp"), "{page}");
    shot(&client, "qs-06-first-case").await;
    client.close().await.unwrap();
    drop(server);
}
