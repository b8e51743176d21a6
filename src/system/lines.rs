//! Lines over a pipe, each read or written by a deadline and bounded in length: how logoff
//! and a remote host's `logoff --remote-agent` talk through ssh.
//!
//! Guarantees: no read or write waits past its deadline (the other side can stall, or a
//! connection hang, and logoff goes on); a line longer than its limit is an error, never a
//! growing buffer; what follows a line is kept for the next read.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::time::Timespec;

/// What one read of a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// One line, without its line feed.
    Text(Vec<u8>),
    /// The other side closed its end (what came before a missing final line feed is lost).
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// Reads lines from a file descriptor, at most `max` bytes each.
pub struct LineReader {
    buffer: Vec<u8>,
    /// How much of the buffer is known to hold no line feed (each byte is looked at once).
    scanned: usize,
    max: usize,
}

impl LineReader {
    pub fn new(max: usize) -> LineReader {
        LineReader {
            buffer: Vec::new(),
            scanned: 0,
            max,
        }
    }

    /// The next line from `fd`, waiting until `deadline` at most.
    pub fn next(&mut self, fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<Line> {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(at) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=self.scanned + at).collect();
                line.pop();
                self.scanned = 0;
                return Ok(Line::Text(line));
            }
            self.scanned = self.buffer.len();
            if self.buffer.len() > self.max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line longer than {} bytes", self.max),
                ));
            }
            if !wait_for(fd, PollFlags::IN, deadline)? {
                return Ok(Line::TimedOut);
            }
            match rustix::io::read(fd, &mut chunk) {
                Ok(0) => return Ok(Line::Closed),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Writes `line` and a line feed to `fd` (made non-blocking, so that a full pipe never
/// blocks past the deadline). A deadline that passes first is `TimedOut`.
pub fn write_line(fd: BorrowedFd<'_>, line: &[u8], deadline: Instant) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    if !flags.contains(rustix::fs::OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    }
    let mut all = Vec::with_capacity(line.len() + 1);
    all.extend_from_slice(line);
    all.push(b'\n');
    let mut rest = all.as_slice();
    while !rest.is_empty() {
        if !wait_for(fd, PollFlags::OUT, deadline)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the other side does not read",
            ));
        }
        match rustix::io::write(fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until `fd` is ready for `what` (or hung up, or in error: the next read or write
/// tells), or `deadline` passes (false).
fn wait_for(fd: BorrowedFd<'_>, what: PollFlags, deadline: Instant) -> io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let borrowed = fd.as_fd();
        let mut fds = [PollFd::new(&borrowed, what)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn lines_come_whole_and_what_follows_is_kept() {
        let (mut a, b) = UnixStream::pair().expect("pair");
        a.write_all(b"one\ntw").expect("write");
        let mut r = LineReader::new(16);
        let soon = || Instant::now() + Duration::from_millis(200);
        assert_eq!(
            r.next(b.as_fd(), soon()).expect("read"),
            Line::Text(b"one".to_vec())
        );
        assert_eq!(r.next(b.as_fd(), soon()).expect("read"), Line::TimedOut);
        a.write_all(b"o\n").expect("write");
        assert_eq!(
            r.next(b.as_fd(), soon()).expect("read"),
            Line::Text(b"two".to_vec())
        );
        drop(a);
        assert_eq!(r.next(b.as_fd(), soon()).expect("read"), Line::Closed);
    }

    #[test]
    fn a_line_past_its_limit_is_an_error() {
        let (mut a, b) = UnixStream::pair().expect("pair");
        a.write_all(&[b'x'; 100]).expect("write");
        let mut r = LineReader::new(10);
        let e = r
            .next(b.as_fd(), Instant::now() + Duration::from_millis(200))
            .expect_err("too long");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_write_nobody_reads_stops_at_its_deadline() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let big = vec![b'x'; 8 << 20];
        let start = Instant::now();
        let e = write_line(a.as_fd(), &big, Instant::now() + Duration::from_millis(300))
            .expect_err("nobody reads");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
        let (a, b) = UnixStream::pair().expect("pair");
        write_line(a.as_fd(), b"hello", Instant::now() + Duration::from_secs(1)).expect("write");
        let mut r = LineReader::new(16);
        assert_eq!(
            r.next(b.as_fd(), Instant::now() + Duration::from_secs(1))
                .expect("read"),
            Line::Text(b"hello".to_vec())
        );
    }
}
