//! logoffd's clock: one that a step of the wall clock does not move. A `date -s` or an NTP
//! step must neither log anybody off (an idle time grown by the step) nor give anybody time
//! (a limit's clock set back by it).
//!
//! logoffd keeps its own timeline, *steady* time: the kernel's `CLOCK_REALTIME` when it
//! started, advanced by `CLOCK_BOOTTIME` (which no step moves, and which counts a suspended
//! host's time as the wall clock does). Between two passes the wall clock should have moved
//! as much; where it moved more than [`TOLERANCE`] otherwise, it stepped, and from then on
//! its difference from steady time (the *offset*) is the new one. Every duration logoffd
//! measures — idle, disconnected, max-age, allowances — is in steady time:
//!
//! - **Facts** the kernel stamped with the wall clock (terminals' access times, process
//!   start times) are put into steady time with the offset in force when they were stamped
//!   ([`Steady::fact`]). Where a backward step makes that ambiguous (the same wall time came
//!   twice), the later reading is taken: a user is given the benefit of the doubt, never
//!   the step.
//! - What logoffd remembers is in steady time, and in wall time on disk (so that a logoffd
//!   started again, whose steady time begins at the wall clock, reads it right).
//! - **Time of day** (logon hours) is the wall clock's: steady time plus the offset. A step
//!   is taken to set the wall clock right, and hours follow it.
//! - What users are shown (a warning's "at 18:00:00", `logoff --list`'s LOGOFF AT) is wall
//!   time.
//!
//! The wall clock here is the kernel's ([`crate::time::now`]), not the C library's: the
//! clock the facts are stamped with.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub use crate::time::Now;

/// A difference between the wall clock's advance and the boot clock's that is a step, not
/// the drift of two readings.
pub const TOLERANCE: Duration = Duration::from_secs(1);

/// The most steps remembered (the oldest are merged into the first).
const MAX_REGIMES: usize = 32;

/// A stretch of time with one offset: from a step (which happened between `earliest` and
/// `latest`, in steady time) to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Regime {
    earliest: Timestamp,
    latest: Timestamp,
    offset: SignedDuration,
}

/// logoffd's clock (see the module's doc).
#[derive(Debug, Clone)]
pub struct Steady {
    /// Steady time at `boot`.
    anchor: Timestamp,
    boot: Duration,
    /// The first has no beginning; each later one began with a step.
    regimes: Vec<Regime>,
    last: Option<Timestamp>,
}

/// One reading of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub now: Now,
    /// The wall clock stepped (by this much) since the last reading.
    pub stepped: Option<SignedDuration>,
}

impl Steady {
    /// Starts steady time at the wall clock's.
    pub fn start() -> Steady {
        Steady::at(crate::time::now(), crate::time::since_boot())
    }

    /// Starts steady time at `wall`, the boot clock saying `boot`.
    pub fn at(wall: Timestamp, boot: Duration) -> Steady {
        Steady {
            anchor: wall,
            boot,
            regimes: vec![Regime {
                earliest: Timestamp::MIN,
                latest: Timestamp::MIN,
                offset: SignedDuration::ZERO,
            }],
            last: None,
        }
    }

    /// Steady time when the boot clock says `boot`.
    fn steady(&self, boot: Duration) -> Timestamp {
        crate::time::add(self.anchor, boot.saturating_sub(self.boot))
    }

    /// Steady time now, without looking for a step.
    pub fn peek(&self) -> Timestamp {
        self.steady(crate::time::since_boot())
    }

    /// Reads the clocks (see [`Steady::read_at`]).
    pub fn read(&mut self) -> Reading {
        self.read_at(crate::time::now(), crate::time::since_boot())
    }

    /// The moment the wall clock says `wall` and the boot clock `boot`: a step is taken in
    /// where the two disagree by more than [`TOLERANCE`] with what they said last; less is
    /// drift, and the offset follows it.
    pub fn read_at(&mut self, wall: Timestamp, boot: Duration) -> Reading {
        let now = self.steady(boot);
        let offset = wall.duration_since(now);
        let tolerance = SignedDuration::try_from(TOLERANCE).unwrap_or(SignedDuration::ZERO);
        let mut stepped = None;
        if let Some(current) = self.regimes.last_mut() {
            let by = offset - current.offset;
            if by.abs() > tolerance {
                stepped = Some(by);
                self.regimes.push(Regime {
                    earliest: self.last.unwrap_or(now),
                    latest: now,
                    offset,
                });
                if self.regimes.len() > MAX_REGIMES {
                    self.regimes.remove(1);
                }
            } else {
                current.offset = offset;
            }
        }
        self.last = Some(now);
        Reading {
            now: Now { at: now, offset },
            stepped,
        }
    }

    /// A time the kernel stamped with the wall clock, in steady time: with the offset in
    /// force when it was stamped; where several could have been (a backward step), the one
    /// giving the latest time.
    pub fn fact(&self, wall: Timestamp) -> Timestamp {
        let slack = SignedDuration::try_from(TOLERANCE).unwrap_or(SignedDuration::ZERO);
        let mut best: Option<Timestamp> = None;
        for (i, r) in self.regimes.iter().enumerate() {
            let Ok(s) = wall.checked_sub(r.offset) else {
                continue;
            };
            let begins = r.earliest.checked_sub(slack).unwrap_or(Timestamp::MIN);
            let ends = self.regimes.get(i + 1).map_or(Timestamp::MAX, |next| {
                next.latest.checked_add(slack).unwrap_or(Timestamp::MAX)
            });
            if (i == 0 || s >= begins) && s <= ends {
                best = Some(best.map_or(s, |b| b.max(s)));
            }
        }
        // Stamped at no moment any regime covers: the current one's reading.
        best.unwrap_or_else(|| {
            self.regimes
                .last()
                .and_then(|r| wall.checked_sub(r.offset).ok())
                .unwrap_or(wall)
        })
    }

    /// Puts every wall-stamped fact of `sessions` into steady time.
    pub fn steady_facts(&self, sessions: &mut [crate::model::Session]) {
        if self.regimes.len() == 1 && self.regimes[0].offset.is_zero() {
            return;
        }
        for s in sessions {
            s.map_times(|t| self.fact(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("t")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Without a step, steady time is the wall clock's, and so is every fact.
    #[test]
    fn without_a_step_steady_time_is_wall_time() {
        let mut c = Steady::at(t(0), secs(100));
        let r = c.read_at(t(60), secs(160));
        assert_eq!((r.now.at, r.stepped), (t(60), None));
        assert_eq!(c.fact(t(30)), t(30));
        // Drift under the tolerance follows the wall clock.
        let r = c.read_at(t(120) + SignedDuration::from_millis(300), secs(220));
        assert_eq!(r.stepped, None);
        assert_eq!(r.now.wall(), t(120) + SignedDuration::from_millis(300));
    }

    /// Issue 26: a wall-clock step forward (`date -s`, NTP) does not make anybody idle: a
    /// terminal last typed into before the step is as idle after it as the boot clock says;
    /// one typed into after the step, with the new wall time, is idle as long as it is.
    #[test]
    fn a_forward_step_grows_no_idle_time() {
        let mut c = Steady::at(t(0), secs(0));
        c.read_at(t(60), secs(60));
        let r = c.read_at(t(120 + 3 * 3600), secs(120));
        assert_eq!(r.stepped, Some(SignedDuration::from_hours(3)));
        assert_eq!(r.now.at, t(120), "steady time did not jump");
        assert_eq!(
            r.now.wall(),
            t(120 + 3 * 3600),
            "time of day follows the wall"
        );
        // Typed at t(50) before the step: idle 70 s, not 3 h 70 s.
        assert_eq!(c.fact(t(50)), t(50));
        // Typed 10 s ago, after the step (stamped with the new wall time).
        assert_eq!(c.fact(t(110 + 3 * 3600)), t(110));
        assert_eq!(r.now.steady_of(t(3 * 3600 + 200)), t(200));
    }

    /// A step backward gives nobody time it can tell apart, and where it cannot (the same
    /// wall time came twice), takes the later reading: idle times are never grown by it.
    #[test]
    fn a_backward_step_takes_the_later_reading_where_it_cannot_tell() {
        let mut c = Steady::at(t(0), secs(0));
        c.read_at(t(3600), secs(3600));
        let r = c.read_at(t(3660 - 1800), secs(3660));
        assert_eq!(r.stepped, Some(SignedDuration::from_mins(-30)));
        assert_eq!(r.now.at, t(3660));
        // Stamped long before the step: as it was.
        assert_eq!(c.fact(t(100)), t(100));
        // Stamped at wall 1850 (10 s ago): could be 1850 (before) or 3650 (after): 3650.
        assert_eq!(c.fact(t(1850)), t(3650));
    }

    #[test]
    fn steps_are_remembered_in_order_and_bounded() {
        let mut c = Steady::at(t(0), secs(0));
        for i in 1..=40 {
            c.read_at(
                t(i * 100 + i * 10),
                secs(u64::try_from(i).unwrap_or(0) * 100),
            );
        }
        assert!(c.regimes.len() <= MAX_REGIMES);
        let now = c.peek();
        assert!(now >= t(0));
    }
}
