//! Hosts reached over ssh: a host argument checked as data ([`Host::parse`]), and the bus
//! of that host through `ssh ... systemd-stdio-bridge`.
//!
//! Host names are data, never options or shell: they are checked, always follow `--` on
//! ssh's command line, and ssh is run directly, never through a shell. The user's ssh (its
//! configuration, agent and known_hosts) does the connecting; `LOGOFF_SSH` may name another
//! ssh binary.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use zbus::Connection;

use super::BRIDGE;
use super::child::{Tunnel, through_child};
use crate::error::{Error, Kind, Result};

/// The environment variable that names the ssh binary (default `ssh`).
pub const SSH_ENV: &str = "LOGOFF_SSH";

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

/// The ssh command that runs something on `host`: `ssh -xTa -o ClearAllForwardings=yes
/// [-o BatchMode=yes] -o ConnectTimeout=N [-p PORT] -- DEST`, the remote command's words to
/// be appended. No forwarding of any kind (X11, agent, ports from the user's
/// configuration), and no terminal. Also how long the connection may take to answer: the
/// connect timeout, and typing time when ssh may ask for a password.
pub(crate) fn ssh_command(
    host: &Host,
    connect_timeout: Duration,
    auth: Auth,
) -> (Command, Duration) {
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
            // A process group of its own: the Ctrl-C of the terminal logoff runs on is
            // logoff's to handle (a grace period is cancelled, and the users are told so over
            // this very connection), not ssh's to die of. ssh asks nothing on the terminal
            // here, so it needs no foreground.
            cmd.process_group(0);
            connect_timeout
        }
        // ssh asks for a password on the terminal: it stays in the foreground with logoff,
        // and a Ctrl-C ends it too.
        Auth::Interactive => connect_timeout + TYPING_TIME,
    };
    if let Some(port) = host.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.arg("--").arg(host.destination());
    (cmd, handshake)
}

/// What [`over_ssh`] found.
pub enum Bridged {
    /// The bus of the host, through its bridge.
    Bus(Connection, Tunnel),
    /// The host has no `systemd-stdio-bridge` (an elogind host, say); what ssh said.
    NoBridge(String),
}

/// Connects to the system bus of `host` over ssh: [`ssh_command`] running
/// `systemd-stdio-bridge [BRIDGE_ARGS]`, the bus connection over its standard input and
/// output: the connection carries logind's bus only.
pub fn over_ssh(
    host: &Host,
    bridge_args: &[&str],
    connect_timeout: Duration,
    auth: Auth,
) -> Result<Bridged> {
    let (mut cmd, handshake) = ssh_command(host, connect_timeout, auth);
    cmd.arg(BRIDGE).args(bridge_args);
    match through_child(cmd, handshake) {
        Ok((conn, tunnel)) => Ok(Bridged::Bus(conn, tunnel)),
        Err((_, said)) if lacks_bridge(&said) => Ok(Bridged::NoBridge(said)),
        Err((e, said)) => Err(Error::new(
            Kind::Remote,
            format!(
                "cannot connect to {}: {}",
                host.label,
                if said.is_empty() { e.to_string() } else { said }
            ),
        )),
    }
}

/// Whether what ssh said (and how it ended) means the remote shell found no bridge.
fn lacks_bridge(said: &str) -> bool {
    said.contains(BRIDGE) && said.contains("not found")
        || said.contains("exited with exit status: 127")
}

/// The error for a host without a bridge where nothing else will do (a machine on it).
pub fn no_bridge(host: &Host, said: &str) -> Error {
    Error::new(
        Kind::Remote,
        format!(
            "cannot connect to {}: {said}: the host has no systemd-stdio-bridge (an elogind \
             host?), which logoff needs to reach logind over ssh",
            host.label
        ),
    )
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
