//! The audit trail: one record per logoff attempt — who logged off whom, where, how, and how
//! it went. logind records that a session ended, not who ended it; this record answers that.
//!
//! Records go to the systemd journal (native protocol, with structured `LOGOFF_*` fields), or
//! where there is no journald, to syslog (`/dev/log`, facility authpriv). They are written on
//! the host logoff runs on; for another host's session the record names that host.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::Session;
use crate::system::syslog::{Facility, Severity, Syslog};
use crate::system::users::Person;

/// One logoff attempt on one session.
pub struct Entry<'a> {
    pub caller: &'a Person,
    /// The host the session is (or was) on.
    pub host: &'a str,
    /// The machine (container or VM) on that host, with `/VM:NAME`.
    pub machine: Option<&'a str>,
    pub session: &'a Session,
    pub grace: Duration,
    pub message: bool,
    /// SIGKILL was needed (or asked for with a zero timeout).
    pub forced: bool,
    pub console: bool,
    /// `logged-off`, or the error kind (`access-denied`, `survivors`, `cancelled`, ...).
    pub result: &'a str,
    /// The error message, if the attempt failed.
    pub detail: Option<&'a str>,
    /// For logoffd: the policy rule, and the limit reached (`idle`, `disconnected`,
    /// `max-age`).
    pub policy: Option<(&'a str, &'a str)>,
}

impl Entry<'_> {
    /// The human-readable line.
    fn message(&self) -> String {
        let s = self.session;
        let from = s
            .remote_host
            .as_deref()
            .map(|h| format!(", from {h}"))
            .unwrap_or_default();
        let detail = self.detail.map(|d| format!(": {d}")).unwrap_or_default();
        let me = &self.caller.caller;
        let mut behind = Vec::new();
        if let Some(login) = &self.caller.login_name
            && *login != me.name
        {
            behind.push(format!("login {login}"));
        }
        if let Some(sudo) = &self.caller.sudo_user {
            behind.push(format!("sudo from {sudo}"));
        }
        let behind = if behind.is_empty() {
            String::new()
        } else {
            format!("; {}", behind.join(", "))
        };
        let on = match self.machine {
            Some(m) => format!("machine {m} on {}", self.host),
            None => self.host.to_string(),
        };
        let why = self
            .policy
            .map(|(rule, reason)| format!(" by policy rule {rule} ({reason})"))
            .unwrap_or_default();
        format!(
            "{} (uid {}{behind}) logged off session {} ({}{from}) on {on}{why}: {}{detail}",
            me.name,
            me.uid,
            s.id,
            s.owner_and_place(),
            self.result
        )
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let s = self.session;
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let me = &self.caller;
        let mut fields = vec![
            ("LOGOFF_CALLER", me.caller.name.clone()),
            ("LOGOFF_CALLER_UID", me.caller.uid.to_string()),
            (
                "LOGOFF_CALLER_LOGIN_UID",
                me.login_uid.map(|u| u.to_string()).unwrap_or_default(),
            ),
            (
                "LOGOFF_CALLER_LOGIN_USER",
                me.login_name.clone().unwrap_or_default(),
            ),
            ("LOGOFF_SUDO_USER", me.sudo_user.clone().unwrap_or_default()),
            ("LOGOFF_HOST", self.host.to_string()),
            ("LOGOFF_MACHINE", self.machine.unwrap_or("").to_string()),
            ("LOGOFF_SESSION", s.id.to_string()),
            ("LOGOFF_USER", s.user.clone()),
            (
                "LOGOFF_UID",
                s.uid.map(|u| u.to_string()).unwrap_or_default(),
            ),
            ("LOGOFF_TTY", s.name().unwrap_or("").to_string()),
            (
                "LOGOFF_REMOTE_HOST",
                s.remote_host.clone().unwrap_or_default(),
            ),
            ("LOGOFF_GRACE_SECONDS", self.grace.as_secs().to_string()),
            ("LOGOFF_MESSAGE", yes(self.message)),
            ("LOGOFF_FORCED", yes(self.forced)),
            ("LOGOFF_CONSOLE", yes(self.console)),
            ("LOGOFF_RESULT", self.result.to_string()),
        ];
        if let Some((rule, reason)) = self.policy {
            fields.push(("LOGOFF_POLICY_RULE", rule.to_string()));
            fields.push(("LOGOFF_REASON", reason.to_string()));
        }
        fields
    }
}

/// Where the records of a run go: the journal's socket, else syslog's, each made once.
pub struct AuditLog {
    journal: std::io::Result<systemd_journal_logger::JournalLog>,
    syslog: Syslog,
}

impl AuditLog {
    pub fn open() -> AuditLog {
        // A syslog daemon that has stopped reading holds logoff up 2 s at most.
        let syslog = Syslog::open();
        AuditLog {
            journal: systemd_journal_logger::JournalLog::empty()
                .map(|j| j.with_syslog_identifier("logoff".to_string())),
            syslog,
        }
    }

    /// Writes the record: to the journal, else to syslog. The error says why neither took
    /// it.
    pub fn record(&self, entry: &Entry<'_>) -> Result<()> {
        let message = entry.message();
        let fields = entry.fields();
        let ok = entry.result == "logged-off";
        let journal_error = match self.journal(&message, &fields, ok) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        self.syslog(&message, &fields, ok).map_err(|syslog_error| {
            Error::system(format!(
                "cannot write the audit record for {}: journal: {journal_error}; syslog: \
                 {syslog_error}",
                entry.session.describe()
            ))
        })
    }

    /// A plain line where the records go (the journal, else syslog, facility authpriv),
    /// with no `LOGOFF_*` fields: what a remote logoff did on this host at another's
    /// request (`logoff --remote-agent`), for this host's own trail.
    pub fn note(&self, message: &str) -> Result<()> {
        let journal_error = match self.journal(message, &[], true) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        self.syslog(message, &[], true).map_err(|syslog_error| {
            Error::system(format!(
                "cannot log what was done: journal: {journal_error}; syslog: {syslog_error}"
            ))
        })
    }

    fn journal(
        &self,
        message: &str,
        fields: &[(&'static str, String)],
        ok: bool,
    ) -> std::io::Result<()> {
        let logger = self.journal.as_ref().map_err(copy)?;
        let kvs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let level = if ok {
            log::Level::Info
        } else {
            log::Level::Warn
        };
        logger.journal_send(
            &log::Record::builder()
                .args(format_args!("{message}"))
                .level(level)
                .target("logoff")
                .key_values(&kvs.as_slice())
                .build(),
        )
    }

    /// RFC 3164 to `/dev/log`, facility authpriv: notice, or warning for a failure; the
    /// fields after the message, in brackets.
    fn syslog(
        &self,
        message: &str,
        fields: &[(&'static str, String)],
        ok: bool,
    ) -> std::io::Result<()> {
        let extra: Vec<String> = fields
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let line = if extra.is_empty() {
            message.to_string()
        } else {
            format!("{message} [{}]", extra.join(" "))
        };
        let severity = if ok {
            Severity::Notice
        } else {
            Severity::Warning
        };
        self.syslog
            .send(Facility::AuthPriv, severity, "logoff", &line)
    }
}

/// The same error again (a socket that could not be made fails every record alike).
fn copy(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, Uid};

    #[test]
    fn the_record_names_caller_target_and_result() {
        let caller = Person {
            caller: crate::system::users::Caller {
                uid: Uid::ROOT,
                name: "root".into(),
                is_root: true,
            },
            login_uid: Some(Uid::from_raw(1000)),
            login_name: Some("alice".into()),
            sudo_user: Some("alice".into()),
        };
        let session = Session {
            id: SessionId::new("7"),
            uid: Some(Uid::from_raw(1001)),
            user: "bob".into(),
            tty: Some("pts/2".into()),
            remote_host: Some("10.0.0.5".into()),
            ..Session::default()
        };
        let e = Entry {
            caller: &caller,
            host: "web1",
            machine: None,
            session: &session,
            grace: Duration::from_secs(300),
            message: true,
            forced: false,
            console: false,
            result: "logged-off",
            detail: None,
            policy: None,
        };
        let by_policy = Entry {
            policy: Some(("remote-idle", "idle")),
            ..Entry { ..e }
        };
        assert!(
            by_policy
                .message()
                .contains("on web1 by policy rule remote-idle (idle): logged-off"),
            "{}",
            by_policy.message()
        );
        let f = by_policy.fields();
        assert!(f.contains(&("LOGOFF_POLICY_RULE", "remote-idle".into())));
        assert!(f.contains(&("LOGOFF_REASON", "idle".into())));
        let e = Entry {
            policy: None,
            ..by_policy
        };
        assert_eq!(
            e.message(),
            "root (uid 0; login alice, sudo from alice) logged off session 7 (bob on pts/2, \
             from 10.0.0.5) on web1: logged-off"
        );
        let f = e.fields();
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("LOGOFF_CALLER_UID"), Some("0"));
        assert_eq!(get("LOGOFF_CALLER_LOGIN_UID"), Some("1000"));
        assert_eq!(get("LOGOFF_SUDO_USER"), Some("alice"));
        assert_eq!(get("LOGOFF_SESSION"), Some("7"));
        assert_eq!(get("LOGOFF_TTY"), Some("pts/2"));
        assert_eq!(get("LOGOFF_GRACE_SECONDS"), Some("300"));
        assert_eq!(get("LOGOFF_RESULT"), Some("logged-off"));
    }
}
