//! Whether someone is there: since when each session has been idle, and whether it is
//! connected — and by what. Decided here, once, from the facts the backends gather
//! ([`Session::login`], [`Session::activity`]), for `--list`, `--state`, `--idle-for`,
//! `--check`, `--disconnect` and logoffd alike. Pure: the same sessions at the same `now`
//! give the same answer; nothing here reads the system or a clock.
//!
//! **Connected** means a live client reaches the session, as the kernel (or logind) vouches
//! for it:
//! - its own login lasts: logind says `active` or `online`; the root process that opened it
//!   (sshd's, login's) runs; its RDP client is connected through xrdp; or (procfs, where no
//!   opener runs) a process of it has a controlling terminal that no multiplexer of the
//!   session serves;
//! - **input on a terminal a program of the session serves** (its master side held by a
//!   process of it that serves no socket: `mosh-server`, `script`) since its login ended:
//!   nothing else can have typed it (an xrdp session's terminal emulator gets its keys
//!   through the RDP client, which alone connects it). Where the end is not known (logoffd did not see it),
//!   since the terminal was made; none since then is **unknown**: the program may well be a
//!   client's way in that nobody has typed into yet;
//! - a **client**: a tmux or screen client, a forward's sshd, any socket's other end, held
//!   by a *live* session of the same user — one connected by the two kinds above, never
//!   through another client (no chains, no circles).
//!
//! A session is **disconnected** only when none of these holds and every fact was read;
//! what could not be read makes it unknown, which no filter or limit takes for disconnected.
//!
//! **Idle** is since its latest input: any terminal its processes hold, its X display (which
//! knows better than logind's hint), logind's hint otherwise (a graphical session whose
//! desktop says it is not idle is in use now), and the input of a tmux or screen client
//! attached from a live session of the same user (shown as that client's). Output, CPU and
//! idle locks count where a policy's rule says so ([`crate::policy`]).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::model::{
    Client, IdleSource, Login, Looked, MULTIPLEXED_BY_A_PROGRAM, Origin, Pid, Seen, Served,
    Session, SessionId, SessionState, TerminalSeen, Through,
};
use crate::time;

/// How finely the kernel keeps a terminal's times: an access within 8 seconds of the last
/// one recorded is not recorded. Input up to this long before a login's end may have come
/// after it, and counts as after (in the user's favour).
pub const TERMINAL_TIMES_GRAIN: Duration = Duration::from_secs(8);

/// How long a session must go without input to be `idle` as `--state idle` means it.
pub const IDLE_AFTER: Duration = Duration::from_secs(60);

/// Whether someone is there, for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Since when it has been idle, and what says so; `None` where nothing tells.
    pub idle: Option<Idle>,
    pub connected: Connected,
}

/// Since when a session has been idle, and what told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idle {
    pub since: Timestamp,
    pub source: IdleSource,
    /// Whether `since` can only move later: the session's own input (not a client's, which
    /// can leave at any moment, after which it would have been idle since earlier).
    pub firm: bool,
}

/// Whether a session is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    By(By),
    /// Nothing reaches it, and everything that could was read.
    No,
    /// Not known (why): never taken for disconnected.
    Unknown(String),
}

/// What connects a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// Its ssh login lasts.
    Ssh,
    /// Its RDP client is connected through xrdp.
    Rdp,
    /// Its login on this host lasts (a console, `su -l`).
    Login,
    /// A controlling terminal of it that nothing of the session serves (procfs).
    Terminal(String),
    /// Input on a terminal a program of it serves (mosh), since its login ended.
    Input {
        terminal: String,
        program: Option<(Pid, String)>,
    },
    /// A live session of the same user reaches it.
    Client {
        session: SessionId,
        through: Through,
    },
    /// What another host's logoff said (and whose tmux or screen client it said uses it).
    Reported {
        text: String,
        in_use_by: Option<SessionId>,
    },
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Ssh => f.write_str("ssh"),
            By::Rdp => f.write_str("rdp"),
            By::Login => f.write_str("login"),
            By::Terminal(t) => write!(f, "terminal {t}"),
            By::Input { terminal, .. } => write!(f, "input on {terminal}"),
            By::Client { session, through } => match through {
                Through::Multiplexer {
                    kind: MULTIPLEXED_BY_A_PROGRAM,
                    terminal: Some(t),
                } => write!(f, "terminal {t} of session {session}"),
                Through::Multiplexer {
                    kind: MULTIPLEXED_BY_A_PROGRAM,
                    terminal: None,
                } => write!(f, "a program of session {session}"),
                Through::Multiplexer { kind, .. } => {
                    write!(f, "{kind} client of session {session}")
                }
                Through::Forward => write!(f, "forward from session {session}"),
                Through::Socket { kind } => write!(f, "{kind} socket from session {session}"),
            },
            By::Reported { text, .. } => f.write_str(text),
        }
    }
}

impl Presence {
    pub fn is_disconnected(&self) -> bool {
        self.connected == Connected::No
    }

    /// `Some(true)` connected, `Some(false)` disconnected, `None` unknown (JSON's `connected`).
    pub fn is_connected(&self) -> Option<bool> {
        match self.connected {
            Connected::By(_) => Some(true),
            Connected::No => Some(false),
            Connected::Unknown(_) => None,
        }
    }

    pub fn by(&self) -> Option<&By> {
        match &self.connected {
            Connected::By(by) => Some(by),
            _ => None,
        }
    }

    /// The session whose tmux or screen client uses this one (JSON's `in_use_by`).
    pub fn in_use_by(&self) -> Option<&SessionId> {
        match self.by() {
            Some(By::Client {
                session,
                through: Through::Multiplexer { .. },
            }) => Some(session),
            Some(By::Reported { in_use_by, .. }) => in_use_by.as_ref(),
            _ => None,
        }
    }

    /// The state as shown: the backend's, but `disconnected` where it says `active` or
    /// `online` and nothing connects the session (logind's `closing` stays its word).
    pub fn state(&self, s: &Session) -> SessionState {
        match (&s.state, &self.connected) {
            (SessionState::Active | SessionState::Online, Connected::No) => {
                SessionState::Disconnected
            }
            (SessionState::Disconnected, Connected::By(_)) => SessionState::Active,
            (state, _) => state.clone(),
        }
    }

    /// Whether the session is idle as `--state idle` means it: logind's idle hint says so, or
    /// nothing has had input for [`IDLE_AFTER`].
    pub fn is_idle(&self, s: &Session, now: Timestamp) -> bool {
        s.activity.hint.is_some_and(|h| h.idle == Some(true))
            || self.idle_for(now).is_some_and(|d| d >= IDLE_AFTER)
    }

    /// How long the session has been idle at `now`, where known.
    pub fn idle_for(&self, now: Timestamp) -> Option<Duration> {
        self.idle.as_ref().map(|i| time::between(i.since, now))
    }

    /// In words, for `--check` and the log: `connected by input on pts/1`, `disconnected`,
    /// `connection unknown: ...`.
    pub fn words(&self) -> String {
        match &self.connected {
            Connected::By(by) => format!("connected by {by}"),
            Connected::No => "disconnected: its login has ended and nothing reaches it".into(),
            Connected::Unknown(why) => format!("connection unknown: {why}"),
        }
    }
}

/// What a session's own facts say of its connection, before clients are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Direct {
    By(By),
    /// Its login has ended: clients may still reach it.
    Ended,
    /// What the facts could not tell (why); a client may still reach it.
    Unknown(String),
    /// What another host's logoff decided, as it said it.
    Reported(Connected),
}

/// Whether someone is there, for each of `sessions` (in order), at `now`. The sessions of
/// one listing go together: a client must be one of them.
pub fn judge(sessions: &[Session], now: Timestamp) -> Vec<Presence> {
    let by_id: HashMap<&SessionId, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.id, i))
        .collect();
    let direct: Vec<Direct> = sessions.iter().map(direct).collect();
    let own: Vec<Option<Idle>> = sessions.iter().map(|s| own_idle(s, now)).collect();
    let live = |at: usize| matches!(direct[at], Direct::By(_));
    sessions
        .iter()
        .enumerate()
        .map(|(at, s)| {
            // The live clients of the same user, by the session they are in.
            let clients: Vec<(&Client, usize)> = s
                .activity
                .clients
                .iter()
                .filter_map(|c| by_id.get(&c.session).map(|&i| (c, i)))
                .filter(|&(_, i)| i != at && live(i) && s.uid.is_some() && sessions[i].uid == s.uid)
                .collect();
            let idle = with_clients(s, own[at].clone(), &clients, &own);
            let connected = match &direct[at] {
                Direct::By(by) => Connected::By(by.clone()),
                Direct::Reported(c) => c.clone(),
                other => match clients.first() {
                    Some((c, _)) => Connected::By(By::Client {
                        session: c.session.clone(),
                        through: c.through.clone(),
                    }),
                    None => match (other, &s.activity.looked) {
                        (Direct::Unknown(why), _) => Connected::Unknown(why.clone()),
                        (_, Looked::No) => Connected::Unknown(
                            "its processes were not looked at (who reaches it is not known)".into(),
                        ),
                        (_, Looked::Partly(why)) => Connected::Unknown(why.clone()),
                        _ => Connected::No,
                    },
                },
            };
            Presence { idle, connected }
        })
        .collect()
}

/// Whether the session's own login lasts (`None`: its facts do not tell), before anything
/// else that may connect it: what logoffd remembers the end of.
pub fn login_lasts(s: &Session) -> Option<bool> {
    match login(s) {
        Direct::By(_) => Some(true),
        Direct::Ended => Some(false),
        Direct::Unknown(_) | Direct::Reported(_) => None,
    }
}

/// What the session's login and terminals say of its connection. An xrdp session's input
/// all comes through its RDP client (a terminal emulator on its display serves terminals
/// too): only the client connects it.
fn direct(s: &Session) -> Direct {
    match login(s) {
        d @ (Direct::Ended | Direct::Unknown(_)) if !matches!(s.login, Login::Rdp { .. }) => {
            let typed = typed_into(s);
            if let Some(by @ Direct::By(_)) = typed {
                return by;
            }
            // procfs, where no opener runs: a controlling terminal that a program of the
            // session serves (`script`, what a login was opened through) is its login, as a
            // terminal held has always been there; only a multiplexer's panes are not.
            if matches!(s.login, Login::Terminals { .. })
                && s.activity.looked == Looked::Yes
                && let Some(t) = s
                    .activity
                    .terminals
                    .iter()
                    .find(|t| t.controlling && matches!(t.served, Served::Program { .. }))
            {
                return Direct::By(By::Terminal(t.name.clone()));
            }
            typed.unwrap_or(d)
        }
        other => other,
    }
}

/// What the session's login says of its connection.
fn login(s: &Session) -> Direct {
    let origin = |o: &Origin| match o {
        Origin::Ssh => By::Ssh,
        Origin::Local => By::Login,
    };
    match &s.login {
        Login::Reported {
            connected,
            by,
            in_use_by,
        } => Direct::Reported(match (connected, by) {
            (Some(true), by) => Connected::By(By::Reported {
                text: by.clone().unwrap_or_else(|| "its host's word".into()),
                in_use_by: in_use_by.clone(),
            }),
            (Some(false), _) => Connected::No,
            (None, _) => Connected::Unknown("its host's logoff could not tell".into()),
        }),
        Login::Logind(o) => match s.login.lasts(&s.state) {
            Some(true) => Direct::By(origin(o)),
            Some(false) => Direct::Ended,
            None => Direct::Unknown(format!("logind says it is {}", s.state)),
        },
        Login::Opener(o) => Direct::By(origin(o)),
        Login::Rdp { connected } => match connected {
            Some(true) => Direct::By(By::Rdp),
            Some(false) => Direct::Ended,
            None => Direct::Unknown("its RDP connection could not be read".into()),
        },
        Login::Terminals { controlling } => {
            if let Looked::Partly(why) = &s.activity.looked {
                // Who serves its terminals may be in what was not read.
                Direct::Unknown(why.clone())
            } else if s.activity.looked == Looked::No {
                match controlling {
                    Some(t) => Direct::By(By::Terminal(t.clone())),
                    None => Direct::Ended,
                }
            } else {
                match s
                    .activity
                    .terminals
                    .iter()
                    .find(|t| t.controlling && t.served == Served::Outside)
                {
                    Some(t) => Direct::By(By::Terminal(t.name.clone())),
                    None => Direct::Ended,
                }
            }
        }
        Login::Unknown => Direct::Unknown("nothing tells whether its login lasts".into()),
    }
}

/// Input on a terminal a program of the session serves, since its login ended (or, where
/// that is not known, since the terminal was made); unknown where a program serves one that
/// nobody has typed into since it was made and the login's end is not known.
fn typed_into(s: &Session) -> Option<Direct> {
    let served: Vec<(&TerminalSeen, Pid, &str)> = s
        .activity
        .terminals
        .iter()
        .filter_map(|t| match &t.served {
            Served::Program { pid, command } => Some((t, *pid, command.as_str())),
            _ => None,
        })
        .collect();
    let ended = s
        .activity
        .login_ended
        .map(|e| time::sub(e, TERMINAL_TIMES_GRAIN));
    for &(t, pid, command) in &served {
        // A terminal's making stamps its input time too (all its times start then): that is
        // nobody's typing (a pty made later, `script`, vim's :terminal).
        if let (Some(input), Some(after)) = (t.input, ended.or(t.made))
            && input > after
            && t.made != Some(input)
        {
            return Some(Direct::By(By::Input {
                terminal: t.name.clone(),
                program: Some((pid, command.to_string())),
            }));
        }
    }
    match (ended, served.first()) {
        (None, Some(&(t, pid, command))) => Some(Direct::Unknown(format!(
            "{} is served by `{}` (pid {pid}), and nothing has been typed into it since it was \
             made",
            t.name,
            crate::text::clean(command)
        ))),
        _ => None,
    }
}

/// Whether what a user works through in the session is known to have been idle for
/// [`IDLE_AFTER`], for what counts active time only (allowances), where not knowing is
/// active. Known idle: its login's own terminal (or a graphical session's display) had no
/// input; or nothing connects it and no terminal of it had input. Not known idle:
/// - a connected session idle only on some other terminal: its login may have none
///   (`ssh -T`, sftp, VS Code Remote's server, a forward) and do its work elsewhere, with a
///   pty nobody types into (`tmux new -d`) beside it;
/// - idle by logind's hint alone (a graphical session's user may set it: SetIdleHint);
/// - a session whose terminal's node changed within [`IDLE_AFTER`]: a user may set their
///   own terminal's access time back (utimensat) to look idle while they type, and the
///   kernel then sets its change time to now. (logoff's own warnings change it too, putting
///   the time they wrote back: a warned session counts a minute longer.)
///
/// An ssh login's own forwards and X11 channels, beside an idle login terminal, are not
/// seen: such work is idle time to this.
pub fn known_idle(s: &Session, p: &Presence, now: Timestamp) -> bool {
    let Some(idle) = &p.idle else {
        return false;
    };
    let sees_input = match &idle.source {
        IdleSource::Terminal(t) => s.tty.as_deref() == Some(t.as_str()) || p.is_disconnected(),
        IdleSource::Display(_) => s.is_graphical(),
        IdleSource::Multiplexer { .. } => p.is_disconnected(),
        IdleSource::Logind | IdleSource::Reported(_) => false,
    };
    let touched = s.activity.terminals.iter().any(|t| {
        t.made
            .is_some_and(|m| crate::time::between(m, now) < IDLE_AFTER)
    });
    sees_input && !touched && crate::time::between(idle.since, now) >= IDLE_AFTER
}

/// The latest input on anything the session itself is: its terminals, its display, its
/// listing's terminal, logind's hint (only where its display did not answer).
fn own_idle(s: &Session, now: Timestamp) -> Option<Idle> {
    let a = &s.activity;
    let mut seen: Vec<Seen> = a
        .terminals
        .iter()
        .filter_map(|t| {
            Some(Seen {
                at: t.input?,
                source: IdleSource::Terminal(t.name.clone()),
            })
        })
        .collect();
    if let Some(at) = a.display {
        seen.push(Seen {
            at,
            source: IdleSource::Display(s.display.clone().unwrap_or_default()),
        });
    }
    seen.extend(a.listed.clone());
    if a.display.is_none()
        && let Some(hint) = a.hint
    {
        // A graphical session's desktop sets the hint: while it says "not idle" the
        // session is in use, now. A terminal session's hint is its first terminal's input.
        // A hint ahead of now is a terminal time its user set ahead (logind reads it from
        // the terminal's node, unchecked): the session's terminals say what it is.
        let at = if s.is_graphical() && hint.idle == Some(false) {
            Some(now)
        } else {
            hint.since.filter(|since| *since <= now)
        };
        if let Some(at) = at {
            seen.push(Seen {
                at,
                source: IdleSource::Logind,
            });
        }
    }
    // The latest; of as late, the first (a terminal before a hint).
    let mut best: Option<Seen> = None;
    for s in seen {
        if best.as_ref().is_none_or(|b| s.at > b.at) {
            best = Some(s);
        }
    }
    best.map(|b| Idle {
        since: b.at,
        source: b.source,
        firm: true,
    })
}

/// The session's idle time with its tmux or screen clients' input: a client's input goes
/// into the server's panes, and is shown as the client's.
fn with_clients(
    s: &Session,
    own: Option<Idle>,
    clients: &[(&Client, usize)],
    idles: &[Option<Idle>],
) -> Option<Idle> {
    let mut idle = own;
    for &(c, at) in clients {
        let Through::Multiplexer { kind, terminal } = &c.through else {
            continue;
        };
        let (since, terminal) = match terminal {
            // A terminal of the client's the server holds: its input, as the server sees it.
            Some(t) => (
                s.activity
                    .terminals
                    .iter()
                    .find(|seen| &seen.name == t)
                    .and_then(|seen| seen.input),
                Some(t.clone()),
            ),
            None => match &idles[at] {
                Some(i) => (
                    Some(i.since),
                    match &i.source {
                        IdleSource::Terminal(t) => Some(t.clone()),
                        _ => None,
                    },
                ),
                None => (None, None),
            },
        };
        if let Some(since) = since
            && idle.as_ref().is_none_or(|i| since >= i.since)
        {
            idle = Some(Idle {
                since,
                source: IdleSource::Multiplexer {
                    kind,
                    by: c.session.clone(),
                    terminal,
                },
                firm: false,
            });
        }
    }
    idle
}

/// Why a session's connection cannot be ended alone, where [`judge`] can tell: it is
/// reached by what is not a connection of its own (`--disconnect`'s refusal, exit status 7).
pub fn no_connection_of_its_own(s: &Session, presence: &Presence) -> Option<String> {
    match presence.by()? {
        By::Input { terminal, program } => Some(format!(
            "{} has no connection of its own to end: it is reached by input on {terminal}{}, \
             which came after its login ended (mosh, or another program that types into its \
             terminal); that program also holds the terminal its shell runs on, and ending it \
             would end the shell; nothing was touched",
            s.describe(),
            program
                .as_ref()
                .map(|(pid, cmd)| format!(" through `{}` (pid {pid})", crate::text::clean(cmd)))
                .unwrap_or_default()
        )),
        // Only where its own login is known to have ended: an RDP session whose connection
        // could not be read may still have one.
        by @ By::Client { session, .. } if login_lasts(s) == Some(false) => Some(format!(
            "{} has no connection of its own to end: it is reached by {by} (disconnect \
             session {session} instead); nothing was touched",
            s.describe()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
