//! The procfs backend, for hosts without logind: sessions straight from the kernel.
//!
//! A session is the set of processes that share one kernel audit session ID
//! (`/proc/PID/sessionid`). pam_loginuid gives each login a fresh one, every child inherits
//! it, and a user cannot change it, so `setsid`, double forks and `nohup` do not escape it.
//! The session's ID is that number (logind uses the same number on such hosts); its user is
//! the login uid; its terminal, logon time and remote host come from utmp where it has a
//! record, else from the processes themselves ([`facts`]).
//!
//! Hosts whose kernel has no audit session IDs (built without `CONFIG_AUDIT`) fall back to
//! POSIX sessions: the processes sharing a session ID (SID) of which one has a controlling
//! terminal. That grouping is escapable — `setsid` leaves it — and `/V` and `--list` say so.
//!
//! Ending sessions is [`end`]'s: every signal through a pidfd checked to still be a member,
//! one /proc scan per step for all targets. logoff never signals itself, so that a logoff
//! run inside the session it ends finishes its work first.

mod end;
mod facts;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::activity;
use super::{Backend, Flavor, Purpose, Signalled, Sources, Warned, kernel_rule};
use crate::deadline::Deadline;
use crate::desktop::Desktops;
use crate::error::{Error, Kind, Result};
use crate::model::{Claim, Pid, ProcessInfo, Session, SessionId};
use crate::system::bounded;
use crate::system::handle::Handle;
use crate::system::process::Look;
use crate::system::process::{self, Membership, Proc, Stat};
use crate::system::users::Caller;
use crate::system::{tty, utmp};
use end::Ending;
use facts::{HostFacts, Listed, Member};

/// Set to `1` to force the POSIX-session grouping even where audit session IDs exist
/// (for testing the fallback on a kernel that has them).
pub const FORCE_POSIX_ENV: &str = "LOGOFF_PROCFS_POSIX_SESSIONS";

/// What processes are grouped into sessions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// Kernel audit session IDs (`/proc/PID/sessionid`).
    Audit,
    /// POSIX session IDs of terminal sessions: the fallback, escapable with `setsid`.
    Posix,
}

/// A session's key in /proc: its audit session ID, or its POSIX session ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key(i64);

impl Key {
    /// The key of a session given to the backend, read once where it comes in (each of the
    /// trait's methods that takes sessions).
    fn of(session: &Session) -> Result<Key> {
        let id = &session.id;
        id.as_str()
            .parse()
            .map(Key)
            .map_err(|_| Error::system(format!("'{id}' is not a procfs session ID")))
    }
}

impl From<Pid> for Key {
    /// A POSIX session's key is its leader's PID.
    fn from(pid: Pid) -> Key {
        Key(i64::from(pid.as_raw()))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
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
    /// Whether the listing keeps a pidfd per member (for ending sessions).
    purpose: Purpose,
    trackers: HashMap<SessionId, Ending>,
    /// This host's displays: xrdp sessions, X servers, warning windows.
    desktops: Desktops,
}

impl Procfs {
    /// A procfs backend. To end sessions, the listing keeps a pidfd to every member it finds,
    /// opened before the read that finds it in its session, so a logoff needs no second look
    /// at each process before its first signal.
    pub fn new(purpose: Purpose) -> Procfs {
        let forced_posix = std::env::var(FORCE_POSIX_ENV).is_ok_and(|v| v == "1");
        let grouping = if has_audit_sessions() && !forced_posix {
            Grouping::Audit
        } else {
            Grouping::Posix
        };
        Procfs {
            grouping,
            own_pid: Pid::own(),
            utmp_path: utmp::UTMP_PATH.into(),
            wtmp_path: utmp::WTMP_PATH.into(),
            utmp_pids: HashMap::new(),
            members: HashMap::new(),
            purpose,
            trackers: HashMap::new(),
            desktops: Desktops::default(),
        }
    }

    /// A procfs backend that follows sessions by their kernel audit session IDs only (for
    /// logind sessions without a scope); `None` on a kernel without them.
    pub fn audit_sessions() -> Option<Procfs> {
        let procfs = Procfs::new(Purpose::EndSessions);
        (procfs.grouping == Grouping::Audit).then_some(procfs)
    }

    /// The live processes of audit session `id`, by a fresh scan (logoff itself left out).
    pub fn members_of(&self, id: u32) -> Result<Vec<ProcessInfo>> {
        Ok(self
            .members_now(Key(i64::from(id)))?
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid(),
                command: String::new(),
            })
            .collect())
    }

    /// What makes a process one of session `key`'s.
    fn membership(&self, key: Key) -> Membership {
        match self.grouping {
            Grouping::Audit => Membership::Audit(u32::try_from(key.0).unwrap_or(u32::MAX)),
            Grouping::Posix => Membership::Posix(i32::try_from(key.0).unwrap_or(0)),
        }
    }

    /// The session key of a process, `None` when it belongs to no session or is gone.
    fn key_of(&self, proc: &Proc) -> std::io::Result<Option<Key>> {
        Ok(match self.grouping {
            Grouping::Audit => proc.audit_session()?.map(|id| Key(i64::from(id))),
            Grouping::Posix => proc
                .try_stat()?
                .map(|s| Key(i64::from(s.session)))
                .filter(|k| k.0 > 0),
        })
    }

    /// One pass over every process: [`Procfs::member`] on each, the members' `stat`s read
    /// meanwhile ([`process::scan_and_stat`]).
    fn find_members(&self) -> Result<Found> {
        let (found, stats) =
            process::scan_and_stat(|proc| self.member(proc), |(_, member)| member.pid)
                .map_err(proc_error)?;
        let mut groups: BTreeMap<Key, Vec<Member>> = BTreeMap::new();
        for (key, member) in found {
            groups.entry(key).or_default().push(member);
        }
        Ok(Found { groups, stats })
    }

    /// A pidfd, then the session key (which thus verifies the pidfd): `None` when the process
    /// is in no session or gone. The pidfd is kept (to end sessions) only where a real one
    /// protects a later signal.
    fn member(&self, proc: Proc) -> std::io::Result<Option<(Key, Member)>> {
        let key = std::cell::Cell::new(None);
        let handle = Handle::open(&proc, |p| {
            key.set(self.key_of(p)?);
            Ok(key.get().is_some())
        })?;
        let (Some(key), Some(handle)) = (key.get(), handle) else {
            return Ok(None);
        };
        let hold = self.purpose == Purpose::EndSessions && proc.pid() != self.own_pid;
        let handle = (hold && handle.has_pidfd()).then_some(handle);
        let member = Member {
            pid: proc.pid(),
            handle,
        };
        Ok(Some((key, member)))
    }
}

/// What one scan found: the processes of each session, and their `stat`s.
struct Found {
    groups: BTreeMap<Key, Vec<Member>>,
    /// By PID; a member without one had ended.
    stats: HashMap<Pid, Stat>,
}

/// How many groups of processes one thread takes at least, when a listing reads facts in
/// parallel: below that, a thread costs more than it saves.
const GROUPS_PER_THREAD: usize = 32;

/// `f` on each of `items`, by as many threads as there are CPUs (up to 4) when there are
/// enough of them, keeping what returns `Some`, in order.
fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Option<R> + Sync,
) -> Result<Vec<R>> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cpus.min(4).min(items.len() / GROUPS_PER_THREAD).max(1);
    if threads == 1 {
        return Ok(items.into_iter().filter_map(f).collect());
    }
    let size = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(size).collect());
    }
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().filter_map(f).collect::<Vec<R>>()))
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(
                worker
                    .join()
                    .map_err(|_| Error::system("a thread reading /proc failed"))?,
            );
        }
        Ok(all)
    })
}

/// How long the listing waits for what users' processes claim (their environment is read
/// from their memory, which a user can make wait).
const CLAIM_WAIT: Duration = Duration::from_millis(500);

/// Where sessions with nothing vouching for their origin say they came from: their leader's
/// `SSH_CONNECTION` (a claim, shown as one), read under one deadline for all.
fn read_claims(sessions: &mut [Session]) {
    let asked: Vec<usize> = (0..sessions.len())
        .filter(|&at| {
            let s = &sessions[at];
            s.remote_host.is_none() && s.remote_claim.is_none() && s.leader.is_some()
        })
        .collect();
    let leaders = asked.iter().filter_map(|&at| sessions[at].leader).collect();
    let answers = bounded::map(
        leaders,
        ssh_connection,
        bounded::Threads::Few,
        Deadline::after(CLAIM_WAIT),
    );
    for (at, answer) in asked.into_iter().zip(answers) {
        if let Some(Some(value)) = answer {
            sessions[at].remote_claim = Some(Claim {
                value,
                source: "environment",
            });
        }
    }
}

/// The client's address in a process's `SSH_CONNECTION`.
fn ssh_connection(pid: &Pid) -> Option<String> {
    let conn = Proc::new(*pid).env_var("SSH_CONNECTION")?;
    conn.split_whitespace().next().map(String::from)
}

/// Whether this kernel keeps audit session IDs.
fn has_audit_sessions() -> bool {
    std::path::Path::new("/proc/self/sessionid").exists()
}

fn proc_error(e: std::io::Error) -> Error {
    Error::io(Kind::System, "cannot read /proc", e)
}

impl Backend for Procfs {
    fn about(&self) -> (Flavor, String) {
        let detail = match self.grouping {
            Grouping::Audit => "kernel audit session IDs".to_string(),
            Grouping::Posix => format!(
                "POSIX sessions of terminals: {}, and a process that calls setsid() escapes \
                 its session",
                if has_audit_sessions() {
                    "forced with LOGOFF_PROCFS_POSIX_SESSIONS=1"
                } else {
                    "this kernel has no audit session IDs"
                }
            ),
        };
        (Flavor::Procfs, detail)
    }

    /// # Platform specific behavior
    /// Reading /proc/PID/stat and environ costs the kernel more than anything else a listing
    /// does, and unlike pidfd_open (see [`process::scan`]) those reads do not contend: the
    /// members' `stat`s are read by a second thread while the scan runs, and the rest of the
    /// facts of many sessions by a few threads at once.
    fn list(&mut self) -> Result<Vec<Session>> {
        let Found { groups, stats } = self.find_members()?;
        let groups: Vec<(Key, Vec<Member>)> = groups.into_iter().collect();
        let host = HostFacts::read(&self.utmp_path);
        let grouping = self.grouping;
        let mut listed: Vec<Listed> = in_parallel(groups, |(key, members)| {
            facts::session_of(grouping, key, members, &stats, &host)
        })?;
        facts::name_users(&mut listed);
        self.utmp_pids.clear();
        self.members.clear();
        let mut sessions = Vec::with_capacity(listed.len());
        let mut graphical: HashMap<usize, (Key, Vec<Pid>)> = HashMap::new();
        for Listed {
            key,
            built,
            members,
        } in listed
        {
            if built.may_be_graphical {
                let pids = members.iter().map(|m| m.pid).collect();
                graphical.insert(sessions.len(), (key, pids));
            }
            self.utmp_pids
                .insert(built.session.id.clone(), built.utmp_pids);
            self.members.insert(built.session.id.clone(), members);
            sessions.push(built.session);
        }
        self.desktops.refresh();
        let looks = sessions
            .iter_mut()
            .enumerate()
            .filter_map(|(at, session)| {
                let (key, members) = graphical.remove(&at)?;
                let membership = self.membership(key);
                Some(Look {
                    session,
                    members,
                    membership,
                    cgroup: None,
                })
            })
            .collect();
        self.desktops.enrich(looks);
        read_claims(&mut sessions);
        Ok(sessions)
    }

    fn observe(&mut self, sessions: &mut [Session], sources: Sources) -> Result<()> {
        let mut looks = Vec::with_capacity(sessions.len());
        for session in sessions.iter_mut() {
            let Ok(key) = Key::of(session) else {
                continue;
            };
            let members = self
                .members
                .get(&session.id)
                .map(|m| m.iter().map(|m| m.pid).collect())
                .unwrap_or_default();
            looks.push(Look {
                membership: self.membership(key),
                members,
                session,
                cgroup: None,
            });
        }
        activity::observe(&mut looks, sources, &[]);
        Ok(())
    }

    /// # Platform specific behavior
    /// In the POSIX grouping the key is read from `/proc/self/stat`, not getsid(2): a process
    /// started by an init that never called setsid() (a CI runner, a container's entry point)
    /// has SID 0, which is "no session" here, and rustix's getsid cannot represent it.
    fn current(&mut self) -> Result<Option<SessionId>> {
        let key = self.key_of(&Proc::myself()).map_err(proc_error)?;
        Ok(key.map(|k| SessionId::new(k.to_string())))
    }

    fn caller(&mut self) -> Result<Caller> {
        Ok(Caller::current())
    }

    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        kernel_rule(session, caller)
    }

    /// The session's members are found afresh for every warning (a reminder a minute later
    /// must not go to whoever has a PID the session had), and their terminals by the nodes
    /// they hold open.
    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned> {
        let key = Key::of(session)?;
        let members = self.members_now(key)?;
        let terminals = tty::held_by(members, |p| Ok(self.key_of(p)? == Some(key)));
        let mut warned = super::deliver_locally(terminals, session.uid, text);
        let membership = self.membership(key);
        warned.add(self.desktops.warn(session, &membership, text));
        Ok(warned)
    }

    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.terminate_all(sessions)
    }

    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.kill_all(sessions)
    }

    fn remaining(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>> {
        self.remaining_all(sessions, until)
    }

    fn disconnect(&mut self, sessions: &[&Session], timeout: Duration) -> Vec<Result<super::Cut>> {
        let keys: Vec<Result<Key>> = sessions.iter().map(|s| Key::of(s)).collect();
        let valid: Vec<Key> = keys
            .iter()
            .filter_map(|k| k.as_ref().ok().copied())
            .collect();
        // Read now, in one pass over /proc: the listing may be from before a grace period.
        let members = match self.members_of_each(&valid) {
            Ok(m) => m,
            Err(e) => return sessions.iter().map(|_| Err(e.clone())).collect(),
        };
        sessions
            .iter()
            .zip(keys)
            .map(|(s, key)| {
                let key = key?;
                let pids = members.get(&key).map(Vec::as_slice).unwrap_or_default();
                super::connection::cut(s, pids, &self.membership(key), timeout)
            })
            .collect()
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
