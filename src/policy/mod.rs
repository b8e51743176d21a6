//! Session time limits as policy (`/etc/logoff/policy.toml`): rules, each with a match, its
//! exemptions and its limits — what Windows' Remote Desktop Session Host sets as "time
//! limits" — read, checked and evaluated here; `logoffd` ([`crate::daemon`]) enforces them.
//!
//! A policy is data: [`load`] parses it (errors name the line and column), [`eval`] says for
//! each session which rule applies and when it would warn and act. Nothing here touches the
//! system but the name service (a session's user's groups).

pub(crate) mod allowance;
pub(crate) mod eval;
pub(crate) mod hours;
mod parse;
pub(crate) mod rule;
pub(crate) mod template;
pub(crate) mod time_limit;

use std::path::Path;
use std::time::Duration;

pub use eval::{Limit, Reason, Remembered, RuleId, Verdict};
pub use rule::{Exempt, Match};

use crate::model::{Session, Uid};
use crate::system::files::{self, Expect, Owner};

/// The policy file, where nothing else is said.
pub const DEFAULT_PATH: &str = "/etc/logoff/policy.toml";

/// Where logoffd's metrics go, where nothing else is said: the textfile directory of
/// Debian's `prometheus-node-exporter` (used only if it exists).
pub const DEFAULT_METRICS_DIR: &str = "/var/lib/prometheus/node-exporter";

/// What logoffd does when a limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforcement {
    /// Warns, then logs off.
    #[default]
    Enforce,
    /// Logs what it would do; warns nobody, touches nothing.
    DryRun,
    /// Warns, and logs that it would log off; touches nothing.
    WarnOnly,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::DryRun => "dry-run",
            Enforcement::WarnOnly => "warn-only",
        }
    }
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub mode: Enforcement,
    /// How often sessions are looked at when no deadline is due sooner (new sessions on
    /// hosts without logind's signals, sessions that lose their terminal).
    pub scan_interval: Duration,
    /// The node exporter's textfile directory, where logoffd writes its metrics if it
    /// exists (`metrics_dir`; `""`: none).
    pub metrics_dir: Option<std::path::PathBuf>,
    /// In order: the first whose match takes a session applies to it.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub matches: Match,
    pub exempt: Exempt,
    /// Active but idle this long.
    pub idle: Option<Duration>,
    /// This long since nothing connects it ([`crate::presence`]).
    pub disconnected: Option<Duration>,
    /// This long since logon.
    pub max_age: Option<Duration>,
    /// Lead times of the warnings, longest first.
    pub warn: Vec<Duration>,
    /// The admin's text, with its placeholders (`{user}`, `{left}`, ...: [`template`]).
    pub message: Option<template::Template>,
    /// From SIGTERM to SIGKILL.
    pub timeout: Duration,
    /// What counts as activity for the idle limit (`activity`): input by default.
    pub activity: Vec<Counts>,
    /// With `cpu` counted: the share of one CPU above which the session is busy.
    pub busy_cpu: f64,
    /// What the idle, hours and sessions limits do (`action`): log off (default), or
    /// disconnect — the disconnected, max-age and allowance limits always log off.
    pub action: crate::logoff::Action,
    /// Logon hours: outside them (at the end of a window) the session ends.
    pub hours: Option<hours::Hours>,
    /// So much session time a day and/or week per user.
    pub allowance: Option<allowance::Allowance>,
    /// At most this many sessions per user; which go beyond it.
    pub max_sessions: Option<Cap>,
}

/// A rule's `max_sessions` and `sessions_go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub max: usize,
    pub go: Go,
}

/// Which of a user's sessions above a cap go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// The latest logons (the default: the sessions there already are kept, as Remote
    /// Desktop's single-session restriction keeps them).
    Newest,
    /// The earliest logons (the user's newest logins are what they use now).
    Oldest,
}

/// What a rule counts as activity (`activity = ["input", "output", "cpu", "inhibit"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// Input on a terminal, display or multiplexer client of the session (RDS's meaning).
    Input,
    /// Output on a terminal of the session (a build that prints).
    Output,
    /// Its processes used more CPU than `busy_cpu` since the last look.
    Cpu,
    /// One of its processes holds an idle lock (`systemd-inhibit --what=idle`).
    Inhibit,
}

impl Counts {
    pub const ALL: [Counts; 4] = [Counts::Input, Counts::Output, Counts::Cpu, Counts::Inhibit];

    pub fn as_str(self) -> &'static str {
        match self {
            Counts::Input => "input",
            Counts::Output => "output",
            Counts::Cpu => "cpu",
            Counts::Inhibit => "inhibit",
        }
    }
}

/// Where `activity` says nothing: input only.
pub const DEFAULT_ACTIVITY: [Counts; 1] = [Counts::Input];

/// Where `busy_cpu` says nothing: a tenth of one CPU.
pub const DEFAULT_BUSY_CPU: f64 = 0.1;

impl Policy {
    /// The users whose sessions need a look at their activity: those with a session a
    /// rule limits by idle or disconnected time, whose allowance counts active time only, or
    /// that disconnects (and so all of theirs: another session of the same user may be the
    /// one that uses it through tmux or screen).
    pub fn watched_users(&self, sessions: &[Session]) -> std::collections::HashSet<Uid> {
        let mut groups = rule::Groups::default();
        sessions
            .iter()
            .filter(|s| {
                self.rules
                    .iter()
                    .find(|r| r.matches.takes(s, &mut groups))
                    .is_some_and(|r| {
                        (r.idle.is_some()
                            || r.disconnected.is_some()
                            || r.action == crate::logoff::Action::Disconnect
                            || r.allowance
                                .as_ref()
                                .is_some_and(|a| a.counting == allowance::Counting::Active))
                            && r.matches.protects(s).is_none()
                            && r.exempt.exempts(s, &mut groups).is_none()
                    })
            })
            .filter_map(|s| s.uid)
            .collect()
    }

    /// Which costlier sources of activity the rules count.
    pub fn sources(&self) -> crate::backend::Sources {
        let counts = |c: Counts| self.rules.iter().any(|r| r.activity.contains(&c));
        crate::backend::Sources {
            cpu: counts(Counts::Cpu),
            inhibitors: counts(Counts::Inhibit),
        }
    }
}

/// How long programs get between SIGTERM and SIGKILL where a rule says nothing (as
/// `logoff --timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often sessions are looked at where the policy says nothing.
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(60);

/// A policy that could not be read or is not valid: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line and column, where the error has a place in the text.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some((line, col)) => write!(f, "line {line}, column {col}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads and checks the policy in `path`: a regular file (not through a symbolic link) of at
/// most 1 MiB of UTF-8 text, owned by root (or whoever runs logoffd) and writable by nobody
/// else — it decides whose
/// sessions end, so it is refused as sshd refuses a key file others could change.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let fail = |message: String| PolicyError {
        at: None,
        message: format!("cannot use it: {message}"),
    };
    let text = read_policy_file(path).map_err(fail)?;
    parse::parse(&text)
}

fn read_policy_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    const MAX: u64 = 1024 * 1024;
    let expect = Expect {
        kind: rustix::fs::FileType::RegularFile,
        owner: Owner::RootOrMe,
        private_writes: true,
        max_size: MAX,
    };
    let file = files::open_verified(path, &expect).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX {
        return Err("it is larger than 1 MiB".into());
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".into())
}

/// Parses and checks a policy's text.
pub fn from_text(text: &str) -> Result<Policy, PolicyError> {
    parse::parse(text)
}

impl Rule {
    /// The rule in one line, for `--check` and the log: `remote-idle: remote sessions;
    /// exempt alice, group admins; idle 2h, max age 24h; warn 10m, 1m`.
    pub fn describe(&self) -> String {
        let d = crate::duration::display;
        let mut limits = Vec::new();
        if let Some(x) = self.idle {
            limits.push(format!("idle {}", d(x)));
        }
        if let Some(x) = self.disconnected {
            limits.push(format!("disconnected {}", d(x)));
        }
        if let Some(x) = self.max_age {
            limits.push(format!("max age {}", d(x)));
        }
        let mut parts = vec![self.matches.describe()];
        let exempt = self.exempt.describe();
        if !exempt.is_empty() {
            parts.push(format!("exempt {exempt}"));
        }
        parts.push(limits.join(", "));
        if !self.warn.is_empty() {
            let w: Vec<String> = self.warn.iter().map(|x| d(*x)).collect();
            parts.push(format!("warn {}", w.join(", ")));
        }
        format!("{}: {}", self.name, parts.join("; "))
    }
}
