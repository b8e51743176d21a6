use super::*;
use crate::model::{Activity, Login, Origin};

fn s(id: &str, user: &str, tty: Option<&str>, state: &str) -> Session {
    Session {
        id: SessionId::new(id),
        user: user.into(),
        tty: tty.map(String::from),
        state: state.into(),
        login: Login::Logind(Origin::Ssh),
        activity: Activity::typed_at(None),
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
            x.activity = Activity::typed_at(t(0));
            x.remote = true;
            x.remote_host = Some("10.0.0.5".into());
        }),
        with(s("5", "bob", Some("pts/1"), "active"), |x| {
            x.activity = Activity::typed_at(t(120));
            x.remote = true;
            x.remote_host = Some("10.0.0.6".into());
            x.uid = Some(Uid::from_raw(1002));
        }),
        with(s("7", "bob", Some("tty2"), "online"), |x| {
            x.activity = Activity::typed_at(t(5));
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
        from: Some(HostSpec::Host("10.0.0.5".into())),
        ..Filters::default()
    };
    assert_eq!(sel(&f, None), ["3"]);
}

#[test]
fn states() {
    let st = |x: StateFilter| Filters {
        states: vec![x],
        ..Filters::default()
    };
    assert_eq!(sel(&st(StateFilter::Active), None), ["3", "5"]);
    assert_eq!(sel(&st(StateFilter::Online), None), ["7"]);
    assert_eq!(sel(&st(StateFilter::Closing), None), ["9"]);
    assert_eq!(sel(&st(StateFilter::Idle), None), ["5", "7"]);
    assert_eq!(sel(&st(StateFilter::Disconnected), None), ["9", "11"]);
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
    let e = select(&all, &args(&["5"]), &f, None, OwnSession::LeaveOut, now()).expect_err("bob's");
    assert_eq!(e.kind(), Kind::NoSuchSession);
    assert!(e.message().contains("--user alice"), "{e}");
}

#[test]
fn ids_match_exactly() {
    let all = sample();
    assert!(resolve(&all, &args(&["03"]), None).is_err());
    assert!(resolve(&all, &args(&["C1"]), None).is_err());
}

#[test]
fn hosts_and_networks_match_what_is_vouched_for() {
    let from = |host: &str| Session {
        remote_host: Some(host.into()),
        ..Session::default()
    };
    let net = HostSpec::parse("10.1.0.0/16").expect("net");
    assert!(net.takes(&from("10.1.2.3")));
    assert!(net.takes(&from("::ffff:10.1.2.3")));
    assert!(!net.takes(&from("10.2.0.1")));
    assert!(!net.takes(&from("laptop")));
    assert!(
        HostSpec::parse("0.0.0.0/0")
            .expect("all")
            .takes(&from("192.0.2.1"))
    );
    assert!(
        HostSpec::parse("fd00::/8")
            .expect("v6")
            .takes(&from("fd12::1"))
    );
    assert!(HostSpec::Host("Laptop".into()).takes(&from("laptop")));
    assert!(HostSpec::parse("10.0.0.0/33").is_err());
    assert!(HostSpec::parse("nonsense/8").is_err());
    // A claim is no origin.
    let claimed = Session {
        remote_claim: Some(crate::model::Claim {
            value: "10.1.2.3".into(),
            source: "environment",
        }),
        ..Session::default()
    };
    assert!(!net.takes(&claimed));
}

/// Regression (hostile read of issue 25): `--state active` compared the backend's state,
/// and took sessions the list shows as disconnected (procfs no longer says so itself).
#[test]
fn state_active_is_the_state_the_list_shows() {
    let mut gone = s("40", "dave", None, "active");
    gone.login = Login::Terminals { controlling: None };
    let live = s("41", "dave", Some("pts/4"), "active");
    let all = [gone, live];
    let f = Filters {
        states: vec![StateFilter::Active],
        ..Filters::default()
    };
    let got = ids(select(&all, &[], &f, None, OwnSession::Include, now()));
    assert_eq!(got, ["41"]);
}
