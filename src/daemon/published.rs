//! The deadlines a running logoffd publishes for `logoff --list` (its LOGOFF AT column, and
//! `time_limit` in JSON): one [`TimeLimit`] per session, in `deadlines.json` in the state
//! directory, with the identity of the daemon that wrote it.
//!
//! The file is trusted only when it is a regular file of root's that nobody else may write,
//! and the process that wrote it still runs: its PID, its start time and this boot's ID
//! are in the file, and are checked through a pidfd opened before they are read. A process
//! a user names `logoffd` is not that process.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use rustix::fs::FileType;
use serde::{Deserialize, Serialize};

use crate::model::{Pid, SessionKey, boot_id};
use crate::policy::time_limit::TimeLimit;
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
    pub sessions: BTreeMap<String, TimeLimit>,
}

impl Deadlines {
    /// The deadline of the session of `key`, if it is under one.
    pub fn of(&self, key: &SessionKey) -> Option<&TimeLimit> {
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
