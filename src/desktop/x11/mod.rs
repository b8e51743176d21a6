//! A graphical session's X server: how long it has seen no input (the MIT-SCREEN-SAVER
//! extension, as `xprintidle` reads it), and a warning shown on its display in a window
//! logoff draws itself ([`window`]): no program is started for it.
//!
//! The X server runs as the session's user: everything about it is hostile. It is reached on
//! its own socket (abstract `@/tmp/.X11-unix/XN`, else the file); the process serving that
//! socket (`SO_PEERCRED`) must be, read after a pidfd on it was opened, one of the session's
//! and listening on that display's socket. Its cookie comes from the file its command line
//! names ([`auth`]), read only if it is a regular file of the session's user. Every exchange
//! has a deadline, and no reply may be larger than [`REPLY_LIMIT`].

mod auth;
pub mod window;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use jiff::Timestamp;
use rustix::event::{PollFd, PollFlags};
use x11rb::connection::Connection;
use x11rb::rust_connection::{PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

use crate::deadline::Deadline;
use crate::model::{Pid, Uid};
use crate::system::handle::Handle;
use crate::system::process::{Membership, Proc};
use crate::system::sockets::{self, UnixSockets};

/// How long asking an X server may take.
pub const X_WAIT: Duration = Duration::from_secs(2);

/// A session's X server, found and checked. Its socket does not block: x11rb reads until a
/// read would, and every wait is in [`TimedStream::poll`], with a deadline.
pub struct XServer {
    socket: UnixStream,
    cookie: Option<(Vec<u8>, Vec<u8>)>,
}

impl XServer {
    /// The X server of display `number`, if the process serving it is one of the session
    /// `membership` says and listens on that display's socket (`sockets`: this listing's);
    /// its cookie read from the file its command line names when that is a regular file of
    /// `owner`. Reads the server's command line: the caller bounds the wait.
    pub fn find(
        number: u32,
        owner: Option<Uid>,
        membership: &Membership,
        sockets: &UnixSockets,
    ) -> Option<XServer> {
        let socket = connect(number)?;
        let cred = rustix::net::sockopt::socket_peercred(&socket).ok()?;
        let pid = Pid::from_raw(cred.pid.as_raw_nonzero().get());
        let proc = Proc::new(pid);
        let handle = Handle::open(&proc, |p| {
            Ok(p.belongs(membership) && listens_on(p.pid(), number, sockets))
        })
        .ok()??;
        let cookie = owner.and_then(|owner| {
            let file = auth::auth_file(pid)?;
            auth::read_cookie(&file, number, owner)
        });
        // Still running: what was read above was that process's.
        (!handle.has_exited()).then_some(XServer { socket, cookie })
    }

    /// Since when the server has seen no input from its user.
    pub fn idle_since(self) -> Option<Timestamp> {
        let conn = self.connect(Deadline::after(X_WAIT))?;
        let root = conn.setup().roots.first()?.root;
        let info = x11rb::protocol::screensaver::query_info(&conn, root)
            .ok()?
            .reply()
            .ok()?;
        let idle = jiff::SignedDuration::from_millis(i64::from(info.ms_since_user_input));
        crate::time::now().checked_sub(idle).ok()
    }

    /// An X connection over the server's socket, authenticated with its cookie, every wait
    /// ending at `deadline`.
    fn connect(self, deadline: Deadline) -> Option<RustConnection<TimedStream>> {
        let (name, data) = self.cookie.unwrap_or_default();
        let stream = TimedStream {
            socket: self.socket,
            deadline: Cell::new(deadline),
            framer: RefCell::default(),
        };
        RustConnection::connect_to_stream_with_auth_info(stream, 0, name, data).ok()
    }
}

/// Whether process `pid` listens on display `number`'s X socket.
fn listens_on(pid: Pid, number: u32, sockets: &UnixSockets) -> bool {
    let names = [
        format!("@/tmp/.X11-unix/X{number}"),
        format!("/tmp/.X11-unix/X{number}"),
    ];
    sockets::inodes_of(pid).into_iter().any(|ino| {
        sockets
            .get(ino)
            .is_some_and(|s| s.listening && s.name.as_ref().is_some_and(|n| names.contains(n)))
    })
}

/// Connects to display `number` without waiting (a server that does not accept — its
/// backlog full — is no server to ask): its abstract socket, else its socket file. The
/// socket reached must be bound to that very name (`getpeername`, which the kernel answers
/// with the listening socket's own address): the socket file is the user's, and a link put
/// in its place would lead elsewhere.
fn connect(number: u32) -> Option<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let name = format!("/tmp/.X11-unix/X{number}");
    let try_connect = |addr: SocketAddrUnix| -> Option<UnixStream> {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .ok()?;
        rustix::net::connect(&fd, &addr).ok()?;
        let peer = SocketAddrUnix::try_from(rustix::net::getpeername(&fd).ok()??).ok()?;
        let same = match (addr.abstract_name(), peer.abstract_name()) {
            (Some(wanted), Some(got)) => wanted == got,
            (None, None) => addr.path_bytes().is_some() && addr.path_bytes() == peer.path_bytes(),
            _ => false,
        };
        same.then(|| UnixStream::from(fd))
    };
    SocketAddrUnix::new_abstract_name(name.as_bytes())
        .ok()
        .and_then(try_connect)
        .or_else(|| {
            SocketAddrUnix::new(name.as_str())
                .ok()
                .and_then(try_connect)
        })
}

/// A stream to an X server on which every wait ends at a deadline, and no reply may be
/// larger than [`REPLY_LIMIT`].
struct TimedStream {
    socket: UnixStream,
    deadline: Cell<Deadline>,
    framer: RefCell<Framer>,
}

/// The largest reply an X server may send here: the replies asked for are small (a font's
/// description is the largest); x11rb would allocate whatever a reply's header announces
/// (up to 16 GiB).
const REPLY_LIMIT: u64 = 256 * 1024;

/// Follows the packets an X server sends (the setup reply, then 32-byte packets, replies
/// and generic events with more after them) to refuse one that announces too much.
#[derive(Default)]
struct Framer {
    header: Vec<u8>,
    /// Bytes of the current packet still to come after its header.
    skip: u64,
    setup_done: bool,
}

impl Framer {
    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.skip > 0 {
                let k = data
                    .len()
                    .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.skip -= k as u64;
                data = &data[k..];
                continue;
            }
            let need = if self.setup_done { 32 } else { 8 };
            let k = data.len().min(need - self.header.len());
            self.header.extend_from_slice(&data[..k]);
            data = &data[k..];
            if self.header.len() < need {
                break;
            }
            let h = &self.header;
            let extra = if !self.setup_done {
                self.setup_done = true;
                u64::from(u16::from_ne_bytes([h[6], h[7]])) * 4
            } else if h[0] == 1 || h[0] & 0x7f == 35 {
                u64::from(u32::from_ne_bytes([h[4], h[5], h[6], h[7]])) * 4
            } else {
                0
            };
            if extra > REPLY_LIMIT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the X server announced a reply too large",
                ));
            }
            self.skip = extra;
            self.header.clear();
        }
        Ok(())
    }
}

impl Stream for TimedStream {
    fn poll(&self, mode: PollMode) -> std::io::Result<()> {
        let mut flags = PollFlags::empty();
        if mode.readable() {
            flags |= PollFlags::IN;
        }
        if mode.writable() {
            flags |= PollFlags::OUT;
        }
        loop {
            let left = self.deadline.get().left();
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let timeout = crate::deadline::timespec(left);
            let mut fds = [PollFd::new(&self.socket, flags)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read(&self, buf: &mut [u8], _fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        let n = (&self.socket).read(buf)?;
        if n == 0 {
            // The connection closed (or was shut down to close a window).
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.framer.borrow_mut().feed(&buf[..n])?;
        Ok(n)
    }

    fn write(&self, buf: &[u8], _fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        (&self.socket).write(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_never_answers_is_given_up_on_at_the_deadline() {
        use std::os::linux::net::SocketAddrExt;
        let number = 6000 + std::process::id() % 1000;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(
            format!("/tmp/.X11-unix/X{number}").as_bytes(),
        )
        .expect("name");
        let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind");
        let sockets = UnixSockets::read();
        // The listener is this process: a member of "its" session.
        let me = Proc::myself();
        let own = me.audit_session().ok().flatten();
        let sid = me.try_stat().ok().flatten().map_or(0, |s| s.session);
        let membership = own.map_or(Membership::Posix(sid), Membership::Audit);
        assert!(me.belongs(&membership));
        let server = XServer::find(number, None, &membership, &sockets).expect("found");
        let started = std::time::Instant::now();
        assert_eq!(server.idle_since(), None);
        let took = started.elapsed();
        assert!(took >= X_WAIT && took < X_WAIT * 2, "{took:?}");
        // Served by a process of another session: not this session's X server.
        let elsewhere = Membership::Audit(own.map_or(1, |id| id.wrapping_add(1)));
        assert!(XServer::find(number, None, &elsewhere, &sockets).is_none());
    }

    /// Regression (second hostile read): the display's socket file is its user's; a link put
    /// in its place led logoff's connection (a warning's window) to a socket of the user's
    /// choosing. The socket reached must be bound to the display's own name.
    #[test]
    fn a_link_in_place_of_a_display_socket_leads_nowhere() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::path::Path::new("/tmp/.X11-unix");
        if !dir.exists() {
            std::fs::create_dir(dir).expect("make /tmp/.X11-unix");
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
        }
        let number = 7000 + std::process::id() % 1000;
        let own = dir.join(format!("X{number}"));
        let linked = dir.join(format!("X{}", number + 1000));
        let elsewhere = std::env::temp_dir().join(format!("logoff-x-{}", std::process::id()));
        for p in [&own, &linked, &elsewhere] {
            let _ = std::fs::remove_file(p);
        }
        let _served = std::os::unix::net::UnixListener::bind(&own).expect("bind X socket");
        let _other = std::os::unix::net::UnixListener::bind(&elsewhere).expect("bind other");
        std::os::unix::fs::symlink(&elsewhere, &linked).expect("link");
        assert!(connect(number).is_some(), "the display's own socket file");
        assert!(connect(number + 1000).is_none(), "a link to another socket");
        for p in [&own, &linked, &elsewhere] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_reply_announcing_too_much_is_refused_before_it_is_read() {
        let mut framer = Framer::default();
        // Setup reply header: 8 bytes, 2 words more.
        framer.feed(&[1, 0, 11, 0, 0, 0, 2, 0]).expect("setup");
        framer.feed(&[0; 8]).expect("setup data");
        // An event: 32 bytes, nothing more; then a reply of 8 more bytes, fed in pieces.
        framer.feed(&[2; 32]).expect("event");
        let mut reply = vec![1u8, 0, 0, 0];
        reply.extend_from_slice(&2u32.to_ne_bytes());
        reply.resize(40, 0);
        for piece in reply.chunks(5) {
            framer.feed(piece).expect("reply");
        }
        let mut huge = vec![1u8, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_ne_bytes());
        huge.resize(32, 0);
        assert!(framer.feed(&huge[..20]).is_ok());
        assert!(framer.feed(&huge[20..]).is_err());
    }
}
