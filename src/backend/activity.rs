//! What a session's users did last, from everything the session is, for both backends on
//! this host ([`observe`]):
//!
//! - **Terminals:** every terminal its processes hold (verified by device number, as the
//!   warnings are): the latest input (access time) and output (modification time) on any
//!   of them — a second ssh channel's terminal counts as much as the first.
//! - **Displays:** what its X server says (see [`super::desktop`]), where it has one.
//! - **tmux and screen:** a server of the session whose client is attached from another live
//!   session of the same user is in use: its idle time is the client's, and it is not
//!   disconnected. Who is attached is read from the kernel (the peers of the server's
//!   sockets, their holders checked through pidfds), never from the client's or server's
//!   own words; nothing of theirs is run.
//! - **CPU:** the CPU time its processes have used so far (the planner turns two readings
//!   into "busy").
//! - **Idle locks:** a `systemd-inhibit --what=idle` lock held by one of its processes
//!   (logind's list; the backend passes it in).
//!
//! What counts as activity is the policy's choice, rule by rule
//! ([`crate::policy::eval`]); a session's table IDLE is its latest input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{IdleSource, Inhibitor, Pid, Seen, Session, SessionState};
use crate::system::process::{Membership, Proc};
use crate::system::sockets::{Holder, UnixSockets};
use crate::system::tty::{self, Holdings, Terminal};

/// One session looked at: its processes on this host, and what makes a process its own.
pub struct Look<'a> {
    pub session: &'a mut Session,
    pub members: Vec<Pid>,
    pub membership: Membership,
    /// Its scope's cgroup directory on this host, where it has one: its CPU time is the
    /// cgroup's (which counts processes that have ended, as a build's compilers).
    pub cgroup: Option<PathBuf>,
}

/// Which of the costlier sources to read (terminals and tmux/screen always are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    /// The CPU time of each session's processes.
    pub cpu: bool,
    /// logind's idle locks.
    pub inhibitors: bool,
    /// The backend's states come from processes (procfs): a session whose only terminals
    /// are panes it serves itself, to nobody, is disconnected.
    pub states_from_processes: bool,
}

/// Fills in each session's [`crate::model::Activity`] (see the module's doc), and its idle
/// time as the table shows it: its latest input. `inhibitors`: the idle locks the backend
/// knows of, by holder.
pub fn observe(looks: &mut [Look<'_>], sources: Sources, inhibitors: &[Inhibitor]) {
    let mut held = Vec::with_capacity(looks.len());
    for look in looks.iter_mut() {
        held.push(terminals(look));
        if sources.cpu {
            let cgroup = look
                .cgroup
                .as_deref()
                .and_then(crate::system::cgroup::cpu_time);
            look.session.activity.cpu = Some(cgroup.unwrap_or_else(|| cpu_of(&look.members)));
        }
    }
    let by_pid: HashMap<Pid, usize> = looks
        .iter()
        .enumerate()
        .flat_map(|(at, l)| l.members.iter().map(move |p| (*p, at)))
        .collect();
    let sockets = UnixSockets::read();
    multiplexers(looks, &held, &by_pid, &sockets);
    shared_terminals(looks, &held, &sockets);
    if sources.states_from_processes {
        for (look, holdings) in looks.iter_mut().zip(&held) {
            if matches!(
                look.session.state,
                SessionState::Active | SessionState::Online
            ) && look.session.activity.in_use_by.is_none()
                && serves_only_itself(look, holdings, &sockets)
            {
                look.session.state = SessionState::Disconnected;
            }
        }
    }
    for inhibitor in inhibitors {
        if let Some(&at) = by_pid.get(&inhibitor.pid) {
            looks[at].session.activity.inhibitor = Some(inhibitor.clone());
        }
    }
    for look in looks.iter_mut() {
        let s = &mut *look.session;
        s.idle_since = s
            .activity
            .input
            .as_ref()
            .map(|seen| seen.at)
            .or(s.idle_since);
    }
}

/// The latest input and output on the terminals the session's processes hold; those
/// terminals, with their holders, and the masters they hold.
fn terminals(look: &mut Look<'_>) -> Holdings {
    let membership = &look.membership;
    let held = tty::held_with_times(look.members.iter().map(|p| Proc::new(*p)), |p| {
        Ok(p.belongs(membership))
    });
    let activity = &mut look.session.activity;
    for (terminal, h) in &held.terminals {
        if let Some(at) = h.times.input {
            later(
                &mut activity.input,
                Seen {
                    at,
                    source: IdleSource::Terminal(terminal.name.clone()),
                },
            );
        }
        activity.output = activity.output.max(h.times.output);
    }
    held
}

/// Keeps the later of what was seen and `seen`.
fn later(input: &mut Option<Seen>, seen: Seen) {
    if input.as_ref().is_none_or(|old| seen.at > old.at) {
        *input = Some(seen);
    }
}

/// The CPU time `members` and their children that have ended have used (user and system,
/// from `/proc/PID/stat`).
fn cpu_of(members: &[Pid]) -> Duration {
    let ticks = procfs::ticks_per_second().max(1);
    let total: u64 = members
        .iter()
        .filter_map(|p| Proc::new(*p).stat())
        .map(|s| s.cpu_ticks())
        .sum();
    Duration::from_millis(total.saturating_mul(1000) / ticks)
}

/// What multiplexer a socket name is a server's (`tmux`, `screen`), by where it is: tmux's
/// `tmux-UID/NAME`, screen's `S-USER/PID.NAME`. A name a user chooses: it only says which
/// sockets to look at; what decides is who holds their other ends.
fn multiplexer(name: &str) -> Option<&'static str> {
    let dir = Path::new(name).parent()?.file_name()?.to_str()?;
    if dir
        .strip_prefix("tmux-")
        .is_some_and(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
    {
        Some("tmux")
    } else if dir.starts_with("S-") {
        Some("screen")
    } else {
        None
    }
}

/// Sessions whose tmux or screen server has a client attached from another live session of
/// the same user: in use by it, and idle as long as it is.
fn multiplexers(
    looks: &mut [Look<'_>],
    held: &[Holdings],
    by_pid: &HashMap<Pid, usize>,
    sockets: &UnixSockets,
) {
    // The other ends of every server's connections, by the session that serves them.
    let mut served: Vec<(usize, &'static str, u32)> = Vec::new();
    for (at, holdings) in held.iter().enumerate() {
        for (_, ino) in &holdings.sockets {
            let Some(s) = sockets.get(*ino).filter(|s| !s.listening && s.peer != 0) else {
                continue;
            };
            if let Some(kind) = s.name.as_deref().and_then(multiplexer) {
                served.push((at, kind, s.peer));
            }
        }
    }
    if served.is_empty() {
        return;
    }
    // A client is a process of a session looked at: who holds each peer, among them.
    let peers: HashSet<u32> = served.iter().map(|(_, _, peer)| *peer).collect();
    let mut holders: HashMap<u32, Vec<Pid>> = HashMap::new();
    for (pid, ino) in held.iter().flat_map(|h| &h.sockets) {
        if peers.contains(ino) {
            holders.entry(*ino).or_default().push(*pid);
        }
    }
    for (server, kind, peer) in served {
        let client = holders
            .get(&peer)
            .into_iter()
            .flatten()
            .filter(|pid| Holder::verify(**pid, peer).is_some())
            .find_map(|pid| by_pid.get(pid).copied())
            .filter(|&c| c != server && attached_from(&looks[c], &looks[server]));
        let Some(client) = client else {
            continue;
        };
        let by = looks[client].session.id.clone();
        let seen = looks[client].session.activity.input.clone();
        let activity = &mut looks[server].session.activity;
        activity.in_use_by = Some(by.clone());
        // The server holds its clients' terminals too (it writes to them): the client's
        // input is then already the server's latest, and is shown as what it is.
        if let Some(seen) = seen
            && activity.input.as_ref().is_none_or(|old| seen.at >= old.at)
        {
            let terminal = match seen.source {
                IdleSource::Terminal(t) => Some(t),
                _ => None,
            };
            activity.input = Some(Seen {
                at: seen.at,
                source: IdleSource::Multiplexer { kind, by, terminal },
            });
        }
    }
}

/// Sessions holding a terminal that is another live session's (of the same user) —
/// the controlling terminal of one of its processes, which the kernel gives one POSIX
/// session only — are in use by that session: a screen server holds the terminal of each
/// session attached to it (its clients connect, say who they are, and go), as a tmux server
/// does. Its input is already the session's latest; this says whose it is.
fn shared_terminals(looks: &mut [Look<'_>], held: &[Holdings], sockets: &UnixSockets) {
    let mut holders: BTreeMap<&Terminal, Vec<usize>> = BTreeMap::new();
    for (at, holdings) in held.iter().enumerate() {
        for terminal in holdings.terminals.keys() {
            holders.entry(terminal).or_default().push(at);
        }
    }
    for (terminal, sessions) in holders.into_iter().filter(|(_, s)| s.len() > 1) {
        let controls = |at: usize| {
            held[at].terminals.get(terminal).is_some_and(|h| {
                h.holders
                    .iter()
                    .filter_map(|p| Proc::new(*p).stat())
                    .any(|stat| terminal.controls(&stat))
            })
        };
        let Some(home) = sessions.iter().copied().find(|&at| controls(at)) else {
            continue;
        };
        for guest in sessions.into_iter().filter(|&at| at != home) {
            if looks[guest].session.activity.in_use_by.is_some()
                || !attached_from(&looks[home], &looks[guest])
            {
                continue;
            }
            let by = looks[home].session.id.clone();
            let kind = served_kind(
                &held[guest].terminals[terminal].holders,
                &held[guest],
                sockets,
            );
            let activity = &mut looks[guest].session.activity;
            activity.in_use_by = Some(by.clone());
            if let Some(at) = held[guest].terminals[terminal].times.input
                && activity.input.as_ref().is_none_or(|old| at >= old.at)
            {
                activity.input = Some(Seen {
                    at,
                    source: IdleSource::Multiplexer {
                        kind,
                        by,
                        terminal: Some(terminal.name.clone()),
                    },
                });
            }
        }
    }
}

/// What serves a terminal its holders hold for another session: `tmux` or `screen` when
/// one of them listens on such a server's socket (by its name: a label only), else a
/// program of the session.
fn served_kind(holders: &[Pid], holdings: &Holdings, sockets: &UnixSockets) -> &'static str {
    holdings
        .sockets
        .iter()
        .filter(|(pid, _)| holders.contains(pid))
        .filter_map(|(_, ino)| sockets.get(*ino))
        .filter(|s| s.listening)
        .find_map(|s| s.name.as_deref().and_then(multiplexer))
        .unwrap_or(crate::model::MULTIPLEXED_BY_A_PROGRAM)
}

/// Whether every controlling terminal of the session's processes is a pseudo-terminal whose
/// master a process of the session itself holds, a server with no client
/// ([`serves_nobody`]): a tmux or screen server's panes, with no client attached — what is
/// left of a session whose login has gone.
fn serves_only_itself(look: &Look<'_>, holdings: &Holdings, sockets: &UnixSockets) -> bool {
    // The pseudo-terminals served from within, to nobody: their masters' holders all
    // unconnected. Only then are the processes' controlling terminals read.
    let mut lone: Vec<u32> = holdings.masters.iter().map(|(_, index)| *index).collect();
    lone.retain(|index| {
        holdings
            .masters
            .iter()
            .filter(|(_, i)| i == index)
            .all(|(pid, _)| serves_nobody(*pid, holdings, sockets))
    });
    if lone.is_empty() {
        return false;
    }
    let mut controlling = look
        .members
        .iter()
        .filter_map(|p| Proc::new(*p).stat())
        .filter_map(|s| u64::try_from(s.tty_nr).ok())
        .filter(|&nr| nr != 0)
        .peekable();
    controlling.peek().is_some()
        && controlling.all(|nr| tty::pts_index(nr).is_some_and(|index| lone.contains(&index)))
}

/// Whether process `pid` is a server with no client: it listens on a unix socket (as tmux,
/// screen, dtach do) and is connected to nobody — no unix socket with a peer, no socket
/// of another kind (TCP, say). `script`, sshd and terminal emulators listen on nothing.
fn serves_nobody(pid: Pid, holdings: &Holdings, sockets: &UnixSockets) -> bool {
    let mut held = holdings
        .sockets
        .iter()
        .filter(|(holder, _)| *holder == pid)
        .map(|(_, ino)| sockets.get(*ino));
    let mut listens = false;
    for s in held.by_ref() {
        match s {
            Some(s) if s.listening => listens = true,
            Some(s) if s.peer == 0 => {}
            _ => return false,
        }
    }
    listens
}

/// Whether `client`'s session can vouch for `server`'s: the same user, and live itself.
fn attached_from(client: &Look<'_>, server: &Look<'_>) -> bool {
    client.session.uid.is_some()
        && client.session.uid == server.session.uid
        && matches!(
            client.session.state,
            SessionState::Active | SessionState::Online
        )
        && client.session.activity.in_use_by.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplexers_by_where_their_sockets_are() {
        assert_eq!(multiplexer("/tmp/tmux-1000/default"), Some("tmux"));
        assert_eq!(multiplexer("/run/user/1000/tmux-1000/work"), Some("tmux"));
        assert_eq!(
            multiplexer("/run/screen/S-bob/4242.pts-0.host"),
            Some("screen")
        );
        assert_eq!(multiplexer("/tmp/tmux-x/default"), None);
        assert_eq!(multiplexer("/tmp/.X11-unix/X0"), None);
        assert_eq!(multiplexer("@/tmp/tmux-1000/default"), Some("tmux"));
    }
}
