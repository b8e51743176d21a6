//! Points in time for policies and the daemon: where "now" comes from ([`Clock`]: the
//! system's, read by the programs; decisions take "now" as a value — the planner is given
//! it — so that they are tested at a chosen moment rather than by sleeping), and the
//! arithmetic on them, which saturates instead of failing (a limit of 100 days after the
//! end of time is the end of time).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from.
pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
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
