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

use std::time::Duration;

use jiff::Timestamp;

use crate::error::{Error, Kind, Result};
use crate::model::{Session, SessionId, Uid, id_sort_key};
use crate::system::tty;

/// Values of `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum State {
    /// In the foreground (logind: active on its seat; ssh sessions are active).
    Active,
    /// Logged in, in the background (a virtual terminal not shown).
    Online,
    /// Ended, with processes left behind (logind's closing).
    Closing,
    /// Idle for a minute or more (logind's idle hint, or the terminal's access time).
    Idle,
    /// Processes remain but the terminal or connection is gone: logind's closing sessions,
    /// and on procfs hosts sessions in which no process holds a terminal any more.
    Disconnected,
}

/// How long a terminal must go untouched to count as idle for `--state idle`.
pub const IDLE_AFTER: Duration = Duration::from_secs(60);

impl State {
    pub fn matches(self, s: &Session, now: Timestamp) -> bool {
        match self {
            State::Active => s.state == "active",
            State::Online => s.state == "online",
            State::Closing => s.state == "closing",
            State::Idle => {
                s.idle_hint == Some(true) || s.idle_for(now).is_some_and(|d| d >= IDLE_AFTER)
            }
            State::Disconnected => s.state == "closing" || s.state == "disconnected",
        }
    }
}

/// The selection filters of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// User names or uids (any of them).
    pub users: Vec<String>,
    /// States (any of them).
    pub states: Vec<State>,
    pub idle_for: Option<Duration>,
    pub from: Option<String>,
    /// `Some(true)`: `--remote`; `Some(false)`: `--local`.
    pub remote: Option<bool>,
    pub all: bool,
}

impl Filters {
    /// Whether any filter (or `--all`) was given.
    pub fn given(&self) -> bool {
        self.all
            || !self.users.is_empty()
            || !self.states.is_empty()
            || self.idle_for.is_some()
            || self.from.is_some()
            || self.remote.is_some()
    }

    pub fn matches(&self, s: &Session, now: Timestamp) -> bool {
        let user = self.users.is_empty()
            || self.users.iter().any(|u| {
                *u == s.user
                    || u.parse::<u32>()
                        .is_ok_and(|n| s.belongs_to(Uid::from_raw(n)))
            });
        let state = self.states.is_empty() || self.states.iter().any(|st| st.matches(s, now));
        let idle = self
            .idle_for
            .is_none_or(|min| s.idle_for(now).is_some_and(|d| d >= min));
        let from = self.from.as_ref().is_none_or(|f| {
            s.remote_host
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(f))
        });
        let remote = self.remote.is_none_or(|r| s.remote == r);
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
    if !args.is_empty() {
        let named = resolve(sessions, args, current)?;
        if let Some(s) = named.iter().find(|s| !filters.matches(s, now)) {
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
            .filter(|s| filters.matches(s, now))
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
                .filter(|s| s.tty.as_deref() == Some("console") || s.state == "active")
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
mod tests {
    use super::*;

    fn s(id: &str, user: &str, tty: Option<&str>, state: &str) -> Session {
        Session {
            id: SessionId::new(id),
            user: user.into(),
            tty: tty.map(String::from),
            state: state.into(),
            ..Session::default()
        }
    }

    fn sample() -> Vec<Session> {
        vec![
            s("3", "alice", Some("pts/0"), "active"),
            s("5", "bob", Some("pts/1"), "active"),
            s("7", "carol", Some("tty2"), "online"),
            s("8", "dave", Some("tty3"), "active"),
            s("c1", "erin", None, "active"),
            Session {
                display: Some(":10".into()),
                ..s("12", "xrdp", None, "active")
            },
        ]
    }

    fn ids(r: Result<Vec<&Session>>) -> Vec<String> {
        r.expect("resolves")
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn by_id_and_by_name() {
        let all = sample();
        assert_eq!(ids(resolve(&all, &args(&["5"]), None)), ["5"]);
        assert_eq!(ids(resolve(&all, &args(&["c1"]), None)), ["c1"]);
        assert_eq!(ids(resolve(&all, &args(&["pts/1"]), None)), ["5"]);
        assert_eq!(ids(resolve(&all, &args(&["/dev/pts/1"]), None)), ["5"]);
        assert_eq!(ids(resolve(&all, &args(&["tty2"]), None)), ["7"]);
        assert_eq!(ids(resolve(&all, &args(&[":10"]), None)), ["12"]);
    }

    #[test]
    fn console_is_the_foreground_vt() {
        let all = sample();
        assert_eq!(ids(resolve(&all, &args(&["console"]), None)), ["8"]);
        assert_eq!(ids(resolve(&all, &args(&["CONSOLE"]), None)), ["8"]);
    }

    #[test]
    fn several_arguments_deduplicated_in_order() {
        let all = sample();
        assert_eq!(
            ids(resolve(&all, &args(&["pts/1", "3", "5"]), None)),
            ["5", "3"]
        );
    }

    #[test]
    fn no_argument_is_current() {
        let all = sample();
        let cur = SessionId::new("3");
        assert_eq!(ids(resolve(&all, &[], Some(&cur))), ["3"]);
        let e = resolve(&all, &[], None).expect_err("no current session");
        assert_eq!(e.kind(), Kind::NoSuchSession);
    }

    #[test]
    fn no_match_says_what_exists() {
        let all = sample();
        let e = resolve(&all, &args(&["3", "pts/9"]), None).expect_err("no match");
        assert_eq!(e.kind(), Kind::NoSuchSession);
        assert!(e.message().contains("'pts/9'"), "{e}");
        assert!(e.message().contains("5 (bob on pts/1)"), "{e}");
        let e = resolve(&[], &args(&["1"]), None).expect_err("empty");
        assert!(e.message().contains("there are no sessions"), "{e}");
    }

    #[test]
    fn ambiguous_name_fails() {
        let mut all = sample();
        all.push(s("9", "frank", Some("pts/1"), "active"));
        let e = resolve(&all, &args(&["pts/1"]), None).expect_err("ambiguous");
        assert_eq!(e.kind(), Kind::NoSuchSession);
        assert!(e.message().contains("more than one"), "{e}");
        assert!(e.message().contains("5 (bob on pts/1)") && e.message().contains("9 (frank"));
    }

    fn now() -> Timestamp {
        "2026-11-24T12:00:00Z".parse().expect("ts")
    }

    fn with(mut s: Session, f: impl FnOnce(&mut Session)) -> Session {
        f(&mut s);
        s
    }

    fn fleet() -> Vec<Session> {
        let t = |m: i64| Some(now() - jiff::SignedDuration::from_mins(m));
        vec![
            with(s("3", "alice", Some("pts/0"), "active"), |x| {
                x.idle_since = t(0);
                x.remote = true;
                x.remote_host = Some("10.0.0.5".into());
            }),
            with(s("5", "bob", Some("pts/1"), "active"), |x| {
                x.idle_since = t(120);
                x.remote = true;
                x.remote_host = Some("10.0.0.6".into());
                x.uid = Some(Uid::from_raw(1002));
            }),
            with(s("7", "bob", Some("tty2"), "online"), |x| {
                x.idle_since = t(5);
            }),
            with(s("9", "bob", None, "closing"), |_| {}),
            with(s("11", "carol", None, "disconnected"), |_| {}),
        ]
    }

    fn sel(f: &Filters, own: Option<&str>) -> Vec<String> {
        let all = fleet();
        let cur = own.map(SessionId::new);
        select(&all, &[], f, cur.as_ref(), OwnSession::LeaveOut, now())
            .expect("select")
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    #[test]
    fn filters_combine() {
        let f = Filters {
            users: vec!["bob".into()],
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["5", "7", "9"]);
        let f = Filters {
            users: vec!["1002".into()],
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["5"]);
        let f = Filters {
            users: vec!["bob".into()],
            remote: Some(true),
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["5"]);
        let f = Filters {
            remote: Some(false),
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["7", "9", "11"]);
        let f = Filters {
            idle_for: Some(Duration::from_secs(3600)),
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["5"]);
        let f = Filters {
            from: Some("10.0.0.5".into()),
            ..Filters::default()
        };
        assert_eq!(sel(&f, None), ["3"]);
    }

    #[test]
    fn states() {
        let st = |x: State| Filters {
            states: vec![x],
            ..Filters::default()
        };
        assert_eq!(sel(&st(State::Active), None), ["3", "5"]);
        assert_eq!(sel(&st(State::Online), None), ["7"]);
        assert_eq!(sel(&st(State::Closing), None), ["9"]);
        assert_eq!(sel(&st(State::Idle), None), ["5", "7"]);
        assert_eq!(sel(&st(State::Disconnected), None), ["9", "11"]);
    }

    #[test]
    fn all_leaves_out_the_callers_own_session() {
        let f = Filters {
            all: true,
            ..Filters::default()
        };
        assert_eq!(sel(&f, Some("3")), ["5", "7", "9", "11"]);
        // Named, it is included.
        let all = fleet();
        let cur = SessionId::new("3");
        let got = select(
            &all,
            &args(&["3"]),
            &f,
            Some(&cur),
            OwnSession::LeaveOut,
            now(),
        )
        .expect("named");
        assert_eq!(got[0].id.as_str(), "3");
    }

    #[test]
    fn filters_never_fall_back_to_the_current_session() {
        let f = Filters {
            users: vec!["nobody".into()],
            ..Filters::default()
        };
        assert!(sel(&f, Some("3")).is_empty());
    }

    #[test]
    fn a_named_session_must_pass_the_filters() {
        let all = fleet();
        let f = Filters {
            users: vec!["alice".into()],
            ..Filters::default()
        };
        let e =
            select(&all, &args(&["5"]), &f, None, OwnSession::LeaveOut, now()).expect_err("bob's");
        assert_eq!(e.kind(), Kind::NoSuchSession);
        assert!(e.message().contains("--user alice"), "{e}");
    }

    #[test]
    fn ids_match_exactly() {
        let all = sample();
        assert!(resolve(&all, &args(&["03"]), None).is_err());
        assert!(resolve(&all, &args(&["C1"]), None).is_err());
    }
}
