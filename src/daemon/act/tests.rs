//! What logoffd does at a deadline, against a fake backend that counts its listings
//! (issue 28): one listing per deadline, on the backend that ends the session; the real
//! thing is proven by the logoffd tests on real hosts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::backend::{Flavor, Signalled, Warned, kernel_rule};
use crate::deadline::Deadline;
use crate::model::{Activity, Login, Origin, ProcessInfo, SessionId};
use crate::policy::from_text;
use crate::system::users::Caller;

/// A host with one idle session whose processes obey SIGTERM; it counts its listings and
/// its SIGTERMs in counters shared by every backend opened on it.
struct Fake {
    session: Session,
    lists: Arc<AtomicUsize>,
    terminated: Arc<AtomicUsize>,
    gone: bool,
}

impl Backend for Fake {
    fn about(&self) -> (Flavor, String) {
        (Flavor::Procfs, "fake".into())
    }
    fn list(&mut self) -> Result<Vec<Session>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(vec![self.session.clone()])
    }
    fn current(&mut self) -> Result<Option<crate::model::SessionId>> {
        Ok(None)
    }
    fn caller(&mut self) -> Result<Caller> {
        Ok(Caller {
            uid: Uid::from_raw(0),
            name: "root".into(),
            is_root: true,
        })
    }
    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        kernel_rule(session, caller)
    }
    fn warn(&mut self, _: &Session, _: &str) -> Result<Warned> {
        Ok(Warned::default())
    }
    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.terminated.fetch_add(sessions.len(), Ordering::SeqCst);
        self.gone = true;
        sessions
            .iter()
            .map(|_| {
                Ok(Signalled {
                    processes: Some(1),
                    ..Signalled::default()
                })
            })
            .collect()
    }
    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        sessions.iter().map(|_| Ok(Signalled::default())).collect()
    }
    fn remaining(&mut self, sessions: &[&Session], _: Deadline) -> Vec<Result<Vec<ProcessInfo>>> {
        let left = if self.gone {
            Vec::new()
        } else {
            vec![ProcessInfo {
                pid: crate::model::Pid::from_raw(900),
                command: "sh".into(),
            }]
        };
        sessions.iter().map(|_| Ok(left.clone())).collect()
    }
    fn finish(&mut self, _: &Session) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// bob's ssh session, idle for an hour at `now`.
fn idle_bob(now: jiff::Timestamp) -> Session {
    let hour_ago = now - jiff::SignedDuration::from_hours(1);
    Session {
        id: SessionId::new("7"),
        uid: Some(Uid::from_raw(1000)),
        user: "bob".into(),
        tty: Some("pts/1".into()),
        state: "active".into(),
        logon_time: Some(hour_ago),
        activity: Activity::typed_at(Some(hour_ago)),
        login: Login::Logind(Origin::Ssh),
        ..Session::default()
    }
}

/// What the backends opened on the fake host count, all together.
#[derive(Default)]
struct Counts {
    opened: Arc<AtomicUsize>,
    lists: Arc<AtomicUsize>,
    terminated: Arc<AtomicUsize>,
}

impl Counts {
    fn backend(&self, session: &Session) -> Fake {
        Fake {
            session: session.clone(),
            lists: Arc::clone(&self.lists),
            terminated: Arc::clone(&self.terminated),
            gone: false,
        }
    }

    /// Opens a backend on the host for each deadline, as logoffd does.
    fn opener(&self, session: &Session) -> Opener {
        let host = Counts {
            opened: Arc::clone(&self.opened),
            lists: Arc::clone(&self.lists),
            terminated: Arc::clone(&self.terminated),
        };
        let session = session.clone();
        Box::new(move || {
            host.opened.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(host.backend(&session)) as Box<dyn Backend>)
        })
    }

    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// One pass over `session` at `now`, its decisions carried out with backends of `host` (the
/// pass's own listing is another host's: not counted). The tracking after, and what the
/// actor counted.
fn pass(
    policy: &Policy,
    memory: &Memory,
    clock: &super::super::clock::Steady,
    now: crate::time::Now,
    session: &Session,
    host: &Counts,
) -> (planner::Step, Tracking, Counters) {
    let step = planner::step(
        policy,
        std::slice::from_ref(session),
        memory,
        &Tracking::new(),
        now,
    );
    let mut lister = Counts::default().backend(session);
    let mut actor = Actor::with(
        host.opener(session),
        AuditLog::nowhere(),
        Log::stderr(),
        Counters::default(),
    );
    let at = Situation {
        policy,
        memory,
        now,
        clock,
    };
    let tracking = actor.carry_out(
        &mut lister,
        std::slice::from_ref(session),
        &at,
        step.tracking.clone(),
        step.decisions.clone(),
    );
    let counted = actor.tally.get_mut().clone();
    (step, tracking, counted)
}

#[test]
fn a_deadline_lists_once_on_the_backend_that_ends_the_session() {
    let policy =
        from_text("[[rule]]\nname = \"idle\"\nmatch = { users = [\"bob\"] }\nidle = \"10m\"\n")
            .expect("policy");
    let clock = super::super::clock::Steady::start();
    let now = crate::time::Now {
        at: clock.peek(),
        offset: jiff::SignedDuration::ZERO,
    };
    let session = idle_bob(now.at);
    let host = Counts::default();
    let (step, tracking, counted) = pass(&policy, &Memory::default(), &clock, now, &session, &host);
    assert!(
        matches!(step.decisions[..], [Decision::LogOff { .. }]),
        "{:?}",
        step.decisions
    );
    assert_eq!(Counts::get(&host.opened), 1, "one backend per deadline");
    assert_eq!(Counts::get(&host.lists), 1, "one listing per deadline");
    assert_eq!(Counts::get(&host.terminated), 1, "the session was ended");
    assert!(tracking.is_empty(), "logged off: forgotten");
    assert_ne!(counted, Counters::default(), "the logoff was counted");
}

/// Regression (hostile read of issue 28's fixes): a session begun with its user's allowance
/// used up was to get no lead, but the deadline's own look found it tracked, gave it the
/// lead after all and called its logoff off ("activity was seen"). It is logged off.
#[test]
fn a_session_begun_with_the_allowance_used_up_is_logged_off_at_its_deadline() {
    use crate::policy::allowance::Used;
    use crate::policy::eval::Usage;
    let policy = from_text(
        "[[rule]]\nname = \"lab\"\nmatch = { users = [\"bob\"] }\ntimezone = \"UTC\"\n\
         allowance = { day = \"1h\" }\nwarn = [\"10m\", \"1m\"]\n",
    )
    .expect("policy");
    let clock = super::super::clock::Steady::start();
    let now = crate::time::Now {
        at: clock.peek(),
        offset: jiff::SignedDuration::ZERO,
    };
    let mut session = idle_bob(now.at);
    session.logon_time = Some(now.at - jiff::SignedDuration::from_secs(5));
    let rule = policy
        .rule(policy.rule_named("lab").expect("rule"))
        .expect("rule");
    let periods = rule.allowance.as_ref().expect("allowance").periods(now.at);
    let mut memory = Memory::default();
    memory.set_usage_for_tests(
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
        now.at,
    );
    let host = Counts::default();
    pass(&policy, &memory, &clock, now, &session, &host);
    assert_eq!(Counts::get(&host.terminated), 1, "logged off at once");
}
