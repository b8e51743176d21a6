//! Where a D-Bus connection to logind comes from. The logind backend takes a connection and
//! does not care how it was made ([`connect`]): this host's system bus; another host's, over
//! ssh, as `loginctl -H` does ([`host`]); a machine's registered with systemd-machined, as
//! `loginctl -M` does ([`machine`]). A [`Place`] says which, and is checked as data before
//! anything runs. A host with no bus bridge (elogind hosts) is reached through its own
//! logoff instead ([`agent`]), over the same ssh.

pub mod agent;
pub mod child;
pub mod host;
pub mod machine;

use std::time::Duration;

use zbus::Connection;

pub use child::Tunnel;
pub use host::{Auth, Host};

use crate::error::{Error, Result};

/// How long a method call may take before the bus counts as not answering.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// systemd's bridge between standard input and output and a bus.
pub(crate) const BRIDGE: &str = "systemd-stdio-bridge";

/// One place to act on: a host, and optionally a machine on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// As the user named the host (or this host's name), for messages and the HOST column.
    pub label: String,
    pub host: HostRef,
    /// A machine registered with systemd-machined on that host (`/VM:NAME`).
    pub machine: Option<String>,
}

/// Which host a place is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRef {
    Local,
    Ssh(Host),
}

impl Place {
    /// This host, no machine.
    pub fn here(label: String) -> Place {
        Place {
            label,
            host: HostRef::Local,
            machine: None,
        }
    }

    /// Whether the place is this host itself (not another host, not a machine on it).
    pub fn is_this_host(&self) -> bool {
        self.host == HostRef::Local && self.machine.is_none()
    }
}

/// What a bus connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// This host's own system bus: its PIDs are ours, to follow through pidfds and cgroups.
    ThisHost,
    /// Another host, or a machine: its PIDs mean nothing here, and its failures are a
    /// remote host's (exit status 6).
    Elsewhere,
}

/// A bus connection, and the child process (ssh, the bridge) it runs through, if any: kept
/// alive with it.
pub struct Bus {
    pub conn: Connection,
    pub reach: Reach,
    pub tunnel: Option<Tunnel>,
}

/// How connections to other hosts are made.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Give up on a host that does not answer within this.
    pub timeout: Duration,
    pub auth: Auth,
}

/// Connects to logind's bus at `place`: this host's system bus; a machine's through the
/// bridge run here; another host's (or a machine's there) through ssh.
pub fn connect(place: &Place, opts: &ConnectOptions) -> Result<Bus> {
    match (&place.host, place.machine.as_deref()) {
        (HostRef::Local, None) => Ok(Bus {
            conn: system_bus()?,
            reach: Reach::ThisHost,
            tunnel: None,
        }),
        (HostRef::Local, Some(name)) => {
            let (conn, tunnel) = machine::bus(name, opts.timeout)?;
            Ok(Bus {
                conn,
                reach: Reach::Elsewhere,
                tunnel: Some(tunnel),
            })
        }
        (HostRef::Ssh(host), machine) => {
            let arg = machine.map(|m| format!("--machine={m}"));
            let bridge_args: Vec<&str> = arg.iter().map(String::as_str).collect();
            match host::over_ssh(host, &bridge_args, opts.timeout, opts.auth)? {
                host::Bridged::Bus(conn, tunnel) => Ok(Bus {
                    conn,
                    reach: Reach::Elsewhere,
                    tunnel: Some(tunnel),
                }),
                host::Bridged::NoBridge(said) => Err(host::no_bridge(host, &said)),
            }
        }
    }
}

/// The bus of `host` through its `systemd-stdio-bridge`, over ssh; `None` when the host has
/// no bridge (an elogind host: see [`agent`]).
pub fn bridged(host: &Host, opts: &ConnectOptions) -> Result<Option<Bus>> {
    match host::over_ssh(host, &[], opts.timeout, opts.auth)? {
        host::Bridged::Bus(conn, tunnel) => Ok(Some(Bus {
            conn,
            reach: Reach::Elsewhere,
            tunnel: Some(tunnel),
        })),
        host::Bridged::NoBridge(_) => Ok(None),
    }
}

/// This host's system bus.
pub fn system_bus() -> Result<Connection> {
    zbus::block_on(async {
        zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(|e| Error::system(format!("cannot connect to the system bus: {e}")))
    })
}

/// Checks a machine name: it is passed to systemd-stdio-bridge, on the far side of ssh
/// where a shell reads it, so only the characters machine names use are allowed.
pub fn check_machine(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{}' is not a machine name (letters, digits, '.', '-', '_')",
            name.escape_debug()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        check_machine("web1").expect("ok");
        check_machine("my-container.v2").expect("ok");
        for bad in ["", "-x", "a b", "a;b", "$(x)", "a/b"] {
            assert!(check_machine(bad).is_err(), "{bad}");
        }
    }
}
