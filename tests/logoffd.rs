//! logoffd on this host with the procfs backend: real sessions (audit sessions with real
//! ptys), the daemon started by the test with a policy in a temporary directory, limits in
//! seconds. Each policy matches only the test's own users: the daemon sees every session of
//! the machine. Needs root.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures::TempDir;
use common::session::{SessionSpec, TestSession};
use common::{TestUser, logoff_as, require, require_root_or_skip, text, wait_for};

/// logoffd running with a policy; stopped (SIGTERM) when dropped.
struct Daemon {
    child: Child,
    dir: TempDir,
}

impl Daemon {
    fn start(tag: &str, policy: &str) -> Daemon {
        let dir = TempDir::new(tag);
        let path = dir.path("policy.toml");
        std::fs::write(&path, policy).expect("policy");
        common::set_mode(&path, 0o644);
        let log = std::fs::File::create(dir.path("log")).expect("log");
        let child = Command::new(common::logoffd_bin())
            .arg("--policy")
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path("state"))
            .args(["--backend", "procfs"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start logoffd");
        let d = Daemon { child, dir };
        assert!(d.logs("started:"), "logoffd did not start: {}", d.log());
        d
    }

    fn log(&self) -> String {
        self.dir.read("log")
    }

    /// Whether the log comes to say `text` within 10 s. The daemon logs a logoff once it has
    /// verified and recorded it, which is after the session's processes are seen gone.
    fn logs(&self, text: &str) -> bool {
        wait_for(Duration::from_secs(10), || self.log().contains(text))
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path("state")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if common::wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A policy for the test's users only, with a short scan interval.
fn policy(users: &[&TestUser], rule: &str) -> String {
    let names: Vec<String> = users.iter().map(|u| format!("\"{}\"", u.name)).collect();
    format!(
        "scan_interval = \"2s\"\n[[rule]]\nname = \"test\"\nmatch = {{ users = [{}] }}\n\
         timeout = \"2s\"\n{rule}\n",
        names.join(", ")
    )
}

/// A login with a pty whose shell reads lines from its terminal (what is typed is input it
/// reads), its screen recorded in `transcript`.
fn pty_login(user: &TestUser, transcript: &std::path::Path) -> TestSession {
    let s = TestSession::start(
        SessionSpec {
            user: Some(user),
            pty: true,
            input: true,
            transcript: Some(transcript),
            ..Default::default()
        },
        "echo READY; while read line; do echo \"got $line\"; done",
    );
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(transcript).is_ok_and(|t| t.contains("READY"))
    }));
    s
}

fn screen(transcript: &std::path::Path) -> String {
    std::fs::read_to_string(transcript).unwrap_or_default()
}

fn root(test: &str) -> bool {
    require_root_or_skip(test)
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_idle_session_is_warned_on_its_terminal_and_logged_off_at_its_limit() {
    if !root("logoffd_idle") {
        return;
    }
    let user = TestUser::create("dil");
    let dir = TempDir::new("dil");
    let started = Instant::now();
    let s = pty_login(&user, &dir.path("screen"));
    let d = Daemon::start("dil", &policy(&[&user], "idle = \"30s\"\nwarn = [\"20s\"]"));
    // `logoff --list` shows the deadline the daemon has it under.
    let mut row = serde_json::Value::Null;
    let listed = wait_for(Duration::from_secs(10), || {
        let state = d.state_dir();
        let out = logoff_as(
            None,
            &["--list", "--json"],
            &[("LOGOFF_STATE_DIR", state.to_str().expect("path"))],
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        row = rows
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["id"] == s.id.to_string().as_str())
                    .cloned()
            })
            .unwrap_or_default();
        row["time_limit"]["rule"] == "test"
    });
    assert!(listed, "no deadline in logoff --list: {row:#}");
    assert_eq!(row["time_limit"]["reason"], "idle");

    let warned = wait_for(Duration::from_secs(30), || {
        screen(&dir.path("screen")).contains("has been idle for 30s")
    });
    assert!(
        warned,
        "no warning: {}\nlog: {}",
        screen(&dir.path("screen")),
        d.log()
    );
    assert!(screen(&dir.path("screen")).contains("press a key to stay"));
    let gone = wait_for(Duration::from_secs(40), || s.is_gone());
    let took = started.elapsed();
    assert!(gone, "still there after its limit; log: {}", d.log());
    // The terminal's access time moves in 8-second steps: not before 22 s of idleness.
    assert!(took >= Duration::from_secs(22), "logged off after {took:?}");
    assert!(
        d.logs(&format!("logged off session {}", s.id)),
        "{}",
        d.log()
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn typing_during_the_warning_cancels_the_logoff_and_says_so() {
    if !root("logoffd_typing") {
        return;
    }
    let user = TestUser::create("dty");
    let dir = TempDir::new("dty");
    let mut s = pty_login(&user, &dir.path("screen"));
    let d = Daemon::start("dty", &policy(&[&user], "idle = \"30s\"\nwarn = [\"20s\"]"));
    let warned = wait_for(Duration::from_secs(30), || {
        screen(&dir.path("screen")).contains("has been idle for 30s")
    });
    assert!(warned, "no warning; log: {}", d.log());
    s.type_line("still here");
    let cancelled = wait_for(Duration::from_secs(15), || {
        screen(&dir.path("screen")).contains("will not be logged off now")
    });
    assert!(
        cancelled,
        "{}\nlog: {}",
        screen(&dir.path("screen")),
        d.log()
    );
    assert!(screen(&dir.path("screen")).contains("got still here"));
    // That it is then not logged off at the deadline it had before is the planner's
    // (daemon::plan's unit test `activity_during_the_warning_calls_the_logoff_off_and_says_so`): no
    // sleeping here to show it.
    assert!(!s.is_gone(), "logged off though active; log: {}", d.log());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_disconnected_session_is_logged_off_after_its_limit() {
    if !root("logoffd_disconnected") {
        return;
    }
    let user = TestUser::create("ddc");
    // A login that leaves a nohup job behind and goes: its terminal is gone. It goes once the
    // job is `sleep` (nohup has set SIGHUP aside), not after a guessed second: before that,
    // the hangup of its exit would end the job too.
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            pty: true,
            ..Default::default()
        },
        "nohup sleep 1000 >/dev/null 2>&1 & job=$!; \
         for _ in $(seq 200); do [ \"$(cat /proc/$job/comm 2>/dev/null)\" = sleep ] && break; \
         sleep 0.05; done; exit 0",
    );
    let left = wait_for(Duration::from_secs(10), || {
        let out = logoff_as(None, &["--list", "--json", "--backend", "procfs"], &[]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["id"] == s.id.to_string().as_str() && r["state"] == "disconnected")
        })
    });
    assert!(left, "the session never showed as disconnected");
    let d = Daemon::start("ddc", &policy(&[&user], "disconnected = \"8s\""));
    let since = Instant::now();
    assert!(
        wait_for(Duration::from_secs(25), || s.is_gone()),
        "still there; log: {}",
        d.log()
    );
    assert!(since.elapsed() >= Duration::from_secs(7));
    assert!(d.logs("disconnected for 8s"), "{}", d.log());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn exempt_users_and_the_console_are_left_alone() {
    if !root("logoffd_exempt") {
        return;
    }
    let Some(vt) = common::free_vt() else {
        require(
            "logoffd_exempt",
            Err("no virtual terminal to put a console session on".into()),
        );
        return;
    };
    let exempt = TestUser::create("dex");
    let console = TestUser::create("dco");
    let other = TestUser::create("dot");
    let dir = TempDir::new("dex");
    let a = pty_login(&exempt, &dir.path("a"));
    let b = pty_login(&other, &dir.path("b"));
    let c = TestSession::start(
        SessionSpec {
            login_uid: Some(console.uid),
            ..Default::default()
        },
        &format!("setsid sh -c 'exec sleep 1000 < /dev/{vt}' & wait"),
    );
    c.wait_members(2);
    let rule = format!(
        "idle = \"10s\"\nexempt = {{ users = [\"{}\"] }}",
        exempt.name
    );
    let d = Daemon::start("dex", &policy(&[&exempt, &console, &other], &rule));
    // The third user's session shows the daemon at work meanwhile.
    assert!(
        wait_for(Duration::from_secs(40), || b.is_gone()),
        "the daemon logged nobody off; log: {}",
        d.log()
    );
    // Idle as long as b, and still there: exempt (the planner's unit tests show it does not
    // come later either).
    assert!(
        !a.is_gone(),
        "the exempt user was logged off; log: {}",
        d.log()
    );
    assert!(!c.is_gone(), "the console was logged off; log: {}", d.log());
    // What --check says of them, with the same policy.
    let out = Command::new(common::logoffd_bin())
        .arg("--check")
        .arg("--policy")
        .arg(d.dir.path("policy.toml"))
        .args(["--backend", "procfs"])
        .output()
        .expect("--check");
    let said = text(&out.stdout);
    assert!(said.contains("is exempt"), "{said}");
    assert!(said.contains("the console"), "{said}");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn max_age_ends_a_busy_session() {
    if !root("logoffd_max_age") {
        return;
    }
    let user = TestUser::create("dma");
    let dir = TempDir::new("dma");
    let started = Instant::now();
    let mut s = pty_login(&user, &dir.path("screen"));
    let d = Daemon::start(
        "dma",
        &policy(&[&user], "idle = \"40s\"\nmax_age = \"15s\""),
    );
    // Busy: typed at all the time, never idle.
    let mut n = 0;
    while !s.is_gone() && started.elapsed() < Duration::from_secs(40) {
        n += 1;
        s.type_line(&format!("work {n}"));
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(s.is_gone(), "still there; log: {}", d.log());
    assert!(started.elapsed() >= Duration::from_secs(14));
    assert!(d.logs("logged on for 15s"), "{}", d.log());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn dry_run_touches_nothing_and_logs_every_would_be_action() {
    if !root("logoffd_dry_run") {
        return;
    }
    let user = TestUser::create("ddr");
    let dir = TempDir::new("ddr");
    let s = pty_login(&user, &dir.path("screen"));
    let members = s.members();
    let d = Daemon::start(
        "ddr",
        &format!(
            "mode = \"dry-run\"\n{}",
            policy(&[&user], "idle = \"12s\"\nwarn = [\"6s\"]")
        ),
    );
    let logged = wait_for(Duration::from_secs(40), || {
        d.log().contains("dry-run: would log off")
    });
    assert!(logged, "{}", d.log());
    assert!(d.log().contains("dry-run: would warn"), "{}", d.log());
    assert_eq!(s.members(), members, "processes changed");
    assert!(
        !screen(&dir.path("screen")).contains("logoff:"),
        "a warning was written"
    );
}

/// Regression (issue 17, item 5): a lone `}` in a rule's message passed `--check`, then
/// panicked logoffd at its first warning (and again after every restart). `--check` and the
/// daemon parse the message with one function: refused, with the line and column.
#[test]
fn regression_a_lone_brace_in_a_message_is_refused_by_check_and_the_daemon() {
    let dir = TempDir::new("brace");
    let path = dir.path("policy.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = \"r\"\nidle = \"1h\"\nwarn = [\"1m\"]\nmessage = \"bye }\"\n",
    )
    .expect("policy");
    common::set_mode(&path, 0o644);
    for extra in [&["--check"][..], &[]] {
        let out = Command::new(common::logoffd_bin())
            .arg("--policy")
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path("state"))
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run logoffd");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains("line 5, column 16") && err.contains("'}' without"),
            "{extra:?}: {err}"
        );
    }
}

/// Regression (issue 17, item 5): a limit already past when logoffd first saw a session (at
/// its start, after a reload) logged the session off at once, with no warning. The rule's
/// warnings are a promise: the user is warned, and logged off the shortest lead time later.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_deadline_past_on_first_sight_is_warned_first() {
    if !root("logoffd_past") {
        return;
    }
    let user = TestUser::create("dpa");
    let dir = TempDir::new("dpa");
    let s = pty_login(&user, &dir.path("screen"));
    // Idle for an hour, as far as its terminal says.
    let touched = Command::new("touch")
        .args(["-a", "-d", "1 hour ago"])
        .arg(format!("/dev/{}", s.pty()))
        .status()
        .expect("touch");
    assert!(touched.success());
    let d = Daemon::start("dpa", &policy(&[&user], "idle = \"1m\"\nwarn = [\"8s\"]"));
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || screen(&dir.path("screen"))
            .contains("has been idle for 1m")),
        "no warning; log: {}",
        d.log()
    );
    assert!(
        !s.is_gone(),
        "logged off with the warning; log: {}",
        d.log()
    );
    assert!(
        wait_for(Duration::from_secs(20), || s.is_gone()),
        "still there; log: {}",
        d.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "logged off {:?} after the daemon started",
        started.elapsed()
    );
}

/// Regression (issue 17, item 3): the max-age clock ran from the session's oldest process,
/// which a user replaces at will (a process that forks and exits every few seconds): the
/// logon time moved on and the user was never logged off. The earliest logon time logoffd
/// has seen for the session (by boot ID and audit session ID) is kept.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_replacing_the_oldest_process_does_not_restart_the_clock() {
    if !root("logoffd_replace") {
        return;
    }
    let user = TestUser::create("drp");
    let d = Daemon::start("drp", &policy(&[&user], "max_age = \"12s\""));
    let started = Instant::now();
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        "exec perl -e 'while (1) { sleep 2; exit 0 if fork }'",
    );
    assert!(
        wait_for(Duration::from_secs(40), || s.is_gone()),
        "never logged off; log: {}",
        d.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(11),
        "gone after {:?}; log: {}",
        started.elapsed(),
        d.log()
    );
    assert!(d.logs("logged on for 12s"), "{}", d.log());
}
