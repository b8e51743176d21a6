//! Running the command on every place it names: at most `--parallel` at once, each place's
//! backend opened in the worker that uses it. One place failing or hanging never stops the
//! others beyond its own timeouts. `/V` lines go to standard output as they happen
//! (prefixed with the host when there are several); the audit record of each attempt is
//! written as it ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::progress::{HostLine, Progress};
use crate::audit;
use crate::error::{Error, Result};
use crate::logoff::{Effect, Hooks, Waiting};
use crate::model::Session;
use crate::output::Out;
use crate::remote::Place;

/// Runs `job` for every place, at most `limit` at once, and returns the results in place
/// order.
pub fn for_each_place<R: Send>(
    places: &[Place],
    limit: usize,
    job: impl Fn(&Place) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    if places.len() == 1 || limit <= 1 {
        return places.iter().map(&job).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R>>>> = places.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..limit.min(places.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(place) = places.get(i) else { break };
                    let result = job(place);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::system("a worker thread failed")))
        })
        .collect()
}

/// Where a run's audit records go, and what they say beyond each session and its result
/// (`context.host` and `machine` are each place's own).
pub struct AuditFacts<'a> {
    pub log: &'a audit::AuditLog,
    /// Records that could not be written: the first is said, the count at the end.
    pub lost: &'a AtomicUsize,
    /// The person behind the caller is the one here (on another host the bus sees only the
    /// ssh user).
    pub context: audit::Context<'a>,
}

/// The flow's hooks for one place: `/V` lines, problems, audit records, the live line.
pub struct Narrator<'a> {
    verbose: bool,
    prefix: String,
    place: &'a Place,
    out: &'a Mutex<Out>,
    audit: Option<&'a AuditFacts<'a>>,
    progress: &'a Progress,
    line: HostLine,
}

impl<'a> Narrator<'a> {
    /// For `place`; `several`: lines are prefixed with the host.
    pub fn new(
        verbose: bool,
        several: bool,
        place: &'a Place,
        out: &'a Mutex<Out>,
        audit: Option<&'a AuditFacts<'a>>,
        progress: &'a Progress,
    ) -> Self {
        let prefix = if several {
            format!("{}: ", place.label)
        } else {
            String::new()
        };
        Narrator {
            verbose,
            line: progress.host_line(&prefix),
            prefix,
            place,
            out,
            audit,
            progress,
        }
    }
}

impl Drop for Narrator<'_> {
    fn drop(&mut self) {
        self.line.done();
    }
}

impl Hooks for Narrator<'_> {
    fn narrate(&mut self, line: &str) {
        if self.verbose
            && let Ok(mut out) = self.out.lock()
        {
            out.line(&format!("{}{line}", self.prefix));
        }
    }

    fn problem(&mut self, line: &str) {
        self.progress.error_line(&format!("{}{line}", self.prefix));
    }

    fn waiting(&mut self, waiting: &Waiting<'_>) {
        self.line.waiting(waiting);
    }

    fn attempted(&mut self, session: &Session, result: &Result<Effect>) {
        let Some(facts) = self.audit else {
            return;
        };
        let context = audit::Context {
            host: &self.place.label,
            machine: self.place.machine.as_deref(),
            ..facts.context
        };
        if let Err(e) = facts.log.record(&context, session, result)
            && facts.lost.fetch_add(1, Ordering::SeqCst) == 0
        {
            self.problem(e.message());
        }
    }
}

/// Shows the grace period counting down on standard error (when it is a terminal) until it
/// has passed, `finished` is set, or it is cancelled.
pub fn countdown(grace: Duration, finished: &std::sync::atomic::AtomicBool) {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(crate::deadline::millis(grace)),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "logging off in {msg:>8} [{bar:40}] (Ctrl-C cancels)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let start = std::time::Instant::now();
    while !finished.load(Ordering::SeqCst) && !super::signals::cancelled() {
        let elapsed = start.elapsed();
        if elapsed >= grace {
            break;
        }
        bar.set_position(crate::deadline::millis(elapsed));
        bar.set_message(crate::duration::display(Duration::from_secs(
            crate::deadline::ceil_secs(grace - elapsed),
        )));
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}
