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
        p.evaluate(std::slice::from_ref(&s), |_| busy.clone(), now)[0]
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
    let v =
        rule("\"cpu\", \"input\"").evaluate(std::slice::from_ref(&s), |_| idle_cpu.clone(), now);
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

// Issue 26: logon hours, allowances and session caps, at fixed moments. at(0) is Friday
// 2027-01-15 08:00 UTC.

const H: i64 = 3600;

fn limit_of(p: &Policy, sessions: &[Session], r: &Remembered, now: impl Into<Now>) -> Vec<Verdict> {
    let r = r.clone();
    p.evaluate(sessions, move |_| r.clone(), now)
}

/// Inside its hours a session is under a limit that acts at the window's end, warned the
/// rule's lead before; outside them, at once (warned now, acted on a lead later: the plan).
#[test]
fn hours_end_at_the_window_s_end_and_outside_them_at_once() {
    let p = from_text(
        "[[rule]]\nname = \"day\"\nhours = \"Mon-Fri 08:00-18:00\"\ntimezone = \"UTC\"\n\
         warn = [\"10m\"]\n",
    )
    .expect("policy");
    let s = session("1", "bob", 1000);
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &Remembered::default(),
        at(2 * H),
    );
    let d = v[0].limit().expect("limited");
    assert_eq!((d.reason, d.acts_at), (Reason::Hours, at(10 * H)));
    assert_eq!(d.warnings, [(Duration::from_secs(600), at(10 * H - 600))]);
    assert_eq!(d.words(), "outside its hours (Mon-Fri 08:00-18:00 (UTC))");
    assert!(
        d.cause.as_deref().is_some_and(|c| c.contains("Fri 18:00")),
        "{d:?}"
    );
    // Friday 19:00: outside, acts now; the next window is Monday's.
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &Remembered::default(),
        at(11 * H),
    );
    // Outside since 18:00, a moment that stays put (warned at once, the warning stands).
    let d = v[0].limit().expect("limited");
    assert_eq!((d.reason, d.acts_at), (Reason::Hours, at(10 * H)));
    assert!(
        d.cause.as_deref().is_some_and(|c| c.contains("Mon 08:00")),
        "{d:?}"
    );
    // Logged on at 19:30, outside its hours: since then.
    let mut late = session("2", "bob", 1000);
    late.logon_time = Some(at(11 * H + 1800));
    let v = limit_of(
        &p,
        std::slice::from_ref(&late),
        &Remembered::default(),
        at(12 * H),
    );
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(11 * H + 1800)));
}

/// Logon hours are the wall clock's: with the wall clock stepped an hour ahead of logoffd's
/// steady time, the window ends an hour sooner in steady time.
#[test]
fn hours_follow_the_wall_clock_in_steady_time() {
    let p = from_text("[[rule]]\nname = \"day\"\nhours = \"08:00-18:00\"\ntimezone = \"UTC\"\n")
        .expect("policy");
    let s = session("1", "bob", 1000);
    let now = Now {
        at: at(2 * H),
        offset: jiff::SignedDuration::from_hours(1),
    };
    let v = limit_of(&p, std::slice::from_ref(&s), &Remembered::default(), now);
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(9 * H)));
}

/// The allowance left is the day's or the week's, whichever is less; a day logoffd has not
/// counted yet (a new one began) has all of it left.
#[test]
fn an_allowance_ends_when_what_is_left_is_used() {
    use crate::policy::allowance::{Periods, Used};
    let p = from_text(
        "[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\n\
         allowance = { day = \"2h\", week = \"10h\", reset = \"04:00\" }\n",
    )
    .expect("policy");
    let s = session("1", "bob", 1000);
    let rule = p.rule(p.rule_named("lab").expect("rule")).expect("rule");
    let allowance = rule.allowance.as_ref().expect("allowance");
    let periods = allowance.periods(at(0));
    let used = |day: u64, week: u64, periods: Periods| {
        let mut r = Remembered::default();
        r.allowances.insert(
            "lab".into(),
            Usage {
                used: Used {
                    day: Duration::from_secs(day),
                    week: Duration::from_secs(week),
                },
                periods,
                counting: true,
            },
        );
        r
    };
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &used(3600, 3600, periods),
        at(0),
    );
    let d = v[0].limit().expect("limited");
    assert_eq!((d.reason, d.acts_at), (Reason::Allowance, at(H)));
    assert_eq!(
        d.allowance.as_ref().map(|a| (a.left, a.counting)),
        Some((Duration::from_secs(3600), true))
    );
    // The week's is less.
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &used(0, 35_000, periods),
        at(0),
    );
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(1000)));
    // Used up: acts now.
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &used(7200, 7200, periods),
        at(0),
    );
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(0)));
    // What was used yesterday does not count today (the day began at 04:00).
    let yesterday = Periods {
        day: periods.day.yesterday().expect("date"),
        week: periods.week,
    };
    let v = limit_of(
        &p,
        std::slice::from_ref(&s),
        &used(7200, 7200, yesterday),
        at(0),
    );
    assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(2 * H)));
}

/// Above `max_sessions`, the newest logons go (by default), each since it logged on; with
/// `sessions_go = "oldest"`, the oldest, each since the logon that took the user past the
/// cap. Another user's sessions are theirs.
#[test]
fn sessions_above_the_cap_go_as_the_rule_says() {
    let sessions: Vec<Session> = (0..3)
        .map(|i| {
            let mut s = session(&format!("{}", 10 + i), "bob", 1000);
            s.logon_time = Some(at(i * 100));
            s
        })
        .chain(std::iter::once(session("20", "carol", 1001)))
        .collect();
    let reasons = |v: &[Verdict]| -> Vec<Option<(Reason, Timestamp)>> {
        v.iter()
            .map(|v| v.limit().map(|l| (l.reason, l.acts_at)))
            .collect()
    };
    let newest = from_text("[[rule]]\nname = \"one\"\nmax_sessions = 2\n").expect("policy");
    let v = limit_of(&newest, &sessions, &Remembered::default(), at(1000));
    assert_eq!(
        reasons(&v),
        [None, None, Some((Reason::Sessions, at(200))), None]
    );
    let words = v[2]
        .limit()
        .and_then(|l| l.cause.clone())
        .unwrap_or_default();
    assert!(words.contains("3rd of bob's 3"), "{words}");
    let oldest =
        from_text("[[rule]]\nname = \"one\"\nmax_sessions = 2\nsessions_go = \"oldest\"\n")
            .expect("policy");
    let v = limit_of(&oldest, &sessions, &Remembered::default(), at(1000));
    assert_eq!(
        reasons(&v),
        [Some((Reason::Sessions, at(200))), None, None, None]
    );
    let one = from_text("[[rule]]\nname = \"one\"\nmax_sessions = 1\nsessions_go = \"oldest\"\n")
        .expect("policy");
    let v = limit_of(&one, &sessions, &Remembered::default(), at(1000));
    assert_eq!(
        reasons(&v),
        [
            Some((Reason::Sessions, at(100))),
            Some((Reason::Sessions, at(200))),
            None,
            None
        ]
    );
}

#[test]
fn the_new_keys_are_checked_where_they_are() {
    let bad = |t: &str| from_text(t).expect_err("refused").to_string();
    assert!(bad("[[rule]]\nname = \"r\"\nhours = \"Mon-Fri 8-18\"\n").contains("HH:MM"));
    assert!(
        bad("[[rule]]\nname = \"r\"\nhours = \"09:00-17:00\"\ntimezone = \"Nowhere/X\"\n")
            .contains("time zone")
    );
    assert!(bad("[[rule]]\nname = \"r\"\nallowance = { }\n").contains("day, week"));
    assert!(
        bad("[[rule]]\nname = \"r\"\nallowance = { day = \"1h\", counts = \"some\" }\n")
            .contains("any, active")
    );
    assert!(
        bad("[[rule]]\nname = \"r\"\nallowance = { day = \"1h\", reset = \"25:00\" }\n")
            .contains("HH:MM")
    );
    assert!(bad("[[rule]]\nname = \"r\"\nallowance = { daily = \"1h\" }\n").contains("daily"));
    assert!(bad("[[rule]]\nname = \"r\"\nmax_sessions = 0\n").contains("1 to 10000"));
    assert!(
        bad("[[rule]]\nname = \"r\"\nidle = \"1h\"\nsessions_go = \"oldest\"\n")
            .contains("max_sessions")
    );
    assert!(
        bad("[[rule]]\nname = \"r\"\nmax_age = \"1h\"\naction = \"disconnect\"\n")
            .contains("hours or max_sessions")
    );
    from_text(
        "[[rule]]\nname = \"r\"\nhours = [\"Mon-Fri 08:00-18:00\", \"Sat 09:00-12:00\"]\n\
         timezone = \"Europe/Berlin\"\naction = \"disconnect\"\nmax_sessions = 2\n\
         allowance = { week = \"10h\", counts = \"active\", week_starts = \"Sun\" }\n",
    )
    .expect("a policy of every new key");
}
