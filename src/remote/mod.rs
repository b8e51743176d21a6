//! Other hosts and machines, both sides. A [`Place`] names where to act, checked as data
//! before anything runs; [`open`] gives its backend:
//! - logind over a bus [`connect`] makes: another host's, over ssh, as `loginctl -H` does
//!   ([`host`]); a machine's registered with systemd-machined, as `loginctl -M` does
//!   ([`machine`]). The logind backend takes the connection and does not care how it was
//!   made.
//! - where a host has no bus bridge (elogind hosts), that host's own backend through its own
//!   logoff over the same ssh: this side is the [`relay`] backend, which speaks the
//!   [`wire`] protocol over a [`channel`]; the other side is `logoff --remote-agent`
//!   ([`agent`]).

pub mod agent;
pub mod channel;
pub mod child;
pub mod host;
pub mod machine;
pub mod relay;
pub mod wire;

use std::time::Duration;

pub use host::{Auth, Host};

pub use crate::backend::logind::CALL_TIMEOUT;
use crate::backend::logind::{self, Bus, Locality};
use crate::backend::{Choice, Opened, Purpose};
use crate::error::{Error, Result};

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
    /// Whether the place is this host itself (not another host, not a machine on it).
    pub fn is_this_host(&self) -> bool {
        self.host == HostRef::Local && self.machine.is_none()
    }
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
        (HostRef::Local, None) => Bus::system(),
        (HostRef::Local, Some(name)) => {
            let (conn, tunnel) = machine::bus(name, opts.timeout)?;
            Ok(Bus {
                conn,
                locality: Locality::Elsewhere,
                carrier: Some(Box::new(tunnel)),
            })
        }
        (HostRef::Ssh(host), machine) => {
            let arg = machine.map(|m| format!("--machine={m}"));
            let bridge_args: Vec<&str> = arg.iter().map(String::as_str).collect();
            match host::over_ssh(host, &bridge_args, opts.timeout, opts.auth)? {
                host::Bridged::Bus(conn, tunnel) => Ok(Bus {
                    conn,
                    locality: Locality::Elsewhere,
                    carrier: Some(Box::new(tunnel)),
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
            locality: Locality::Elsewhere,
            carrier: Some(Box::new(tunnel)),
        })),
        host::Bridged::NoBridge(_) => Ok(None),
    }
}

/// Opens the backend for `place`: on this host the one `choice` asks for
/// ([`crate::backend::open_here`]); on another host logind over its bus, or, where the host has no
/// bus bridge (elogind hosts) or with `--backend procfs`, that host's own backend through
/// its logoff ([`relay`]); in a machine, logind over the machine's bus.
pub fn open(
    place: &Place,
    choice: Choice,
    purpose: Purpose,
    opts: &ConnectOptions,
) -> Result<Opened> {
    if let (HostRef::Ssh(host), None) = (&place.host, &place.machine) {
        return open_host(host, choice, purpose, opts);
    }
    if place.is_this_host() {
        return crate::backend::open_here(choice, purpose);
    }
    if choice == Choice::Procfs {
        return Err(Error::invalid(
            "the procfs backend reads this host's /proc: it cannot reach a machine (use \
             --backend logind or auto)",
        ));
    }
    let why = match (&place.host, &place.machine) {
        (HostRef::Local, Some(m)) => {
            format!("machine {m}, through systemd-stdio-bridge --machine")
        }
        (_, Some(m)) => format!("machine {m} on {} over ssh", place.label),
        (_, None) => format!("{} over ssh", place.label),
    };
    let bus = connect(place, opts)?;
    Ok(Opened {
        backend: Box::new(logind::Logind::new(bus)?),
        why,
        agent: None,
    })
}

/// Another host: its logind over ssh through `systemd-stdio-bridge`; where it has none
/// (elogind hosts), or with `--backend procfs`, its own backend through its logoff.
fn open_host(
    host: &Host,
    choice: Choice,
    purpose: Purpose,
    opts: &ConnectOptions,
) -> Result<Opened> {
    let why = if choice == Choice::Procfs {
        format!("{} over ssh, with --backend procfs", host.label)
    } else {
        match bridged(host, opts)? {
            Some(bus) => {
                return Ok(Opened {
                    backend: Box::new(logind::Logind::new(bus)?.over_ssh()),
                    why: format!("{} over ssh", host.label),
                    agent: None,
                });
            }
            None => format!("{} over ssh, which has no systemd-stdio-bridge", host.label),
        }
    };
    let relay = relay::Relay::open(host, choice, purpose, opts)?;
    Ok(Opened {
        agent: Some(relay.version.clone()),
        backend: Box::new(relay),
        why,
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
