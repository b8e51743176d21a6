//! The procfs backend against real sessions on this host: real processes that try to escape,
//! real users, real terminals, the real utmp. Needs root (fails under CI=true without it).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A process tree that tries every way out of its session.
const ESCAPE_TREE: &str = r#"
setsid sleep 1001 &
sh -c '(setsid sleep 1002 &); exit 0' &
nohup sleep 1003 >/dev/null 2>&1 &
sh -c 'trap "" HUP TERM; while :; do sleep 1; done' &
sh -c 'trap "" HUP TERM; while :; do sleep 1004 & done' 2>/dev/null &
sleep 1005 &
wait
"#;

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn logoff_by_id_ends_every_escapee_and_spares_another_session() {
    if !require_root_or_skip("logoff_by_id_ends_every_escapee_and_spares_another_session") {
        return;
    }
    let user = TestUser::create("esc");
    let bystander = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        "sleep 1000 & setsid sleep 1000 & wait",
    );
    let bystanders = bystander.wait_members(3);
    // RLIMIT_NPROC bounds the fork loop: a bug in logoff cannot take the machine down.
    let target = TestSession::start(
        SessionSpec {
            user: Some(&user),
            nproc: Some(60),
            ..Default::default()
        },
        ESCAPE_TREE,
    );
    target.wait_members(20);
    let id = target.id.to_string();
    let out = logoff(&["--timeout", "1", "/V", &id]);
    assert_ok(&out, "logoff ID");
    assert!(
        target.is_gone(),
        "left running: {:?}\n{}",
        target.members(),
        text(&out.stdout)
    );
    assert_eq!(
        bystander.members(),
        bystanders,
        "the other session was touched"
    );
    let verbose = text(&out.stdout);
    assert!(
        verbose.contains(&format!("session {id} found")),
        "{verbose}"
    );
    assert!(verbose.contains("SIGKILL"), "{verbose}");
    assert!(verbose.contains("logged off"), "{verbose}");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_fork_bomb_does_not_outrun_the_sigkill_step() {
    if !require_root_or_skip("a_fork_bomb_does_not_outrun_the_sigkill_step") {
        return;
    }
    // SIGKILL at once, and SIGTERM first (which the bomb ignores while it keeps forking).
    // One user per bomb: RLIMIT_NPROC counts the user's processes, zombies included.
    for (i, timeout) in ["0", "300ms"].into_iter().enumerate() {
        let user = TestUser::create(&format!("bomb{i}"));
        // Every process forks in a loop, ignores the polite signals and shrugs off failed
        // forks; RLIMIT_NPROC keeps it from taking the machine down.
        let bomb = TestSession::start(
            SessionSpec {
                user: Some(&user),
                nproc: Some(60),
                ..Default::default()
            },
            r#"exec perl -e '$SIG{HUP} = $SIG{TERM} = $SIG{CHLD} = "IGNORE"; while (1) { fork }'"#,
        );
        bomb.wait_members(50);
        let out = logoff(&["--timeout", timeout, "-v", &bomb.id.to_string()]);
        assert_ok(&out, &format!("logoff fork bomb, --timeout {timeout}"));
        assert!(
            bomb.is_gone(),
            "--timeout {timeout}: left running: {:?}\n{}",
            bomb.members(),
            text(&out.stdout)
        );
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn stubborn_process_gets_sigkill_after_the_timeout() {
    if !require_root_or_skip("stubborn_process_gets_sigkill_after_the_timeout") {
        return;
    }
    let s = TestSession::start(
        SessionSpec::default(),
        r#"trap "" HUP TERM; sleep 1000 & sleep 1000 & wait; wait; wait"#,
    );
    s.wait_members(3);
    let start = Instant::now();
    let out = logoff(&["--timeout", "1", "-v", &s.id.to_string()]);
    let took = start.elapsed();
    assert_ok(&out, "logoff");
    assert!(s.is_gone(), "left running: {:?}", s.members());
    assert!(
        took >= Duration::from_secs(1),
        "SIGKILL came before the timeout ({took:?})"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let verbose = text(&out.stdout);
    assert!(verbose.contains("still running after 1s"), "{verbose}");
    assert!(verbose.contains("sent SIGKILL"), "{verbose}");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn programs_that_exit_on_sigterm_never_see_sigkill() {
    if !require_root_or_skip("programs_that_exit_on_sigterm_never_see_sigkill") {
        return;
    }
    let dir = TempDir::new("term");
    let saved = dir.path("saved");
    let script = format!(
        r#"trap 'echo saved > {}; exit 0' HUP TERM; sleep 1000 & wait"#,
        saved.display()
    );
    let s = TestSession::start(SessionSpec::default(), &script);
    s.wait_members(2);
    let out = logoff(&["-v", &s.id.to_string()]);
    assert_ok(&out, "logoff");
    assert!(s.is_gone());
    assert_eq!(
        dir.read("saved").trim(),
        "saved",
        "the TERM handler did not run"
    );
    assert!(
        !text(&out.stdout).contains("SIGKILL"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn logoff_by_terminal_name() {
    if !require_root_or_skip("logoff_by_terminal_name") {
        return;
    }
    for form in ["pts/N", "/dev/pts/N"] {
        let bystander = TestSession::start(
            SessionSpec {
                pty: true,
                ..Default::default()
            },
            "sleep 1000",
        );
        let s = TestSession::start(
            SessionSpec {
                pty: true,
                ..Default::default()
            },
            "sleep 1000 & setsid sleep 1000 & wait",
        );
        s.wait_members(4);
        bystander.wait_members(2);
        let pts = s.pty();
        let arg = form.replace("pts/N", &pts);
        let out = logoff(&["/v", &arg]);
        assert_ok(&out, &arg);
        assert!(s.is_gone(), "{arg}: left running: {:?}", s.members());
        assert!(
            !bystander.is_gone(),
            "{arg}: the other pty session was touched"
        );
        assert!(text(&out.stdout).contains(&format!("terminal {pts}")));
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn plain_logoff_inside_a_session_ends_that_session() {
    if !require_root_or_skip("plain_logoff_inside_a_session_ends_that_session") {
        return;
    }
    // logoff is the session's first process: its exit status is ours to see.
    let bin = logoff_bin().display().to_string();
    let mut s = TestSession::start(
        SessionSpec::default(),
        &format!("sleep 1000 & setsid sleep 1000 & sleep 0.3; exec {bin} --timeout 2"),
    );
    let status = s
        .wait_child(Duration::from_secs(20))
        .expect("logoff finished");
    assert!(status.success(), "plain logoff exited {status:?}");
    assert!(s.is_gone(), "left running: {:?}", s.members());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn plain_logoff_on_a_terminal_survives_its_own_hangup() {
    if !require_root_or_skip("plain_logoff_on_a_terminal_survives_its_own_hangup") {
        return;
    }
    // The realistic case: a shell on a pty runs logoff; ending the shell hangs up the
    // terminal and sends logoff SIGHUP, which must not stop it before it has verified.
    let dir = TempDir::new("selfpty");
    let out = dir.path("out");
    let bin = logoff_bin().display().to_string();
    let s = TestSession::start(
        SessionSpec {
            pty: true,
            ..Default::default()
        },
        &format!(
            "sleep 1000 & setsid sleep 1000 & sleep 0.3; {bin} -v --timeout 2 > {} 2>&1; \
             echo still-here >> {}; sleep 1000",
            out.display(),
            out.display()
        ),
    );
    assert!(
        wait_for(Duration::from_secs(20), || s.is_gone()),
        "left running: {:?}\n{}",
        s.members(),
        dir.read("out")
    );
    let written = dir.read("out");
    assert!(written.contains("logged off"), "{written}");
    assert!(
        !written.contains("still-here"),
        "the shell survived: {written}"
    );
    // (A host without journald or syslog gets a warning that the audit record could not be
    // written; that is not a failure of the logoff.)
    assert!(
        !written.contains("cannot log off"),
        "logoff reported an error: {written}"
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn another_users_session_is_refused_and_untouched() {
    if !require_root_or_skip("another_users_session_is_refused_and_untouched") {
        return;
    }
    let alice = TestUser::create("ra");
    let bob = TestUser::create("rb");
    let bobs = TestSession::start(
        SessionSpec {
            user: Some(&bob),
            ..Default::default()
        },
        "sleep 1000 & sleep 1000 & wait",
    );
    let before = bobs.wait_members(3);
    let id = bobs.id.to_string();
    let out = logoff_as(Some(&alice), &[&id], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot log off session {id} ({}", bob.name)),
        "{err}"
    );
    assert!(err.contains("access denied"), "{err}");
    assert_eq!(bobs.members(), before, "bob's session was touched");

    // Alice may log off her own session without root.
    let alices = TestSession::start(
        SessionSpec {
            user: Some(&alice),
            ..Default::default()
        },
        "sleep 1000 & setsid sleep 1000 & wait",
    );
    alices.wait_members(3);
    let out = logoff_as(Some(&alice), &[&alices.id.to_string()], &[]);
    assert_ok(&out, "own session as non-root");
    assert!(alices.is_gone());
    assert_eq!(bobs.members(), before);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn survivors_are_named_when_the_kernel_refuses() {
    if !require_root_or_skip("survivors_are_named_when_the_kernel_refuses") {
        return;
    }
    // Alice's session holds a process running as root (as after `sudo`): alice may log off
    // her session, but the kernel will not let her signal that process.
    let alice = TestUser::create("sur");
    let s = TestSession::start(
        SessionSpec {
            login_uid: Some(alice.uid),
            ..Default::default()
        },
        &format!(
            "setpriv --reuid={} --regid={} --clear-groups -- sh -c 'sleep 1000 & wait' & \
             sleep 1001 & wait",
            alice.uid, alice.gid
        ),
    );
    s.wait_members(4);
    let start = Instant::now();
    let out = logoff_as(Some(&alice), &["--timeout", "5", &s.id.to_string()], &[]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("could not end every process"), "{err}");
    assert!(err.contains("sleep 1001"), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        took < Duration::from_secs(4),
        "waited {took:?} for processes it cannot signal"
    );
    // Alice's own processes are gone; root's is still there.
    let left = s.members();
    assert!(!left.is_empty());
    for pid in left {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.contains("Uid:\t0\t"),
            "a process of alice survived: {status}"
        );
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn invalid_parameters_print_the_seed_usage_and_touch_nothing() {
    if !require_root_or_skip("invalid_parameters_print_the_seed_usage_and_touch_nothing") {
        return;
    }
    let s = TestSession::start(SessionSpec::default(), "sleep 1000 & wait");
    let before = s.wait_members(2);
    let id = s.id.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![&id, "/bogus"],
        vec![&id, "/SERVER"],
        vec![&id, "/SERVER:"],
        vec![&id, "/server:a", "/SERVER:b"],
        vec![&id, "--bogus"],
        vec![&id, "-x"],
        vec![&id, ""],
        vec![&id, "--server="],
        vec![&id, "--timeout", "soon"],
        vec!["/VM"],
    ];
    for args in cases {
        let out = logoff(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("Invalid parameter(s)\n{SEED_USAGE}")),
            "{args:?}: stderr does not begin with the seed's usage:\n{err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(s.members(), before, "{args:?} touched the session");
    }
    // /? prints the same block on standard output and succeeds.
    let out = logoff(&["/?"]);
    assert_ok(&out, "/?");
    assert_eq!(text(&out.stdout), SEED_USAGE);
    let out = logoff(&["--help"]);
    assert_ok(&out, "--help");
    assert!(text(&out.stdout).starts_with(SEED_USAGE));
    assert!(text(&out.stdout).contains("--timeout"));
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn one_unknown_session_fails_the_command_with_nothing_touched() {
    if !require_root_or_skip("one_unknown_session_fails_the_command_with_nothing_touched") {
        return;
    }
    let s = TestSession::start(SessionSpec::default(), "sleep 1000 & wait");
    let before = s.wait_members(2);
    let id = s.id.to_string();
    for bad in ["4000000000", "pts/999", "tty63"] {
        let out = logoff(&[&id, bad]);
        assert_eq!(out.status.code(), Some(3), "{bad}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("'{bad}'")), "{err}");
        assert!(
            err.contains(&format!("{id} (root")),
            "should list what exists: {err}"
        );
        assert_eq!(s.members(), before);
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn several_sessions_in_one_command() {
    if !require_root_or_skip("several_sessions_in_one_command") {
        return;
    }
    let a = TestSession::start(SessionSpec::default(), "sleep 1000 & wait");
    let b = TestSession::start(
        SessionSpec {
            pty: true,
            ..Default::default()
        },
        "sleep 1000",
    );
    a.wait_members(2);
    b.wait_members(2);
    let pts = b.pty();
    let out = logoff(&[&a.id.to_string(), &pts, &a.id.to_string()]);
    assert_ok(&out, "two sessions");
    assert!(a.is_gone() && b.is_gone());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn console_sessions_of_others_need_the_console_flag() {
    if !require_root_or_skip("console_sessions_of_others_need_the_console_flag") {
        return;
    }
    let Some(vt) = common::free_vt() else {
        require(
            "console_sessions_of_others_need_the_console_flag",
            Err("no virtual terminal to test the console rule on".into()),
        );
        return;
    };
    let user = TestUser::create("con");
    // A login on a virtual terminal: the session leader takes the VT as its terminal.
    let s = TestSession::start(
        SessionSpec {
            login_uid: Some(user.uid),
            ..Default::default()
        },
        &format!("setsid sh -c 'exec sleep 1000 < /dev/{vt}' & wait"),
    );
    let before = s.wait_members(2);
    let id = s.id.to_string();
    let listed = logoff(&["--list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let row = rows
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(row["tty"], vt.as_str(), "{row}");

    let out = logoff(&[&id]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("console session"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("--console"));
    assert_eq!(s.members(), before);

    // Disconnect refuses it likewise; allowed, a console has no connection to end (7),
    // and nothing is touched either way.
    let out = logoff(&["--disconnect", &id]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let out = logoff(&["--disconnect", "--console", &id]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no connection to end"));
    assert_eq!(s.members(), before);

    let out = logoff(&["--console", &id]);
    assert_ok(&out, "--console");
    assert!(s.is_gone());
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn list_marks_the_current_session_and_json_parses() {
    if !require_root_or_skip("list_marks_the_current_session_and_json_parses") {
        return;
    }
    let bin = logoff_bin().display().to_string();
    let user = TestUser::create("lst");
    let other = TestSession::start(
        SessionSpec {
            user: Some(&user),
            pty: true,
            ..Default::default()
        },
        "sleep 1000",
    );
    other.wait_members(2);
    let pts = other.pty();
    // A session that lists: its own row must be the current one.
    let run = |args: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo 0 > /proc/self/loginuid && cat /proc/self/sessionid && echo && exec {bin} {args}"
            ))
            .output()
            .expect("run")
    };
    let out = run("--list --json");
    let stdout = text(&out.stdout);
    let (own, json) = stdout.split_once('\n').expect("id line");
    let rows: serde_json::Value = serde_json::from_str(json).expect("json parses");
    let rows = rows.as_array().expect("array");
    let current: Vec<&serde_json::Value> = rows.iter().filter(|r| r["current"] == true).collect();
    assert_eq!(current.len(), 1, "{json}");
    assert_eq!(current[0]["id"], own.trim(), "{json}");
    assert_eq!(current[0]["backend"], "procfs");
    let theirs = rows
        .iter()
        .find(|r| r["id"] == other.id.to_string().as_str())
        .expect("the pty session is listed");
    assert_eq!(theirs["user"], user.name.as_str());
    assert_eq!(theirs["uid"], user.uid);
    assert_eq!(theirs["tty"], pts.as_str());
    assert_eq!(theirs["name"], pts.as_str());
    assert!(theirs["idle_seconds"].is_u64(), "{theirs}");
    assert!(theirs["logon_time"].is_string(), "{theirs}");

    let out = run("--list");
    let table = text(&out.stdout);
    let own_line = table
        .lines()
        .find(|l| l.contains('>'))
        .expect("a line marked >");
    assert!(own_line.contains(" root "), "{table}");
    let their_line = table.lines().find(|l| l.contains(&pts)).expect("pty row");
    assert!(their_line.contains(&user.name), "{table}");
    assert!(
        table.contains("SESSIONNAME") && table.contains("sessions listed."),
        "{table}"
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn utmp_records_are_closed_so_who_forgets_the_session() {
    if !require_root_or_skip("utmp_records_are_closed_so_who_forgets_the_session") {
        return;
    }
    let user = TestUser::create("utm");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            pty: true,
            ..Default::default()
        },
        "sleep 1000",
    );
    let members = s.wait_members(2);
    let pts = s.pty();
    let leader = *members.iter().min().expect("a member");
    // Written now, after its process started (a record older than its process is not the
    // session's: see tests/vouched.rs).
    let written = jiff::Timestamp::now();
    let _utmp = UtmpGuard::add(&format!(
        "[7] [{leader:05}] [{}] [{:<8}] [{pts:<12}] [192.0.2.7           ] [192.0.2.7      ] [{}]\n",
        &pts[pts.len().saturating_sub(4)..],
        user.name,
        written.strftime("%Y-%m-%dT%H:%M:%S,000000+00:00")
    ));
    let who = |_: ()| {
        text(
            &std::process::Command::new("who")
                .output()
                .expect("who")
                .stdout,
        )
    };
    assert!(
        who(()).contains(&user.name),
        "who does not list the test record"
    );

    let listed = logoff(&["--list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let row = rows
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == s.id.to_string().as_str())
        .expect("listed")
        .clone();
    // utmp's host is what a program wrote (users write records too, through utempter): a
    // claim, shown as one. The logon time is the session's first process's start, which
    // no record can move.
    assert_eq!(row["remote_host"], serde_json::Value::Null, "{row}");
    assert_eq!(row["remote_host_claim"], "192.0.2.7", "{row}");
    assert_eq!(row["remote_host_claim_source"], "utmp", "{row}");
    let logon: jiff::Timestamp = row["logon_time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a logon time");
    assert!(logon <= written, "{row}");
    assert_eq!(row["leader"], leader, "{row}");

    let out = logoff(&["-v", &pts]);
    assert_ok(&out, "logoff pts");
    assert!(s.is_gone());
    assert!(
        text(&out.stdout).contains("utmp record"),
        "{}",
        text(&out.stdout)
    );
    assert!(!who(()).contains(&user.name), "who still lists the session");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn posix_session_fallback_is_labelled_and_works() {
    if !require_root_or_skip("posix_session_fallback_is_labelled_and_works") {
        return;
    }
    let env = [("LOGOFF_PROCFS_POSIX_SESSIONS", "1")];
    let s = TestSession::start(
        SessionSpec {
            pty: true,
            ..Default::default()
        },
        "sleep 1000 & sleep 1000 & wait",
    );
    s.wait_members(4);
    let pts = s.pty();
    let out = logoff_as(None, &["--list", "-v"], &env);
    assert_ok(&out, "list");
    let listing = text(&out.stdout);
    assert!(listing.contains("POSIX sessions"), "{listing}");
    assert!(listing.contains(&pts), "{listing}");
    let out = logoff_as(None, &["-v", &pts], &env);
    assert_ok(&out, "logoff pts (POSIX)");
    assert!(
        text(&out.stdout).contains("escapes"),
        "{}",
        text(&out.stdout)
    );
    // The pty side is gone; script(1), outside that POSIX session, exits on its own.
    assert!(
        wait_for(Duration::from_secs(5), || s.is_gone()),
        "left running: {:?}",
        s.members()
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn vm_and_local_server_forms() {
    if !require_root_or_skip("vm_and_local_server_forms") {
        return;
    }
    let s = TestSession::start(SessionSpec::default(), "sleep 1000 & wait");
    s.wait_members(2);
    let id = s.id.to_string();
    // /VM takes the session's unique ID, never a name.
    let out = logoff(&["/VM", "pts/0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unique ID"),
        "{}",
        text(&out.stderr)
    );
    let out = logoff(&[&id, "/VM", "/SERVER:localhost"]);
    assert_ok(&out, "/VM ID /SERVER:localhost");
    assert!(s.is_gone());
}

/// Regression: CI's runner starts the suite from an init that never called setsid(), so the
/// caller's POSIX session ID is 0, and `--list` in the POSIX grouping panicked in getsid
/// (exit 101). A PID namespace of our own shows the same: its first process's session
/// leader lives outside it, so its SID reads as 0.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_caller_in_sid_0_is_in_no_session() {
    if !require_root_or_skip("regression_a_caller_in_sid_0_is_in_no_session") {
        return;
    }
    let run = |args: &[&str]| {
        std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--"])
            .arg(logoff_bin())
            .args(args)
            .env("LOGOFF_PROCFS_POSIX_SESSIONS", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run unshare")
    };
    let out = run(&["--list", "--json"]);
    assert_ok(&out, "--list in SID 0");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(rows.is_array(), "{rows}");
    // Plain logoff there: no current session, said as such, nothing touched.
    let out = run(&[]);
    assert_fails(&out, 3, "not running in a login session");
}

/// Progress where people wait: on a terminal, a live line says what is waited for, counts
/// the SIGKILL down and goes when done; on a pipe, nothing of it.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_wait_for_sigkill_shows_on_a_terminal_and_nowhere_else() {
    if !require_root_or_skip("the_wait_for_sigkill_shows_on_a_terminal_and_nowhere_else") {
        return;
    }
    let stubborn = r#"exec perl -e '$SIG{HUP} = $SIG{TERM} = "IGNORE"; sleep 1000'"#;
    let s = TestSession::start(SessionSpec::default(), stubborn);
    s.wait_members(1);
    let shown = on_a_pty(&["--timeout", "2", &s.id.to_string()], &[]);
    assert!(s.is_gone());
    let line = format!(
        "session {} (root): waiting for 1 process to exit (perl)",
        s.id
    );
    assert!(shown.contains(&line), "{shown:?}");
    assert!(
        shown.contains("SIGKILL in 2s") || shown.contains("SIGKILL in 1s"),
        "{shown:?}"
    );
    // Cleared at the end: the last thing drawn is the erase of the line.
    let last = shown.rfind("SIGKILL in").expect("a countdown");
    assert!(
        shown[last..].contains("\u{1b}[2K"),
        "not cleared: {shown:?}"
    );

    // The same on a pipe: nothing but what was always said there.
    let s = TestSession::start(SessionSpec::default(), stubborn);
    s.wait_members(1);
    let out = logoff(&["--timeout", "1", &s.id.to_string()]);
    assert_ok(&out, "logoff on a pipe");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        !err.contains("waiting for") && !err.contains('\u{1b}'),
        "{err:?}"
    );
    assert!(
        err.lines()
            .all(|l| l.starts_with("logoff: cannot write the audit")),
        "{err:?}"
    );
    assert!(s.is_gone());
}

/// Regression (hostile read of issues 25-28): a PID namespace a user made (`unshare
/// -Urpf`) was taken for a container below the host, so a session whose processes all
/// lived in one was listed by nobody: no limit, no `--user` and no ID reached it. It is the
/// user's own: listed, and logged off. (A namespace root made is still a container's.)
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_session_hidden_in_a_pid_namespace_of_its_user_is_listed_and_logged_off() {
    if !require_root_or_skip("a_session_hidden_in_a_pid_namespace_of_its_user") {
        return;
    }
    let user = TestUser::create("hns");
    let mut hidden = TestSession::start(
        SessionSpec {
            user: Some(&user),
            nproc: Some(60),
            ..Default::default()
        },
        "unshare -Urpf sleep 1777 & sleep 1; kill -KILL $!; wait $!; exit 0",
    );
    // Reaped, as a host's init reaps (no zombie of the session left in our namespace).
    assert!(hidden.wait_child(Duration::from_secs(10)).is_some());
    let id = hidden.id.to_string();
    let in_namespace = || {
        let m = hidden.members();
        m.len() == 1
            && std::fs::read_link(format!("/proc/{}/ns/pid", m[0])).ok()
                != std::fs::read_link("/proc/self/ns/pid").ok()
    };
    assert!(
        wait_for(Duration::from_secs(10), in_namespace),
        "unshare -Urpf did not leave one process in a namespace of its own: {:?}",
        hidden
            .members()
            .iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    let out = logoff(&["--list", "--all", "--json", "--user", &user.name]);
    assert_ok(&out, "--list");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["id"] == id.as_str())),
        "{listed}"
    );
    // A PID namespace root made, as a container's: still no session of this host's.
    let mut container = TestSession::start(
        SessionSpec {
            login_uid: Some(user.uid),
            ..Default::default()
        },
        "unshare -pf sleep 1779 & sleep 1; kill -KILL $!; wait $!; exit 0",
    );
    assert!(container.wait_child(Duration::from_secs(10)).is_some());
    assert!(wait_for(Duration::from_secs(10), || container
        .members()
        .len()
        == 1));
    let out = logoff(&["--list", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        all.as_array().is_some_and(|a| !a
            .iter()
            .any(|s| s["id"] == container.id.to_string().as_str())),
        "root's namespace listed as a session: {all}"
    );
    let out = logoff(&["--timeout", "1", &id]);
    assert_ok(&out, "logoff ID");
    assert!(
        wait_for(Duration::from_secs(5), || hidden.is_gone()),
        "left running: {:?}",
        hidden.members()
    );
    assert_eq!(container.members().len(), 1, "root's namespace was touched");
}
