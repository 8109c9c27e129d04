//! Notifications: the transactional outbox and the e-mail worker (issue 5).
//!
//! Owns the `outbox` table, the mail templates (`templates/mail/`) and the
//! worker that sends them. An event that should tell someone writes a
//! [`Message`] with [`enqueue`] inside its own write transaction, so the
//! message exists if and only if the event committed; [`Outbox::run_once`]
//! later claims due messages, sends them over SMTP (or into `.eml` files) and
//! records the outcome, retrying with backoff and giving up after a limit.
//!
//! It must never put personal data in a message, a row or a log line: a
//! message says only that something awaits the reader, with a link, a
//! deadline and an opaque reference — each a parameter checked against the
//! template's allow-list when the [`Message`] is made. Logs carry outbox ids,
//! templates and states, never recipients.

pub mod outbox;
pub mod templates;
pub mod worker;

use std::collections::BTreeMap;

use chrono::DateTime;

use crate::clock::Clock;
use crate::db::{DbConnection, DbError};
use crate::domain::user::EmailAddress;

pub use templates::{Rendered, render};
pub use worker::{Outbox, OutboxConfig, OutboxError, PassReport, Transport};

/// The recipient's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Vi,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidMessage> {
        match text {
            "vi" => Ok(Self::Vi),
            "en" => Ok(Self::En),
            _ => Err(InvalidMessage("language must be vi or en".into())),
        }
    }
}

/// What a message announces. Each has a file per language under
/// `templates/mail/` and its own allow-list of parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// To an agency's officers: a referral awaits you (link, acknowledge-by
    /// `deadline`).
    ReferralReceived,
    /// To a partner without an account: a one-time `link`, valid until
    /// `valid_until`; the code comes by another channel.
    PartnerLink,
    /// To the school's focal point: an agency replied to, or gave feedback
    /// on, one of your referrals.
    ReferralUpdate,
    /// To a district officer: a `deadline` was missed in your area.
    EscalationRaised,
    /// To the focal point: a `deadline` is near.
    DeadlineReminder,
    /// To the school's focal points and the area's auditors: a district
    /// officer opened a case by break-glass, `valid_until` (the reason is
    /// read on the linked page, never in the mail).
    BreakGlassOpened,
    /// To a school's other focal points: a case's closure awaits your
    /// approval (issue 16).
    ClosureApproval,
    /// To the focal point who asked for a closure: another focal point
    /// decided on it (approved or returned: see the link).
    ClosureDecided,
    /// To the receiving school's focal points: a case transfer awaits your
    /// answer by `deadline`.
    TransferReceived,
    /// To the sending school's focal points: the receiving school answered
    /// one of your transfers (accepted or refused: see the link).
    TransferUpdate,
    /// To a unit's focal points: the unit's reporting indicators are due by
    /// `deadline` and not entered yet (no figure, no period's content).
    IndicatorsReminder,
    /// To the person only: a one-time `link` to activate an account (a
    /// password and a second factor), valid until `valid_until`. The
    /// administrator who asked for it never sees the link (issue 21).
    AccountEnrolment,
    /// To the person only: a one-time `link` to choose a new password (the
    /// second factor stays), valid until `valid_until`.
    PasswordReset,
    /// To the organisation's other case-reading accounts (or the area's
    /// auditors): an administrator added or reset an account there. Names
    /// no one; the `link` is the sign-in page.
    AccountNotice,
}

/// How a parameter's value must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An `http(s)://` address without credentials or query string, made of
    /// URL-safe ASCII only.
    Link,
    /// An RFC 3339 timestamp; shown in local time in the reader's language.
    Time,
    /// An opaque reference: 1–32 ASCII letters, digits and hyphens.
    Reference,
}

/// One allowed parameter of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub key: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

const fn param(key: &'static str, kind: ParamKind, required: bool) -> ParamSpec {
    ParamSpec {
        key,
        kind,
        required,
    }
}

const LINK: ParamSpec = param("link", ParamKind::Link, true);
const REFERENCE: ParamSpec = param("reference", ParamKind::Reference, false);
const DEADLINE: ParamSpec = param("deadline", ParamKind::Time, true);
const VALID_UNTIL: ParamSpec = param("valid_until", ParamKind::Time, true);

impl Template {
    pub const ALL: [Self; 14] = [
        Self::ReferralReceived,
        Self::PartnerLink,
        Self::ReferralUpdate,
        Self::EscalationRaised,
        Self::DeadlineReminder,
        Self::BreakGlassOpened,
        Self::ClosureApproval,
        Self::ClosureDecided,
        Self::TransferReceived,
        Self::TransferUpdate,
        Self::IndicatorsReminder,
        Self::AccountEnrolment,
        Self::PasswordReset,
        Self::AccountNotice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReferralReceived => "referral_received",
            Self::PartnerLink => "partner_link",
            Self::ReferralUpdate => "referral_update",
            Self::EscalationRaised => "escalation_raised",
            Self::DeadlineReminder => "deadline_reminder",
            Self::BreakGlassOpened => "break_glass_opened",
            Self::ClosureApproval => "closure_approval",
            Self::ClosureDecided => "closure_decided",
            Self::TransferReceived => "transfer_received",
            Self::TransferUpdate => "transfer_update",
            Self::IndicatorsReminder => "indicators_reminder",
            Self::AccountEnrolment => "account_enrolment",
            Self::PasswordReset => "password_reset",
            Self::AccountNotice => "account_notice",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidMessage> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| InvalidMessage("unknown template".into()))
    }

    /// The only parameters this template accepts.
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            Self::ReferralReceived
            | Self::EscalationRaised
            | Self::DeadlineReminder
            | Self::TransferReceived
            | Self::IndicatorsReminder => &[LINK, DEADLINE, REFERENCE],
            Self::PartnerLink
            | Self::BreakGlassOpened
            | Self::AccountEnrolment
            | Self::PasswordReset => &[LINK, VALID_UNTIL, REFERENCE],
            Self::AccountNotice => &[LINK, REFERENCE],
            Self::ReferralUpdate
            | Self::ClosureApproval
            | Self::ClosureDecided
            | Self::TransferUpdate => &[LINK, REFERENCE],
        }
    }

    /// Whether the stored parameters are worth nothing once the message is
    /// out, and are better forgotten: a partner's one-time link opens a
    /// referral until it is used or expires.
    fn forget_params_when_done(self) -> bool {
        matches!(
            self,
            Self::PartnerLink | Self::AccountEnrolment | Self::PasswordReset
        )
    }
}

/// A message that cannot be sent as given. The text names the key or the
/// rule broken, never a value (a careless caller's value may be personal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid notification: {0}")]
pub struct InvalidMessage(String);

/// A notification to send, checked when made: a known template, the
/// template's allowed parameters only, each of the right shape.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    idempotency_key: String,
    recipient: EmailAddress,
    language: Language,
    template: Template,
    params: BTreeMap<String, String>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("idempotency_key", &self.idempotency_key)
            .field("recipient", &self.recipient)
            .field("language", &self.language)
            .field("template", &self.template)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Longest idempotency key accepted.
const MAX_KEY_LEN: usize = 200;
const MAX_LINK_LEN: usize = 2048;
const MAX_REFERENCE_LEN: usize = 32;

impl Message {
    /// Checks and builds a message.
    ///
    /// `idempotency_key` names the event and the recipient (e.g.
    /// `referral:<id>:received:<user id>`): enqueueing the same key twice
    /// sends once. 1–200 characters of ASCII letters, digits and `:._-`.
    pub fn new(
        idempotency_key: &str,
        recipient: &str,
        language: Language,
        template: Template,
        params: BTreeMap<String, String>,
    ) -> Result<Self, InvalidMessage> {
        let key_ok = !idempotency_key.is_empty()
            && idempotency_key.len() <= MAX_KEY_LEN
            && idempotency_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b));
        if !key_ok {
            return Err(InvalidMessage(
                "idempotency key must be 1-200 ASCII letters, digits or :._-".into(),
            ));
        }
        let recipient = EmailAddress::parse(recipient)
            .map_err(|_| InvalidMessage("recipient is not an e-mail address".into()))?;
        let specs = template.params();
        let mut checked = BTreeMap::new();
        for (key, value) in params {
            let spec = specs.iter().find(|s| s.key == key).ok_or_else(|| {
                InvalidMessage(format!(
                    "parameter `{}` is not allowed in {}",
                    printable_key(&key),
                    template.as_str()
                ))
            })?;
            let value = check_value(spec, &value)?;
            checked.insert(key, value);
        }
        if let Some(missing) = specs
            .iter()
            .find(|s| s.required && !checked.contains_key(s.key))
        {
            return Err(InvalidMessage(format!(
                "parameter `{}` is required in {}",
                missing.key,
                template.as_str()
            )));
        }
        Ok(Self {
            idempotency_key: idempotency_key.to_owned(),
            recipient,
            language,
            template,
            params: checked,
        })
    }

    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    pub fn recipient(&self) -> &EmailAddress {
        &self.recipient
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn template(&self) -> Template {
        self.template
    }

    pub fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }
}

/// A parameter key as it may appear in an error: known-safe characters only.
fn printable_key(key: &str) -> String {
    if key.len() <= 40 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        key.to_owned()
    } else {
        "(unprintable)".to_owned()
    }
}

/// Checks one value against its kind and returns it in stored form.
fn check_value(spec: &ParamSpec, value: &str) -> Result<String, InvalidMessage> {
    let bad = |rule: &str| InvalidMessage(format!("parameter `{}` {rule}", spec.key));
    match spec.kind {
        ParamKind::Link => {
            let safe = value.len() <= MAX_LINK_LEN
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/:#=%".contains(&b));
            if !safe {
                return Err(bad("must be a URL of URL-safe ASCII characters"));
            }
            let url = url::Url::parse(value).map_err(|_| bad("must be a URL"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host().is_none()
                || !url.username().is_empty()
                || url.password().is_some()
                || url.query().is_some()
            {
                return Err(bad(
                    "must be an http(s) URL with a host, no credentials and no query string",
                ));
            }
            Ok(value.to_owned())
        }
        ParamKind::Time => {
            let at = DateTime::parse_from_rfc3339(value)
                .map_err(|_| bad("must be an RFC 3339 timestamp"))?;
            Ok(at.to_utc().to_rfc3339())
        }
        ParamKind::Reference => {
            let ok = !value.is_empty()
                && value.len() <= MAX_REFERENCE_LEN
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(bad("must be 1-32 ASCII letters, digits or hyphens"));
            }
            Ok(value.to_owned())
        }
    }
}

/// Writes `message` to the outbox. Call it inside the write transaction of
/// the event it announces ([`crate::db::write_transaction`]), so the message
/// is sent if and only if the event commits.
///
/// Returns `false`, changing nothing, when a message with the same
/// idempotency key is already there (sent or not).
pub fn enqueue(
    conn: &mut DbConnection,
    clock: &dyn Clock,
    message: &Message,
) -> Result<bool, DbError> {
    let params = serde_json::to_string(&message.params)
        .map_err(|e| DbError::Task(format!("cannot encode parameters: {e}")))?;
    let now = clock.now_naive();
    let id = uuid::Uuid::now_v7().to_string();
    let row = outbox::NewOutboxRow {
        id: &id,
        idempotency_key: &message.idempotency_key,
        recipient: message.recipient.as_str(),
        language: message.language.as_str(),
        template: message.template.as_str(),
        params: &params,
        status: outbox::Status::Pending.as_str(),
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
    };
    let inserted = outbox::insert_if_new(conn, &row)?;
    if inserted {
        tracing::debug!(outbox.id = %id, template = message.template.as_str(), "notification queued");
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn make(template: Template, pairs: &[(&str, &str)]) -> Result<Message, InvalidMessage> {
        Message::new(
            "k:1",
            "officer@agency.example.org",
            Language::Vi,
            template,
            params(pairs),
        )
    }

    const LINK_OK: &str = "https://caseguard.example.org/referrals/0190f3a2-7c1e-7000-8000-1234";

    #[test]
    fn every_template_accepts_its_own_params() {
        let deadline = "2026-11-05T10:00:00Z";
        assert!(
            make(
                Template::ReferralReceived,
                &[("link", LINK_OK), ("deadline", deadline)]
            )
            .is_ok()
        );
        assert!(
            make(
                Template::PartnerLink,
                &[
                    ("link", LINK_OK),
                    ("valid_until", deadline),
                    ("reference", "R-7F3A")
                ]
            )
            .is_ok()
        );
        assert!(make(Template::ReferralUpdate, &[("link", LINK_OK)]).is_ok());
        assert!(
            make(
                Template::EscalationRaised,
                &[("link", LINK_OK), ("deadline", deadline)]
            )
            .is_ok()
        );
        assert!(
            make(
                Template::DeadlineReminder,
                &[("link", LINK_OK), ("deadline", deadline)]
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_missing_or_misshapen_params_are_refused_without_echo() {
        let secret = "Nguyen Thi Canary";
        let err = make(
            Template::ReferralUpdate,
            &[("link", LINK_OK), ("pupil_name", secret)],
        )
        .unwrap_err();
        assert!(
            err.0.contains("pupil_name") && !err.0.contains(secret),
            "{err}"
        );
        let err = make(
            Template::ReferralUpdate,
            &[("link", LINK_OK), (secret, "x")],
        )
        .unwrap_err();
        assert!(!err.0.contains(secret), "{err}");
        assert!(make(Template::ReferralReceived, &[("link", LINK_OK)]).is_err());
        for link in [
            "ftp://caseguard.example.org/x",
            "https://caseguard.example.org/x?name=An",
            "https://user:pw@caseguard.example.org/x",
            "https://caseguard.example.org/Nguyễn",
            "https://caseguard.example.org/a b",
            "/relative/path",
        ] {
            let err = make(Template::ReferralUpdate, &[("link", link)]).unwrap_err();
            assert!(!err.0.contains(link), "{err}");
        }
        for reference in ["", "has space", "Nguyễn", &"A".repeat(33)] {
            assert!(
                make(
                    Template::ReferralUpdate,
                    &[("link", LINK_OK), ("reference", reference)]
                )
                .is_err()
            );
        }
        assert!(
            make(
                Template::DeadlineReminder,
                &[("link", LINK_OK), ("deadline", "tomorrow")]
            )
            .is_err()
        );
    }

    #[test]
    fn times_are_stored_in_utc() {
        let m = make(
            Template::DeadlineReminder,
            &[("link", LINK_OK), ("deadline", "2026-11-05T17:00:00+07:00")],
        )
        .unwrap();
        assert_eq!(m.params()["deadline"], "2026-11-05T10:00:00+00:00");
    }

    #[test]
    fn keys_recipients_and_names_are_checked() {
        for (key, recipient) in [
            ("", "a@b.example"),
            ("key with space", "a@b.example"),
            (&"k".repeat(201), "a@b.example"),
            ("k", "not an address"),
        ] {
            let made = Message::new(
                key,
                recipient,
                Language::En,
                Template::ReferralUpdate,
                params(&[("link", LINK_OK)]),
            );
            assert!(made.is_err(), "{key} {recipient}");
        }
        for t in Template::ALL {
            assert_eq!(Template::parse(t.as_str()), Ok(t));
        }
        assert!(Template::parse("nope").is_err());
        assert_eq!(Language::parse("en"), Ok(Language::En));
        assert!(Language::parse("fr").is_err());
    }
}
