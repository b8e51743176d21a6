//! What logoff and a remote host's `logoff --remote-agent` say to each other: one JSON
//! object per line, a request and then its reply, [`PROTOCOL`] on both sides.
//!
//! Guarantees: both sides parse strictly (unknown fields, wrong types and out-of-range
//! values are errors, never guesses), and every text that comes from the other side is
//! bounded ([`check_text`]) before it is kept. What the remote host says is hostile: it is
//! shown only through the output module's escaping, and no decision here rests on it
//! beyond which of that host's sessions it lists.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::backend::{Flavor, Signalled, Warned};
use crate::error::{Error, Kind, Result};
use crate::model::{
    Activity, Claim, Hint, IdleSource, Login, Looked, Pid, ProcessInfo, Seen, Session, SessionId,
    SessionState, Uid,
};
use crate::presence::Presence;
use crate::system::users::Caller;

/// The protocol's version: both sides must speak the same one. Bumped on any change to the
/// messages below.
pub const PROTOCOL: u32 = 3;

/// The longest text accepted in any one field (a session's user, terminal, remote host, a
/// command name, an error message).
pub const MAX_TEXT: usize = 4096;

/// The most sessions (or processes) one reply may name.
pub const MAX_ITEMS: usize = 100_000;

/// A request, from logoff to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Call {
    /// The first request: which backend to open there, and what for.
    Hello {
        protocol: u32,
        version: String,
        /// `auto`, `logind` or `procfs`.
        backend: String,
        /// `list` or `end`.
        purpose: String,
    },
    List {},
    Caller {},
    CheckAccess {
        session: String,
    },
    Warn {
        session: String,
        text: String,
    },
    Terminate {
        sessions: Vec<String>,
    },
    Kill {
        sessions: Vec<String>,
    },
    /// What is left of the sessions once empty, or after `wait_ms` at most.
    Remaining {
        sessions: Vec<String>,
        wait_ms: u64,
    },
    Finish {
        session: String,
    },
    /// Ends the sessions' connections (`--disconnect`): SIGTERM, `timeout_ms`, SIGKILL.
    Disconnect {
        sessions: Vec<String>,
        timeout_ms: u64,
    },
    /// Nothing to do: the connection is alive (sent while logoff waits out a grace period).
    Ping {},
}

/// A reply, from the agent to logoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Reply {
    Hello {
        protocol: u32,
        version: String,
        /// `logind` or `procfs`: the backend the agent opened.
        backend: String,
        /// What it groups sessions by, and why it was chosen (for `/V`).
        about: String,
    },
    Sessions {
        sessions: Vec<WireSession>,
    },
    Caller {
        uid: u32,
        name: String,
        is_root: bool,
    },
    Done {},
    Warned {
        reached: Vec<String>,
        missed: Vec<String>,
    },
    Signalled {
        results: Vec<Answer<WireSignalled>>,
    },
    Remaining {
        results: Vec<Answer<Vec<WireProcess>>>,
    },
    Notes {
        notes: Vec<String>,
    },
    Disconnected {
        results: Vec<Answer<WireCut>>,
    },
    Failed {
        error: WireError,
    },
}

/// One session's answer within a reply for several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer<T> {
    Ok(T),
    Err(WireError),
}

/// An error, as its kind's stable name and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireError {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireProcess {
    pub pid: i32,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSignalled {
    pub processes: Option<usize>,
    pub frozen: Option<usize>,
    pub refused: Vec<WireProcess>,
}

/// A connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCut {
    pub ended: usize,
    pub client: Option<String>,
    pub forced: bool,
    pub elapsed_ms: u64,
}

impl WireCut {
    pub fn of(c: &crate::backend::Cut) -> WireCut {
        WireCut {
            ended: c.ended,
            client: c.client.clone(),
            forced: c.forced,
            elapsed_ms: u64::try_from(c.elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub fn into_cut(self) -> Result<crate::backend::Cut> {
        if let Some(c) = &self.client {
            check_text(c)?;
        }
        Ok(crate::backend::Cut {
            ended: self.ended,
            client: self.client,
            forced: self.forced,
            elapsed: std::time::Duration::from_millis(self.elapsed_ms),
        })
    }
}

/// A session, every field of [`Session`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSession {
    pub id: String,
    pub uid: Option<u32>,
    pub user: String,
    pub tty: Option<String>,
    pub display: Option<String>,
    pub seat: Option<String>,
    pub vtnr: Option<u32>,
    pub state: String,
    pub class: Option<String>,
    pub kind: Option<String>,
    pub service: Option<String>,
    pub remote_host: Option<String>,
    #[serde(default)]
    pub remote_host_claim: Option<String>,
    #[serde(default)]
    pub remote_host_claim_source: Option<String>,
    pub remote: bool,
    #[serde(default)]
    pub origin_unknown: bool,
    #[serde(default)]
    pub xrdp: bool,
    pub idle_since: Option<Timestamp>,
    /// What the agent saw that input on (its words, for display).
    #[serde(default)]
    pub idle_source: Option<String>,
    /// The session whose tmux or screen client is attached to this one's server, as the
    /// agent found it.
    #[serde(default)]
    pub in_use_by: Option<String>,
    pub idle_hint: Option<bool>,
    /// Whether a live client reaches it, as the agent judged (`null`: not known).
    #[serde(default)]
    pub connected: Option<bool>,
    /// What connects it, in the agent's words.
    #[serde(default)]
    pub connected_by: Option<String>,
    pub logon_time: Option<Timestamp>,
    pub leader: Option<i32>,
    pub processes: Option<usize>,
    pub scope: Option<String>,
    pub audit: Option<u32>,
}

impl WireSession {
    /// Session `s` as the agent judged it (`p`: [`crate::presence::judge`]).
    pub fn of(s: &Session, p: &Presence) -> WireSession {
        WireSession {
            id: s.id.to_string(),
            uid: s.uid.map(Uid::as_raw),
            user: s.user.clone(),
            tty: s.tty.clone(),
            display: s.display.clone(),
            seat: s.seat.clone(),
            vtnr: s.vtnr,
            state: p.state(s).to_string(),
            class: s.class.clone(),
            kind: s.kind.clone(),
            service: s.service.clone(),
            remote_host: s.remote_host.clone(),
            remote_host_claim: s.remote_claim.as_ref().map(|c| c.value.clone()),
            remote_host_claim_source: s.remote_claim.as_ref().map(|c| c.source.to_string()),
            remote: s.remote,
            origin_unknown: s.origin_unknown,
            xrdp: s.xrdp,
            idle_since: p.idle.as_ref().map(|i| i.since),
            idle_source: p.idle.as_ref().map(|i| i.source.to_string()),
            in_use_by: p.in_use_by().map(ToString::to_string),
            idle_hint: s.activity.hint.and_then(|h| h.idle),
            connected: p.is_connected(),
            connected_by: p.by().map(ToString::to_string),
            logon_time: s.logon_time,
            leader: s.leader.map(Pid::as_raw),
            processes: s.processes,
            scope: s.scope.clone(),
            audit: s.audit,
        }
    }

    /// The session, once every text in it is checked.
    pub fn into_session(self) -> Result<Session> {
        let texts = [
            Some(&self.id),
            Some(&self.user),
            Some(&self.state),
            self.tty.as_ref(),
            self.display.as_ref(),
            self.seat.as_ref(),
            self.class.as_ref(),
            self.kind.as_ref(),
            self.service.as_ref(),
            self.remote_host.as_ref(),
            self.remote_host_claim.as_ref(),
            self.remote_host_claim_source.as_ref(),
            self.scope.as_ref(),
            self.idle_source.as_ref(),
            self.in_use_by.as_ref(),
            self.connected_by.as_ref(),
        ];
        for t in texts.into_iter().flatten() {
            check_text(t)?;
        }
        if self.id.is_empty() {
            return Err(malformed("a session without an ID"));
        }
        Ok(Session {
            id: SessionId::new(self.id),
            uid: self.uid.map(Uid::from_raw),
            user: self.user,
            tty: self.tty,
            display: self.display,
            seat: self.seat,
            vtnr: self.vtnr,
            state: state_from(self.state),
            class: self.class,
            kind: self.kind,
            service: self.service,
            remote_host: self.remote_host,
            remote_claim: self.remote_host_claim.map(|value| Claim {
                value,
                source: claim_source(self.remote_host_claim_source.as_deref()),
            }),
            remote: self.remote,
            origin_unknown: self.origin_unknown,
            xrdp: self.xrdp,
            login: Login::Reported {
                connected: self.connected,
                by: self.connected_by,
                in_use_by: self.in_use_by.map(SessionId::new),
            },
            logon_time: self.logon_time,
            leader: self.leader.map(Pid::from_raw),
            processes: self.processes,
            scope: self.scope,
            audit: self.audit,
            notes: Vec::new(),
            activity: Activity {
                listed: self.idle_since.map(|at| Seen {
                    at,
                    source: IdleSource::Reported(
                        self.idle_source.unwrap_or_else(|| "its host's word".into()),
                    ),
                }),
                // Only for `--state idle`: the idle time is the agent's, already.
                hint: self.idle_hint.filter(|idle| *idle).map(|_| Hint {
                    idle: Some(true),
                    since: None,
                }),
                looked: Looked::Yes,
                ..Activity::default()
            },
        })
    }
}

/// A session's state as the wire spells it (the model's text for it, as the agent shows
/// it), back. Unknown states are kept as they are, as the model keeps a backend's own.
fn state_from(text: String) -> SessionState {
    SessionState::parse(&text)
}

/// Where the remote host's logoff read a claim (its own words are not kept: the known ones,
/// else that the remote host said it).
fn claim_source(said: Option<&str>) -> &'static str {
    match said {
        Some("utmp") => "utmp",
        Some("environment") => "environment",
        _ => "the remote host",
    }
}

impl WireProcess {
    pub fn of(p: &ProcessInfo) -> WireProcess {
        WireProcess {
            pid: p.pid.as_raw(),
            command: p.command.clone(),
        }
    }

    pub fn into_process(self) -> Result<ProcessInfo> {
        check_text(&self.command)?;
        Ok(ProcessInfo {
            pid: Pid::from_raw(self.pid),
            command: self.command,
        })
    }
}

impl WireSignalled {
    pub fn of(s: &Signalled) -> WireSignalled {
        WireSignalled {
            processes: s.processes,
            frozen: s.frozen,
            refused: s.refused.iter().map(WireProcess::of).collect(),
        }
    }

    pub fn into_signalled(self) -> Result<Signalled> {
        Ok(Signalled {
            processes: self.processes,
            frozen: self.frozen,
            refused: processes(self.refused)?,
        })
    }
}

/// Checked processes.
pub fn processes(list: Vec<WireProcess>) -> Result<Vec<ProcessInfo>> {
    if list.len() > MAX_ITEMS {
        return Err(malformed("too many processes"));
    }
    list.into_iter().map(WireProcess::into_process).collect()
}

impl WireError {
    pub fn of(e: &Error) -> WireError {
        WireError {
            kind: e.kind().as_str().to_string(),
            message: e.message().to_string(),
        }
    }

    /// The error as this side sees it: a refusal, a session not found, survivors and a
    /// cancellation keep their kind; any other failure there is that host's (exit status
    /// 6), as a failure of logind on another host is.
    pub fn into_error(self) -> Error {
        let mut message = self.message;
        if message.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str("...");
        }
        let kind = match self.kind.as_str() {
            "access-denied" => Kind::AccessDenied,
            "no-such-session" => Kind::NoSuchSession,
            "survivors" => Kind::Survivors,
            "cancelled" => Kind::Cancelled,
            "no-connection" => Kind::NoConnection,
            _ => Kind::Remote,
        };
        Error::new(kind, message)
    }
}

impl From<&Warned> for Reply {
    fn from(w: &Warned) -> Reply {
        Reply::Warned {
            reached: w.reached.clone(),
            missed: w.missed.clone(),
        }
    }
}

/// A caller as the agent sees itself.
pub fn caller_reply(c: &Caller) -> Reply {
    Reply::Caller {
        uid: c.uid.as_raw(),
        name: c.name.clone(),
        is_root: c.is_root,
    }
}

/// The backend's name on the wire.
pub fn flavor_from(name: &str) -> Result<Flavor> {
    match name {
        "logind" => Ok(Flavor::Logind),
        "procfs" => Ok(Flavor::Procfs),
        other => Err(malformed(&format!(
            "an unknown backend '{}'",
            crate::text::clean(&truncated(other))
        ))),
    }
}

/// Refuses text longer than [`MAX_TEXT`] (what it may contain is the output's to escape).
pub fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT {
        Err(malformed(&format!(
            "a text of {} bytes (at most {MAX_TEXT})",
            text.len()
        )))
    } else {
        Ok(())
    }
}

/// Checks every text of a list (of names, notes).
pub fn check_texts(texts: &[String]) -> Result<()> {
    if texts.len() > MAX_ITEMS {
        return Err(malformed("too many items"));
    }
    texts.iter().try_for_each(|t| check_text(t))
}

/// A version as the other side gives it: a short run of version characters.
pub fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~'));
    if ok {
        Ok(())
    } else {
        Err(malformed(&format!(
            "a version '{}'",
            crate::text::clean(&truncated(version))
        )))
    }
}

/// The first 64 characters of a text, for a message about it.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The error for a message that does not follow the protocol.
pub fn malformed(what: &str) -> Error {
    Error::new(
        Kind::Remote,
        format!("its logoff answered outside logoff's remote protocol: {what}"),
    )
}

#[cfg(test)]
mod tests;
