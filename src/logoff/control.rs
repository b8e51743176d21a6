//! What the flow asks of whoever runs it about stopping, instead of reaching for
//! process-wide state: whether a stage may begin, whether a grace period was cancelled,
//! what cuts the wait before SIGKILL short. The command answers from its signal handling
//! (`cli::signals`); logoffd, whose signals are handled between its passes, never stops a
//! logoff it has begun ([`Steady`]).

use std::sync::atomic::AtomicBool;

/// Where a logoff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Listing and checking: nothing touched yet.
    Preparing,
    /// Warned; waiting out the grace period.
    Grace,
    /// Signals are being sent.
    LoggingOff,
}

/// The flow's view of its caller's wishes.
pub trait Control: Sync {
    /// Moves on to `stage`, unless the caller has asked to stop: then `false`, and nothing
    /// may begin.
    fn begin(&self, stage: Stage) -> bool;

    /// Whether the grace period is to end now, nobody logged off.
    fn cancelled(&self) -> bool;

    /// Set (by a second Ctrl-C) to cut the wait before SIGKILL short.
    fn hurry(&self) -> Option<&'static AtomicBool>;

    /// The session logoff runs in is among those it ends: what that session's end does to
    /// logoff itself (its terminal's hangup, SIGTERM from the backend) is not the caller's.
    fn ending_own_session(&self);
}

/// A caller that never stops a logoff: logoffd, and tests.
pub struct Steady;

impl Control for Steady {
    fn begin(&self, _: Stage) -> bool {
        true
    }

    fn cancelled(&self) -> bool {
        false
    }

    fn hurry(&self) -> Option<&'static AtomicBool> {
        None
    }

    fn ending_own_session(&self) {}
}
