//! A graphical session's X server: how long it has seen no input (the MIT-SCREEN-SAVER
//! extension, as `xprintidle` reads it), and a warning shown on its display.
//!
//! The X server runs as the session's user: everything about it is hostile. It is reached on
//! its own socket (abstract `@/tmp/.X11-unix/XN`, else the file), and the process serving
//! that socket (`SO_PEERCRED`, the kernel's) must be a process of the session. Its cookie
//! comes from the file its own command line names (`-auth`), opened without following a
//! last link and read only if it is a regular file of the session's user. Every exchange
//! has a deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{FileType, Mode, OFlags};
use x11rb::connection::Connection;
use x11rb::rust_connection::{PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

use crate::deadline::Deadline;
use crate::model::{Pid, Uid};

/// How long asking an X server may take.
const X_WAIT: Duration = Duration::from_secs(2);

/// A session's X server, found and checked. Its socket does not block: x11rb reads until a
/// read would, and every wait is in `TimedStream::poll`, with a deadline.
pub struct XServer {
    socket: UnixStream,
    /// The `-auth` file, as this host names it (none: the server was started without one).
    pub auth_file: Option<PathBuf>,
    cookie: Option<(Vec<u8>, Vec<u8>)>,
}

impl XServer {
    /// The X server of display `number`, served by one of `members`, its cookie read from
    /// the file its command line names when that is a regular file of `owner`.
    pub fn find(members: &[Pid], number: u32, owner: Option<Uid>) -> Option<XServer> {
        let socket = connect(number)?;
        let cred = rustix::net::sockopt::socket_peercred(&socket).ok()?;
        let pid = Pid::from_raw(cred.pid.as_raw_nonzero().get());
        if !members.contains(&pid) {
            return None;
        }
        let auth_file = auth_file(pid);
        let cookie = auth_file
            .as_deref()
            .zip(owner)
            .and_then(|(file, owner)| read_cookie(file, number, owner));
        Some(XServer {
            socket,
            auth_file,
            cookie,
        })
    }

    /// Since when the server has seen no input from its user.
    pub fn idle_since(self) -> Option<Timestamp> {
        let (name, data) = self.cookie.clone().unwrap_or_default();
        let stream = TimedStream {
            socket: self.socket,
            deadline: Deadline::after(X_WAIT),
            framer: std::cell::RefCell::default(),
        };
        let conn = RustConnection::connect_to_stream_with_auth_info(stream, 0, name, data).ok()?;
        let root = conn.setup().roots.first()?.root;
        let info = x11rb::protocol::screensaver::query_info(&conn, root)
            .ok()?
            .reply()
            .ok()?;
        let idle = jiff::SignedDuration::from_millis(i64::from(info.ms_since_user_input));
        Timestamp::now().checked_sub(idle).ok()
    }
}

/// Connects to display `number` without waiting (a server that does not accept — its
/// backlog full — is no server to ask): its abstract socket, else its socket file.
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
        Some(UnixStream::from(fd))
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

/// The file the X server's command line names with `-auth`, as this host can open it (a
/// relative name is the server's working directory's).
fn auth_file(pid: Pid) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|&b| b == 0);
    args.find(|a| *a == b"-auth")?;
    let name = PathBuf::from(String::from_utf8(args.next()?.to_vec()).ok()?);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some(if name.is_absolute() {
        name
    } else {
        cwd.join(name)
    })
}

/// The MIT-MAGIC-COOKIE-1 for display `number` from an Xauthority file, read only when it
/// is a regular file of `owner`, not through a last link, at most 64 KiB.
fn read_cookie(path: &std::path::Path, number: u32, owner: Uid) -> Option<(Vec<u8>, Vec<u8>)> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != owner.as_raw()
        || st.st_size > 64 * 1024
    {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .ok()?;
    find_cookie(&bytes, &number.to_string())
}

/// Parses Xauthority entries (big-endian lengths: family, address, number, name, data).
fn find_cookie(mut b: &[u8], number: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    fn field<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes(b.get(..2)?.try_into().ok()?));
        let value = b.get(2..2 + len)?;
        *b = &b[2 + len..];
        Some(value)
    }
    while b.len() >= 2 {
        b = b.get(2..)?; // family
        let (_address, num, name, data) = (
            field(&mut b)?,
            field(&mut b)?,
            field(&mut b)?,
            field(&mut b)?,
        );
        if num == number.as_bytes() && name == b"MIT-MAGIC-COOKIE-1" {
            return Some((name.to_vec(), data.to_vec()));
        }
    }
    None
}

/// A stream to an X server on which every wait ends at a deadline, and no reply may be
/// larger than [`REPLY_LIMIT`].
struct TimedStream {
    socket: UnixStream,
    deadline: Deadline,
    framer: std::cell::RefCell<Framer>,
}

/// The largest reply an X server may send here: the replies asked for are a few dozen
/// bytes; x11rb would allocate whatever a reply's header announces (up to 16 GiB).
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
            let left = self.deadline.left();
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let timeout = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
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
        self.framer.borrow_mut().feed(&buf[..n])?;
        Ok(n)
    }

    fn write(&self, buf: &[u8], _fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        (&self.socket).write(buf)
    }
}

/// Opens a window on the display of a graphical session, as Windows' `msg` does in an RDP
/// session: `xmessage`, run as the session's user (its own privileges, its own cookie), for
/// `seconds`, showing what is written to its standard input (data, never an argument it
/// could take for an option). Returns the window's process, to close it when the warning
/// is replaced.
pub fn show_message(
    server: &XServer,
    number: u32,
    user: Uid,
    gid: u32,
    seconds: u64,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("xmessage");
    command
        .args([
            "-center",
            "-title",
            "logoff",
            "-timeout",
            &seconds.to_string(),
        ])
        .args(["-file", "-"])
        .env_clear()
        .env("DISPLAY", format!(":{number}"))
        .env("PATH", "/usr/bin:/bin")
        // std drops supplementary groups when root sets a uid.
        .uid(user.as_raw())
        .gid(gid)
        // Its own process group: a Ctrl-C meant for logoff does not close it.
        .process_group(0)
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(file) = &server.auth_file {
        command.env("XAUTHORITY", file);
    }
    command.spawn()
}

/// The primary group of `uid`.
pub fn gid_of(uid: Uid) -> Option<u32> {
    Some(uzers::get_user_by_uid(uid.as_raw())?.primary_group_id())
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
        // The listener is this process: a member of the "session".
        let server = XServer::find(&[Pid::own()], number, None).expect("found");
        let started = std::time::Instant::now();
        assert_eq!(server.idle_since(), None);
        let took = started.elapsed();
        assert!(took >= X_WAIT && took < X_WAIT * 2, "{took:?}");
        // Served by a process of another session: not this session's X server.
        assert!(XServer::find(&[Pid::from_raw(1)], number, None).is_none());
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

    #[test]
    fn cookies_by_display_number() {
        let entry = |num: &str, name: &[u8], data: &[u8]| {
            let mut e = vec![1, 0]; // FamilyLocal
            for f in [b"host".as_slice(), num.as_bytes(), name, data] {
                e.extend_from_slice(&(f.len() as u16).to_be_bytes());
                e.extend_from_slice(f);
            }
            e
        };
        let mut file = entry("9", b"MIT-MAGIC-COOKIE-1", b"nine");
        file.extend(entry("10", b"XDM-AUTHORIZATION-1", b"other"));
        file.extend(entry("10", b"MIT-MAGIC-COOKIE-1", b"ten"));
        assert_eq!(
            find_cookie(&file, "10"),
            Some((b"MIT-MAGIC-COOKIE-1".to_vec(), b"ten".to_vec()))
        );
        assert_eq!(find_cookie(&file, "11"), None);
        assert_eq!(find_cookie(&file[..7], "9"), None);
    }
}
