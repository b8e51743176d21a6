//! The flow's logic against a recording fake backend; the real thing is proven by the
//! integration and system tests.

use super::*;
use crate::backend::{Flavor, Signalled, Warned, kernel_rule};
use crate::deadline::Deadline;
use crate::model::{Pid, ProcessInfo, Uid};
use crate::system::users::Caller;

/// A host whose sessions have processes that obey SIGTERM (`polite`), ignore it
/// (`stubborn`), or cannot be signalled at all (`unkillable`); it records every call.
#[derive(Default)]
struct Fake {
    sessions: Vec<Session>,
    caller_uid: u32,
    polite: usize,
    stubborn: usize,
    unkillable: usize,
    calls: Vec<&'static str>,
    /// How many times it was listed.
    lists: usize,
}

impl Fake {
    fn touched(&self) -> bool {
        self.calls
            .iter()
            .any(|c| matches!(*c, "terminate" | "kill" | "warn"))
    }

    fn left(&self) -> Vec<ProcessInfo> {
        (0..self.stubborn + self.unkillable)
            .map(|i| ProcessInfo {
                pid: Pid::from_raw(900 + i as i32),
                command: "x".into(),
            })
            .collect()
    }
}

impl Backend for Fake {
    fn about(&self) -> (Flavor, String) {
        (Flavor::Procfs, "fake".into())
    }
    fn list(&mut self) -> Result<Vec<Session>> {
        self.lists += 1;
        Ok(self.sessions.clone())
    }
    fn current(&mut self) -> Result<Option<SessionId>> {
        Ok(None)
    }
    fn caller(&mut self) -> Result<Caller> {
        Ok(Caller {
            uid: Uid::from_raw(self.caller_uid),
            name: "me".into(),
            is_root: self.caller_uid == 0,
        })
    }
    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        kernel_rule(session, caller)
    }
    fn warn(&mut self, _: &Session, _: &str) -> Result<Warned> {
        self.calls.push("warn");
        Ok(Warned {
            reached: vec!["pts/1".into()],
            missed: vec![],
        })
    }
    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.calls.push("terminate");
        let n = self.polite + self.stubborn;
        self.polite = 0;
        sessions
            .iter()
            .map(|_| {
                Ok(Signalled {
                    processes: Some(n),
                    ..Signalled::default()
                })
            })
            .collect()
    }
    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.calls.push("kill");
        let n = self.stubborn + self.unkillable;
        self.stubborn = 0;
        let refused: Vec<ProcessInfo> = self.left();
        sessions
            .iter()
            .map(|_| {
                Ok(Signalled {
                    processes: Some(n),
                    frozen: None,
                    refused: refused.clone(),
                })
            })
            .collect()
    }
    fn remaining(&mut self, sessions: &[&Session], _: Deadline) -> Vec<Result<Vec<ProcessInfo>>> {
        self.calls.push("remaining");
        sessions.iter().map(|_| Ok(self.left())).collect()
    }
    fn finish(&mut self, _: &Session) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// A caller who has cancelled the grace period.
struct Cancelled;

impl Control for Cancelled {
    fn begin(&self, _: Stage) -> bool {
        true
    }
    fn cancelled(&self) -> bool {
        true
    }
    fn hurry(&self) -> Option<&'static std::sync::atomic::AtomicBool> {
        None
    }
    fn ending_own_session(&self) {}
}

/// Hooks that keep what they are told.
#[derive(Default)]
struct Record {
    lines: Vec<String>,
    attempts: Vec<(String, Option<Kind>)>,
}

impl Hooks for Record {
    fn narrate(&mut self, line: &str) {
        self.lines.push(line.into());
    }
    fn problem(&mut self, line: &str) {
        self.lines.push(line.into());
    }
    fn attempted(&mut self, session: &Session, result: &Result<Effect>) {
        self.attempts.push((
            session.id.to_string(),
            result.as_ref().err().map(Error::kind),
        ));
    }
}

fn session(id: &str, uid: u32, tty: &str) -> Session {
    Session {
        id: SessionId::new(id),
        uid: Some(Uid::from_raw(uid)),
        user: format!("u{uid}"),
        tty: Some(tty.into()),
        state: "active".into(),
        ..Session::default()
    }
}

/// Runs the flow on `fake` for the session arguments `ids`.
fn run(
    fake: &mut Fake,
    ids: &[&str],
    timeout_ms: u64,
    message: Option<&str>,
) -> (Result<Vec<Outcome>>, Record) {
    let request = Request {
        sessions: ids.iter().map(ToString::to_string).collect(),
        ..Request::default()
    };
    let mut record = Record::default();
    let result = execute(
        fake,
        &request,
        None,
        &ending(timeout_ms, message),
        &Steady,
        &mut record,
    );
    (result, record)
}

/// A logoff with this timeout and message.
fn ending(timeout_ms: u64, message: Option<&str>) -> Ending<'_> {
    Ending {
        options: Options {
            timeout: Duration::from_millis(timeout_ms),
            console: ConsolePolicy::Protect,
            tick: None,
        },
        warning: Warning {
            message,
            grace: Duration::ZERO,
            by: "root@h".into(),
            action: Action::LogOff,
        },
        dry_run: false,
        action: Action::LogOff,
    }
}

#[test]
fn one_refusal_touches_nothing_and_every_target_is_recorded() {
    let mut fake = Fake {
        sessions: vec![session("7", 1000, "pts/1"), session("8", 1001, "pts/2")],
        caller_uid: 1000,
        polite: 3,
        ..Fake::default()
    };
    let (result, record) = run(&mut fake, &["7", "8"], 50, Some("going down"));
    let e = result.expect_err("refused");
    assert_eq!(e.kind(), Kind::AccessDenied);
    assert!(e.message().contains("session 8 (u1001 on pts/2)"), "{e}");
    assert!(
        !fake.touched(),
        "touched despite a refusal: {:?}",
        fake.calls
    );
    assert_eq!(
        record.attempts,
        [
            ("7".to_string(), Some(Kind::AccessDenied)),
            ("8".to_string(), Some(Kind::AccessDenied))
        ]
    );
}

#[test]
fn polite_processes_never_see_sigkill() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        polite: 3,
        ..Fake::default()
    };
    let (result, record) = run(&mut fake, &["7"], 50, None);
    let outcomes = result.expect("logged off");
    assert!(outcomes[0].result.is_ok());
    assert!(!fake.calls.contains(&"kill"), "{:?}", fake.calls);
    assert!(
        record
            .lines
            .iter()
            .any(|l| l.contains("SIGTERM to 3 processes"))
    );
    assert_eq!(record.attempts, [("7".to_string(), None)]);
}

#[test]
fn stubborn_processes_get_sigkill_after_the_timeout() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        polite: 1,
        stubborn: 2,
        ..Fake::default()
    };
    let (result, record) = run(&mut fake, &["7"], 10, None);
    let outcomes = result.expect("logged off");
    let Ok(Effect::LoggedOff(done)) = &outcomes[0].result else {
        panic!("logged off: {:?}", outcomes[0].result);
    };
    assert_eq!(done.killed, Some(2));
    assert!(done.forced(Duration::from_millis(10)));
    assert!(
        record
            .lines
            .iter()
            .any(|l| l.contains("still running after"))
    );
}

#[test]
fn zero_timeout_kills_at_once() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        polite: 2,
        ..Fake::default()
    };
    let (result, _) = run(&mut fake, &["7"], 0, None);
    assert!(result.expect("ran")[0].result.is_ok());
    assert_eq!(fake.calls.first().copied(), Some("kill"));
    assert!(!fake.calls.contains(&"terminate"));
}

#[test]
fn survivors_are_named_with_their_own_exit_status() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        unkillable: 1,
        ..Fake::default()
    };
    let (result, record) = run(&mut fake, &["7"], 0, None);
    let outcomes = result.expect("ran");
    let err = outcomes[0].result.as_ref().expect_err("survivor");
    assert_eq!(err.kind(), Kind::Survivors);
    assert!(err.message().contains("900 (x)"), "{err}");
    assert!(err.message().contains("permission denied"), "{err}");
    assert_eq!(record.attempts, [("7".to_string(), Some(Kind::Survivors))]);
}

#[test]
fn a_warning_goes_out_before_anything_is_signalled() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        polite: 1,
        ..Fake::default()
    };
    let (result, record) = run(&mut fake, &["7"], 50, Some("save your work"));
    assert!(result.is_ok());
    assert_eq!(
        fake.calls.first().copied(),
        Some("warn"),
        "{:?}",
        fake.calls
    );
    assert!(record.lines.iter().any(|l| l.contains("warned on pts/1")));
}

#[test]
fn a_cancelled_grace_period_tells_the_users_and_ends_nothing() {
    let mut fake = Fake {
        sessions: vec![session("7", 1, "pts/1")],
        polite: 1,
        ..Fake::default()
    };
    let targets = fake.sessions.clone();
    let warning = Warning {
        message: Some("bye"),
        grace: Duration::from_secs(3600),
        by: "root@h".into(),
        action: Action::LogOff,
    };
    let e = warn::warn_and_wait(
        &mut fake,
        &targets,
        &warning,
        &Cancelled,
        &mut Record::default(),
    )
    .expect_err("cancelled");
    assert_eq!(e.kind(), Kind::Cancelled);
    // Warned, then told it was cancelled; nothing else.
    assert_eq!(fake.calls, ["warn", "warn"]);
}

#[test]
fn others_need_root_and_console_needs_the_flag() {
    let mut fake = Fake::default();
    let as_user = |uid: u32, root: bool| Caller {
        uid: Uid::from_raw(uid),
        name: "me".into(),
        is_root: root,
    };
    let bob = session("7", 1001, "pts/1");
    let e = check::check(
        &mut fake,
        std::slice::from_ref(&bob),
        &as_user(1000, false),
        None,
        ConsolePolicy::Protect,
    )
    .expect_err("denied");
    assert_eq!(e.kind(), Kind::AccessDenied);
    check::check(
        &mut fake,
        &[bob],
        &as_user(0, true),
        None,
        ConsolePolicy::Protect,
    )
    .expect("root may");
    let console = session("8", 1001, "tty1");
    let e = check::check(
        &mut fake,
        std::slice::from_ref(&console),
        &as_user(0, true),
        None,
        ConsolePolicy::Protect,
    )
    .expect_err("console protected");
    assert!(e.message().contains("--console"), "{e}");
    check::check(
        &mut fake,
        std::slice::from_ref(&console),
        &as_user(0, true),
        None,
        ConsolePolicy::Allow,
    )
    .expect("with --console");
    // Your own console session you may always end.
    check::check(
        &mut fake,
        &[console],
        &as_user(1001, false),
        None,
        ConsolePolicy::Protect,
    )
    .expect("own console");
    assert!(!fake.touched());
}

#[test]
fn the_command_lists_once_and_ending_held_targets_lists_nothing() {
    let mut fake = Fake {
        sessions: vec![session("7", 1000, "pts/1"), session("8", 1000, "pts/2")],
        caller_uid: 0,
        polite: 1,
        ..Fake::default()
    };
    let (result, _) = run(&mut fake, &["7"], 50, None);
    result.expect("logged off");
    assert_eq!(fake.lists, 1);
    // logoffd's way: the session it holds, ended without a listing.
    let mut fake = Fake {
        caller_uid: 0,
        polite: 1,
        ..Fake::default()
    };
    let held = session("8", 1000, "pts/2");
    let targets = Targets::held(&mut fake, vec![held.clone()], vec![held]).expect("held");
    let mut record = Record::default();
    let outcomes =
        end(&mut fake, &targets, &ending(50, None), &Steady, &mut record).expect("ended");
    assert!(matches!(outcomes[0].result, Ok(Effect::LoggedOff(_))));
    assert_eq!(fake.lists, 0);
    assert_eq!(record.attempts, [("8".to_string(), None)]);
}

/// Regression (hostile read of issue 28's fixes): a dry run of a disconnect said a mosh
/// session would be disconnected (Ansible's check mode: changed), which the disconnect
/// itself refuses (exit status 7). The dry run says the refusal.
#[test]
fn a_dry_run_of_a_disconnect_says_what_it_would_refuse() {
    let now = crate::time::now();
    let ago = |s: i64| now - jiff::SignedDuration::from_secs(s);
    let mut mosh = session("417", 1000, "pts/1");
    mosh.state = "closing".into();
    mosh.login = crate::model::Login::Logind(crate::model::Origin::Ssh);
    mosh.activity.terminals = vec![crate::model::TerminalSeen {
        name: "pts/1".into(),
        input: Some(ago(5)),
        output: Some(ago(5)),
        made: Some(ago(100)),
        controlling: true,
        served: crate::model::Served::Program {
            pid: Pid::from_raw(4242),
            command: "mosh-server".into(),
        },
    }];
    let mut fake = Fake {
        sessions: vec![mosh],
        caller_uid: 0,
        ..Fake::default()
    };
    let request = Request {
        sessions: vec!["417".into()],
        ..Request::default()
    };
    let mut dry = ending(50, None);
    dry.action = Action::Disconnect;
    dry.warning.action = Action::Disconnect;
    dry.dry_run = true;
    let mut record = Record::default();
    let outcomes =
        execute(&mut fake, &request, None, &dry, &Steady, &mut record).expect("a dry run");
    let kind = outcomes[0].result.as_ref().err().map(Error::kind);
    assert_eq!(kind, Some(Kind::NoConnection), "{:?}", outcomes[0].result);
    assert!(!fake.touched());
}
