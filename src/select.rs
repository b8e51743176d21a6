//! Which sessions the command line means, resolved against a backend's list before anything is
//! touched.
//!
//! No argument means the caller's own session. An argument matches a session's ID exactly;
//! otherwise it is a name: a terminal (`pts/3`, `/dev/pts/3`, `tty2`), an X display (`:10`),
//! or `console` — the session on the console or a virtual terminal, the foreground one if
//! there are several. An argument that matches nothing, or more than one session, fails the
//! whole command.
//!
//! Filters (`--user`, `--state`, `--idle-for`, `--from`, `--remote`/`--local`, `--all`)
//! combine: a session must pass all of them. With filters and no argument, a logoff takes
//! every session that passes except the caller's own (name it to include it) — it never falls
//! back to "the current session". A named session must pass the filters too.

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;

use crate::error::{Error, Kind, Result};
use crate::model::{Session, SessionId, SessionState, Uid, id_sort_key};
use crate::presence::{self, Presence};
use crate::system::tty;

/// Values of `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// In the foreground (logind: active on its seat; ssh sessions are active).
    Active,
    /// Logged in, in the background (a virtual terminal not shown).
    Online,
    /// Ended, with processes left behind (logind's closing).
    Closing,
    /// Idle for a minute or more (logind's idle hint, or the terminal's access time).
    Idle,
    /// Processes remain but nothing connects to them: the login has ended and no client
    /// reaches the session — no tmux or screen client, forward or socket from a live session
    /// of the same user, no input through mosh ([`crate::presence`]). Where that cannot be
    /// told, the session is not taken.
    Disconnected,
}

impl StateFilter {
    pub fn matches(self, s: &Session, p: &Presence, now: Timestamp) -> bool {
        match self {
            // As the list shows it: a session nothing connects is not active.
            StateFilter::Active => p.state(s) == SessionState::Active,
            StateFilter::Online => p.state(s) == SessionState::Online,
            StateFilter::Closing => s.state == SessionState::Closing,
            StateFilter::Idle => p.is_idle(s, now),
            StateFilter::Disconnected => p.is_disconnected(),
        }
    }
}

/// A user as the command line and policies name one: a user name, or a uid written as a
/// number. An unknown user is nobody's.
pub fn names_user(spec: &str, s: &Session) -> bool {
    spec == s.user
        || spec
            .parse::<u32>()
            .is_ok_and(|n| s.belongs_to(Uid::from_raw(n)))
}

/// Where a session came from, as `--from` and a policy's `from` name it: a host (the name
/// or address FROM shows, any case) or a network (`10.0.0.0/8`). It matches what root's
/// vouches for ([`Session::remote_host`]), never a user's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    Host(String),
    Network(IpAddr, u8),
}

impl HostSpec {
    pub fn parse(text: &str) -> std::result::Result<HostSpec, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty host name".into());
        }
        let Some((addr, bits)) = text.split_once('/') else {
            return Ok(HostSpec::Host(text.to_string()));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{text}': '{addr}' is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("'{text}': a prefix length is 0 to {max}"))?;
        Ok(HostSpec::Network(addr, bits))
    }

    /// Whether session `s` came from here.
    pub fn takes(&self, s: &Session) -> bool {
        let Some(host) = s.remote_host.as_deref() else {
            return false;
        };
        match self {
            HostSpec::Host(h) => h.eq_ignore_ascii_case(host),
            HostSpec::Network(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *net, *bits)),
        }
    }
}

impl std::fmt::Display for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostSpec::Host(h) => f.write_str(h),
            HostSpec::Network(a, b) => write!(f, "{a}/{b}"),
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The selection filters of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// User names or uids (any of them).
    pub users: Vec<String>,
    /// States (any of them).
    pub states: Vec<StateFilter>,
    pub idle_for: Option<Duration>,
    pub from: Option<HostSpec>,
    /// `Some(true)`: `--remote`; `Some(false)`: `--local`.
    pub remote: Option<bool>,
    pub all: bool,
}

impl Filters {
    /// Whether the filters read what sessions' users did ([`Session::activity`]): idle
    /// time, and whether a session is in use from another.
    pub fn need_activity(&self) -> bool {
        self.idle_for.is_some()
            || self
                .states
                .iter()
                .any(|s| matches!(s, StateFilter::Idle | StateFilter::Disconnected))
    }

    /// Whether any filter (or `--all`) was given.
    pub fn given(&self) -> bool {
        self.all
            || !self.users.is_empty()
            || !self.states.is_empty()
            || self.idle_for.is_some()
            || self.from.is_some()
            || self.remote.is_some()
    }

    pub fn matches(&self, s: &Session, p: &Presence, now: Timestamp) -> bool {
        let user = self.users.is_empty() || self.users.iter().any(|u| names_user(u, s));
        let state = self.states.is_empty() || self.states.iter().any(|st| st.matches(s, p, now));
        let idle = self
            .idle_for
            .is_none_or(|min| p.idle_for(now).is_some_and(|d| d >= min));
        let from = self.from.as_ref().is_none_or(|f| f.takes(s));
        let remote = self
            .remote
            .is_none_or(|r| !s.origin_unknown && s.remote == r);
        user && state && idle && from && remote
    }

    /// The filters as the command line spelled them, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for u in &self.users {
            parts.push(format!("--user {u}"));
        }
        for st in &self.states {
            parts.push(format!("--state {}", format!("{st:?}").to_lowercase()));
        }
        if let Some(d) = self.idle_for {
            parts.push(format!("--idle-for {}", crate::duration::display(d)));
        }
        if let Some(f) = &self.from {
            parts.push(format!("--from {f}"));
        }
        match self.remote {
            Some(true) => parts.push("--remote".into()),
            Some(false) => parts.push("--local".into()),
            None => {}
        }
        if self.all {
            parts.push("--all".into());
        }
        parts.join(" ")
    }
}

/// Whether filters (with no session named) take the caller's own session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnSession {
    /// A list shows it when it passes.
    Include,
    /// A logoff leaves it out unless it is named.
    LeaveOut,
}

/// The sessions a logoff (or a list) is about: the named ones (which must pass the filters),
/// else with filters every session that passes (but the caller's own, for a logoff), else
/// the current session.
pub fn select<'a>(
    sessions: &'a [Session],
    args: &[String],
    filters: &Filters,
    current: Option<&SessionId>,
    own: OwnSession,
    now: Timestamp,
) -> Result<Vec<&'a Session>> {
    let presences = presence::judge(sessions, now);
    // The named sessions are `sessions`' own (resolve returns references into it).
    let passes = |s: &Session| {
        sessions
            .iter()
            .position(|x| std::ptr::eq(x, s))
            .is_some_and(|at| filters.matches(s, &presences[at], now))
    };
    if !args.is_empty() {
        let named = resolve(sessions, args, current)?;
        if let Some(s) = named.iter().find(|s| !passes(s)) {
            return Err(Error::new(
                Kind::NoSuchSession,
                format!(
                    "{} does not match {}; nothing was touched",
                    s.describe(),
                    filters.describe()
                ),
            ));
        }
        return Ok(named);
    }
    if filters.given() {
        let mut chosen: Vec<&Session> = sessions
            .iter()
            .zip(&presences)
            .filter(|(s, p)| filters.matches(s, p, now))
            .map(|(s, _)| s)
            .filter(|s| own == OwnSession::Include || current != Some(&s.id))
            .collect();
        chosen.sort_by_key(|s| id_sort_key(&s.id));
        return Ok(chosen);
    }
    resolve(sessions, args, current)
}

/// The sessions named by `args` (or the current session when `args` is empty), in argument
/// order, each once.
pub fn resolve<'a>(
    sessions: &'a [Session],
    args: &[String],
    current: Option<&SessionId>,
) -> Result<Vec<&'a Session>> {
    let mut chosen: Vec<&Session> = Vec::new();
    if args.is_empty() {
        let Some(id) = current else {
            return Err(Error::new(
                Kind::NoSuchSession,
                "cannot log off the current session: logoff is not running in a login session \
                 (name the session to log off; `logoff --list` shows them)",
            ));
        };
        let session = sessions.iter().find(|s| &s.id == id).ok_or_else(|| {
            Error::new(
                Kind::NoSuchSession,
                format!("cannot find the current session {id} in the session list"),
            )
        })?;
        chosen.push(session);
        return Ok(chosen);
    }
    for arg in args {
        let session = resolve_one(sessions, arg)?;
        if !chosen.iter().any(|c| c.id == session.id) {
            chosen.push(session);
        }
    }
    Ok(chosen)
}

/// One argument: an ID, else a name.
pub fn resolve_one<'a>(sessions: &'a [Session], arg: &str) -> Result<&'a Session> {
    if let Some(s) = sessions.iter().find(|s| s.id.as_str() == arg) {
        return Ok(s);
    }
    let name = tty::normalize(arg);
    let mut matches: Vec<&Session> = if name.eq_ignore_ascii_case("console") {
        let on_console: Vec<&Session> = sessions.iter().filter(|s| s.is_console()).collect();
        if on_console.len() > 1 {
            // Several VT sessions: the console is the one in the foreground.
            let foreground: Vec<&Session> = on_console
                .iter()
                .copied()
                .filter(|s| s.tty.as_deref() == Some("console") || s.state == SessionState::Active)
                .collect();
            if foreground.is_empty() {
                on_console
            } else {
                foreground
            }
        } else {
            on_console
        }
    } else {
        sessions.iter().filter(|s| s.name() == Some(name)).collect()
    };
    matches.sort_by_key(|s| id_sort_key(&s.id));
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::new(
            Kind::NoSuchSession,
            format!(
                "no session matches '{arg}' (by ID or name); {}",
                what_exists(sessions)
            ),
        )),
        many => Err(Error::new(
            Kind::NoSuchSession,
            format!(
                "'{arg}' matches more than one session: {}; name one by its ID",
                many.iter()
                    .map(|s| format!("{} ({})", s.id, s.owner_and_place()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn what_exists(sessions: &[Session]) -> String {
    if sessions.is_empty() {
        return "there are no sessions".into();
    }
    let mut sorted: Vec<&Session> = sessions.iter().collect();
    sorted.sort_by_key(|s| id_sort_key(&s.id));
    let listed: Vec<String> = sorted
        .iter()
        .take(20)
        .map(|s| format!("{} ({})", s.id, s.owner_and_place()))
        .collect();
    let more = if sorted.len() > listed.len() {
        format!(" and {} more", sorted.len() - listed.len())
    } else {
        String::new()
    };
    format!("sessions: {}{more}", listed.join(", "))
}

#[cfg(test)]
mod tests;
