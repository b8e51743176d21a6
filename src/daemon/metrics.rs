//! logoffd's figures for Prometheus, in its text format, as a file in the node exporter's
//! textfile directory (`metrics_dir` in the policy; Debian's
//! `/var/lib/prometheus/node-exporter` by default, and nothing is written where that
//! directory does not exist):
//!
//! - `logoff_sessions{state, class}`: this host's sessions at the last pass;
//! - `logoff_sessions_warned`: sessions under a warning now;
//! - `logoff_warnings_total`, `logoff_cancellations_total`, `logoff_logoffs_total`,
//!   `logoff_disconnects_total` by `rule` and `reason`, and `logoff_failures_total` by
//!   `rule`, `reason` and `action`: counters kept in the state directory (`counters.json`),
//!   so that they survive a restart;
//! - `logoff_pass_duration_seconds`, `logoff_last_pass_timestamp_seconds`.
//!
//! The file is rendered here ([`render`], pure) and written by a thread of its own
//! ([`Exporter`]), so that a directory that stalls (a network or FUSE mount) never holds a
//! pass up: a rendering that finds the writer busy is dropped, and the next pass's follows.
//! It is written as the node exporter wants it, atomically: a temporary file not named
//! `*.prom`, synced, renamed over the old one — relative to the directory opened once per
//! write with no symbolic link anywhere in its path (the directory above Debian's is the
//! `prometheus` user's: it must not be able to point root's write elsewhere), and with the
//! temporary file made new (`O_EXCL`, not through a link).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use jiff::Timestamp;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::logoff::Action;
use crate::model::Session;
use crate::policy::Reason;

/// The file logoffd writes in the textfile directory.
pub const FILE: &str = "logoffd.prom";
const TEMPORARY: &str = ".logoffd.prom.tmp";

/// Something logoffd did that is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counted {
    /// A warning reached at least one of a session's terminals or displays.
    Warned,
    /// A warned logoff or disconnect was called off (activity, a reload, a stop).
    Cancelled,
    LoggedOff,
    Disconnected,
    /// A logoff or disconnect at a deadline failed.
    LogOffFailed,
    DisconnectFailed,
}

impl Counted {
    /// What is counted of a logoff or disconnect at a deadline: done or failed.
    pub fn of(action: Action, done: bool) -> Counted {
        match (action, done) {
            (Action::Disconnect, true) => Counted::Disconnected,
            (Action::Disconnect, false) => Counted::DisconnectFailed,
            (_, true) => Counted::LoggedOff,
            (_, false) => Counted::LogOffFailed,
        }
    }
}

/// One counter's labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Labels {
    /// Kept on disk as `event`.
    event: Counted,
    rule: String,
    reason: String,
}

/// One counter as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    #[serde(flatten)]
    labels: Labels,
    count: u64,
}

/// What logoffd has done since its counters began (they survive restarts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    counts: BTreeMap<Labels, u64>,
    /// Counted since the last [`Counters::take_changed`].
    changed: bool,
}

impl Counters {
    pub fn count(&mut self, event: Counted, rule: &str, reason: Reason) {
        let labels = Labels {
            event,
            rule: rule.to_string(),
            reason: reason.as_str().to_string(),
        };
        let n = self.counts.entry(labels).or_insert(0);
        *n = n.saturating_add(1);
        self.changed = true;
    }

    /// Whether anything was counted since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let kept: Vec<Kept> = self
            .counts
            .iter()
            .map(|(labels, &count)| Kept {
                labels: labels.clone(),
                count,
            })
            .collect();
        serde_json::to_vec_pretty(&kept)
    }

    pub fn from_json(bytes: &[u8]) -> serde_json::Result<Counters> {
        let kept: Vec<Kept> = serde_json::from_slice(bytes)?;
        let mut counts = BTreeMap::new();
        for k in kept {
            let n: &mut u64 = counts.entry(k.labels).or_default();
            *n = n.saturating_add(k.count);
        }
        Ok(Counters {
            counts,
            changed: false,
        })
    }
}

/// One pass, as the metrics tell it.
pub struct PassFigures<'a> {
    pub sessions: &'a [Session],
    pub warned: usize,
    pub took: Duration,
    pub at: Timestamp,
}

/// The metric families of counters: name, help, event.
const COUNTER_FAMILIES: [(&str, &str, &[Counted]); 5] = [
    (
        "logoff_warnings_total",
        "Warnings of a time limit that reached a session's terminal or display.",
        &[Counted::Warned],
    ),
    (
        "logoff_cancellations_total",
        "Warned logoffs and disconnects called off (activity, a new policy, logoffd stopping).",
        &[Counted::Cancelled],
    ),
    (
        "logoff_logoffs_total",
        "Sessions logged off at a time limit.",
        &[Counted::LoggedOff],
    ),
    (
        "logoff_disconnects_total",
        "Sessions disconnected at a time limit (their programs kept running).",
        &[Counted::Disconnected],
    ),
    (
        "logoff_failures_total",
        "Logoffs and disconnects at a time limit that failed.",
        &[Counted::LogOffFailed, Counted::DisconnectFailed],
    ),
];

/// The Prometheus text of one pass and the counters.
pub fn render(pass: &PassFigures<'_>, counters: &Counters) -> String {
    let mut out = String::new();
    let mut by_state: BTreeMap<(String, String), u64> = BTreeMap::new();
    let presences = crate::presence::judge(pass.sessions, pass.at);
    for (s, p) in pass.sessions.iter().zip(&presences) {
        let class = s.class.clone().unwrap_or_else(|| "unknown".into());
        *by_state
            .entry((p.state(s).as_str().to_string(), class))
            .or_default() += 1;
    }
    family(
        &mut out,
        "logoff_sessions",
        "gauge",
        "Sessions on this host.",
    );
    for ((state, class), n) in &by_state {
        let _ = writeln!(
            out,
            "logoff_sessions{{state=\"{}\",class=\"{}\"}} {n}",
            label(state),
            label(class)
        );
    }
    family(
        &mut out,
        "logoff_sessions_warned",
        "gauge",
        "Sessions under a warning of a time limit.",
    );
    let _ = writeln!(out, "logoff_sessions_warned {}", pass.warned);
    for (name, help, events) in COUNTER_FAMILIES {
        family(&mut out, name, "counter", help);
        for (l, n) in counters
            .counts
            .iter()
            .filter(|(l, _)| events.contains(&l.event))
        {
            let action = match l.event {
                Counted::LogOffFailed => ",action=\"logoff\"",
                Counted::DisconnectFailed => ",action=\"disconnect\"",
                _ => "",
            };
            let _ = writeln!(
                out,
                "{name}{{rule=\"{}\",reason=\"{}\"{action}}} {n}",
                label(&l.rule),
                label(&l.reason)
            );
        }
    }
    family(
        &mut out,
        "logoff_pass_duration_seconds",
        "gauge",
        "How long logoffd's last look at the sessions took, its actions included.",
    );
    let _ = writeln!(
        out,
        "logoff_pass_duration_seconds {}",
        pass.took.as_secs_f64()
    );
    family(
        &mut out,
        "logoff_last_pass_timestamp_seconds",
        "gauge",
        "When logoffd last looked at the sessions (Unix time).",
    );
    let _ = writeln!(
        out,
        "logoff_last_pass_timestamp_seconds {}",
        pass.at.as_millisecond() as f64 / 1000.0
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and line feed
/// escaped; other control characters (a host's state text) dropped; at most 128 characters.
fn label(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(128) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` as [`FILE`] in `dir`, atomically. `Ok(false)`: the directory does not
/// exist (metrics are off).
pub fn write(dir: &Path, text: &str) -> std::io::Result<bool> {
    let dirfd = match open_directory(dir) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let _ = rustix::fs::unlinkat(&dirfd, TEMPORARY, rustix::fs::AtFlags::empty());
    let fd = rustix::fs::openat(
        &dirfd,
        TEMPORARY,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    rustix::fs::renameat(&dirfd, TEMPORARY, &dirfd, FILE)?;
    Ok(true)
}

/// Removes [`FILE`] from `dir` (logoffd stops: its figures would go stale).
pub fn withdraw(dir: &Path) {
    if let Ok(dirfd) = open_directory(dir) {
        let _ = rustix::fs::unlinkat(&dirfd, FILE, rustix::fs::AtFlags::empty());
    }
}

/// Opens the absolute path `dir` (`O_PATH`) one component at a time from `/`, following no
/// symbolic link on the way (what `openat2`'s `RESOLVE_NO_SYMLINKS` does; `openat2` itself
/// is refused by some seccomp filters, and by kernels before 5.6).
fn open_directory(dir: &Path) -> std::io::Result<OwnedFd> {
    use std::path::Component;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut at = rustix::fs::open("/", flags, Mode::empty())?;
    for part in dir.components() {
        match part {
            Component::RootDir => {}
            Component::Normal(name) => {
                at = rustix::fs::openat(&at, name, flags, Mode::empty()).map_err(|e| {
                    if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::LOOP {
                        std::io::Error::other(format!(
                            "{} is not a directory (a symbolic link is refused: the path must \
                             name the directory itself)",
                            Path::new(name).display()
                        ))
                    } else {
                        e.into()
                    }
                })?;
            }
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(std::io::Error::other(
                    "the path must be absolute, without . or ..",
                ));
            }
        }
    }
    Ok(at)
}

/// The writer thread's end of things: what to write where, and how the last write went.
pub struct Exporter {
    to_writer: SyncSender<(PathBuf, String)>,
    from_writer: Receiver<Result<(), String>>,
    /// The problem last reported (each is logged once, until writes work again).
    reported: Option<String>,
}

impl Exporter {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<Exporter> {
        let (to_writer, jobs) = std::sync::mpsc::sync_channel::<(PathBuf, String)>(1);
        let (results, from_writer) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for (dir, text) in jobs {
                    let result = write(&dir, &text)
                        .map(|_| ())
                        .map_err(|e| format!("cannot write {}/{FILE}: {e}", dir.display()));
                    if results.send(result).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Exporter {
            to_writer,
            from_writer,
            reported: None,
        })
    }

    /// Waits up to `wait` for the writer to finish what it has (logoffd stops).
    pub fn finish(self, wait: Duration) {
        let Exporter {
            to_writer,
            from_writer,
            ..
        } = self;
        drop(to_writer);
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match from_writer.recv_timeout(left) {
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Hands `text` to the writer (dropped if it is still busy with the last one). Returns a
    /// problem to log, once each: the writer's last failure, or that it is stuck.
    pub fn send(&mut self, dir: &Path, text: String) -> Option<String> {
        let mut problem = None;
        loop {
            match self.from_writer.try_recv() {
                Ok(Ok(())) => self.reported = None,
                Ok(Err(e)) => problem = Some(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        match self.to_writer.try_send((dir.to_path_buf(), text)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                problem = Some(format!(
                    "the metrics file in {} is still being written since an earlier pass",
                    dir.display()
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                problem = Some("the metrics writer stopped".to_string());
            }
        }
        match problem {
            Some(p) if self.reported.as_ref() != Some(&p) => {
                self.reported = Some(p.clone());
                Some(p)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, SessionState};

    fn session(state: &str, class: Option<&str>) -> Session {
        Session {
            id: SessionId::new("1"),
            state: SessionState::parse(state),
            class: class.map(str::to_string),
            ..Session::default()
        }
    }

    #[test]
    fn the_text_follows_the_format_with_escaped_labels() {
        let sessions = [
            session("active", Some("user")),
            session("active", Some("user")),
            session("closing", None),
            session("we\"ird\n\u{1b}[0m", Some("user")),
        ];
        let mut counters = Counters::default();
        counters.count(Counted::Warned, "students", Reason::Idle);
        counters.count(Counted::Warned, "students", Reason::Idle);
        counters.count(Counted::of(Action::LogOff, true), "students", Reason::Idle);
        counters.count(Counted::of(Action::Disconnect, false), "rdp", Reason::Idle);
        counters.count(Counted::Cancelled, "a\\b\"c", Reason::MaxAge);
        let text = render(
            &PassFigures {
                sessions: &sessions,
                warned: 1,
                took: Duration::from_millis(1500),
                at: Timestamp::from_second(1_800_000_000).expect("t"),
            },
            &counters,
        );
        for want in [
            "# TYPE logoff_sessions gauge\n",
            "logoff_sessions{state=\"active\",class=\"user\"} 2\n",
            "logoff_sessions{state=\"closing\",class=\"unknown\"} 1\n",
            "logoff_sessions{state=\"we\\\"ird\\n[0m\",class=\"user\"} 1\n",
            "logoff_sessions_warned 1\n",
            "# TYPE logoff_warnings_total counter\n",
            "logoff_warnings_total{rule=\"students\",reason=\"idle\"} 2\n",
            "logoff_logoffs_total{rule=\"students\",reason=\"idle\"} 1\n",
            "logoff_failures_total{rule=\"rdp\",reason=\"idle\",action=\"disconnect\"} 1\n",
            "logoff_cancellations_total{rule=\"a\\\\b\\\"c\",reason=\"max-age\"} 1\n",
            "# TYPE logoff_disconnects_total counter\n",
            "logoff_pass_duration_seconds 1.5\n",
            "logoff_last_pass_timestamp_seconds 1800000000\n",
        ] {
            assert!(text.contains(want), "no {want:?} in\n{text}");
        }
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn counters_survive_a_round_trip_and_say_when_they_moved() {
        let mut counters = Counters::default();
        assert!(!counters.take_changed());
        counters.count(Counted::Disconnected, "rdp", Reason::Idle);
        assert!(counters.take_changed());
        assert!(!counters.take_changed());
        let back = Counters::from_json(&counters.to_json().expect("json")).expect("parse");
        assert_eq!(back.counts, counters.counts);
    }

    #[test]
    fn the_file_is_written_whole_and_never_through_a_link() {
        let base = std::env::temp_dir().join(format!("logoff-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real")).expect("dir");
        assert!(!write(&base.join("missing"), "x 1\n").expect("absent is off"));
        assert!(write(&base.join("real"), "x 1\n").expect("write"));
        assert_eq!(
            std::fs::read_to_string(base.join("real").join(FILE)).expect("read"),
            "x 1\n"
        );
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).expect("symlink");
        assert!(write(&base.join("link"), "y 1\n").is_err());
        std::fs::create_dir_all(base.join("real/sub")).expect("dir");
        assert!(write(&base.join("link/sub"), "y 1\n").is_err());
        assert!(!base.join("real/sub").join(FILE).exists());
        withdraw(&base.join("real"));
        assert!(!base.join("real").join(FILE).exists());
        let _ = std::fs::remove_dir_all(&base);
    }
}
