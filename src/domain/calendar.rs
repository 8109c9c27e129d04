//! The working-day calendar (`policies/calendar-vn.toml`): weekends and
//! public holidays as data, for legal clocks counted in working days
//! ("a support plan within 5 working days", Decree 56 art. 28). Clocks in
//! hours do not use it.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use serde::Deserialize;

pub const DEFAULT_CALENDAR: &str = include_str!("../../policies/calendar-vn.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    utc_offset_hours: i32,
    weekend: Vec<String>,
    #[serde(default)]
    holiday: Vec<Day>,
    #[serde(default)]
    working_day: Vec<Day>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Day {
    date: NaiveDate,
    en: String,
    vi: String,
    #[serde(default)]
    status: Option<String>,
}

/// A loaded, valid calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    offset: Duration,
    weekend: HashSet<Weekday>,
    holidays: BTreeSet<NaiveDate>,
    working: BTreeSet<NaiveDate>,
    first: NaiveDate,
    last: NaiveDate,
}

fn weekday(name: &str) -> Result<Weekday, String> {
    name.parse::<Weekday>().map_err(|_| {
        format!(
            "calendar: `{}` is not a day of the week",
            name.escape_debug()
        )
    })
}

impl Calendar {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: CalendarFile =
            toml::from_str(text).map_err(|e| format!("calendar: {}", e.message().trim()))?;
        if !(-12..=14).contains(&file.utc_offset_hours) {
            return Err("calendar: utc_offset_hours must be between -12 and 14".into());
        }
        let weekend = file
            .weekend
            .iter()
            .map(|d| weekday(d))
            .collect::<Result<HashSet<_>, _>>()?;
        if weekend.len() >= 7 {
            return Err("calendar: a week needs at least one working day".into());
        }
        let mut holidays = BTreeSet::new();
        for day in &file.holiday {
            if day.en.trim().is_empty() || day.vi.trim().is_empty() {
                return Err(format!(
                    "calendar: holiday {} needs en and vi names",
                    day.date
                ));
            }
            if !matches!(day.status.as_deref(), Some("official" | "provisional")) {
                return Err(format!(
                    "calendar: holiday {} needs status \"official\" or \"provisional\"",
                    day.date
                ));
            }
            if !holidays.insert(day.date) {
                return Err(format!("calendar: holiday {} is listed twice", day.date));
            }
        }
        let mut working = BTreeSet::new();
        for day in &file.working_day {
            if holidays.contains(&day.date) {
                return Err(format!(
                    "calendar: {} is both a holiday and a working day",
                    day.date
                ));
            }
            if day.en.trim().is_empty() || day.vi.trim().is_empty() {
                return Err(format!(
                    "calendar: working day {} needs en and vi names",
                    day.date
                ));
            }
            working.insert(day.date);
        }
        let first = holidays
            .iter()
            .next()
            .copied()
            .ok_or("calendar: no holidays listed")?;
        let last = holidays.iter().next_back().copied().unwrap_or(first);
        Ok(Self {
            offset: Duration::hours(i64::from(file.utc_offset_hours)),
            weekend,
            holidays,
            working,
            first,
            last,
        })
    }

    pub fn default_shipped() -> Result<Self, String> {
        Self::parse(DEFAULT_CALENDAR)
    }

    /// Loads `calendar-vn.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Self::default_shipped(),
            Some(dir) => {
                let path = dir.join("calendar-vn.toml");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Self::parse(&text)
            }
        }
    }

    /// The years the calendar knows holidays for (outside them only weekends
    /// count, and a deadline engine should warn).
    pub fn covers(&self, date: NaiveDate) -> bool {
        date.year() >= self.first.year() && date.year() <= self.last.year()
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.working.contains(&date) {
            return true;
        }
        !self.weekend.contains(&date.weekday()) && !self.holidays.contains(&date)
    }

    /// The local time's offset from UTC.
    pub fn utc_offset(&self) -> Duration {
        self.offset
    }

    /// The local date of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        (at + self.offset).date_naive()
    }

    /// The date `n` working days after the local date of `from` (the day of
    /// `from` itself does not count).
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut date = from;
        let mut left = n;
        while left > 0 {
            date = date.succ_opt().unwrap_or(date);
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    /// A deadline `n` working days after `from`: the end of that local day,
    /// in UTC.
    pub fn working_days_deadline(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let day = self.add_working_days(self.local_date(from), n);
        let end = day.and_time(NaiveTime::MIN) + Duration::days(1) - Duration::seconds(1);
        end.and_utc() - self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn around_tet_and_the_april_break_by_hand() {
        let calendar = Calendar::default_shipped().unwrap();
        // (from, working days, expected) — checked against the published
        // holiday schedules.
        for (from, n, expected) in [
            ("2024-02-07", 1, "2024-02-15"), // Tết 2024: 8–14 Feb off
            ("2024-02-07", 5, "2024-02-21"),
            ("2025-01-24", 1, "2025-02-03"), // Tết 2025: 25 Jan – 2 Feb off
            ("2025-01-24", 5, "2025-02-07"),
            ("2026-02-13", 1, "2026-02-23"), // Tết 2026: 14–22 Feb off
            ("2026-02-13", 5, "2026-02-27"),
            ("2024-04-26", 2, "2024-05-03"), // 27 Apr – 1 May off
            ("2024-05-03", 1, "2024-05-04"), // Saturday 4 May worked
            ("2025-04-29", 1, "2025-05-05"), // 30 Apr – 4 May off
            ("2025-04-25", 1, "2025-04-26"), // Saturday 26 April worked
            ("2025-08-29", 1, "2025-09-03"), // 30 Aug – 2 Sep off
            ("2024-11-29", 5, "2024-12-06"), // an ordinary week
        ] {
            assert_eq!(
                calendar.add_working_days(date(from), n),
                date(expected),
                "{from} + {n}"
            );
        }
    }

    #[test]
    fn deadlines_end_at_local_midnight() {
        let calendar = Calendar::default_shipped().unwrap();
        // 20:00 UTC on Friday 24 Jan 2025 is already Saturday 25 Jan in Vietnam.
        let from = DateTime::parse_from_rfc3339("2025-01-24T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let deadline = calendar.working_days_deadline(from, 1);
        assert_eq!(deadline.to_rfc3339(), "2025-02-03T16:59:59+00:00");
    }

    #[test]
    fn broken_calendars_are_refused() {
        assert!(
            Calendar::parse("utc_offset_hours = 7\nweekend = [\"sunday\", \"funday\"]")
                .unwrap_err()
                .contains("funday")
        );
        let twice = "utc_offset_hours = 7\nweekend = []\n[[holiday]]\ndate = \"2026-01-01\"\nen = \"a\"\nvi = \"b\"\nstatus = \"official\"\n[[holiday]]\ndate = \"2026-01-01\"\nen = \"a\"\nvi = \"b\"\nstatus = \"official\"\n";
        assert!(Calendar::parse(twice).unwrap_err().contains("listed twice"));
        let unsure = "utc_offset_hours = 7\nweekend = []\n[[holiday]]\ndate = \"2026-01-01\"\nen = \"a\"\nvi = \"b\"\nstatus = \"maybe\"\n";
        assert!(Calendar::parse(unsure).unwrap_err().contains("status"));
    }

    proptest! {
        #[test]
        fn working_days_never_land_on_a_day_off(days in 0i64..1460, n in 1u32..40) {
            let calendar = Calendar::default_shipped().unwrap();
            let from = date("2024-01-01") + Duration::days(days);
            let due = calendar.add_working_days(from, n);
            prop_assert!(calendar.is_working_day(due), "{from} + {n} = {due}");
            prop_assert!(due > from);
            prop_assert!(calendar.add_working_days(from, n + 1) > due);
            let counted = (1..=(due - from).num_days())
                .filter(|d| calendar.is_working_day(from + Duration::days(*d)))
                .count();
            prop_assert_eq!(counted, n as usize);
        }
    }
}
