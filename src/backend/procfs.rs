//! The procfs backend, for hosts without logind: sessions straight from the kernel.
//!
//! A session is the set of processes that share one kernel audit session ID
//! (`/proc/PID/sessionid`). pam_loginuid gives each login a fresh one, every child inherits
//! it, and a user cannot change it, so `setsid`, double forks and `nohup` do not escape it.
//! The session's ID is that number (logind uses the same number on such hosts); its user is
//! the login uid; its terminal, logon time and remote host come from utmp where it has a
//! record, else from the processes themselves.
//!
//! Hosts whose kernel has no audit session IDs (built without `CONFIG_AUDIT`) fall back to
//! POSIX sessions: the processes sharing a session ID (SID) of which one has a controlling
//! terminal. That grouping is escapable — `setsid` leaves it — and `/V` and `--list` say so.
//!
//! Ending a session: SIGHUP, SIGTERM and SIGCONT to every member (rescanning for processes
//! forked meanwhile), then SIGKILL to what is left, repeated until a scan finds no live
//! member; when processes keep appearing, the session is frozen with SIGSTOP before the next
//! SIGKILL (see [`Procfs::kill_pass`]). Every signal goes through a pidfd checked to still be a member after it was
//! opened ([`crate::system::process::Handle`]). logoff never signals itself, so that a
//! logoff run inside the session it ends finishes its work first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use jiff::Timestamp;
use rustix::process::Signal;

use super::{Backend, Signalled};
use crate::error::{Error, Result};
use crate::model::{Pid, ProcessInfo, Session, SessionId, Uid};
use crate::system::process::{self, Handle, Proc};
use crate::system::users::NameCache;
use crate::system::{tty, utmp};

/// Set to `1` to force the POSIX-session grouping even where audit session IDs exist
/// (for testing the fallback on a kernel that has them).
pub const FORCE_POSIX_ENV: &str = "LOGOFF_PROCFS_POSIX_SESSIONS";

/// How many extra scans the polite step makes for processes forked while it signalled. A
/// fork loop that ignores SIGTERM is left to the SIGKILL step.
const POLITE_RESCANS: usize = 3;

/// An upper bound on SIGSTOP scans while freezing a session, so that a runaway cannot keep
/// logoff busy forever.
const MAX_FREEZE_SCANS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// Kernel audit session IDs (`/proc/PID/sessionid`).
    Audit,
    /// POSIX session IDs of terminal sessions: the fallback, escapable with `setsid`.
    Posix,
}

/// The procfs backend.
pub struct Procfs {
    grouping: Grouping,
    own_pid: Pid,
    utmp_path: PathBuf,
    wtmp_path: PathBuf,
    /// utmp records' PIDs per session, from the last listing, closed after a logoff.
    utmp_pids: HashMap<SessionId, Vec<Pid>>,
    trackers: HashMap<SessionId, Tracker>,
}

/// The processes a logoff has signalled so far, by step.
#[derive(Default)]
struct Tracker {
    asked: HashMap<Pid, Handle>,
    killed: HashMap<Pid, Handle>,
    /// Processes the kernel would not let us signal: not worth waiting for.
    refused: HashSet<Pid>,
}

/// One process while listing.
struct Member {
    pid: Pid,
    uid: Option<u32>,
    login_uid: Option<u32>,
    tty_nr: i32,
    start_time: u64,
}

#[derive(Default)]
struct Group {
    members: Vec<Member>,
    /// Whether some member lives in our PID namespace (not only in a container below it).
    ours: bool,
}

impl Procfs {
    pub fn new() -> Procfs {
        let forced_posix = std::env::var(FORCE_POSIX_ENV).is_ok_and(|v| v == "1");
        let has_audit = std::path::Path::new("/proc/self/sessionid").exists();
        let grouping = if has_audit && !forced_posix {
            Grouping::Audit
        } else {
            Grouping::Posix
        };
        Procfs {
            grouping,
            own_pid: Pid(std::process::id() as i32),
            utmp_path: utmp::UTMP_PATH.into(),
            wtmp_path: utmp::WTMP_PATH.into(),
            utmp_pids: HashMap::new(),
            trackers: HashMap::new(),
        }
    }

    /// The session key of a process, `None` when it belongs to no session.
    fn key_of(&self, proc: &Proc) -> Option<i64> {
        match self.grouping {
            Grouping::Audit => proc.audit_session().map(i64::from),
            Grouping::Posix => proc
                .stat()
                .map(|s| i64::from(s.session))
                .filter(|&sid| sid > 0),
        }
    }

    fn key_of_id(&self, id: &SessionId) -> Result<i64> {
        id.0.parse::<i64>()
            .map_err(|_| Error::system(format!("'{id}' is not a procfs session ID")))
    }

    /// One pass over /proc: sends `signals` to every live member not yet in `done`.
    /// Returns how many were new, and those the kernel refused.
    fn signal_pass(
        &self,
        key: i64,
        done: &mut HashMap<Pid, Handle>,
        signals: &[Signal],
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<usize> {
        let mut new = 0;
        for proc in process::all().map_err(|e| Error::system(format!("cannot read /proc: {e}")))? {
            let pid = proc.pid();
            if pid == self.own_pid || self.key_of(&proc) != Some(key) {
                continue;
            }
            let Some(stat) = proc.stat() else { continue };
            if process::state_has_ended(stat.state) {
                continue;
            }
            if done
                .get(&pid)
                .is_some_and(|h| h.start_time() == stat.starttime)
            {
                continue;
            }
            let Some(handle) = Handle::open(&proc, stat.starttime, |p| self.key_of(p) == Some(key))
            else {
                continue;
            };
            new += 1;
            for &signal in signals {
                match handle.signal(signal) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        refused.push(proc.info());
                        break;
                    }
                    Err(e) => {
                        return Err(Error::system(format!("cannot signal process {pid}: {e}")));
                    }
                }
            }
            done.insert(pid, handle);
        }
        Ok(new)
    }

    /// One SIGKILL step: `(killed, frozen)`.
    ///
    /// The first step sends SIGKILL as the scan goes: a process with SIGKILL pending cannot
    /// fork, so only what was forked before its parent was reached can be missed, and the
    /// verification scan after the wait finds that. If it does, something forks as fast as it
    /// dies (a fork loop refilling the slots its killed children free), so every later step
    /// first freezes the session: SIGSTOP to each member, rescanning until a pass finds no
    /// member it has not stopped. Stopped processes cannot fork and hold on to their process
    /// slots, so the freeze converges; then SIGKILL reaches all of them.
    fn kill_pass(
        &self,
        key: i64,
        tracker: &mut Tracker,
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<(usize, Option<usize>)> {
        let mut frozen = None;
        if !tracker.killed.is_empty() {
            let mut stopped = HashMap::new();
            let mut total = 0;
            for _ in 0..MAX_FREEZE_SCANS {
                match self.signal_pass(key, &mut stopped, &[Signal::STOP], refused)? {
                    0 => break,
                    n => total += n,
                }
            }
            frozen = Some(total);
        }
        let killed = self.signal_pass(key, &mut tracker.killed, &[Signal::KILL], refused)?;
        Ok((killed, frozen))
    }

    /// The live members of a session, for the verification after waiting.
    fn survivors(&self, key: i64) -> Result<Vec<ProcessInfo>> {
        let mut left = Vec::new();
        for proc in process::all().map_err(|e| Error::system(format!("cannot read /proc: {e}")))? {
            if proc.pid() == self.own_pid || self.key_of(&proc) != Some(key) {
                continue;
            }
            if proc
                .stat()
                .is_some_and(|s| !process::state_has_ended(s.state))
            {
                left.push(proc.info());
            }
        }
        Ok(left)
    }

    fn build_session(
        &self,
        key: i64,
        group: &Group,
        utmp_records: &[utmp::Record],
        names: &mut NameCache,
        clock: &BootClock,
        active_vt: Option<&str>,
    ) -> (Session, Vec<Pid>) {
        let members = &group.members;
        let earliest = members.iter().min_by_key(|m| (m.start_time, m.pid));
        let records: Vec<&utmp::Record> = utmp_records
            .iter()
            .filter(|r| members.iter().any(|m| m.pid == r.pid))
            .collect();
        let record = records.iter().min_by_key(|r| r.time).copied();
        let uid = match self.grouping {
            Grouping::Audit => members.iter().find_map(|m| m.login_uid),
            Grouping::Posix => members
                .iter()
                .find(|m| i64::from(m.pid.0) == key)
                .or(earliest)
                .and_then(|m| m.uid),
        }
        .map(Uid)
        .unwrap_or(Uid(u32::MAX));
        let leader = record
            .map(|r| r.pid)
            .or_else(|| match self.grouping {
                Grouping::Posix => members
                    .iter()
                    .find(|m| i64::from(m.pid.0) == key)
                    .map(|m| m.pid),
                Grouping::Audit => None,
            })
            .or(earliest.map(|m| m.pid));
        let tty = record
            .map(|r| r.line.clone())
            .filter(|l| !l.is_empty())
            .or_else(|| {
                let mut with_tty: Vec<&Member> = members.iter().filter(|m| m.tty_nr != 0).collect();
                with_tty.sort_by_key(|m| (m.start_time, m.pid));
                with_tty
                    .first()
                    .and_then(|m| tty::name_from_tty_nr(m.tty_nr))
            });
        let remote_host = record
            .map(|r| r.host.clone())
            .filter(|h| !h.is_empty())
            .or_else(|| {
                let proc = Proc::new(leader?)?;
                let conn = proc.env_var("SSH_CONNECTION")?;
                conn.split_whitespace().next().map(String::from)
            });
        let logon_time = record
            .and_then(|r| r.time)
            .or_else(|| earliest.and_then(|m| clock.timestamp(m.start_time)));
        let state = match (tty.as_deref(), active_vt) {
            (Some(t), Some(active)) if crate::model::is_virtual_terminal(t) && t != active => {
                "online"
            }
            _ => "active",
        };
        let session = Session {
            id: SessionId(key.to_string()),
            uid,
            user: names.name(uid),
            idle_since: tty.as_deref().and_then(tty::idle_since),
            tty,
            state: state.into(),
            remote: remote_host.is_some(),
            remote_host,
            logon_time,
            leader,
            processes: Some(members.len()),
            ..Session::default()
        };
        (session, records.iter().map(|r| r.pid).collect())
    }
}

impl Default for Procfs {
    fn default() -> Self {
        Procfs::new()
    }
}

/// Converts process start times (clock ticks since boot) into timestamps.
struct BootClock {
    boot: Option<i64>,
    ticks: u64,
}

impl BootClock {
    fn new() -> BootClock {
        BootClock {
            boot: procfs::boot_time_secs().ok().map(|s| s as i64),
            ticks: procfs::ticks_per_second().max(1),
        }
    }

    fn timestamp(&self, start_ticks: u64) -> Option<Timestamp> {
        let secs = self.boot? + (start_ticks / self.ticks) as i64;
        Timestamp::from_second(secs).ok()
    }
}

impl Backend for Procfs {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn describe(&self) -> String {
        match self.grouping {
            Grouping::Audit => "procfs (kernel audit session IDs)".into(),
            Grouping::Posix => "procfs (POSIX sessions of terminals: this kernel has no audit \
                                session IDs, so a process that calls setsid() escapes its session)"
                .into(),
        }
    }

    fn list(&mut self) -> Result<Vec<Session>> {
        let mut groups: BTreeMap<i64, Group> = BTreeMap::new();
        for proc in process::all().map_err(|e| Error::system(format!("cannot read /proc: {e}")))? {
            let Some(key) = self.key_of(&proc) else {
                continue;
            };
            let Some(stat) = proc.stat() else { continue };
            if process::state_has_ended(stat.state) {
                continue;
            }
            let group = groups.entry(key).or_default();
            if !group.ours {
                group.ours = proc.in_our_pid_namespace();
            }
            group.members.push(Member {
                pid: proc.pid(),
                uid: proc.uid(),
                login_uid: match self.grouping {
                    Grouping::Audit => proc.login_uid(),
                    Grouping::Posix => None,
                },
                tty_nr: stat.tty_nr,
                start_time: stat.starttime,
            });
        }
        let records = utmp::read(&self.utmp_path);
        let mut names = NameCache::default();
        let clock = BootClock::new();
        let active_vt = tty::active_vt();
        let mut sessions = Vec::new();
        self.utmp_pids.clear();
        for (key, group) in &groups {
            if !group.ours {
                continue;
            }
            if self.grouping == Grouping::Posix && group.members.iter().all(|m| m.tty_nr == 0) {
                continue;
            }
            let (session, utmp_pids) = self.build_session(
                *key,
                group,
                &records,
                &mut names,
                &clock,
                active_vt.as_deref(),
            );
            self.utmp_pids.insert(session.id.clone(), utmp_pids);
            sessions.push(session);
        }
        Ok(sessions)
    }

    fn current(&mut self) -> Result<Option<SessionId>> {
        let key = match self.grouping {
            Grouping::Audit => Proc::myself()
                .and_then(|p| p.audit_session())
                .map(i64::from),
            Grouping::Posix => rustix::process::getsid(None)
                .ok()
                .map(|p| i64::from(p.as_raw_nonzero().get())),
        };
        Ok(key.map(|k| SessionId(k.to_string())))
    }

    fn terminate(&mut self, session: &Session) -> Result<Signalled> {
        let key = self.key_of_id(&session.id)?;
        let mut tracker = self.trackers.remove(&session.id).unwrap_or_default();
        let mut refused = Vec::new();
        let mut total = 0;
        for _ in 0..=POLITE_RESCANS {
            let new = self.signal_pass(
                key,
                &mut tracker.asked,
                &[Signal::HUP, Signal::TERM, Signal::CONT],
                &mut refused,
            );
            match new {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    self.trackers.insert(session.id.clone(), tracker);
                    return Err(e);
                }
            }
        }
        tracker.refused.extend(refused.iter().map(|p| p.pid));
        self.trackers.insert(session.id.clone(), tracker);
        Ok(Signalled {
            processes: Some(total),
            frozen: None,
            refused,
        })
    }

    fn kill(&mut self, session: &Session) -> Result<Signalled> {
        let key = self.key_of_id(&session.id)?;
        let mut tracker = self.trackers.remove(&session.id).unwrap_or_default();
        let mut refused = Vec::new();
        let result = self.kill_pass(key, &mut tracker, &mut refused);
        tracker.refused.extend(refused.iter().map(|p| p.pid));
        self.trackers.insert(session.id.clone(), tracker);
        result.map(|(killed, frozen)| Signalled {
            processes: Some(killed),
            frozen,
            refused,
        })
    }

    fn wait(&mut self, session: &Session, deadline: Instant) -> Result<Vec<ProcessInfo>> {
        let key = self.key_of_id(&session.id)?;
        if let Some(tracker) = self.trackers.get(&session.id) {
            // Killed processes first: they end soonest. Stop at the first one still running
            // at the deadline; the scan below names what is left.
            let handles = tracker.killed.values().chain(tracker.asked.values());
            for handle in handles.filter(|h| !tracker.refused.contains(&h.pid())) {
                if !handle.wait(deadline) {
                    break;
                }
            }
        }
        self.survivors(key)
    }

    fn finish(&mut self, session: &Session) -> Result<Vec<String>> {
        self.trackers.remove(&session.id);
        let pids = self.utmp_pids.remove(&session.id).unwrap_or_default();
        if pids.is_empty() || !rustix::process::geteuid().is_root() {
            return Ok(Vec::new());
        }
        let closed = utmp::close_records(&self.utmp_path, &self.wtmp_path, &pids).map_err(|e| {
            Error::system(format!("cannot update {}: {e}", self.utmp_path.display()))
        })?;
        Ok(closed
            .into_iter()
            .map(|line| format!("utmp record for {line} marked dead"))
            .collect())
    }
}
