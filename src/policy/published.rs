//! The deadlines a running logoffd publishes for `logoff --list` (its LOGOFF AT column, and
//! `time_limit` in JSON): one [`Published`] per session, in `deadlines.json` in the state
//! directory, with the identity of the daemon that wrote it.
//!
//! The file is trusted only when it is a regular file of root's that nobody else may write,
//! and the process that wrote it still runs: its PID, its start time and this boot's ID
//! are in the file, and are checked through a pidfd opened before they are read. A process
//! a user names `logoffd` is not that process.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use jiff::Timestamp;
use rustix::fs::FileType;
use serde::{Deserialize, Serialize};

use super::eval::Reason;
use crate::model::{Pid, SessionKey, boot_id};
use crate::system::files::{self, Expect, Owner};
use crate::system::handle::Handle;
use crate::system::process::Proc;

/// The state directory, where nothing else is said.
pub const DEFAULT_DIR: &str = "/var/lib/logoff";

/// Names another state directory to `logoff --list` (for tests and odd setups).
pub const DIR_ENV: &str = "LOGOFF_STATE_DIR";

/// The file's name in the state directory.
pub const FILE: &str = "deadlines.json";

/// The largest file read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The deadline one session is under, as `logoff --list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Published {
    pub rule: String,
    pub reason: Reason,
    /// When the session is logged off.
    pub logoff_at: Timestamp,
    /// When the warnings go out.
    pub warn_at: Vec<Timestamp>,
    /// Where the rule gives an allowance: what is left of the user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<PublishedAllowance>,
}

/// What is left of a user's allowance, as `logoff --list` shows it: while it is being used,
/// when it runs out; else how much is left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedAllowance {
    /// The allowance (`2h a day`).
    pub of: String,
    /// Left, in seconds, when it is not being used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_seconds: Option<u64>,
    /// When it runs out, while it is being used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
}

impl PublishedAllowance {
    /// What is left at `now`.
    pub fn left(&self, now: Timestamp) -> Option<std::time::Duration> {
        match (self.ends_at, self.left_seconds) {
            (Some(end), _) => Some(crate::time::between(now, end)),
            (None, Some(s)) => Some(std::time::Duration::from_secs(s)),
            (None, None) => None,
        }
    }
}

impl Published {
    /// Its times, in logoffd's steady time, as the wall clock says them (`now`: the offset).
    pub fn put_in_wall_time(&mut self, now: crate::time::Now) {
        self.logoff_at = now.wall_of(self.logoff_at);
        for w in &mut self.warn_at {
            *w = now.wall_of(*w);
        }
        if let Some(end) = self.allowance.as_mut().and_then(|a| a.ends_at.as_mut()) {
            *end = now.wall_of(*end);
        }
    }
}

/// Which process wrote the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Writer {
    pub pid: i32,
    /// Its start time, in clock ticks since boot.
    pub start: u64,
    pub boot: String,
}

impl Writer {
    /// This process.
    pub fn me() -> Writer {
        let me = Proc::myself();
        Writer {
            pid: me.pid().as_raw(),
            start: me.try_stat().ok().flatten().map_or(0, |s| s.starttime),
            boot: boot_id().to_string(),
        }
    }

    /// Whether that very process still runs (checked through a pidfd: a PID used again
    /// has another start time).
    fn runs(&self) -> bool {
        if self.boot != boot_id() {
            return false;
        }
        let proc = Proc::new(Pid::from_raw(self.pid));
        let start = self.start;
        let handle = Handle::open(&proc, |p| {
            Ok(p.try_stat()?.is_some_and(|s| s.starttime == start))
        });
        matches!(handle, Ok(Some(h)) if !h.has_exited())
    }
}

/// What logoffd publishes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Deadlines {
    pub writer: Writer,
    /// `enforce`, `dry-run`, `warn-only`.
    pub mode: String,
    /// By session key.
    pub sessions: BTreeMap<String, Published>,
}

impl Deadlines {
    /// The deadline of the session of `key`, if it is under one.
    pub fn of(&self, key: &SessionKey) -> Option<&Published> {
        self.sessions.get(&key.to_string())
    }

    /// The deadlines a running logoffd publishes in the state directory (`$LOGOFF_STATE_DIR`,
    /// else [`DEFAULT_DIR`]); `None` when no logoffd runs or the file is not to be trusted.
    pub fn published() -> Option<Deadlines> {
        let dir =
            std::env::var_os(DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
        let expect = Expect {
            kind: FileType::RegularFile,
            owner: Owner::RootOrMe,
            private_writes: true,
            max_size: MAX_FILE,
        };
        let file = files::open_verified(&dir.join(FILE), &expect).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE).read_to_end(&mut bytes).ok()?;
        let d: Deadlines = serde_json::from_slice(&bytes).ok()?;
        d.writer.runs().then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 17, item 5): `deadlines.json` was trusted while any process whose
    /// command name was `logoffd` held the PID in it. It is trusted while the process that
    /// wrote it runs: same PID, same start time, same boot.
    #[test]
    fn only_the_process_that_wrote_it_vouches_for_it() {
        let me = Writer::me();
        assert!(me.runs());
        assert!(
            !Writer {
                start: me.start + 1,
                ..me.clone()
            }
            .runs()
        );
        assert!(
            !Writer {
                boot: "another boot".into(),
                ..me.clone()
            }
            .runs()
        );
    }
}
