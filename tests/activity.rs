//! Idle and disconnected as users mean them (issue 19), on a real logind test host with real
//! sshd, tmux and screen, and logoffd as installed there — with logind, and with the procfs
//! backend (`--backend procfs`) where the facts exist on hosts without logind (idle locks
//! are logind's: not on procfs). Needs root; under CI=true a test host that cannot be built
//! fails the test.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::container::logoffd::policy_for;
use common::container::{self, Container, SshSession};
use common::{text, wait_for};
use serde_json::Value;

/// How the daemon is run in each pass of a test.
const BACKENDS: [&str; 2] = ["--backend logind", "--backend procfs"];

/// `logoff --list --json --backend B` in the test host: the row of session `id`.
fn row(c: &Container, backend: &str, id: &str) -> Option<Value> {
    let b = backend.trim_start_matches("--backend ");
    c.sessions(&["--backend", b])
        .into_iter()
        .find(|s| s["id"] == id)
}

/// The same session, found by its user (procfs and logind may name it alike: the audit ID).
fn check_row(c: &Container, backend: &str, id: &str) -> Value {
    let mut args = vec!["/usr/sbin/logoffd", "--check", "--json"];
    args.extend(backend.split(' '));
    let out = c.exec(&args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    report["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
        .unwrap_or_else(|| panic!("session {id} not in --check: {}", text(&out.stderr)))
}

/// Whether any process whose command line matches `pattern` runs in the test host.
fn runs(c: &Container, pattern: &str) -> bool {
    !c.pids_matching(pattern).is_empty()
}

/// Types a line into `session` every 2 s for `total`, checking meanwhile that `alive` holds.
fn type_for(session: &mut SshSession, total: Duration, alive: impl Fn() -> bool, what: &str) {
    let end = Instant::now() + total;
    while Instant::now() < end {
        session.type_line("still here");
        assert!(alive(), "{what}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A tmux (or screen) server left in session A when its connection went; the user's next
/// login B attaches to it and types. (Issue 19, case 1: logoffd killed A as "disconnected",
/// and B's client with it.)
fn attached_multiplexer_scenario(c: &Container, backend: &str, kind: &str, user: &str) {
    let (start, attach, server) = match kind {
        "tmux" => (
            "tmux new-session -d -s work 'sleep 1101'",
            "tmux attach -t work",
            "^sleep 1101$",
        ),
        _ => (
            // screen's server dies with the terminal it was started from if that goes
            // before it has settled (seen on this machine without the pause).
            "screen -dmS work sleep 1102; sleep 1",
            "screen -r work",
            "^sleep 1102$",
        ),
    };
    let mut a = c.ssh(user, &format!("{start}; exit 0"));
    let a_id = a.id.clone();
    assert!(
        a.wait_closed(Duration::from_secs(20)).is_some(),
        "A never left"
    );
    assert!(
        wait_for(Duration::from_secs(10), || runs(c, server)),
        "{kind}'s server is not running; the login said: {}\n{}",
        a.output(),
        text(&c.exec(&["ps", "-eo", "pid,sid,tty,args"]).stdout)
    );
    let mut b = c.ssh(user, attach);
    let b_id = b.id.clone();
    let in_use = wait_for(Duration::from_secs(15), || {
        row(c, backend, &a_id).is_some_and(|r| r["in_use_by"] == b_id.as_str())
    });
    assert!(
        in_use,
        "{backend}: A not in use by B: {:?}",
        row(c, backend, &a_id)
    );
    let r = row(c, backend, &a_id).expect("listed");
    assert!(
        r["idle_source"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("{kind} client in session {b_id}"))),
        "{r}\nB: {:?}\n{}",
        row(c, backend, &b_id),
        text(
            &c.exec(&[
                "sh",
                "-c",
                "stat -c '%n %x %y' /dev/pts/*; ps -eo pid,sid,tty,args"
            ])
            .stdout
        )
    );
    c.install_logoffd(
        &policy_for(&[user], "idle = \"10s\"\ndisconnected = \"8s\""),
        backend,
    );
    // Typing in B for twice the limits: A (and so B's client) stays.
    type_for(
        &mut b,
        Duration::from_secs(20),
        || runs(c, server),
        "A was logged off while its server was in use",
    );
    let checked = check_row(c, backend, &a_id);
    assert!(
        checked["activity"]
            .as_str()
            .is_some_and(|a| a.contains(&format!("in use through {kind} from session {b_id}"))),
        "{checked}"
    );
    // B leaves: A's server is detached, and A goes past its limit.
    drop(b);
    let gone = wait_for(Duration::from_secs(40), || !runs(c, server));
    assert!(
        gone,
        "{backend}: A never logged off: {}",
        c.logoffd_journal()
    );
    assert!(
        c.logoffd_journal()
            .contains(&format!("logged off session {a_id} ")),
        "{}",
        c.logoffd_journal()
    );
    let _ = c.exec(&["systemctl", "stop", "logoffd"]);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_tmux_server_in_use_from_another_session_is_kept_and_logged_off_once_detached() {
    let Some(c) = container::boot("acttmux") else {
        return;
    };
    for (n, backend) in BACKENDS.iter().enumerate() {
        let user = format!("tmx{n}");
        c.add_user(&user);
        attached_multiplexer_scenario(&c, backend, "tmux", &user);
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_screen_session_in_use_from_another_is_kept_and_logged_off_once_detached() {
    let Some(c) = container::boot("actscr") else {
        return;
    };
    // Debian's screen-cleanup.conf, which the test host's minimal boot does not run.
    let _ = c.exec(&["systemd-tmpfiles", "--create", "screen-cleanup.conf"]);
    for (n, backend) in BACKENDS.iter().enumerate() {
        let user = format!("scr{n}");
        c.add_user(&user);
        attached_multiplexer_scenario(&c, backend, "screen", &user);
    }
}

/// Issue 19, case 2: `ssh -M` then `ssh -S` (a second channel with its own terminal, where
/// the user types): the session showed no terminal, no idle time, and escaped every idle
/// rule. Typing in the second channel keeps it; idle past the limit, it goes.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn typing_in_a_multiplexed_ssh_channel_keeps_the_session_and_idling_ends_it() {
    let Some(c) = container::boot("actmux") else {
        return;
    };
    for (n, backend) in BACKENDS.iter().enumerate() {
        let user = format!("mux{n}");
        c.add_user(&user);
        let dir = common::fixtures::TempDir::new("mux");
        let socket = dir.path("master");
        let master = c
            .ssh_command(&user)
            .args(["-M", "-S"])
            .arg(&socket)
            .args(["-o", "ControlPersist=no", "sleep 1201"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh -M");
        let _master = common::container::Background(master);
        assert!(wait_for(Duration::from_secs(20), || socket.exists()));
        let id = c
            .wait_session(|s| s["user"] == user.as_str())
            .get("id")
            .and_then(Value::as_str)
            .expect("id")
            .to_string();
        let mut channel = c.ssh_channel(&user, &socket, "cat");
        let has_terminal = wait_for(Duration::from_secs(10), || {
            row(&c, backend, &id).is_some_and(|r| {
                r["idle_source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("terminal pts/"))
            })
        });
        assert!(has_terminal, "{backend}: {:?}", row(&c, backend, &id));
        c.install_logoffd(&policy_for(&[&user], "idle = \"10s\""), backend);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            channel.type_line("typing");
            assert!(
                runs(&c, "^sleep 1201$"),
                "{backend}: logged off while typing"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
        let gone = wait_for(Duration::from_secs(30), || !runs(&c, "^sleep 1201$"));
        assert!(gone, "{backend}: never logged off: {}", c.logoffd_journal());
        drop(channel);
        let _ = c.exec(&["systemctl", "stop", "logoffd"]);
    }
}

/// Issue 19: what counts is the rule's. Two users of each kind run the same job; one's rule
/// counts the job's kind of activity, the other's only input: that one is logged off at its
/// limit, the first is not.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn output_cpu_and_idle_locks_keep_a_session_only_where_the_rule_counts_them() {
    let Some(c) = container::boot("actkinds") else {
        return;
    };
    let jobs = [
        ("out", "while :; do echo tick; sleep 1; done"),
        (
            "cpu",
            "while :; do i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; sleep 0.2; done",
        ),
        (
            "inh",
            "systemd-inhibit --what=idle --why=building sleep 1300",
        ),
    ];
    for (n, backend) in BACKENDS.iter().enumerate() {
        // Idle locks are logind's.
        let jobs: Vec<_> = jobs
            .iter()
            .filter(|(kind, _)| *kind != "inh" || backend.ends_with("logind"))
            .collect();
        let mut keep = Vec::new();
        let mut go = Vec::new();
        for (kind, job) in &jobs {
            for side in ["w", "n"] {
                let user = format!("{kind}{side}{n}");
                c.add_user(&user);
                let session = c.ssh(&user, job);
                if side == "w" {
                    keep.push((user, session, *kind));
                } else {
                    go.push((user, session));
                }
            }
        }
        let with: Vec<&str> = keep.iter().map(|(u, _, _)| u.as_str()).collect();
        let without: Vec<&str> = go.iter().map(|(u, _)| u.as_str()).collect();
        let policy = format!(
            "scan_interval = \"2s\"\n\
             [[rule]]\nname = \"counts\"\nmatch = {{ users = {with:?} }}\nidle = \"10s\"\n\
             timeout = \"2s\"\nactivity = [\"input\", \"output\", \"cpu\", \"inhibit\"]\n\
             busy_cpu = \"5%\"\n\
             [[rule]]\nname = \"input\"\nmatch = {{ users = {without:?} }}\nidle = \"10s\"\n\
             timeout = \"2s\"\n"
        );
        c.install_logoffd(&policy, backend);
        for (user, session) in &mut go {
            assert!(
                session.wait_closed(Duration::from_secs(40)).is_some(),
                "{backend}: {user} was not logged off: {}",
                c.logoffd_journal()
            );
        }
        // Their limit has passed for the others too: still there, and --check says why.
        for (user, session, kind) in &mut keep {
            assert!(session.is_connected(), "{backend}: {user} was logged off");
            let why = check_row(&c, backend, &session.id)["activity"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let expected = match *kind {
                "out" => "last output",
                "cpu" => "busy:",
                _ => "idle lock held by `systemd-inhibit`",
            };
            assert!(
                why.contains(expected),
                "{backend}: {user}: {why}\n{}",
                text(&c.exec(&["cat", "/var/lib/logoff/clocks.json"]).stdout)
            );
        }
        let _ = c.exec(&["systemctl", "stop", "logoffd"]);
    }
}

/// Issue 19: a warning written to the session's terminal is not the user's activity, in any
/// mode: the idle time read before and after the warning is the same, and the session is
/// logged off at the limit it was warned of.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_warning_does_not_reset_the_idle_time_it_warns_about() {
    let Some(c) = container::boot("actwarn") else {
        return;
    };
    c.add_user("warned");
    let mut s = c.ssh("warned", "cat");
    let before = wait_for(Duration::from_secs(10), || {
        row(&c, "--backend logind", &s.id).is_some_and(|r| r["idle_since"].is_string())
    });
    assert!(before);
    let idle_since = |c: &Container| {
        row(c, "--backend logind", &s.id).map(|r| r["idle_since"].as_str().map(String::from))
    };
    let first = idle_since(&c);
    c.install_logoffd(
        &policy_for(
            &["warned"],
            "idle = \"20s\"\nwarn = [\"12s\"]\nactivity = [\"input\", \"output\"]",
        ),
        "",
    );
    assert!(
        wait_for(Duration::from_secs(30), || s
            .output()
            .contains("has been idle for 20s")),
        "no warning: {}",
        c.logoffd_journal()
    );
    let after = idle_since(&c);
    let to_second = |t: Option<Option<String>>| {
        t.flatten()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(jiff::Timestamp::as_second)
    };
    assert_eq!(
        to_second(after),
        to_second(first),
        "the warning moved the idle time"
    );
    assert!(
        s.wait_closed(Duration::from_secs(30)).is_some(),
        "not logged off at the limit it warned of: {}",
        c.logoffd_journal()
    );
    let _ = Command::new("true").status();
}

/// The same through the remote agent, on an elogind host (no bus over ssh), with the procfs
/// backend there (elogind forgets a session whose leader has gone; its audit session, which
/// the tmux server is in, remains): that host's logoff reads what the sessions hold, and
/// says so. `--state disconnected` from afar leaves the session in use alone, and takes it
/// once its client has gone.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn through_the_remote_agent_a_tmux_server_in_use_is_not_disconnected() {
    let Some(h) = container::boot_as("actagent", container::Kind::Elogind) else {
        return;
    };
    h.add_user("tmr");
    let mut a = h.ssh("tmr", "tmux new-session -d -s work 'sleep 1103'; exit 0");
    let a_id = a.id.clone();
    assert!(
        a.wait_closed(Duration::from_secs(20)).is_some(),
        "A never left"
    );
    assert!(wait_for(Duration::from_secs(10), || runs(
        &h,
        "^sleep 1103$"
    )));
    let b = h.ssh("tmr", "tmux attach -t work");
    let fleet = common::container::Fleet::new(&[&h], "act-a");
    let listed = |fleet: &common::container::Fleet| -> Vec<Value> {
        let out = fleet.logoff(&["--list", "--json", "--backend", "procfs", "/SERVER:act-a1"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)))
    };
    let in_use = wait_for(Duration::from_secs(15), || {
        listed(&fleet)
            .iter()
            .any(|r| r["id"] == a_id.as_str() && r["in_use_by"] == b.id.as_str())
    });
    assert!(in_use, "{:?}", listed(&fleet));
    let row = listed(&fleet)
        .into_iter()
        .find(|r| r["id"] == a_id.as_str())
        .expect("A");
    assert!(row["agent"].is_string(), "{row}");
    assert!(
        row["idle_source"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("tmux client in session {}", b.id))),
        "{row}"
    );
    let out = fleet.logoff(&[
        "--state",
        "disconnected",
        "--all",
        "--backend",
        "procfs",
        "/SERVER:act-a1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(runs(&h, "^sleep 1103$"), "the server in use was logged off");
    drop(b);
    let out = fleet.logoff(&[
        "--state",
        "disconnected",
        "--all",
        "--backend",
        "procfs",
        "/SERVER:act-a1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(10), || !runs(&h, "^sleep 1103$")),
        "the detached server was not logged off: {}",
        text(&out.stdout)
    );
}
