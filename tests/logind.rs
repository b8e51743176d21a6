//! The logind backend on a real systemd-logind with real PAM logins (sshd, `su -l`), in test
//! hosts booted with systemd-nspawn (see `common/container/`). Needs root; under CI=true a
//! test host that cannot be built fails the test.
//!
//! The tests that do not depend on systemd itself run on an elogind test host too (sysvinit,
//! elogind, no scopes: sessions followed by their audit session ID), named `elogind_...`.

mod common;

use std::time::{Duration, Instant};

use common::container::{self, Container, Kind};
use common::{assert_ok, text, wait_for};
use serde_json::Value;

fn find<'a>(rows: &'a [Value], id: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["id"] == id)
}

/// `loginctl list-sessions -o json`, the reference.
fn loginctl_sessions(c: &Container) -> Vec<Value> {
    let out = c.exec(&["loginctl", "list-sessions", "-o", "json"]);
    assert_ok(&out, "loginctl list-sessions");
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("loginctl printed {other:?}"),
    }
}

/// What `logoff ARGS` says when `user` runs it over ssh, ending with its `rc=N`.
fn logoff_over_ssh(c: &Container, user: &str, args: &str) -> String {
    let out = c
        .ssh_command(user)
        .arg(format!("logoff {args}; echo rc=$?"))
        .output()
        .expect("ssh");
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn blank_is_null(v: &Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_list_agrees_with_loginctl_and_with_the_procfs_backend() {
    the_list_agrees("agree", Kind::Systemd);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_the_list_agrees_with_loginctl_and_with_the_procfs_backend() {
    the_list_agrees("elagree", Kind::Elogind);
}

fn the_list_agrees(test: &str, kind: Kind) {
    let Some(c) = container::boot_as(test, kind) else {
        return;
    };
    c.add_user("alice");
    c.add_user("bob");
    let _a1 = c.ssh("alice", "sleep 1000");
    let _a2 = c.ssh("alice", "sleep 1000");
    let _b = c.ssh("bob", "sleep 1000");
    let _su = c.su("bob", "sleep 1000");
    c.wait_session(|s| s["class"] == "background" && s["user"] == "bob" && s["state"] == "active");

    let ours = c.sessions(&["--backend", "logind"]);
    let reference = loginctl_sessions(&c);
    assert!(reference.len() >= 4, "{reference:?}");
    assert_eq!(
        ours.len(),
        reference.len(),
        "ours {ours:?}\nloginctl {reference:?}"
    );
    for r in &reference {
        let id = r["session"].as_str().expect("session id");
        let row = find(&ours, id).unwrap_or_else(|| panic!("session {id} missing: {ours:?}"));
        assert_eq!(row["uid"], r["uid"], "{id}");
        assert_eq!(row["user"], r["user"], "{id}");
        assert_eq!(row["seat"], blank_is_null(&r["seat"]), "{id}");
        assert_eq!(row["tty"], blank_is_null(&r["tty"]), "{id}");
        let state = c.loginctl_property(id, "State").expect("state");
        assert_eq!(row["state"], state.as_str(), "{id}");
        assert_eq!(row["backend"], "logind");
    }

    // The ssh logins carry audit session IDs, and logind uses them as session IDs: the
    // procfs backend, reading the kernel's audit IDs, must see the same sessions.
    let procfs = c.sessions(&["--backend", "procfs"]);
    let audited: Vec<&Value> = ours.iter().filter(|s| s["service"] == "sshd").collect();
    assert_eq!(audited.len(), 3, "{ours:?}");
    for s in audited {
        let id = s["id"].as_str().expect("id");
        let p =
            find(&procfs, id).unwrap_or_else(|| panic!("procfs misses session {id}: {procfs:?}"));
        assert_eq!(p["uid"], s["uid"], "{id}");
        assert_eq!(p["user"], s["user"], "{id}");
        assert_eq!(p["tty"], s["tty"], "{id}");
        assert_eq!(p["remote_host"], s["remote_host"], "{id}");
        assert_eq!(p["backend"], "procfs");
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn root_ends_ssh_sessions_by_id_and_by_terminal_and_sigkills_what_ignores_sigterm() {
    root_ends_ssh_sessions("ssh", Kind::Systemd);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_root_ends_ssh_sessions_by_id_and_by_terminal_and_sigkills_what_ignores_sigterm() {
    root_ends_ssh_sessions("elssh", Kind::Elogind);
}

fn root_ends_ssh_sessions(test: &str, kind: Kind) {
    let Some(c) = container::boot_as(test, kind) else {
        return;
    };
    c.add_user("alice");
    let mut by_id = c.ssh("alice", "sleep 1000 & setsid sleep 1001 & wait");
    let mut by_tty = c.ssh("alice", "sleep 1002");
    let mut by_name = c.ssh("alice", "sleep 1009");
    let mut bystander = c.ssh("alice", "sleep 1003");

    let out = c.logoff(&["-v", &by_id.id]);
    assert_ok(&out, "logoff ID");
    assert!(
        by_id.wait_closed(Duration::from_secs(10)).is_some(),
        "the ssh client is still connected"
    );
    assert!(
        !c.session_alive(&by_id.id),
        "loginctl still lists {}",
        by_id.id
    );
    assert!(
        c.pids_matching("sleep 100[01]").is_empty(),
        "a process of it runs"
    );
    assert!(
        text(&out.stdout).contains("backend: logind"),
        "{}",
        text(&out.stdout)
    );

    let out = c.logoff(&["-v", &format!("/dev/{}", by_tty.tty)]);
    assert_ok(&out, "logoff /dev/pts/N");
    assert!(by_tty.wait_closed(Duration::from_secs(10)).is_some());
    assert!(!c.session_alive(&by_tty.id));
    assert!(c.pids_matching("sleep 1002").is_empty());

    // By its name: the terminal as `who` shows it.
    let out = c.logoff(&["-v", &by_name.tty]);
    assert_ok(&out, "logoff pts/N");
    assert!(by_name.wait_closed(Duration::from_secs(10)).is_some());
    assert!(!c.session_alive(&by_name.id));
    assert!(c.pids_matching("sleep 1009").is_empty());

    assert!(
        bystander.is_connected(),
        "the bystander's connection closed"
    );
    assert!(c.session_alive(&bystander.id));

    // A process that ignores SIGTERM and SIGHUP is ended by SIGKILL after the timeout; so is
    // a loop that left the terminal's session (setsid) and keeps starting processes that
    // ignore them too.
    let mut stubborn = c.ssh(
        "alice",
        "sh -c 'trap \"\" HUP TERM; exec sleep 1004' & sh -c 'trap \"\" HUP TERM; exec sleep 1004' & \
         setsid sh -c 'trap \"\" HUP TERM; while :; do sleep 0.21; done' & wait",
    );
    // (Anchored: the login shell's own command line holds the text too.)
    assert!(
        wait_for(Duration::from_secs(5), || {
            c.pids_matching("^sleep 1004$").len() == 2
                && c.pids_matching("^sh -c trap .. HUP TERM; while").len() == 1
        }),
        "the stubborn processes never started"
    );
    let start = Instant::now();
    let out = c.logoff(&["--timeout", "1", "-v", &stubborn.id]);
    let took = start.elapsed();
    assert_ok(&out, "logoff --timeout 1");
    let verbose = text(&out.stdout);
    assert!(verbose.contains("still running after 1s"), "{verbose}");
    assert!(verbose.contains("sent SIGKILL"), "{verbose}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(
        c.pids_matching("sleep 1004|sleep 0.21").is_empty(),
        "the stubborn ones survived"
    );
    assert!(stubborn.wait_closed(Duration::from_secs(10)).is_some());
    assert!(c.session_alive(&bystander.id));
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn root_ends_a_thousand_process_su_session_with_an_escapee() {
    let Some(c) = container::boot("su") else {
        return;
    };
    c.add_user("bob");
    let _keep = c.ssh("bob", "sleep 1000");
    let mut su = c.su(
        "bob",
        "setsid nohup sleep 7777 >/dev/null 2>&1 & \
         exec perl -e 'for (2..1000) { my $p = fork; if (defined $p && $p == 0) { sleep 7778; exit 0 } } sleep 7778'",
    );
    let session = c.wait_session(|s| s["class"] == "background" && s["state"] == "active");
    let id = session["id"].as_str().expect("id").to_string();
    assert!(
        wait_for(Duration::from_secs(30), || c
            .pids_matching("^(sleep 777[78]|perl -e)")
            .len()
            >= 1001),
        "the session never reached 1001 processes"
    );
    let out = c.logoff(&["-v", &id]);
    assert_ok(&out, "logoff su session");
    assert!(
        c.pids_matching("^(sleep 777[78]|perl -e)").is_empty(),
        "processes of it run"
    );
    assert!(
        !c.session_alive(&id),
        "loginctl still lists {id} as online/active"
    );
    let rows = c.sessions(&[]);
    assert!(
        find(&rows, &id).is_none_or(|s| s["state"] == "closing"),
        "{rows:?}"
    );
    assert!(
        su.wait(Duration::from_secs(10)).is_some(),
        "su is still running"
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn users_end_their_own_session_and_are_refused_on_others() {
    users_end_their_own("users", Kind::Systemd);
}

/// Cross-user refusal on elogind is polkit's too (polkitd runs there, on libpam-elogind).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_users_end_their_own_session_and_are_refused_on_others() {
    users_end_their_own("elusers", Kind::Elogind);
}

fn users_end_their_own(test: &str, kind: Kind) {
    let Some(c) = container::boot_as(test, kind) else {
        return;
    };
    c.add_user("alice");
    c.add_user("bob");
    let mut bobs = c.ssh("bob", "sleep 1005");
    let mut alice_other = c.ssh("alice", "sleep 1006");

    // alice on bob's session: access denied, nothing touched.
    let said = logoff_over_ssh(&c, "alice", &bobs.id);
    assert!(said.contains("rc=4"), "{said}");
    assert!(
        said.contains(&format!(
            "cannot log off session {} (bob on {})",
            bobs.id, bobs.tty
        )),
        "{said}"
    );
    assert!(said.contains("access denied"), "{said}");
    assert!(bobs.is_connected());
    assert_eq!(
        c.pids_matching("sleep 1005").len(),
        1,
        "bob's process was touched"
    );
    // polkit judged it (the bus started it to answer logoff's question).
    assert!(
        !c.pids_matching("polkitd").is_empty(),
        "polkit never ran on the {kind:?} host"
    );

    // alice runs plain logoff in her own session: that session ends, her other one stays.
    let mut own = c.ssh(
        "alice",
        "sleep 1007 & setsid sleep 1008 & logoff; echo survived",
    );
    assert!(
        own.wait_closed(Duration::from_secs(15)).is_some(),
        "the session that ran logoff is still connected: {}",
        own.output()
    );
    assert!(!own.output().contains("survived"), "{}", own.output());
    assert!(!c.session_alive(&own.id));
    assert!(c.pids_matching("sleep 100[78]").is_empty());
    assert!(
        alice_other.is_connected(),
        "alice's other session ended too"
    );
    assert!(c.session_alive(&alice_other.id));
    assert!(bobs.is_connected());
}

/// logind without scopes, as elogind is: logoff ignores the sessions' scopes
/// (`LOGOFF_LOGIND_NO_SCOPES=1`, which it must do on elogind).
const NO_SCOPES: (&str, &str) = ("LOGOFF_LOGIND_NO_SCOPES", "1");

/// Regression: on logind without scopes (elogind), a session had no processes to follow, so
/// it "verified" right after TerminateSession and nothing was ever SIGKILLed. Now it is
/// followed by its audit session ID on this host (through the procfs code), and where
/// nothing can follow it, logoff says so with status 5. A process of the session outside
/// its scope (as processes are outside any per-session cgroup on elogind), which ignores
/// SIGTERM, shows the difference.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_sessions_without_a_scope_are_verified_by_their_audit_id() {
    let Some(c) = container::boot("noscope") else {
        return;
    };
    c.add_user("bob");
    let mut s = c.ssh(
        "root",
        "systemd-run --scope --quiet -- sh -c 'trap \"\" HUP TERM; exec sleep 1040' & \
         sleep 1041",
    );
    // Anchored: the login shell's own command line names `sleep 1040` from the start, and a
    // logoff before systemd-run has made its scope would find nothing outside it to kill.
    assert!(
        wait_for(Duration::from_secs(10), || !c
            .pids_matching("^sleep 1040$")
            .is_empty()),
        "the process outside the scope never started"
    );
    let out = c.logoff_env(&["--timeout", "1", "-v", &s.id], &[NO_SCOPES]);
    assert_ok(&out, "logoff a scope-less session");
    assert!(
        c.pids_matching("sleep 104[01]").is_empty(),
        "a process of the session survived: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("sent SIGKILL"),
        "{}",
        text(&out.stdout)
    );
    assert!(s.wait_closed(Duration::from_secs(10)).is_some());

    // `su -l` gives no audit session ID: nothing can follow it without a scope.
    let _su = c.su("bob", "sleep 1042");
    let session = c.wait_session(|s| s["class"] == "background" && s["user"] == "bob");
    let id = session["id"].as_str().expect("id");
    let out = c.logoff_env(&["--timeout", "1", id], &[NO_SCOPES]);
    common::assert_fails(&out, 5, "cannot verify that session");

    // Nor on another host, where only a scope can be followed.
    let s2 = c.ssh("bob", "sleep 1043");
    let fleet = container::Fleet::new(&[&c], "lt-n");
    let out = std::process::Command::new(common::logoff_bin())
        .args(["--timeout", "1", "/SERVER:lt-n1", &s2.id])
        .env("LOGOFF_SSH", fleet.ssh())
        .env(NO_SCOPES.0, NO_SCOPES.1)
        .output()
        .expect("run logoff");
    common::assert_fails(&out, 5, "on another host");
}

/// Regression: where polkit is not installed, logoff lets logind judge (it cannot ask polkit
/// first), and logind's refusal named the session twice ("cannot log off session 3 (bob on
/// pts/0): cannot log off session 3 (bob on pts/0): access denied"). It is said once, with
/// the exit status of a refusal, and nothing is touched.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_loginds_own_refusal_names_the_session_once() {
    let Some(c) = container::boot("nopolkit") else {
        return;
    };
    // As if polkit were not installed: stopped, and the bus cannot start it again.
    let out = c.sh("systemctl stop polkit.service && \
         rm /usr/share/dbus-1/system-services/org.freedesktop.PolicyKit1.service && \
         busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig");
    assert_ok(&out, "remove polkit");
    c.add_user("alice");
    c.add_user("bob");
    let bobs = c.ssh("bob", "sleep 1012");
    let said = logoff_over_ssh(&c, "alice", &bobs.id);
    assert!(said.contains("rc=4"), "{said}");
    let named = format!("cannot log off session {} (bob on {})", bobs.id, bobs.tty);
    assert_eq!(said.matches(&named).count(), 1, "{said}");
    assert!(said.contains(&format!("{named}: access denied")), "{said}");
    assert_eq!(
        c.pids_matching("^sleep 1012$").len(),
        1,
        "bob's process was touched"
    );
    assert!(c.session_alive(&bobs.id));
}

/// Regression (issue 17, item 6): a graphical session that went idle and came back has
/// IdleHint false, and IdleSinceHint the moment it came back. logoff took it as idle since
/// then: `--idle-for` listed it, and logoffd logged off a user who was working. A graphical
/// session whose hint is false is in use.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_graphical_session_in_use_is_not_idle() {
    let Some(c) = container::boot("idlehint") else {
        return;
    };
    c.add_user("gfx");
    let hint = |b: &str| {
        format!(
            "busctl call org.freedesktop.login1 /org/freedesktop/login1/session/auto \
             org.freedesktop.login1.Session SetIdleHint b {b}"
        )
    };
    let _session = c.su_with(
        "gfx",
        &format!(
            "{} && sleep 2 && {} && touch /tmp/back-gfx && exec sleep 1010",
            hint("true"),
            hint("false")
        ),
        &[("XDG_SESSION_TYPE", "x11")],
    );
    assert!(
        wait_for(Duration::from_secs(20), || c
            .exec(&["test", "-e", "/tmp/back-gfx"])
            .status
            .success()),
        "the session never set its idle hint"
    );
    let s = c.wait_session(|s| s["user"] == "gfx" && s["type"] == "x11");
    let id = s["id"].as_str().expect("id").to_string();
    assert_eq!(c.loginctl_property(&id, "IdleHint").as_deref(), Some("no"));
    std::thread::sleep(Duration::from_secs(3));
    let idle: Vec<Value> = c.sessions(&["--idle-for", "2s"]);
    assert!(find(&idle, &id).is_none(), "listed as idle: {idle:#?}");
    let s = c.wait_session(|s| s["id"] == id.as_str());
    assert!(
        s["idle_seconds"].as_u64().is_some_and(|n| n < 2),
        "idle time of a session in use: {s:#}"
    );
}
