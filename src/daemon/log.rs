//! logoffd's own messages: to standard error always (a supervisor's log, or the journal
//! through systemd's stream), and to the journal directly where there is one and standard
//! error does not already go there; where there is no journal at all (sysvinit, OpenRC),
//! to syslog (facility daemon). And its word to systemd (`sd_notify`).

use std::os::unix::net::UnixDatagram;

use crate::output::clean;
use crate::system::syslog::{self, Facility, Severity, Syslog};

/// Where messages go.
pub struct Log {
    journal: Option<systemd_journal_logger::JournalLog>,
    /// Where no journal runs: syslog.
    syslog: Option<Syslog>,
}

/// How much a message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Log {
    pub fn open() -> Log {
        let journald = std::path::Path::new("/run/systemd/journal/socket").exists();
        let journal = if systemd_journal_logger::connected_to_journal() {
            None
        } else {
            systemd_journal_logger::JournalLog::new()
                .ok()
                .map(|j| j.with_syslog_identifier("logoffd".to_string()))
                .filter(|_| journald)
        };
        let syslog =
            (!journald && std::path::Path::new(syslog::SOCKET).exists()).then(Syslog::open);
        Log { journal, syslog }
    }

    /// Standard error only (tests).
    #[cfg(test)]
    pub fn stderr() -> Log {
        Log {
            journal: None,
            syslog: None,
        }
    }

    pub fn say(&self, level: Level, message: &str) {
        let message = clean(message);
        let prefix = match level {
            Level::Info => "",
            Level::Warn => "warning: ",
            Level::Error => "error: ",
        };
        eprintln!("logoffd: {prefix}{message}");
        if let Some(syslog) = &self.syslog {
            let severity = match level {
                Level::Info => Severity::Info,
                Level::Warn => Severity::Warning,
                Level::Error => Severity::Error,
            };
            let _ = syslog.send(Facility::Daemon, severity, "logoffd", &message);
        }
        if let Some(journal) = &self.journal {
            let level = match level {
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
                Level::Error => log::Level::Error,
            };
            let _ = journal.journal_send(
                &log::Record::builder()
                    .args(format_args!("{message}"))
                    .level(level)
                    .target("logoffd")
                    .build(),
            );
        }
    }

    pub fn info(&self, message: &str) {
        self.say(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.say(Level::Warn, message);
    }

    pub fn error(&self, message: &str) {
        self.say(Level::Error, message);
    }
}

/// Tells systemd (`$NOTIFY_SOCKET`, Type=notify) how logoffd is: `READY=1`, `RELOADING=1`,
/// `STOPPING=1`, `STATUS=...`. Nothing where no one listens.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let _ = socket.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name) {
            let _ = socket.send_to_addr(state.as_bytes(), &addr);
        }
    } else {
        let _ = socket.send_to(state.as_bytes(), std::path::Path::new(&path));
    }
}
