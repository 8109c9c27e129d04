//! The worker that sends the outbox: claim, commit, send, record.
//!
//! A pass claims a batch of due messages under a lease and commits the claim
//! before sending, so a crash leaves the rows `sending` until the lease runs
//! out and another pass (here or in another replica) takes them again. Each
//! message carries a `Message-ID` derived from its idempotency key: the one
//! duplicate SMTP cannot rule out — the server said 250 and we died before
//! recording it — reaches the recipient as the same message again, which
//! mail clients and servers recognise. Logs name outbox ids, templates and
//! error kinds, never recipients or content.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::FixedOffset;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

use super::outbox::{self, Claim, OutboxRow, Retry};
use super::{Language, Message, Template, templates};
use crate::clock::SharedClock;
use crate::config::{ConfigError, Settings};
use crate::crypto::sha256_hex;
use crate::db::{Db, DbError};

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP server (`smtp://`, `smtps://`, `?tls=required`).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a directory, one per message, named after its
    /// idempotency key (a resend overwrites).
    Files(PathBuf),
}

impl Transport {
    /// An SMTP transport from `CASEGUARD_SMTP_URL`. The error never repeats
    /// the URL: it may carry a password.
    pub fn smtp(url: &SecretString, timeout: Duration) -> Result<Self, ConfigError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| {
                ConfigError("configuration `smtp_url`: not a usable SMTP URL (expected smtp://HOST[:PORT][?tls=required] or smtps://HOST[:PORT])".into())
            })?;
        Ok(Self::Smtp(builder.timeout(Some(timeout)).build()))
    }

    pub fn files(dir: PathBuf) -> Self {
        Self::Files(dir)
    }

    async fn send(&self, email: lettre::Message, stem: &str) -> Result<(), &'static str> {
        match self {
            Self::Smtp(smtp) => smtp
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| smtp_error_kind(&e)),
            Self::Files(dir) => {
                let dir = dir.clone();
                let stem = stem.to_owned();
                tokio::task::spawn_blocking(move || write_eml(&dir, &stem, &email.formatted()))
                    .await
                    .map_err(|_| "file_task")?
                    .map_err(|_| "file_write")
            }
        }
    }
}

/// Writes `<dir>/<stem>.eml` readable by the owner only (a partner's link
/// opens a referral), atomically: a reader never sees half a message.
fn write_eml(dir: &std::path::Path, stem: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    crate::files::create_private_dir(dir)?;
    let part = dir.join(format!("{stem}.eml.part"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&part)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&part, dir.join(format!("{stem}.eml")))
}

/// A short error kind for `last_error` and logs: the SMTP code at most,
/// never the server's text (it may quote the recipient).
fn smtp_error_kind(error: &lettre::transport::smtp::Error) -> &'static str {
    let code = error.status().map(|c| c.to_string());
    match code.as_deref() {
        Some("421") => "smtp_421",
        Some("450") => "smtp_450",
        Some("451") => "smtp_451",
        Some("452") => "smtp_452",
        Some("550") => "smtp_550",
        Some("552") => "smtp_552",
        Some("553") => "smtp_553",
        Some("554") => "smtp_554",
        _ if error.is_transient() => "smtp_4xx",
        _ if error.is_permanent() => "smtp_5xx",
        _ if error.is_timeout() => "smtp_timeout",
        _ if error.is_tls() => "smtp_tls",
        _ if error.is_client() => "smtp_client",
        _ => "smtp_connection",
    }
}

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// The `From:` of every message.
    pub from: Mailbox,
    /// Attempts before a message is `dead`.
    pub max_attempts: u32,
    /// Messages claimed per pass.
    pub batch_size: u32,
    /// Longest one message may take to send (connect to 250).
    pub send_timeout: Duration,
    /// Times in messages are shown at this offset from UTC.
    pub local_offset: FixedOffset,
}

/// Vietnam time, as in `policies/calendar-vn.toml`.
const VIETNAM: i32 = 7 * 3600;

impl OutboxConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            from: settings.mail_from.clone(),
            max_attempts: settings.outbox_max_attempts,
            batch_size: 10,
            send_timeout: Duration::from_secs(60),
            local_offset: FixedOffset::east_opt(VIETNAM)
                .unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc)),
        }
    }

    /// A claim lasts long enough to send the whole batch one by one, each
    /// within its timeout, with a minute to spare; a message is never
    /// started when its lease could run out before it is done.
    pub fn lease(&self) -> Duration {
        self.send_timeout
            .saturating_mul(self.batch_size)
            .saturating_add(Duration::from_secs(60))
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Messages this pass took.
    pub claimed: usize,
    pub sent: usize,
    /// Failed attempts to be tried again later.
    pub retried: usize,
    /// Messages given up on (attempts exhausted or not renderable).
    pub dead: usize,
    /// Claimed but not sent in this pass (the lease was too short to start
    /// one more, or another worker took the row): sent later.
    pub deferred: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for OutboxError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// The outbox sender. Cheap to clone; several may run against one database.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    clock: SharedClock,
    transport: Arc<Transport>,
    config: Arc<OutboxConfig>,
    worker_id: Arc<str>,
}

/// First retry delay; doubles each attempt up to [`MAX_BACKOFF_SECS`].
const BASE_BACKOFF_SECS: i64 = 30;
const MAX_BACKOFF_SECS: i64 = 3600;

impl Outbox {
    pub fn new(db: Db, clock: SharedClock, transport: Transport, config: OutboxConfig) -> Self {
        let worker_id = format!("outbox-{}", uuid::Uuid::new_v4().simple());
        Self {
            db,
            clock,
            transport: Arc::new(transport),
            config: Arc::new(config),
            worker_id: worker_id.into(),
        }
    }

    /// The worker of `serve`: SMTP when `smtp_url` is set, otherwise `.eml`
    /// files in `<data_dir>/outbox/`.
    pub fn from_settings(
        db: Db,
        clock: SharedClock,
        settings: &Settings,
    ) -> Result<Self, ConfigError> {
        let config = OutboxConfig::from_settings(settings);
        let transport = match &settings.smtp_url {
            Some(url) => Transport::smtp(url, config.send_timeout)?,
            None => Transport::files(settings.data_dir.join("outbox")),
        };
        Ok(Self::new(db, clock, transport, config))
    }

    /// This worker's name in `locked_by`.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Claims due messages, commits the claim, sends them and records each
    /// outcome.
    pub async fn run_once(&self) -> Result<PassReport, OutboxError> {
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.config.lease()).unwrap_or(chrono::Duration::hours(1));
        let lease_until = now + lease;
        let worker = self.worker_id.clone();
        let max_attempts = i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX);
        let limit = i64::from(self.config.batch_size);
        let now_naive = self.clock.now_naive();
        let claimed = self
            .db
            .write(move |conn| -> Result<_, OutboxError> {
                Ok(outbox::claim(
                    conn,
                    &Claim {
                        worker: &worker,
                        now: now_naive,
                        lease_until: lease_until.naive_utc(),
                        limit,
                        max_attempts,
                    },
                )?)
            })
            .await?;
        let mut report = PassReport {
            claimed: claimed.rows.len(),
            dead: claimed.expired.len(),
            ..PassReport::default()
        };
        for id in &claimed.expired {
            tracing::warn!(outbox.id = %id, "notification dead: its last attempt was interrupted");
        }
        let send_timeout = chrono::Duration::from_std(self.config.send_timeout).unwrap_or(lease);
        for row in claimed.rows {
            if self.clock.now() + send_timeout >= lease_until {
                report.deferred += 1;
                continue;
            }
            let outcome = self.deliver(&row).await;
            match self.record(row, outcome).await? {
                Recorded::Sent => report.sent += 1,
                Recorded::Retry => report.retried += 1,
                Recorded::Dead => report.dead += 1,
                Recorded::LostLease => report.deferred += 1,
            }
        }
        Ok(report)
    }

    /// Sends one claimed message. `Err` is an error kind and whether another
    /// attempt could help.
    async fn deliver(&self, row: &OutboxRow) -> Result<(), Failure> {
        let message = message_of(row).map_err(|()| Failure::permanent("invalid_message"))?;
        let rendered = templates::render(&message, self.config.local_offset)
            .map_err(|_| Failure::permanent("render"))?;
        let stem = sha256_hex(message.idempotency_key().as_bytes());
        let email = self
            .build(&message, rendered, &stem)
            .map_err(|()| Failure::permanent("build"))?;
        match tokio::time::timeout(self.config.send_timeout, self.transport.send(email, &stem))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(kind)) => Err(Failure::transient(kind)),
            Err(_) => Err(Failure::transient("timeout")),
        }
    }

    fn build(
        &self,
        message: &Message,
        rendered: templates::Rendered,
        stem: &str,
    ) -> Result<lettre::Message, ()> {
        let to: lettre::Address = message.recipient().as_str().parse().map_err(|_| ())?;
        lettre::Message::builder()
            .from(self.config.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            // The same message keeps the same id however often it is sent.
            .message_id(Some(format!("<{stem}@caseguard>")))
            .date(SystemTime::from(self.clock.now()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                message.language().as_str().to_owned(),
            ))
            // RFC 3834: no auto-replies, please.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .header(ContentType::TEXT_PLAIN)
            // lettre picks 7bit, quoted-printable or base64 as the text needs.
            .body(rendered.body)
            .map_err(|_| ())
    }

    async fn record(
        &self,
        row: OutboxRow,
        outcome: Result<(), Failure>,
    ) -> Result<Recorded, OutboxError> {
        let now = self.clock.now();
        let forget = Template::parse(&row.template).is_ok_and(Template::forget_params_when_done);
        let worker = self.worker_id.clone();
        let template = row.template.clone();
        let id = row.id.clone();
        let recorded = match outcome {
            Ok(()) => {
                let now = self.clock.now_naive();
                let held = self
                    .db
                    .write(move |conn| -> Result<_, OutboxError> {
                        Ok(outbox::mark_sent(conn, &row.id, &worker, now, forget)?)
                    })
                    .await?;
                if held {
                    tracing::info!(outbox.id = %id, template = %template, "notification sent");
                    Recorded::Sent
                } else {
                    Recorded::LostLease
                }
            }
            Err(failure) => {
                let exhausted = u32::try_from(row.attempts)
                    .map_or(true, |attempts| attempts >= self.config.max_attempts);
                let retry = if failure.permanent || exhausted {
                    Retry::GiveUp
                } else {
                    let delay = backoff(&row.id, row.attempts);
                    Retry::At((now + delay).naive_utc())
                };
                let kind = failure.kind;
                let held = self
                    .db
                    .write(move |conn| -> Result<_, OutboxError> {
                        Ok(outbox::mark_failed(
                            conn, &row.id, &worker, retry, kind, forget,
                        )?)
                    })
                    .await?;
                match (held, retry) {
                    (false, _) => Recorded::LostLease,
                    (true, Retry::GiveUp) => {
                        tracing::warn!(outbox.id = %id, template = %template, error = kind, "notification dead: giving up");
                        Recorded::Dead
                    }
                    (true, Retry::At(_)) => {
                        tracing::info!(outbox.id = %id, template = %template, error = kind, "notification not sent; will retry");
                        Recorded::Retry
                    }
                }
            }
        };
        if matches!(recorded, Recorded::LostLease) {
            tracing::warn!(outbox.id = %id, "notification lease lost to another worker");
        }
        Ok(recorded)
    }

    /// Runs a pass every `every` (at once again while passes come back full)
    /// until `stopping` is notified.
    pub async fn run_every(self, every: Duration, stopping: Arc<Notify>) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let full = usize::try_from(self.config.batch_size).unwrap_or(usize::MAX);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stopping.notified() => break,
            }
            loop {
                match self.run_once().await {
                    Ok(report) if report.claimed >= full => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "outbox pass failed");
                        break;
                    }
                }
            }
        }
    }
}

enum Recorded {
    Sent,
    Retry,
    Dead,
    LostLease,
}

struct Failure {
    kind: &'static str,
    permanent: bool,
}

impl Failure {
    fn permanent(kind: &'static str) -> Self {
        Self {
            kind,
            permanent: true,
        }
    }

    fn transient(kind: &'static str) -> Self {
        Self {
            kind,
            permanent: false,
        }
    }
}

/// A stored row as a [`Message`], checked again (a row written by an older
/// release, or by hand, gets no less scrutiny than a new one).
fn message_of(row: &OutboxRow) -> Result<Message, ()> {
    let params = serde_json::from_str(&row.params).map_err(|_| ())?;
    Message::new(
        &row.idempotency_key,
        &row.recipient,
        Language::parse(&row.language).map_err(|_| ())?,
        Template::parse(&row.template).map_err(|_| ())?,
        params,
    )
    .map_err(|_| ())
}

/// The wait after the `attempts`-th failed attempt: 30 s doubling, at most
/// an hour, plus up to a tenth more so that messages that failed together
/// do not all come back together. The spread is derived from the id, not
/// drawn, so a retry time is reproducible.
pub fn backoff(id: &str, attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    let base = BASE_BACKOFF_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_SECS);
    let digest = sha256_hex(format!("{id}:{attempts}").as_bytes());
    let spread = digest
        .get(..4)
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    let jitter_ms = spread * base * 100 / 0xffff;
    chrono::Duration::milliseconds(base * 1000 + jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_with_a_small_spread() {
        for (attempts, base) in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (30, 3600)] {
            let delay = backoff("0190f3a2-7c1e-7abc-8def-0123456789ab", attempts);
            assert!(
                delay >= chrono::Duration::seconds(base),
                "{attempts}: {delay}"
            );
            assert!(
                delay <= chrono::Duration::milliseconds(base * 1100),
                "{attempts}: {delay}"
            );
        }
        assert_ne!(backoff("a", 1), backoff("b", 1), "no spread");
        assert_eq!(backoff("a", 1), backoff("a", 1));
    }
}
