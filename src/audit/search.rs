//! Searching the audit log: the filters an auditor can set (on the audit
//! page and in `GET /api/v1/audit`), parsed and checked once for both.

use chrono::{NaiveDate, NaiveDateTime};

/// A checked search: every field is safe to put in a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries before this sequence number (paging backwards).
    pub before: Option<i64>,
    /// An action code or its prefix (`case`, `case.read`).
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// The target's id (a case, a referral, an account…).
    pub target_id: Option<String>,
    /// Entries at or after the start of this day (UTC).
    pub from: Option<NaiveDateTime>,
    /// Entries before the end of this day (UTC).
    pub until: Option<NaiveDateTime>,
}

/// The filters as typed; empty strings mean "not set".
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawFilter {
    pub before: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub target: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
}

/// One refused field: its name and the problem's code (`audit-bad-…`
/// in the message catalogues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterProblem {
    pub field: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

pub const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

fn set(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn date(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2200).contains(&chrono::Datelike::year(d)))
}

impl RawFilter {
    /// Checks every field; all problems are reported at once.
    pub fn parse(&self) -> Result<AuditFilter, Vec<FilterProblem>> {
        let mut problems = Vec::new();
        let mut filter = AuditFilter::default();
        if let Some(before) = set(self.before.as_ref()) {
            match before.parse::<i64>() {
                Ok(n) if n > 0 => filter.before = Some(n),
                _ => problems.push(FilterProblem {
                    field: "before",
                    code: "audit-bad-before",
                    message: "`before` must be a positive entry number.",
                }),
            }
        }
        if let Some(action) = set(self.action.as_ref()) {
            let valid = action.len() <= 64
                && action.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
                })
                && !action.starts_with('.');
            if valid {
                filter.action = Some(action.trim_end_matches('.').to_owned());
            } else {
                problems.push(FilterProblem {
                    field: "action",
                    code: "audit-bad-action",
                    message: "`action` must be an action code or its beginning, like `case.read` or `case` (lower-case letters, digits, `.` and `_`, at most 64).",
                });
            }
        }
        if let Some(outcome) = set(self.outcome.as_ref()) {
            if OUTCOMES.contains(&outcome) {
                filter.outcome = Some(outcome.to_owned());
            } else {
                problems.push(FilterProblem {
                    field: "outcome",
                    code: "audit-bad-outcome",
                    message: "`outcome` must be one of success, failure, denied.",
                });
            }
        }
        if let Some(target) = set(self.target.as_ref()) {
            match uuid::Uuid::parse_str(target) {
                Ok(id) => filter.target_id = Some(id.hyphenated().to_string()),
                Err(_) => problems.push(FilterProblem {
                    field: "target",
                    code: "audit-bad-target",
                    message: "`target` must be the id (a UUID) of a case, referral or account.",
                }),
            }
        }
        let from = set(self.from.as_ref()).map(|v| (v, date(v)));
        let until = set(self.until.as_ref()).map(|v| (v, date(v)));
        match from {
            Some((_, Some(day))) => filter.from = day.and_hms_opt(0, 0, 0),
            Some((_, None)) => problems.push(FilterProblem {
                field: "from",
                code: "audit-bad-date",
                message: "`from` must be a date written YYYY-MM-DD.",
            }),
            None => {}
        }
        match until {
            Some((_, Some(day))) => {
                filter.until = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
            }
            Some((_, None)) => problems.push(FilterProblem {
                field: "until",
                code: "audit-bad-date",
                message: "`until` must be a date written YYYY-MM-DD.",
            }),
            None => {}
        }
        if let (Some(from), Some(until)) = (filter.from, filter.until)
            && from >= until
        {
            problems.push(FilterProblem {
                field: "until",
                code: "audit-bad-range",
                message: "`until` must not be before `from`.",
            });
        }
        if problems.is_empty() {
            Ok(filter)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawFilter {
        let mut raw = RawFilter::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "before" => raw.before = v,
                "action" => raw.action = v,
                "outcome" => raw.outcome = v,
                "target" => raw.target = v,
                "from" => raw.from = v,
                "until" => raw.until = v,
                _ => unreachable!(),
            }
        }
        raw
    }

    #[test]
    fn empty_fields_are_no_filter() {
        let parsed = raw(&[("action", " "), ("from", ""), ("outcome", "")])
            .parse()
            .unwrap();
        assert_eq!(parsed, AuditFilter::default());
    }

    #[test]
    fn good_filters_are_kept() {
        let parsed = raw(&[
            ("action", "case."),
            ("outcome", "denied"),
            ("target", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
            ("from", "2026-11-01"),
            ("until", "2026-11-01"),
            ("before", "42"),
        ])
        .parse()
        .unwrap();
        assert_eq!(parsed.action.as_deref(), Some("case"));
        assert_eq!(
            parsed.target_id.as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
        assert_eq!(parsed.from.unwrap().to_string(), "2026-11-01 00:00:00");
        assert_eq!(parsed.until.unwrap().to_string(), "2026-11-02 00:00:00");
        assert_eq!(parsed.before, Some(42));
    }

    #[test]
    fn every_bad_field_is_named() {
        let problems = raw(&[
            ("action", "case%' OR 1=1 --"),
            ("outcome", "maybe"),
            ("target", "../etc/passwd"),
            ("from", "2026-13-01"),
            ("until", "yesterday"),
            ("before", "-1"),
        ])
        .parse()
        .unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            ["before", "action", "outcome", "target", "from", "until"]
        );
        let reversed = raw(&[("from", "2026-11-05"), ("until", "2026-11-01")])
            .parse()
            .unwrap_err();
        assert_eq!(reversed[0].code, "audit-bad-range");
    }
}
