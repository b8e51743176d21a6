//! What a session's users did last and what reaches it, from everything the session is, for
//! both backends on this host ([`observe`]). Facts only: what they mean — idle since when,
//! connected or not, by what — is [`crate::presence`]'s to say.
//!
//! - **Terminals:** every terminal its processes hold (verified by device number, as the
//!   warnings are): its last input (access time), output (modification time) and change time,
//!   whether it is a process's controlling terminal, and who serves it — whoever holds its
//!   master side: nobody of the session (sshd's, the console), a server of the session that
//!   listens on a unix socket (tmux, screen), or another program of it (`mosh-server`).
//! - **Clients:** the other sessions whose processes hold the other end of a socket of this
//!   one's — a tmux or screen client attached to its server, a forward's sshd connected to
//!   a server of it over loopback TCP, any unix, TCP or UDP socket — and the sessions whose
//!   controlling terminal it holds (screen's server holds its clients' terminals). Read from
//!   the kernel (sock_diag; the holders as the pidfd-checked walk of the sessions'
//!   descriptors found them), never from the programs' own
//!   words; nothing of theirs is run. Looked for only where the session's own login does not
//!   last (a live login needs no client).
//! - **CPU:** the CPU time its processes have used so far (the planner turns two readings
//!   into "busy").
//! - **Idle locks:** a `systemd-inhibit --what=idle` lock held by one of its processes
//!   (logind's list; the backend passes it in).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::model::{
    Client, Inhibitor, Looked, MULTIPLEXED_BY_A_PROGRAM, Pid, Served, TerminalSeen, Through,
};
use crate::system::process::{Look, Proc};
use crate::system::sockets::{self, InetTable, UnixSockets};
use crate::system::tty::{self, Holdings, Terminal};

/// Which of the costlier sources to read (terminals and clients always are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    /// The CPU time of each session's processes.
    pub cpu: bool,
    /// logind's idle locks.
    pub inhibitors: bool,
}

/// Fills in each session's [`crate::model::Activity`] (see the module's doc).
/// `inhibitors`: the idle locks the backend knows of, by holder.
pub fn observe(looks: &mut [Look<'_>], sources: Sources, inhibitors: &[Inhibitor]) {
    let mut held = Vec::with_capacity(looks.len());
    for look in looks.iter_mut() {
        held.push(tty::held_with_times(
            look.members.iter().map(|p| Proc::new(*p)),
            |p| Ok(p.belongs(&look.membership)),
        ));
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
    let unix = UnixSockets::read_checked();
    let empty = UnixSockets::default();
    let sockets = unix.as_ref().unwrap_or(&empty);
    for (look, holdings) in looks.iter_mut().zip(&held) {
        look.session.activity.terminals = terminals(&look.members, holdings, sockets);
        look.session.activity.clients.clear();
        look.session.activity.looked = match (&unix, &holdings.partial) {
            (Err(e), _) => Looked::Partly(format!("the unix sockets could not be read ({e})")),
            (Ok(_), Some(why)) => Looked::Partly(format!("only part of it was looked at: {why}")),
            (Ok(_), None) => Looked::Yes,
        };
    }
    // Clients are looked for where the login itself does not last.
    let wanted: Vec<bool> = looks
        .iter()
        .map(|l| l.session.login.lasts(&l.session.state) != Some(true))
        .collect();
    if wanted.iter().any(|w| *w) {
        let holders = SocketHolders::of(&held, &by_pid);
        unix_clients(looks, &held, &wanted, &holders, sockets);
        shared_terminals(looks, &held, &wanted, sockets);
        inet_clients(looks, &held, &wanted, &holders, sockets);
    }
    for inhibitor in inhibitors {
        if let Some(&at) = by_pid.get(&inhibitor.pid) {
            looks[at].session.activity.inhibitor = Some(inhibitor.clone());
        }
    }
}

/// Each terminal the session's processes hold, with its times, whether it controls one of
/// them, and who serves it.
fn terminals(members: &[Pid], holdings: &Holdings, sockets: &UnixSockets) -> Vec<TerminalSeen> {
    if holdings.terminals.is_empty() {
        return Vec::new();
    }
    let controlling: HashSet<i32> = members
        .iter()
        .filter_map(|p| Proc::new(*p).stat())
        .map(|s| s.tty_nr)
        .filter(|&nr| nr != 0)
        .collect();
    holdings
        .terminals
        .iter()
        .map(|(terminal, h)| TerminalSeen {
            name: terminal.name.clone(),
            input: h.times.input,
            output: h.times.output,
            made: h.times.made,
            controlling: tty::device_of_name(&terminal.name)
                .is_some_and(|(major, minor)| controlling.contains(&tty::tty_nr_of(major, minor))),
            served: served(terminal, holdings, sockets),
        })
        .collect()
}

/// Who of the session serves a pseudo-terminal (holds its master side): a server that
/// listens on a unix socket is a multiplexer (named after the socket, where it is tmux's or
/// screen's), any other holder a program.
fn served(terminal: &Terminal, holdings: &Holdings, sockets: &UnixSockets) -> Served {
    let index = tty::device_of_name(&terminal.name)
        .and_then(|(major, minor)| tty::pts_index(rustix::fs::makedev(major, minor)));
    let holders: Vec<Pid> = holdings
        .masters
        .iter()
        .filter(|(_, i)| Some(*i) == index)
        .map(|(pid, _)| *pid)
        .collect();
    let Some(&first) = holders.first() else {
        return Served::Outside;
    };
    let listening: Vec<&sockets::UnixSocket> = holdings
        .sockets
        .iter()
        .filter(|(pid, _)| holders.contains(pid))
        .filter_map(|(_, ino)| sockets.get(*ino))
        .filter(|s| s.listening)
        .collect();
    if listening.is_empty() {
        return Served::Program {
            pid: first,
            command: Proc::new(first).command_name(),
        };
    }
    Served::Multiplexer {
        kind: listening
            .iter()
            .find_map(|s| s.name.as_deref().and_then(multiplexer))
            .unwrap_or(MULTIPLEXED_BY_A_PROGRAM),
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
/// `tmux-UID/NAME`, screen's `S-USER/PID.NAME`. A name a user chooses: a label only; what
/// decides is who holds the other ends.
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

/// Which sessions' processes hold each socket: read in the walk of their descriptors, each
/// between a pidfd opened first and a check that it was still a member of its session after
/// (what [`tty::held_with_times`] vouches for), so a PID reused meanwhile lends nothing.
/// Each session once per socket, however many of its processes or descriptors hold it.
struct SocketHolders {
    by_inode: HashMap<u32, Vec<(usize, Pid)>>,
}

impl SocketHolders {
    fn of(held: &[Holdings], by_pid: &HashMap<Pid, usize>) -> SocketHolders {
        let mut by_inode: HashMap<u32, Vec<(usize, Pid)>> = HashMap::new();
        for (pid, ino) in held.iter().flat_map(|h| &h.sockets) {
            let Some(&at) = by_pid.get(pid) else {
                continue;
            };
            let holders = by_inode.entry(*ino).or_default();
            if !holders.iter().any(|(a, _)| *a == at) {
                holders.push((at, *pid));
            }
        }
        SocketHolders { by_inode }
    }

    /// Every session looked at but `except` one of whose processes holds socket `inode`,
    /// with one such process.
    fn sessions_of(&self, inode: u32, except: usize) -> impl Iterator<Item = (usize, Pid)> + '_ {
        self.by_inode
            .get(&inode)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |(at, _)| *at != except)
    }
}

/// The sockets a session's processes hold, each once.
fn distinct_sockets(holdings: &Holdings) -> Vec<u32> {
    let mut inodes: Vec<u32> = holdings.sockets.iter().map(|(_, ino)| *ino).collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

/// Adds `client` to the clients of `looks[at]`, once per session: by what says most of it
/// (a multiplexer's client, then a forward, then any socket).
fn add(looks: &mut [Look<'_>], at: usize, client: Client) {
    let rank = |t: &Through| match t {
        Through::Multiplexer { .. } => 0,
        Through::Forward => 1,
        Through::Socket { .. } => 2,
    };
    let clients = &mut looks[at].session.activity.clients;
    match clients.iter_mut().find(|c| c.session == client.session) {
        Some(c) if rank(&client.through) < rank(&c.through) => *c = client,
        Some(_) => {}
        None => clients.push(client),
    }
}

/// Clients over unix sockets: a socket of the session's whose peer another session's process
/// holds (a tmux or screen client, where the socket bears such a server's name).
fn unix_clients(
    looks: &mut [Look<'_>],
    held: &[Holdings],
    wanted: &[bool],
    holders: &SocketHolders,
    sockets: &UnixSockets,
) {
    for (at, holdings) in held.iter().enumerate().filter(|(at, _)| wanted[*at]) {
        for ino in distinct_sockets(holdings) {
            let Some(s) = sockets.get(ino).filter(|s| !s.listening && s.peer != 0) else {
                continue;
            };
            let through = match s.name.as_deref().and_then(multiplexer) {
                Some(kind) => Through::Multiplexer {
                    kind,
                    terminal: None,
                },
                None => Through::Socket { kind: "unix" },
            };
            // Every session holding the other end: which is live is presence's to say.
            let clients: Vec<usize> = holders.sessions_of(s.peer, at).map(|(c, _)| c).collect();
            for client in clients {
                let session = looks[client].session.id.clone();
                add(
                    looks,
                    at,
                    Client {
                        session,
                        through: through.clone(),
                    },
                );
            }
        }
    }
}

/// Sessions holding a terminal that is another session's — the controlling terminal of one
/// of its processes, which the kernel gives one POSIX session only — are reached by that
/// session: a screen server holds the terminal of each session attached to it (its clients
/// connect, say who they are, and go), as a tmux server does.
fn shared_terminals(
    looks: &mut [Look<'_>],
    held: &[Holdings],
    wanted: &[bool],
    sockets: &UnixSockets,
) {
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
        // Every session one of whose processes has it as its controlling terminal (a
        // terminal of another devpts instance has the same number: each is a candidate, and
        // only a live one of the same user counts, as presence decides).
        let homes: Vec<usize> = sessions
            .iter()
            .copied()
            .filter(|&at| controls(at))
            .collect();
        for guest in sessions
            .into_iter()
            .filter(|at| !homes.contains(at) && wanted[*at])
        {
            let kind = served_kind(
                &held[guest].terminals[terminal].holders,
                &held[guest],
                sockets,
            );
            for &home in &homes {
                let session = looks[home].session.id.clone();
                let through = Through::Multiplexer {
                    kind,
                    terminal: Some(terminal.name.clone()),
                };
                add(looks, guest, Client { session, through });
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
        .unwrap_or(MULTIPLEXED_BY_A_PROGRAM)
}

/// Clients over TCP and UDP on this host: a connected socket of the session's whose other
/// end (the connection with the same two addresses the other way round, in the kernel's
/// table) another session's process holds — a forward's sshd, where that process runs sshd.
fn inet_clients(
    looks: &mut [Look<'_>],
    held: &[Holdings],
    wanted: &[bool],
    holders: &SocketHolders,
    sockets: &UnixSockets,
) {
    // Only sockets the unix table does not name can be TCP or UDP ones.
    let maybe = |at: usize| {
        held[at]
            .sockets
            .iter()
            .any(|(_, ino)| sockets.get(*ino).is_none())
    };
    if !(0..held.len()).any(|at| wanted[at] && maybe(at)) {
        return;
    }
    let table = match InetTable::read() {
        Ok(t) => t,
        Err(e) => {
            for (look, _) in looks.iter_mut().zip(wanted).filter(|(_, w)| **w) {
                look.session.activity.looked = Looked::Partly(format!(
                    "the TCP and UDP connections could not be read ({e})"
                ));
            }
            return;
        }
    };
    for (at, holdings) in held.iter().enumerate().filter(|(at, _)| wanted[*at]) {
        for ino in distinct_sockets(holdings) {
            let Some((peer, kind)) = table.peer_of(ino) else {
                continue;
            };
            let found: Vec<(usize, Pid)> = holders.sessions_of(peer, at).collect();
            for (client, holder) in found {
                // A label only (what the connection is called): what it runs is its own choice.
                let sshd = Proc::new(holder)
                    .exe()
                    .as_deref()
                    .and_then(Path::file_name)
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| matches!(n, "sshd" | "sshd-session"));
                let through = if sshd && kind == "tcp" {
                    Through::Forward
                } else {
                    Through::Socket { kind }
                };
                let session = looks[client].session.id.clone();
                add(looks, at, Client { session, through });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (hostile read of issue 25): only the first session holding the other end of
    /// a socket was taken, so an abandoned session holding it hid a live one that held it
    /// too; and holders were walked once per descriptor. Every session holding it is a
    /// candidate, each once.
    #[test]
    fn every_session_holding_the_other_end_is_a_candidate_once() {
        let pid = |n| Pid::from_raw(n);
        let holdings = |pairs: &[(i32, u32)]| Holdings {
            sockets: pairs.iter().map(|(p, i)| (pid(*p), *i)).collect(),
            ..Holdings::default()
        };
        // Session 1: pids 10, 11 hold socket 7 (many times over); session 2: pid 20.
        let held = [
            holdings(&[(10, 7), (10, 7), (11, 7), (10, 8)]),
            holdings(&[(20, 7)]),
            holdings(&[(30, 9)]),
        ];
        let by_pid: HashMap<Pid, usize> =
            [(pid(10), 0), (pid(11), 0), (pid(20), 1), (pid(30), 2)].into();
        let holders = SocketHolders::of(&held, &by_pid);
        let of = |ino, except| -> Vec<usize> {
            holders.sessions_of(ino, except).map(|(at, _)| at).collect()
        };
        assert_eq!(of(7, 2), [0, 1]);
        assert_eq!(of(7, 0), [1]);
        assert_eq!(of(9, 2), Vec::<usize>::new());
        assert_eq!(distinct_sockets(&held[0]), [7, 8]);
    }

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
