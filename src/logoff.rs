//! The logoff flow, written once against [`Backend`]: check → warn → terminate → wait →
//! kill → verify → report.
//!
//! Guarantees:
//! - Every target is checked (console protection, privilege) before any signal is sent; one
//!   refusal fails the command with nothing touched.
//! - With `--message`/`--grace`, the users are warned on their terminals, reminded a minute
//!   and ten seconds before the end (as shutdown does), and a cancelled grace period logs
//!   nobody off and tells them so.
//! - Programs get SIGHUP and SIGTERM first and `--timeout` to save their work; only what is
//!   still running then gets SIGKILL, repeated until nothing of the session runs.
//! - A session counts as logged off only when the backend verifies that no process of it is
//!   left; otherwise the survivors are named and the exit status says so.
//! - A logoff that ends its own session ignores the SIGHUP and SIGTERM it gets on the way, so
//!   it finishes ending and verifying the others before it exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::backend::{Backend, Signalled};
use crate::deadline::Deadline;
use crate::duration;
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session, SessionId};
use crate::system::interrupt;
use crate::system::users::Caller;

/// How long the SIGKILL step waits for the kernel to finish the processes it killed before
/// naming the survivors (a process in uninterruptible sleep can take this long).
pub const KILL_WAIT: Duration = Duration::from_secs(10);

/// How many times SIGKILL is sent again to processes found running after a kill wait.
const KILL_ROUNDS: usize = 3;

#[derive(Debug, Clone)]
pub struct Options {
    pub timeout: Duration,
    pub console: bool,
}

/// How one session's logoff went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub session: Session,
    pub result: Result<Done>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Processes asked to end with SIGHUP/SIGTERM.
    pub asked: Option<usize>,
    /// Processes that needed SIGKILL.
    pub killed: Option<usize>,
    pub elapsed: Duration,
    /// `--dry-run`: nothing was done; `processes` says how many there were.
    pub planned: bool,
    pub processes: Option<usize>,
}

/// Receives one line per action for `/V`, and problems worth saying in any case.
pub trait Log {
    fn action(&mut self, line: &str);

    /// Something went wrong that does not stop the logoff (a warning that did not arrive).
    fn problem(&mut self, line: &str) {
        self.action(line);
    }
}

/// The warning before a logoff.
pub struct Warning<'a> {
    pub message: Option<&'a str>,
    pub grace: Duration,
    /// Who logs them off: `root@host`.
    pub by: String,
    /// Set (by Ctrl-C) to cancel during the grace period.
    pub cancel: &'a AtomicBool,
}

/// When, before the end of a grace period, the warning is repeated.
const REMINDERS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(10)];

/// Warns the users of `targets` and waits out the grace period, repeating the warning a
/// minute and ten seconds before its end when the period is longer than that. Cancelled
/// (`Kind::Cancelled`): nothing is logged off, and the users are told.
pub fn warn_and_wait(
    backend: &mut dyn Backend,
    targets: &[Session],
    warning: &Warning<'_>,
    log: &mut dyn Log,
) -> Result<()> {
    if warning.message.is_none() && warning.grace.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + warning.grace;
    let at = Timestamp::now() + warning.grace;
    notify(backend, targets, log, |s| {
        notice(warning, s, warning.grace, at)
    });
    let mut reminders: Vec<Duration> = REMINDERS
        .into_iter()
        .filter(|r| *r < warning.grace)
        .collect();
    loop {
        if warning.cancel.load(Ordering::SeqCst) {
            notify(backend, targets, log, |_| cancelled(warning));
            return Err(Error::new(
                Kind::Cancelled,
                "cancelled during the grace period: nobody was logged off",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if let Some(&next) = reminders.first()
            && left <= next
        {
            reminders.remove(0);
            notify(backend, targets, log, |s| notice(warning, s, next, at));
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn notify(
    backend: &mut dyn Backend,
    targets: &[Session],
    log: &mut dyn Log,
    text: impl Fn(&Session) -> String,
) {
    for s in targets {
        match backend.warn(s, &text(s)) {
            Ok(w) => {
                if !w.reached.is_empty() {
                    log.action(&format!(
                        "session {}: warned on {}",
                        s.id,
                        w.reached.join(", ")
                    ));
                }
                if !w.missed.is_empty() {
                    log.problem(&format!(
                        "could not warn {} on {}",
                        s.describe(),
                        w.missed.join(", ")
                    ));
                }
                if w.reached.is_empty() && w.missed.is_empty() {
                    log.action(&format!("session {}: no terminal to warn on", s.id));
                }
            }
            Err(e) => log.problem(&format!("could not warn {}: {e}", s.describe())),
        }
    }
}

/// The text on a user's terminal: who logs them off, when, and the admin's message.
fn notice(w: &Warning<'_>, s: &Session, left: Duration, at: Timestamp) -> String {
    let when = if left.is_zero() {
        "now".to_string()
    } else {
        format!(
            "in {} (at {})",
            duration::display(left),
            at.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S %Z")
        )
    };
    let mut text = format!(
        "\r\n\x07*** logoff: {} is logging off this session ({}) {when} ***\r\n",
        crate::system::tty::sanitize(&w.by),
        crate::system::tty::sanitize(&format!("{}, {}", s.id, s.owner_and_place())),
    );
    if let Some(m) = w.message {
        text.push_str(&crate::system::tty::sanitize(m));
        text.push_str("\r\n");
    }
    text
}

fn cancelled(w: &Warning<'_>) -> String {
    format!(
        "\r\n\x07*** logoff: {} cancelled the logoff of this session; carry on ***\r\n",
        crate::system::tty::sanitize(&w.by)
    )
}

/// Checks every target before anything is touched.
pub fn check(
    backend: &mut dyn Backend,
    targets: &[Session],
    caller: &Caller,
    current: Option<&SessionId>,
    opts: &Options,
) -> Result<()> {
    for s in targets {
        let own = current == Some(&s.id) || (s.uid == caller.uid);
        if s.is_console() && !own && !opts.console {
            return Err(Error::new(
                Kind::AccessDenied,
                format!(
                    "cannot log off {}: it is a console session; use --console to log off \
                     another user's console session",
                    s.describe()
                ),
            ));
        }
        backend.check_access(s, caller)?;
    }
    Ok(())
}

/// Logs off `targets` (already resolved and checked) and reports each.
pub fn run(
    backend: &mut dyn Backend,
    targets: &[Session],
    current: Option<&SessionId>,
    opts: &Options,
    log: &mut dyn Log,
) -> Vec<Outcome> {
    if targets.iter().any(|s| current == Some(&s.id)) {
        shield_from_own_logoff();
        interrupt::ending_own_session();
    }
    let start = Instant::now();
    let mut work: Vec<Work> = targets
        .iter()
        .map(|s| Work {
            session: s.clone(),
            done: Done::default(),
            error: None,
            survivors: Vec::new(),
            refused: Vec::new(),
        })
        .collect();

    // Ask politely, and give programs until the timeout to save and exit.
    if !opts.timeout.is_zero() {
        // A second Ctrl-C (or SIGTERM, SIGHUP) cuts the polite wait short.
        let deadline = Deadline::at(start + opts.timeout).cut_short_by(&interrupt::HURRY);
        for w in work.iter_mut() {
            match backend.terminate(&w.session) {
                Ok(sent) => {
                    log.action(&format!(
                        "session {}: sent SIGHUP and SIGTERM to {}",
                        w.session.id,
                        count(sent.processes)
                    ));
                    w.absorb(sent, true);
                }
                Err(e) => w.error = Some(e),
            }
        }
        for w in work.iter_mut().filter(|w| w.error.is_none()) {
            loop {
                match backend.wait(&w.session, deadline) {
                    Ok(left) if left.is_empty() => {
                        w.survivors.clear();
                        log.action(&format!(
                            "session {}: {} ended after SIGTERM ({})",
                            w.session.id,
                            match w.done.asked {
                                Some(1) => "the 1 process".to_string(),
                                Some(n) => format!("all {n} processes"),
                                None => "every process".to_string(),
                            },
                            duration::display(start.elapsed())
                        ));
                        break;
                    }
                    Ok(left) => {
                        w.survivors = left;
                        if deadline.passed() {
                            let ended = match w.done.asked {
                                Some(n) => format!(
                                    "{} of {n} ended after SIGTERM, ",
                                    n.saturating_sub(w.survivors.len())
                                ),
                                None => String::new(),
                            };
                            let after = if start.elapsed() < opts.timeout {
                                format!(
                                    "{} (the wait cut short)",
                                    duration::display(start.elapsed())
                                )
                            } else {
                                duration::display(opts.timeout)
                            };
                            log.action(&format!(
                                "session {}: {ended}{} still running after {after}",
                                w.session.id,
                                plural(w.survivors.len(), "process", "processes"),
                            ));
                            break;
                        }
                        // Processes forked since the last pass: ask them too. If there are
                        // none, what is left cannot be asked (the kernel refused): go on.
                        match backend.terminate(&w.session) {
                            Ok(sent) if sent.processes == Some(0) => {
                                w.absorb(sent, true);
                                break;
                            }
                            Ok(sent) => w.absorb(sent, true),
                            Err(e) => {
                                w.error = Some(e);
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        w.error = Some(e);
                        break;
                    }
                }
            }
        }
    }

    // Force what is left (everything, with a zero timeout).
    for w in work
        .iter_mut()
        .filter(|w| w.error.is_none() && (opts.timeout.is_zero() || !w.survivors.is_empty()))
    {
        for round in 0..KILL_ROUNDS {
            match backend.kill(&w.session) {
                Ok(sent) => {
                    let frozen = match sent.frozen {
                        Some(n) => format!(
                            "froze {} with SIGSTOP (it kept forking), then ",
                            plural(n, "process", "processes")
                        ),
                        None => String::new(),
                    };
                    log.action(&format!(
                        "session {}: {frozen}sent SIGKILL to {}",
                        w.session.id,
                        count(sent.processes)
                    ));
                    w.absorb(sent, false);
                }
                Err(e) => {
                    w.error = Some(e);
                    break;
                }
            }
            let killed_at = Instant::now();
            match backend.wait(&w.session, Deadline::at(killed_at + KILL_WAIT)) {
                Ok(left) if left.is_empty() => {
                    w.survivors.clear();
                    log.action(&format!(
                        "session {}: every process ended after SIGKILL ({})",
                        w.session.id,
                        duration::display(killed_at.elapsed())
                    ));
                }
                Ok(left) => w.survivors = left,
                Err(e) => {
                    w.error = Some(e);
                    break;
                }
            }
            let all_refused = w
                .survivors
                .iter()
                .all(|s| w.refused.iter().any(|r| r.pid == s.pid));
            if w.survivors.is_empty() || all_refused {
                break;
            }
            if round + 1 < KILL_ROUNDS {
                log.action(&format!(
                    "session {}: {} still running after SIGKILL, killing again",
                    w.session.id,
                    plural(w.survivors.len(), "process", "processes")
                ));
            }
        }
    }

    work.into_iter()
        .map(|mut w| {
            w.done.elapsed = start.elapsed();
            let result = match w.error.take() {
                Some(e) => Err(e.context(format!("cannot log off {}", w.session.describe()))),
                None if !w.survivors.is_empty() => Err(survivors_error(&w)),
                None => {
                    match backend.finish(&w.session) {
                        Ok(notes) => {
                            for note in notes {
                                log.action(&format!("session {}: {note}", w.session.id));
                            }
                        }
                        // The session is ended; bookkeeping that failed is said anyway.
                        Err(e) => log.problem(&format!("session {}: {e}", w.session.id)),
                    }
                    log.action(&format!(
                        "session {} ({}) logged off: no process left ({})",
                        w.session.id,
                        w.session.owner_and_place(),
                        duration::display(w.done.elapsed)
                    ));
                    Ok(w.done.clone())
                }
            };
            Outcome {
                session: w.session,
                result,
            }
        })
        .collect()
}

struct Work {
    session: Session,
    done: Done,
    error: Option<Error>,
    survivors: Vec<ProcessInfo>,
    refused: Vec<ProcessInfo>,
}

impl Work {
    fn absorb(&mut self, sent: Signalled, polite: bool) {
        let slot = if polite {
            &mut self.done.asked
        } else {
            &mut self.done.killed
        };
        if let Some(n) = sent.processes {
            *slot = Some(slot.unwrap_or(0) + n);
        }
        for p in sent.refused {
            if !self.refused.iter().any(|r| r.pid == p.pid) {
                self.refused.push(p);
            }
        }
    }
}

fn survivors_error(w: &Work) -> Error {
    const SHOWN: usize = 10;
    let mut names: Vec<String> = w
        .survivors
        .iter()
        .take(SHOWN)
        .map(|p| p.to_string())
        .collect();
    if w.survivors.len() > SHOWN {
        names.push(format!("and {} more", w.survivors.len() - SHOWN));
    }
    let why = if w
        .survivors
        .iter()
        .any(|s| w.refused.iter().any(|r| r.pid == s.pid))
    {
        " (the kernel refused to signal some of them: permission denied)"
    } else {
        ""
    };
    Error::new(
        Kind::Survivors,
        format!(
            "cannot log off {}: could not end every process: {} still running{}: {}",
            w.session.describe(),
            plural(w.survivors.len(), "process", "processes"),
            why,
            names.join(", ")
        ),
    )
}

fn count(n: Option<usize>) -> String {
    match n {
        Some(n) => plural(n, "process", "processes"),
        None => "the session's processes".into(),
    }
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Replaces the default action of SIGHUP and SIGTERM (terminate) with a no-op handler, so the
/// hang-up of our own terminal and the backend's SIGTERM to our own session do not end logoff
/// before it has verified the others are gone.
fn shield_from_own_logoff() {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGHUP, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    }
}

#[cfg(test)]
mod tests {
    //! The flow's logic against a fake backend; the real thing is proven by the integration and
    //! system tests.
    use super::*;
    use crate::model::{Pid, Uid};

    #[derive(Default)]
    struct Fake {
        /// Processes that ignore SIGTERM.
        stubborn: usize,
        /// Processes that die of SIGTERM.
        polite: usize,
        /// Processes that even SIGKILL cannot end (permission denied).
        unkillable: usize,
        calls: Vec<String>,
        killed: bool,
    }

    impl Backend for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn describe(&self) -> String {
            "fake".into()
        }
        fn list(&mut self) -> Result<Vec<Session>> {
            Ok(vec![])
        }
        fn current(&mut self) -> Result<Option<SessionId>> {
            Ok(None)
        }
        fn warn(&mut self, _: &Session, _: &str) -> Result<crate::backend::Warned> {
            self.calls.push("warn".into());
            Ok(crate::backend::Warned {
                reached: vec!["pts/1".into()],
                missed: vec![],
            })
        }
        fn terminate(&mut self, _: &Session) -> Result<Signalled> {
            self.calls.push("terminate".into());
            let n = self.polite + self.stubborn;
            self.polite = 0;
            Ok(Signalled {
                processes: Some(n),
                frozen: None,
                refused: vec![],
            })
        }
        fn kill(&mut self, _: &Session) -> Result<Signalled> {
            self.calls.push("kill".into());
            self.killed = true;
            let n = self.stubborn;
            self.stubborn = 0;
            Ok(Signalled {
                processes: Some(n + self.unkillable),
                frozen: None,
                refused: (0..self.unkillable)
                    .map(|i| ProcessInfo {
                        pid: Pid(900 + i as i32),
                        command: "sudo".into(),
                    })
                    .collect(),
            })
        }
        fn wait(&mut self, _: &Session, _: Deadline) -> Result<Vec<ProcessInfo>> {
            self.calls.push("wait".into());
            let left = self.stubborn + self.unkillable;
            Ok((0..left)
                .map(|i| ProcessInfo {
                    pid: Pid(900 + i as i32),
                    command: "x".into(),
                })
                .collect())
        }
    }

    struct Lines(Vec<String>);
    impl Log for Lines {
        fn action(&mut self, line: &str) {
            self.0.push(line.into());
        }
    }

    fn session(id: &str, uid: u32, tty: &str) -> Session {
        Session {
            id: SessionId(id.into()),
            uid: Uid(uid),
            user: format!("u{uid}"),
            tty: Some(tty.into()),
            state: "active".into(),
            ..Session::default()
        }
    }

    fn opts(timeout: u64) -> Options {
        Options {
            timeout: Duration::from_millis(timeout),
            console: false,
        }
    }

    fn caller(uid: u32, root: bool) -> Caller {
        Caller {
            uid: Uid(uid),
            name: "me".into(),
            is_root: root,
        }
    }

    #[test]
    fn a_warning_goes_out_and_cancel_stops_everything() {
        let mut b = Fake::default();
        let cancel = AtomicBool::new(false);
        let w = Warning {
            message: Some("save your work"),
            grace: Duration::ZERO,
            by: "root@h".into(),
            cancel: &cancel,
        };
        let mut log = Lines(vec![]);
        warn_and_wait(&mut b, &[session("7", 1, "pts/1")], &w, &mut log).expect("warned");
        assert_eq!(b.calls, ["warn"]);
        assert!(
            log.0.iter().any(|l| l.contains("warned on pts/1")),
            "{:?}",
            log.0
        );

        cancel.store(true, Ordering::SeqCst);
        let w = Warning {
            grace: Duration::from_secs(3600),
            ..w
        };
        let e = warn_and_wait(&mut b, &[session("7", 1, "pts/1")], &w, &mut log)
            .expect_err("cancelled");
        assert_eq!(e.kind(), Kind::Cancelled);
        // Warned, then told it was cancelled; nothing else.
        assert_eq!(b.calls, ["warn", "warn", "warn"]);
    }

    #[test]
    fn notices_name_who_and_when_and_defuse_escapes() {
        let cancel = AtomicBool::new(false);
        let w = Warning {
            message: Some("bye\u{1b}[2J"),
            grace: Duration::from_secs(300),
            by: "root@h".into(),
            cancel: &cancel,
        };
        let s = session("7", 1, "pts/1");
        let text = notice(&w, &s, Duration::from_secs(300), Timestamp::now());
        assert!(
            text.contains("root@h is logging off this session (7, u1 on pts/1) in 5m"),
            "{text}"
        );
        assert!(text.contains("bye^[[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn polite_processes_never_see_sigkill() {
        let mut b = Fake {
            polite: 3,
            ..Fake::default()
        };
        let mut log = Lines(vec![]);
        let out = run(
            &mut b,
            &[session("7", 1, "pts/1")],
            None,
            &opts(50),
            &mut log,
        );
        assert!(out[0].result.is_ok());
        assert!(!b.killed, "{:?}", b.calls);
        assert!(log.0.iter().any(|l| l.contains("SIGTERM to 3 processes")));
    }

    #[test]
    fn stubborn_processes_get_sigkill_after_the_timeout() {
        let mut b = Fake {
            polite: 1,
            stubborn: 2,
            ..Fake::default()
        };
        let mut log = Lines(vec![]);
        let out = run(
            &mut b,
            &[session("7", 1, "pts/1")],
            None,
            &opts(10),
            &mut log,
        );
        let done = out[0].result.as_ref().expect("logged off");
        assert_eq!(done.killed, Some(2));
        assert!(b.killed);
        assert!(log.0.iter().any(|l| l.contains("still running after")));
    }

    #[test]
    fn zero_timeout_kills_at_once() {
        let mut b = Fake {
            polite: 2,
            ..Fake::default()
        };
        let out = run(
            &mut b,
            &[session("7", 1, "pts/1")],
            None,
            &opts(0),
            &mut Lines(vec![]),
        );
        assert!(out[0].result.is_ok());
        assert_eq!(b.calls.first().map(String::as_str), Some("kill"));
    }

    #[test]
    fn survivors_are_named_with_their_own_exit_status() {
        let mut b = Fake {
            unkillable: 1,
            ..Fake::default()
        };
        let out = run(
            &mut b,
            &[session("7", 1, "pts/1")],
            None,
            &opts(0),
            &mut Lines(vec![]),
        );
        let err = out[0].result.as_ref().expect_err("survivor");
        assert_eq!(err.kind(), Kind::Survivors);
        assert!(err.message().contains("900 (x)"), "{err}");
        assert!(err.message().contains("permission denied"), "{err}");
    }

    #[test]
    fn others_need_root_and_console_needs_the_flag() {
        let mut b = Fake::default();
        let bob = session("7", 1001, "pts/1");
        let e = check(
            &mut b,
            std::slice::from_ref(&bob),
            &caller(1000, false),
            None,
            &opts(0),
        )
        .expect_err("denied");
        assert_eq!(e.kind(), Kind::AccessDenied);
        assert!(e.message().contains("session 7 (u1001 on pts/1)"), "{e}");
        check(&mut b, &[bob], &caller(0, true), None, &opts(0)).expect("root may");

        let console = session("8", 1001, "tty1");
        let e = check(
            &mut b,
            std::slice::from_ref(&console),
            &caller(0, true),
            None,
            &opts(0),
        )
        .expect_err("console protected");
        assert_eq!(e.kind(), Kind::AccessDenied);
        assert!(e.message().contains("--console"), "{e}");
        let with_flag = Options {
            console: true,
            ..opts(0)
        };
        check(
            &mut b,
            std::slice::from_ref(&console),
            &caller(0, true),
            None,
            &with_flag,
        )
        .expect("flag");
        // Your own console session you may always end.
        check(&mut b, &[console], &caller(1001, false), None, &opts(0)).expect("own console");
    }

    #[test]
    fn one_refusal_refuses_all() {
        let mut b = Fake::default();
        let mine = session("7", 1000, "pts/1");
        let theirs = session("8", 1001, "pts/2");
        assert!(
            check(
                &mut b,
                &[mine, theirs],
                &caller(1000, false),
                None,
                &opts(0)
            )
            .is_err()
        );
        assert!(b.calls.is_empty());
    }
}
