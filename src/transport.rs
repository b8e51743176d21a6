//! Where a D-Bus connection to logind comes from. The logind backend takes a connection and
//! does not care how it was made: the local system bus; another host's, over ssh, as
//! `loginctl -H` does; a machine's registered with systemd-machined, as `loginctl -M` does.
//!
//! Host names are data, never options or shell: they are checked ([`Host::parse`]), always
//! follow `--` on ssh's command line, and ssh is run directly, never through a shell. The
//! user's ssh (its configuration, agent and known_hosts) does the connecting;
//! `LOGOFF_SSH` may name another ssh binary.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::Connection;

use crate::error::{Error, Kind, Result};

/// How long a method call may take before the bus counts as not answering.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// The environment variable that names the ssh binary (default `ssh`).
pub const SSH_ENV: &str = "LOGOFF_SSH";

/// The local system bus.
pub fn system_bus() -> Result<Connection> {
    zbus::block_on(async {
        zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(|e| Error::system(format!("cannot connect to the system bus: {e}")))
    })
}

#[zbus::proxy(
    interface = "org.freedesktop.machine1.Manager",
    default_service = "org.freedesktop.machine1",
    default_path = "/org/freedesktop/machine1"
)]
trait Machined {
    fn get_machine(&self, name: &str) -> zbus::Result<zbus::OwnedObjectPath>;
}

/// How a machine's bus is reached from this host: systemd's bridge, run here.
const BRIDGE: &str = "systemd-stdio-bridge";

/// The system bus of a machine (container or VM) registered with this host's
/// systemd-machined, reached as `loginctl -M` does: `systemd-stdio-bridge --machine=NAME`, run
/// here, enters the machine's namespaces and root before it connects to the bus socket, so
/// the socket's path is resolved inside the machine and no link planted there can lead back
/// to this host's bus. The bus that answers is then refused if it is this host's own system
/// bus (a machine whose leader runs in this host's namespaces, or that has this host's bus
/// socket mounted in): the bus daemon's ID (`org.freedesktop.DBus.GetId`) tells.
///
/// (Not the peer's machine ID: the bridge answers `org.freedesktop.DBus.Peer` calls itself,
/// with the ID of the namespace it was started in.)
pub fn machine_bus(name: &str, connect_timeout: Duration) -> Result<(Connection, Tunnel)> {
    let unreachable =
        |why: String| Error::new(Kind::Remote, format!("cannot reach machine {name}: {why}"));
    let system = system_bus().map_err(|e| unreachable(e.message().to_string()))?;
    check_registered(&system, name).map_err(unreachable)?;
    let mut bridge = Command::new(BRIDGE);
    bridge.arg(format!("--machine={name}"));
    let (conn, tunnel) = through_child(bridge, connect_timeout)
        .map_err(|(e, said)| unreachable(if said.is_empty() { e.to_string() } else { said }))?;
    let ours = bus_id(&system)
        .map_err(|e| unreachable(format!("cannot ask this host's bus its ID: {e}")))?;
    let theirs =
        bus_id(&conn).map_err(|e| unreachable(format!("cannot ask its bus its ID: {e}")))?;
    if ours == theirs {
        return Err(unreachable(format!(
            "the bus it leads to is this host's own system bus (bus ID {theirs}): refusing \
             to act on this host's sessions as if they were the machine's"
        )));
    }
    Ok((conn, tunnel))
}

/// The ID of the bus daemon behind `conn` (`org.freedesktop.DBus.GetId`).
fn bus_id(conn: &Connection) -> zbus::Result<String> {
    zbus::block_on(async {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        Ok(dbus.get_id().await?.to_string())
    })
}

/// Asks this host's machined whether `name` is a registered machine, for a clear error
/// before the bridge is run.
fn check_registered(system: &Connection, name: &str) -> std::result::Result<(), String> {
    zbus::block_on(async {
        let machined = MachinedProxy::new(system)
            .await
            .map_err(|e| e.to_string())?;
        machined.get_machine(name).await.map_err(|e| {
            let text = e.to_string();
            if text.contains("NoSuchMachine") {
                "no machine of that name is registered with systemd-machined \
                 (`machinectl list` shows them)"
                    .to_string()
            } else if text.contains("ServiceUnknown") || text.contains("NameHasNoOwner") {
                "systemd-machined does not answer on the system bus".to_string()
            } else {
                text
            }
        })?;
        Ok(())
    })
}

/// A host to reach over ssh: `host`, `user@host`, `host:port`, `user@[::1]:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// What was given, for messages and the HOST column.
    pub label: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Host {
    /// Parses and checks a host argument. Refused: names that begin with `-` (they would be
    /// options), and anything outside the characters host and user names use (whitespace,
    /// control characters, shell metacharacters): a name is data, never a command.
    pub fn parse(text: &str) -> Result<Host> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "'{}' is not a host name: {why}",
                text.escape_debug()
            ))
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.starts_with('-') {
            return Err(bad("it begins with '-'"));
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!("it contains {c:?}")));
        }
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            // [v6]:port or [v6]
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(bad("an unclosed '['"));
            };
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (addr, port)
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
            (h, Some(p))
        } else {
            (rest, None)
        };
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad(&format!("'{p}' is not a port")))?,
            ),
            None => None,
        };
        let host_ok = !host.is_empty()
            && !host.starts_with('-')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
        if !host_ok {
            return Err(bad(
                "a host name has letters, digits, '.', '-', '_' (or an IPv6 address)",
            ));
        }
        if let Some(u) = user {
            let user_ok = !u.is_empty()
                && !u.starts_with('-')
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '$'));
            if !user_ok {
                return Err(bad("a user name has letters, digits, '.', '-', '_'"));
            }
        }
        Ok(Host {
            label: text.to_string(),
            user: user.map(String::from),
            host: host.to_string(),
            port,
        })
    }

    /// ssh's destination argument: `host` or `user@host`.
    fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

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

/// How ssh may authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Keys and agents only; never a prompt (`BatchMode=yes`): the default, so that one host
    /// asking for a password cannot hold a fleet up.
    Batch,
    /// ssh may ask for passwords and passphrases on the terminal (`--ask-password`).
    Interactive,
}

/// How long an interactive login may take beyond the connect timeout: a person types.
const TYPING_TIME: Duration = Duration::from_secs(120);

/// Connects to the system bus of `host` over ssh: `ssh -xTa -o ClearAllForwardings=yes
/// [-o BatchMode=yes] [-p PORT] -- DEST systemd-stdio-bridge [BRIDGE_ARGS]`, the bus
/// connection running over its standard input and output. No forwarding of any kind (X11,
/// agent, ports from the user's configuration): the connection carries logind's bus only.
pub fn over_ssh(
    host: &Host,
    bridge_args: &[&str],
    connect_timeout: Duration,
    auth: Auth,
) -> Result<(Connection, Tunnel)> {
    let ssh = std::env::var_os(SSH_ENV).unwrap_or_else(|| "ssh".into());
    let mut cmd = Command::new(&ssh);
    cmd.args(["-xTa", "-o", "ClearAllForwardings=yes"])
        .arg("-o")
        .arg(format!(
            "ConnectTimeout={}",
            connect_timeout.as_secs().max(1)
        ));
    let handshake = match auth {
        Auth::Batch => {
            cmd.args(["-o", "BatchMode=yes"]);
            connect_timeout
        }
        Auth::Interactive => connect_timeout + TYPING_TIME,
    };
    if let Some(port) = host.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.arg("--")
        .arg(host.destination())
        .arg(BRIDGE)
        .args(bridge_args);
    through_child(cmd, handshake).map_err(|(e, said)| {
        let why = if said.contains(BRIDGE) && said.contains("not found")
            || said.contains("exited with exit status: 127")
        {
            format!(
                "{said}: the host has no systemd-stdio-bridge (an elogind host?), which \
                 logoff needs to reach logind over ssh"
            )
        } else if said.is_empty() {
            e.to_string()
        } else {
            said
        };
        Error::new(
            Kind::Remote,
            format!("cannot connect to {}: {why}", host.label),
        )
    })
}

/// Runs `cmd` with one end of a socket pair as its standard input and output, and speaks
/// D-Bus over the other end. A child that accepts and then says nothing does not hold logoff
/// up: past `connect_timeout` (and a little for authentication) it is killed, which ends the
/// handshake. A failure comes with what the child said on standard error.
fn through_child(
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
            && let Some(pid) = rustix::process::Pid::from_raw(child_pid as i32)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Host {
        Host::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn host_forms() {
        let h = ok("web1");
        assert_eq!((h.user, h.host.as_str(), h.port), (None, "web1", None));
        let h = ok("bob@web1.example.com");
        assert_eq!(h.user.as_deref(), Some("bob"));
        assert_eq!(h.host, "web1.example.com");
        let h = ok("web1:2222");
        assert_eq!((h.host.as_str(), h.port), ("web1", Some(2222)));
        let h = ok("root@[::1]:2201");
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(2201)));
        let h = ok("fe80::1%eth0");
        assert_eq!((h.host.as_str(), h.port), ("fe80::1%eth0", None));
        assert_eq!(ok("bob@h").destination(), "bob@h");
    }

    #[test]
    fn names_are_data_never_options_or_shell() {
        for bad in [
            "-oProxyCommand=touch /tmp/x",
            "-oProxyCommand=touch",
            "host;touch /tmp/x",
            "host;cmd",
            "$(touch /tmp/x)",
            "`touch /tmp/x`",
            "h\tx",
            "h x",
            "h\nx",
            "h\u{1b}x",
            "",
            "bob@-oFoo",
            "-bob@host",
            "host:0",
            "host:port",
            "[::1",
            "a|b",
            "a&b",
            "a>b",
        ] {
            let e = Host::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), Kind::InvalidParameters, "{bad}");
        }
    }
}
