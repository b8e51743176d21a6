//! Ending the targets' processes, all together: ask politely, force, verify.
//!
//! Programs get SIGHUP and SIGTERM first and `--timeout` to save their work; only what is
//! still running then gets SIGKILL, repeated until nothing of a session runs. Each step is
//! one backend call for every target still in it, so that ending many sessions costs one
//! scan (or one watch) per step, not one per session; each session still gets its own
//! result. A session counts as logged off only when the backend verifies that no process of
//! it is left; otherwise the survivors are named.

use std::time::{Duration, Instant};

use super::{Control, Done, Effect, Hooks, Options, Outcome, Step, Waiting, plural};
use crate::backend::{Backend, Signalled};
use crate::deadline::Deadline;
use crate::duration;
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session};

/// How long the SIGKILL step waits for the kernel to finish the processes it killed before
/// naming the survivors (a process in uninterruptible sleep can take this long).
pub const KILL_WAIT: Duration = Duration::from_secs(10);

/// How many times SIGKILL is sent again to processes found running after a kill wait.
const KILL_ROUNDS: usize = 3;

/// One target on its way out.
struct Work<'a> {
    session: &'a Session,
    done: Done,
    error: Option<Error>,
    survivors: Vec<ProcessInfo>,
    refused: Vec<ProcessInfo>,
}

impl Work<'_> {
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

    fn all_refused(&self) -> bool {
        self.survivors
            .iter()
            .all(|s| self.refused.iter().any(|r| r.pid == s.pid))
    }
}

/// Ends `targets` (already resolved and checked) and reports each.
pub fn end_sessions(
    backend: &mut dyn Backend,
    targets: &[Session],
    opts: &Options,
    control: &dyn Control,
    hooks: &mut dyn Hooks,
) -> Vec<Outcome> {
    let start = Instant::now();
    let mut work: Vec<Work> = targets
        .iter()
        .map(|session| Work {
            session,
            done: Done::default(),
            error: None,
            survivors: Vec::new(),
            refused: Vec::new(),
        })
        .collect();
    if !opts.timeout.is_zero() {
        ask_politely(backend, &mut work, opts, control, hooks, start);
    }
    force(backend, &mut work, opts, hooks);
    verify(backend, work, hooks, start)
}

/// The targets at `at` in `work`, as the backend takes them.
fn sessions<'a>(work: &[Work<'a>], at: &[usize]) -> Vec<&'a Session> {
    at.iter().map(|&i| work[i].session).collect()
}

/// SIGHUP and SIGTERM, and until the timeout (or a second Ctrl-C) for programs to exit;
/// processes forked meanwhile are asked too.
fn ask_politely(
    backend: &mut dyn Backend,
    work: &mut [Work],
    opts: &Options,
    control: &dyn Control,
    hooks: &mut dyn Hooks,
    start: Instant,
) {
    let mut deadline = Deadline::at(start + opts.timeout);
    if let Some(hurry) = control.hurry() {
        deadline = deadline.cut_short_by(hurry);
    }
    let mut open: Vec<usize> = (0..work.len()).collect();
    for (&at, sent) in open.iter().zip(backend.terminate(&sessions(work, &open))) {
        let w = &mut work[at];
        match sent {
            Ok(sent) => {
                hooks.narrate(&format!(
                    "session {}: sent SIGHUP and SIGTERM to {}",
                    w.session.id,
                    count(sent.processes)
                ));
                w.absorb(sent, true);
            }
            Err(e) => w.error = Some(e),
        }
    }
    open.retain(|&at| work[at].error.is_none());
    while !open.is_empty() {
        let left = backend.remaining(&sessions(work, &open), slice(deadline, opts.tick));
        for (&at, left) in open.iter().zip(left) {
            match left {
                Ok(left) => work[at].survivors = left,
                Err(e) => work[at].error = Some(e),
            }
        }
        for &at in &open {
            let w = &work[at];
            if w.error.is_none() && w.survivors.is_empty() {
                hooks.narrate(&ended_after_sigterm(w, start));
            }
        }
        open.retain(|&at| work[at].error.is_none() && !work[at].survivors.is_empty());
        if open.is_empty() {
            break;
        }
        if deadline.passed() {
            for &at in &open {
                hooks.narrate(&still_running(&work[at], opts.timeout, start));
            }
            break;
        }
        hooks.waiting(&waiting(work, &open, Step::Sigterm(deadline.instant())));
        // Processes forked since the last pass: ask them too. Where there are none, what is
        // left cannot be asked (the kernel refused): that session waits for the force —
        // unless someone watches the wait, which then goes on in steps to the deadline.
        let sent = backend.terminate(&sessions(work, &open));
        let mut asked = Vec::new();
        for (&at, sent) in open.iter().zip(sent) {
            match sent {
                Ok(sent) if sent.processes == Some(0) && opts.tick.is_none() => {
                    work[at].absorb(sent, true);
                }
                Ok(sent) => {
                    work[at].absorb(sent, true);
                    asked.push(at);
                }
                Err(e) => work[at].error = Some(e),
            }
        }
        open = asked;
    }
}

fn ended_after_sigterm(w: &Work, start: Instant) -> String {
    format!(
        "session {}: {} ended after SIGTERM ({})",
        w.session.id,
        match w.done.asked {
            Some(1) => "the 1 process".to_string(),
            Some(n) => format!("all {n} processes"),
            None => "every process".to_string(),
        },
        duration::display(start.elapsed())
    )
}

fn still_running(w: &Work, timeout: Duration, start: Instant) -> String {
    let ended = match w.done.asked {
        Some(n) => format!(
            "{} of {n} ended after SIGTERM, ",
            n.saturating_sub(w.survivors.len())
        ),
        None => String::new(),
    };
    let after = if start.elapsed() < timeout {
        format!(
            "{} (the wait cut short)",
            duration::display(start.elapsed())
        )
    } else {
        duration::display(timeout)
    };
    format!(
        "session {}: {ended}{} still running after {after}",
        w.session.id,
        plural(w.survivors.len(), "process", "processes"),
    )
}

/// SIGKILL to what is left (everything, with a zero timeout), and waiting for the kernel to
/// finish it; again, up to [`KILL_ROUNDS`], for what a wait finds still running.
fn force(backend: &mut dyn Backend, work: &mut [Work], opts: &Options, hooks: &mut dyn Hooks) {
    let mut open: Vec<usize> = (0..work.len())
        .filter(|&at| {
            work[at].error.is_none() && (opts.timeout.is_zero() || !work[at].survivors.is_empty())
        })
        .collect();
    for round in 0..KILL_ROUNDS {
        if open.is_empty() {
            return;
        }
        for (&at, sent) in open.iter().zip(backend.kill(&sessions(work, &open))) {
            let w = &mut work[at];
            match sent {
                Ok(sent) => {
                    hooks.narrate(&sent_sigkill(w.session, &sent));
                    w.absorb(sent, false);
                }
                Err(e) => w.error = Some(e),
            }
        }
        open.retain(|&at| work[at].error.is_none());
        let killed_at = Instant::now();
        let give_up = Deadline::at(killed_at + KILL_WAIT);
        let mut waiting_for = open.clone();
        while !waiting_for.is_empty() {
            let step = slice(give_up, opts.tick);
            let left = backend.remaining(&sessions(work, &waiting_for), step);
            for (&at, left) in waiting_for.iter().zip(left) {
                let w = &mut work[at];
                match left {
                    Ok(left) if left.is_empty() => {
                        w.survivors.clear();
                        hooks.narrate(&format!(
                            "session {}: every process ended after SIGKILL ({})",
                            w.session.id,
                            duration::display(killed_at.elapsed())
                        ));
                    }
                    Ok(left) => w.survivors = left,
                    Err(e) => w.error = Some(e),
                }
            }
            // Nothing to wait for in what the kernel would not let us signal.
            waiting_for.retain(|&at| {
                let w = &work[at];
                w.error.is_none() && !w.survivors.is_empty() && !w.all_refused()
            });
            // Unwatched, the one wait it always was; and a wait that ended before its step
            // found processes forked meanwhile: both go to the next round at once.
            let early = !step.passed();
            if opts.tick.is_none() || early || give_up.passed() || waiting_for.is_empty() {
                break;
            }
            hooks.waiting(&waiting(
                work,
                &waiting_for,
                Step::Sigkill(give_up.instant()),
            ));
        }
        open.retain(|&at| {
            let w = &work[at];
            w.error.is_none() && !w.survivors.is_empty() && !w.all_refused()
        });
        if round + 1 < KILL_ROUNDS {
            for &at in &open {
                hooks.narrate(&format!(
                    "session {}: {} still running after SIGKILL, killing again",
                    work[at].session.id,
                    plural(work[at].survivors.len(), "process", "processes")
                ));
            }
        }
    }
}

fn sent_sigkill(session: &Session, sent: &Signalled) -> String {
    let frozen = match sent.frozen {
        Some(n) => format!(
            "froze {} with SIGSTOP (it kept forking), then ",
            plural(n, "process", "processes")
        ),
        None => String::new(),
    };
    format!(
        "session {}: {frozen}sent SIGKILL to {}",
        session.id,
        count(sent.processes)
    )
}

/// One step of a wait: to the deadline, or when someone watches the wait (`tick`), to the
/// next moment to tell them how it goes.
fn slice(deadline: Deadline, tick: Option<Duration>) -> Deadline {
    match tick {
        Some(tick) if Instant::now() + tick < deadline.instant() => {
            Deadline::after(tick).cut_short_by_like(&deadline)
        }
        _ => deadline,
    }
}

/// What is being waited for, for [`Hooks::waiting`].
fn waiting<'a>(work: &'a [Work<'a>], at: &[usize], step: Step) -> Waiting<'a> {
    Waiting {
        sessions: at
            .iter()
            .map(|&i| (work[i].session, work[i].survivors.as_slice()))
            .collect(),
        step,
    }
}

/// Each target's result: an error, survivors, or done (and its bookkeeping).
fn verify(
    backend: &mut dyn Backend,
    work: Vec<Work>,
    hooks: &mut dyn Hooks,
    start: Instant,
) -> Vec<Outcome> {
    work.into_iter()
        .map(|mut w| {
            w.done.elapsed = start.elapsed();
            let result = match w.error.take() {
                Some(e) => Err(e.context(format!("cannot log off {}", w.session.describe()))),
                None if !w.survivors.is_empty() => Err(survivors_error(&w)),
                None => {
                    match backend.finish(w.session) {
                        Ok(notes) => {
                            for note in notes {
                                hooks.narrate(&format!("session {}: {note}", w.session.id));
                            }
                        }
                        // The session is ended; bookkeeping that failed is said anyway.
                        Err(e) => hooks.problem(&format!("session {}: {e}", w.session.id)),
                    }
                    hooks.narrate(&format!(
                        "session {} ({}) logged off: no process left ({})",
                        w.session.id,
                        w.session.owner_and_place(),
                        duration::display(w.done.elapsed)
                    ));
                    Ok(Effect::LoggedOff(w.done.clone()))
                }
            };
            Outcome {
                session: w.session.clone(),
                result,
            }
        })
        .collect()
}

fn survivors_error(w: &Work) -> Error {
    const SHOWN: usize = 10;
    let mut names: Vec<String> = w
        .survivors
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
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

/// What is left of each session, for `--dry-run`: what runs now.
pub fn count_now(backend: &mut dyn Backend, targets: &[Session]) -> Vec<Result<usize>> {
    let refs: Vec<&Session> = targets.iter().collect();
    backend
        .remaining(&refs, Deadline::after(Duration::ZERO))
        .into_iter()
        .map(|r| r.map(|left| left.len()))
        .collect()
}
