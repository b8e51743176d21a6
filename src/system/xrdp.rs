//! xrdp sessions as the kernel shows them: which display a session serves, whether an RDP
//! client is connected to it, and from where.
//!
//! An xrdp session's X server (Xorg with xorgxrdp) listens on a unix socket named
//! `xrdp_display_N` (`/run/xrdp/sockdir/` with xrdp 0.9, `/run/xrdp/UID/` with 0.10). While
//! a client is connected, xrdp's process for that connection is connected to it: the X
//! server holds an accepted socket of that name, whose peer is held by xrdp's process, which
//! also holds the TCP connection to the client. When the client goes, that process ends and
//! only the listening socket is left: the session is disconnected (Windows' `Disc`).
//!
//! Whether a session is xrdp's at all is decided by the caller on what vouches for it
//! (logind's Service, or the session's first process being root's xrdp session manager):
//! a socket's name is its maker's choice. Connected means that the peer of the display's
//! accepted socket is held by a process of root's or of the `xrdp` user's, checked through
//! a pidfd; a user's own connection to their own socket connects nothing. The client's
//! address is that process's TCP peer.

use std::collections::{HashMap, HashSet};

use crate::model::Pid;
use crate::system::sockets::{self, Holder, UnixSockets};

/// What the kernel says of an xrdp session's connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// A client is connected through a process of xrdp's.
    pub connected: bool,
    /// Its address (the TCP peer of xrdp's process for the connection), where found.
    pub client: Option<String>,
    /// xrdp's process for the connection: ending it disconnects the client.
    pub holder: Option<Pid>,
}

/// The display number of `:10` (or `:10.0`).
pub fn display_number(display: &str) -> Option<u32> {
    let rest = display.strip_prefix(':')?;
    rest.split('.').next()?.parse().ok()
}

/// The number that ends `name` after the last `/xrdp_display_`.
fn xrdp_number(name: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once("/xrdp_display_")?;
    n.parse().ok()
}

/// The display the processes `members` serve: the number of an `xrdp_display_N` socket one
/// of them listens on (`xrdp`: true), else of an X socket (`/tmp/.X11-unix/XN`).
pub fn served_display(members: &[Pid], sockets: &UnixSockets) -> Option<(u32, bool)> {
    let mut x = None;
    for ino in members.iter().flat_map(|&p| sockets::inodes_of(p)) {
        let Some(name) = sockets
            .get(ino)
            .filter(|s| s.listening)
            .and_then(|s| s.name.as_deref())
        else {
            continue;
        };
        if let Some(number) = xrdp_number(name) {
            return Some((number, true));
        }
        let name = name.strip_prefix('@').unwrap_or(name);
        if let Some(n) = name
            .strip_prefix("/tmp/.X11-unix/X")
            .and_then(|n| n.parse().ok())
        {
            x.get_or_insert((n, false));
        }
    }
    x
}

/// Whether anything on this host listens as a display (`xrdp_display_N`, an X socket):
/// where nothing does, no session's open files need a look.
pub fn serves_displays(sockets: &UnixSockets) -> bool {
    sockets.all().any(|(_, s)| {
        s.listening
            && s.name
                .as_deref()
                .is_some_and(|n| n.contains("/xrdp_display_") || n.contains("/tmp/.X11-unix/X"))
    })
}

/// The uids xrdp's own processes run as: root's, and the `xrdp` user's (xrdp 0.10 drops to
/// it).
fn xrdp_uids() -> Vec<u32> {
    let mut uids = vec![0];
    if let Some(u) = uzers::get_user_by_name("xrdp") {
        uids.push(u.uid());
    }
    uids
}

/// The peers of the accepted sockets of display `number` that the processes `members`
/// hold: the other ends of the connections to the session's display.
pub fn display_peers(members: &[Pid], number: u32, sockets: &UnixSockets) -> HashSet<u32> {
    members
        .iter()
        .flat_map(|&p| sockets::inodes_of(p))
        .filter_map(|ino| {
            let s = sockets.get(ino).filter(|s| !s.listening && s.peer != 0)?;
            (xrdp_number(s.name.as_deref()?) == Some(number)).then_some(s.peer)
        })
        .collect()
}

/// The connection of an xrdp session whose display's connections have the other ends
/// `peers`, given who holds which socket (`holders`, from [`sockets::holders`]): connected
/// when one of them is held by a process of xrdp's, checked through a pidfd.
pub fn connection(peers: &HashSet<u32>, holders: &HashMap<u32, Vec<Pid>>) -> Connection {
    let uids = xrdp_uids();
    // Never logoff itself: its own connection to the display (a warning's window) is no
    // RDP client's, whatever the socket it reached was named.
    let me = Pid::from_raw(rustix::process::getpid().as_raw_nonzero().get());
    for peer in peers {
        for &pid in holders
            .get(peer)
            .into_iter()
            .flatten()
            .filter(|&&p| p != me)
        {
            let Some(holder) = Holder::verify(pid, *peer) else {
                continue;
            };
            if !holder.runs_as_one_of(&uids) {
                continue;
            }
            let client = sockets::tcp_peer(pid).map(|ip| ip.to_string());
            return Connection {
                connected: true,
                client,
                holder: Some(pid),
            };
        }
    }
    Connection::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn display_numbers() {
        assert_eq!(display_number(":10"), Some(10));
        assert_eq!(display_number(":10.0"), Some(10));
        assert_eq!(display_number("10"), None);
        assert_eq!(display_number(":x"), None);
        assert_eq!(xrdp_number("/run/xrdp/sockdir/xrdp_display_11"), Some(11));
        assert_eq!(xrdp_number("/tmp/x/xrdp_display_x"), None);
    }

    /// Regression (issue 17, item 3): a socket a user made and named like xrdp's display
    /// socket, and connected to, made their terminal session look like a connected RDP
    /// session from 127.0.0.1. The name is seen, the connection is not: its peer is not a
    /// process of xrdp's (the test runs as root, so it checks with root not counting).
    /// Regression (second hostile read): logoff's own connection to a display — a warning's
    /// window, led by a user's link to a socket so named — made logoff itself "xrdp's
    /// process", which a disconnect would then kill. logoff never counts.
    #[test]
    fn a_connection_is_xrdps_only_when_xrdp_holds_its_other_end() {
        let dir = std::env::temp_dir().join(format!("logoff-xrdp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("xrdp_display_77");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let client = UnixStream::connect(&path).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let me = Pid::own();
        let sockets = UnixSockets::read();
        assert_eq!(served_display(&[me], &sockets), Some((77, true)));
        let peers = display_peers(&[me], 77, &sockets);
        assert_eq!(
            connection(&peers, &sockets::holders(&peers)),
            Connection::default(),
            "logoff itself holds the other end: never an RDP client's"
        );
        // Another process holds it (a child given the connecting end, and logoff lets go).
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                client,
            )))
            .spawn()
            .expect("sleep");
        let other = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let c = connection(&peers, &sockets::holders(&peers));
        let _ = child.kill();
        let _ = child.wait();
        if rustix::process::geteuid().is_root() {
            // A root process holds the other end: as xrdp's would.
            assert!(c.connected && c.holder == Some(other), "{c:?}");
        } else {
            assert_eq!(
                c,
                Connection::default(),
                "a user's own peer connects nothing"
            );
        }
        assert!(display_peers(&[me], 78, &sockets).is_empty());
        drop((accepted, listener));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
