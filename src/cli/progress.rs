//! Progress where people wait, on standard error when it is a terminal (never on a pipe,
//! with `--json`, or under `/V`, which prints its own lines): one live line per host while
//! processes are waited for — `session 12 (bob): waiting for 4 processes to exit — SIGKILL
//! in 7s` — cleared when done; and with several hosts, a line at the bottom that counts
//! them — `hosts: 37/200 done, 2 failed, 3 connecting` — while each host's results print
//! above it.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logoff::{Step, Waiting, plural};
use crate::output;

/// How often the live lines are brought up to date.
pub const TICK: Duration = Duration::from_millis(500);

/// The progress of one command: nothing at all when it is not drawn.
pub struct Progress {
    drawn: Option<Drawn>,
}

struct Drawn {
    multi: MultiProgress,
    /// The hosts counter, with several hosts.
    hosts: Option<ProgressBar>,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    connecting: usize,
    done: usize,
    failed: usize,
}

impl Progress {
    /// Progress for a command on `places` hosts; drawn only where it helps (see the module).
    pub fn new(json: bool, verbose: bool, places: usize) -> Progress {
        if json || verbose || !std::io::stderr().is_terminal() {
            return Progress { drawn: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let hosts = (places > 1).then(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(line_style());
            bar
        });
        let drawn = Drawn {
            multi,
            hosts,
            counts: Mutex::new(Counts {
                total: places,
                ..Counts::default()
            }),
        };
        drawn.count(|_| {});
        Progress { drawn: Some(drawn) }
    }

    /// Whether anything is drawn (the flow then reports its waits).
    pub fn is_drawn(&self) -> bool {
        self.drawn.is_some()
    }

    /// Whether the hosts' results are printed as each host ends (above the counter).
    pub fn prints_as_hosts_end(&self) -> bool {
        self.drawn.as_ref().is_some_and(|d| d.hosts.is_some())
    }

    /// A host is being connected to: its ticket follows it to the end.
    pub fn start_host(&self) -> HostTicket<'_> {
        if let Some(d) = &self.drawn {
            d.count(|c| c.connecting += 1);
        }
        HostTicket {
            progress: self,
            connecting: std::cell::Cell::new(true),
        }
    }

    /// Prints a line on standard error: above the live lines, when they are drawn.
    pub fn error_line(&self, line: &str) {
        match &self.drawn {
            Some(d) => {
                let _ = d.multi.println(format!("logoff: {}", output::clean(line)));
            }
            None => output::error_line(line),
        }
    }

    /// A live line for one host's waits; `prefix` names the host when there are several.
    pub fn host_line(&self, prefix: &str) -> HostLine {
        let bar = self.drawn.as_ref().map(|d| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(line_style());
            match &d.hosts {
                Some(hosts) => d.multi.insert_before(hosts, bar),
                None => d.multi.add(bar),
            }
        });
        HostLine {
            bar,
            prefix: prefix.to_string(),
        }
    }

    /// Clears everything drawn.
    pub fn finish(&self) {
        if let Some(d) = &self.drawn {
            if let Some(hosts) = &d.hosts {
                hosts.finish_and_clear();
            }
            let _ = d.multi.clear();
        }
    }
}

/// One host's place in the counter.
pub struct HostTicket<'a> {
    progress: &'a Progress,
    connecting: std::cell::Cell<bool>,
}

impl HostTicket<'_> {
    /// The host answered.
    pub fn connected(&self) {
        if self.connecting.replace(false)
            && let Some(d) = &self.progress.drawn
        {
            d.count(|c| c.connecting = c.connecting.saturating_sub(1));
        }
    }

    /// The host is done (`failed`: with a failure).
    pub fn finish(self, failed: bool) {
        self.connected();
        if let Some(d) = &self.progress.drawn {
            d.count(|c| {
                c.done += 1;
                c.failed += usize::from(failed);
            });
        }
    }
}

impl Drawn {
    fn count(&self, change: impl FnOnce(&mut Counts)) {
        let Ok(mut c) = self.counts.lock() else {
            return;
        };
        change(&mut c);
        if let Some(hosts) = &self.hosts {
            hosts.set_message(format!(
                "hosts: {}/{} done, {} failed, {} connecting",
                c.done, c.total, c.failed, c.connecting
            ));
        }
    }
}

fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// One host's live line.
pub struct HostLine {
    bar: Option<ProgressBar>,
    prefix: String,
}

impl HostLine {
    /// Shows what is waited for.
    pub fn waiting(&self, waiting: &Waiting<'_>) {
        if let Some(bar) = &self.bar {
            bar.set_message(
                output::clean(&format!("{}{}", self.prefix, describe(waiting))).into_owned(),
            );
        }
    }

    /// The waits are over: the line goes.
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `session 12 (bob): waiting for 4 processes to exit (firefox) — SIGKILL in 7s`.
fn describe(waiting: &Waiting<'_>) -> String {
    let sessions = match waiting.sessions.as_slice() {
        [(s, _)] => format!("session {} ({})", s.id, s.user),
        many => plural(many.len(), "session", "sessions"),
    };
    let left: Vec<_> = waiting
        .sessions
        .iter()
        .flat_map(|(_, l)| l.iter())
        .collect();
    let program = left
        .first()
        .map(|p| program_of(&p.command))
        .filter(|first| !first.is_empty() && left.iter().all(|p| program_of(&p.command) == *first))
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let count = plural(left.len(), "process", "processes");
    let now = Instant::now();
    match waiting.step {
        Step::Sigterm(at) => format!(
            "{sessions}: waiting for {count} to exit{program} — SIGKILL in {}",
            seconds(at.saturating_duration_since(now))
        ),
        Step::Sigkill(at) => format!(
            "{sessions}: waiting for {count} to end after SIGKILL{program} — giving up in {}",
            seconds(at.saturating_duration_since(now))
        ),
    }
}

/// The program of a command line: the base name of its first word.
fn program_of(command: &str) -> &str {
    let first = command.split_whitespace().next().unwrap_or("");
    first.rsplit('/').next().unwrap_or(first)
}

fn seconds(d: Duration) -> String {
    format!("{}s", crate::deadline::ceil_secs(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Pid, ProcessInfo, Session, SessionId};

    #[test]
    fn the_waiting_line_counts_names_and_counts_down() {
        let s = Session {
            id: SessionId::new("12"),
            user: "bob".into(),
            ..Session::default()
        };
        let left: Vec<ProcessInfo> = (0..4)
            .map(|i| ProcessInfo {
                pid: Pid::from_raw(100 + i),
                command: "/usr/lib/firefox/firefox -contentproc".into(),
            })
            .collect();
        let w = Waiting {
            sessions: vec![(&s, left.as_slice())],
            step: Step::Sigterm(Instant::now() + Duration::from_millis(6500)),
        };
        assert_eq!(
            describe(&w),
            "session 12 (bob): waiting for 4 processes to exit (firefox) — SIGKILL in 7s"
        );
        let mixed = [
            left[0].clone(),
            ProcessInfo {
                pid: Pid::from_raw(200),
                command: "bash".into(),
            },
        ];
        let w = Waiting {
            sessions: vec![(&s, &mixed[..]), (&s, &mixed[..1])],
            step: Step::Sigkill(Instant::now() + Duration::from_secs(9)),
        };
        assert!(describe(&w).starts_with("2 sessions: waiting for 3 processes to end after"));
        assert!(!describe(&w).contains("(firefox)"));
    }
}
