//! A session's connection, and ending it alone (`logoff --disconnect`, RDS's disconnect):
//! the client goes, the session's programs stay, and the user comes back to them.
//!
//! What makes the connection is read from the kernel, never from a name:
//! - **xrdp:** xrdp's process for the connection — the holder, running as root or as the
//!   `xrdp` user, of the other end of the display's accepted socket (see
//!   [`crate::system::xrdp`]). It ends; Xorg, the desktop and the programs stay, and the
//!   user's next RDP login is given the same display by xrdp's session manager.
//! - **ssh:** the session's root process that holds a TCP connection (sshd's privileged
//!   monitor, asked through a pidfd), and every process of the session holding that same
//!   socket (its unprivileged child). They end; what runs detached (tmux, screen, nohup)
//!   stays. A shell on the connection's terminal gets SIGHUP when the terminal goes, as it
//!   would if the network dropped.
//!
//! A session with neither (a console, a local X session) has no connection to end: that is
//! said ([`Kind::NoConnection`]) and nothing is touched.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::Cut;
use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{Pid, Session};
use crate::system::handle::Handle;
use crate::system::process::Proc;
use crate::system::sockets::{self, UnixSockets};
use crate::system::xrdp;

/// After SIGKILL, how long the connection's processes get to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The processes that make a session's connection, held through pidfds, and where the
/// client is.
struct Link {
    processes: Vec<Handle>,
    client: Option<String>,
    what: &'static str,
}

/// Ends the connection of `session`, whose processes on this host are `members`: SIGTERM,
/// `timeout`, SIGKILL; done once every process of the connection is gone.
pub fn cut(session: &Session, members: &[Pid], timeout: Duration) -> Result<Cut> {
    let link = find(session, members)?;
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
fn find(session: &Session, members: &[Pid]) -> Result<Link> {
    let found = if session.xrdp {
        rdp(session, members)
    } else {
        ssh(session, members)
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

/// xrdp's process for the connection to the session's display.
fn rdp(session: &Session, members: &[Pid]) -> Option<Link> {
    let number = xrdp::display_number(session.display.as_deref()?)?;
    let sockets = UnixSockets::read();
    let peers = xrdp::display_peers(members, number, &sockets);
    let holders = sockets::holders(&peers);
    let connection = xrdp::connection(&peers, &holders);
    let pid = connection.holder?;
    let peer_inodes: Vec<u32> = peers.into_iter().collect();
    let handle = Handle::open(&Proc::new(pid), |p| {
        let held = sockets::inodes_of(p.pid());
        Ok(peer_inodes.iter().any(|i| held.contains(i)))
    })
    .ok()??;
    Some(Link {
        processes: vec![handle],
        client: connection.client,
        what: "RDP connection (xrdp's process)",
    })
}

/// sshd's processes for the session's connection: the session's first process (its leader
/// as logind has it, else the one that started first), if it is root's and holds a TCP
/// connection — sshd's monitor — and every process of the session holding that socket. A
/// root process the user started later (`sudo apt update`, with its own connections) is
/// not the session's connection.
fn ssh(session: &Session, members: &[Pid]) -> Option<Link> {
    let first = session.leader.filter(|l| members.contains(l)).or_else(|| {
        members
            .iter()
            .filter_map(|&p| Some((Proc::new(p).stat()?.starttime, p)))
            .min()
            .map(|(_, p)| p)
    })?;
    if !Proc::new(first).is_roots() {
        return None;
    }
    let (ip, inode) = sockets::tcp_connection(first)?;
    let monitor = first;
    let holding = |p: &Proc| -> std::io::Result<bool> {
        Ok(sockets::inodes_of(p.pid())
            .into_iter()
            .any(|i| u64::from(i) == inode))
    };
    let mut pids: HashSet<Pid> = members
        .iter()
        .copied()
        .filter(|&p| holding(&Proc::new(p)).unwrap_or(false))
        .collect();
    pids.insert(monitor);
    let processes: Vec<Handle> = pids
        .into_iter()
        .filter_map(|pid| Handle::open(&Proc::new(pid), holding).ok().flatten())
        .collect();
    (!processes.is_empty()).then(|| Link {
        processes,
        client: Some(ip.to_string()),
        what: "ssh connection (sshd's processes)",
    })
}
