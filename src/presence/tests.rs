//! Idle and connected, decided at a fixed moment from facts written out by hand: what each
//! backend gathers for the cases users meet (issue 25: mosh, forwards, tmux, and what stays
//! unknown).

use super::*;
use crate::model::{Activity, Hint, Login, Looked, Origin, TerminalSeen, Uid};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("t")
}

const NOW: i64 = 1000;

/// A logind session of uid 1000, looked at, its login lasting while `state` says so.
fn session(id: &str, state: &str) -> Session {
    Session {
        id: SessionId::new(id),
        uid: Some(Uid::from_raw(1000)),
        user: "mu".into(),
        state: state.into(),
        login: Login::Logind(Origin::Ssh),
        activity: Activity {
            looked: Looked::Yes,
            ..Activity::default()
        },
        ..Session::default()
    }
}

fn terminal(name: &str, input: i64, made: i64, served: Served) -> TerminalSeen {
    TerminalSeen {
        name: name.into(),
        input: Some(at(input)),
        output: None,
        made: Some(at(made)),
        controlling: true,
        served,
    }
}

fn mosh_server() -> Served {
    Served::Program {
        pid: Pid::from_raw(4242),
        command: "mosh-server".into(),
    }
}

fn judged(sessions: &[Session]) -> Vec<Presence> {
    judge(sessions, at(NOW))
}

fn by(p: &Presence) -> String {
    p.by().map(ToString::to_string).unwrap_or_default()
}

#[test]
fn a_lasting_login_connects_whatever_else_is_known() {
    let live = session("1", "active");
    let p = &judged(std::slice::from_ref(&live))[0];
    assert_eq!(by(p), "ssh");
    assert_eq!(p.state(&live), SessionState::Active);
    let mut local = session("2", "online");
    local.login = Login::Logind(Origin::Local);
    assert_eq!(by(&judged(&[local])[0]), "login");
}

/// Issue 25, case 1: the ssh login that started `mosh-server` has ended (logind: closing);
/// what is typed through mosh is input on the terminal mosh-server serves. Connected by it,
/// idle since it.
#[test]
fn mosh_input_after_the_login_ended_connects_the_session() {
    let mut s = session("417", "closing");
    s.activity.terminals = vec![terminal("pts/1", 990, 100, mosh_server())];
    let p = &judged(std::slice::from_ref(&s))[0];
    assert_eq!(by(p), "input on pts/1");
    assert!(!p.is_disconnected());
    assert_eq!(p.state(&s), SessionState::Closing, "logind's word stays");
    let idle = p.idle.as_ref().expect("idle known");
    assert_eq!((idle.since, idle.firm), (at(990), true));
    assert_eq!(p.idle_for(at(NOW)), Some(Duration::from_secs(10)));
    // Where logoffd saw the login end, only input since then (less the kernel's 8 s grain).
    s.activity.login_ended = Some(at(995));
    assert_eq!(by(&judged(std::slice::from_ref(&s))[0]), "input on pts/1");
    s.activity.login_ended = Some(at(999));
    assert!(judged(std::slice::from_ref(&s))[0].is_disconnected());
}

/// Regression (hostile read of issues 25-28): a pty a program of the session made after the
/// login's end (`script`, vim's `:terminal`) has its input time stamped at its making, and
/// was taken for typing: connected for ever. Its making is nobody's input.
#[test]
fn a_terminal_made_after_the_login_ended_is_not_typed_into() {
    let mut s = session("417", "closing");
    s.activity.login_ended = Some(at(100));
    s.activity.terminals = vec![
        terminal("pts/1", 10, 10, mosh_server()),
        terminal("pts/2", 500, 500, mosh_server()),
    ];
    assert!(judged(std::slice::from_ref(&s))[0].is_disconnected());
    // Typed into after it was made, it is.
    s.activity.terminals[1].input = Some(at(600));
    assert_eq!(by(&judged(std::slice::from_ref(&s))[0]), "input on pts/2");
}

/// Nobody has typed into a terminal a program serves since it was made, and when the login
/// ended is not known: the program may be a client's way in (a mosh client that has not
/// typed yet, `script`). Unknown: never disconnected.
#[test]
fn a_program_served_terminal_nobody_typed_into_is_unknown_not_disconnected() {
    let mut s = session("5", "closing");
    s.activity.terminals = vec![terminal("pts/1", 100, 100, mosh_server())];
    let p = &judged(std::slice::from_ref(&s))[0];
    match &p.connected {
        Connected::Unknown(why) => assert!(why.contains("mosh-server"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!p.is_disconnected());
}

/// A tmux server's panes get their input from its clients: with none, nothing reaches the
/// session.
#[test]
fn a_detached_multiplexer_is_disconnected() {
    let mut s = session("3", "closing");
    s.activity.terminals = vec![terminal(
        "pts/2",
        990,
        100,
        Served::Multiplexer { kind: "tmux" },
    )];
    let p = &judged(std::slice::from_ref(&s))[0];
    assert!(p.is_disconnected());
    assert_eq!(p.state(&s), SessionState::Closing);
}

/// A tmux client attached from a live session of the same user connects the server's session,
/// which is in use by it and idle as it is; from a session that is itself gone, or of another
/// user, it does not.
#[test]
fn a_client_counts_only_from_a_live_session_of_the_same_user() {
    let mut server = session("3", "closing");
    server.activity.clients = vec![Client {
        session: SessionId::new("4"),
        through: Through::Multiplexer {
            kind: "tmux",
            terminal: None,
        },
    }];
    let mut client = session("4", "active");
    client.activity.terminals = vec![terminal("pts/4", 995, 0, Served::Outside)];
    let p = judged(&[server.clone(), client.clone()]);
    assert_eq!(by(&p[0]), "tmux client of session 4");
    assert_eq!(p[0].in_use_by(), Some(&SessionId::new("4")));
    let idle = p[0].idle.as_ref().expect("the client's");
    assert_eq!(idle.since, at(995));
    assert!(!idle.firm, "a client can leave at any moment");
    assert_eq!(idle.source.to_string(), "tmux client in session 4 (pts/4)");
    let mut gone = client.clone();
    gone.state = "closing".into();
    assert!(judged(&[server.clone(), gone])[0].is_disconnected());
    let mut other = client;
    other.uid = Some(Uid::from_raw(1001));
    assert!(judged(&[server, other])[0].is_disconnected());
}

/// No chains: a session reached only through a client's client is not connected by it, and
/// two abandoned sessions reaching each other do not keep each other.
#[test]
fn clients_do_not_chain_or_circle() {
    let reached_by = |id: &str, from: &str| {
        let mut s = session(id, "closing");
        s.activity.clients = vec![Client {
            session: SessionId::new(from),
            through: Through::Socket { kind: "unix" },
        }];
        s
    };
    let p = judged(&[reached_by("1", "2"), reached_by("2", "1")]);
    assert!(p[0].is_disconnected() && p[1].is_disconnected());
    let p = judged(&[
        reached_by("1", "2"),
        reached_by("2", "3"),
        session("3", "active"),
    ]);
    assert_eq!(by(&p[1]), "unix socket from session 3");
    assert!(p[0].is_disconnected(), "{:?}", p[0]);
}

/// Issue 25, case 2: a server left in a dropped session, used through `ssh -L` from a new
/// login: the forward's sshd holds the other end of its connection.
#[test]
fn a_forward_from_a_live_login_connects_the_server_and_idles_nothing() {
    let mut server = session("481", "closing");
    server.activity.clients = vec![Client {
        session: SessionId::new("490"),
        through: Through::Forward,
    }];
    let mut forward = session("490", "active");
    forward.activity.terminals = vec![terminal("pts/3", 999, 0, Served::Outside)];
    let p = judged(&[server, forward]);
    assert_eq!(by(&p[0]), "forward from session 490");
    assert_eq!(p[0].in_use_by(), None, "not through tmux or screen");
    assert_eq!(p[0].idle, None, "a forward's traffic is no one's input");
}

/// What could not be read is unknown, never disconnected: processes not looked at, a socket
/// table that could not be read, logind's word on another host's bus.
#[test]
fn what_cannot_be_read_is_unknown() {
    let mut not_looked = session("1", "closing");
    not_looked.activity.looked = Looked::No;
    let mut partly = session("2", "closing");
    partly.activity.looked = Looked::Partly("the unix sockets could not be read".into());
    let mut odd = session("3", "opening");
    odd.activity.looked = Looked::Yes;
    for p in judged(&[not_looked, partly, odd]) {
        assert!(
            matches!(p.connected, Connected::Unknown(_)),
            "{:?}",
            p.connected
        );
    }
}

/// procfs, where no opener runs: a controlling terminal nothing of the session serves is
/// its login (the shell on sshd's or a terminal emulator's terminal); a session holding
/// none, its programs left behind, is disconnected.
#[test]
fn on_procfs_the_terminals_tell_where_no_opener_runs() {
    let mut s = session("12", "active");
    s.login = Login::Terminals {
        controlling: Some("pts/3".into()),
    };
    s.activity.terminals = vec![terminal("pts/3", 0, 0, Served::Outside)];
    assert_eq!(by(&judged(std::slice::from_ref(&s))[0]), "terminal pts/3");
    // A terminal `script` serves (what the session was opened through), nobody typing.
    s.activity.terminals = vec![terminal(
        "pts/3",
        0,
        500,
        Served::Program {
            pid: Pid::from_raw(7),
            command: "script".into(),
        },
    )];
    s.activity.login_ended = Some(at(900));
    assert_eq!(by(&judged(std::slice::from_ref(&s))[0]), "terminal pts/3");
    // A tmux pane is no login.
    s.activity.terminals[0].served = Served::Multiplexer { kind: "tmux" };
    assert!(judged(std::slice::from_ref(&s))[0].is_disconnected());
    s.activity.terminals.clear();
    let p = &judged(std::slice::from_ref(&s))[0];
    assert!(p.is_disconnected());
    assert_eq!(
        p.state(&s),
        SessionState::Disconnected,
        "procfs says active"
    );
    s.login = Login::Opener(Origin::Ssh);
    assert_eq!(by(&judged(std::slice::from_ref(&s))[0]), "ssh");
}

#[test]
fn rdp_sessions_are_connected_by_their_client() {
    let mut s = session("c2", "active");
    s.login = Login::Rdp {
        connected: Some(false),
    };
    let p = &judged(std::slice::from_ref(&s))[0];
    assert_eq!(p.state(&s), SessionState::Disconnected);
    s.login = Login::Rdp {
        connected: Some(true),
    };
    assert_eq!(by(&judged(&[s])[0]), "rdp");
}

/// Regression (issue 17, item 6): a graphical session that went idle and came back has
/// IdleHint false and IdleSinceHint the moment it came back; it was taken as idle since
/// then, and logoffd logged off a user who was working.
#[test]
fn a_graphical_session_whose_hint_is_false_is_in_use_now() {
    let mut s = session("2", "active");
    s.kind = Some("x11".into());
    s.activity.hint = Some(Hint {
        idle: Some(false),
        since: Some(at(100)),
    });
    let idle = judged(std::slice::from_ref(&s))[0]
        .idle
        .clone()
        .expect("known");
    assert_eq!(idle.since, at(NOW));
    s.activity.hint = Some(Hint {
        idle: Some(true),
        since: Some(at(100)),
    });
    let idle = judged(std::slice::from_ref(&s))[0]
        .idle
        .clone()
        .expect("known");
    assert_eq!(idle.since, at(100));
    // A terminal session's hint is its terminal's input, whatever it says.
    s.kind = Some("tty".into());
    s.activity.hint = Some(Hint {
        idle: Some(false),
        since: Some(at(100)),
    });
    let idle = judged(std::slice::from_ref(&s))[0]
        .idle
        .clone()
        .expect("known");
    assert_eq!(idle.since, at(100));
    // Its X server knows better than any hint.
    s.kind = Some("x11".into());
    s.activity.display = Some(at(50));
    s.display = Some(":10".into());
    let idle = judged(&[s])[0].idle.clone().expect("known");
    assert_eq!(
        (idle.since, idle.source.to_string()),
        (at(50), "display :10".into())
    );
}

/// The latest input wins, and of as late, a terminal's over logind's hint.
#[test]
fn the_latest_input_of_anything_the_session_is() {
    let mut s = session("1", "active");
    s.activity.hint = Some(Hint {
        idle: None,
        since: Some(at(500)),
    });
    s.activity.terminals = vec![
        terminal("pts/1", 400, 0, Served::Outside),
        terminal("pts/5", 500, 0, Served::Outside),
    ];
    let idle = judged(&[s])[0].idle.clone().expect("known");
    assert_eq!(idle.source.to_string(), "terminal pts/5");
}

/// Regression (hostile read of issues 25-28): logind's hint for a terminal session is its
/// terminal's access time, which its user may set ahead (`touch -a -d +10years`): "idle 0s"
/// for ever. A hint ahead of now is no input; the terminals say what the session is.
#[test]
fn a_hint_ahead_of_now_is_no_input() {
    let mut s = session("1", "active");
    s.activity.hint = Some(Hint {
        idle: None,
        since: Some(at(NOW + 86_400 * 3650)),
    });
    s.activity.terminals = vec![terminal("pts/1", 400, 0, Served::Outside)];
    let idle = judged(&[s])[0].idle.clone().expect("known");
    assert_eq!(idle.since, at(400));
    assert_eq!(idle.source.to_string(), "terminal pts/1");
}

/// `--disconnect` refuses what has no connection of its own, and says what reaches it.
#[test]
fn no_connection_of_its_own_is_said_for_mosh_and_clients() {
    let mut mosh = session("417", "closing");
    mosh.activity.terminals = vec![terminal("pts/1", 990, 100, mosh_server())];
    let p = &judged(std::slice::from_ref(&mosh))[0];
    let why = no_connection_of_its_own(&mosh, p).expect("refused");
    assert!(
        why.contains("mosh-server") && why.contains("pts/1"),
        "{why}"
    );
    let live = session("1", "active");
    assert_eq!(
        no_connection_of_its_own(&live, &judged(std::slice::from_ref(&live))[0]),
        None
    );
}

/// Regression (hostile read of issue 25): a procfs session whose look was partial (a
/// process with too many descriptors, hiding its terminal's master) read as connected by a
/// terminal "nothing of it serves". Partial is unknown.
#[test]
fn a_partial_look_at_a_procfs_session_is_unknown() {
    let mut s = session("12", "active");
    s.login = Login::Terminals {
        controlling: Some("pts/3".into()),
    };
    s.activity.terminals = vec![terminal("pts/3", 0, 0, Served::Outside)];
    s.activity.looked = Looked::Partly("process 7 holds more than 16384 descriptors".into());
    assert!(matches!(judged(&[s])[0].connected, Connected::Unknown(_)));
}

/// Regression (hostile read of issue 25): an RDP session whose connection could not be read,
/// reached by a client too, was refused `--disconnect` as "reached by a client".
#[test]
fn a_session_whose_own_connection_is_unknown_is_not_refused_for_its_clients() {
    let mut s = session("c2", "active");
    s.login = Login::Rdp { connected: None };
    s.activity.clients = vec![Client {
        session: SessionId::new("4"),
        through: Through::Forward,
    }];
    let sessions = [s, session("4", "active")];
    let p = judged(&sessions);
    assert_eq!(by(&p[0]), "forward from session 4");
    assert_eq!(no_connection_of_its_own(&sessions[0], &p[0]), None);
}
