//! A session's connection, and ending it alone (`logoff --disconnect`, RDS's disconnect):
//! the client goes, the session's programs stay, and the user comes back to them.
//!
//! What makes the connection is read from the kernel, never from a name:
//! - **xrdp:** xrdp's process for the connection — the holder, running xrdp as root or as
//!   the `xrdp` user, of the other end of the display's accepted socket (see
//!   [`crate::desktop::xrdp`]). It ends; Xorg, the desktop and the programs stay, and the
//!   user's next RDP login is given the same display by xrdp's session manager.
//! - **ssh:** the session's root process that holds a TCP connection (sshd's privileged
//!   monitor, asked through a pidfd), and every process of the session holding that same
//!   socket (its unprivileged child). They end; what runs detached (tmux, screen, nohup)
//!   stays. A shell on the connection's terminal gets SIGHUP when the terminal goes, as it
//!   would if the network dropped.
//!
//! A session with neither (a console, a local X session) has no connection to end: that is
//! said ([`Kind::NoConnection`]) and nothing is touched.

use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::Cut;
use crate::deadline::Deadline;
use crate::desktop::xrdp;
use crate::error::{Error, Kind, Result};
use crate::model::{Pid, Session};
use crate::system::handle::Handle;
use crate::system::process::{Membership, Proc};
use crate::system::sockets::{self, UnixSockets};

/// After SIGKILL, how long the connection's processes get to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The processes that make a session's connection, held through pidfds, and where the
/// client is.
struct Link {
    processes: Vec<Handle>,
    client: Option<String>,
    what: &'static str,
}

/// Ends the connection of `session`, whose processes on this host are `members` (read just
/// now; each is checked to be one, by `membership`, once its pidfd is open): SIGTERM,
/// `timeout`, SIGKILL; done once every process of the connection is gone.
pub fn cut(
    session: &Session,
    members: &[Pid],
    membership: &Membership,
    timeout: Duration,
) -> Result<Cut> {
    let link = find(session, members, membership)?;
    let start = Instant::now();
    let mut refused = 0;
    for p in &link.processes {
        if matches!(p.signal(Signal::TERM), Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied)
        {
            refused += 1;
        }
    }
    if refused == link.processes.len() {
        return Err(Error::new(
            Kind::AccessDenied,
            format!(
                "cannot disconnect {}: its {} may not be signalled",
                session.describe(),
                link.what
            ),
        ));
    }
    let deadline = Deadline::after(timeout);
    let mut forced = false;
    for p in &link.processes {
        if !p.wait(deadline) {
            forced = true;
            let _ = p.signal(Signal::KILL);
        }
    }
    let gone = Deadline::after(KILL_WAIT);
    let left = link.processes.iter().filter(|p| !p.wait(gone)).count();
    if left > 0 {
        return Err(Error::new(
            Kind::Survivors,
            format!(
                "the connection of {} did not end: {left} of its {} processes still run",
                session.describe(),
                link.what
            ),
        ));
    }
    Ok(Cut {
        ended: link.processes.len(),
        client: link.client,
        forced,
        elapsed: start.elapsed(),
    })
}

/// The processes of the session's connection.
fn find(session: &Session, members: &[Pid], membership: &Membership) -> Result<Link> {
    let found = if session.xrdp {
        rdp(session, members, membership)
    } else {
        ssh(members, membership)
    };
    found.ok_or_else(|| {
        let why = if session.xrdp {
            "no RDP client is connected to it"
        } else if session.remote {
            "its connection is already gone"
        } else {
            "it is a local login"
        };
        Error::new(
            Kind::NoConnection,
            format!(
                "{} has no connection to end ({why}); nothing was done",
                session.describe()
            ),
        )
    })
}

/// xrdp's process for the connection to the session's display. Only what processes of the
/// session hold counts: each is checked to be one once its pidfd is open, and what was read
/// of one that ended meanwhile (its PID may be another's by then) is left out.
fn rdp(session: &Session, members: &[Pid], membership: &Membership) -> Option<Link> {
    let number = xrdp::display_number(session.display.as_deref()?)?;
    let held: Vec<u32> = members
        .iter()
        .filter_map(|&p| {
            let handle = Handle::open(&Proc::new(p), |p| Ok(p.belongs(membership)))
                .ok()
                .flatten()?;
            let held = sockets::inodes_of(p);
            (!handle.has_exited()).then_some(held)
        })
        .flatten()
        .collect();
    let sockets = UnixSockets::read();
    let peers = xrdp::display_peers(&held, number, &sockets);
    let holders = sockets::holders(&peers);
    let connection = xrdp::connection(&peers, &holders);
    let pid = connection.holder?;
    let peer_inodes: Vec<u32> = peers.into_iter().collect();
    let handle = Handle::open(&Proc::new(pid), |p| {
        let held = sockets::inodes_of(p.pid());
        Ok(xrdp::runs_xrdp(p) && peer_inodes.iter().any(|i| held.contains(i)))
    })
    .ok()??;
    Some(Link {
        processes: vec![handle],
        client: connection.client,
        what: "RDP connection (xrdp's process)",
    })
}

/// sshd's processes for the session's connection: the session's first process — the one
/// that started first, as the kernel has it; sshd's monitor, which made the session — if it
/// is root's and holds a TCP connection, and every process of the session holding that
/// socket. Not the leader a listing gave: on hosts without logind that comes from utmp,
/// where sshd records its unprivileged child, and between a listing and a disconnect after a
/// grace period its PID may have gone to another process. A root process the user started
/// later (`sudo apt update`, with its own connections) is not the session's connection.
/// Each process is checked to be the session's once its pidfd is open.
fn ssh(members: &[Pid], membership: &Membership) -> Option<Link> {
    let first = members
        .iter()
        .filter_map(|&p| {
            let proc = Proc::new(p);
            Some((proc.stat()?.starttime, !proc.is_roots(), p))
        })
        .min()
        .map(|(_, _, p)| p)?;
    let monitor = Handle::open(&Proc::new(first), |p| {
        Ok(p.belongs(membership) && p.is_roots())
    })
    .ok()??;
    let (ip, inode) = sockets::tcp_connection(first)?;
    // Read by PID: what was read is the monitor's only if it still runs now.
    if monitor.has_exited() {
        return None;
    }
    let holding = |p: &Proc| -> std::io::Result<bool> {
        Ok(p.belongs(membership)
            && sockets::inodes_of(p.pid())
                .into_iter()
                .any(|i| u64::from(i) == inode))
    };
    let mut processes: Vec<Handle> = members
        .iter()
        .filter(|&&p| p != first)
        .filter(|&&p| holding(&Proc::new(p)).unwrap_or(false))
        .filter_map(|&pid| Handle::open(&Proc::new(pid), holding).ok().flatten())
        .collect();
    processes.push(monitor);
    Some(Link {
        processes,
        client: Some(ip.to_string()),
        what: "ssh connection (sshd's processes)",
    })
}
