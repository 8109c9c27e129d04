//! Message catalogues (Fluent, `locales/vi.ftl` and `locales/en.ftl`):
//! every visible string of the web pages comes from here, Vietnamese first.
//! Dates and numbers are formatted per language, in Vietnam's time (UTC+7).
//!
//! A key missing from either catalogue fails a test
//! (`catalogues_have_the_same_keys`, `every_key_the_pages_use_exists`); at
//! run time a missing key shows the key itself rather than failing a page.

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::domain::taxonomy::Taxonomy;

pub const VI: &str = include_str!("../../locales/vi.ftl");
pub const EN: &str = include_str!("../../locales/en.ftl");

/// The languages of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "vi" => Some(Self::Vi),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }

    /// The other language (for the switch).
    pub fn other(self) -> Self {
        match self {
            Self::Vi => Self::En,
            Self::En => Self::Vi,
        }
    }
}

fn bundle(lang: &str, text: &str) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = lang.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: they confuse screen readers
    // and tests, and our arguments are never right-to-left.
    bundle.set_use_isolating(false);
    let resource = FluentResource::try_new(text.to_owned()).unwrap_or_else(|(partial, _)| partial);
    // Duplicate keys keep the first definition; the tests catch them.
    let _ = bundle.add_resource(resource);
    bundle
}

static BUNDLES: LazyLock<[FluentBundle<FluentResource>; 2]> =
    LazyLock::new(|| [bundle("vi", VI), bundle("en", EN)]);

/// Vietnam's offset (the calendar's), for dates shown to people.
fn local_offset() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap_or(Utc.fix())
}

/// A translator for one request: `t.t("key")` in templates.
#[derive(Debug, Clone, Copy)]
pub struct Tr<'a> {
    pub lang: Lang,
    taxonomy: &'a Taxonomy,
}

impl<'a> Tr<'a> {
    pub fn new(lang: Lang, taxonomy: &'a Taxonomy) -> Self {
        Self { lang, taxonomy }
    }

    fn bundle(&self) -> &'static FluentBundle<FluentResource> {
        let [vi, en] = &*BUNDLES;
        match self.lang {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
            return key.to_owned();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    /// The message `key`.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message `key` with one argument `name`.
    pub fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), FluentValue::from(value.to_string()));
        self.format(key, Some(&args))
    }

    /// The message `key` with several arguments.
    pub fn tn(&self, key: &str, values: &[(&str, String)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set((*name).to_owned(), FluentValue::from(value.clone()));
        }
        self.format(key, Some(&args))
    }

    /// The label of a taxonomy code (`policies/taxonomy.toml` carries both
    /// languages), or the code.
    pub fn code(&self, category: &str, code: &str) -> String {
        self.taxonomy
            .label(category, code, self.lang.code())
            .unwrap_or(code)
            .to_owned()
    }

    /// The label of an audit action code (`audit::action`), or the code.
    pub fn audit_action(&self, code: &str) -> String {
        self.labelled("audit-action", &code.replace('.', "-"), code)
    }

    /// The label of the kind of an audit entry's target (`case`, `user` …),
    /// or the kind.
    pub fn audit_target(&self, kind: &str) -> String {
        self.labelled("audit-target-kind", kind, kind)
    }

    /// Message `{family}-{code}`, or `fallback` where there is none.
    fn labelled(&self, family: &str, code: &str, fallback: &str) -> String {
        let key = format!("{family}-{code}");
        let label = self.t(&key);
        if label == key {
            fallback.to_owned()
        } else {
            label
        }
    }

    /// A time, in Vietnam's time, the way the language writes it.
    /// A local calendar day, as people write it in each language.
    pub fn date(&self, day: NaiveDate) -> String {
        match self.lang {
            Lang::Vi => day.format("%d/%m/%Y").to_string(),
            Lang::En => day.format("%-d %b %Y").to_string(),
        }
    }

    pub fn datetime(&self, at: NaiveDateTime) -> String {
        let local =
            DateTime::<Utc>::from_naive_utc_and_offset(at, Utc).with_timezone(&local_offset());
        match self.lang {
            Lang::Vi => local.format("%H:%M %d/%m/%Y").to_string(),
            Lang::En => local.format("%-d %b %Y, %H:%M").to_string(),
        }
    }

    /// A whole number with the language's thousands separator.
    pub fn number(&self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let separator = match self.lang {
            Lang::Vi => '.',
            Lang::En => ',',
        };
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    }

    /// How long until `at` (or since), in hours and minutes, for countdowns.
    pub fn until(&self, at: NaiveDateTime, now: NaiveDateTime) -> String {
        let minutes = (at - now).num_minutes();
        let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
        // "1 giờ 17 phút", never "1:17 giờ".
        let span = if h >= 48 {
            self.t1("span-days", "n", h / 24)
        } else if h == 0 {
            self.t1("span-minutes", "n", m)
        } else if m == 0 {
            self.t1("span-hours", "n", h)
        } else {
            format!(
                "{} {}",
                self.t1("span-hours", "n", h),
                self.t1("span-minutes", "n", m)
            )
        };
        if minutes < 0 {
            self.t1("deadline-overdue-by", "span", &span)
        } else {
            self.t1("deadline-in", "span", &span)
        }
    }
}

/// The keys of a catalogue, in order.
pub fn keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            line.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && line.contains(" =")
        })
        .filter_map(|line| line.split(" =").next().map(|k| k.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_parse_and_have_the_same_keys() {
        for text in [VI, EN] {
            FluentResource::try_new(text.to_owned()).unwrap();
        }
        let (vi, en) = (keys(VI), keys(EN));
        let missing_in_en: Vec<_> = vi.iter().filter(|k| !en.contains(k)).collect();
        let missing_in_vi: Vec<_> = en.iter().filter(|k| !vi.contains(k)).collect();
        assert!(
            missing_in_en.is_empty(),
            "missing in en.ftl: {missing_in_en:?}"
        );
        assert!(
            missing_in_vi.is_empty(),
            "missing in vi.ftl: {missing_in_vi:?}"
        );
        let mut sorted = vi.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), vi.len(), "a key is defined twice in vi.ftl");
    }

    #[test]
    fn every_key_the_pages_use_exists() {
        let vi = keys(VI);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/pages");
        let mut used = Vec::new();
        // The pages and their partials (one level of folders, e.g. `case/`).
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(path);
            }
        }
        for path in files {
            let text = std::fs::read_to_string(path).unwrap();
            for part in text
                .split("t.t(\"")
                .skip(1)
                .chain(text.split("t.t1(\"").skip(1))
            {
                if let Some(key) = part.split('"').next() {
                    used.push(key.to_owned());
                }
            }
        }
        assert!(used.len() > 20, "{used:?}");
        let missing: Vec<_> = used.iter().filter(|k| !vi.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "keys used by templates but not in the catalogues: {missing:?}"
        );
    }

    /// Every audit action has its label in both languages (the auditor's
    /// page shows no code), and `audit::action::ALL` lists every action.
    #[test]
    fn every_audit_action_has_a_label_in_both_languages() {
        let source = include_str!("../audit/mod.rs");
        let start = source.find("pub mod action {").unwrap();
        let declared = source[start..]
            .lines()
            .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": &str ="))
            .count();
        assert_eq!(
            declared,
            crate::audit::action::ALL.len(),
            "audit::action::ALL"
        );
        let taxonomy = Taxonomy::default_shipped().unwrap();
        for (lang, text) in [(Lang::Vi, VI), (Lang::En, EN)] {
            let present = keys(text);
            let t = Tr::new(lang, &taxonomy);
            for code in crate::audit::action::ALL {
                let key = format!("audit-action-{}", code.replace('.', "-"));
                assert!(present.contains(&key), "{lang:?}: no {key}");
                assert_ne!(t.audit_action(code), *code);
            }
        }
        let vi = Tr::new(Lang::Vi, &taxonomy);
        let en = Tr::new(Lang::En, &taxonomy);
        assert_eq!(vi.audit_action("user.created"), "Tạo tài khoản");
        assert_eq!(en.audit_action("user.created"), "Account created");
    }

    /// One term per referral state: the statistics name each state as the
    /// pages do, in both languages.
    #[test]
    fn the_statistics_name_each_referral_state_as_the_pages_do() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        let vi = Tr::new(Lang::Vi, &taxonomy);
        let en = Tr::new(Lang::En, &taxonomy);
        for (code, in_vi, in_en) in crate::stats::report::REFERRAL_STATUSES {
            assert_eq!(vi.t(&format!("rstatus-{code}")), *in_vi, "{code}");
            assert_eq!(en.t(&format!("rstatus-{code}")), *in_en, "{code}");
        }
        // No term stands for two states.
        let mut seen = std::collections::HashSet::new();
        for (_, in_vi, _) in crate::stats::report::REFERRAL_STATUSES {
            assert!(seen.insert(*in_vi), "{in_vi} names two states");
        }
    }

    /// Keys the pages build from codes (`status-{code}` …): every code of
    /// every family has its message.
    #[test]
    fn every_code_family_has_its_messages() {
        use crate::domain::org::AgencyType;
        let vi = keys(VI);
        let mut wanted: Vec<String> = Vec::new();
        let family = |prefix: &str, codes: &[&str]| -> Vec<String> {
            codes.iter().map(|c| format!("{prefix}-{c}")).collect()
        };
        wanted.extend(family("status", crate::cases::lifecycle::STATUSES));
        wanted.extend(family(
            "rstatus",
            &[
                "sent",
                "acknowledged",
                "accepted",
                "declined",
                "in_service",
                "completed",
                "withdrawn",
            ],
        ));
        wanted.extend(family(
            "agency",
            &AgencyType::ALL
                .iter()
                .map(|a| a.as_str())
                .chain(["any"])
                .collect::<Vec<_>>(),
        ));
        wanted.extend(family(
            "reason",
            &["assessed", "plan_made", "send", "acknowledge", "transfer"]
                .map(crate::referrals::escalation::reason_of),
        ));
        wanted.extend(family("kind", &["statutory_report", "service_referral"]));
        wanted.extend(family("need", &["required", "recommended"]));
        wanted.extend(family("sstate", &["pending", "sent", "skipped"]));
        wanted.extend(family(
            "basis",
            &["statutory_report", "consent", "override"],
        ));
        wanted.extend(family(
            "deadline",
            &["assessed", "plan_made", "send", "acknowledge", "transfer"],
        ));
        wanted.extend(family(
            "tstatus",
            &["pending", "viewed", "accepted", "refused", "cancelled"],
        ));
        wanted.extend(family(
            "chrono-transfer",
            &["requested", "viewed", "accepted", "refused", "cancelled"],
        ));
        wanted.extend(family(
            "answer",
            &[
                "acknowledged",
                "accepted",
                "declined",
                "in_service",
                "completed",
                "note",
            ],
        ));
        wanted.extend(family(
            "done",
            &[
                "case_created",
                "referral_sent",
                "suggestion_skipped",
                "case_moved",
                "answer_saved",
                "consent_recorded",
                "break_glass",
                "transfer_started",
                "transfer_cancelled",
                "transfer_accepted",
                "transfer_refused",
            ],
        ));
        for field in crate::domain::protocol::FIELDS {
            wanted.push(format!("field-{}", field.replace('.', "-")));
        }
        let missing: Vec<_> = wanted.iter().filter(|k| !vi.contains(k)).collect();
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn dates_and_numbers_follow_the_language() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        let vi = Tr::new(Lang::Vi, &taxonomy);
        let en = Tr::new(Lang::En, &taxonomy);
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(vi.datetime(at), "08:30 02/11/2026");
        assert_eq!(en.datetime(at), "2 Nov 2026, 08:30");
        assert_eq!(vi.number(1_234_567), "1.234.567");
        assert_eq!(en.number(1_234_567), "1,234,567");
        assert_eq!(en.number(-12), "-12");
        assert_eq!(vi.code("incident_type", "rape"), "Hiếp dâm");
        assert_eq!(en.code("incident_type", "rape"), "Rape");
    }
}
