//! What logoffd keeps in its state directory (`/var/lib/logoff`):
//!
//! - `clocks.json` (0600): what logoffd remembers of each session beyond a listing
//!   ([`Memory`]): since when it has been disconnected, and the earliest logon time seen for
//!   it — so that neither a restart nor a user's replacing their oldest process resets
//!   anyone's limit. Keyed by [`crate::model::SessionKey`] (boot ID and session ID).
//! - `deadlines.json` (0644): the deadline each session is under, for `logoff --list`
//!   ([`super::published`]).
//! - `counters.json` (0644): the counts of warnings, cancellations, logoffs, disconnects and
//!   failures by rule and reason, for the metrics ([`super::metrics`]).
//!
//! Each is written whole to a temporary file, synced and renamed over the old one. The
//! directory must be root's and writable by nobody else.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rustix::fs::{FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::metrics::Counters;
use super::published::{self, Deadlines};
use crate::error::{Error, Kind, Result};
use crate::model::Session;
use crate::policy::eval::{CpuRate, Remembered};
use crate::presence;
use crate::system::files::{self, Expect, Owner};
use crate::time;

mod allowances;

/// The state directory, where nothing else is said.
pub use published::DEFAULT_DIR;

const CLOCKS: &str = "clocks.json";
const COUNTERS: &str = "counters.json";

/// The largest state file read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The state directory, checked (made if missing).
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (or makes, mode 0755) `dir`: it must be a directory of root's (or of whoever
    /// runs logoffd), writable by nobody else.
    pub fn open(dir: &Path) -> Result<StateDir> {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                let _ = rustix::fs::chmod(dir, Mode::from_raw_mode(0o755));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::io(
                    Kind::System,
                    format!("cannot make {}", dir.display()),
                    e,
                ));
            }
        }
        let expect = Expect {
            kind: FileType::Directory,
            owner: Owner::RootOrMe,
            private_writes: true,
            max_size: 0,
        };
        files::open_verified(dir, &expect).map_err(|e| {
            Error::io(
                Kind::System,
                format!(
                    "{} must be root's and writable by nobody else",
                    dir.display()
                ),
                e,
            )
        })?;
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

    /// Reads a state file: a regular file of root's nobody else may write, at most
    /// [`MAX_FILE`] bytes. `Ok(None)` when it is missing.
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        let expect = Expect {
            kind: FileType::RegularFile,
            owner: Owner::RootOrMe,
            private_writes: true,
            max_size: MAX_FILE,
        };
        let file = match files::open_verified(&self.path(name), &expect) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// Publishes the deadlines for `logoff --list`.
    pub fn publish(&self, deadlines: &Deadlines) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(deadlines).map_err(std::io::Error::other)?;
        self.write(published::FILE, &bytes, 0o644)
    }

    /// The counters of what logoffd did, as kept (none if there are none, or the file is
    /// unusable: the second value says why).
    pub fn counters(&self) -> (Counters, Option<String>) {
        self.load(COUNTERS, "counters", Counters::from_json)
    }

    /// What state file `name` holds, parsed (the default where it is missing, or unusable:
    /// the second value says why; `what` start again).
    fn load<T: Default>(
        &self,
        name: &str,
        what: &str,
        parse: impl FnOnce(&[u8]) -> serde_json::Result<T>,
    ) -> (T, Option<String>) {
        let path = self.path(name).display().to_string();
        let problem = match self.read(name) {
            Ok(None) => return (T::default(), None),
            Ok(Some(bytes)) => match parse(&bytes) {
                Ok(t) => return (t, None),
                Err(e) => format!("{path} is damaged ({e})"),
            },
            Err(e) => format!("{path} cannot be used ({e})"),
        };
        (T::default(), Some(format!("{problem}; {what} start again")))
    }

    pub fn keep_counters(&self, counters: &Counters) -> std::io::Result<()> {
        let bytes = counters.to_json().map_err(std::io::Error::other)?;
        self.write(COUNTERS, &bytes, 0o644)
    }

    /// Removes the published deadlines (logoffd stops).
    pub fn withdraw(&self) {
        let _ = std::fs::remove_file(self.path(published::FILE));
    }
}

/// What logoffd remembers of sessions beyond a listing (see the module's doc).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    #[serde(default)]
    disconnected_since: BTreeMap<String, Timestamp>,
    #[serde(default)]
    first_logon: BTreeMap<String, Timestamp>,
    /// Whether each session's own login lasted when last seen, and when it was seen to end:
    /// input through a program of the session (mosh) after that moment connects it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    logins: BTreeMap<String, LoginSeen>,
    /// Where each session came from while something vouched for it (procfs: while the
    /// root process that opened it ran): lent once that has ended, so that an abandoned
    /// ssh login stays remote for rules (`remote = true`, `from`) to the end.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    origins: BTreeMap<String, OriginSeen>,
    /// What each user has used of each rule's allowance: by rule name, then uid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    allowances: BTreeMap<String, BTreeMap<u32, allowances::Account>>,
    /// Each session's CPU time at a look, and its rate since the look before (kept where a
    /// rule counts CPU time: `logoffd --check` and a daemon started again measure from it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cpu: BTreeMap<String, CpuSeen>,
}

/// A session's own login, as logoffd saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LoginSeen {
    Lasts,
    /// Seen ended, first at this moment (it ended then or before: input through a program
    /// of the session after it connects the session; none after it is nothing connecting).
    /// Where it had ended before logoffd first saw the session, the moment the first
    /// terminal a program of the session serves was made, as that look found it.
    EndedAt(Timestamp),
}

impl LoginSeen {
    /// What is seen now of `s` (its login lasting as [`presence::login_lasts`] says), after
    /// `before`. A login already ended at the first look ended no later than the terminals
    /// its programs serve were made (mosh-server's, made while its one-second login ran):
    /// what was typed into them before that look is not lost (a user who typed, then only
    /// watched, stays connected). Their change time as first seen is kept: a warning or
    /// `mesg` moves it later.
    fn next(before: Option<LoginSeen>, s: &Session, now: Timestamp) -> Option<LoginSeen> {
        match (before, presence::login_lasts(s)) {
            (_, Some(true)) => Some(LoginSeen::Lasts),
            (Some(LoginSeen::Lasts), Some(false)) => Some(LoginSeen::EndedAt(now)),
            (None, Some(false)) => {
                let made = s
                    .activity
                    .terminals
                    .iter()
                    .filter(|t| matches!(t.served, crate::model::Served::Program { .. }))
                    .filter_map(|t| t.made)
                    .min();
                // Input strictly after it was made: presence allows a seen end the kernel's
                // grain on terminal times, which a terminal's making needs not (its times
                // all start at that moment).
                Some(LoginSeen::EndedAt(made.map_or(now, |m| {
                    crate::time::add(m.min(now), presence::TERMINAL_TIMES_GRAIN)
                })))
            }
            (before, _) => before,
        }
    }
}

/// Where a session came from, as vouched for when logoffd saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OriginSeen {
    remote: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
}

/// A session's CPU time as last read, and how busy it was before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct CpuSeen {
    at: Timestamp,
    total: Duration,
    rate: Option<CpuRate>,
}

/// The shortest time over which a CPU rate is measured (passes come closer together than
/// this while a warning is out).
const CPU_WINDOW: Duration = Duration::from_secs(5);

impl Memory {
    /// What is kept in `dir` (nothing if there is nothing, or the file is unusable: the
    /// second value says why).
    pub fn load(dir: &StateDir) -> (Memory, Option<String>) {
        dir.load(CLOCKS, "clocks", |bytes| serde_json::from_slice(bytes))
    }

    /// Writes it to `dir`, its times (steady time) as the wall clock says them (`offset`:
    /// wall less steady), as a logoffd started again — whose steady time begins at the wall
    /// clock's — reads them.
    pub fn save(&self, dir: &StateDir, offset: jiff::SignedDuration) -> std::io::Result<()> {
        let bytes =
            serde_json::to_vec_pretty(&self.shifted(offset)).map_err(std::io::Error::other)?;
        dir.write(CLOCKS, &bytes, 0o600)
    }

    /// What is remembered of session `s`.
    pub fn of(&self, s: &Session) -> Remembered {
        let key = s.key().to_string();
        Remembered {
            disconnected_since: self.disconnected_since.get(&key).copied(),
            first_logon: self.first_logon.get(&key).copied(),
            cpu: self.cpu.get(&key).and_then(|c| c.rate),
            allowances: self.usage_of(s.uid),
        }
    }

    /// The same, every time moved by `by`.
    fn shifted(&self, by: jiff::SignedDuration) -> Memory {
        let mut m = self.clone();
        if by.is_zero() {
            return m;
        }
        let shift = |t: &mut Timestamp| *t = t.checked_add(by).unwrap_or(*t);
        m.disconnected_since.values_mut().for_each(shift);
        m.first_logon.values_mut().for_each(shift);
        for seen in m.logins.values_mut() {
            if let LoginSeen::EndedAt(t) = seen {
                shift(t);
            }
        }
        for c in m.cpu.values_mut() {
            shift(&mut c.at);
        }
        for a in m.allowances.values_mut().flat_map(BTreeMap::values_mut) {
            shift(&mut a.at);
        }
        m
    }

    /// Gives each session what is remembered of its login's end
    /// ([`crate::model::Activity::login_ended`]).
    pub fn lend(&self, sessions: &mut [Session]) {
        for s in sessions {
            if s.origin_unknown
                && let Some(o) = self.origins.get(&s.key().to_string())
            {
                s.origin_unknown = false;
                s.remote = o.remote;
                s.remote_host.clone_from(&o.host);
            }
            s.activity.login_ended = match self.logins.get(&s.key().to_string()) {
                Some(LoginSeen::EndedAt(at)) => Some(*at),
                _ => None,
            };
        }
    }

    /// Takes in a listing at `now`: when each session's login is seen to end (lent to the
    /// sessions: [`Memory::lend`]), the clock of each newly disconnected session starts,
    /// those of sessions connected again stop, the earliest logon time seen is kept, and
    /// sessions gone are forgotten (their keys never come back). Whether anything changed.
    pub fn observe(&mut self, sessions: &mut [Session], now: Timestamp) -> bool {
        let logins: BTreeMap<String, LoginSeen> = sessions
            .iter()
            .filter_map(|s| {
                let key = s.key().to_string();
                let before = self.logins.get(&key).copied();
                LoginSeen::next(before, s, now).map(|l| (key, l))
            })
            .collect();
        let origins: BTreeMap<String, OriginSeen> = sessions
            .iter()
            .filter_map(|s| {
                let key = s.key().to_string();
                let seen = if s.origin_unknown {
                    self.origins.get(&key).cloned()?
                } else {
                    OriginSeen {
                        remote: s.remote,
                        host: s.remote_host.clone(),
                    }
                };
                Some((key, seen))
            })
            .collect();
        let logins_changed = logins != self.logins || origins != self.origins;
        self.logins = logins;
        self.origins = origins;
        self.lend(sessions);
        let presences = presence::judge(sessions, now);
        let mut disconnected = BTreeMap::new();
        let mut logons = BTreeMap::new();
        for (s, p) in sessions.iter().zip(&presences) {
            let key = s.key().to_string();
            let running = self.disconnected_since.get(&key).copied();
            match p.is_connected() {
                Some(false) => {
                    disconnected.insert(key.clone(), running.unwrap_or(now));
                }
                // Not known this pass (a table that could not be read): a clock that runs
                // keeps running, none starts.
                None => {
                    if let Some(since) = running {
                        disconnected.insert(key.clone(), since);
                    }
                }
                Some(true) => {}
            }
            let seen = self.first_logon.get(&key).copied();
            if let Some(logon) = match (seen, s.logon_time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            } {
                logons.insert(key, logon);
            }
        }
        let before = std::mem::take(&mut self.cpu);
        self.cpu = before.clone();
        self.observe_cpu(sessions, now, CPU_WINDOW);
        let changed = logins_changed
            || disconnected != self.disconnected_since
            || logons != self.first_logon
            || self.cpu != before;
        self.disconnected_since = disconnected;
        self.first_logon = logons;
        changed
    }

    /// Takes in the sessions' CPU time only, with rates over as little as `window` (what
    /// `logoffd --check` measures over: it cannot wait as long as a daemon's passes).
    pub fn observe_cpu(&mut self, sessions: &[Session], now: Timestamp, window: Duration) {
        // A session listed but not read this time keeps its last reading.
        self.cpu = sessions
            .iter()
            .filter_map(|s| {
                let key = s.key().to_string();
                match s.activity.cpu {
                    Some(total) => {
                        let seen = self.cpu_seen(&key, total, now, window);
                        Some((key, seen))
                    }
                    None => self.cpu.get(&key).map(|seen| (key, *seen)),
                }
            })
            .collect();
    }

    /// A session's CPU reading at `now`, with its rate since the last one that is at least
    /// `window` old.
    fn cpu_seen(&self, key: &str, total: Duration, now: Timestamp, window: Duration) -> CpuSeen {
        match self.cpu.get(key) {
            Some(last) if time::between(last.at, now) < window => *last,
            Some(last) => CpuSeen {
                at: now,
                total,
                rate: Some(CpuRate {
                    used: total.saturating_sub(last.total),
                    over: time::between(last.at, now),
                }),
            },
            None => CpuSeen {
                at: now,
                total,
                rate: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    fn session(id: &str, state: &str, logon: i64) -> Session {
        Session {
            id: SessionId::new(id),
            state: state.into(),
            logon_time: Some(Timestamp::from_second(1_800_000_000 + logon).expect("t")),
            login: crate::model::Login::Logind(crate::model::Origin::Ssh),
            activity: crate::model::Activity::typed_at(None),
            ..Session::default()
        }
    }

    #[test]
    fn clocks_start_once_survive_a_restart_and_stop_on_reconnection() {
        let dir = std::env::temp_dir().join(format!("logoff-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).expect("state dir");
        let t0 = Timestamp::from_second(1_800_000_100).expect("t");
        let t1 = Timestamp::from_second(1_800_000_200).expect("t");
        let mut memory = Memory::default();
        let mut gone = [session("1", "disconnected", 0), session("2", "active", 0)];
        assert!(memory.observe(&mut gone, t0));
        assert!(
            !memory.observe(&mut gone, t1),
            "a running clock is not restarted"
        );
        memory
            .save(&state, jiff::SignedDuration::ZERO)
            .expect("save");
        let (loaded, problem) = Memory::load(&state);
        assert_eq!(problem, None);
        assert_eq!(loaded.of(&gone[0]).disconnected_since, Some(t0));
        assert_eq!(loaded.of(&gone[1]).disconnected_since, None);
        let mut loaded = loaded;
        assert!(loaded.observe(&mut [session("1", "active", 0)], t1));
        assert_eq!(loaded.of(&gone[0]).disconnected_since, None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 25: the end of a login is remembered (the first pass that sees it ended) and
    /// lent to the session. Regression (hostile read): one already ended when first seen had
    /// no known end, and a program's terminal nobody typed into left it unknown for ever.
    #[test]
    fn a_login_seen_to_end_is_remembered_and_lent() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let mut memory = Memory::default();
        let mut s = [session("1", "active", 0), session("2", "closing", 0)];
        memory.observe(&mut s, t(0));
        assert_eq!(s[0].activity.login_ended, None);
        s[0].state = "closing".into();
        assert!(memory.observe(&mut s, t(10)));
        assert_eq!(s[0].activity.login_ended, Some(t(10)), "seen to end");
        assert_eq!(
            s[1].activity.login_ended,
            Some(t(0)),
            "ended before it was seen: since first seen so"
        );
        memory.observe(&mut s, t(20));
        assert_eq!(s[0].activity.login_ended, Some(t(10)), "the moment stays");
        let restarted: Memory =
            serde_json::from_slice(&serde_json::to_vec(&memory).expect("saved")).expect("loaded");
        let mut again = [session("1", "closing", 0)];
        restarted.lend(&mut again);
        assert_eq!(
            again[0].activity.login_ended,
            Some(t(10)),
            "kept across a restart"
        );
    }

    /// Regression (hostile read of issues 25-28): on procfs what vouches for where a session
    /// came from is the root process that opened it; once that ended, an abandoned ssh
    /// login looked local, and `remote = true` rules (a `disconnected` limit) never took it.
    /// Where it came from while that was known is remembered, across a restart, and lent.
    #[test]
    fn where_a_session_came_from_is_remembered_once_nothing_vouches_for_it() {
        let now = Timestamp::from_second(1_800_000_000).expect("t");
        let mut memory = Memory::default();
        let mut s = [session("1", "active", 0), session("2", "active", 0)];
        s[0].remote = true;
        s[0].remote_host = Some("192.0.2.9".into());
        s[1].origin_unknown = true;
        memory.observe(&mut s, now);
        assert!(s[1].origin_unknown, "never known: stays unknown");
        let restarted: Memory =
            serde_json::from_slice(&serde_json::to_vec(&memory).expect("saved")).expect("loaded");
        let mut later = [session("1", "closing", 0)];
        later[0].origin_unknown = true;
        restarted.lend(&mut later);
        assert!(!later[0].origin_unknown);
        assert!(later[0].remote);
        assert_eq!(later[0].remote_host.as_deref(), Some("192.0.2.9"));
    }

    /// Regression (hostile read of issues 25-28): a mosh login lasts a second, so logoffd
    /// nearly always first sees a mosh session with its login ended; that first look was
    /// taken for the end, and what was typed before it (then only watching `tail -f`)
    /// counted for nothing: disconnected while the client was attached. The end is then no
    /// later than mosh-server's terminal was made, as first seen (a warning written to the
    /// terminal later moves its change time, not the end).
    #[test]
    fn input_before_the_first_look_at_an_ended_login_connects_the_session() {
        use crate::model::{Pid, Served, TerminalSeen};
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let mut memory = Memory::default();
        let mut s = [session("1", "closing", 0)];
        let served = |made: i64| TerminalSeen {
            name: "pts/1".into(),
            input: Some(t(50)),
            output: Some(t(50)),
            made: Some(t(made)),
            controlling: true,
            served: Served::Program {
                pid: Pid::from_raw(4242),
                command: "mosh-server".into(),
            },
        };
        s[0].activity.terminals = vec![served(10)];
        memory.observe(&mut s, t(100));
        let grain = presence::TERMINAL_TIMES_GRAIN.as_secs().cast_signed();
        assert_eq!(s[0].activity.login_ended, Some(t(10 + grain)));
        let judged = |s: &[Session], now| presence::judge(s, now)[0].by().map(ToString::to_string);
        assert_eq!(judged(&s, t(100)).as_deref(), Some("input on pts/1"));
        // A warning written to it: its change time moves; the end stays.
        s[0].activity.terminals = vec![served(150)];
        memory.observe(&mut s, t(200));
        assert_eq!(s[0].activity.login_ended, Some(t(10 + grain)));
        assert_eq!(judged(&s, t(200)).as_deref(), Some("input on pts/1"));
        // Nothing typed since it was made: nothing connects it.
        let mut quiet = [session("2", "closing", 0)];
        quiet[0].activity.terminals = vec![TerminalSeen {
            input: Some(t(10)),
            ..served(10)
        }];
        memory.observe(&mut quiet, t(100));
        assert!(presence::judge(&quiet, t(100))[0].is_disconnected());
    }

    /// Issue 26: an allowance counts the user's time across sessions — two at once count
    /// once, one after another add up — survives a restart (what is saved is loaded), and
    /// counts at most `gap` of time logoffd did not see; a new day begins with nothing used.
    #[test]
    fn allowances_count_the_user_s_time_across_sessions_and_restarts() {
        let policy = crate::policy::from_text(
            "[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\nallowance = { day = \"1h\" }\n",
        )
        .expect("policy");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let user = |id: &str, logon: i64| {
            let mut s = session(id, "active", logon);
            s.uid = Some(crate::model::Uid::from_raw(1000));
            s
        };
        let gap = Duration::from_secs(120);
        let used =
            |m: &Memory, s: &Session| m.of(s).allowances.get("lab").map(|u| u.used.day.as_secs());
        let mut m = Memory::default();
        let a = user("1", 0);
        // First seen at t(10): counted from its logon.
        m.account(&policy, std::slice::from_ref(&a), t(10), gap);
        assert_eq!(used(&m, &a), Some(10));
        // A second session at once: the user's time, once.
        let b = user("2", 15);
        m.account(&policy, &[a.clone(), b.clone()], t(60), gap);
        assert_eq!(used(&m, &a), Some(60));
        // Both gone: nothing counts; later a third session.
        m.account(&policy, &[], t(100), gap);
        assert_eq!(used(&m, &a), Some(60));
        let c = user("3", 200);
        m.account(&policy, std::slice::from_ref(&c), t(230), gap);
        assert_eq!(
            used(&m, &c),
            Some(90),
            "counted from its logon, not from the last pass"
        );
        // A restart: what was saved is what is loaded.
        let loaded: Memory =
            serde_json::from_slice(&serde_json::to_vec(&m).expect("saved")).expect("loaded");
        let mut loaded = loaded;
        // Not seen for an hour (stopped): at most the gap counts.
        loaded.account(&policy, std::slice::from_ref(&c), t(3830), gap);
        assert_eq!(used(&loaded, &c), Some(210));
        // The next day (UTC midnight after t(0), which is 08:00): nothing used yet of it.
        let next_day = 16 * 3600 + 60;
        loaded.account(&policy, std::slice::from_ref(&c), t(next_day), gap);
        assert_eq!(used(&loaded, &c), Some(60), "only since the day began");
    }

    /// Regression (hostile read of issue 26): with `counts = "active"`, a session whose
    /// input nothing sees (`ssh -T`, sftp, VS Code Remote's server) never used the
    /// allowance, and a user who typed with their terminal's access time set back two
    /// minutes used none of it either.
    #[test]
    fn an_active_allowance_counts_what_is_not_known_idle() {
        let policy = crate::policy::from_text(
            "[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\n\
             allowance = { day = \"1h\", counts = \"active\" }\n",
        )
        .expect("policy");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let gap = Duration::from_secs(120);
        let used =
            |m: &Memory, s: &Session| m.of(s).allowances.get("lab").map(|u| u.used.day.as_secs());
        // No terminal: logind's hint dates from the logon, and says nothing of input.
        let mut blind = session("1", "active", 0);
        blind.uid = Some(crate::model::Uid::from_raw(1000));
        blind.activity = crate::model::Activity {
            hint: Some(crate::model::Hint {
                idle: Some(true),
                since: Some(t(0)),
            }),
            looked: crate::model::Looked::Yes,
            ..crate::model::Activity::default()
        };
        let mut m = Memory::default();
        for minute in 1..=180 {
            m.account(&policy, std::slice::from_ref(&blind), t(minute * 60), gap);
        }
        assert_eq!(used(&m, &blind), Some(3 * 3600), "three hours are counted");
        // Typed in all along, the access time always two minutes old (`touch -a`): the
        // kernel sets the change time to now each time.
        let mut typing = session("2", "active", 0);
        typing.uid = Some(crate::model::Uid::from_raw(1001));
        typing.tty = Some("pts/1".into());
        let mut m = Memory::default();
        for minute in 1..=120 {
            let now = minute * 60;
            typing.activity = crate::model::Activity {
                terminals: vec![crate::model::TerminalSeen {
                    name: "pts/1".into(),
                    input: Some(t(now - 120)),
                    output: Some(t(now - 120)),
                    made: Some(t(now - 1)),
                    controlling: true,
                    served: crate::model::Served::Outside,
                }],
                looked: crate::model::Looked::Yes,
                ..crate::model::Activity::default()
            };
            m.account(&policy, std::slice::from_ref(&typing), t(now), gap);
        }
        assert_eq!(
            used(&m, &typing),
            Some(2 * 3600),
            "two hours of typing are counted"
        );
    }

    /// Regression (hostile read of issues 25-28): an active-only allowance charged a pass's
    /// whole interval, or none of it, by the state at the pass: a user who typed all along
    /// but paused seventy seconds before each pass (their times are regular) used nothing.
    /// Known idle at a pass, they used the time up to a minute after their last input.
    #[test]
    fn a_pause_before_each_pass_gives_nobody_the_time_before_it() {
        let policy = crate::policy::from_text(
            "[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\n\
             allowance = { day = \"2h\", counts = \"active\" }\n",
        )
        .expect("policy");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let gap = Duration::from_secs(700);
        // Twelve passes five minutes apart; at each, the terminal's input and its node's
        // last change so long before it.
        let run = |input_ago: i64, changed_ago: Option<i64>| {
            let mut s = session("1", "active", 0);
            s.uid = Some(crate::model::Uid::from_raw(1000));
            s.tty = Some("pts/1".into());
            let mut m = Memory::default();
            for pass in 1..=12 {
                let now = pass * 300;
                s.activity = crate::model::Activity {
                    terminals: vec![crate::model::TerminalSeen {
                        name: "pts/1".into(),
                        input: Some(t(now - input_ago)),
                        output: Some(t(now - input_ago)),
                        made: Some(changed_ago.map_or(t(0), |c| t(now - c))),
                        controlling: true,
                        served: crate::model::Served::Outside,
                    }],
                    looked: crate::model::Looked::Yes,
                    ..crate::model::Activity::default()
                };
                m.account(&policy, std::slice::from_ref(&s), t(now), gap);
            }
            m.of(&s).allowances.get("lab").map(|u| u.used.day.as_secs())
        };
        assert_eq!(
            run(70, None),
            Some(11 * 290),
            "each interval but the first, to a minute after the last input"
        );
        // The access time set back an hour before each pass (its node changes then): the
        // same.
        assert_eq!(
            run(3600, Some(70)),
            Some(11 * 290),
            "set back: counted to its change"
        );
    }

    /// Regression (hostile read of issue 28's fixes): a connected session without a login
    /// terminal (`ssh -T`, VS Code Remote) that holds a pty nobody types into (`tmux new -d`)
    /// was known idle by that pty, and a graphical session by the idle hint its user may
    /// set; both used none of an active-only allowance. A disconnected session's idle
    /// terminal still says it is idle.
    #[test]
    fn an_active_allowance_is_not_fooled_by_a_side_terminal_or_the_hint() {
        let policy = crate::policy::from_text(
            "[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\n\
             allowance = { day = \"1h\", counts = \"active\" }\n",
        )
        .expect("policy");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let gap = Duration::from_secs(120);
        let used =
            |m: &Memory, s: &Session| m.of(s).allowances.get("lab").map(|u| u.used.day.as_secs());
        let side_pty = crate::model::TerminalSeen {
            name: "pts/5".into(),
            input: Some(t(0)),
            output: Some(t(0)),
            made: Some(t(0)),
            controlling: false,
            served: crate::model::Served::Multiplexer { kind: "tmux" },
        };
        let run = |s: &Session| {
            let mut m = Memory::default();
            for minute in 1..=60 {
                m.account(&policy, std::slice::from_ref(s), t(minute * 60), gap);
            }
            used(&m, s)
        };
        let mut side = session("1", "active", 0);
        side.uid = Some(crate::model::Uid::from_raw(1000));
        side.activity = crate::model::Activity {
            terminals: vec![side_pty.clone()],
            looked: crate::model::Looked::Yes,
            ..crate::model::Activity::default()
        };
        assert_eq!(
            run(&side),
            Some(3600),
            "connected by ssh, idle only on a side pty"
        );
        let mut desktop = session("2", "active", 0);
        desktop.uid = Some(crate::model::Uid::from_raw(1001));
        desktop.kind = Some("wayland".into());
        desktop.activity = crate::model::Activity {
            hint: Some(crate::model::Hint {
                idle: Some(true),
                since: Some(t(0)),
            }),
            looked: crate::model::Looked::Yes,
            ..crate::model::Activity::default()
        };
        assert_eq!(run(&desktop), Some(3600), "idle by the hint alone");
        let mut detached = side.clone();
        detached.uid = Some(crate::model::Uid::from_raw(1002));
        detached.state = "closing".into();
        assert_eq!(run(&detached), Some(0), "disconnected, its terminals idle");
    }

    /// Regression (hostile read of issue 25): a pass where whether a session is connected
    /// could not be told (the socket tables unread) restarted every disconnected clock.
    #[test]
    fn an_unknown_pass_keeps_a_disconnected_clock_running() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let mut memory = Memory::default();
        let mut gone = [session("1", "closing", 0)];
        memory.observe(&mut gone, t(0));
        assert_eq!(memory.of(&gone[0]).disconnected_since, Some(t(0)));
        gone[0].activity.looked = crate::model::Looked::Partly("unread".into());
        memory.observe(&mut gone, t(10));
        assert_eq!(memory.of(&gone[0]).disconnected_since, Some(t(0)), "kept");
        gone[0].activity.looked = crate::model::Looked::Yes;
        memory.observe(&mut gone, t(20));
        assert_eq!(memory.of(&gone[0]).disconnected_since, Some(t(0)));
        let mut fresh = [session("2", "closing", 0)];
        fresh[0].activity.looked = crate::model::Looked::Partly("unread".into());
        memory.observe(&mut fresh, t(30));
        assert_eq!(memory.of(&fresh[0]).disconnected_since, None, "none starts");
    }

    /// Regression (issue 17, item 3): the max-age and disconnected clocks restarted when a
    /// user replaced their session's oldest process (its logon time as listed moved on).
    #[test]
    fn the_earliest_logon_seen_is_kept() {
        let mut memory = Memory::default();
        let now = Timestamp::from_second(1_800_000_500).expect("t");
        memory.observe(&mut [session("1", "active", 0)], now);
        memory.observe(&mut [session("1", "active", 300)], now);
        let first = Timestamp::from_second(1_800_000_000).expect("t");
        assert_eq!(
            memory.of(&session("1", "active", 300)).first_logon,
            Some(first)
        );
        memory.observe(&mut [], now);
        assert_eq!(memory, Memory::default(), "a session gone is forgotten");
    }

    /// A CPU rate needs two readings at least [`CPU_WINDOW`] apart; the readings are kept, so
    /// that `logoffd --check` (another process) measures from the daemon's last one.
    #[test]
    fn cpu_rates_come_from_two_readings_and_are_kept() {
        let dir = std::env::temp_dir().join(format!("logoff-cpu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).expect("state dir");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        let mut s = session("1", "active", 0);
        s.activity.cpu = Some(Duration::from_secs(10));
        let mut memory = Memory::default();
        memory.observe(std::slice::from_mut(&mut s), t(0));
        assert_eq!(memory.of(&s).cpu, None, "one reading is no rate");
        s.activity.cpu = Some(Duration::from_secs(13));
        memory.observe(std::slice::from_mut(&mut s), t(2));
        assert_eq!(memory.of(&s).cpu, None, "too soon");
        assert!(memory.observe(std::slice::from_mut(&mut s), t(6)));
        let rate = memory.of(&s).cpu.expect("a rate");
        assert_eq!(
            (rate.used, rate.over),
            (Duration::from_secs(3), Duration::from_secs(6))
        );
        memory
            .save(&state, jiff::SignedDuration::ZERO)
            .expect("save");
        let (mut loaded, problem) = Memory::load(&state);
        assert_eq!(problem, None);
        assert_eq!(loaded.of(&s).cpu, Some(rate));
        s.activity.cpu = Some(Duration::from_secs(15));
        loaded.observe_cpu(std::slice::from_ref(&s), t(8), Duration::from_secs(1));
        let rate = loaded.of(&s).cpu.expect("a rate");
        assert_eq!(
            (rate.used, rate.over),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
