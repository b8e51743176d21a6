//! The policy's evaluation of sessions.
use super::*;
use crate::model::{SessionId, Uid};
use crate::policy::from_text;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

fn session(id: &str, user: &str, uid: u32) -> Session {
    Session {
        id: SessionId::new(id),
        uid: Some(Uid::from_raw(uid)),
        user: user.into(),
        tty: Some("pts/1".into()),
        state: "active".into(),
        remote: true,
        logon_time: Some(at(0)),
        activity: crate::model::Activity::typed_at(Some(at(100))),
        login: crate::model::Login::Logind(crate::model::Origin::Ssh),
        ..Session::default()
    }
}

const POLICY: &str = r#"
[[rule]]
name = "staff"
match = { users = ["carol"] }
exempt = { users = ["carol"] }
idle = "1h"
[[rule]]
name = "remote"
match = { remote = true }
idle = "10m"
disconnected = "5m"
max_age = "1h"
warn = ["2m", "30s"]
"#;

#[test]
fn the_first_matching_rule_and_the_earliest_limit() {
    let p = from_text(POLICY).expect("policy");
    let bob = session("1", "bob", 1000);
    let mut gone = session("2", "dave", 1001);
    gone.state = "disconnected".into();
    gone.tty = None;
    let carol = session("3", "carol", 1002);
    let mut local = session("4", "erin", 1003);
    local.remote = false;
    let root = session("5", "root", 0);
    let mut unknown = session("6", "frank", 1004);
    unknown.activity.listed = None;
    unknown.logon_time = None;
    let sessions = [bob, gone, carol, local, root, unknown];
    let v = p.evaluate(
        &sessions,
        |s| Remembered {
            disconnected_since: (s.id.as_str() == "2").then(|| at(50)),
            ..Remembered::default()
        },
        at(200),
    );
    let remote = p.rule_named("remote");
    // bob: idle since 100 + 10m = 700, before max age at 3600.
    let d = v[0].limit().expect("limited");
    assert_eq!((d.reason, d.acts_at), (Reason::Idle, at(700)));
    assert_eq!(v[0].rule(), remote);
    assert_eq!(
        d.warnings,
        [
            (Duration::from_secs(120), at(580)),
            (Duration::from_secs(30), at(670))
        ]
    );
    // dave: disconnected since 50 (the clock), + 5m.
    let d = v[1].limit().expect("limited");
    assert_eq!((d.reason, d.acts_at), (Reason::Disconnected, at(350)));
    assert!(matches!(&v[2], Verdict::Exempt { rule, .. } if Some(*rule) == p.rule_named("staff")));
    assert_eq!(v[3], Verdict::NoRule);
    assert!(matches!(&v[4], Verdict::Protected { .. }));
    assert!(matches!(&v[5], Verdict::Unlimited { why, .. } if why.contains("idle time")));
}

#[test]
fn a_clock_not_yet_started_starts_now_and_warnings_never_precede_it() {
    let p = from_text("[[rule]]\nname = \"r\"\ndisconnected = \"1m\"\nwarn = [\"5m\"]\n")
        .expect("policy");
    let mut s = session("1", "bob", 1000);
    s.state = "closing".into();
    let v = p.evaluate(&[s], |_| Remembered::default(), at(10));
    let d = v[0].limit().expect("limited");
    assert_eq!(d.acts_at, at(70));
    assert_eq!(d.warnings, [(Duration::from_secs(300), at(10))]);
}

/// Regression (issue 17, item 3): replacing a session's oldest process moved the logon
/// time a listing shows; the max-age clock runs from the earliest logon ever seen.
#[test]
fn max_age_runs_from_the_earliest_logon_remembered() {
    let p = from_text("[[rule]]\nname = \"r\"\nmax_age = \"1h\"\n").expect("policy");
    let mut s = session("1", "bob", 1000);
    s.logon_time = Some(at(3000));
    let v = p.evaluate(
        std::slice::from_ref(&s),
        |_| Remembered {
            first_logon: Some(at(0)),
            ..Remembered::default()
        },
        at(3100),
    );
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(3600)));
}

/// Issue 19: what counts as activity is the rule's. An idle lock and a busy CPU keep a
/// session only where the rule counts them; output likewise; input always by default.
#[test]
fn each_rule_counts_what_it_says() {
    use crate::model::{Inhibitor, Pid, Seen};
    let rule = |activity: &str| {
        from_text(&format!(
            "[[rule]]\nname = \"r\"\nidle = \"10m\"\nactivity = [{activity}]\nbusy_cpu = \"50%\"\n"
        ))
        .expect("policy")
    };
    let mut s = session("1", "bob", 1000);
    s.activity.listed = Some(Seen {
        at: at(0),
        source: IdleSource::Terminal("pts/1".into()),
    });
    s.activity.terminals.push(crate::model::TerminalSeen {
        name: "pts/1".into(),
        input: Some(at(0)),
        output: Some(at(500)),
        made: Some(at(0)),
        controlling: true,
        served: crate::model::Served::Outside,
    });
    s.activity.inhibitor = Some(Inhibitor {
        pid: Pid::from_raw(4242),
        command: "make".into(),
        why: "building".into(),
    });
    let busy = Remembered {
        cpu: Some(CpuRate {
            used: Duration::from_secs(40),
            over: Duration::from_secs(60),
        }),
        ..Remembered::default()
    };
    let now = at(700);
    let limit = |p: &Policy| {
        p.evaluate(std::slice::from_ref(&s), |_| busy, now)[0]
            .limit()
            .cloned()
            .expect("limited")
    };
    let input = limit(&rule("\"input\""));
    assert_eq!(input.acts_at, at(600));
    assert!(
        input
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("terminal pts/1")),
        "{input:?}"
    );
    let output = limit(&rule("\"input\", \"output\""));
    assert_eq!(output.acts_at, at(1100));
    let inhibit = limit(&rule("\"inhibit\""));
    assert_eq!(inhibit.since, now);
    assert!(
        inhibit
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("`make` (pid 4242)"))
    );
    let cpu = limit(&rule("\"cpu\", \"input\""));
    assert_eq!(cpu.since, now);
    assert!(
        cpu.cause
            .as_deref()
            .is_some_and(|c| c.starts_with("busy: 40.0 CPU-seconds"))
    );
    // Below the rule's share of a CPU, it is not busy.
    let idle_cpu = Remembered {
        cpu: Some(CpuRate {
            used: Duration::from_secs(1),
            over: Duration::from_secs(60),
        }),
        ..Remembered::default()
    };
    let v = rule("\"cpu\", \"input\"").evaluate(std::slice::from_ref(&s), |_| idle_cpu, now);
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(600)));
    // Read once, never measured (a daemon just started): not acted on until it is.
    s.activity.cpu = Some(Duration::from_secs(5));
    let v = rule("\"cpu\", \"input\"").evaluate(
        std::slice::from_ref(&s),
        |_| Remembered::default(),
        now,
    );
    let first = v[0].limit().expect("limited");
    assert_eq!(first.since, now);
    assert_eq!(first.cause.as_deref(), Some("CPU use not measured yet"));
}
