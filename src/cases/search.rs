//! Finding a school's cases: the filters and the page of a case search,
//! parsed once from raw query fields (the API's query string and the case
//! list page's GET form share them) into typed values.
//!
//! Filters are codes and dates only — nothing personal ever goes into a
//! URL. A new filter is one more field on [`RawCaseSearch`], on
//! [`CaseSearch`] and in `db::cases::CaseFilter`'s query.
//!
//! Must never: accept a value it does not know (a typo is an error naming
//! the field, not an empty result), or echo a rejected value.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::FieldError;
use super::lifecycle::{CaseStatus, STATUSES};
use crate::db::cases::CaseFilter;
use crate::domain::taxonomy::Taxonomy;

/// The status filter's value for "every status but closed".
pub const OPEN: &str = "open";

/// The most cases one page may hold.
pub const MAX_PAGE_SIZE: i64 = 500;
/// The page size when none is asked for (API).
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// The furthest page: a school has at most a few thousand cases.
pub const MAX_PAGE: i64 = 10_000;

/// A case search as sent (every field a string, absent or empty = no filter).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCaseSearch {
    pub status: Option<String>,
    pub risk_level: Option<String>,
    pub incident_type: Option<String>,
    /// Recorded on or after this date (YYYY-MM-DD).
    pub from: Option<String>,
    /// Recorded on or before this date (YYYY-MM-DD).
    pub to: Option<String>,
    /// The page size.
    pub limit: Option<String>,
    /// The page, from 1.
    pub page: Option<String>,
    /// Only the cases assigned to the caller (`mine=1` or `mine=true`).
    pub mine: Option<String>,
}

/// Which cases of a status to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every status but `closed`.
    Open,
    Is(CaseStatus),
}

/// A parsed case search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseSearch {
    pub status: Option<StatusFilter>,
    pub risk_level: Option<String>,
    pub incident_type: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub limit: i64,
    pub page: i64,
    /// Only the cases assigned to the caller.
    pub mine: bool,
}

fn present(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn day(problems: &mut Vec<FieldError>, field: &str, value: Option<&String>) -> Option<NaiveDate> {
    let value = present(value)?;
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => {
            problems.push(FieldError::new(field, "must be a date written YYYY-MM-DD"));
            None
        }
    }
}

fn number(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: Option<&String>,
    range: std::ops::RangeInclusive<i64>,
) -> Option<i64> {
    let value = present(value)?;
    match value.parse::<i64>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            problems.push(FieldError::new(
                field,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            ));
            None
        }
    }
}

impl CaseSearch {
    /// Checks every field, collecting every problem; `default_limit` is the
    /// page size when none is given.
    pub fn parse(
        raw: &RawCaseSearch,
        taxonomy: &Taxonomy,
        default_limit: i64,
    ) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let status = match present(raw.status.as_ref()) {
            None => None,
            Some(OPEN) => Some(StatusFilter::Open),
            Some(code) => match CaseStatus::parse(code) {
                Some(status) => Some(StatusFilter::Is(status)),
                None => {
                    problems.push(FieldError::new(
                        "status",
                        format!("must be one of: {OPEN}, {}", STATUSES.join(", ")),
                    ));
                    None
                }
            },
        };
        let mut coded = |field: &str, category: &str, value: Option<&String>| {
            present(value).and_then(|v| match taxonomy.code(category, v) {
                Ok(code) => Some(code),
                Err(message) => {
                    problems.push(FieldError::new(field, message));
                    None
                }
            })
        };
        let risk_level = coded("risk_level", "risk_level", raw.risk_level.as_ref());
        let incident_type = coded("incident_type", "incident_type", raw.incident_type.as_ref());
        let from = day(&mut problems, "from", raw.from.as_ref());
        let to = day(&mut problems, "to", raw.to.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            problems.push(FieldError::new("from", "is after `to`"));
        }
        let limit = number(
            &mut problems,
            "limit",
            raw.limit.as_ref(),
            1..=MAX_PAGE_SIZE,
        );
        let page = number(&mut problems, "page", raw.page.as_ref(), 1..=MAX_PAGE);
        let mine = match present(raw.mine.as_ref()) {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(_) => {
                problems.push(FieldError::new("mine", "must be 1 or 0"));
                false
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            status,
            risk_level,
            incident_type,
            from,
            to,
            limit: limit.unwrap_or(default_limit),
            page: page.unwrap_or(1),
            mine,
        })
    }

    /// The rows to skip before this page.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.limit
    }

    /// The database filter (recorded times at midnight of the dates); `me`
    /// is the caller, for "assigned to me".
    pub fn filter(&self, me: &str) -> CaseFilter {
        let midnight = |d: NaiveDate| -> Option<NaiveDateTime> { d.and_hms_opt(0, 0, 0) };
        CaseFilter {
            status: match self.status {
                Some(StatusFilter::Is(status)) => Some(status.as_str().to_owned()),
                _ => None,
            },
            open_only: self.status == Some(StatusFilter::Open),
            risk_level: self.risk_level.clone(),
            incident_type: self.incident_type.clone(),
            recorded_from: self.from.and_then(midnight),
            recorded_before: self.to.and_then(|d| d.succ_opt()).and_then(midnight),
            assigned_to: self.mine.then(|| me.to_owned()),
        }
    }

    /// The search as query-string pairs (codes and dates only), without the
    /// page: for the links to other pages.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        match self.status {
            Some(StatusFilter::Open) => pairs.push(("status", OPEN.to_owned())),
            Some(StatusFilter::Is(status)) => pairs.push(("status", status.as_str().to_owned())),
            None => {}
        }
        if let Some(risk) = &self.risk_level {
            pairs.push(("risk_level", risk.clone()));
        }
        if let Some(kind) = &self.incident_type {
            pairs.push(("incident_type", kind.clone()));
        }
        if let Some(from) = self.from {
            pairs.push(("from", from.format("%Y-%m-%d").to_string()));
        }
        if let Some(to) = self.to {
            pairs.push(("to", to.format("%Y-%m-%d").to_string()));
        }
        if self.mine {
            pairs.push(("mine", "1".to_owned()));
        }
        pairs
    }

    /// The query string of page `page` of this search (with `limit` when it
    /// is not `default_limit`).
    pub fn query_for_page(&self, page: i64, default_limit: i64) -> String {
        let mut pairs = self.query_pairs();
        if self.limit != default_limit {
            pairs.push(("limit", self.limit.to_string()));
        }
        pairs.push(("page", page.to_string()));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The status filter's code, for a form's selected option.
    pub fn status_code(&self) -> &str {
        match self.status {
            Some(StatusFilter::Open) => OPEN,
            Some(StatusFilter::Is(status)) => status.as_str(),
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn taxonomy() -> Taxonomy {
        Taxonomy::load(None).unwrap()
    }

    fn raw(pairs: &[(&str, &str)]) -> RawCaseSearch {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        RawCaseSearch {
            status: get("status"),
            risk_level: get("risk_level"),
            incident_type: get("incident_type"),
            from: get("from"),
            to: get("to"),
            limit: get("limit"),
            page: get("page"),
            mine: get("mine"),
        }
    }

    #[test]
    fn an_empty_search_is_every_case_first_page() {
        let search = CaseSearch::parse(&raw(&[("status", " ")]), &taxonomy(), 25).unwrap();
        assert_eq!(search.status, None);
        assert_eq!((search.limit, search.page, search.offset()), (25, 1, 0));
    }

    #[test]
    fn every_bad_field_is_named_and_none_is_echoed() {
        let problems = CaseSearch::parse(
            &raw(&[
                ("status", "Nguyễn Văn A"),
                ("risk_level", "huge"),
                ("incident_type", "x"),
                ("from", "3/4/2026"),
                ("limit", "0"),
                ("page", "-1"),
            ]),
            &taxonomy(),
            25,
        )
        .unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "status",
                "risk_level",
                "incident_type",
                "from",
                "limit",
                "page"
            ]
        );
        assert!(problems.iter().all(|p| !p.message.contains("Nguyễn")));
    }

    #[test]
    fn from_after_to_is_refused_and_to_includes_its_day() {
        let t = taxonomy();
        assert!(
            CaseSearch::parse(
                &raw(&[("from", "2026-05-02"), ("to", "2026-05-01")]),
                &t,
                25
            )
            .is_err()
        );
        let search = CaseSearch::parse(
            &raw(&[
                ("from", "2026-05-01"),
                ("to", "2026-05-01"),
                ("status", "open"),
            ]),
            &t,
            25,
        )
        .unwrap();
        let filter = search.filter("me");
        assert!(filter.open_only);
        assert_eq!(
            filter.recorded_before.unwrap() - filter.recorded_from.unwrap(),
            chrono::Duration::days(1)
        );
        assert_eq!(
            search.query_for_page(3, 25),
            "status=open&from=2026-05-01&to=2026-05-01&page=3"
        );
    }

    /// The search as a query string parses back to itself.
    fn reparsed(search: &CaseSearch, t: &Taxonomy) -> CaseSearch {
        let query = search.query_for_page(search.page, 25);
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let raw = RawCaseSearch {
            status: get("status"),
            risk_level: get("risk_level"),
            incident_type: get("incident_type"),
            from: get("from"),
            to: get("to"),
            limit: get("limit"),
            page: get("page"),
            mine: get("mine"),
        };
        CaseSearch::parse(&raw, t, 25).unwrap()
    }

    proptest! {
        #[test]
        fn a_search_survives_its_own_links(
            status in prop::sample::select(vec!["", "open", "closed", "reported", "reopened"]),
            risk in prop::sample::select(vec!["", "low", "high"]),
            from in 0i64..400, span in 0i64..400, limit in 1i64..=500, page in 1i64..=10_000,
        ) {
            let t = taxonomy();
            let day = |n: i64| (NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(n))
                .format("%Y-%m-%d").to_string();
            let raw = RawCaseSearch {
                status: Some(status.to_owned()),
                risk_level: Some(risk.to_owned()),
                incident_type: None,
                from: Some(day(from)),
                to: Some(day(from + span)),
                limit: Some(limit.to_string()),
                page: Some(page.to_string()),
                mine: None,
            };
            let search = CaseSearch::parse(&raw, &t, 25).unwrap();
            prop_assert_eq!(&reparsed(&search, &t), &search);
            prop_assert_eq!(search.offset(), (page - 1) * limit);
        }

        #[test]
        fn no_refusal_repeats_what_was_sent(junk in "[A-Za-zÀ-ỹ]{4,20}[0-9]{2}") {
            let raw = RawCaseSearch {
                status: Some(junk.clone()),
                risk_level: Some(junk.clone()),
                incident_type: Some(junk.clone()),
                from: Some(junk.clone()),
                to: Some(junk.clone()),
                limit: Some(junk.clone()),
                page: Some(junk.clone()),
                mine: None,
            };
            let problems = CaseSearch::parse(&raw, &taxonomy(), 25).unwrap_err();
            prop_assert_eq!(problems.len(), 7);
            for problem in problems {
                prop_assert!(!problem.message.contains(&junk), "{}", problem);
            }
        }
    }
}
