//! What a listing learns of each session from its processes and utmp: user, terminal,
//! leader, logon time, remote host, state.
//!
//! Every live member's `stat` is read: after PID wraparound the lowest PIDs are not the
//! oldest, and a sample of them could say a session holds no terminal when it does (and
//! `--state disconnected` would sweep it).

use std::collections::HashMap;

use jiff::Timestamp;

use super::{Grouping, Key};
use crate::model::{
    Activity, Claim, IdleSource, Login, Origin, Pid, Seen, Session, SessionId, SessionState, Uid,
    is_virtual_terminal,
};
use crate::system::handle::Handle;
use crate::system::process::{Proc, Stat};
use crate::system::sockets;
use crate::system::users::{self, NameCache};
use crate::system::{tty, utmp};

/// One process of a session, as the listing found it.
pub(super) struct Member {
    pub pid: Pid,
    /// A pidfd opened before the read that found the process in the session, so that read
    /// verified it: the first signal can go through it with no further check. (Only when
    /// the backend ends sessions, and within the descriptor budget.)
    pub handle: Option<Handle>,
}

/// What one member's `stat` tells of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Started {
    /// Start time, in clock ticks since boot (first: the order is by it).
    start: u64,
    pid: Pid,
    ppid: i32,
    /// Its controlling terminal's device number (0: none).
    tty_nr: i32,
    x_like_name: bool,
}

/// What the listing learns of a session beyond its members.
pub(super) struct Details {
    /// The session's user: its login uid (audit grouping), or its leader's real uid.
    uid: Option<Uid>,
    /// Every live member's start, by start time: the first is the session's earliest process.
    stats: Vec<Started>,
    /// Whether some member lives in our PID namespace (not only in a container below it).
    pub ours: bool,
}

impl Details {
    /// Reads what the session's members tell about it; `live` has their `stat`s, read while
    /// the scan found them (a member without one had ended).
    pub fn read(
        grouping: Grouping,
        key: Key,
        members: &[Member],
        live: &HashMap<Pid, Stat>,
    ) -> Details {
        let mut pids: Vec<Pid> = members.iter().map(|m| m.pid).collect();
        pids.sort();
        let ours = pids.iter().any(|p| !Proc::new(*p).in_a_container_below());
        let uid = pids.first().and_then(|first| match grouping {
            // Every member of an audit session has the same login uid.
            Grouping::Audit => Proc::new(*first).login_uid(),
            Grouping::Posix => {
                let leader = pids.iter().find(|p| Key::from(**p) == key).unwrap_or(first);
                Proc::new(*leader).uid()
            }
        });
        let mut stats: Vec<Started> = pids
            .into_iter()
            .filter_map(|pid| {
                let stat = live.get(&pid)?;
                Some(Started {
                    start: stat.starttime,
                    pid,
                    ppid: stat.ppid,
                    tty_nr: stat.tty_nr,
                    x_like_name: stat.x_like_name,
                })
            })
            .collect();
        stats.sort();
        Details {
            uid: uid.map(Uid::from_raw),
            stats,
            ours,
        }
    }

    /// Whether some live member has a controlling terminal.
    pub fn holds_terminal(&self) -> bool {
        self.stats.iter().any(|s| s.tty_nr != 0)
    }

    /// Whether it may be a graphical session: a member that may be an X server, or no
    /// terminal (an xrdp session need not hold one).
    pub fn may_be_graphical(&self) -> bool {
        !self.holds_terminal() || self.stats.iter().any(|s| s.x_like_name)
    }

    /// How many members are alive.
    pub fn live(&self) -> usize {
        self.stats.len()
    }
}

/// What one listing reads once about the host, for every session.
pub(super) struct HostFacts {
    /// utmp's live login records, by PID.
    pub utmp: HashMap<Pid, Vec<utmp::Record>>,
    pub clock: BootClock,
    pub active_vt: Option<String>,
}

impl HostFacts {
    pub fn read(utmp_path: &std::path::Path) -> HostFacts {
        HostFacts {
            utmp: utmp::read(utmp_path)
                .into_iter()
                .fold(HashMap::new(), |mut by_pid, record| {
                    by_pid.entry(record.pid).or_default().push(record);
                    by_pid
                }),
            clock: BootClock::new(),
            active_vt: tty::active_vt(),
        }
    }
}

/// A session as listed, with its members (zombies left out).
pub(super) struct Listed {
    /// Its key, which its ID says in words.
    pub key: Key,
    pub built: Built,
    pub members: Vec<Member>,
}

/// Reads the facts of one group of processes: `None` when it is no session of this host's
/// (only in a container below it, nothing of it running, or — in the POSIX grouping — no
/// terminal). The user's name is left to the caller (one name service lookup per user).
pub(super) fn session_of(
    grouping: Grouping,
    key: Key,
    mut members: Vec<Member>,
    live: &HashMap<Pid, Stat>,
    host: &HostFacts,
) -> Option<Listed> {
    let details = Details::read(grouping, key, &members, live);
    if !details.ours || details.live() == 0 {
        return None;
    }
    // A zombie is no member (it has no live stat when its whole thread group is gone).
    members.retain(|m| live.contains_key(&m.pid));
    if grouping == Grouping::Posix && !details.holds_terminal() {
        return None;
    }
    let built = build(grouping, key, &members, &details, host);
    Some(Listed {
        key,
        built,
        members,
    })
}

/// Names the users of `sessions` (one name service lookup per user).
pub(super) fn name_users(sessions: &mut [Listed]) {
    let mut names = NameCache::default();
    for l in sessions {
        if let Some(uid) = l.built.session.uid {
            l.built.session.user = names.name(uid);
        }
    }
}

/// The input on the session's terminal `tty`, as a process of the session holds it (not the
/// node of that name here), read while that process is still the one the scan found.
fn controlling_input(details: &Details, tty: String) -> Option<Seen> {
    let at = details
        .stats
        .iter()
        .filter(|s| s.tty_nr != 0 && tty::name_from_tty_nr(s.tty_nr).as_deref() == Some(&tty))
        .take(3)
        .find_map(|s| {
            let proc = Proc::new(s.pid);
            let at = tty::input_on_controlling(&proc, s.tty_nr)?;
            let same = proc.try_stat().ok()??.starttime == s.start;
            same.then_some(at)
        })?;
    Some(Seen {
        at,
        source: IdleSource::Terminal(tty),
    })
}

/// A session as listed, and the PIDs of its utmp records (closed after a logoff).
pub(super) struct Built {
    pub session: Session,
    pub utmp_pids: Vec<Pid>,
    /// Worth a look at its display ([`Details::may_be_graphical`]).
    pub may_be_graphical: bool,
}

/// The session of `key` from what its members and utmp say.
fn build(
    grouping: Grouping,
    key: Key,
    members: &[Member],
    details: &Details,
    host: &HostFacts,
) -> Built {
    let earliest = details.stats.first();
    let (records, notes) = records_of(members, details, host);
    // The earliest; of records as old, the first in the file.
    let record = records.iter().min_by_key(|r| (r.time, r.index)).copied();
    let leader = record
        .map(|r| r.pid)
        .or_else(|| match grouping {
            Grouping::Posix => members
                .iter()
                .find(|m| Key::from(m.pid) == key)
                .map(|m| m.pid),
            Grouping::Audit => None,
        })
        .or(earliest.map(|e| e.pid));
    let tty = record.map(|r| r.line.clone()).or_else(|| {
        let held = details.stats.iter().find(|s| s.tty_nr != 0)?;
        tty::name_from_tty_nr(held.tty_nr)
    });
    let creator = earliest.and_then(|e| Creator::of(e.pid));
    let remote_host = creator.as_ref().and_then(|c| c.peer.clone());
    let remote_claim = match (&remote_host, record) {
        (None, Some(r)) if !r.host.is_empty() => Some(Claim {
            value: r.host.clone(),
            source: "utmp",
        }),
        _ => None,
    };
    // The first process's start; a record's time is never before it (checked above).
    let started = earliest.and_then(|e| host.clock.timestamp(e.start));
    let logon_time = match (record.and_then(|r| r.time), started) {
        (Some(r), Some(s)) => Some(r.min(s)),
        (r, s) => r.or(s),
    };
    let state = state(tty.as_deref(), host.active_vt.as_deref());
    let listed = tty.clone().and_then(|t| controlling_input(details, t));
    let activity = Activity {
        listed,
        ..Activity::default()
    };
    // Its opener runs while its login lasts; with none, its terminals tell.
    let login = match &creator {
        Some(c) if c.peer.is_some() => Login::Opener(Origin::Ssh),
        Some(_) => Login::Opener(Origin::Local),
        None => Login::Terminals {
            controlling: details
                .stats
                .iter()
                .find(|s| s.tty_nr != 0)
                .and_then(|s| tty::name_from_tty_nr(s.tty_nr)),
        },
    };
    // Without its opener, a controlling terminal that is a virtual console (by its device
    // number) is a local login still; anything else may have come from anywhere.
    let origin_unknown = creator.is_none()
        && !matches!(&login, Login::Terminals { controlling: Some(t) }
            if crate::model::is_virtual_terminal(t));
    let session = Session {
        id: SessionId::new(key.to_string()),
        uid: details.uid,
        activity,
        login,
        tty,
        state,
        remote: remote_host.is_some(),
        origin_unknown,
        remote_host,
        remote_claim,
        xrdp: creator.is_some_and(|c| c.xrdp),
        // A user's service manager (systemd --user, with an audit session of its own where
        // its PAM stack has pam_loginuid): logind's class for it, which policies leave alone
        // unless a rule names it. Only where its earliest process is that manager itself
        // (its cgroup, and the program PID 1 is): a user may move their own programs into
        // their user@.service, and a login whose opener has gone would pass for one.
        class: earliest
            .zip(details.uid)
            .filter(|(e, uid)| crate::system::cgroup::is_user_manager_process(e.pid, e.ppid, *uid))
            .map(|_| "manager".to_string()),
        logon_time,
        leader,
        processes: Some(details.live()),
        notes,
        ..Session::default()
    };
    Built {
        session,
        utmp_pids: records.iter().map(|r| r.pid).collect(),
        may_be_graphical: details.may_be_graphical(),
    }
}

/// The utmp records of the members' PIDs that describe the session, and a note on each that
/// does not.
fn records_of<'h>(
    members: &[Member],
    details: &Details,
    host: &'h HostFacts,
) -> (Vec<&'h utmp::Record>, Vec<String>) {
    let mut notes = Vec::new();
    let records = members
        .iter()
        .filter_map(|m| host.utmp.get(&m.pid))
        .flatten()
        .filter(|r| match disagreement(r, details, host) {
            None => true,
            Some(why) => {
                notes.push(format!(
                    "utmp record for {} (pid {}, user {}) ignored: {why}",
                    r.line, r.pid, r.user
                ));
                false
            }
        })
        .collect();
    (records, notes)
}

/// Why a utmp record of a member's PID does not describe this session, if it does not.
/// utmp is text other programs wrote — users too (through the `utempter` helper), and a
/// record outlives its process when nobody marks it dead, to be found again under a PID
/// reused by someone else's session. A record counts only where the kernel agrees with it:
/// its user is the session's, it was written after its process started, and its terminal is
/// one the session's processes hold.
fn disagreement(r: &utmp::Record, details: &Details, host: &HostFacts) -> Option<String> {
    /// Process start times are known to the second (the boot time is).
    const SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);
    if users::uid_of(&r.user) != details.uid || details.uid.is_none() {
        return Some("its user is not the session's".into());
    }
    let started = details
        .stats
        .iter()
        .find(|s| s.pid == r.pid)
        .and_then(|s| host.clock.timestamp(s.start));
    match (r.time, started) {
        (Some(t), Some(s)) if t.checked_add(SLACK).is_ok_and(|t| t >= s) => {}
        _ => return Some("it is older than its process".into()),
    }
    let held = tty::device_of_name(&r.line).is_some_and(|(major, minor)| {
        let dev = tty::tty_nr_of(major, minor);
        details.stats.iter().any(|s| s.tty_nr == dev)
    });
    (!held).then(|| "no process of the session holds its terminal".into())
}

/// The session's first process, when it is root's: what opened the session (sshd's
/// privileged process, xrdp's session manager, login). No user can make such a process,
/// so where it holds a TCP connection, that connection's peer is where the session came
/// from.
struct Creator {
    peer: Option<String>,
    /// xrdp's session manager (xrdp-sesman, or 0.10's xrdp-sesexec) opened the session.
    xrdp: bool,
}

impl Creator {
    fn of(pid: Pid) -> Option<Creator> {
        let proc = Proc::new(pid);
        if !proc.is_roots() {
            return None;
        }
        let xrdp = proc
            .exe()
            .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
            .is_some_and(|n| n.starts_with("xrdp-ses"));
        // xrdp's session manager holds its own connection to xrdp, not the client's.
        let peer = if xrdp {
            None
        } else {
            sockets::tcp_peer(pid).map(|ip| ip.to_string())
        };
        Some(Creator { peer, xrdp })
    }
}

/// `online` for a virtual terminal in the background; else `active`. (Whether it is
/// connected is [`crate::presence`]'s to say, from its login and what its processes hold.)
fn state(tty: Option<&str>, active_vt: Option<&str>) -> SessionState {
    match (tty, active_vt) {
        (Some(t), Some(active)) if is_virtual_terminal(t) && t != active => SessionState::Online,
        _ => SessionState::Active,
    }
}

/// Converts process start times (clock ticks since boot) into timestamps.
pub(super) struct BootClock {
    /// The moment of boot, in nanoseconds since the epoch.
    boot: Option<i128>,
    ticks: u64,
}

impl BootClock {
    /// The moment of boot to the nanosecond: now on the wall clock less the time since boot
    /// (`CLOCK_BOOTTIME`, which process start times count in); `btime` in /proc/stat is
    /// whole seconds only, and made logon times up to a second early.
    fn new() -> BootClock {
        use rustix::time::{ClockId, DynamicClockId, clock_gettime, clock_gettime_dynamic};
        let ns = |t: rustix::time::Timespec| {
            i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
        };
        let since_boot = clock_gettime_dynamic(DynamicClockId::Boottime).ok().map(ns);
        let boot = since_boot
            .map(|b| ns(clock_gettime(ClockId::Realtime)) - b)
            .or_else(|| {
                let secs = procfs::boot_time_secs().ok()?;
                Some(i128::from(secs) * 1_000_000_000)
            });
        BootClock {
            boot,
            ticks: procfs::ticks_per_second().max(1),
        }
    }

    fn timestamp(&self, start_ticks: u64) -> Option<Timestamp> {
        let since = i128::from(start_ticks) * 1_000_000_000 / i128::from(self.ticks);
        Timestamp::from_nanosecond(self.boot?.checked_add(since)?).ok()
    }
}
