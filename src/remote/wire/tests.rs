//! The wire's messages: what crosses unchanged, and what is refused.

use super::*;

fn session() -> Session {
    Session {
        id: SessionId::new("85"),
        uid: Some(Uid::from_raw(1001)),
        user: "bob".into(),
        tty: Some("pts/0".into()),
        state: "active".into(),
        remote: true,
        remote_host: Some("192.0.2.7".into()),
        logon_time: Some("2026-11-24T10:05:00Z".parse().expect("ts")),
        leader: Some(Pid::from_raw(4242)),
        audit: Some(85),
        login: crate::model::Login::Logind(crate::model::Origin::Ssh),
        activity: crate::model::Activity::typed_at(Some(
            "2026-11-24T11:05:00Z".parse().expect("ts"),
        )),
        ..Session::default()
    }
}

fn judged(s: &Session) -> crate::presence::Presence {
    crate::presence::judge(std::slice::from_ref(s), jiff::Timestamp::now()).remove(0)
}

/// What crosses is the session as the far side judged it: judged again on this side, it
/// says the same (state, idle time and its source, whether connected and by what).
#[test]
fn a_session_crosses_the_wire_unchanged() {
    let s = session();
    let sent = WireSession::of(&s, &judged(&s));
    assert_eq!(sent.connected_by.as_deref(), Some("ssh"));
    let line = serde_json::to_string(&Reply::Sessions {
        sessions: vec![sent.clone()],
    })
    .expect("json");
    let Reply::Sessions { sessions } = serde_json::from_str(&line).expect("parse") else {
        panic!("not sessions: {line}");
    };
    let back = sessions
        .into_iter()
        .next()
        .expect("one")
        .into_session()
        .expect("valid");
    assert_eq!(WireSession::of(&back, &judged(&back)), sent);
}

#[test]
fn requests_round_trip_and_unknown_fields_are_refused() {
    let r = Call::Remaining {
        sessions: vec!["3".into()],
        wait_ms: 500,
    };
    let line = serde_json::to_string(&r).expect("json");
    assert_eq!(line, r#"{"op":"remaining","sessions":["3"],"wait_ms":500}"#);
    assert_eq!(serde_json::from_str::<Call>(&line).expect("parse"), r);
    assert!(serde_json::from_str::<Call>(r#"{"op":"list","x":1}"#).is_err());
    assert!(serde_json::from_str::<Call>(r#"{"op":"reboot"}"#).is_err());
    assert!(serde_json::from_str::<Reply>(r#"{"reply":"done","evil":true}"#).is_err());
    assert!(
        serde_json::from_str::<Reply>(
            r#"{"reply":"remaining","results":[{"ok":[{"pid":"1","command":"x"}]}]}"#
        )
        .is_err(),
        "a PID as text"
    );
}

#[test]
fn oversized_texts_and_odd_versions_are_refused() {
    let mut w = WireSession::of(&session(), &judged(&session()));
    w.user = "x".repeat(MAX_TEXT + 1);
    assert_eq!(w.into_session().expect_err("long").kind(), Kind::Remote);
    let mut w = WireSession::of(&session(), &judged(&session()));
    w.id = String::new();
    assert!(w.into_session().is_err());
    check_version("0.2.0").expect("ok");
    check_version("1.0.0-rc.1+deb12").expect("ok");
    for bad in ["", "0.2.0 ", "0.2.0\u{1b}[2J", "$(x)", &"9".repeat(65)] {
        assert!(check_version(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn remote_errors_keep_what_they_mean_here() {
    let e = |kind: &str| {
        WireError {
            kind: kind.into(),
            message: "m".into(),
        }
        .into_error()
        .kind()
    };
    assert_eq!(e("access-denied"), Kind::AccessDenied);
    assert_eq!(e("no-such-session"), Kind::NoSuchSession);
    assert_eq!(e("survivors"), Kind::Survivors);
    assert_eq!(e("system"), Kind::Remote);
    assert_eq!(e("invalid-parameters"), Kind::Remote);
    assert_eq!(e("whatever"), Kind::Remote);
    let long = WireError {
        kind: "system".into(),
        message: "é".repeat(MAX_TEXT),
    }
    .into_error();
    assert!(long.message().len() <= MAX_TEXT + 3);
}
