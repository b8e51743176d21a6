//! Points in time for policies and the daemon: where "now" comes from ([`Clock`]: the
//! system's, read by the programs; decisions take "now" as a value — the planner is given
//! it — so that they are tested at a chosen moment rather than by sleeping), and the
//! arithmetic on them, which saturates instead of failing (a limit of 100 days after the
//! end of time is the end of time).
//!
//! "Now" is the kernel's own clock ([`now`]: `CLOCK_REALTIME`, asked of the kernel, not of
//! the C library): the clock it stamps terminals' access times with, so that an idle time
//! is two readings of one clock, whatever a library between says (libfaketime, say).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from.
pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// The system's clock ([`now`]).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now()
    }
}

/// The kernel's `CLOCK_REALTIME` (through rustix, which asks the kernel's vDSO directly):
/// the clock terminal times and process start times are in.
pub fn now() -> Timestamp {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    Timestamp::new(t.tv_sec, i32::try_from(t.tv_nsec).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The time since boot, suspend included (`CLOCK_BOOTTIME`): no step of the wall clock
/// moves it.
pub fn since_boot() -> Duration {
    use rustix::time::{DynamicClockId, clock_gettime_dynamic};
    clock_gettime_dynamic(DynamicClockId::Boottime)
        .ok()
        .map_or(Duration::ZERO, |t| {
            Duration::new(
                u64::try_from(t.tv_sec).unwrap_or(0),
                u32::try_from(t.tv_nsec).unwrap_or(0),
            )
        })
}

/// A moment in logoffd's steady time (`daemon::clock`), and the wall clock's offset from
/// it then; where no step was seen (the command, `logoffd --check`), the two are one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Steady time.
    pub at: Timestamp,
    /// Wall time less steady time.
    pub offset: SignedDuration,
}

impl Now {
    /// A moment where the wall clock has not stepped (`logoffd --check`, tests).
    pub fn unstepped(at: Timestamp) -> Now {
        Now {
            at,
            offset: SignedDuration::ZERO,
        }
    }

    /// The wall clock's time at this moment.
    pub fn wall(&self) -> Timestamp {
        self.wall_of(self.at)
    }

    /// A steady time as the wall clock says it (for people).
    pub fn wall_of(self, t: Timestamp) -> Timestamp {
        t.checked_add(self.offset).unwrap_or(t)
    }

    /// A wall time (the end of a logon window) in steady time.
    pub fn steady_of(self, t: Timestamp) -> Timestamp {
        t.checked_sub(self.offset).unwrap_or(t)
    }
}

impl From<Timestamp> for Now {
    fn from(at: Timestamp) -> Now {
        Now::unstepped(at)
    }
}

/// `t + d`, or the end of time.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `t - d`, or the beginning of time.
pub fn sub(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

/// From `a` to `b` (zero if `b` is not later).
pub fn between(a: Timestamp, b: Timestamp) -> Duration {
    Duration::try_from(b.duration_since(a)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_second(1_800_000_000).expect("t");
        assert_eq!(add(Timestamp::MAX, Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(sub(Timestamp::MIN, Duration::from_secs(1)), Timestamp::MIN);
        assert_eq!(
            between(t, add(t, Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(between(add(t, Duration::from_secs(5)), t), Duration::ZERO);
    }
}
