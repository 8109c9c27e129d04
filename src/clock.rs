//! The only place that reads the wall clock (STYLE §6).
//!
//! Everything that needs the current time — timestamps, deadlines, expiry,
//! lockout, retention — receives a [`Clock`] and asks it. Production code uses
//! [`SystemClock`]; tests use [`FixedClock`] and move time by hand, so every
//! time-dependent rule can be tested to the second. `clippy.toml` forbids
//! `Utc::now` and `SystemTime::now` everywhere else.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// The current time as stored in the database: UTC, microsecond precision,
    /// no offset (both backends store `TIMESTAMP` without time zone).
    fn now_naive(&self) -> NaiveDateTime {
        let now = self.now().naive_utc();
        // Truncate to microseconds so a value read back equals the value written.
        let micros = now.and_utc().timestamp_micros();
        DateTime::from_timestamp_micros(micros).map_or(now, |t| t.naive_utc())
    }
}

/// Shared handle to a clock, as held by the application state.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one sanctioned wall-clock read"
    )]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. For tests and reproducible tools.
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start = Utc.with_ymd_and_hms(2026, 5, 10, 8, 0, 0).unwrap();
        let clock = FixedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::hours(12));
        assert_eq!(clock.now(), start + Duration::hours(12));
        let shared: SharedClock = Arc::new(clock.clone());
        clock.advance(Duration::seconds(1));
        assert_eq!(
            shared.now(),
            start + Duration::hours(12) + Duration::seconds(1)
        );
    }

    #[test]
    fn naive_now_is_truncated_to_microseconds() {
        let t = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let clock = FixedClock::new(t);
        assert_eq!(
            clock.now_naive().and_utc().timestamp_subsec_nanos(),
            123_456_000
        );
    }
}
