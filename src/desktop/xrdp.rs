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
//! accepted socket (a peer bound to no name: see [`display_peers`]) is held by xrdp itself,
//! running as root or as the `xrdp` user, checked through a pidfd; a user's own connection
//! to their own socket connects nothing. The client's address is that process's TCP peer.

use std::collections::{HashMap, HashSet};

use crate::model::Pid;
use crate::system::process::Proc;
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

/// The peers of the accepted sockets of display `number` among the sockets `held` (the
/// inodes the session's processes hold): the other ends of the connections to the session's
/// display.
///
/// A socket counts only if it carries the name of a display socket the session listens on
/// and its other end carries no name. An accepted socket carries its listener's name, and
/// its other end is the client that connected — xrdp's, which binds none. A user can give
/// a socket of their own any name before connecting it elsewhere (a root service's socket,
/// say); the other end is then an accepted socket, which always carries its listener's
/// name: that connection is not the display's.
pub fn display_peers(held: &[u32], number: u32, sockets: &UnixSockets) -> HashSet<u32> {
    let listening: HashSet<&str> = held
        .iter()
        .filter_map(|&ino| sockets.get(ino).filter(|s| s.listening))
        .filter_map(|s| s.name.as_deref())
        .filter(|name| xrdp_number(name) == Some(number))
        .collect();
    held.iter()
        .filter_map(|&ino| {
            let s = sockets.get(ino).filter(|s| !s.listening && s.peer != 0)?;
            listening.contains(s.name.as_deref()?).then_some(())?;
            let other = sockets.get(s.peer)?;
            other.name.is_none().then_some(s.peer)
        })
        .collect()
}

/// The unix sockets the processes `members` hold (by inode).
pub fn held_by(members: &[Pid]) -> Vec<u32> {
    members
        .iter()
        .flat_map(|&p| sockets::inodes_of(p))
        .collect()
}

/// Whether process `p` is xrdp's: every uid of it root's or the `xrdp` user's (so no user
/// chose its program), and that program xrdp (see [`is_xrdp`]).
pub fn runs_xrdp(p: &Proc) -> bool {
    let uids = xrdp_uids();
    p.uids()
        .ok()
        .flatten()
        .is_some_and(|ids| ids.iter().all(|u| uids.contains(u)))
        && p.exe().is_some_and(|e| is_xrdp(&e))
}

/// Whether `program` (a process's `/proc/PID/exe`) is xrdp itself: `xrdp`, or `xrdp
/// (deleted)` once an upgrade has replaced the file it runs.
fn is_xrdp(program: &std::path::Path) -> bool {
    program
        .file_name()
        .is_some_and(|n| n == "xrdp" || n == "xrdp (deleted)")
}

/// The connection of an xrdp session whose display's connections have the other ends
/// `peers`, given who holds which socket (`holders`, from [`sockets::holders`]): connected
/// when one of them is held by xrdp's process — running xrdp, as root or as the `xrdp` user
/// (what root started, not a user's claim) — checked through a pidfd.
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
            if !holder.runs_as_one_of(&uids) || !holder.program.as_deref().is_some_and(is_xrdp) {
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

    /// Held by each test that makes display sockets: they are all this process's, and
    /// `served_display` takes the first it finds.
    static DISPLAYS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A copy of `sleep` named `name` in `dir`, holding `held` as its standard input: a
    /// process running a program of that name.
    fn holder_named(
        dir: &std::path::Path,
        name: &str,
        held: std::os::fd::OwnedFd,
    ) -> std::process::Child {
        let program = dir.join(name);
        if !program.exists() {
            std::fs::copy("/bin/sleep", &program).expect("copy sleep");
        }
        std::process::Command::new(&program)
            .arg("30")
            .stdin(std::process::Stdio::from(held))
            .spawn()
            .expect("spawn")
    }

    /// Regression (issue 17, item 3): a socket a user made and named like xrdp's display
    /// socket, and connected to, made their terminal session look like a connected RDP
    /// session from 127.0.0.1. The name is seen, the connection is not: its peer is not a
    /// process of xrdp's (the test runs as root, so it checks with root not counting).
    /// Regression (second hostile read): logoff's own connection to a display — a warning's
    /// window, led by a user's link to a socket so named — made logoff itself "xrdp's
    /// process", which a disconnect would then kill. logoff never counts.
    /// Regression (third hostile read): any process of root's holding the other end was
    /// taken for xrdp's, and a disconnect would have ended it: only xrdp itself counts.
    #[test]
    fn a_connection_is_xrdps_only_when_xrdp_holds_its_other_end() {
        let _one = DISPLAYS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let peers = display_peers(&held_by(&[me]), 77, &sockets);
        assert_eq!(peers.len(), 1, "the display's one connection");
        assert_eq!(
            connection(&peers, &sockets::holders(&peers)),
            Connection::default(),
            "logoff itself holds the other end: never an RDP client's"
        );
        // Another process of root's holds it, running another program than xrdp.
        let other_end = client.try_clone().expect("dup");
        let mut child = holder_named(&dir, "sleep", std::os::fd::OwnedFd::from(other_end));
        let c = connection(&peers, &sockets::holders(&peers));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            c,
            Connection::default(),
            "a root process that is not xrdp: {c:?}"
        );
        // xrdp holds it (a program so named; logoff lets go of its own end).
        let mut child = holder_named(&dir, "xrdp", std::os::fd::OwnedFd::from(client));
        let xrdp = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let c = connection(&peers, &sockets::holders(&peers));
        let _ = child.kill();
        let _ = child.wait();
        if rustix::process::geteuid().is_root() {
            assert!(c.connected && c.holder == Some(xrdp), "{c:?}");
        } else {
            assert_eq!(
                c,
                Connection::default(),
                "a user's own peer connects nothing"
            );
        }
        assert!(display_peers(&held_by(&[me]), 78, &sockets).is_empty());
        drop((accepted, listener));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Regression (third hostile read): a user's session listens on its display socket, and
    /// one of its processes binds a socket of its own to the same name (the user owns the
    /// display socket's file and may remove it first; an abstract name needs nothing) and
    /// connects it to a root service. That connection was taken for the display's, the
    /// service's process for xrdp's — and a disconnect of the session killed it. A display's
    /// connection is an accepted socket, whose other end carries no name; the other end of
    /// one a user connected elsewhere carries its listener's name.
    #[test]
    fn a_socket_named_after_the_display_and_connected_elsewhere_is_not_the_displays() {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
        let _one = DISPLAYS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = std::env::temp_dir().join(format!("logoff-xrdp-named-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let display = dir.join("xrdp_display_79");
        let service = dir.join("service");
        let _ = std::fs::remove_file(&display);
        let _ = std::fs::remove_file(&service);
        let listener = UnixListener::bind(&display).expect("bind the display");
        std::fs::remove_file(&display).expect("the user removes the display socket's file");
        let root_service = UnixListener::bind(&service).expect("bind the service");
        let named =
            rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).expect("socket");
        let name = SocketAddrUnix::new(&display).expect("name");
        rustix::net::bind(&named, &name).expect("bind a socket to the display's name");
        let to = SocketAddrUnix::new(&service).expect("name");
        rustix::net::connect(&named, &to).expect("connect it to the service");
        let (at_service, _) = root_service.accept().expect("accept");
        let me = Pid::own();
        let sockets = UnixSockets::read();
        assert_eq!(served_display(&[me], &sockets), Some((79, true)));
        assert!(
            display_peers(&held_by(&[me]), 79, &sockets).is_empty(),
            "a connection to another service is not the display's"
        );
        drop((named, at_service, root_service, listener));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
