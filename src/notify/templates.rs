//! Mail templates: one file per template and language in `templates/mail/`,
//! compiled and checked by askama. The first line of a file is the subject,
//! then an empty line, then the plain-text body.
//!
//! A template sees only a link, an opaque reference and one time, formatted
//! here for the reader's language in local time. There is nothing else to
//! show, by construction: [`super::Message`] admits no other parameter.

use askama::Template as _;
use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::{Language, Message, Template};

/// A rendered message: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {0} is missing parameter {1}")]
    Missing(&'static str, &'static str),
    #[error("template {0} could not be rendered")]
    Template(&'static str),
    #[error("template {0} has no subject line")]
    NoSubject(&'static str),
}

macro_rules! mail_template {
    ($name:ident, $path:literal, $time:ident) => {
        #[derive(askama::Template)]
        #[template(path = $path, escape = "none")]
        struct $name<'a> {
            link: &'a str,
            $time: &'a str,
            reference: Option<&'a str>,
        }
    };
    ($name:ident, $path:literal) => {
        #[derive(askama::Template)]
        #[template(path = $path, escape = "none")]
        struct $name<'a> {
            link: &'a str,
            reference: Option<&'a str>,
        }
    };
}

mail_template!(
    ReferralReceivedVi,
    "mail/referral_received.vi.txt",
    deadline
);
mail_template!(
    ReferralReceivedEn,
    "mail/referral_received.en.txt",
    deadline
);
mail_template!(PartnerLinkVi, "mail/partner_link.vi.txt", valid_until);
mail_template!(PartnerLinkEn, "mail/partner_link.en.txt", valid_until);
mail_template!(ReferralUpdateVi, "mail/referral_update.vi.txt");
mail_template!(ReferralUpdateEn, "mail/referral_update.en.txt");
mail_template!(ClosureApprovalVi, "mail/closure_approval.vi.txt");
mail_template!(ClosureApprovalEn, "mail/closure_approval.en.txt");
mail_template!(ClosureDecidedVi, "mail/closure_decided.vi.txt");
mail_template!(ClosureDecidedEn, "mail/closure_decided.en.txt");
mail_template!(
    EscalationRaisedVi,
    "mail/escalation_raised.vi.txt",
    deadline
);
mail_template!(
    EscalationRaisedEn,
    "mail/escalation_raised.en.txt",
    deadline
);
mail_template!(
    DeadlineReminderVi,
    "mail/deadline_reminder.vi.txt",
    deadline
);
mail_template!(
    DeadlineReminderEn,
    "mail/deadline_reminder.en.txt",
    deadline
);
mail_template!(
    TransferReceivedVi,
    "mail/transfer_received.vi.txt",
    deadline
);
mail_template!(
    TransferReceivedEn,
    "mail/transfer_received.en.txt",
    deadline
);
mail_template!(TransferUpdateVi, "mail/transfer_update.vi.txt");
mail_template!(TransferUpdateEn, "mail/transfer_update.en.txt");

mail_template!(
    BreakGlassOpenedVi,
    "mail/break_glass_opened.vi.txt",
    valid_until
);
mail_template!(
    BreakGlassOpenedEn,
    "mail/break_glass_opened.en.txt",
    valid_until
);
mail_template!(
    IndicatorsReminderVi,
    "mail/indicators_reminder.vi.txt",
    deadline
);
mail_template!(
    IndicatorsReminderEn,
    "mail/indicators_reminder.en.txt",
    deadline
);

mail_template!(
    AccountEnrolmentVi,
    "mail/account_enrolment.vi.txt",
    valid_until
);
mail_template!(
    AccountEnrolmentEn,
    "mail/account_enrolment.en.txt",
    valid_until
);
mail_template!(PasswordResetVi, "mail/password_reset.vi.txt", valid_until);
mail_template!(PasswordResetEn, "mail/password_reset.en.txt", valid_until);
mail_template!(AccountNoticeVi, "mail/account_notice.vi.txt");
mail_template!(AccountNoticeEn, "mail/account_notice.en.txt");

/// Renders `message` in its language, showing times at `offset` from UTC
/// (UTC+7 for Vietnam).
pub fn render(message: &Message, offset: FixedOffset) -> Result<Rendered, RenderError> {
    let name = message.template.as_str();
    let param = |key: &'static str| {
        message
            .params
            .get(key)
            .map(String::as_str)
            .ok_or(RenderError::Missing(name, key))
    };
    let time = |key: &'static str| -> Result<String, RenderError> {
        let at =
            DateTime::parse_from_rfc3339(param(key)?).map_err(|_| RenderError::Template(name))?;
        Ok(local_time(at.with_timezone(&offset), message.language))
    };
    let link = param("link")?;
    let reference = message.params.get("reference").map(String::as_str);
    let text = match (message.template, message.language) {
        (Template::ReferralReceived, Language::Vi) => ReferralReceivedVi {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::ReferralReceived, Language::En) => ReferralReceivedEn {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::PartnerLink, Language::Vi) => PartnerLinkVi {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::PartnerLink, Language::En) => PartnerLinkEn {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::ReferralUpdate, Language::Vi) => ReferralUpdateVi { link, reference }.render(),
        (Template::ReferralUpdate, Language::En) => ReferralUpdateEn { link, reference }.render(),
        (Template::ClosureApproval, Language::Vi) => ClosureApprovalVi { link, reference }.render(),
        (Template::ClosureApproval, Language::En) => ClosureApprovalEn { link, reference }.render(),
        (Template::ClosureDecided, Language::Vi) => ClosureDecidedVi { link, reference }.render(),
        (Template::ClosureDecided, Language::En) => ClosureDecidedEn { link, reference }.render(),
        (Template::EscalationRaised, Language::Vi) => EscalationRaisedVi {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::EscalationRaised, Language::En) => EscalationRaisedEn {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::DeadlineReminder, Language::Vi) => DeadlineReminderVi {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::DeadlineReminder, Language::En) => DeadlineReminderEn {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::BreakGlassOpened, Language::Vi) => BreakGlassOpenedVi {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::BreakGlassOpened, Language::En) => BreakGlassOpenedEn {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::TransferUpdate, Language::Vi) => TransferUpdateVi { link, reference }.render(),
        (Template::TransferUpdate, Language::En) => TransferUpdateEn { link, reference }.render(),
        (Template::TransferReceived, Language::Vi) => TransferReceivedVi {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::TransferReceived, Language::En) => TransferReceivedEn {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::IndicatorsReminder, Language::Vi) => IndicatorsReminderVi {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::IndicatorsReminder, Language::En) => IndicatorsReminderEn {
            link,
            deadline: &time("deadline")?,
            reference,
        }
        .render(),
        (Template::AccountEnrolment, Language::Vi) => AccountEnrolmentVi {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::AccountEnrolment, Language::En) => AccountEnrolmentEn {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::PasswordReset, Language::Vi) => PasswordResetVi {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::PasswordReset, Language::En) => PasswordResetEn {
            link,
            valid_until: &time("valid_until")?,
            reference,
        }
        .render(),
        (Template::AccountNotice, Language::Vi) => AccountNoticeVi { link, reference }.render(),
        (Template::AccountNotice, Language::En) => AccountNoticeEn { link, reference }.render(),
    }
    .map_err(|_| RenderError::Template(name))?;
    let (subject, body) = text
        .split_once("\n\n")
        .ok_or(RenderError::NoSubject(name))?;
    let subject = subject.trim();
    if subject.is_empty() || subject.contains('\n') {
        return Err(RenderError::NoSubject(name));
    }
    let mut body = body.trim_end().to_owned();
    body.push('\n');
    Ok(Rendered {
        subject: subject.to_owned(),
        body,
    })
}

/// A local time as a reader of `language` expects it, with the offset named:
/// `17:00 ngày 05/11/2026 (UTC+7)`, `17:00 on 5 November 2026 (UTC+7)`.
fn local_time(at: DateTime<FixedOffset>, language: Language) -> String {
    let zone = offset_label(*at.offset());
    match language {
        Language::Vi => format!(
            "{:02}:{:02} ngày {:02}/{:02}/{} ({zone})",
            at.hour(),
            at.minute(),
            at.day(),
            at.month(),
            at.year()
        ),
        Language::En => format!(
            "{:02}:{:02} on {} {} ({zone})",
            at.hour(),
            at.minute(),
            at.day(),
            at.format("%B %Y")
        ),
    }
}

fn offset_label(offset: FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    if minutes == 0 {
        format!("UTC{sign}{hours}")
    } else {
        format!("UTC{sign}{hours}:{minutes:02}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vietnam() -> FixedOffset {
        FixedOffset::east_opt(7 * 3600).unwrap()
    }

    fn message(template: Template, language: Language) -> Message {
        let mut params = BTreeMap::new();
        params.insert(
            "link".to_owned(),
            "https://caseguard.example.org/referrals/0190f3a2-7c1e-7abc-8def-0123456789ab"
                .to_owned(),
        );
        params.insert("reference".to_owned(), "R-7F3A".to_owned());
        for spec in template.params() {
            if spec.kind == super::super::ParamKind::Time {
                params.insert(spec.key.to_owned(), "2026-11-05T10:00:00Z".to_owned());
            }
        }
        Message::new(
            "test:1",
            "officer@agency.example.org",
            language,
            template,
            params,
        )
        .unwrap()
    }

    #[test]
    fn every_template_renders_in_both_languages() {
        for template in Template::ALL {
            for language in [Language::Vi, Language::En] {
                let rendered = render(&message(template, language), vietnam()).unwrap();
                let name = format!("{}.{}", template.as_str(), language.as_str());
                insta::assert_snapshot!(
                    name,
                    format!("Subject: {}\n\n{}", rendered.subject, rendered.body)
                );
            }
        }
    }

    #[test]
    fn times_are_local_and_in_the_readers_language() {
        let at = DateTime::parse_from_rfc3339("2026-11-05T10:00:00Z").unwrap();
        let local = at.with_timezone(&vietnam());
        assert_eq!(
            local_time(local, Language::Vi),
            "17:00 ngày 05/11/2026 (UTC+7)"
        );
        assert_eq!(
            local_time(local, Language::En),
            "17:00 on 5 November 2026 (UTC+7)"
        );
        let india = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        assert_eq!(offset_label(india), "UTC+5:30");
        assert_eq!(offset_label(FixedOffset::west_opt(3600).unwrap()), "UTC-1");
    }

    #[test]
    fn the_reference_line_is_left_out_when_there_is_none() {
        let mut params = BTreeMap::new();
        params.insert(
            "link".to_owned(),
            "https://caseguard.example.org/x".to_owned(),
        );
        let m = Message::new(
            "k",
            "a@b.example",
            Language::En,
            Template::ReferralUpdate,
            params,
        )
        .unwrap();
        let rendered = render(&m, vietnam()).unwrap();
        assert!(!rendered.body.contains("Reference"), "{}", rendered.body);
        assert!(
            rendered
                .body
                .contains("https://caseguard.example.org/x\n\nFor confidentiality"),
            "{}",
            rendered.body
        );
    }
}
