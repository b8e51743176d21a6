//! Another host's own logoff, reached over ssh: for hosts where logind's bus cannot be
//! (elogind hosts have no `systemd-stdio-bridge`). logoff runs `ssh ... -- HOST logoff
//! --remote-agent` ([`super::host::ssh_command`]: the same options, no forwarding, no
//! terminal) and exchanges lines with it: a request, then its reply. What the lines mean is
//! the relay backend's ([`crate::remote::relay`]); this module carries them.
//!
//! Guarantees:
//! - The remote shell gets fixed words only (`logoff --remote-agent`): nothing from the
//!   command line, no host name, no session name or message crosses it. Requests travel
//!   on the connection, as data.
//! - Every exchange has a deadline ([`Channel::call`]); a reply is one line of at most
//!   [`MAX_REPLY`] bytes, and what ssh says on standard error is kept to [`MAX_SAID`] bytes.
//!   A host that stalls fails alone, and every later call on it fails at once.
//! - The remote logoff never acts on its own: it answers requests. When this logoff goes
//!   away (Ctrl-C, a crash, a dropped connection), the remote one reads the end of its input
//!   and exits, and nothing more happens there. While this side waits (a grace period), a
//!   keepalive request every [`KEEPALIVE`] tells the remote one that it is still wanted:
//!   without it, the remote one gives up after its own idle limit.

use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::host::{Host, ssh_command};
use super::{CALL_TIMEOUT, ConnectOptions};
use crate::error::{Error, Kind, Result};
use crate::system::lines::{Line, LineReader, write_line};
use crate::text::clean;

/// The remote command: fixed words, the same on every host.
pub const REMOTE_COMMAND: [&str; 2] = ["logoff", "--remote-agent"];

/// The longest reply line accepted (a list of many sessions fits many times over).
pub const MAX_REPLY: usize = 16 << 20;

/// How much of what ssh (and the remote shell) says on standard error is kept.
pub const MAX_SAID: usize = 64 << 10;

/// How often an idle connection is told it is still wanted.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// A running remote logoff, and the ssh that carries it.
pub struct Channel {
    conn: Arc<Mutex<Conn>>,
}

struct Conn {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    reader: LineReader,
    said: Arc<Mutex<Vec<u8>>>,
    /// Set once an exchange failed: the connection is not used again.
    broken: Option<Error>,
    last: Instant,
}

impl Channel {
    /// Starts `ssh ... -- HOST logoff --remote-agent`. Nothing is exchanged yet; the first
    /// call may take as long as the returned handshake time (a login; a typed password with
    /// `--ask-password`). `ping` is the request sent while idle.
    pub fn spawn(host: &Host, opts: &ConnectOptions, ping: Vec<u8>) -> Result<(Channel, Duration)> {
        let (mut cmd, handshake) = ssh_command(host, opts.timeout, opts.auth);
        cmd.args(REMOTE_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                Kind::Remote,
                format!(
                    "cannot connect to {}: cannot run {program}: {e}",
                    host.label
                ),
            )
        })?;
        let said = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            collect_bounded(pipe, Arc::clone(&said));
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::system("ssh started without its pipes"));
        };
        let conn = Arc::new(Mutex::new(Conn {
            label: host.label.clone(),
            child,
            stdin: Some(stdin),
            stdout,
            reader: LineReader::new(MAX_REPLY),
            said,
            broken: None,
            last: Instant::now(),
        }));
        keep_alive(Arc::downgrade(&conn), ping);
        Ok((Channel { conn }, handshake))
    }

    /// Sends one request line and returns the reply line, waiting `within` at most.
    pub fn call(&self, request: &[u8], within: Duration) -> Result<Vec<u8>> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::system("the connection's lock was poisoned"))?;
        conn.call(request, within)
    }

    /// What ssh and the remote shell said, and how ssh ended if it has (for errors).
    pub fn said(&self) -> String {
        self.conn.lock().map(|mut c| c.said()).unwrap_or_default()
    }
}

impl Conn {
    fn call(&mut self, request: &[u8], within: Duration) -> Result<Vec<u8>> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let result = self.exchange(request, within);
        self.last = Instant::now();
        if let Err(e) = &result {
            self.broken = Some(e.clone());
            // Closing its input tells the remote logoff to stop; ssh goes when dropped.
            self.stdin = None;
        }
        result
    }

    fn exchange(&mut self, request: &[u8], within: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + within;
        let Some(stdin) = self.stdin.as_ref() else {
            return Err(self.failed("the connection is closed"));
        };
        if let Err(e) = write_line(stdin.as_fd(), request, deadline) {
            return Err(self.failed(&format!("cannot send it a request: {e}")));
        }
        match self.reader.next(self.stdout.as_fd(), deadline) {
            Ok(Line::Text(line)) => Ok(line),
            Ok(Line::Closed) => Err(self.failed("the connection closed")),
            Ok(Line::TimedOut) => Err(self.failed(&format!(
                "its logoff did not answer within {}",
                crate::duration::display(within)
            ))),
            Err(e) => Err(self.failed(&format!("cannot read its answer: {e}"))),
        }
    }

    /// An error about this host, with what ssh said.
    fn failed(&mut self, what: &str) -> Error {
        // Give ssh a moment to finish saying why it ended.
        for _ in 0..25 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(20));
        let said = self.said();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        Error::new(Kind::Remote, format!("{}: {what}{said}", self.label))
    }

    fn said(&mut self) -> String {
        let text = self
            .said
            .lock()
            .map(|s| String::from_utf8_lossy(&s).trim().to_string())
            .unwrap_or_default();
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" (exited with {status})"),
            _ => String::new(),
        };
        format!("{}{status}", clean(&text))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The end of its input makes the remote logoff exit; then ssh ends by itself.
        self.stdin = None;
        let ended = crate::deadline::Deadline::after(Duration::from_millis(500));
        while !ended.passed() {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` to its end on a thread of its own, keeping the first [`MAX_SAID`] bytes.
fn collect_bounded(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                let room = MAX_SAID.saturating_sub(s.len());
                s.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    });
}

/// Sends `ping` on a connection idle for [`KEEPALIVE`], until the connection is dropped or
/// broken (a thread of its own, holding the connection only while it pings).
fn keep_alive(conn: Weak<Mutex<Conn>>, ping: Vec<u8>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(conn) = conn.upgrade() else { return };
            let Ok(mut c) = conn.lock() else { return };
            if c.broken.is_some() {
                return;
            }
            if c.last.elapsed() >= KEEPALIVE {
                // A failure marks the connection broken: the next real call says why.
                let _ = c.call(&ping, CALL_TIMEOUT);
            }
        }
    });
}
