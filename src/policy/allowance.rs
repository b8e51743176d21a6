//! Allowances (`allowance = { day = "2h", week = "10h" }`): so much session time a day and/or
//! a week per user, as timekpr-nExT and lab or kiosk machines give — counted across all of
//! the user's sessions that the rule takes, with one session or several at once counting
//! the same (the user's time, not the sessions'), reset at a local time of day (`reset`,
//! 00:00 by default; the week on `week_starts`, Monday by default).
//!
//! Pure: which period a moment is in, and what is left of what was used. logoffd counts the
//! time ([`crate::daemon`]'s state), on a clock that a step of the wall clock does not move.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};

use super::hours::Zone;

/// Which of a user's sessions use their allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Any session the rule takes, busy or idle (timekpr's "time spent").
    Any,
    /// Only while a session of theirs has had input within the last minute (as `--state
    /// idle` tells idle from not).
    Active,
}

impl Counting {
    pub fn as_str(self) -> &'static str {
        match self {
            Counting::Any => "any",
            Counting::Active => "active",
        }
    }
}

/// A rule's allowance.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowance {
    pub day: Option<Duration>,
    pub week: Option<Duration>,
    pub counting: Counting,
    /// When the day (and the week) begin: minutes after local midnight.
    pub reset: u16,
    pub week_starts: Weekday,
    pub zone: Zone,
}

/// The periods a moment is in: the day's and the week's, each named by the local date it
/// began on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Periods {
    pub day: Date,
    pub week: Date,
}

/// What a user has used of an allowance in the periods they are in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    pub day: Duration,
    pub week: Duration,
}

impl Allowance {
    /// The periods `at` is in (DST: a reset at a local time a change skips is as much later
    /// as the gap; at one it repeats, the first).
    pub fn periods(&self, at: Timestamp) -> Periods {
        let mut day = self.zone.date(at);
        if self.zone.moment(day, self.reset).is_some_and(|r| at < r) {
            day = day.yesterday().unwrap_or(day);
        }
        let back = self.week_starts.until(day.weekday());
        let week = (0..back).fold(day, |d, _| d.yesterday().unwrap_or(d));
        Periods { day, week }
    }

    /// When the day period `periods` names began.
    pub fn day_began(&self, periods: Periods) -> Option<Timestamp> {
        self.zone.moment(periods.day, self.reset)
    }

    /// What is left of the allowance after `used`: the least of the day's and the week's.
    pub fn left(&self, used: Used) -> Duration {
        let day = self.day.map(|d| d.saturating_sub(used.day));
        let week = self.week.map(|w| w.saturating_sub(used.week));
        match (day, week) {
            (Some(d), Some(w)) => d.min(w),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => Duration::MAX,
        }
    }

    /// `2h a day, 10h a week`.
    pub fn describe(&self) -> String {
        let d = crate::duration::display;
        match (self.day, self.week) {
            (Some(a), Some(b)) => format!("{} a day, {} a week", d(a), d(b)),
            (Some(a), None) => format!("{} a day", d(a)),
            (None, Some(b)) => format!("{} a week", d(b)),
            (None, None) => "none".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(reset: u16) -> Allowance {
        Allowance {
            day: Some(Duration::from_secs(7200)),
            week: Some(Duration::from_secs(36_000)),
            counting: Counting::Any,
            reset,
            week_starts: Weekday::Monday,
            zone: Zone::named("Europe/Berlin").expect("tzdb"),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    /// The day runs from reset to reset in local time; the week from its first day's reset.
    #[test]
    fn periods_run_from_reset_to_reset_in_local_time() {
        let a = allowance(4 * 60);
        // Tuesday 2026-12-08 03:59 Berlin (02:59Z) is still Monday's day.
        let p = a.periods(at("2026-12-08T02:59:00Z"));
        assert_eq!(p.day, jiff::civil::date(2026, 12, 7));
        assert_eq!(p.week, jiff::civil::date(2026, 12, 7));
        let p = a.periods(at("2026-12-08T03:00:00Z"));
        assert_eq!(p.day, jiff::civil::date(2026, 12, 8));
        // Monday 03:00 Berlin belongs to the week before.
        let p = a.periods(at("2026-12-14T02:00:00Z"));
        assert_eq!(p.day, jiff::civil::date(2026, 12, 13));
        assert_eq!(p.week, jiff::civil::date(2026, 12, 7));
        assert_eq!(
            a.day_began(a.periods(at("2026-12-08T12:00:00Z"))),
            Some(at("2026-12-08T03:00:00Z"))
        );
    }

    /// A reset at 02:30 on the day clocks skip 02:00-03:00 (2026-03-29) happens at 03:30
    /// local (as much later as the gap); on the day 02:30 happens twice (2026-10-25), at the
    /// first.
    #[test]
    fn a_reset_in_a_dst_change_happens_once() {
        let a = allowance(150);
        assert_eq!(
            a.day_began(Periods {
                day: jiff::civil::date(2026, 3, 29),
                week: jiff::civil::date(2026, 3, 23)
            }),
            Some(at("2026-03-29T01:30:00Z"))
        );
        assert_eq!(
            a.day_began(Periods {
                day: jiff::civil::date(2026, 10, 25),
                week: jiff::civil::date(2026, 10, 19)
            }),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            a.periods(at("2026-10-25T00:45:00Z")).day,
            jiff::civil::date(2026, 10, 25)
        );
    }

    #[test]
    fn what_is_left_is_the_least_of_the_day_and_the_week() {
        let a = allowance(0);
        let used = |d: u64, w: u64| Used {
            day: Duration::from_secs(d),
            week: Duration::from_secs(w),
        };
        assert_eq!(a.left(used(3600, 3600)), Duration::from_secs(3600));
        assert_eq!(a.left(used(0, 35_000)), Duration::from_secs(1000));
        assert_eq!(a.left(used(9000, 9000)), Duration::ZERO);
        assert_eq!(a.describe(), "2h a day, 10h a week");
    }
}
