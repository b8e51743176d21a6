//! A D-Bus connection over a child process's standard input and output: ssh running the
//! remote host's bridge, or the machine bridge run here.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::Connection;

use super::CALL_TIMEOUT;

/// A connection that lives through a child process (ssh, or a local bridge); the child is
/// ended when this is dropped.
pub struct Tunnel {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Tunnel {
    /// What the child said on standard error, and how it ended if it has.
    pub fn diagnostics(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" (exited with {status})"),
            _ => String::new(),
        };
        let said = self
            .stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        format!("{said}{status}")
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with one end of a socket pair as its standard input and output, and speaks
/// D-Bus over the other end. A child that accepts and then says nothing does not hold logoff
/// up: past `connect_timeout` (and a little for authentication) it is killed, which ends the
/// handshake. A failure comes with what the child said on standard error.
pub(crate) fn through_child(
    mut cmd: Command,
    connect_timeout: Duration,
) -> std::result::Result<(Connection, Tunnel), (zbus::Error, String)> {
    let failed = |e: std::io::Error, what: &str| {
        (zbus::Error::Failure(format!("{what}: {e}")), String::new())
    };
    let (ours, theirs) = UnixStream::pair().map_err(|e| failed(e, "cannot make a socket pair"))?;
    let theirs_out = theirs
        .try_clone()
        .map_err(|e| failed(e, "cannot duplicate a socket"))?;
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(e, &format!("cannot run {program}")))?;
    // Our copies of the child's ends must go, or the socket never sees the child leave.
    drop(cmd);
    let stderr = Arc::new(Mutex::new(String::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
    }
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let child_pid = child.id();
    let grace = connect_timeout + Duration::from_secs(5);
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watchdog.recv_timeout(grace)
            && let Some(pid) = i32::try_from(child_pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    });
    let mut tunnel = Tunnel { child, stderr };
    let built = zbus::block_on(async {
        zbus::connection::Builder::unix_stream(ours)
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
    });
    let _ = done.send(());
    match built {
        Ok(conn) => Ok((conn, tunnel)),
        Err(e) => {
            // Let the child finish saying why.
            for _ in 0..50 {
                if matches!(tunnel.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(20));
            Err((e, tunnel.diagnostics()))
        }
    }
}
