//! Session backends behind one small trait, chosen at run time.
//!
//! A backend lists sessions, names the caller's own, and ends a session's processes in two
//! steps — ask ([`Backend::terminate`]), then force ([`Backend::kill`]) — with
//! [`Backend::wait`] in between to learn what is left. The logoff flow
//! ([`crate::logoff`]) is written once against this trait. A backend knows nothing of the
//! command line; the command line knows nothing of D-Bus or /proc.

pub mod logind;
pub mod procfs;

use std::collections::BTreeSet;

use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session, SessionId, Uid};
use crate::system::tty::{self, Terminal};
use crate::system::users::Caller;

/// Where a warning reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warned {
    pub reached: Vec<String>,
    /// Terminals it could not be written to, each with why.
    pub missed: Vec<String>,
}

/// Writes `text` to terminals of this host that a session's processes hold, each checked to
/// be that terminal and owned by the session's user or root ([`tty::write_checked`]).
pub fn deliver_locally(terminals: BTreeSet<Terminal>, owner: Uid, text: &str) -> Warned {
    let mut warned = Warned::default();
    for terminal in terminals {
        match tty::write_checked(&terminal, owner, text.as_bytes()) {
            Ok(()) => warned.reached.push(terminal.name),
            Err(e) => warned.missed.push(format!("{} ({e})", terminal.name)),
        }
    }
    warned
}

/// What one signalling step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signalled {
    /// How many processes were signalled, where the backend knows.
    pub processes: Option<usize>,
    /// How many processes were stopped (SIGSTOP) first, when the backend had to freeze the
    /// session to stop it from forking.
    pub frozen: Option<usize>,
    /// Processes the kernel refused to signal (EPERM): they will survive.
    pub refused: Vec<ProcessInfo>,
}

pub trait Backend {
    /// `procfs`, `logind`: the backend's short name (JSON's `backend` key).
    fn name(&self) -> &'static str;

    /// `procfs (kernel audit session IDs)`, `logind (org.freedesktop.login1)`: for `/V`.
    fn describe(&self) -> String;

    /// Every session of the host, in no particular order.
    fn list(&mut self) -> Result<Vec<Session>>;

    /// The session the caller runs in, if any.
    fn current(&mut self) -> Result<Option<SessionId>>;

    /// Who logoff acts as, in this backend's eyes.
    fn caller(&mut self) -> Result<Caller> {
        Ok(Caller::current())
    }

    /// Refuses, before anything is touched, a logoff the caller may not do.
    ///
    /// # Platform specific behavior
    /// On procfs the rule is the kernel's: root, or the session's own user. logind leaves the
    /// decision to logind and polkit, which answer when asked to terminate.
    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        if caller.is_root || caller.uid == session.uid {
            Ok(())
        } else {
            Err(access_denied(session))
        }
    }

    /// Writes `text` to the session's terminals: its TTY and the terminals its processes
    /// hold open (a tmux or screen server's, say).
    ///
    /// # Platform specific behavior
    /// On this host the terminals are written directly, as write(1) does. On another host (or
    /// machine) logind's bus offers no way to write to a terminal: logoff asks systemd there
    /// to run `cat` with the text as its input and the session's TTY as its output (a
    /// transient service; it needs the right to manage units), and only the TTY is reached.
    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned>;

    /// How many processes the session has now, where the backend can count them.
    fn count(&mut self, session: &Session) -> Result<Option<usize>> {
        Ok(session.processes)
    }

    /// Asks every process of the session to end (SIGHUP, SIGTERM), so programs can save.
    fn terminate(&mut self, session: &Session) -> Result<Signalled>;

    /// Sends SIGKILL to every process of the session still running, including processes
    /// forked meanwhile.
    fn kill(&mut self, session: &Session) -> Result<Signalled>;

    /// Waits until no process of the session is left or `deadline` passes; returns what is
    /// still running (empty: the session is verified empty).
    fn wait(&mut self, session: &Session, deadline: Deadline) -> Result<Vec<ProcessInfo>>;

    /// Bookkeeping once the session is empty (utmp); returns notes for `/V`.
    fn finish(&mut self, session: &Session) -> Result<Vec<String>> {
        let _ = session;
        Ok(Vec::new())
    }
}

/// Which backend the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Choice {
    /// logind where it answers on the system bus, else procfs.
    #[default]
    Auto,
    Logind,
    Procfs,
}

/// The backend for this host. `ends_sessions`: the caller will log sessions off, not only
/// list them.
pub fn open_local(choice: Choice, ends_sessions: bool) -> Result<Box<dyn Backend>> {
    let logind = |why: &str| -> Result<Box<dyn Backend>> {
        let conn = crate::transport::system_bus()?;
        Ok(Box::new(logind::Logind::connect(conn, true, why)?))
    };
    match choice {
        Choice::Procfs => Ok(Box::new(procfs::Procfs::new(
            ends_sessions,
            "chosen with --backend procfs",
        ))),
        Choice::Logind => logind("chosen with --backend logind")
            .map_err(|e| Error::new(e.kind(), format!("cannot use logind: {e}"))),
        Choice::Auto => match logind("org.freedesktop.login1 answers on the system bus") {
            Ok(backend) => Ok(backend),
            Err(e) => Ok(Box::new(procfs::Procfs::new(
                ends_sessions,
                &format!("no logind: {e}"),
            ))),
        },
    }
}

/// The access-denied error, naming the session and its owner.
pub fn access_denied(session: &Session) -> Error {
    Error::new(
        Kind::AccessDenied,
        format!("cannot log off {}: access denied", session.describe()),
    )
}
