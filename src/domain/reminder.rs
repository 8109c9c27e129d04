//! Reminders before a clock falls due (`[reminders]` of
//! `policies/referral-protocol.toml`): the points, counted back from a
//! deadline, at which the people responsible for a running clock are told
//! that it is near. Clocks counted in hours and clocks counted in working
//! days have their own points (half-way and 2 h before a 12 h clock; one
//! working day before a 5-working-day clock).
//!
//! Pure: no database, no clock. A point that falls at or before the start
//! of its clock (a short clock) does not exist for that clock.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::calendar::Calendar;

/// One point before a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(untagged)]
pub enum ReminderPoint {
    /// When this share of the clock (1–99 %) has run.
    ElapsedPercent { elapsed_percent: u32 },
    /// This many hours before the deadline.
    HoursBefore { hours_before: u32 },
    /// This many working days before the deadline (same local time of day).
    WorkingDaysBefore { working_days_before: u32 },
}

impl ReminderPoint {
    /// A stable code, part of the once-only key of a sent reminder.
    pub fn code(self) -> String {
        match self {
            Self::ElapsedPercent { elapsed_percent } => format!("elapsed_{elapsed_percent}"),
            Self::HoursBefore { hours_before } => format!("hours_{hours_before}"),
            Self::WorkingDaysBefore {
                working_days_before,
            } => format!("working_days_{working_days_before}"),
        }
    }

    fn in_range(self) -> bool {
        match self {
            Self::ElapsedPercent { elapsed_percent } => (1..=99).contains(&elapsed_percent),
            Self::HoursBefore { hours_before } => (1..=24 * 31).contains(&hours_before),
            Self::WorkingDaysBefore {
                working_days_before,
            } => (1..=30).contains(&working_days_before),
        }
    }

    /// The instant of this point for a clock running from `started` to `due`.
    pub fn at(
        self,
        started: DateTime<Utc>,
        due: DateTime<Utc>,
        calendar: &Calendar,
    ) -> DateTime<Utc> {
        match self {
            Self::ElapsedPercent { elapsed_percent } => {
                let length = (due - started).num_seconds().max(0);
                started + Duration::seconds(length * i64::from(elapsed_percent) / 100)
            }
            Self::HoursBefore { hours_before } => due - Duration::hours(i64::from(hours_before)),
            Self::WorkingDaysBefore {
                working_days_before,
            } => {
                let offset = calendar.utc_offset();
                let local = due + offset;
                let day = sub_working_days(calendar, local.date_naive(), working_days_before);
                let back = local.date_naive() - day;
                due - back
            }
        }
    }
}

impl fmt::Display for ReminderPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

/// The date `n` working days before `from` (the day of `from` itself does
/// not count).
fn sub_working_days(calendar: &Calendar, from: NaiveDate, n: u32) -> NaiveDate {
    let mut date = from;
    let mut left = n;
    // A bound, so a calendar without working days cannot loop for ever.
    let mut steps = 0;
    while left > 0 && steps < 366 {
        date = date.pred_opt().unwrap_or(date);
        steps += 1;
        if calendar.is_working_day(date) {
            left -= 1;
        }
    }
    date
}

/// How a clock is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockUnit {
    Hours,
    WorkingDays,
}

/// The `[reminders]` section of the protocol.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminders {
    /// Points for clocks counted in hours.
    #[serde(default)]
    pub hours: Vec<ReminderPoint>,
    /// Points for clocks counted in working days.
    #[serde(default)]
    pub working_days: Vec<ReminderPoint>,
    #[serde(default)]
    pub source: String,
}

/// One point of one clock, with its instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub point: String,
    pub at: DateTime<Utc>,
}

impl Reminders {
    /// Every problem of the section, each naming its list and point.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (list, points) in [("hours", &self.hours), ("working_days", &self.working_days)] {
            let mut seen = BTreeSet::new();
            for point in points {
                if !point.in_range() {
                    problems.push(format!(
                        "reminders.{list}: `{point}` is out of range (elapsed_percent 1-99, hours_before 1-744, working_days_before 1-30)"
                    ));
                }
                if !seen.insert(point.code()) {
                    problems.push(format!("reminders.{list}: `{point}` is given twice"));
                }
            }
        }
        if !(self.hours.is_empty() && self.working_days.is_empty()) && self.source.trim().is_empty()
        {
            problems.push("reminders: `source` must not be empty".into());
        }
        problems
    }

    /// The points of a clock counted in `unit`, running from `started` to
    /// `due`, earliest first. Points at or before the start, or at or after
    /// the deadline, are left out.
    pub fn schedule(
        &self,
        unit: ClockUnit,
        started: DateTime<Utc>,
        due: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Vec<Due> {
        let points = match unit {
            ClockUnit::Hours => &self.hours,
            ClockUnit::WorkingDays => &self.working_days,
        };
        let mut schedule: Vec<Due> = points
            .iter()
            .map(|p| Due {
                point: p.code(),
                at: p.at(started, due, calendar),
            })
            .filter(|d| d.at > started && d.at < due)
            .collect();
        schedule.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.point.cmp(&b.point)));
        schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn calendar() -> Calendar {
        Calendar::default_shipped().unwrap()
    }

    fn shipped() -> Reminders {
        Reminders {
            hours: vec![
                ReminderPoint::ElapsedPercent {
                    elapsed_percent: 50,
                },
                ReminderPoint::HoursBefore { hours_before: 2 },
            ],
            working_days: vec![ReminderPoint::WorkingDaysBefore {
                working_days_before: 1,
            }],
            source: "x".into(),
        }
    }

    #[test]
    fn a_twelve_hour_clock_is_reminded_half_way_and_two_hours_before() {
        let start = Utc.with_ymd_and_hms(2026, 11, 2, 1, 0, 0).unwrap();
        let due = start + Duration::hours(12);
        let schedule = shipped().schedule(ClockUnit::Hours, start, due, &calendar());
        assert_eq!(
            schedule,
            [
                Due {
                    point: "elapsed_50".into(),
                    at: start + Duration::hours(6)
                },
                Due {
                    point: "hours_2".into(),
                    at: start + Duration::hours(10)
                },
            ]
        );
    }

    #[test]
    fn a_point_before_the_start_of_a_short_clock_is_skipped() {
        let start = Utc.with_ymd_and_hms(2026, 11, 2, 1, 0, 0).unwrap();
        let due = start + Duration::hours(2);
        let schedule = shipped().schedule(ClockUnit::Hours, start, due, &calendar());
        assert_eq!(
            schedule,
            [Due {
                point: "elapsed_50".into(),
                at: start + Duration::hours(1)
            }]
        );
    }

    #[test]
    fn one_working_day_before_skips_the_weekend() {
        let calendar = calendar();
        // Thursday 5 November 2026, 10:00 in Vietnam; five working days end
        // on Thursday 12 November at the end of the day.
        let start = Utc.with_ymd_and_hms(2026, 11, 5, 3, 0, 0).unwrap();
        let due = calendar.working_days_deadline(start, 5);
        let schedule = shipped().schedule(ClockUnit::WorkingDays, start, due, &calendar);
        assert_eq!(schedule.len(), 1);
        assert_eq!(schedule[0].at, due - Duration::days(1));
        // Due on a Monday: the working day before is the Friday.
        let start = Utc.with_ymd_and_hms(2026, 11, 6, 3, 0, 0).unwrap();
        let due = calendar.working_days_deadline(start, 1);
        let schedule = shipped().schedule(ClockUnit::WorkingDays, start, due, &calendar);
        // Started on Friday at 10:00, due at the end of Monday: reminded at
        // the end of Friday, which is after the start.
        assert_eq!(schedule[0].at, due - Duration::days(3));
        assert!(schedule[0].at > start);
    }

    #[test]
    fn problems_name_the_point() {
        let mut bad = shipped();
        bad.hours.push(ReminderPoint::ElapsedPercent {
            elapsed_percent: 100,
        });
        bad.hours
            .push(ReminderPoint::HoursBefore { hours_before: 2 });
        bad.source = String::new();
        let problems = bad.problems().join("; ");
        assert!(
            problems.contains("`elapsed_100` is out of range"),
            "{problems}"
        );
        assert!(problems.contains("`hours_2` is given twice"), "{problems}");
        assert!(
            problems.contains("`source` must not be empty"),
            "{problems}"
        );
        assert!(shipped().problems().is_empty());
    }
}
