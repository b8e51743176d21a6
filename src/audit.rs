//! The audit trail: one record per logoff attempt — who logged off whom, where, how, and how
//! it went. logind records that a session ended, not who ended it; this record answers that.
//!
//! Records go to the systemd journal (native protocol, with structured `LOGOFF_*` fields), or
//! where there is no journald, to syslog (`/dev/log`, facility authpriv). They are written on
//! the host logoff runs on; for another host's session the record names that host.

use std::time::Duration;

use crate::error::{Error, Kind, Result};
use crate::logoff::{Action, ConsolePolicy, Effect};
use crate::model::Session;
use crate::policy::Reason;
use crate::system::syslog::{Facility, Severity, Syslog};
use crate::system::users::Person;

/// The record's fields, for `--help` and the man page: each means one thing, for the
/// command and for logoffd alike (kept here, next to [`Entry::fields`]; a test checks every
/// field is described).
pub const FIELDS_HELP: &str = "\
Audit record (one per attempt, to the journal, else syslog authpriv; SYSLOG_IDENTIFIER=logoff):
  LOGOFF_ACTION                      logoff, disconnect (--disconnect, tsdiscon, a rule's
                                     action) or message (--warn-only)
  LOGOFF_CALLER, LOGOFF_CALLER_UID   the user logoff (or logoffd) runs as
  LOGOFF_CALLER_LOGIN_UID, LOGOFF_CALLER_LOGIN_USER
                                     the person who logged in (the kernel's login uid,
                                     which sudo and su keep)
  LOGOFF_SUDO_USER                   sudo's SUDO_USER (a claim unless sudo ran logoff)
  LOGOFF_HOST, LOGOFF_MACHINE        where the session is (with /VM:NAME, the machine)
  LOGOFF_SESSION, LOGOFF_USER, LOGOFF_UID, LOGOFF_TTY
                                     the session: ID, user, uid, terminal or display
  LOGOFF_REMOTE_HOST                 where it came from, as the system vouches for it
  LOGOFF_REMOTE_HOST_CLAIM           where a user's text says it came from (and where
                                     that was read), when nothing vouches for it
  LOGOFF_GRACE_SECONDS               from the first warning to the logoff (--grace; for
                                     logoffd, since its first warning)
  LOGOFF_MESSAGE                     yes: its users were warned with a message first
  LOGOFF_FORCED                      yes: SIGKILL was needed (or sent at once: --timeout 0),
                                     or may have been sent by a logoff that failed on the
                                     way; no for a refusal, a cancellation, a session not
                                     found
  LOGOFF_CONSOLE                     yes: another user's console session was allowed
                                     (--console; for logoffd, a rule naming the console)
  LOGOFF_RESULT                      logged-off, disconnected, messaged, or what went
                                     wrong: access-denied, survivors, cancelled,
                                     no-such-session, no-connection, system, remote
  LOGOFF_POLICY_RULE, LOGOFF_REASON  logoffd only: the rule, and the limit reached (idle,
                                     disconnected, max-age, hours, allowance, sessions)";

/// What an attempt's record says beyond its session and result: who, where, how — the same
/// for the command and for logoffd, so that each field means one thing (logoff(1) documents
/// them).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Log off, disconnect, or a message only.
    pub action: Action,
    pub caller: &'a Person,
    /// The host the session is (or was) on.
    pub host: &'a str,
    /// The machine (container or VM) on that host, with `/VM:NAME`.
    pub machine: Option<&'a str>,
    /// From the first warning to the logoff (`--grace`; logoffd: since its first warning).
    pub grace: Duration,
    /// The users were warned with a message first.
    pub message: bool,
    /// Whether another user's console session was allowed (`--console`; logoffd: a rule
    /// that names the console).
    pub console: ConsolePolicy,
    /// Between SIGTERM and SIGKILL.
    pub timeout: Duration,
    /// For logoffd: the policy rule, and the limit reached.
    pub policy: Option<(&'a str, Reason)>,
}

/// One logoff attempt on one session, as recorded: built from its context and result in one
/// place ([`Entry::of`]).
struct Entry<'a> {
    context: &'a Context<'a>,
    session: &'a Session,
    /// `logged-off`, or the error kind (`access-denied`, `survivors`, `cancelled`, ...).
    result: &'a str,
    /// The error message, if the attempt failed.
    detail: Option<&'a str>,
    /// SIGKILL was needed (or asked for with a zero timeout); or, for a failure on the way,
    /// may have been sent. A refusal, a cancellation or a session not found sent nothing.
    forced: bool,
}

impl<'a> Entry<'a> {
    fn of(context: &'a Context<'a>, session: &'a Session, result: &'a Result<Effect>) -> Self {
        let (result, detail, forced) = match result {
            Ok(Effect::LoggedOff(done)) => ("logged-off", None, done.forced(context.timeout)),
            Ok(Effect::Planned { .. }) => ("planned", None, false),
            Ok(Effect::Disconnected(cut)) => ("disconnected", None, cut.forced),
            Ok(Effect::Messaged) => ("messaged", None, false),
            Err(e) => (
                e.kind().as_str(),
                Some(e.message()),
                !matches!(
                    e.kind(),
                    Kind::AccessDenied | Kind::Cancelled | Kind::NoSuchSession
                ),
            ),
        };
        Entry {
            context,
            session,
            result,
            detail,
            forced,
        }
    }

    /// The human-readable line.
    fn message(&self) -> String {
        let s = self.session;
        let from = s
            .remote_host
            .as_deref()
            .map(|h| format!(", from {h}"))
            .unwrap_or_default();
        let detail = self.detail.map(|d| format!(": {d}")).unwrap_or_default();
        let me = &self.context.caller.caller;
        let mut behind = Vec::new();
        if let Some(login) = &self.context.caller.login_name
            && *login != me.name
        {
            behind.push(format!("login {login}"));
        }
        if let Some(sudo) = &self.context.caller.sudo_user {
            behind.push(format!("sudo from {sudo}"));
        }
        let behind = if behind.is_empty() {
            String::new()
        } else {
            format!("; {}", behind.join(", "))
        };
        let on = match self.context.machine {
            Some(m) => format!("machine {m} on {}", self.context.host),
            None => self.context.host.to_string(),
        };
        let why = self
            .context
            .policy
            .map(|(rule, reason)| format!(" by policy rule {rule} ({})", reason.as_str()))
            .unwrap_or_default();
        let did = match self.context.action {
            Action::LogOff => "logged off",
            Action::Disconnect => "disconnected",
            Action::Message => "sent a message to",
        };
        format!(
            "{} (uid {}{behind}) {did} session {} ({}{from}) on {on}{why}: {}{detail}",
            me.name,
            me.uid,
            s.id,
            s.owner_and_place(),
            self.result
        )
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let s = self.session;
        let c = self.context;
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let me = c.caller;
        let mut fields = vec![
            ("LOGOFF_ACTION", c.action.as_str().to_string()),
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
            ("LOGOFF_HOST", c.host.to_string()),
            ("LOGOFF_MACHINE", c.machine.unwrap_or("").to_string()),
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
            (
                "LOGOFF_REMOTE_HOST_CLAIM",
                s.remote_claim
                    .as_ref()
                    .map(|c| format!("{} ({})", c.value, c.source))
                    .unwrap_or_default(),
            ),
            ("LOGOFF_GRACE_SECONDS", c.grace.as_secs().to_string()),
            ("LOGOFF_MESSAGE", yes(c.message)),
            ("LOGOFF_FORCED", yes(self.forced)),
            ("LOGOFF_CONSOLE", yes(c.console == ConsolePolicy::Allow)),
            ("LOGOFF_RESULT", self.result.to_string()),
        ];
        if let Some((rule, reason)) = c.policy {
            fields.push(("LOGOFF_POLICY_RULE", rule.to_string()));
            fields.push(("LOGOFF_REASON", reason.as_str().to_string()));
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

    /// Records kept nowhere (tests of the daemon's flow: the real trail is tested on real
    /// hosts).
    #[cfg(test)]
    pub fn nowhere() -> AuditLog {
        AuditLog {
            journal: Err(std::io::Error::other("no journal in this test")),
            syslog: Syslog::nowhere(),
        }
    }

    /// Writes the record of one attempt: to the journal, else to syslog. The error says why
    /// neither took it.
    pub fn record(
        &self,
        context: &Context<'_>,
        session: &Session,
        result: &Result<Effect>,
    ) -> Result<()> {
        self.write(&Entry::of(context, session, result))
    }

    fn write(&self, entry: &Entry<'_>) -> Result<()> {
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
        let context = Context {
            action: Action::LogOff,
            caller: &caller,
            host: "web1",
            machine: None,
            grace: Duration::from_secs(300),
            message: true,
            console: ConsolePolicy::Protect,
            timeout: Duration::from_secs(10),
            policy: None,
        };
        let done: Result<Effect> = Ok(Effect::LoggedOff(crate::logoff::Done::default()));
        let by_policy = Context {
            policy: Some(("remote-idle", Reason::Idle)),
            ..context
        };
        let e = Entry::of(&by_policy, &session, &done);
        assert!(
            e.message()
                .contains("on web1 by policy rule remote-idle (idle): logged-off"),
            "{}",
            e.message()
        );
        let f = e.fields();
        assert!(f.contains(&("LOGOFF_POLICY_RULE", "remote-idle".into())));
        assert!(f.contains(&("LOGOFF_REASON", "idle".into())));
        let e = Entry::of(&context, &session, &done);
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
        assert_eq!(get("LOGOFF_FORCED"), Some("no"));
        assert_eq!(get("LOGOFF_CONSOLE"), Some("no"));
    }

    #[test]
    fn every_field_is_described_once() {
        let caller = Person::current();
        let context = Context {
            action: Action::LogOff,
            caller: &caller,
            host: "h",
            machine: None,
            grace: Duration::ZERO,
            message: false,
            console: ConsolePolicy::Protect,
            timeout: Duration::ZERO,
            policy: Some(("r", Reason::Idle)),
        };
        let session = Session::default();
        let result = Ok(Effect::LoggedOff(crate::logoff::Done::default()));
        for (field, _) in Entry::of(&context, &session, &result).fields() {
            assert_eq!(
                FIELDS_HELP.matches(&format!("{field}\n")).count()
                    + FIELDS_HELP.matches(&format!("{field} ")).count()
                    + FIELDS_HELP.matches(&format!("{field},")).count(),
                1,
                "{field}"
            );
        }
    }

    /// One builder for both programs: a refusal sent nothing, a failure on the way may have
    /// sent SIGKILL — for logoffd too (its records said "no" always).
    #[test]
    fn forced_means_the_same_for_every_result() {
        let caller = Person::current();
        let context = Context {
            action: Action::LogOff,
            caller: &caller,
            host: "h",
            machine: None,
            grace: Duration::ZERO,
            message: false,
            console: ConsolePolicy::Protect,
            timeout: Duration::ZERO,
            policy: Some(("r", Reason::MaxAge)),
        };
        let session = Session::default();
        let forced = |result: Result<Effect>| {
            Entry::of(&context, &session, &result)
                .fields()
                .into_iter()
                .find(|(k, _)| *k == "LOGOFF_FORCED")
                .map(|(_, v)| v)
        };
        let done = Ok(Effect::LoggedOff(crate::logoff::Done::default()));
        assert_eq!(
            forced(done).as_deref(),
            Some("yes"),
            "a zero timeout is SIGKILL"
        );
        let refused = Err(Error::new(Kind::AccessDenied, "no"));
        assert_eq!(forced(refused).as_deref(), Some("no"));
        let survivors = Err(Error::new(Kind::Survivors, "left"));
        assert_eq!(forced(survivors).as_deref(), Some("yes"));
    }
}
