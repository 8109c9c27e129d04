//! An SMTP server for tests, in-process, speaking real SMTP over TCP on
//! 127.0.0.1 (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
//!
//! It records each message it accepts — only once it has answered 250 to the
//! end of DATA, as a real server takes responsibility only then — and can be
//! told to refuse (421 at the greeting), to stall after the data before
//! answering (so a test can kill a sender mid-send), and to stop and start
//! again on the same port.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as received, dot-stuffing undone.
    pub raw: String,
}

impl Accepted {
    /// A message read from elsewhere (an `.eml` file).
    pub fn from_raw(raw: String) -> Self {
        Self {
            message_id: message_id(&raw),
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            raw,
        }
    }

    /// A header's value, unfolded, as sent.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        let mut in_it = false;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if in_it && let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            in_it = false;
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
                in_it = true;
            }
        }
        found
    }

    /// What a reader sees: the subject and the body, decoded.
    pub fn decoded(&self) -> String {
        use base64::Engine as _;
        let body = self.raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let encoding = self
            .header("content-transfer-encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = match encoding.as_str() {
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            }
            "quoted-printable" => String::from_utf8(
                quoted_printable::decode(body, quoted_printable::ParseMode::Robust).unwrap(),
            )
            .unwrap(),
            _ => body.to_owned(),
        };
        let subject = decode_words(&self.header("subject").unwrap_or_default());
        format!("Subject: {subject}\n\n{body}")
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`).
fn decode_words(value: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut last_encoded = false;
    for token in value.split_whitespace() {
        let inner = token.strip_prefix("=?").and_then(|t| t.strip_suffix("?="));
        let decoded = inner.and_then(|inner| {
            let mut parts = inner.splitn(3, '?');
            let (_charset, kind, data) = (parts.next()?, parts.next()?, parts.next()?);
            let bytes = match kind {
                "b" | "B" => base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?,
                "q" | "Q" => quoted_printable::decode(
                    data.replace('_', " "),
                    quoted_printable::ParseMode::Robust,
                )
                .ok()?,
                _ => return None,
            };
            String::from_utf8(bytes).ok()
        });
        match decoded {
            Some(text) => {
                if !out.is_empty() && !last_encoded {
                    out.push(' ');
                }
                out.push_str(&text);
                last_encoded = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(token);
                last_encoded = false;
            }
        }
    }
    out
}

#[derive(Debug, Default)]
struct Shared {
    accepted: Mutex<Vec<Accepted>>,
    /// Messages whose data arrived but whose sender left before the 250.
    abandoned: Mutex<usize>,
    /// Messages waiting in a stall right now.
    stalled: Mutex<usize>,
    refuse: Mutex<bool>,
}

pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    stall: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stall, _) = watch::channel(false);
        let mut sink = Self {
            port,
            shared: Arc::new(Shared::default()),
            stall,
            server: None,
        };
        sink.serve(listener);
        sink
    }

    fn serve(&mut self, listener: TcpListener) {
        let shared = self.shared.clone();
        let stall = self.stall.clone();
        self.server = Some(tokio::spawn(async move {
            // Connections live in the set, so stopping the server ends them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        connections.spawn(session(stream, shared.clone(), stall.subscribe()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Closes the port and every open connection.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut listener = None;
        for _ in 0..100 {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        self.serve(listener.expect("rebind the sink's port"));
    }

    /// Answers every new connection with 421 (service not available).
    pub fn refuse(&self, refuse: bool) {
        *self.shared.refuse.lock().unwrap() = refuse;
    }

    /// Holds the answer to the end of DATA until `stall(false)`.
    pub fn stall(&self, stall: bool) {
        self.stall.send_replace(stall);
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.shared.accepted.lock().unwrap().clone()
    }

    pub fn abandoned(&self) -> usize {
        *self.shared.abandoned.lock().unwrap()
    }

    pub fn stalled(&self) -> usize {
        *self.shared.stalled.lock().unwrap()
    }

    /// How many times each Message-ID was accepted.
    pub fn counts_by_message_id(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for message in self.accepted() {
            let id = message.message_id.expect("every message has a Message-ID");
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }

    /// Waits (bounded) until `check` holds.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Self) -> bool) {
        for _ in 0..1000 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the SMTP sink never saw: {what}");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn message_id(raw: &str) -> Option<String> {
    raw.lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_owned())
        })
}

async fn session(stream: TcpStream, shared: Arc<Shared>, mut stall: watch::Receiver<bool>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if *shared.refuse.lock().unwrap() {
        let _ = write
            .write_all(b"421 4.3.2 sink refusing service\r\n")
            .await;
        return;
    }
    if write.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 sink\r\n",
            "MAIL" => {
                mail_from = text.get(10..).unwrap_or_default().to_owned();
                rcpt_to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(text.get(8..).unwrap_or_default().to_owned());
                b"250 2.1.5 OK\r\n"
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            "DATA" => {
                if write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut raw = String::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let text = String::from_utf8_lossy(&line);
                    raw.push_str(text.strip_prefix('.').unwrap_or(&text));
                }
                if *stall.borrow() {
                    *shared.stalled.lock().unwrap() += 1;
                    // Wait for release, or notice that the sender has gone.
                    let mut probe = [0u8; 1];
                    let released = tokio::select! {
                        _ = stall.wait_for(|s| !*s) => true,
                        _ = reader.read(&mut probe) => false,
                    };
                    *shared.stalled.lock().unwrap() -= 1;
                    if !released {
                        *shared.abandoned.lock().unwrap() += 1;
                        return;
                    }
                }
                if write.write_all(b"250 2.0.0 queued\r\n").await.is_err() {
                    *shared.abandoned.lock().unwrap() += 1;
                    return;
                }
                shared.accepted.lock().unwrap().push(Accepted {
                    message_id: message_id(&raw),
                    mail_from: std::mem::take(&mut mail_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    raw,
                });
                continue;
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
