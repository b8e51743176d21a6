//! One error type for the whole program, each carrying the exit status it maps to.
//!
//! Messages follow loginctl's wording: they name the action, the target and the cause
//! (`cannot log off session 7 (bob on pts/2): access denied`). The `logoff:` prefix is added
//! once, where the error is printed.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;

/// What kind of failure this is; each kind has its own documented exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Some process of a targeted session could not be ended (exit 1).
    Survivors,
    /// The command line was not understood (exit 2).
    InvalidParameters,
    /// A session argument matched no session, or more than one (exit 3).
    NoSuchSession,
    /// The caller may not log off the session, or it is a protected console session (exit 4).
    AccessDenied,
    /// The session backend or the operating system failed (exit 5).
    System,
    /// A remote host could not be reached or answered with an error (exit 6).
    Remote,
    /// The logoff was cancelled during its grace period (exit 130, as for SIGINT).
    Cancelled,
    /// `--disconnect`: the session has no connection to end (a console, a local X
    /// session); nothing was touched (exit 7).
    NoConnection,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Survivors,
        Kind::InvalidParameters,
        Kind::NoSuchSession,
        Kind::AccessDenied,
        Kind::System,
        Kind::Remote,
        Kind::Cancelled,
        Kind::NoConnection,
    ];

    /// The process exit status for this kind of failure.
    pub fn exit_status(self) -> u8 {
        match self {
            Kind::Survivors => 1,
            Kind::InvalidParameters => 2,
            Kind::NoSuchSession => 3,
            Kind::AccessDenied => 4,
            Kind::System => 5,
            Kind::Remote => 6,
            Kind::Cancelled => 130,
            Kind::NoConnection => 7,
        }
    }

    /// How much a failure of this kind weighs against others: when sessions or hosts fail in
    /// different ways, the exit status is the heaviest one's. The order, heaviest first:
    /// the command line, then a failure of the system, of a remote host, a refusal, a
    /// session not found, processes that survived, and last a cancellation the caller asked
    /// for (see [`EXIT_STATUS_HELP`]).
    fn severity(self) -> u8 {
        match self {
            Kind::InvalidParameters => 8,
            Kind::System => 7,
            Kind::Remote => 6,
            Kind::AccessDenied => 5,
            Kind::NoSuchSession => 4,
            Kind::NoConnection => 3,
            Kind::Survivors => 2,
            Kind::Cancelled => 1,
        }
    }

    /// A short, stable name for JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Survivors => "survivors",
            Kind::InvalidParameters => "invalid-parameters",
            Kind::NoSuchSession => "no-such-session",
            Kind::AccessDenied => "access-denied",
            Kind::System => "system",
            Kind::Remote => "remote",
            Kind::Cancelled => "cancelled",
            Kind::NoConnection => "no-connection",
        }
    }
}

/// The exit statuses, for `--help`, the man page and README (kept here, next to the mapping).
/// logoffd's exit statuses (logoffd(8) and README's logoffd section say them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonStatus {
    /// Stopped by SIGTERM, or `--check` done.
    Stopped,
    /// A system error: no sessions can be listed, the state directory is unusable.
    Failed,
    /// An invalid policy or command line (or run setuid).
    Invalid,
}

impl DaemonStatus {
    pub const ALL: [DaemonStatus; 3] = [
        DaemonStatus::Stopped,
        DaemonStatus::Failed,
        DaemonStatus::Invalid,
    ];

    pub fn exit_status(self) -> u8 {
        match self {
            DaemonStatus::Stopped => 0,
            DaemonStatus::Failed => 1,
            DaemonStatus::Invalid => 2,
        }
    }
}

impl From<DaemonStatus> for ExitCode {
    fn from(status: DaemonStatus) -> ExitCode {
        ExitCode::from(status.exit_status())
    }
}

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    every targeted session was logged off and verified gone (or, with --disconnect,
       its connection ended; with --warn-only, the message written; or the list printed)
  1    some process of a targeted session could not be ended (the survivors are named)
  2    invalid parameters (or run setuid, which logoff refuses); nothing was touched
  3    no such session (or a name matched more than one); nothing was touched
  4    access denied, or a protected console session; nothing was touched
  5    the session backend or the system failed (D-Bus, /proc, ...)
  6    a remote host could not be reached or failed
  7    --disconnect: a session has no connection of its own to end (a console, a local X
       session, mosh, one reached only through another session); nothing was touched
  130  cancelled (Ctrl-C, SIGTERM, SIGHUP) before logging off began; nothing was logged off
When sessions or hosts fail in different ways, the most severe decides, in this order:
  2, 5, 6, 4, 3, 7, 1, 130";

/// An error with its kind and a complete, human-readable message, and the system error
/// behind it where there is one (as uutils' `UIoError`: the cause kept, the context beside
/// it), so that EMFILE and EACCES stay apart for whoever looks.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<Arc<std::io::Error>>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for Error {}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// `context: cause`, keeping the cause.
    pub fn io(kind: Kind, context: impl fmt::Display, cause: std::io::Error) -> Self {
        Error {
            kind,
            message: format!("{context}: {cause}"),
            source: Some(Arc::new(cause)),
        }
    }

    /// The system error behind this one, if any.
    pub fn io_cause(&self) -> Option<&std::io::Error> {
        self.source.as_deref()
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Kind::InvalidParameters, message)
    }

    pub fn system(message: impl Into<String>) -> Self {
        Error::new(Kind::System, message)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_status())
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
            source: self.source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind that decides the exit status among `errors` (see [`Kind::severity`]).
pub fn most_severe<'a>(errors: impl IntoIterator<Item = &'a Error>) -> Option<Kind> {
    errors
        .into_iter()
        .map(Error::kind)
        .max_by_key(|k| k.severity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_distinct_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert!(seen.insert(k.exit_status()), "{k:?} shares its status");
            let line = format!("\n  {:<4} ", k.exit_status());
            assert!(EXIT_STATUS_HELP.contains(&line), "{k:?} undocumented");
        }
    }

    #[test]
    fn logoffds_statuses_are_distinct_and_documented() {
        let readme = include_str!("../README.md");
        let said = "Exit status: 0, or 1 for a\nsystem error (no sessions can be listed, the state directory is unusable), 2 for an invalid\npolicy or command line.";
        assert!(
            readme.contains(said),
            "README's logoffd exit statuses changed"
        );
        let statuses: Vec<u8> = DaemonStatus::ALL.iter().map(|s| s.exit_status()).collect();
        assert_eq!(statuses, [0, 1, 2]);
    }

    #[test]
    fn the_most_severe_failure_decides() {
        let e = |k| Error::new(k, "x");
        let mixed = [
            e(Kind::Survivors),
            e(Kind::AccessDenied),
            e(Kind::Cancelled),
        ];
        assert_eq!(most_severe(&mixed), Some(Kind::AccessDenied));
        let mixed = [e(Kind::Remote), e(Kind::System), e(Kind::Survivors)];
        assert_eq!(most_severe(&mixed), Some(Kind::System));
        assert_eq!(most_severe(&[]), None);
        // The documented order is the order of severity.
        let order = "2, 5, 6, 4, 3, 7, 1, 130";
        let mut kinds = Kind::ALL;
        kinds.sort_by_key(|k| std::cmp::Reverse(k.severity()));
        let listed: Vec<String> = kinds.iter().map(|k| k.exit_status().to_string()).collect();
        assert_eq!(listed.join(", "), order);
        assert!(EXIT_STATUS_HELP.contains(order));
    }

    #[test]
    fn the_cause_is_kept_beside_the_context() {
        let e = Error::io(
            Kind::System,
            "cannot read /proc",
            std::io::Error::from_raw_os_error(24),
        )
        .context("cannot list sessions");
        assert_eq!(
            e.io_cause().and_then(std::io::Error::raw_os_error),
            Some(24)
        );
        assert!(
            e.to_string()
                .starts_with("cannot list sessions: cannot read /proc: ")
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn context_keeps_kind() {
        let e = Error::new(Kind::AccessDenied, "access denied").context("cannot log off session 7");
        assert_eq!(e.kind(), Kind::AccessDenied);
        assert_eq!(e.to_string(), "cannot log off session 7: access denied");
    }
}
