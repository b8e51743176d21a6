//! The logoff flow on one host, written once against [`Backend`], in two parts:
//! [`resolve`] (the command's: list, select) and [`end`] (shared: check → dry run → warn →
//! ask politely → force → verify → record). The command runs both on each host it names
//! ([`execute`]); logoffd holds the one session its policy chose and calls [`end`].
//!
//! Guarantees:
//! - Every target is checked (console protection, privilege) before any signal is sent; one
//!   refusal fails the command with nothing touched, and each target's refusal is recorded.
//! - With a message or a grace period, the users are warned on their terminals, reminded a
//!   minute and ten seconds before the end (as shutdown does), and a cancelled grace period
//!   logs nobody off and tells them so.
//! - Programs get SIGHUP and SIGTERM first and the timeout to save their work; only what is
//!   still running then gets SIGKILL, repeated until nothing of the session runs.
//! - A session counts as logged off only when the backend verifies that no process of it is
//!   left; otherwise the survivors are named and the exit status says so.
//! - A logoff that ends its own session tells its [`Control`], which keeps the SIGHUP and
//!   SIGTERM it gets on the way from ending it before it has verified the others are gone.
//! - Whether to stop is asked of the caller's [`Control`], never of process-wide state: the
//!   command answers from its signals, logoffd never stops a logoff it has begun.

pub mod check;
pub mod control;
pub mod processes;
pub mod warn;

use std::time::{Duration, Instant};

use crate::backend::{Backend, Sources};
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session, SessionId};
use crate::select::{self, Filters, OwnSession};
use crate::system::users::Caller;
pub use check::ConsolePolicy;
pub use control::{Control, Stage, Steady};
pub use warn::Warning;

/// How sessions are ended.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Between SIGTERM and SIGKILL.
    pub timeout: Duration,
    pub console: ConsolePolicy,
    /// When someone watches the waits ([`Hooks::waiting`]): how often to tell them.
    pub tick: Option<Duration>,
}

/// What a run does to its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Log off: every process of the session ends.
    #[default]
    LogOff,
    /// End the session's connection only (`--disconnect`, `tsdiscon`): an RDP client's, an
    /// ssh connection's; its programs keep running and its user reconnects to them.
    Disconnect,
    /// Write the message only (`--warn-only`, as `msg` does): nothing ends.
    Message,
}

impl Action {
    /// `logoff`, `disconnect`, `message` (the audit record's `LOGOFF_ACTION`, JSON's
    /// `action`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LogOff => "logoff",
            Action::Disconnect => "disconnect",
            Action::Message => "message",
        }
    }
}

/// Which sessions the command means on one host: its arguments and filters, before they
/// are resolved against that host's sessions ([`resolve`]).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Session arguments (IDs or names); none: the current session, or the filters'.
    pub sessions: Vec<String>,
    pub filters: Filters,
    /// `/VM`: every argument must be a session's unique ID.
    pub ids_only: bool,
}

/// How targets are ended ([`end`]): the same for the command and logoffd.
pub struct Ending<'a> {
    pub action: Action,
    pub options: Options,
    pub warning: Warning<'a>,
    pub dry_run: bool,
}

/// The sessions to end on one host, and what they are judged with: who asks, which session
/// is the caller's own, and the listing they come from.
pub struct Targets {
    pub sessions: Vec<Session>,
    /// Every session of the listing the targets come from: whether a client reaches a
    /// target depends on the others (a disconnect's judgement).
    pub listed: Vec<Session>,
    pub caller: Caller,
    pub current: Option<SessionId>,
}

impl Targets {
    /// `sessions`, already found in `listed` (logoffd's: the one it holds), with the
    /// backend's caller and current session.
    pub fn held(
        backend: &mut dyn Backend,
        sessions: Vec<Session>,
        listed: Vec<Session>,
    ) -> Result<Targets> {
        Ok(Targets {
            sessions,
            listed,
            caller: backend.caller()?,
            current: backend.current()?,
        })
    }
}

/// How one session's logoff went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub session: Session,
    pub result: Result<Effect>,
}

/// What was done to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Logged off: no process of it is left.
    LoggedOff(Done),
    /// `--dry-run`: nothing was done; it has this many processes.
    Planned { processes: usize },
    /// `--disconnect`: its connection ended; its programs run on.
    Disconnected(crate::backend::Cut),
    /// `--warn-only`: the message was written (where, the warning's notes say).
    Messaged,
}

/// How a logoff went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Processes asked to end with SIGHUP/SIGTERM.
    pub asked: Option<usize>,
    /// Processes that needed SIGKILL.
    pub killed: Option<usize>,
    pub elapsed: Duration,
}

impl Done {
    /// Whether SIGKILL was needed (or asked for, with a zero timeout).
    pub fn forced(&self, timeout: Duration) -> bool {
        timeout.is_zero() || self.killed.is_some_and(|k| k > 0)
    }
}

/// What the flow tells whoever runs it.
pub trait Hooks {
    /// One line for `/V`.
    fn narrate(&mut self, line: &str);

    /// Something went wrong that does not stop the logoff (a warning that did not arrive):
    /// said whether or not `/V` was asked for.
    fn problem(&mut self, line: &str);

    /// One attempt on one session is over (done, refused, cancelled, failed): the audit
    /// record. Not for a dry run.
    fn attempted(&mut self, session: &Session, result: &Result<Effect>);

    /// Processes are being waited for (every [`Options::tick`], while the wait lasts).
    fn waiting(&mut self, waiting: &Waiting<'_>) {
        let _ = waiting;
    }
}

/// What a wait is for.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// For programs to exit after SIGTERM; SIGKILL at this moment.
    Sigterm(Instant),
    /// For the kernel to finish processes killed; given up at this moment.
    Sigkill(Instant),
}

/// The sessions a wait is for, each with what is left of it.
pub struct Waiting<'a> {
    pub sessions: Vec<(&'a Session, &'a [ProcessInfo])>,
    pub step: Step,
}

/// The command's flow on one host: [`resolve`] the request, then [`end`] what it names.
/// The outcomes are in the order the sessions were selected; an error is the host's as a
/// whole (it could not be listed, a selection failed, a target was refused, or the grace
/// period was cancelled) — nothing was touched then, but what a cancellation undid.
pub fn execute(
    backend: &mut dyn Backend,
    request: &Request,
    elsewhere: Option<&str>,
    ending: &Ending<'_>,
    control: &dyn Control,
    hooks: &mut dyn Hooks,
) -> Result<Vec<Outcome>> {
    let targets = resolve(backend, request, elsewhere, ending.action, hooks)?;
    end(backend, &targets, ending, control, hooks)
}

/// The sessions `request` means on this host: listed once (and observed where the filters
/// or the action need activity), selected, and, on another host (`elsewhere`: its label),
/// without the login that carries logoff's own connection there. Touches nothing.
pub fn resolve(
    backend: &mut dyn Backend,
    request: &Request,
    elsewhere: Option<&str>,
    action: Action,
    hooks: &mut dyn Hooks,
) -> Result<Targets> {
    let caller = backend.caller()?;
    let mut listed = backend.list()?;
    // A disconnect must know what connects each target (mosh's input is no connection).
    if request.filters.need_activity() || action == Action::Disconnect {
        backend.observe(&mut listed, Sources::default())?;
    }
    let current = backend.current()?;
    let mut sessions = select_targets(&listed, request, elsewhere, current.as_ref())?;
    leave_out_carrier(backend, request, elsewhere, &mut sessions, hooks)?;
    if sessions.is_empty() {
        // Filters that match nothing: nothing to do is not a failure.
        hooks.narrate(&format!(
            "no session matches {}; nothing to log off",
            request.filters.describe()
        ));
    }
    for s in &sessions {
        hooks.narrate(&found(s, current.as_ref()));
        for note in &s.notes {
            hooks.narrate(&format!("session {}: {note}", s.id));
        }
    }
    Ok(Targets {
        sessions,
        listed,
        caller,
        current,
    })
}

/// Ends `targets` as `ending` says, every step in order: check every target, then (unless a
/// dry run) warn and wait out the grace period, then log off, disconnect or only message,
/// and record each attempt. No listing: the targets are what the caller holds.
pub fn end(
    backend: &mut dyn Backend,
    targets: &Targets,
    ending: &Ending<'_>,
    control: &dyn Control,
    hooks: &mut dyn Hooks,
) -> Result<Vec<Outcome>> {
    let sessions = &targets.sessions;
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let current = targets.current.as_ref();
    let refused = |hooks: &mut dyn Hooks, e: Error| {
        for s in sessions {
            hooks.attempted(s, &Err(e.clone()));
        }
        e
    };
    // A message ends nothing: the console needs no protection from it.
    let console = match ending.action {
        Action::Message => ConsolePolicy::Allow,
        Action::LogOff | Action::Disconnect => ending.options.console,
    };
    let checked = check::check(backend, sessions, &targets.caller, current, console);
    if ending.dry_run {
        checked?;
        let mut outcomes = planned(backend, sessions);
        if ending.action == Action::Disconnect {
            // What a disconnect would refuse, it says so in the dry run too.
            let refusals = no_connection_refusals(&targets.listed, sessions);
            for (o, refused) in outcomes.iter_mut().zip(refusals) {
                if let Some(why) = refused {
                    o.result = Err(Error::new(Kind::NoConnection, why));
                }
            }
        }
        return Ok(outcomes);
    }
    checked.map_err(|e| refused(hooks, e))?;
    // Nothing begins once the caller has asked to stop; what has begun finishes.
    if ending.warning.is_some() && !control.begin(Stage::Grace) {
        return Err(refused(hooks, interrupted()));
    }
    warn::warn_and_wait(backend, sessions, &ending.warning, control, hooks)
        .map_err(|e| refused(hooks, e))?;
    if !control.begin(Stage::LoggingOff) {
        return Err(refused(hooks, interrupted()));
    }
    let outcomes = match ending.action {
        Action::LogOff => {
            if sessions.iter().any(|s| current == Some(&s.id)) {
                control.ending_own_session();
            }
            processes::end_sessions(backend, sessions, &ending.options, control, hooks)
        }
        Action::Disconnect => {
            disconnect(backend, &targets.listed, sessions, &ending.options, hooks)
        }
        Action::Message => sessions
            .iter()
            .map(|s| Outcome {
                session: s.clone(),
                result: Ok(Effect::Messaged),
            })
            .collect(),
    };
    for o in &outcomes {
        hooks.attempted(&o.session, &o.result);
    }
    Ok(outcomes)
}

/// Ends the targets' connections, each on its own (the backend finds what makes each).
fn disconnect(
    backend: &mut dyn Backend,
    listed: &[Session],
    targets: &[Session],
    options: &Options,
    hooks: &mut dyn Hooks,
) -> Vec<Outcome> {
    let refs: Vec<&Session> = targets.iter().collect();
    let results = cut_connections(backend, listed, &refs, options.timeout);
    targets
        .iter()
        .zip(results)
        .map(|(s, result)| {
            if let Ok(cut) = &result {
                hooks.narrate(&format!(
                    "session {}: connection ended ({}{}){}",
                    s.id,
                    plural(cut.ended, "process", "processes"),
                    if cut.forced { ", SIGKILL needed" } else { "" },
                    cut.client
                        .as_deref()
                        .map(|c| format!("; its client was {c}"))
                        .unwrap_or_default()
                ));
            }
            Outcome {
                session: s.clone(),
                result: result.map(Effect::Disconnected),
            }
        })
        .collect()
}

/// Ends each target's connection ([`Backend::disconnect`]), but refuses — with
/// [`Kind::NoConnection`], touching nothing — a session that only what is no connection of
/// its own reaches: input through mosh (whose server holds its shell's terminal too), or
/// another session's client (that session is what to disconnect). `listed`: every session
/// of the listing the targets come from (a client is one of them). One answer per target.
pub fn cut_connections(
    backend: &mut dyn Backend,
    listed: &[Session],
    targets: &[&Session],
    timeout: Duration,
) -> Vec<Result<crate::backend::Cut>> {
    let refusals = no_connection_refusals(listed, targets.iter().copied());
    let go: Vec<&Session> = targets
        .iter()
        .zip(&refusals)
        .filter(|(_, refused)| refused.is_none())
        .map(|(t, _)| *t)
        .collect();
    let mut cut = if go.is_empty() {
        Vec::new().into_iter()
    } else {
        backend.disconnect(&go, timeout).into_iter()
    };
    refusals
        .into_iter()
        .map(|refused| match refused {
            Some(why) => Err(Error::new(Kind::NoConnection, why)),
            None => cut
                .next()
                .unwrap_or_else(|| Err(Error::system("the backend gave no answer"))),
        })
        .collect()
}

/// For each target, why a disconnect refuses it, if it does ([`cut_connections`]).
fn no_connection_refusals<'a>(
    listed: &[Session],
    targets: impl IntoIterator<Item = &'a Session>,
) -> Vec<Option<String>> {
    let presences = crate::presence::judge(listed, crate::time::now());
    targets
        .into_iter()
        .map(|t| {
            let at = listed.iter().position(|s| s.id == t.id)?;
            crate::presence::no_connection_of_its_own(t, &presences[at])
        })
        .collect()
}

/// On another host, filters leave out the ssh login that carries logoff's own connection
/// there (`--all` would otherwise end it halfway); naming it still works.
fn leave_out_carrier(
    backend: &mut dyn Backend,
    request: &Request,
    elsewhere: Option<&str>,
    targets: &mut Vec<Session>,
    hooks: &mut dyn Hooks,
) -> Result<()> {
    if elsewhere.is_none() || !request.sessions.is_empty() || targets.is_empty() {
        return Ok(());
    }
    if let Some(carrier) = backend.carrier()?
        && let Some(at) = targets.iter().position(|s| s.id == carrier)
    {
        let s = targets.remove(at);
        hooks.narrate(&format!(
            "leaving out {}: it carries logoff's own connection to this host (name it to \
             log it off)",
            s.describe()
        ));
    }
    Ok(())
}

/// The sessions `request` means on this host (see [`select`]), checked for `/VM`'s IDs.
fn select_targets(
    sessions: &[Session],
    request: &Request,
    elsewhere: Option<&str>,
    current: Option<&SessionId>,
) -> Result<Vec<Session>> {
    if request.ids_only
        && let Some(not_an_id) = request
            .sessions
            .iter()
            .find(|a| !sessions.iter().any(|s| s.id.as_str() == a.as_str()))
    {
        return Err(Error::invalid(format!(
            "/VM needs the session's unique ID: '{not_an_id}' is not the ID of a session"
        )));
    }
    if let Some(label) = elsewhere
        && request.sessions.is_empty()
        && !request.filters.given()
        && current.is_none()
    {
        return Err(Error::new(
            Kind::NoSuchSession,
            format!(
                "name the session to log off on {label}: logoff does not run in a session there"
            ),
        ));
    }
    let chosen = select::select(
        sessions,
        &request.sessions,
        &request.filters,
        current,
        OwnSession::LeaveOut,
        crate::time::now(),
    )?;
    Ok(chosen.into_iter().cloned().collect())
}

/// `session 7 found: user bob (uid 1001), terminal pts/2, 3 processes (the current session)`.
fn found(s: &Session, current: Option<&SessionId>) -> String {
    format!(
        "session {} found: user {} (uid {}), {}{}{}",
        s.id,
        s.user,
        s.uid
            .map_or_else(|| "unknown".to_string(), |u| u.to_string()),
        s.name()
            .map_or_else(|| "no terminal".into(), |n| format!("terminal {n}")),
        s.processes
            .map(|n| format!(", {}", plural(n, "process", "processes")))
            .unwrap_or_default(),
        if current == Some(&s.id) {
            " (the current session)"
        } else {
            ""
        }
    )
}

/// A dry run's outcomes: what would be logged off, and how many processes each has now.
fn planned(backend: &mut dyn Backend, targets: &[Session]) -> Vec<Outcome> {
    targets
        .iter()
        .zip(processes::count_now(backend, targets))
        .map(|(s, processes)| Outcome {
            session: s.clone(),
            result: processes.map(|processes| Effect::Planned { processes }),
        })
        .collect()
}

fn interrupted() -> Error {
    Error::new(
        Kind::Cancelled,
        "interrupted before logging off began: nobody was logged off",
    )
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests;
