//! Ctrl-C, SIGTERM and SIGHUP (a dropped connection) while logoff works.
//!
//! - Before anything is touched, one of them ends logoff at once (exit 130): nothing to undo.
//! - During a grace period, it cancels: the users are told, the records say `cancelled`.
//! - Once logging off has begun, it must not abandon the work: a session left half ended,
//!   with its utmp record and its audit record unwritten, is worse than a late exit. The
//!   first signal is acknowledged on standard error and the work finishes; a second skips
//!   the rest of `--timeout` and sends SIGKILL at once.
//!
//! A logoff that ends its own session gets SIGHUP (its terminal hangs up) and SIGTERM (from
//! itself, or logind) on the way: those are not the caller's and are ignored.
//!
//! The signals are received on a thread of their own (signal-hook's iterator), so that
//! what is done about them is ordinary code. The switch from "nothing touched" to "begun" is
//! taken under the same lock the signal thread decides under, so that no signal can end
//! logoff between a decision to begin and the first signal to a session.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Set during a grace period: cancel it.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Set by a second signal once logging off has begun: SIGKILL now.
pub static HURRY: AtomicBool = AtomicBool::new(false);

/// Where the command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Listing and checking: nothing touched yet.
    Preparing,
    /// Warned; waiting out the grace period.
    Grace,
    /// Signals are being sent.
    LoggingOff,
}

struct State {
    stage: Stage,
    /// Signals the caller sent.
    received: usize,
    /// HUP and TERM come from ending our own session: not the caller's.
    own_session: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    stage: Stage::Preparing,
    received: 0,
    own_session: false,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Receives SIGINT, SIGTERM and SIGHUP from now on (see the module's doc).
pub fn install() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            on_signal(signal);
        }
    });
    Ok(())
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C (SIGINT)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

fn on_signal(signal: i32) {
    let mut state = state();
    if state.own_session && signal != SIGINT {
        return;
    }
    state.received += 1;
    let say = |line: &str| crate::output::error_line(line);
    match state.stage {
        Stage::Preparing => {
            say(&format!(
                "interrupted by {}: nothing was touched",
                name(signal)
            ));
            // Under the lock: no worker can begin logging off meanwhile.
            std::process::exit(130);
        }
        Stage::Grace => CANCEL.store(true, Ordering::SeqCst),
        Stage::LoggingOff if state.received == 1 => say(&format!(
            "{} received: finishing the logoff already begun (again to send SIGKILL now)",
            name(signal)
        )),
        Stage::LoggingOff if state.received == 2 => {
            // Said before it is done: once HURRY is set, logoff may finish and exit at once.
            say(&format!(
                "{} received again: sending SIGKILL now, without waiting out --timeout",
                name(signal)
            ));
            HURRY.store(true, Ordering::SeqCst);
        }
        Stage::LoggingOff => {}
    }
}

impl State {
    /// Moves on to `stage`, unless the caller has already asked to stop: then `false`.
    fn begin(&mut self, stage: Stage) -> bool {
        if self.received > 0 && stage > self.stage {
            return false;
        }
        self.stage = self.stage.max(stage);
        true
    }
}

/// Moves on to `stage`, unless the caller has already asked to stop: then `false`, and
/// nothing may begin.
pub fn begin(stage: Stage) -> bool {
    state().begin(stage)
}

/// The session logoff runs in is among those it ends: its SIGHUP and SIGTERM are ignored.
pub fn ending_own_session() {
    state().own_session = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_signal_came_nothing_new_begins() {
        let mut state = State {
            stage: Stage::Preparing,
            received: 0,
            own_session: false,
        };
        assert!(state.begin(Stage::Grace));
        state.received = 1;
        assert!(!state.begin(Stage::LoggingOff), "began after a signal");
        state.stage = Stage::LoggingOff;
        // Already begun: carrying on is allowed.
        assert!(state.begin(Stage::LoggingOff));
    }
}
