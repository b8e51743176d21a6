//! Sockets as the kernel shows them: which sockets a process holds, unix sockets' names and
//! peers (netlink `sock_diag`), where a process's TCP connection comes from (asked of the
//! socket itself), and which process holds a given socket — checked through a pidfd, so a
//! PID reused meanwhile never lends its identity.
//!
//! Only what the kernel gives is used: a socket is known by its inode, read from the text
//! the kernel writes for a socket's descriptor (`socket:[N]` in `/proc/PID/fd`: a file's
//! link is a path, which always begins with `/`), never by `stat` of the descriptor, which
//! for a file on a user's FUSE mount would wait on that user's server. A socket's name is
//! whatever its maker bound it to: a claim, matched only where the socket's holder is
//! vouched for otherwise.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, ipproto, netlink};

use crate::model::Pid;
use crate::system::handle::Handle;
use crate::system::process::{self, Proc};

/// The inodes of the sockets process `pid` holds (none when it is gone or unreadable).
pub fn inodes_of(pid: Pid) -> Vec<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let text = link.to_str()?;
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// A unix socket, as sock_diag tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    /// The name it is bound to (a path, or `@` and an abstract name); an accepted socket
    /// carries its listener's name.
    pub name: Option<String>,
    /// The inode of the socket at the other end (0: none).
    pub peer: u32,
    pub listening: bool,
}

/// The listening and established unix sockets of this network namespace, by inode; read
/// once per listing.
#[derive(Debug, Default)]
pub struct UnixSockets {
    by_inode: HashMap<u32, UnixSocket>,
}

impl UnixSockets {
    /// From the kernel (sock_diag); empty where it cannot be asked.
    pub fn read() -> UnixSockets {
        UnixSockets::read_checked().unwrap_or_default()
    }

    /// From the kernel (sock_diag), or why it could not be asked.
    pub fn read_checked() -> io::Result<UnixSockets> {
        Ok(UnixSockets {
            by_inode: unix_sockets()?,
        })
    }

    pub fn get(&self, inode: u32) -> Option<&UnixSocket> {
        self.by_inode.get(&inode)
    }

    /// Every socket known, for a look over all of them.
    pub fn all(&self) -> impl Iterator<Item = (u32, &UnixSocket)> {
        self.by_inode.iter().map(|(i, s)| (*i, s))
    }
}

/// Which processes hold the sockets `inodes`: one pass over every process's descriptors.
/// A result is only a lead: [`Holder::verify`] checks it through a pidfd before anything is
/// decided on it.
pub fn holders(inodes: &HashSet<u32>) -> HashMap<u32, Vec<Pid>> {
    let mut found: HashMap<u32, Vec<Pid>> = HashMap::new();
    if inodes.is_empty() {
        return found;
    }
    for proc in process::all().unwrap_or_default() {
        for ino in inodes_of(proc.pid()) {
            if inodes.contains(&ino) {
                found.entry(ino).or_default().push(proc.pid());
            }
        }
    }
    found
}

/// A process that holds a given socket, checked: its pidfd was opened before its
/// descriptors and credentials were read, and it was still running after, so what was read
/// is that process's.
pub struct Holder {
    /// Real, effective, saved and file-system uids.
    pub uids: [u32; 4],
    /// The program it runs (`/proc/PID/exe`): vouched for only where the uids are a
    /// service's (see [`Proc::exe`]).
    pub program: Option<std::path::PathBuf>,
}

impl Holder {
    /// `pid`, if it holds socket `inode` (read after its pidfd was opened).
    pub fn verify(pid: Pid, inode: u32) -> Option<Holder> {
        let proc = Proc::new(pid);
        let handle = Handle::open(&proc, |p| Ok(inodes_of(p.pid()).contains(&inode)))
            .ok()
            .flatten()?;
        let uids = proc.uids().ok().flatten()?;
        let program = proc.exe();
        (handle.has_pidfd() && !handle.has_exited()).then_some(Holder { uids, program })
    }

    /// Whether every uid of it is one of `uids` (root, a service's user).
    pub fn runs_as_one_of(&self, uids: &[u32]) -> bool {
        self.uids.iter().all(|u| uids.contains(u))
    }
}

/// Where the TCP connection that process `pid` holds comes from: the peer of the first
/// connected TCP socket among its descriptors (by descriptor number), asked of the socket
/// itself — a copy of the descriptor taken through a pidfd (`pidfd_getfd`, which root may),
/// then `getpeername` — not read from a table of every connection of the host.
///
/// # Platform specific behavior
/// Needs Linux 5.6 (pidfd_getfd) and the right to ptrace the process (root's, for root);
/// elsewhere nothing is found.
pub fn tcp_peer(pid: Pid) -> Option<IpAddr> {
    tcp_connection(pid).map(|(ip, _)| ip)
}

/// [`tcp_peer`], with the inode of the socket (which every process holding that very
/// connection holds). Asked of the socket itself; where that is refused — a container
/// whose manager forbids pidfd_getfd (systemd-nspawn does) — of the kernel's table of TCP
/// connections (sock_diag), by the inodes of the sockets the process holds.
pub fn tcp_connection(pid: Pid) -> Option<(IpAddr, u64)> {
    match asked_of_the_socket(pid) {
        Asked::Found(found) => Some(found),
        Asked::NoTcp => None,
        // Only then: the table is every connection of the host, which users can grow.
        Asked::Refused => {
            let held = inodes_of(pid);
            let table = tcp_established().ok()?;
            held.into_iter()
                .find_map(|ino| table.get(&ino).map(|ip| (*ip, u64::from(ino))))
        }
    }
}

/// What the sockets of a process said when asked.
enum Asked {
    Found((IpAddr, u64)),
    /// None of its sockets is a connected TCP socket (or it has none, or is gone).
    NoTcp,
    /// A copy of a socket was refused (seccomp, an older kernel): nothing is known.
    Refused,
}

fn asked_of_the_socket(pid: Pid) -> Asked {
    let Some(raw) = rustix::process::Pid::from_raw(pid.as_raw()) else {
        return Asked::NoTcp;
    };
    let pidfd = match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => return Asked::Refused,
        Err(_) => return Asked::NoTcp,
    };
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Asked::NoTcp;
    };
    let mut fds: Vec<i32> = dir
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .is_some_and(|l| l.to_str().is_some_and(|t| t.starts_with("socket:[")))
        })
        .filter_map(|fd| fd.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    let mut refused = false;
    for number in fds {
        let fd = match rustix::process::pidfd_getfd(
            &pidfd,
            number,
            rustix::process::PidfdGetfdFlags::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM | rustix::io::Errno::ACCESS) => {
                refused = true;
                continue;
            }
            Err(_) => continue,
        };
        if let Some(found) = tcp_peer_of(&fd) {
            return Asked::Found(found);
        }
    }
    if refused {
        Asked::Refused
    } else {
        Asked::NoTcp
    }
}

/// The peer address and inode of a connected TCP socket.
fn tcp_peer_of(fd: &OwnedFd) -> Option<(IpAddr, u64)> {
    let stream = rustix::net::sockopt::socket_type(fd).ok()? == SocketType::STREAM;
    let tcp = rustix::net::sockopt::socket_protocol(fd).ok()? == Some(ipproto::TCP);
    if !(stream && tcp) {
        return None;
    }
    let peer = rustix::net::getpeername(fd).ok()??;
    let ip = match peer.address_family() {
        AddressFamily::INET => SocketAddrV4::try_from(peer)
            .ok()
            .map(|a| IpAddr::V4(*a.ip())),
        AddressFamily::INET6 => SocketAddrV6::try_from(peer).ok().map(|a| {
            a.ip()
                .to_ipv4_mapped()
                .map_or(IpAddr::V6(*a.ip()), IpAddr::V4)
        }),
        _ => None,
    }?;
    Some((ip, rustix::fs::fstat(fd).ok()?.st_ino))
}

/// The netlink socket sock_diag is asked through: close-on-exec (nothing logoff starts may
/// inherit it), with a deadline on every answer.
fn diag_socket() -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(std::time::Duration::from_secs(2)),
    )?;
    Ok(fd)
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
    let fd = diag_socket()?;
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

/// Netlink sock_diag: every established TCP connection of this network namespace (IPv4 and
/// IPv6), by inode, with its peer's address.
fn tcp_established() -> io::Result<HashMap<u32, IpAddr>> {
    let mut found = HashMap::new();
    inet_dump(6, |c| {
        found.insert(c.inode, c.remote.ip());
        true
    })?;
    Ok(found)
}

/// The most connections [`InetTable::read`] takes in: users can grow the table (each
/// connection they make is two entries), and a look must end.
const INET_TABLE_MAX: usize = 500_000;

/// How long [`InetTable::read`] may take at most.
const INET_TABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A connected TCP or UDP socket of this network namespace, as sock_diag tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Connection {
    inode: u32,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
}

/// Every connected TCP and UDP socket of this network namespace (IPv4 and IPv6): both ends
/// of a connection made on this host are in it, which pairs them.
#[derive(Debug, Default)]
pub struct InetTable {
    by_inode: HashMap<u32, (&'static str, std::net::SocketAddr, std::net::SocketAddr)>,
    by_ends: HashMap<(&'static str, std::net::SocketAddr, std::net::SocketAddr), u32>,
}

impl InetTable {
    /// From the kernel (sock_diag): at most [`INET_TABLE_MAX`] connections, within
    /// [`INET_TABLE_WAIT`], else an error (what reaches a session is then not known).
    pub fn read() -> io::Result<InetTable> {
        let deadline = crate::deadline::Deadline::after(INET_TABLE_WAIT);
        let mut table = InetTable::default();
        for (protocol, kind) in [(6u8, "tcp"), (17u8, "udp")] {
            let mut full = false;
            inet_dump(protocol, |c| {
                if table.by_inode.len() >= INET_TABLE_MAX || deadline.passed() {
                    full = true;
                    return false;
                }
                table.by_inode.insert(c.inode, (kind, c.local, c.remote));
                table.by_ends.insert((kind, c.local, c.remote), c.inode);
                true
            })?;
            if full {
                return Err(io::Error::other(format!(
                    "more than {INET_TABLE_MAX} connections, or more than {}s to read them",
                    INET_TABLE_WAIT.as_secs()
                )));
            }
        }
        Ok(table)
    }

    /// The inode of the other end of connected socket `inode`, where it is on this host, and
    /// the protocol (`tcp`, `udp`).
    pub fn peer_of(&self, inode: u32) -> Option<(u32, &'static str)> {
        let (kind, local, remote) = self.by_inode.get(&inode)?;
        let peer = *self.by_ends.get(&(*kind, *remote, *local))?;
        (peer != inode).then_some((peer, *kind))
    }
}

/// Netlink sock_diag: each connected socket of `protocol` (6: TCP, established; 17: UDP,
/// connected) of this network namespace, IPv4 and IPv6, until `each` says to stop.
fn inet_dump(protocol: u8, mut each: impl FnMut(Connection) -> bool) -> io::Result<()> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const TCP_ESTABLISHED: u32 = 1;
    for family in [2u8, 10] {
        let fd = diag_socket()?;
        // struct nlmsghdr, then struct inet_diag_req_v2 (its socket ID all zeros: any).
        let mut req = Vec::with_capacity(72);
        req.extend_from_slice(&72u32.to_ne_bytes());
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&[family, protocol, 0, 0]);
        req.extend_from_slice(&(1u32 << TCP_ESTABLISHED).to_ne_bytes());
        req.extend_from_slice(&[0u8; 48]);
        rustix::net::sendto(
            &fd,
            &req,
            SendFlags::empty(),
            &netlink::SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut going = true;
        while going {
            let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
            if n == 0 {
                break;
            }
            match each_message(&buf[..n], |msg| {
                if going && let Some(c) = parse_inet(msg) {
                    going = each(c);
                }
            }) {
                Parsed::More => {}
                Parsed::Done => break,
                Parsed::Failed => return Err(io::Error::other("sock_diag refused the request")),
            }
        }
        if !going {
            return Ok(());
        }
    }
    Ok(())
}

/// `struct inet_diag_msg`: the family, the socket ID (source and destination ports, in
/// network order, then addresses) and the inode. IPv4 addresses mapped into IPv6 are
/// written as IPv4, so that both ends of a connection name each other alike.
fn parse_inet(msg: &[u8]) -> Option<Connection> {
    let ip = |b: &[u8]| -> Option<IpAddr> {
        match msg.first()? {
            2 => Some(IpAddr::V4(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            10 => {
                let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    };
    let port = |at: usize| Some(u16::from_be_bytes(msg.get(at..at + 2)?.try_into().ok()?));
    let local = std::net::SocketAddr::new(ip(msg.get(8..24)?)?, port(4)?);
    let remote = std::net::SocketAddr::new(ip(msg.get(24..40)?)?, port(6)?);
    Some(Connection {
        inode: u32_at(msg, 68)?,
        local,
        remote,
    })
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
fn parse_messages(b: &[u8], found: &mut HashMap<u32, UnixSocket>) -> Parsed {
    each_message(b, |msg| {
        if let Some((inode, socket)) = parse_message(msg) {
            found.insert(inode, socket);
        }
    })
}

/// Each message of one datagram of netlink messages, its header taken off.
fn each_message(mut b: &[u8], mut each: impl FnMut(&[u8])) -> Parsed {
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
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
        each(&b[16..len]);
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Parsed::More
}

/// `struct unix_diag_msg` (16 bytes) and its attributes (`struct rtattr`, 4-byte aligned).
fn parse_message(msg: &[u8]) -> Option<(u32, UnixSocket)> {
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    let inode = u32_at(msg, 4)?;
    let mut socket = UnixSocket {
        name: None,
        peer: 0,
        listening: msg.get(2) == Some(&10),
    };
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
            UNIX_DIAG_NAME => socket.name = Some(socket_name(data)),
            UNIX_DIAG_PEER => socket.peer = u32_at(data, 0).unwrap_or(0),
            _ => {}
        }
        attrs = attrs.get(alen.next_multiple_of(4)..).unwrap_or_default();
    }
    Some((inode, socket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    /// The kernel's table of TCP connections (what is asked where a container forbids
    /// pidfd_getfd) names this process's connection by its socket's inode.
    #[test]
    fn the_table_of_tcp_connections_has_ours_by_inode() {
        use std::os::fd::AsFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_accepted, _) = listener.accept().expect("accept");
        let ino = rustix::fs::fstat(client.as_fd()).expect("fstat").st_ino;
        let table = tcp_established().expect("sock_diag");
        let ours = u32::try_from(ino).ok().and_then(|i| table.get(&i));
        assert_eq!(ours, Some(&IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn the_peer_of_a_tcp_connection_a_process_holds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        // This process holds the listener (no peer) and both ends: the first connected one.
        assert_eq!(
            tcp_peer(Pid::own()),
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        );
        drop((client, accepted, listener));
    }

    /// Regression (issue 17, item 5): the sock_diag socket was not close-on-exec.
    #[test]
    fn the_diag_socket_is_close_on_exec() {
        let fd = diag_socket().expect("netlink");
        let flags = rustix::io::fcntl_getfd(&fd).expect("flags");
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn sock_diag_names_a_connection_and_its_peer_and_its_holder() {
        let dir = std::env::temp_dir().join(format!("logoff-sockets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a_socket");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let client = UnixStream::connect(&path).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let mine = inodes_of(Pid::own());
        let sockets = UnixSockets::read();
        let name = path.display().to_string();
        let accepted_ino = mine
            .iter()
            .copied()
            .find(|&i| {
                sockets
                    .get(i)
                    .is_some_and(|s| !s.listening && s.name.as_deref() == Some(name.as_str()))
            })
            .expect("the accepted end, named as its listener");
        let peer = sockets.get(accepted_ino).expect("known").peer;
        assert!(mine.contains(&peer), "the client's end is ours too");
        let held = holders(&HashSet::from([peer]));
        assert_eq!(held.get(&peer), Some(&vec![Pid::own()]));
        let holder = Holder::verify(Pid::own(), peer).expect("verified");
        let me = rustix::process::geteuid().as_raw();
        assert!(holder.runs_as_one_of(&[me]));
        assert!(Holder::verify(Pid::own(), u32::MAX).is_none());
        drop((client, accepted, listener));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
