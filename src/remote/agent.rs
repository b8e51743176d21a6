//! `logoff --remote-agent`: this host's backend, for a logoff on another host that reached
//! this one over ssh and cannot use its bus (an elogind host has no `systemd-stdio-bridge`).
//! It reads requests on standard input and answers each on standard output, one JSON line
//! each ([`crate::remote::wire`]); the other logoff runs the flow.
//!
//! Guarantees:
//! - It never acts on its own: it answers requests, and exits at the end of its input (the
//!   other side gone: Ctrl-C there, a dropped connection) or when no request has come for
//!   [`IDLE`] (the other side pings while it waits). So a logoff cancelled there leaves
//!   nothing running here.
//! - It acts with its own backend, privilege and view: sessions named by ID must be ones it
//!   listed; access is judged by its own caller (the ssh user), never by what it is told.
//! - Its own session (the ssh login it runs in) is never a target.
//! - Every request is bounded ([`MAX_REQUEST`]), every wait has a deadline, and a warning's
//!   text may hold no control character a terminal would act on.
//! - What it did is noted where this host keeps logoff's records (the journal, else
//!   syslog): asked, forced, ended, and for whom.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::CALL_TIMEOUT;
use super::channel::KEEPALIVE;
use super::wire::{
    self, Answer, Call, PROTOCOL, Reply, WireCut, WireError, WireProcess, WireSession,
    WireSignalled,
};
use crate::audit::AuditLog;
use crate::backend::{self, Backend, Choice, Purpose, Signalled};
use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{Session, SessionId};
use crate::output;
use crate::system::lines::{Line, LineReader, write_line};
use crate::system::users::Person;

/// The longest request accepted (a warning's text is the largest part of any).
pub const MAX_REQUEST: usize = 1 << 20;

/// How long it waits for the next request before it takes the other side for gone.
pub const IDLE: Duration = Duration::from_secs(KEEPALIVE.as_secs() * 6);

/// The longest wait one request for what is left may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Answers requests until the input ends. The exit status: 0 at the end of the input, 6
/// when the other side went silent, 5 when standard input or output failed.
pub fn serve() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut reader = LineReader::new(MAX_REQUEST);
    let mut served: Option<Served> = None;
    loop {
        let line = match reader.next(stdin.as_fd(), Instant::now() + IDLE) {
            Ok(Line::Text(line)) => line,
            Ok(Line::Closed) => return ExitCode::SUCCESS,
            Ok(Line::TimedOut) => {
                output::error_line(&format!(
                    "--remote-agent: no request for {}: the logoff that started this one is \
                     gone",
                    crate::duration::display(IDLE)
                ));
                return ExitCode::from(Kind::Remote.exit_status());
            }
            Err(e) => {
                output::error_line(&format!("--remote-agent: cannot read a request: {e}"));
                return ExitCode::from(Kind::System.exit_status());
            }
        };
        let reply = match serde_json::from_slice::<Call>(&line) {
            Ok(request) => answer(&mut served, request),
            Err(e) => failed(&Error::invalid(format!(
                "not a request of logoff's remote protocol {PROTOCOL}: {e}"
            ))),
        };
        let sent = serde_json::to_vec(&reply)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                write_line(stdout.as_fd(), &text, Instant::now() + CALL_TIMEOUT)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = sent {
            output::error_line(&format!("--remote-agent: cannot answer: {e}"));
            return ExitCode::from(Kind::System.exit_status());
        }
    }
}

/// The reply to one request: the greeting opens the backend, everything else uses it.
fn answer(served: &mut Option<Served>, request: Call) -> Reply {
    let result = match (served.as_mut(), request) {
        (
            None,
            Call::Hello {
                protocol,
                version,
                backend,
                purpose,
            },
        ) => hello(protocol, &version, &backend, &purpose).map(|(s, reply)| {
            *served = Some(s);
            reply
        }),
        (Some(_), Call::Hello { .. }) => Err(Error::invalid("a second greeting")),
        (None, _) => Err(Error::invalid("a request before the greeting")),
        (Some(s), request) => s.answer(request),
    };
    result.unwrap_or_else(|e| failed(&e))
}

fn failed(e: &Error) -> Reply {
    Reply::Failed {
        error: WireError::of(e),
    }
}

/// Checks the other side's protocol and opens this host's backend as it asks.
fn hello(protocol: u32, version: &str, backend: &str, purpose: &str) -> Result<(Served, Reply)> {
    let mine = env!("CARGO_PKG_VERSION");
    if protocol != PROTOCOL {
        let theirs = wire::check_version(version).map_or("?", |()| version);
        return Err(Error::new(
            Kind::Remote,
            format!(
                "the logoff {mine} on {} speaks remote protocol {PROTOCOL}, the logoff {theirs} \
                 that called it speaks {protocol}: install the same version of logoff on both",
                crate::system::host::hostname()
            ),
        ));
    }
    let choice = match backend {
        "auto" => Choice::Auto,
        "logind" => Choice::Logind,
        "procfs" => Choice::Procfs,
        _ => return Err(Error::invalid("an unknown backend")),
    };
    let purpose = match purpose {
        "list" => Purpose::List,
        "end" => Purpose::EndSessions,
        _ => return Err(Error::invalid("an unknown purpose")),
    };
    if purpose == Purpose::EndSessions {
        crate::system::handle::prepare_descriptors();
    }
    let mut opened = backend::open_here(choice, purpose)?;
    let (flavor, detail) = opened.backend.about();
    let reply = Reply::Hello {
        protocol: PROTOCOL,
        version: mine.to_string(),
        backend: flavor.as_str().to_string(),
        about: format!("{detail}; {} there", opened.why),
    };
    let own = opened.backend.current()?;
    Ok((
        Served {
            backend: opened.backend,
            purpose,
            own,
            known: HashMap::new(),
            listed: Vec::new(),
            trail: AuditLog::open(),
            who: who(),
        },
        reply,
    ))
}

/// `root (uid 0, from 192.0.2.7)`: the ssh user, the person behind it, and where the
/// connection came from (sshd's `SSH_CONNECTION`), for this host's trail.
fn who() -> String {
    let person = Person::current();
    let me = &person.caller;
    let mut parts = vec![format!("uid {}", me.uid)];
    if let Some(login) = person.login_name.as_ref().filter(|l| **l != me.name) {
        parts.push(format!("login {login}"));
    }
    if let Some(from) = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(String::from))
    {
        parts.push(format!("from {from}"));
    }
    format!("{} ({})", me.name, parts.join(", "))
}

/// What the agent keeps between requests.
struct Served {
    backend: Box<dyn Backend>,
    purpose: Purpose,
    /// The session this agent runs in: never a target.
    own: Option<SessionId>,
    /// The sessions last listed, by ID: requests name sessions among these.
    known: HashMap<SessionId, Session>,
    /// Every session of the last listing, the agent's own too (what connects a session is
    /// judged with all of them).
    listed: Vec<Session>,
    trail: AuditLog,
    who: String,
}

impl Served {
    fn answer(&mut self, request: Call) -> Result<Reply> {
        match request {
            Call::Hello { .. } => Err(Error::invalid("a second greeting")),
            Call::Ping {} => Ok(Reply::Done {}),
            Call::List {} => self.list(),
            Call::Caller {} => self.backend.caller().map(|c| wire::caller_reply(&c)),
            Call::CheckAccess { session } => {
                let s = self.known(&session)?;
                let caller = self.backend.caller()?;
                self.backend
                    .check_access(&s, &caller)
                    .map(|()| Reply::Done {})
            }
            Call::Warn { session, text } => {
                check_warning(&text)?;
                let s = self.known(&session)?;
                self.backend.warn(&s, &text).map(|w| Reply::from(&w))
            }
            Call::Terminate { sessions } => self.signal(&sessions, Step::Ask),
            Call::Kill { sessions } => self.signal(&sessions, Step::Force),
            Call::Remaining { sessions, wait_ms } => self.remaining(&sessions, wait_ms),
            Call::Disconnect {
                sessions,
                timeout_ms,
            } => self.disconnect(&sessions, timeout_ms),
            Call::Finish { session } => {
                let s = self.known(&session)?;
                let notes = self.backend.finish(&s)?;
                self.note(&format!(
                    "{} has ended: no process of it is left",
                    s.describe()
                ));
                Ok(Reply::Notes { notes })
            }
        }
    }

    /// Every session, or, to end sessions, every session but the agent's own.
    fn list(&mut self) -> Result<Reply> {
        let mut sessions = self.backend.list()?;
        // What set each one's idle time, and who uses it: read here, where its processes are.
        self.backend
            .observe(&mut sessions, backend::Sources::default())?;
        // Judged with every session of the host (the agent's own too: a client may be in it).
        let presences = crate::presence::judge(&sessions, crate::time::now());
        let mut listed: Vec<WireSession> = sessions
            .iter()
            .zip(&presences)
            .map(|(s, p)| WireSession::of(s, p))
            .collect();
        self.listed.clone_from(&sessions);
        if self.purpose == Purpose::EndSessions {
            listed.retain(|s| Some(s.id.as_str()) != self.own.as_ref().map(SessionId::as_str));
            sessions.retain(|s| Some(&s.id) != self.own.as_ref());
        }
        let reply = Reply::Sessions { sessions: listed };
        self.known = sessions.into_iter().map(|s| (s.id.clone(), s)).collect();
        Ok(reply)
    }

    fn known(&self, id: &str) -> Result<Session> {
        self.known.get(&SessionId::new(id)).cloned().ok_or_else(|| {
            Error::new(
                Kind::NoSuchSession,
                format!(
                    "session {} is not one this logoff listed (on {})",
                    crate::text::clean(id),
                    crate::system::host::hostname()
                ),
            )
        })
    }

    fn targets(&self, ids: &[String]) -> Result<Vec<Session>> {
        if ids.len() > wire::MAX_ITEMS {
            return Err(Error::invalid("too many sessions"));
        }
        ids.iter().map(|id| self.known(id)).collect()
    }

    fn signal(&mut self, ids: &[String], step: Step) -> Result<Reply> {
        let targets = self.targets(ids)?;
        let refs: Vec<&Session> = targets.iter().collect();
        let results: Vec<Result<Signalled>> = match step {
            Step::Ask => self.backend.terminate(&refs),
            Step::Force => self.backend.kill(&refs),
        };
        for (s, r) in targets.iter().zip(&results) {
            if r.is_ok() {
                self.note(&match step {
                    Step::Ask => format!("asked {} to end (SIGHUP, SIGTERM)", s.describe()),
                    Step::Force => format!("sent SIGKILL to {}", s.describe()),
                });
            }
        }
        Ok(Reply::Signalled {
            results: results
                .iter()
                .map(|r| match r {
                    Ok(s) => Answer::Ok(WireSignalled::of(s)),
                    Err(e) => Answer::Err(WireError::of(e)),
                })
                .collect(),
        })
    }

    fn disconnect(&mut self, ids: &[String], timeout_ms: u64) -> Result<Reply> {
        let targets = self.targets(ids)?;
        let refs: Vec<&Session> = targets.iter().collect();
        let timeout = Duration::from_millis(timeout_ms).min(MAX_WAIT);
        let results =
            crate::logoff::cut_connections(self.backend.as_mut(), &self.listed, &refs, timeout);
        for (s, r) in targets.iter().zip(&results) {
            if r.is_ok() {
                self.note(&format!("ended the connection of {}", s.describe()));
            }
        }
        Ok(Reply::Disconnected {
            results: results
                .iter()
                .map(|r| match r {
                    Ok(c) => Answer::Ok(WireCut::of(c)),
                    Err(e) => Answer::Err(WireError::of(e)),
                })
                .collect(),
        })
    }

    fn remaining(&mut self, ids: &[String], wait_ms: u64) -> Result<Reply> {
        let targets = self.targets(ids)?;
        let refs: Vec<&Session> = targets.iter().collect();
        let wait = Duration::from_millis(wait_ms).min(MAX_WAIT);
        let results = self.backend.remaining(&refs, Deadline::after(wait));
        Ok(Reply::Remaining {
            results: results
                .iter()
                .map(|r| match r {
                    Ok(left) => Answer::Ok(left.iter().map(WireProcess::of).collect()),
                    Err(e) => Answer::Err(WireError::of(e)),
                })
                .collect(),
        })
    }

    /// Notes what was done here, for whom (this host's own trail; the record of the logoff
    /// is written where it runs). A note that cannot be written is not a failure.
    fn note(&self, what: &str) {
        let _ = self
            .trail
            .note(&format!("logoff --remote-agent for {}: {what}", self.who));
    }
}

/// Which signalling step a request asks for.
#[derive(Clone, Copy)]
enum Step {
    Ask,
    Force,
}

/// A warning's text as logoff makes it: terminal-safe already, so a control character
/// other than a line break, a tab or the bell is refused rather than written.
fn check_warning(text: &str) -> Result<()> {
    match text
        .chars()
        .find(|&c| crate::text::is_unsafe_char(c) && !matches!(c, '\r' | '\n' | '\t' | '\u{7}'))
    {
        Some(c) => Err(Error::invalid(format!(
            "a warning with the control character U+{:04X}",
            c as u32
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_may_not_carry_escape_sequences() {
        check_warning("\r\n\u{7}*** logoff: root@h is logging off ***\r\n\tbye\r\n").expect("ok");
        for bad in ["\u{1b}[2J", "a\u{9b}b", "x\u{202e}y", "\u{0}"] {
            assert!(check_warning(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_before_the_greeting_or_twice_are_refused() {
        let mut served = None;
        let reply = answer(&mut served, Call::List {});
        assert!(matches!(reply, Reply::Failed { .. }), "{reply:?}");
        let reply = answer(
            &mut served,
            Call::Hello {
                protocol: PROTOCOL + 1,
                version: "9.9.9".into(),
                backend: "auto".into(),
                purpose: "list".into(),
            },
        );
        let Reply::Failed { error } = reply else {
            panic!("another protocol was accepted: {reply:?}");
        };
        assert!(
            error.message.contains("speaks remote protocol"),
            "{error:?}"
        );
        assert!(served.is_none());
    }
}
