//! What logoffd keeps in its state directory (`/var/lib/logoff`):
//!
//! - `clocks.json` (0600): since when each disconnected session has been disconnected, so a
//!   restart does not reset anyone's limit. Keyed by session ID and logon time.
//! - `deadlines.json` (0644): the deadline each session is under, for `logoff --list`,
//!   with logoffd's PID (a file left by a daemon that has stopped is ignored).
//!
//! Both are written whole to a temporary file, synced and renamed over the old one. The
//! directory must be root's and writable by nobody else; logoff reads `deadlines.json` only
//! if it is root's, not writable by others, and its PID is a running logoffd.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rustix::fs::{FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::model::Session;
use crate::policy::{Verdict, eval};

/// The state directory, where nothing else is said.
pub const DEFAULT_DIR: &str = "/var/lib/logoff";

/// Names another state directory to `logoff --list` (for tests and odd setups).
pub const DIR_ENV: &str = "LOGOFF_STATE_DIR";

const CLOCKS: &str = "clocks.json";
const DEADLINES: &str = "deadlines.json";

/// The largest state file read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The state directory, checked (made if missing).
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (or makes, mode 0755) `dir`: it must be a directory of root's (or of whoever
    /// runs logoffd), writable by nobody else.
    pub fn open(dir: &Path) -> Result<StateDir, String> {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                let _ = rustix::fs::chmod(dir, Mode::from_raw_mode(0o755));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot make {}: {e}", dir.display())),
        }
        let st = rustix::fs::lstat(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let me = rustix::process::geteuid().as_raw();
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if (st.st_uid != 0 && st.st_uid != me) || st.st_mode & 0o022 != 0 {
            return Err(format!(
                "{} must be root's and writable by nobody else (owner {}, mode {:o})",
                dir.display(),
                st.st_uid,
                st.st_mode & 0o777
            ));
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` to `name` atomically: a temporary file, synced, renamed over it.
    fn write(&self, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
        let tmp = self.path(&format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let fd = rustix::fs::open(
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.path(name))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Reads a state file: a regular file (not through a last link), of root's, at most
/// [`MAX_FILE`] bytes. `None` when it is missing or not to be trusted.
fn read_trusted(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let me = rustix::process::geteuid().as_raw();
    let trusted = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && (st.st_uid == 0 || st.st_uid == me)
        && st.st_mode & 0o022 == 0;
    if !trusted {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_FILE)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Since when each disconnected session has been disconnected.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Clocks {
    disconnected_since: BTreeMap<String, Timestamp>,
}

impl Clocks {
    /// The clocks kept in `dir` (none if there are none, or the file is unreadable: said).
    pub fn load(dir: &StateDir) -> (Clocks, Option<String>) {
        let path = dir.path(CLOCKS);
        if !path.exists() {
            return (Clocks::default(), None);
        }
        match read_trusted(&path).map(|b| serde_json::from_slice::<Clocks>(&b)) {
            Some(Ok(c)) => (c, None),
            Some(Err(e)) => (
                Clocks::default(),
                Some(format!(
                    "{} is damaged ({e}); clocks start again",
                    path.display()
                )),
            ),
            None => (
                Clocks::default(),
                Some(format!(
                    "{} is not a regular file of root's that only root may write; clocks \
                     start again",
                    path.display()
                )),
            ),
        }
    }

    /// Since when `s` has been disconnected, as far as the clocks know.
    pub fn since(&self, s: &Session) -> Option<Timestamp> {
        self.disconnected_since.get(&eval::key(s)).copied()
    }

    /// Starts the clock of each newly disconnected session at `now`, and drops those of
    /// sessions that are connected again or gone. Whether anything changed.
    pub fn update(&mut self, sessions: &[Session], now: Timestamp) -> bool {
        let before = self.disconnected_since.len();
        let mut changed = false;
        let mut keep = BTreeMap::new();
        for s in sessions.iter().filter(|s| eval::is_disconnected(s)) {
            let key = eval::key(s);
            let since = match self.disconnected_since.get(&key) {
                Some(t) => *t,
                None => {
                    changed = true;
                    now
                }
            };
            keep.insert(key, since);
        }
        changed |= keep.len() != before;
        self.disconnected_since = keep;
        changed
    }

    pub fn save(&self, dir: &StateDir) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        dir.write(CLOCKS, &bytes, 0o600)
    }
}

/// The deadline one session is under, as `logoff --list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Published {
    pub rule: String,
    pub reason: String,
    pub acts_at: Timestamp,
    pub warn_at: Vec<Timestamp>,
}

/// What logoffd publishes for `logoff --list`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Deadlines {
    pub pid: i32,
    pub mode: String,
    /// By session key (ID and logon time).
    pub sessions: BTreeMap<String, Published>,
}

impl Deadlines {
    pub fn from_verdicts(mode: &str, sessions: &[Session], verdicts: &[Verdict]) -> Deadlines {
        let mut out = Deadlines {
            pid: std::process::id() as i32,
            mode: mode.to_string(),
            sessions: BTreeMap::new(),
        };
        for (s, v) in sessions.iter().zip(verdicts) {
            if let Verdict::Limited { rule, deadline } = v {
                out.sessions.insert(
                    eval::key(s),
                    Published {
                        rule: rule.clone(),
                        reason: deadline.reason.as_str().to_string(),
                        acts_at: deadline.acts_at,
                        warn_at: deadline.warnings.iter().map(|(_, at)| *at).collect(),
                    },
                );
            }
        }
        out
    }

    pub fn save(&self, dir: &StateDir) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        dir.write(DEADLINES, &bytes, 0o644)
    }

    /// Removes the published deadlines (logoffd stops).
    pub fn withdraw(dir: &StateDir) {
        let _ = std::fs::remove_file(dir.path(DEADLINES));
    }

    /// The deadlines a running logoffd publishes in the state directory (`$LOGOFF_STATE_DIR`,
    /// else [`DEFAULT_DIR`]); `None` when no logoffd runs or the file is not to be trusted.
    pub fn published() -> Option<Deadlines> {
        let dir =
            std::env::var_os(DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
        let bytes = read_trusted(&dir.join(DEADLINES))?;
        let d: Deadlines = serde_json::from_slice(&bytes).ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", d.pid)).ok()?;
        (comm.trim_end() == "logoffd").then_some(d)
    }

    /// The deadline of `s`, if it is under one.
    pub fn of(&self, s: &Session) -> Option<&Published> {
        self.sessions.get(&eval::key(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    fn session(id: &str, state: &str) -> Session {
        Session {
            id: SessionId::new(id),
            state: state.into(),
            logon_time: Some(Timestamp::from_second(1_800_000_000).expect("t")),
            ..Session::default()
        }
    }

    #[test]
    fn clocks_start_once_survive_a_reload_and_stop_on_reconnection() {
        let dir = std::env::temp_dir().join(format!("logoff-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).expect("state dir");
        let t0 = Timestamp::from_second(1_800_000_100).expect("t");
        let t1 = Timestamp::from_second(1_800_000_200).expect("t");
        let mut clocks = Clocks::default();
        let gone = [session("1", "disconnected"), session("2", "active")];
        assert!(clocks.update(&gone, t0));
        assert!(
            !clocks.update(&gone, t1),
            "a running clock is not restarted"
        );
        clocks.save(&state).expect("save");
        let (loaded, problem) = Clocks::load(&state);
        assert_eq!(problem, None);
        assert_eq!(loaded.since(&gone[0]), Some(t0));
        assert_eq!(loaded.since(&gone[1]), None);
        let mut loaded = loaded;
        assert!(loaded.update(&[session("1", "active")], t1));
        assert_eq!(loaded.since(&gone[0]), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
