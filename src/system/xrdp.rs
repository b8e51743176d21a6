//! xrdp sessions as the kernel shows them: whether an RDP client is connected, and from
//! where.
//!
//! An xrdp session's X server (Xorg with xorgxrdp) listens on a unix socket named
//! `xrdp_display_N` (`/run/xrdp/sockdir/xrdp_display_N` with xrdp 0.9; in a directory of the
//! user's uid under `/run/xrdp/` with 0.10, where the name is the same). While a client is
//! connected, xrdp's process for that connection is connected to it: the X server holds an
//! accepted socket of that name, whose peer is in xrdp's process, which also holds the TCP
//! connection to the client. When the client goes, that process ends and only the
//! listening socket is left: the session is disconnected (Windows' `Disc`); a reconnection
//! (xrdp reuses the session) connects again.
//!
//! Everything here is identified by what the kernel vouches for: socket inodes from `stat`
//! of the session's own processes' open files, their peers from the kernel's sock_diag
//! (netlink), the TCP connection by the inode the peer process holds. The name
//! `xrdp_display_N` is only matched on sockets a process of the session holds: a user can
//! make their own session look connected (their choice), never another's look disconnected.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustix::fs::FileType;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink};

use crate::model::Pid;
use crate::system::process::{self, Proc};

/// What the kernel says of an xrdp session's connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// A client is connected.
    pub connected: bool,
    /// Its address (the TCP peer of xrdp's process for the connection), where found.
    pub client: Option<String>,
}

/// The display number of `:10` (or `:10.0`).
pub fn display_number(display: &str) -> Option<u32> {
    let rest = display.strip_prefix(':')?;
    rest.split('.').next()?.parse().ok()
}

/// A display a session's own processes serve, by the sockets they listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub number: u32,
    /// Served for xrdp (`xrdp_display_N`), not only as an X display (`/tmp/.X11-unix/XN`).
    pub xrdp: bool,
}

/// The display the processes `members` listen on: an xrdp display where one of them listens
/// on `xrdp_display_N`, else an X display where one listens on `/tmp/.X11-unix/XN`.
pub fn served_display(members: &[Pid], sockets: &Sockets) -> Option<Served> {
    let mut x = None;
    for ino in members.iter().flat_map(|&p| socket_inodes(p)) {
        let Some(s) = sockets.unix.get(&ino).filter(|s| s.listening) else {
            continue;
        };
        let Some(name) = s.name.as_deref() else {
            continue;
        };
        if let Some(number) = number_after(name, "/xrdp_display_") {
            return Some(Served { number, xrdp: true });
        }
        let name = name.strip_prefix('@').unwrap_or(name);
        if let Some(n) = name
            .strip_prefix("/tmp/.X11-unix/X")
            .and_then(|n| n.parse().ok())
        {
            x.get_or_insert(Served {
                number: n,
                xrdp: false,
            });
        }
    }
    x
}

/// The number that ends `name` after the last `marker`.
fn number_after(name: &str, marker: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once(marker)?;
    n.parse().ok()
}

/// The connection of the xrdp session on display `number` whose processes are `members`.
pub fn connection(members: &[Pid], number: u32, sockets: &Sockets) -> Connection {
    let accepted = members
        .iter()
        .flat_map(|&p| socket_inodes(p))
        .find_map(|ino| {
            let s = sockets.unix.get(&ino).filter(|s| !s.listening)?;
            let name = s.name.as_deref()?;
            (number_after(name, "/xrdp_display_") == Some(number)).then_some(s.peer)
        });
    let Some(peer) = accepted else {
        return Connection::default();
    };
    Connection {
        connected: true,
        client: holder_of(peer).and_then(tcp_peer),
    }
}

/// The listening and established unix sockets of this network namespace, read once per
/// listing.
#[derive(Debug, Default)]
pub struct Sockets {
    unix: HashMap<u32, UnixSocket>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UnixSocket {
    name: Option<String>,
    peer: u32,
    listening: bool,
}

impl Sockets {
    /// From the kernel (sock_diag); empty where it cannot be asked.
    pub fn read() -> Sockets {
        Sockets {
            unix: unix_sockets().unwrap_or_default(),
        }
    }

    /// Whether anything on this host listens as a display (`xrdp_display_N`, an X socket):
    /// where nothing does, no session's open files need a look.
    pub fn serves_displays(&self) -> bool {
        self.unix.values().filter(|s| s.listening).any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.contains("/xrdp_display_") || n.contains("/tmp/.X11-unix/X"))
        })
    }
}

/// The socket inodes a process holds (by `stat` of its open files: the kernel's).
fn socket_inodes(pid: Pid) -> Vec<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let st = rustix::fs::stat(fd.path()).ok()?;
            (FileType::from_raw_mode(st.st_mode) == FileType::Socket)
                .then(|| u32::try_from(st.st_ino).ok())
                .flatten()
        })
        .collect()
}

/// The process that holds socket `inode`: xrdp's process for the connection. Processes
/// named `xrdp` are looked at first (the name only orders the search; the inode decides).
fn holder_of(inode: u32) -> Option<Pid> {
    let all = process::all().ok()?;
    let (named, rest): (Vec<Proc>, Vec<Proc>) =
        all.into_iter().partition(|p| p.command_name() == "xrdp");
    named
        .into_iter()
        .chain(rest)
        .map(|p| p.pid())
        .find(|&pid| socket_inodes(pid).contains(&inode))
}

/// The remote address of the established TCP connection process `pid` holds, from the
/// kernel's tables of its network namespace (`/proc/PID/net/tcp`, `tcp6`).
fn tcp_peer(pid: Pid) -> Option<String> {
    let inodes = socket_inodes(pid);
    ["tcp", "tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (remote, state, inode) = (f.get(2)?, f.get(3)?, f.get(9)?);
            let inode: u32 = inode.parse().ok()?;
            (*state == "01" && inodes.contains(&inode))
                .then(|| remote_ip(remote))
                .flatten()
                .map(|ip| ip.to_string())
        })
    })
}

/// The address of `HEXADDR:HEXPORT` as /proc/net/tcp{,6} write it: each 32-bit word of the
/// address as the number it is in memory (so its bytes in the host's order).
fn remote_ip(field: &str) -> Option<IpAddr> {
    let (addr, _port) = field.split_once(':')?;
    let word = |i: usize| -> Option<[u8; 4]> {
        u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16)
            .ok()
            .map(u32::to_ne_bytes)
    };
    match addr.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// Netlink sock_diag: every listening or established unix socket of this network namespace,
/// with its name (if bound) and its peer's inode.
fn unix_sockets() -> io::Result<HashMap<u32, UnixSocket>> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const TCP_ESTABLISHED: u32 = 1;
    const TCP_LISTEN: u32 = 10;
    const UDIAG_SHOW_NAME: u32 = 0x1;
    const UDIAG_SHOW_PEER: u32 = 0x4;
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(std::time::Duration::from_secs(2)),
    )?;
    // struct nlmsghdr, then struct unix_diag_req.
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&40u32.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    req.push(1); // AF_UNIX
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&((1u32 << TCP_ESTABLISHED) | (1u32 << TCP_LISTEN)).to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    req.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER).to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    rustix::net::sendto(
        &fd,
        &req,
        SendFlags::empty(),
        &netlink::SocketAddrNetlink::new(0, 0),
    )?;
    let mut found = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        if n == 0 {
            return Ok(found);
        }
        match parse_messages(&buf[..n], &mut found) {
            Parsed::More => {}
            Parsed::Done => return Ok(found),
            Parsed::Failed => return Err(io::Error::other("sock_diag refused the request")),
        }
    }
}

/// A socket's name as `ss` writes it: a file's path, or `@` and an abstract name.
fn socket_name(data: &[u8]) -> String {
    match data.split_first() {
        Some((0, abstract_name)) => format!("@{}", String::from_utf8_lossy(abstract_name)),
        _ => {
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            String::from_utf8_lossy(&data[..end]).into_owned()
        }
    }
}

enum Parsed {
    More,
    Done,
    Failed,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// One datagram of netlink messages: `struct unix_diag_msg` and its attributes each.
fn parse_messages(mut b: &[u8], found: &mut HashMap<u32, UnixSocket>) -> Parsed {
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    while b.len() >= 16 {
        let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) else {
            return Parsed::Failed;
        };
        let len = len as usize;
        if len < 16 || len > b.len() {
            return Parsed::Failed;
        }
        match kind {
            NLMSG_DONE => return Parsed::Done,
            NLMSG_ERROR => return Parsed::Failed,
            _ => {}
        }
        let msg = &b[16..len];
        if let Some(inode) = u32_at(msg, 4) {
            let mut socket = UnixSocket {
                name: None,
                peer: 0,
                listening: msg.get(2) == Some(&10),
            };
            // Attributes (struct rtattr, 4-byte aligned) after the 16 bytes of the message.
            let mut attrs = msg.get(16..).unwrap_or_default();
            while attrs.len() >= 4 {
                let (Some(alen), Some(akind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) else {
                    break;
                };
                let alen = usize::from(alen);
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                let data = &attrs[4..alen];
                match akind {
                    UNIX_DIAG_NAME => {
                        socket.name = Some(socket_name(data));
                    }
                    UNIX_DIAG_PEER => socket.peer = u32_at(data, 0).unwrap_or(0),
                    _ => {}
                }
                attrs = attrs.get(alen.next_multiple_of(4)..).unwrap_or_default();
            }
            found.insert(inode, socket);
        }
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Parsed::More
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
    }

    #[test]
    fn addresses_as_proc_net_tcp_writes_them() {
        assert_eq!(
            remote_ip("0100007F:AB2E"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            remote_ip("0202A8C0:0016"),
            Some("192.168.2.2".parse().expect("ip"))
        );
        assert_eq!(
            remote_ip("0000000000000000FFFF00000100007F:0016"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            remote_ip("00000000000000000000000001000000:0016"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn sock_diag_names_a_connection_and_its_peer() {
        let dir = std::env::temp_dir().join(format!("logoff-xrdp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("xrdp_display_77");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let client = UnixStream::connect(&path).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let me = Pid::own();
        let sockets = Sockets::read();
        assert_eq!(
            served_display(&[me], &sockets),
            Some(Served {
                number: 77,
                xrdp: true
            })
        );
        let c = connection(&[me], 77, &sockets);
        assert!(c.connected, "{sockets:?}");
        // Nobody's TCP connection: no client address.
        assert_eq!(c.client, None);
        assert!(!connection(&[me], 78, &sockets).connected);
        drop((client, accepted, listener));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
