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

use jiff::Timestamp;
use rustix::process::Signal;

use super::{Backend, Signalled, Warned};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{Pid, ProcessInfo, Session, SessionId, Uid};
use crate::system::process::{self, Handle, Proc};
use crate::system::users::NameCache;
use crate::system::{tty, utmp};

/// Set to `1` to force the POSIX-session grouping even where audit session IDs exist
/// (for testing the fallback on a kernel that has them).
pub const FORCE_POSIX_ENV: &str = "LOGOFF_PROCFS_POSIX_SESSIONS";

/// An upper bound on the scans of one SIGKILL step, so that a runaway cannot keep logoff busy
/// forever (the flow then names what is left).
const MAX_SCANS: usize = 1_000;

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
    /// Members per session, from the last listing: the first signals go to them without
    /// another scan of /proc.
    members: HashMap<SessionId, Vec<Member>>,
    /// Whether this backend will end sessions: the listing then keeps a pidfd per member.
    hold_pidfds: bool,
    /// Why this backend was chosen, for `/V`.
    why: String,
    trackers: HashMap<SessionId, Tracker>,
    /// Why the POSIX grouping is used, when it is, for `/V`.
    posix_why: &'static str,
}

/// The processes a logoff has signalled so far, by step.
#[derive(Default)]
struct Tracker {
    asked: HashMap<Pid, Handle>,
    killed: HashMap<Pid, Handle>,
    /// Processes the kernel would not let us signal: not worth waiting for.
    refused: HashSet<Pid>,
    /// A scan after the last SIGKILL found every member signalled, and none was refused:
    /// no new process can appear, so once the killed ones have exited the session is empty.
    sealed: bool,
}

/// What one member's `stat` tells of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Started {
    /// Start time, in clock ticks since boot (first: the order is by it).
    start: u64,
    pid: Pid,
    /// Its controlling terminal's device number (0: none).
    tty_nr: i32,
}

/// One process of a session, as the listing found it.
struct Member {
    pid: Pid,
    /// A pidfd opened before the read that found the process in the session, so that read
    /// verified it: the first signal can go through it with no further check. (Only when
    /// the backend ends sessions, and within the descriptor budget.)
    handle: Option<Handle>,
}

/// What the listing learns of a session beyond its members.
#[derive(Default)]
struct Details {
    login_uid: Option<u32>,
    /// Owner of the POSIX session leader (or first member) in the POSIX grouping.
    uid: Option<u32>,
    /// Every live member's start, by start time: the first is the session's earliest
    /// process. Every member is read: after PID wraparound the lowest PIDs are not the
    /// oldest, and a sample of them could say a session holds no terminal when it does.
    stats: Vec<Started>,
    /// Whether some member lives in our PID namespace (not only in a container below it).
    ours: bool,
}

impl Procfs {
    /// A procfs backend. `ends_sessions`: the listing keeps a pidfd to every member it finds,
    /// opened before the read that finds it in its session, so a logoff needs no second look
    /// at each process before its first signal.
    pub fn new(ends_sessions: bool, why: &str) -> Procfs {
        let forced_posix = std::env::var(FORCE_POSIX_ENV).is_ok_and(|v| v == "1");
        let has_audit = std::path::Path::new("/proc/self/sessionid").exists();
        let grouping = if has_audit && !forced_posix {
            Grouping::Audit
        } else {
            Grouping::Posix
        };
        let posix_why = if has_audit {
            "forced with LOGOFF_PROCFS_POSIX_SESSIONS=1"
        } else {
            "this kernel has no audit session IDs"
        };
        Procfs {
            grouping,
            own_pid: Pid(std::process::id() as i32),
            utmp_path: utmp::UTMP_PATH.into(),
            wtmp_path: utmp::WTMP_PATH.into(),
            utmp_pids: HashMap::new(),
            members: HashMap::new(),
            hold_pidfds: ends_sessions,
            why: why.to_string(),
            trackers: HashMap::new(),
            posix_why,
        }
    }

    /// A procfs backend that follows sessions by their kernel audit session IDs only (for
    /// logind sessions without a scope); `None` on a kernel without them.
    pub fn audit_sessions(why: &str) -> Option<Procfs> {
        let procfs = Procfs::new(true, why);
        (procfs.grouping == Grouping::Audit).then_some(procfs)
    }

    /// The live processes of audit session `id`, by a fresh scan (logoff itself left out).
    pub fn members_of(&self, id: u32) -> Result<Vec<ProcessInfo>> {
        Ok(self
            .scan(i64::from(id), &[])?
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid(),
                command: String::new(),
            })
            .collect())
    }

    /// The session key of a process, `None` when it belongs to no session or is gone.
    fn key_of(&self, proc: &Proc) -> std::io::Result<Option<i64>> {
        Ok(match self.grouping {
            Grouping::Audit => proc.audit_session()?.map(i64::from),
            Grouping::Posix => proc
                .try_stat()?
                .map(|s| i64::from(s.session))
                .filter(|&sid| sid > 0),
        })
    }

    fn key_of_id(&self, id: &SessionId) -> Result<i64> {
        id.0.parse::<i64>()
            .map_err(|_| Error::system(format!("'{id}' is not a procfs session ID")))
    }

    /// Live members of the session that a fresh /proc scan finds and that no handle in
    /// `known` accounts for (a handle whose process is still running). Zombies are ended.
    fn scan(&self, key: i64, known: &[&HashMap<Pid, Handle>]) -> Result<Vec<Proc>> {
        process::scan(|proc| {
            let pid = proc.pid();
            if pid == self.own_pid {
                return Ok(None);
            }
            match known.iter().find_map(|m| m.get(&pid)) {
                // A process we signalled that still holds its PID (running, or a zombie not
                // yet reaped) needs no read: it is accounted for.
                Some(handle) if handle.holds_pid() => Ok(None),
                // Reaped: the PID is a newcomer's.
                Some(_) => {
                    Ok((self.key_of(&proc)? == Some(key) && proc.is_running()?).then_some(proc))
                }
                // Most processes are not members: the key decides before the costlier stat.
                None => {
                    Ok((self.key_of(&proc)? == Some(key) && proc.is_running()?).then_some(proc))
                }
            }
        })
        .map_err(proc_error)
    }

    /// Opens a handle for each process that is still a member, sends it `signals`, and keeps
    /// it in `done`. Returns how many were signalled; those the kernel refused go to `refused`.
    fn signal(
        &self,
        key: i64,
        procs: impl IntoIterator<Item = Proc>,
        done: &mut HashMap<Pid, Handle>,
        signals: &[Signal],
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<usize> {
        let mut count = 0;
        for proc in procs {
            if proc.pid() == self.own_pid {
                continue;
            }
            let Some(handle) =
                Handle::open(&proc, |p| Ok(self.key_of(p)? == Some(key))).map_err(proc_error)?
            else {
                continue;
            };
            if send(&handle, signals, refused)? {
                count += 1;
            }
            done.insert(proc.pid(), handle);
        }
        Ok(count)
    }

    /// [`Procfs::signal`] for listed members: through the pidfd the listing verified where it
    /// kept one, else with the check.
    fn signal_members(
        &self,
        key: i64,
        members: Vec<Member>,
        done: &mut HashMap<Pid, Handle>,
        signals: &[Signal],
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<usize> {
        let mut count = 0;
        let mut unverified = Vec::new();
        for member in members {
            match member.handle {
                Some(handle) => {
                    if send(&handle, signals, refused)? {
                        count += 1;
                    }
                    done.insert(member.pid, handle);
                }
                None => unverified.push(Proc::new(member.pid)),
            }
        }
        Ok(count + self.signal(key, unverified, done, signals, refused)?)
    }

    /// Freezes `first` and every member found after it with SIGSTOP, rescanning until a scan
    /// finds nobody new, then kills them all. Stopped processes cannot fork and keep their
    /// process slots, so a fork loop that refills the slots its killed children free cannot
    /// outrun this. Returns how many were frozen.
    fn freeze_and_kill(
        &self,
        key: i64,
        first: Vec<Proc>,
        tracker: &mut Tracker,
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<usize> {
        let mut stopped = HashMap::new();
        let mut batch = first;
        for _ in 0..MAX_SCANS {
            if batch.is_empty() {
                break;
            }
            self.signal(key, batch, &mut stopped, &[Signal::STOP], refused)?;
            batch = self.scan(key, &[&tracker.killed, &stopped])?;
        }
        let frozen = stopped.len();
        for (pid, handle) in stopped {
            send(&handle, &[Signal::KILL], refused)?;
            tracker.killed.insert(pid, handle);
        }
        Ok(frozen)
    }

    /// The body of [`Backend::kill`]: `(killed, frozen)`.
    fn kill_all(
        &mut self,
        key: i64,
        id: &SessionId,
        tracker: &mut Tracker,
        refused: &mut Vec<ProcessInfo>,
    ) -> Result<(usize, usize)> {
        let mut killed = 0;
        // Those asked politely and still running: through the pidfds held since.
        for (pid, handle) in std::mem::take(&mut tracker.asked) {
            if !handle.has_exited() && send(&handle, &[Signal::KILL], refused)? {
                killed += 1;
            }
            tracker.killed.insert(pid, handle);
        }
        // Listed but never asked (a zero timeout).
        if let Some(members) = self.members.remove(id) {
            let fresh: Vec<Member> = members
                .into_iter()
                .filter(|m| !tracker.killed.contains_key(&m.pid))
                .collect();
            killed +=
                self.signal_members(key, fresh, &mut tracker.killed, &[Signal::KILL], refused)?;
        }
        let mut frozen = 0;
        tracker.sealed = false;
        for _ in 0..MAX_SCANS {
            let missed = self.scan(key, &[&tracker.killed])?;
            if missed.is_empty() {
                tracker.sealed = refused.is_empty() && tracker.refused.is_empty();
                break;
            }
            if tracker.killed.is_empty() {
                // Nothing listed (or all of it gone): the scan's finds are the session.
                killed +=
                    self.signal(key, missed, &mut tracker.killed, &[Signal::KILL], refused)?;
            } else {
                let n = self.freeze_and_kill(key, missed, tracker, refused)?;
                frozen += n;
                killed += n;
            }
        }
        Ok((killed, frozen))
    }

    /// Reads what the session's members tell about it.
    fn details(&self, key: i64, members: &[Member]) -> Details {
        let mut details = Details::default();
        let mut pids: Vec<Pid> = members.iter().map(|m| m.pid).collect();
        pids.sort();
        for pid in &pids {
            let proc = Proc::new(*pid);
            if proc.in_our_pid_namespace() {
                details.ours = true;
                break;
            }
        }
        if let Some(first) = pids.first() {
            let proc = Proc::new(*first);
            details.login_uid = match self.grouping {
                Grouping::Audit => proc.login_uid(),
                Grouping::Posix => None,
            };
            if self.grouping == Grouping::Posix {
                let leader = pids.iter().find(|p| i64::from(p.0) == key).unwrap_or(first);
                details.uid = Proc::new(*leader).uid();
            }
        }
        for pid in pids {
            if let Ok(Some(stat)) = Proc::new(pid).live_stat() {
                details.stats.push(Started {
                    start: stat.starttime,
                    pid,
                    tty_nr: stat.tty_nr,
                });
            }
        }
        details.stats.sort();
        details
    }

    fn build_session(
        &self,
        key: i64,
        members: &[Member],
        details: &Details,
        host: &mut HostFacts,
    ) -> (Session, Vec<Pid>) {
        // `stats` is sorted by start time: the first is the earliest process.
        let earliest = details.stats.first();
        let records: Vec<&utmp::Record> = host
            .utmp
            .iter()
            .filter(|r| members.iter().any(|m| m.pid == r.pid))
            .collect();
        let record = records.iter().min_by_key(|r| r.time).copied();
        let uid = match self.grouping {
            Grouping::Audit => details.login_uid,
            Grouping::Posix => details.uid,
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
            .or(earliest.map(|e| e.pid));
        // utmp's line is text some program wrote: only a terminal's name counts.
        let tty = record
            .map(|r| r.line.clone())
            .filter(|l| tty::is_terminal_name(l))
            .or_else(|| {
                details
                    .stats
                    .iter()
                    .find(|s| s.tty_nr != 0)
                    .and_then(|s| tty::name_from_tty_nr(s.tty_nr))
            });
        let remote_host = record
            .map(|r| r.host.clone())
            .filter(|h| !h.is_empty())
            .or_else(|| {
                let proc = Proc::new(leader?);
                let conn = proc.env_var("SSH_CONNECTION")?;
                conn.split_whitespace().next().map(String::from)
            });
        let logon_time = record
            .and_then(|r| r.time)
            .or_else(|| earliest.and_then(|e| host.clock.timestamp(e.start)));
        // No process holds a terminal any more: what is left runs on without its login
        // (a dropped connection's nohup jobs, say). See select::State::Disconnected.
        let holds_terminal = details.stats.iter().any(|s| s.tty_nr != 0);
        let state = match (tty.as_deref(), host.active_vt.as_deref()) {
            _ if !holds_terminal => "disconnected",
            (Some(t), Some(active)) if crate::model::is_virtual_terminal(t) && t != active => {
                "online"
            }
            _ => "active",
        };
        let session = Session {
            id: SessionId(key.to_string()),
            uid,
            user: host.names.name(uid),
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

fn proc_error(e: std::io::Error) -> Error {
    Error::system(format!("cannot read /proc: {e}"))
}

/// Sends `signals` in order through `handle`: `Ok(false)` if the process had already ended.
/// A refusal (EPERM) is recorded in `refused`, not an error: the process survives, and the
/// logoff says so.
fn send(handle: &Handle, signals: &[Signal], refused: &mut Vec<ProcessInfo>) -> Result<bool> {
    for &signal in signals {
        match handle.signal(signal) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                refused.push(Proc::new(handle.pid()).info());
                return Ok(false);
            }
            Err(e) => {
                return Err(Error::system(format!(
                    "cannot signal process {}: {e}",
                    handle.pid()
                )));
            }
        }
    }
    Ok(true)
}

/// What one listing reads once about the host, for every session.
struct HostFacts {
    utmp: Vec<utmp::Record>,
    names: NameCache,
    clock: BootClock,
    active_vt: Option<String>,
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
        let grouping = match self.grouping {
            Grouping::Audit => "kernel audit session IDs",
            Grouping::Posix => &format!(
                "POSIX sessions of terminals: {}, and a process that calls setsid() escapes \
                 its session",
                self.posix_why
            ),
        };
        format!("procfs ({grouping}; {})", self.why)
    }

    fn list(&mut self) -> Result<Vec<Session>> {
        // One pass over every process, in parallel: a pidfd, then the session key (which thus
        // verifies the pidfd), and whether it is still running.
        let hold = self.hold_pidfds;
        let found = process::scan(|proc| {
            let key = std::cell::Cell::new(None);
            let handle = Handle::open(&proc, |p| {
                key.set(self.key_of(p)?);
                Ok(key.get().is_some())
            })?;
            let (Some(key), Some(handle)) = (key.get(), handle) else {
                return Ok(None);
            };
            if handle.has_exited() {
                return Ok(None);
            }
            // Only a real pidfd protects a later signal; without one, the signal re-checks.
            let handle =
                (hold && handle.has_pidfd() && proc.pid() != self.own_pid).then_some(handle);
            Ok(Some((
                key,
                Member {
                    pid: proc.pid(),
                    handle,
                },
            )))
        })
        .map_err(proc_error)?;
        let mut groups: BTreeMap<i64, Vec<Member>> = BTreeMap::new();
        for (key, member) in found {
            groups.entry(key).or_default().push(member);
        }
        let mut host = HostFacts {
            utmp: utmp::read(&self.utmp_path),
            names: NameCache::default(),
            clock: BootClock::new(),
            active_vt: tty::active_vt(),
        };
        let mut sessions = Vec::new();
        self.utmp_pids.clear();
        self.members.clear();
        for (key, members) in groups {
            let details = self.details(key, &members);
            if !details.ours {
                continue;
            }
            if self.grouping == Grouping::Posix && details.stats.iter().all(|s| s.tty_nr == 0) {
                continue;
            }
            let (session, utmp_pids) = self.build_session(key, &members, &details, &mut host);
            self.utmp_pids.insert(session.id.clone(), utmp_pids);
            self.members.insert(session.id.clone(), members);
            sessions.push(session);
        }
        Ok(sessions)
    }

    /// # Platform specific behavior
    /// In the POSIX grouping the key is read from `/proc/self/stat`, not getsid(2): a process
    /// started by an init that never called setsid() (a CI runner, a container's entry point)
    /// has SID 0, which is "no session" here, and rustix's getsid cannot represent it.
    fn current(&mut self) -> Result<Option<SessionId>> {
        let key = self.key_of(&Proc::myself()).map_err(proc_error)?;
        Ok(key.map(|k| SessionId(k.to_string())))
    }

    /// The session's members are found afresh for every warning (a reminder a minute later
    /// must not go to whoever has a PID the session had), and their terminals by the nodes
    /// they hold open.
    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned> {
        let key = self.key_of_id(&session.id)?;
        let members = self.scan(key, &[])?;
        let terminals = tty::held_by(members, |p| Ok(self.key_of(p)? == Some(key)));
        Ok(super::deliver_locally(terminals, session.uid, text))
    }

    fn terminate(&mut self, session: &Session) -> Result<Signalled> {
        let key = self.key_of_id(&session.id)?;
        let mut tracker = self.trackers.remove(&session.id).unwrap_or_default();
        let mut refused = Vec::new();
        // The first time, the members the listing found; afterwards, whatever a scan finds
        // that has not been asked yet (processes forked meanwhile).
        const POLITE: [Signal; 3] = [Signal::HUP, Signal::TERM, Signal::CONT];
        let result = match self.members.remove(&session.id) {
            Some(members) if tracker.asked.is_empty() => {
                self.signal_members(key, members, &mut tracker.asked, &POLITE, &mut refused)
            }
            _ => self
                .scan(key, &[&tracker.asked, &tracker.killed])
                .and_then(|procs| {
                    self.signal(key, procs, &mut tracker.asked, &POLITE, &mut refused)
                }),
        };
        tracker.refused.extend(refused.iter().map(|p| p.pid));
        self.trackers.insert(session.id.clone(), tracker);
        Ok(Signalled {
            processes: Some(result?),
            frozen: None,
            refused,
        })
    }

    /// SIGKILL to every member: those already asked through the pidfds held since, the listed
    /// ones through new pidfds. Then a scan for members that were forked before their parent
    /// got SIGKILL (a process with SIGKILL pending cannot fork, so none can appear after the
    /// scan has begun): if it finds any, something forks as fast as it dies, and the session
    /// is frozen before it is killed ([`Procfs::freeze_and_kill`]). Repeats until a scan finds
    /// no member left unsignalled; then the session is sealed: no new process can appear.
    fn kill(&mut self, session: &Session) -> Result<Signalled> {
        let key = self.key_of_id(&session.id)?;
        let mut tracker = self.trackers.remove(&session.id).unwrap_or_default();
        let mut refused = Vec::new();
        let result = self.kill_all(key, &session.id, &mut tracker, &mut refused);
        tracker.refused.extend(refused.iter().map(|p| p.pid));
        self.trackers.insert(session.id.clone(), tracker);
        let (killed, frozen) = result?;
        Ok(Signalled {
            processes: Some(killed),
            frozen: (frozen > 0).then_some(frozen),
            refused,
        })
    }

    fn wait(&mut self, session: &Session, deadline: Deadline) -> Result<Vec<ProcessInfo>> {
        let key = self.key_of_id(&session.id)?;
        let Some(tracker) = self.trackers.get(&session.id) else {
            return Ok(self.scan(key, &[])?.iter().map(Proc::info).collect());
        };
        // Killed processes first: they end soonest. Processes the kernel would not let us
        // signal are not waited for.
        let handles = tracker.killed.iter().chain(tracker.asked.iter());
        for (_, handle) in handles.filter(|(pid, _)| !tracker.refused.contains(pid)) {
            if !handle.wait(deadline) {
                break;
            }
        }
        let running: Vec<ProcessInfo> = tracker
            .killed
            .iter()
            .chain(tracker.asked.iter())
            .filter(|(_, h)| !h.has_exited())
            .map(|(pid, _)| Proc::new(*pid).info())
            .collect();
        if tracker.sealed && running.is_empty() {
            // Sealed and every killed process has exited: nothing of the session can be left.
            return Ok(running);
        }
        let mut left = running;
        left.extend(
            self.scan(key, &[&tracker.killed, &tracker.asked])?
                .iter()
                .map(Proc::info),
        );
        Ok(left)
    }

    fn finish(&mut self, session: &Session) -> Result<Vec<String>> {
        self.trackers.remove(&session.id);
        let pids = self.utmp_pids.remove(&session.id).unwrap_or_default();
        if pids.is_empty() || !rustix::process::geteuid().is_root() {
            return Ok(Vec::new());
        }
        let closed = utmp::close_records(&self.utmp_path, &self.wtmp_path, &pids).map_err(|e| {
            Error::system(format!(
                "the session has ended, but its utmp record was not marked dead: {e}"
            ))
        })?;
        Ok(closed
            .into_iter()
            .map(|line| format!("utmp record for {line} marked dead"))
            .collect())
    }
}
