//! Ctrl-C, SIGTERM and SIGHUP (a dropped connection) while the command logs sessions off: the
//! command's [`Control`] of the flow.
//!
//! - Before anything is touched, one of them ends logoff at once (exit 130): nothing to undo.
//!   The signal thread tells `main`, which returns that status; nothing below `main` exits
//!   the process.
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::logoff::{Control, Stage};

/// Set during a grace period: cancel it.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// Set by a second signal once logging off has begun: SIGKILL now.
static HURRY: AtomicBool = AtomicBool::new(false);

struct State {
    stage: Stage,
    /// Signals the caller sent.
    received: usize,
    /// HUP and TERM come from ending our own session: not the caller's.
    own_session: bool,
    /// Where to say "stop now, nothing was touched" (`main`).
    stop: Option<Sender<u8>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    stage: Stage::Preparing,
    received: 0,
    own_session: false,
    stop: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The exit status of a command interrupted before anything was touched.
pub const INTERRUPTED: u8 = 130;

/// Receives SIGINT, SIGTERM and SIGHUP from now on (see the module's doc); a signal before
/// anything is touched sends [`INTERRUPTED`] to `stop`.
pub fn install(stop: Sender<u8>) -> std::io::Result<()> {
    state().stop = Some(stop);
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
            // Under the lock, and `received` is set: nothing can begin from now on.
            if let Some(stop) = &state.stop {
                let _ = stop.send(INTERRUPTED);
            }
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

/// The command's control of the flow: its signals.
pub struct Signals;

impl Control for Signals {
    fn begin(&self, stage: Stage) -> bool {
        state().begin(stage)
    }

    fn cancelled(&self) -> bool {
        CANCEL.load(Ordering::SeqCst)
    }

    fn hurry(&self) -> Option<&'static AtomicBool> {
        Some(&HURRY)
    }

    /// Replaces the default action of SIGHUP and SIGTERM (terminate) with a no-op handler,
    /// and ignores them from now on: the hang-up of our own terminal and the backend's
    /// SIGTERM to our own session must not end logoff before it has verified the others
    /// are gone.
    fn ending_own_session(&self) {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGHUP, SIGTERM] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        }
        state().own_session = true;
    }
}

/// Whether the grace period was cancelled (for the countdown).
pub fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
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
            stop: None,
        };
        assert!(state.begin(Stage::Grace));
        state.received = 1;
        assert!(!state.begin(Stage::LoggingOff), "began after a signal");
        state.stage = Stage::LoggingOff;
        // Already begun: carrying on is allowed.
        assert!(state.begin(Stage::LoggingOff));
    }
}
