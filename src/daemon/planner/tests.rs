//! Every verdict of the planner at a fixed moment: what the root tests of the daemon used to
//! show by sleeping.

use super::*;
use crate::model::{SessionId, Uid};
use crate::policy::from_text;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

const MIN: i64 = 60;

fn bob(idle_since: i64) -> Session {
    Session {
        id: SessionId::new("7"),
        uid: Some(Uid::from_raw(1000)),
        user: "bob".into(),
        tty: Some("pts/1".into()),
        state: "active".into(),
        logon_time: Some(at(0)),
        activity: crate::model::Activity::typed_at(Some(at(idle_since))),
        login: crate::model::Login::Logind(crate::model::Origin::Ssh),
        ..Session::default()
    }
}

fn policy(extra: &str) -> Policy {
    from_text(&format!(
        "{extra}\n[[rule]]\nname = \"idle\"\nmatch = {{ users = [\"bob\"] }}\nidle = \"10m\"\n\
         warn = [\"5m\", \"2m\"]\n"
    ))
    .expect("policy")
}

fn run(p: &Policy, s: &Session, last: &Tracking, now: Timestamp) -> Step {
    step(p, std::slice::from_ref(s), &Memory::default(), last, now)
}

fn kinds(step: &Step) -> Vec<&'static str> {
    step.decisions
        .iter()
        .map(|a| match a {
            Decision::Warn { .. } => "warn",
            Decision::Cancel { .. } => "cancel",
            Decision::LogOff { .. } => "logoff",
            Decision::WouldLogOff { .. } => "would-logoff",
        })
        .collect()
}

#[test]
fn before_its_first_warning_nothing_is_done_and_the_next_look_is_the_warning() {
    let p = policy("");
    let s = run(&p, &bob(0), &Tracking::new(), at(4 * MIN));
    assert!(s.decisions.is_empty(), "{:?}", s.decisions);
    assert_eq!(s.wake, at(5 * MIN));
    let published = s.published.values().next().expect("published");
    assert_eq!(published.logoff_at, at(10 * MIN));
}

#[test]
fn warned_at_each_lead_time_then_logged_off_at_the_deadline() {
    let p = policy("");
    let first = run(&p, &bob(0), &Tracking::new(), at(5 * MIN));
    assert_eq!(kinds(&first), ["warn"]);
    let Decision::Warn { notice, .. } = &first.decisions[0] else {
        panic!("a warning");
    };
    assert_eq!(
        (notice.acts_at, notice.delivery),
        (at(10 * MIN), Delivery::ToUsers)
    );
    // A warning is out on an idle limit: looked at again soon, for activity.
    assert_eq!(first.wake, at(5 * MIN) + jiff::SignedDuration::from_secs(5));
    let quiet = run(&p, &bob(0), &first.tracking, at(6 * MIN));
    assert!(
        quiet.decisions.is_empty(),
        "warned once: {:?}",
        quiet.decisions
    );
    let second = run(&p, &bob(0), &quiet.tracking, at(8 * MIN));
    assert_eq!(kinds(&second), ["warn"]);
    let end = run(&p, &bob(0), &second.tracking, at(10 * MIN));
    assert_eq!(kinds(&end), ["logoff"]);
}

#[test]
fn activity_during_the_warning_calls_the_logoff_off_and_says_so() {
    let p = policy("");
    let warned = run(&p, &bob(0), &Tracking::new(), at(5 * MIN));
    // The user typed at 6 min: idle since then; the deadline moves to 16 min.
    let back = run(&p, &bob(6 * MIN), &warned.tracking, at(6 * MIN));
    assert_eq!(kinds(&back), ["cancel"]);
    let Decision::Cancel { why, .. } = &back.decisions[0] else {
        panic!("a cancellation");
    };
    assert!(why.contains("activity"), "{why}");
    // Past the old deadline: nothing happens.
    let later = run(&p, &bob(6 * MIN), &back.tracking, at(10 * MIN));
    assert!(later.decisions.is_empty(), "{:?}", later.decisions);
}

const EXEMPT_BOB: &str = r#"
[[rule]]
name = "idle"
match = { users = ["bob"] }
exempt = { users = ["bob"] }
idle = "10m"
warn = ["5m"]
"#;

#[test]
fn an_exempt_session_is_left_alone_and_a_warned_one_is_told() {
    let exempt = from_text(EXEMPT_BOB).expect("policy");
    let s = run(&exempt, &bob(0), &Tracking::new(), at(30 * MIN));
    assert!(s.decisions.is_empty() && s.tracking.is_empty(), "{s:?}");
    assert!(matches!(&s.verdicts[0], Verdict::Exempt { .. }));
    // Warned under a policy that did not exempt bob, then the policy is read again.
    let warned = run(&policy(""), &bob(0), &Tracking::new(), at(5 * MIN));
    let reloaded = carry_over(warned.tracking, &exempt);
    let s = run(&exempt, &bob(0), &reloaded, at(6 * MIN));
    assert_eq!(kinds(&s), ["cancel"]);
    let Decision::Cancel { why, .. } = &s.decisions[0] else {
        panic!("a cancellation");
    };
    assert!(why.contains("exempt"), "{why}");
}

/// Regression (issue 17, item 5): a limit already past when a session was first seen (a
/// start, a reload, a fact that changed) logged it off with no warning. The warnings are a
/// promise: it is warned now, and logged off the shortest lead time later.
#[test]
fn a_deadline_past_on_first_sight_warns_now_and_acts_the_shortest_lead_later() {
    let p = policy("");
    let first = run(&p, &bob(0), &Tracking::new(), at(60 * MIN));
    assert_eq!(kinds(&first), ["warn"]);
    let Decision::Warn { notice, .. } = &first.decisions[0] else {
        panic!("a warning");
    };
    assert_eq!(notice.acts_at, at(62 * MIN));
    let published = first.published.values().next().expect("published");
    assert_eq!(published.logoff_at, at(62 * MIN));
    let not_yet = run(&p, &bob(0), &first.tracking, at(61 * MIN));
    assert!(not_yet.decisions.is_empty(), "{:?}", not_yet.decisions);
    let end = run(&p, &bob(0), &not_yet.tracking, at(62 * MIN));
    assert_eq!(kinds(&end), ["logoff"]);
    // A rule that warns nobody promised nothing.
    let silent =
        from_text("[[rule]]\nname = \"r\"\nmatch = { users = [\"bob\"] }\nidle = \"10m\"\n")
            .expect("policy");
    assert_eq!(
        kinds(&run(&silent, &bob(0), &Tracking::new(), at(60 * MIN))),
        ["logoff"]
    );
}

#[test]
fn a_restart_keeps_the_disconnected_clock() {
    let p = from_text(
        "[[rule]]\nname = \"gone\"\nmatch = { users = [\"bob\"] }\ndisconnected = \"30m\"\n",
    )
    .expect("policy");
    let mut gone = bob(0);
    gone.state = "disconnected".into();
    gone.tty = None;
    let mut memory = Memory::default();
    memory.observe(std::slice::from_mut(&mut gone), at(0));
    // What a restarted daemon loads is what the stopped one saved.
    let restarted: Memory =
        serde_json::from_slice(&serde_json::to_vec(&memory).expect("saved")).expect("loaded");
    let s = step(
        &p,
        std::slice::from_ref(&gone),
        &restarted,
        &Tracking::new(),
        at(20 * MIN),
    );
    assert!(s.decisions.is_empty());
    let published = s.published.values().next().expect("published");
    assert_eq!(published.logoff_at, at(30 * MIN));
    let s = step(
        &p,
        std::slice::from_ref(&gone),
        &restarted,
        &s.tracking,
        at(30 * MIN),
    );
    assert_eq!(kinds(&s), ["logoff"]);
    // A daemon that forgot would start the clock again.
    let s = step(
        &p,
        &[gone],
        &Memory::default(),
        &Tracking::new(),
        at(30 * MIN),
    );
    assert!(s.decisions.is_empty());
}

#[test]
fn a_reload_keeps_the_warnings_given_under_the_same_rule() {
    let p = policy("");
    let warned = run(&p, &bob(0), &Tracking::new(), at(5 * MIN));
    // The same rule, now second in the file.
    let again =
        policy("[[rule]]\nname = \"other\"\nmatch = { users = [\"carol\"] }\nidle = \"1h\"");
    let carried = carry_over(warned.tracking, &again);
    let s = run(&again, &bob(0), &carried, at(6 * MIN));
    assert!(s.decisions.is_empty(), "{:?}", s.decisions);
    let s = run(&again, &bob(0), &s.tracking, at(10 * MIN));
    assert_eq!(kinds(&s), ["logoff"]);
}

#[test]
fn dry_run_and_warn_only_touch_nothing_and_say_so_once() {
    let dry = policy("mode = \"dry-run\"");
    let w = run(&dry, &bob(0), &Tracking::new(), at(5 * MIN));
    assert!(matches!(
        &w.decisions[..],
        [Decision::Warn { notice, .. }] if notice.delivery == Delivery::LogOnly
    ));
    let end = run(&dry, &bob(0), &w.tracking, at(10 * MIN));
    assert_eq!(kinds(&end), ["would-logoff"]);
    let after = run(&dry, &bob(0), &end.tracking, at(11 * MIN));
    assert!(
        after.decisions.is_empty(),
        "said once: {:?}",
        after.decisions
    );
    let only = policy("mode = \"warn-only\"");
    let w = run(&only, &bob(0), &Tracking::new(), at(5 * MIN));
    assert!(matches!(
        &w.decisions[..],
        [Decision::Warn { notice, .. }] if notice.delivery == Delivery::ToUsers
    ));
    assert_eq!(
        kinds(&run(&only, &bob(0), &w.tracking, at(10 * MIN))),
        ["would-logoff"]
    );
}

#[test]
fn a_session_gone_is_forgotten() {
    let p = policy("");
    let warned = run(&p, &bob(0), &Tracking::new(), at(5 * MIN));
    let s = step(&p, &[], &Memory::default(), &warned.tracking, at(6 * MIN));
    assert!(s.tracking.is_empty() && s.decisions.is_empty());
    assert_eq!(s.wake, at(6 * MIN) + jiff::SignedDuration::from_secs(60));
}

/// Issue 26: a session above `max_sessions` is warned when it is first seen so, and logged
/// off the rule's shortest lead later (the warning's promise), not at once; the sessions
/// within the cap are untouched.
#[test]
fn a_session_above_the_cap_is_warned_then_logged_off_a_lead_later() {
    let p = from_text(
        "[[rule]]\nname = \"cap\"\nmatch = { users = [\"bob\"] }\nmax_sessions = 1\n\
         warn = [\"30s\"]\n",
    )
    .expect("policy");
    let mut newer = bob(0);
    newer.id = SessionId::new("8");
    newer.logon_time = Some(at(MIN));
    let both = [bob(0), newer];
    let first = step(&p, &both, &Memory::default(), &Tracking::new(), at(2 * MIN));
    assert_eq!(kinds(&first), ["warn"]);
    assert!(matches!(&first.decisions[0], Decision::Warn { key, .. } if key.id().as_str() == "8"));
    let soon = step(
        &p,
        &both,
        &Memory::default(),
        &first.tracking,
        at(2 * MIN + 10),
    );
    assert!(soon.decisions.is_empty(), "{:?}", soon.decisions);
    let due = step(
        &p,
        &both,
        &Memory::default(),
        &soon.tracking,
        at(2 * MIN + 30),
    );
    assert_eq!(kinds(&due), ["logoff"]);
    // The older one logs off: the newer is within the cap again, and its warning is off.
    let alone = step(
        &p,
        &both[1..],
        &Memory::default(),
        &first.tracking,
        at(2 * MIN + 10),
    );
    assert_eq!(kinds(&alone), ["cancel"]);
}

/// Issue 26: an allowance that counts active time only moves its end later while its user
/// is idle; within the rule's longest lead, the warning given stands (no "off" notice every
/// pass), and the end is never sooner than the warning promised.
#[test]
fn an_allowance_s_end_moving_a_little_later_keeps_its_warning() {
    use crate::policy::allowance::Used;
    use crate::policy::eval::Usage;
    let p = from_text(
        "[[rule]]\nname = \"lab\"\nmatch = { users = [\"bob\"] }\ntimezone = \"UTC\"\n\
         allowance = { day = \"1h\", counts = \"active\" }\nwarn = [\"5m\"]\n",
    )
    .expect("policy");
    let rule = p.rule(p.rule_named("lab").expect("rule")).expect("rule");
    let periods = rule.allowance.as_ref().expect("allowance").periods(at(0));
    let with_used = |secs: u64| {
        let mut m = Memory::default();
        m.set_usage_for_tests(
            "lab",
            1000,
            Usage {
                used: Used {
                    day: Duration::from_secs(secs),
                    week: Duration::from_secs(secs),
                },
                periods,
                counting: true,
            },
            at(0),
        );
        m
    };
    let s = bob(0);
    // 56 of 60 minutes used at 0: ends at 4m, warned now.
    let first = step(
        &p,
        std::slice::from_ref(&s),
        &with_used(56 * 60),
        &Tracking::new(),
        at(0),
    );
    assert_eq!(kinds(&first), ["warn"]);
    // A minute later nothing more was used (idle): the end is a minute later; no notice.
    let idle = step(
        &p,
        std::slice::from_ref(&s),
        &with_used(56 * 60),
        &first.tracking,
        at(MIN),
    );
    assert!(idle.decisions.is_empty(), "{:?}", idle.decisions);
    // A new day (nothing used): far later; the warning is off.
    let renewed = step(
        &p,
        std::slice::from_ref(&s),
        &Memory::default(),
        &idle.tracking,
        at(2 * MIN),
    );
    assert_eq!(kinds(&renewed), ["cancel"]);
}

/// Regression (hostile read of issue 26): once a user's allowance was used up, every new
/// login got the warnings' lead again (48 logins an hour, 75 s each). A session begun with
/// nothing left is told and logged off now; one logoffd finds already running when it
/// starts (older than the last passes) keeps its lead.
#[test]
fn a_session_begun_with_the_allowance_used_up_gets_no_lead() {
    use crate::policy::allowance::Used;
    use crate::policy::eval::Usage;
    let p = from_text(
        "[[rule]]\nname = \"lab\"\nmatch = { users = [\"bob\"] }\ntimezone = \"UTC\"\n\
         allowance = { day = \"1h\" }\nwarn = [\"10m\", \"1m\"]\n",
    )
    .expect("policy");
    let rule = p.rule(p.rule_named("lab").expect("rule")).expect("rule");
    let periods = rule.allowance.as_ref().expect("allowance").periods(at(0));
    let mut used_up = Memory::default();
    used_up.set_usage_for_tests(
        "lab",
        1000,
        Usage {
            used: Used {
                day: Duration::from_secs(3600),
                week: Duration::from_secs(3600),
            },
            periods,
            counting: false,
        },
        at(0),
    );
    let new_login = bob(2 * MIN - 5);
    let now = step(
        &p,
        std::slice::from_ref(&new_login),
        &used_up,
        &Tracking::new(),
        at(2 * MIN),
    );
    assert_eq!(kinds(&now), ["warn", "logoff"]);
    let running = bob(0);
    let later = step(
        &p,
        std::slice::from_ref(&running),
        &used_up,
        &Tracking::new(),
        at(10 * MIN),
    );
    assert_eq!(kinds(&later), ["warn"], "found running: its lead");
}

/// Regression (issue 26, first run): a session outside its hours was under a limit acting
/// "now", which moved every pass: warned, called off ("activity was seen"), warned again.
/// It is outside since a moment that stays put: warned once, logged off a lead later.
#[test]
fn a_session_outside_its_hours_is_warned_once_then_logged_off() {
    let p = from_text(
        "[[rule]]\nname = \"day\"\nmatch = { users = [\"bob\"] }\nhours = \"08:00-09:00\"\n\
         timezone = \"UTC\"\nwarn = [\"8s\"]\n",
    )
    .expect("policy");
    // at(0) is 08:00 UTC: at 10:00 the window has ended.
    let s = bob(0);
    let t = |secs: i64| at(2 * 60 * MIN + secs);
    let first = run(&p, &s, &Tracking::new(), t(0));
    assert_eq!(kinds(&first), ["warn"]);
    let next = run(&p, &s, &first.tracking, t(2));
    assert!(next.decisions.is_empty(), "{:?}", next.decisions);
    let due = run(&p, &s, &next.tracking, t(8));
    assert_eq!(kinds(&due), ["logoff"]);
}
