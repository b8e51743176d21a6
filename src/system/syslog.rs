//! Lines for the local syslog daemon (`/dev/log`, RFC 3164), where there is no journal:
//! hosts without systemd (sysvinit or OpenRC, with elogind or nothing) keep their logs so.
//!
//! Guarantees: a line is cleaned before it is sent (a line feed in it cannot start a record
//! of its own, an escape cannot reach whoever reads the log on a terminal), and a syslog
//! daemon that has stopped reading holds the sender up [`WAIT`] at most.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::text::clean;

/// How long one line may take to be handed to syslog.
pub const WAIT: Duration = Duration::from_secs(2);

/// Where syslog's socket is.
pub const SOCKET: &str = "/dev/log";

/// What a line is about (syslog's facility).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// System daemons: logoffd's own messages.
    Daemon,
    /// Security and authorization, kept private: the audit records.
    AuthPriv,
}

/// How much a line matters (syslog's severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Notice,
    Info,
}

/// A socket to send syslog lines from (made once, used for every line).
pub struct Syslog {
    socket: io::Result<UnixDatagram>,
}

impl Syslog {
    pub fn open() -> Syslog {
        Syslog {
            socket: UnixDatagram::unbound()
                .and_then(|s| s.set_write_timeout(Some(WAIT)).map(|()| s)),
        }
    }

    /// A syslog that takes nothing (tests).
    #[cfg(test)]
    pub fn nowhere() -> Syslog {
        Syslog {
            socket: Err(io::Error::other("no syslog in this test")),
        }
    }

    /// Sends `IDENT[PID]: MESSAGE` with the facility and severity given.
    pub fn send(
        &self,
        facility: Facility,
        severity: Severity,
        ident: &str,
        message: &str,
    ) -> io::Result<()> {
        let socket = self
            .socket
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        socket
            .send_to(line(facility, severity, ident, message).as_bytes(), SOCKET)
            .map(|_| ())
    }
}

/// The line as sent: `<PRI>IDENT[PID]: MESSAGE`, the message cleaned.
fn line(facility: Facility, severity: Severity, ident: &str, message: &str) -> String {
    let facility: u8 = match facility {
        Facility::Daemon => 3,
        Facility::AuthPriv => 10,
    };
    let severity: u8 = match severity {
        Severity::Error => 3,
        Severity::Warning => 4,
        Severity::Notice => 5,
        Severity::Info => 6,
    };
    format!(
        "<{}>{ident}[{}]: {}",
        facility * 8 + severity,
        std::process::id(),
        clean(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_priority_and_no_control_characters() {
        let l = line(
            Facility::AuthPriv,
            Severity::Notice,
            "logoff",
            "a\nb\u{1b}[2J",
        );
        assert!(l.starts_with("<85>logoff["), "{l}");
        assert!(l.ends_with("]: a^Jb^[[2J"), "{l}");
        let l = line(Facility::Daemon, Severity::Warning, "logoffd", "x");
        assert!(l.starts_with("<28>logoffd["), "{l}");
    }
}
