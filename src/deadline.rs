//! When a wait ends: at a point in time, or sooner when it is cut short (a second Ctrl-C
//! skips the rest of `--timeout`). Every wait on something outside logoff has one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one blocking step lasts at most while a wait can be cut short: short enough that
/// the cut is noticed at once, long enough to cost nothing.
const SLICE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    cut: Option<&'static AtomicBool>,
}

impl Deadline {
    pub fn at(at: Instant) -> Deadline {
        Deadline { at, cut: None }
    }

    /// `duration` from now.
    pub fn after(duration: Duration) -> Deadline {
        Deadline::at(Instant::now() + duration)
    }

    /// The same deadline, passed early once `flag` is set.
    pub fn cut_short_by(self, flag: &'static AtomicBool) -> Deadline {
        Deadline {
            cut: Some(flag),
            ..self
        }
    }

    /// This deadline, cut short by whatever cuts `other` short.
    pub fn cut_short_by_like(self, other: &Deadline) -> Deadline {
        Deadline {
            cut: other.cut,
            ..self
        }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Whether it has passed (or was cut short).
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at || self.cut.is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// What is left; zero once passed.
    pub fn left(&self) -> Duration {
        if self.passed() {
            Duration::ZERO
        } else {
            self.at.saturating_duration_since(Instant::now())
        }
    }

    /// How long the next blocking step may last: what is left, in slices when the wait can
    /// be cut short.
    pub fn next_step(&self) -> Duration {
        match self.cut {
            Some(_) => self.left().min(SLICE),
            None => self.left(),
        }
    }
}

/// `d` as poll(2) takes a timeout (saturating).
pub fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Whole seconds, rounded up (`3.2s` is `4s` left).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Whole milliseconds (saturating).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_passes_the_deadline() {
        static CUT: AtomicBool = AtomicBool::new(false);
        let d = Deadline::after(Duration::from_secs(3600)).cut_short_by(&CUT);
        assert!(!d.passed());
        assert!(d.next_step() <= SLICE);
        CUT.store(true, Ordering::SeqCst);
        assert!(d.passed());
        assert_eq!(d.left(), Duration::ZERO);
        let plain = Deadline::after(Duration::from_secs(3600));
        assert!(plain.next_step() > SLICE);
        assert!(Deadline::after(Duration::ZERO).passed());
    }
}
