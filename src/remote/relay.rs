//! The relay backend: another host's own backend, through that host's logoff
//! (`logoff --remote-agent`, reached over ssh by [`crate::remote::agent`]).
//!
//! Why: a host without `systemd-stdio-bridge` (elogind hosts: Devuan, Gentoo with OpenRC,
//! Alpine, Void, Artix) has no way to its bus over ssh; and were there one, logind there
//! gives sessions no scope, so only that host can follow a session's processes (by their
//! audit session ID, in its /proc) and verify that every one has ended. Its own logoff can:
//! it opens its backend there (logind where it answers, else procfs) and does each step of
//! the flow that this logoff asks for — list, check, warn, ask, force, what is left — with
//! its own code. The flow itself (selection, the grace period, Ctrl-C, the audit record,
//! what is printed) runs here, as for every host, against this backend.
//!
//! Guarantees:
//! - The remote logoff must speak this logoff's protocol ([`wire::PROTOCOL`]); another is
//!   refused with both versions named, before anything is asked.
//! - What it answers is parsed strictly and bounded ([`wire`]); its texts are shown escaped.
//! - Sessions are named to it by ID only; it acts on its own record of them, as its own
//!   privilege allows (the ssh user's: root, or a user on their own sessions).
//! - The session its own ssh login is in is not a target (logging it off would cut the
//!   connection halfway): it is listed, never selected.

use std::time::Duration;

use super::channel::Channel;
use super::wire::{self, Answer, Call, Reply, WireSession, malformed};
use super::{CALL_TIMEOUT, ConnectOptions, Host};
use crate::backend::{Backend, Choice, Cut, Flavor, Purpose, Signalled, Warned};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{ProcessInfo, Session, SessionId, Uid};
use crate::system::users::Caller;

/// How long one wait of [`Backend::remaining`] lasts on the remote host at most, so that a
/// second Ctrl-C here cuts the wait short within that.
const SLICE: Duration = Duration::from_secs(1);

/// How long the remote logoff may take, beyond the connect timeout, to answer the greeting
/// (as long as a bus bridge's handshake may take: [`crate::remote::child`]).
const HELLO_GRACE: Duration = Duration::from_secs(5);

/// How long, beyond its timeout, a disconnect may take there: the SIGKILL step's wait.
const DISCONNECT_EXTRA: Duration = Duration::from_secs(10);

/// Another host's backend, through its logoff.
pub struct Relay {
    agent: Channel,
    label: String,
    flavor: Flavor,
    about: String,
    /// The remote logoff's version.
    pub version: String,
    caller: Option<Caller>,
}

impl Relay {
    /// Starts the remote logoff on `host` and opens its backend (`choice`, for `purpose`).
    pub fn open(
        host: &Host,
        choice: Choice,
        purpose: Purpose,
        opts: &ConnectOptions,
    ) -> Result<Relay> {
        let ping = serde_json::to_vec(&Call::Ping {}).map_err(encode_error)?;
        let (agent, handshake) = Channel::spawn(host, opts, ping)?;
        let hello = Call::Hello {
            protocol: wire::PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: choice_name(choice).to_string(),
            purpose: match purpose {
                Purpose::List => "list",
                Purpose::EndSessions => "end",
            }
            .to_string(),
        };
        let mut relay = Relay {
            agent,
            label: host.label.clone(),
            flavor: Flavor::Logind,
            about: String::new(),
            version: String::new(),
            caller: None,
        };
        // The handshake's time: ssh's login, and the remote logoff opening its backend (as
        // long as a bridge's handshake may take).
        let reply = relay
            .exchange(&hello, handshake + HELLO_GRACE)
            .map_err(|e| relay.unreachable(e))?;
        match reply {
            Reply::Hello {
                protocol,
                version,
                backend,
                about,
            } => {
                wire::check_version(&version)?;
                wire::check_text(&about)?;
                if protocol != wire::PROTOCOL {
                    return Err(Error::new(
                        crate::error::Kind::Remote,
                        format!(
                            "{}: its logoff {version} speaks remote protocol {protocol}, this \
                             logoff {} speaks {}: install the same version of logoff on both",
                            relay.label,
                            env!("CARGO_PKG_VERSION"),
                            wire::PROTOCOL
                        ),
                    ));
                }
                relay.flavor = wire::flavor_from(&backend)?;
                relay.about = about;
                relay.version = version;
                Ok(relay)
            }
            Reply::Failed { error } => Err(error.into_error().context(&relay.label)),
            _ => Err(malformed("no greeting")),
        }
    }

    /// An error of the first exchange, explained: no logoff there, or one too old to know
    /// `--remote-agent` (which then prints its usage and exits 2).
    fn unreachable(&self, e: Error) -> Error {
        let said = self.agent.said();
        let why = if said.contains("exited with exit status: 127") {
            "the host has neither systemd-stdio-bridge nor logoff: install logoff there to \
             reach it (elogind hosts have no systemd-stdio-bridge)"
                .to_string()
        } else if said.contains("Invalid parameter") || said.contains("exit status: 2") {
            format!(
                "its logoff does not know --remote-agent: install logoff {} there",
                env!("CARGO_PKG_VERSION")
            )
        } else {
            return Error::new(
                crate::error::Kind::Remote,
                format!("cannot connect to {}", e.message()),
            );
        };
        Error::new(
            crate::error::Kind::Remote,
            format!("cannot connect to {}: {why}", self.label),
        )
    }

    /// Sends `request`, waits `within` for the reply, and parses it.
    fn exchange(&mut self, request: &Call, within: Duration) -> Result<Reply> {
        let line = serde_json::to_vec(request).map_err(encode_error)?;
        let answer = self.agent.call(&line, within)?;
        serde_json::from_slice(&answer).map_err(|e| {
            let shown: String = String::from_utf8_lossy(&answer).chars().take(80).collect();
            malformed(&format!("{e} in '{}'", crate::text::clean(&shown))).context(&self.label)
        })
    }

    /// [`Relay::exchange`] with the usual time; a failure reply is the error.
    fn ask(&mut self, request: &Call) -> Result<Reply> {
        match self.exchange(request, CALL_TIMEOUT)? {
            Reply::Failed { error } => Err(error.into_error()),
            reply => Ok(reply),
        }
    }

    /// One answer per session from a reply for several; an error for each where the
    /// request failed as a whole.
    fn per_session<T, U>(
        &mut self,
        request: &Call,
        within: Duration,
        n: usize,
        answers: impl Fn(Reply) -> Option<Vec<Answer<T>>>,
        convert: impl Fn(T) -> Result<U>,
    ) -> Vec<Result<U>> {
        let reply = match self.exchange(request, within) {
            Ok(Reply::Failed { error }) => Err(error.into_error()),
            Ok(reply) => answers(reply).ok_or_else(|| malformed("an answer of the wrong kind")),
            Err(e) => Err(e),
        };
        let list = reply.and_then(|list| {
            if list.len() == n {
                Ok(list)
            } else {
                Err(malformed(&format!(
                    "{} answers for {n} sessions",
                    list.len()
                )))
            }
        });
        match list {
            Ok(list) => list
                .into_iter()
                .map(|a| match a {
                    Answer::Ok(v) => convert(v),
                    Answer::Err(e) => Err(e.into_error()),
                })
                .collect(),
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    fn remaining_once(&mut self, ids: &[String], wait: Duration) -> Vec<Result<Vec<ProcessInfo>>> {
        let request = Call::Remaining {
            sessions: ids.to_vec(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        self.per_session(
            &request,
            wait + CALL_TIMEOUT,
            ids.len(),
            |r| match r {
                Reply::Remaining { results } => Some(results),
                _ => None,
            },
            wire::processes,
        )
    }

    fn signal(&mut self, request: &Call, n: usize) -> Vec<Result<Signalled>> {
        self.per_session(
            request,
            CALL_TIMEOUT,
            n,
            |r| match r {
                Reply::Signalled { results } => Some(results),
                _ => None,
            },
            wire::WireSignalled::into_signalled,
        )
    }
}

fn ids(sessions: &[&Session]) -> Vec<String> {
    sessions.iter().map(|s| s.id.to_string()).collect()
}

/// The `--backend` choice as the wire names it.
pub fn choice_name(choice: Choice) -> &'static str {
    match choice {
        Choice::Auto => "auto",
        Choice::Logind => "logind",
        Choice::Procfs => "procfs",
    }
}

fn encode_error(e: serde_json::Error) -> Error {
    Error::system(format!("cannot encode a request: {e}"))
}

impl Backend for Relay {
    fn about(&self) -> (Flavor, String) {
        (
            self.flavor,
            format!(
                "{}, through the logoff {} on {}",
                crate::text::clean(&self.about),
                self.version,
                self.label
            ),
        )
    }

    fn list(&mut self) -> Result<Vec<Session>> {
        match self.ask(&Call::List {})? {
            Reply::Sessions { sessions } if sessions.len() <= wire::MAX_ITEMS => sessions
                .into_iter()
                .map(WireSession::into_session)
                .collect(),
            _ => Err(malformed("no session list")),
        }
    }

    /// There is no session of the caller's on another host.
    fn current(&mut self) -> Result<Option<SessionId>> {
        Ok(None)
    }

    /// Whom the remote logoff runs as: the ssh user.
    fn caller(&mut self) -> Result<Caller> {
        if let Some(c) = &self.caller {
            return Ok(c.clone());
        }
        match self.ask(&Call::Caller {})? {
            Reply::Caller { uid, name, is_root } => {
                wire::check_text(&name)?;
                let c = Caller {
                    uid: Uid::from_raw(uid),
                    name,
                    is_root,
                };
                self.caller = Some(c.clone());
                Ok(c)
            }
            _ => Err(malformed("no caller")),
        }
    }

    /// The remote logoff judges with its own view of the caller (what is sent is the ID).
    fn check_access(&mut self, session: &Session, _caller: &Caller) -> Result<()> {
        match self.ask(&Call::CheckAccess {
            session: session.id.to_string(),
        })? {
            Reply::Done {} => Ok(()),
            _ => Err(malformed("no answer to a check")),
        }
    }

    /// The remote logoff writes to the session's terminals itself, each checked as on this
    /// host ([`crate::backend::deliver_locally`]).
    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned> {
        match self.ask(&Call::Warn {
            session: session.id.to_string(),
            text: text.to_string(),
        })? {
            Reply::Warned { reached, missed } => {
                wire::check_texts(&reached)?;
                wire::check_texts(&missed)?;
                Ok(Warned { reached, missed })
            }
            _ => Err(malformed("no answer to a warning")),
        }
    }

    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        let request = Call::Terminate {
            sessions: ids(sessions),
        };
        self.signal(&request, sessions.len())
    }

    /// Asks the host's own logoff, which can tell the connections' processes there; waits
    /// as long as the timeout and the SIGKILL step may take.
    fn disconnect(&mut self, sessions: &[&Session], timeout: Duration) -> Vec<Result<Cut>> {
        let request = Call::Disconnect {
            sessions: ids(sessions),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        self.per_session(
            &request,
            CALL_TIMEOUT + timeout + DISCONNECT_EXTRA,
            sessions.len(),
            |r| match r {
                Reply::Disconnected { results } => Some(results),
                _ => None,
            },
            wire::WireCut::into_cut,
        )
    }

    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        let request = Call::Kill {
            sessions: ids(sessions),
        };
        self.signal(&request, sessions.len())
    }

    /// Waits in slices of at most [`SLICE`] on the remote host, so that a deadline cut
    /// short here (a second Ctrl-C) is noticed within one.
    fn remaining(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>> {
        let ids = ids(sessions);
        loop {
            let answers = self.remaining_once(&ids, until.left().min(SLICE));
            let settled = answers
                .iter()
                .all(|a| a.as_ref().map_or(true, Vec::is_empty));
            if settled || until.passed() {
                return answers;
            }
        }
    }

    fn finish(&mut self, session: &Session) -> Result<Vec<String>> {
        match self.ask(&Call::Finish {
            session: session.id.to_string(),
        })? {
            Reply::Notes { notes } => {
                wire::check_texts(&notes)?;
                Ok(notes)
            }
            _ => Err(malformed("no answer to finish")),
        }
    }
}
