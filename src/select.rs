//! Which sessions the command line means, resolved against a backend's list before anything is
//! touched.
//!
//! No argument means the caller's own session. An argument matches a session's ID exactly;
//! otherwise it is a name: a terminal (`pts/3`, `/dev/pts/3`, `tty2`), an X display (`:10`),
//! or `console` — the session on the console or a virtual terminal, the foreground one if
//! there are several. An argument that matches nothing, or more than one session, fails the
//! whole command.

use crate::error::{Error, Kind, Result};
use crate::model::{Session, SessionId, id_sort_key};
use crate::system::tty;

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
    if let Some(s) = sessions.iter().find(|s| s.id.0 == arg) {
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
            id: SessionId(id.into()),
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
            .map(|s| s.id.0.clone())
            .collect()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
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
        let cur = SessionId("3".into());
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

    #[test]
    fn ids_match_exactly() {
        let all = sample();
        assert!(resolve(&all, &args(&["03"]), None).is_err());
        assert!(resolve(&all, &args(&["C1"]), None).is_err());
    }
}
