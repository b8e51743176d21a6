//! Session backends behind one small trait, chosen at run time ([`open_here`]; another
//! host's: [`crate::remote::open`]).
//!
//! A backend lists sessions, names the caller's own, and ends sessions' processes in two
//! steps — ask ([`Backend::terminate`]), then force ([`Backend::kill`]) — with
//! [`Backend::remaining`] in between to learn what is left. Those three take every target
//! of a logoff at once, so that one /proc scan or one watch serves them all; each session
//! still gets its own answer. The logoff flow ([`crate::logoff`]) is written once against
//! this trait. A backend knows nothing of the command line, nor how it was chosen.

mod activity;
mod connection;
pub(crate) mod logind;
pub mod procfs;

use std::collections::BTreeSet;

use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session, SessionId, Uid};
use crate::system::tty::{self, Terminal};
use crate::system::users::Caller;
pub use activity::Sources;

/// Which backend a session list comes from (JSON's `backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Procfs,
    Logind,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Procfs => "procfs",
            Flavor::Logind => "logind",
        }
    }
}

/// Where a warning reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warned {
    pub reached: Vec<String>,
    /// Terminals it could not be written to, each with why.
    pub missed: Vec<String>,
}

impl Warned {
    /// Adds where a window on a display was shown, or why not (`None`: no display).
    pub fn add(&mut self, window: Option<std::result::Result<String, String>>) {
        match window {
            Some(Ok(shown)) => self.reached.push(shown),
            Some(Err(missed)) => self.missed.push(missed),
            None => {}
        }
    }
}

/// What one signalling step did to one session.
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

/// A connection ended (`logoff --disconnect`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    /// How many processes made the connection (and ended).
    pub ended: usize,
    /// Where its client was.
    pub client: Option<String>,
    /// SIGKILL was needed.
    pub forced: bool,
    pub elapsed: std::time::Duration,
}

pub trait Backend {
    /// Which backend this is, and what it groups sessions by (for `/V`).
    fn about(&self) -> (Flavor, String);

    /// Every session of the host, in no particular order.
    fn list(&mut self) -> Result<Vec<Session>>;

    /// Fills in what the users of `sessions` (as [`Backend::list`] just gave them) did last:
    /// [`Session::activity`], and their idle time from it.
    ///
    /// # Platform specific behavior
    /// On this host: every terminal their processes hold, their displays, tmux and screen
    /// servers attached from other sessions, and as `sources` asks, CPU time and (logind)
    /// idle locks ([`activity`]). Elsewhere what the backend's listing said stays.
    fn observe(&mut self, sessions: &mut [Session], sources: Sources) -> Result<()> {
        let _ = (sessions, sources);
        Ok(())
    }

    /// The session the caller runs in, if any.
    fn current(&mut self) -> Result<Option<SessionId>>;

    /// On another host's bus: the session that carries logoff's own connection there (the
    /// ssh login that runs the bus bridge), as that host's bus says it. Filters leave it
    /// out, as they leave out the current session here. (A remote logoff leaves its own
    /// session out of what it lists to end, by itself.)
    fn carrier(&mut self) -> Result<Option<SessionId>> {
        Ok(None)
    }

    /// Who logoff acts as, in this backend's eyes.
    fn caller(&mut self) -> Result<Caller>;

    /// Refuses, before anything is touched, a logoff the caller may not do.
    ///
    /// # Platform specific behavior
    /// On procfs the rule is the kernel's ([`kernel_rule`]): root, or the session's own user.
    /// logind asks polkit the question logind itself will ask.
    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()>;

    /// Writes `text` to the session's terminals.
    ///
    /// # Platform specific behavior
    /// On this host, the terminals its processes hold open, each checked to be that very
    /// terminal ([`deliver_locally`]). On another host (or machine) logind's bus offers no
    /// way to write to a terminal: systemd there runs `cat` with the text as its input and
    /// the session's TTY as its output (a transient service; it needs the right to manage
    /// units), and only the TTY is reached.
    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned>;

    /// Asks every process of each session to end (SIGHUP, SIGTERM), so programs can save;
    /// called again, asks the processes forked since. One answer per session, in order.
    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>>;

    /// Sends SIGKILL to every process of each session still running, including processes
    /// forked meanwhile. One answer per session, in order.
    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>>;

    /// What is still running of each session once it has ended or `until` has passed
    /// (empty: the session is verified empty). Asked with a deadline that has passed, it
    /// tells what runs now. One answer per session, in order.
    fn remaining(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>>;

    /// Ends each session's connection — an RDP client's, an ssh connection's — and nothing
    /// else: SIGTERM to the processes that make it, `timeout`, SIGKILL. One answer per
    /// session, in order; a session with no connection is [`Kind::NoConnection`].
    ///
    /// # Platform specific behavior
    /// On this host, the connection's processes are found and ended through pidfds
    /// ([`connection`]); another host's bus offers no way to tell them, and only its own
    /// logoff (the remote agent) can.
    fn disconnect(
        &mut self,
        sessions: &[&Session],
        timeout: std::time::Duration,
    ) -> Vec<Result<Cut>> {
        let _ = timeout;
        disconnect_elsewhere(sessions)
    }

    /// Bookkeeping once a session is empty (utmp); returns notes for `/V`.
    fn finish(&mut self, session: &Session) -> Result<Vec<String>>;
}

/// The answer of a backend that cannot tell a session's connection from where it runs.
pub fn disconnect_elsewhere(sessions: &[&Session]) -> Vec<Result<Cut>> {
    sessions
        .iter()
        .map(|s| {
            Err(Error::new(
                Kind::Remote,
                format!(
                    "cannot disconnect {} from here: which processes make its connection can \
                     be told only on its host (install logoff there: /SERVER then asks it)",
                    s.describe()
                ),
            ))
        })
        .collect()
}

/// [`Backend::observe`] on the sessions `wanted` picks only (their order kept): the rest keep
/// what their listing said. A look at a session's processes costs: logoffd looks only where
/// its policy can act.
pub fn observe_some(
    backend: &mut dyn Backend,
    sessions: &mut [Session],
    sources: Sources,
    wanted: impl Fn(&Session) -> bool,
) -> Result<()> {
    let picked: Vec<usize> = (0..sessions.len())
        .filter(|&i| wanted(&sessions[i]))
        .collect();
    let mut looked: Vec<Session> = picked
        .iter()
        .map(|&i| std::mem::take(&mut sessions[i]))
        .collect();
    let observed = backend.observe(&mut looked, sources);
    for (i, s) in picked.into_iter().zip(looked) {
        sessions[i] = s;
    }
    observed
}

/// The kernel's rule for signalling: root may end any session, a user their own.
pub fn kernel_rule(session: &Session, caller: &Caller) -> Result<()> {
    if caller.is_root || session.belongs_to(caller.uid) {
        Ok(())
    } else {
        Err(access_denied(session))
    }
}

/// The access-denied error, naming the session and its owner.
pub fn access_denied(session: &Session) -> Error {
    Error::new(
        Kind::AccessDenied,
        format!("cannot log off {}: access denied", session.describe()),
    )
}

/// Writes `text` to terminals of this host that a session's processes hold, each checked to
/// be that terminal and owned by the session's user or root ([`tty::write_checked`]).
pub fn deliver_locally(terminals: BTreeSet<Terminal>, owner: Option<Uid>, text: &str) -> Warned {
    let mut warned = Warned::default();
    for terminal in terminals {
        match tty::write_checked(&terminal, owner, text.as_bytes()) {
            Ok(()) => warned.reached.push(terminal.name),
            Err(e) => warned.missed.push(format!("{} ({e})", terminal.name)),
        }
    }
    warned
}

/// Which backend to use (`--backend`, for both programs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Choice {
    /// logind where it answers on the system bus, else procfs.
    #[default]
    Auto,
    Logind,
    Procfs,
}

/// What the backend will be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Listing only.
    List,
    /// Ending sessions: procfs keeps a pidfd to every member it lists.
    EndSessions,
}

/// A backend, with why it was chosen (for `/V`).
pub struct Opened {
    pub backend: Box<dyn Backend>,
    pub why: String,
    /// The version of the remote host's logoff the backend works through, if it does
    /// ([`crate::remote::relay`]).
    pub agent: Option<String>,
}

impl Opened {
    /// `procfs (kernel audit session IDs; chosen with --backend procfs)`: the `/V` line.
    pub fn describe(&self) -> String {
        let (flavor, detail) = self.backend.about();
        format!("{} ({detail}; {})", flavor.as_str(), self.why)
    }
}

/// Opens this host's backend: the one `choice` asks for (logind where it answers on the
/// system bus, with `auto`). Another host's, or a machine's: [`crate::remote::open`].
pub fn open_here(choice: Choice, purpose: Purpose) -> Result<Opened> {
    let opened = |backend: Box<dyn Backend>, why: String| Opened {
        backend,
        why,
        agent: None,
    };
    let logind = || -> Result<Box<dyn Backend>> {
        Ok(Box::new(logind::Logind::new(logind::Bus::system()?)?))
    };
    let procfs = |why: String| opened(Box::new(procfs::Procfs::new(purpose)), why);
    match choice {
        Choice::Procfs => Ok(procfs("chosen with --backend procfs".into())),
        Choice::Logind => Ok(opened(
            logind().map_err(|e| e.context("cannot use logind"))?,
            "chosen with --backend logind".into(),
        )),
        Choice::Auto => match logind() {
            Ok(backend) => Ok(opened(
                backend,
                "org.freedesktop.login1 answers on the system bus".into(),
            )),
            Err(e) => Ok(procfs(format!("no logind: {e}"))),
        },
    }
}
