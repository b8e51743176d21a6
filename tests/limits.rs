//! Logon hours, allowances and session caps (issue 26), on a real logind test host with real
//! ssh logins and logoffd as installed there — with logind, and with the procfs backend
//! (`--backend procfs`) — at short windows; and logoffd under libfaketime, whose step of the
//! wall clock (as the C library tells it) logs nobody off. Needs root; under CI=true a test
//! host that cannot be built fails the test.

mod common;

use std::time::{Duration, Instant};

use common::container::logoffd::policy_for;
use common::container::{self, Container};
use common::{text, wait_for};
use serde_json::Value;

const BACKENDS: [&str; 2] = ["logind", "procfs"];

/// Whether logoffd's journal has a line saying it logged off session `id` with `words`.
fn logged(journal: &str, id: &str, words: &str) -> bool {
    journal
        .lines()
        .any(|l| l.contains(&format!("logged off session {id} ")) && l.contains(words))
}

/// `HH:MM` of a moment, UTC.
fn hhmm(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

/// The next whole minute at least `ahead` from now (UTC).
fn next_minute(ahead: Duration) -> jiff::Timestamp {
    let then = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(ahead).expect("duration"))
        .expect("time");
    let secs = then.as_second();
    jiff::Timestamp::from_second(secs - secs.rem_euclid(60) + 60).expect("time")
}

fn install(c: &Container, policy: &str, backend: &str) {
    c.install_logoffd(policy, &format!("--backend {backend}"));
}

/// Issue 26: a session inside its hours is warned before its window ends and logged off at
/// its end (pam_time only refuses new logins); one outside its hours is warned at once and
/// logged off the warning's lead later.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn sessions_are_warned_and_logged_off_at_the_end_of_their_hours() {
    let Some(c) = container::boot("hours") else {
        return;
    };
    for (n, backend) in BACKENDS.iter().enumerate() {
        let (inside, outside) = (format!("hin{n}"), format!("hout{n}"));
        c.add_user(&inside);
        c.add_user(&outside);
        let end = next_minute(Duration::from_secs(35));
        let start = end
            .checked_sub(jiff::SignedDuration::from_mins(30))
            .expect("time");
        // A window that is not now: an hour after this one ends.
        let later = end
            .checked_add(jiff::SignedDuration::from_hours(1))
            .expect("time");
        let later_end = later
            .checked_add(jiff::SignedDuration::from_mins(1))
            .expect("time");
        let policy = format!(
            "scan_interval = \"2s\"\n\
             [[rule]]\nname = \"work\"\nmatch = {{ users = [\"{inside}\"] }}\n\
             hours = \"{}-{}\"\ntimezone = \"UTC\"\nwarn = [\"20s\"]\ntimeout = \"2s\"\n\
             [[rule]]\nname = \"night\"\nmatch = {{ users = [\"{outside}\"] }}\n\
             hours = \"{}-{}\"\ntimezone = \"UTC\"\nwarn = [\"8s\"]\ntimeout = \"2s\"\n",
            hhmm(start),
            hhmm(end),
            hhmm(later),
            hhmm(later_end)
        );
        let mut a = c.ssh(&inside, "cat");
        let mut b = c.ssh(&outside, "cat");
        let since = Instant::now();
        install(&c, &policy, backend);
        // Outside its hours: warned now, gone a lead later.
        assert!(
            b.wait_closed(Duration::from_secs(30)).is_some(),
            "{backend}: outside its hours and not logged off: {}",
            c.logoffd_journal()
        );
        assert!(since.elapsed() >= Duration::from_secs(7), "before the lead");
        assert!(
            b.output().contains("end of its logon hours"),
            "{}",
            b.output()
        );
        // Inside: warned before the window's end, logged off at it.
        let warned = wait_for(Duration::from_secs(100), || {
            a.output().contains("end of its logon hours")
        });
        assert!(warned, "{backend}: no warning: {}", c.logoffd_journal());
        assert!(a.is_connected(), "{backend}: logged off at the warning");
        assert!(
            a.wait_closed(Duration::from_secs(60)).is_some(),
            "{backend}: not logged off at the end of its hours: {}",
            c.logoffd_journal()
        );
        let at_end = jiff::Timestamp::now();
        assert!(
            at_end
                >= end
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .expect("t"),
            "{backend}: logged off before its window ended ({at_end} < {end})"
        );
        let journal = c.logoffd_journal();
        assert!(logged(&journal, &a.id, "outside its hours"), "{journal}");
        assert!(logged(&journal, &b.id, "outside its hours"), "{journal}");
        let records = c.audit_records(&[("LOGOFF_REASON", "hours")]);
        assert!(records.len() >= 2, "{records:?}");
        let _ = c.exec(&["systemctl", "stop", "logoffd"]);
    }
}

/// Issue 26: an allowance counts the user's time across sessions, one after the other, and
/// survives a restart of logoffd; the session that uses the last of it is warned (and
/// `logoff --list` says what is left) and logged off.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_allowance_is_counted_across_sessions_and_restarts_and_ends_the_last() {
    let Some(c) = container::boot("allow") else {
        return;
    };
    for (n, backend) in BACKENDS.iter().enumerate() {
        let user = format!("alw{n}");
        c.add_user(&user);
        // The day begins twelve hours from now: no reset falls in the test.
        let reset = hhmm(next_minute(Duration::from_secs(12 * 3600)));
        let policy = policy_for(
            &[&user],
            &format!(
                "timezone = \"UTC\"\nwarn = [\"10s\"]\n\
                 allowance = {{ day = \"50s\", reset = \"{reset}\" }}"
            ),
        );
        install(&c, &policy, backend);
        let mut first = c.ssh(&user, "cat");
        std::thread::sleep(Duration::from_secs(20));
        first.type_line("\u{4}");
        drop(first);
        assert!(
            wait_for(Duration::from_secs(10), || !c
                .sessions(&["--backend", backend])
                .iter()
                // The user's service manager (an audit session of its own) stays.
                .any(|s| s["user"] == user.as_str() && s["class"] != "manager")),
            "the first session did not end: {:?}",
            c.sessions(&["--backend", backend])
        );
        let out = c.exec(&["systemctl", "restart", "logoffd"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut second = c.ssh(&user, "cat");
        let started = Instant::now();
        let left = wait_for(Duration::from_secs(15), || {
            c.sessions(&["--backend", backend])
                .iter()
                .find(|s| s["id"] == second.id.as_str())
                .and_then(|s| s["allowance_left_seconds"].as_u64())
                .is_some()
        });
        assert!(
            left,
            "{backend}: no allowance left shown: {}",
            c.logoffd_journal()
        );
        let row: Value = c
            .sessions(&["--backend", backend])
            .into_iter()
            .find(|s| s["id"] == second.id.as_str())
            .expect("listed");
        let secs = row["allowance_left_seconds"].as_u64().expect("seconds");
        assert!(
            secs <= 35,
            "{backend}: the first session's time was not kept across the restart: {row}"
        );
        assert!(
            second.wait_closed(Duration::from_secs(60)).is_some(),
            "{backend}: not logged off: {}",
            c.logoffd_journal()
        );
        assert!(
            started.elapsed() < Duration::from_secs(48),
            "{backend}: the allowance began again ({:?})",
            started.elapsed()
        );
        assert!(second.output().contains("allowance"), "{}", second.output());
        assert!(
            logged(&c.logoffd_journal(), &second.id, "past its allowance"),
            "{}",
            c.logoffd_journal()
        );
        let _ = c.exec(&["systemctl", "stop", "logoffd"]);
    }
}

/// Issue 26: a third session above `max_sessions = 2` is warned and logged off, the first
/// two stay (the newest go); with `sessions_go = "oldest"`, the first goes.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn sessions_above_max_sessions_are_warned_and_logged_off() {
    let Some(c) = container::boot("caps") else {
        return;
    };
    for (n, backend) in BACKENDS.iter().enumerate() {
        for go in ["newest", "oldest"] {
            let user = format!("cap{n}{}", &go[..1]);
            c.add_user(&user);
            let mut s: Vec<_> = (0..3)
                .map(|_| {
                    let s = c.ssh(&user, "cat");
                    std::thread::sleep(Duration::from_millis(1200));
                    s
                })
                .collect();
            install(
                &c,
                &policy_for(
                    &[&user],
                    &format!("max_sessions = 2\nsessions_go = \"{go}\"\nwarn = [\"6s\"]"),
                ),
                backend,
            );
            let going = if go == "newest" { 2 } else { 0 };
            assert!(
                s[going].wait_closed(Duration::from_secs(30)).is_some(),
                "{backend}, {go}: not logged off: {}",
                c.logoffd_journal()
            );
            assert!(
                s[going]
                    .output()
                    .contains("more sessions than its user may have"),
                "{}",
                s[going].output()
            );
            std::thread::sleep(Duration::from_secs(4));
            for (i, other) in s.iter_mut().enumerate().filter(|(i, _)| *i != going) {
                assert!(
                    other.is_connected(),
                    "{backend}, {go}: session {i} went too: {}\n{:?}",
                    c.logoffd_journal(),
                    c.sessions(&["--backend", backend])
                );
            }
            assert!(
                logged(&c.logoffd_journal(), &s[going].id, "above its sessions"),
                "{}",
                c.logoffd_journal()
            );
            let _ = c.exec(&["systemctl", "stop", "logoffd"]);
        }
    }
}

/// Issue 26: a step of the wall clock must log nobody off. logoffd runs under libfaketime,
/// whose clock (what the C library says) jumps three hours ahead while logoffd runs: idle,
/// max-age and allowance limits of an hour and two are past by that clock, and nobody is
/// logged off. (Before, logoffd took "now" from the C library and terminal times from the
/// kernel, and logged the session off.)
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_wall_clock_step_under_libfaketime_logs_nobody_off() {
    let Some(c) = container::boot("faketime") else {
        return;
    };
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        c.root.join(lib.trim_start_matches('/')).exists(),
        "libfaketime is not installed (scripts/test installs it)"
    );
    for (n, backend) in BACKENDS.iter().enumerate() {
        let user = format!("ft{n}");
        c.add_user(&user);
        let mut s = c.ssh(&user, "cat");
        let file = c.root.join("run/logoff-faketime");
        std::fs::write(&file, "+0\n").expect("faketime file");
        let dropin = c.root.join("etc/systemd/system/logoffd.service.d");
        std::fs::create_dir_all(&dropin).expect("drop-in dir");
        std::fs::write(
            dropin.join("faketime.conf"),
            format!(
                "[Service]\nEnvironment=LD_PRELOAD={lib} FAKETIME_TIMESTAMP_FILE=/run/logoff-faketime \
                 FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1\n"
            ),
        )
        .expect("drop-in");
        let reset = hhmm(next_minute(Duration::from_secs(12 * 3600)));
        install(
            &c,
            &policy_for(
                &[&user],
                &format!(
                    "idle = \"1h\"\nmax_age = \"2h\"\ntimezone = \"UTC\"\n\
                     allowance = {{ day = \"2h\", reset = \"{reset}\" }}\nwarn = [\"5s\"]"
                ),
            ),
            backend,
        );
        std::thread::sleep(Duration::from_secs(5));
        std::fs::write(&file, "+3h\n").expect("step");
        let end = Instant::now() + Duration::from_secs(25);
        while Instant::now() < end {
            assert!(
                s.is_connected(),
                "{backend}: logged off by a step of the wall clock: {}",
                c.logoffd_journal()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        let journal = c.logoffd_journal();
        assert!(
            !journal.contains(&format!("session {} (", s.id)),
            "{backend}: warned or logged off: {journal}"
        );
        let _ = c.exec(&["systemctl", "stop", "logoffd"]);
        let _ = std::fs::remove_dir_all(&dropin);
        let _ = c.exec(&["systemctl", "daemon-reload"]);
    }
}

/// Regression (hostile read of issue 26): on procfs, a login whose programs were moved into
/// the user's `user@UID.service` (`systemd-run --user --scope`, a common idiom) passed for
/// the user's service manager once its ssh login ended — class `manager`, which no rule
/// takes: no idle, disconnected, hours, allowance or cap limit applied to it any more. The
/// manager is the one whose earliest process is systemd itself, in the unit's `init.scope`.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_login_s_programs_moved_into_the_user_manager_are_not_the_manager() {
    let Some(c) = container::boot("mgrscope") else {
        return;
    };
    let user = "mgru";
    let uid = c.add_user(user);
    let login = c.ssh(user, "setsid -f sleep 3302; sleep 3301");
    assert!(
        wait_for(Duration::from_secs(15), || !c
            .pids_matching("sleep 3302")
            .is_empty()),
        "the program did not start: {}",
        c.log_tail(20)
    );
    let pid = c.pids_matching("sleep 3302")[0];
    // Into a scope of the user's user@UID.service, as `systemd-run --user --scope` does
    // (systemd moves it, for its own user, on the caller's word): here root moves it, in
    // whichever hierarchy systemd keeps (the test hosts may run cgroup v1's name=systemd).
    let scope = format!("/user.slice/user-{uid}.slice/user@{uid}.service/app.slice/moved.scope");
    let moved = c.exec(&[
        "sh",
        "-c",
        &format!(
            "if grep -q '^0::/' /proc/{pid}/cgroup && [ -f /sys/fs/cgroup/cgroup.procs ]; \
             then d=/sys/fs/cgroup{scope}; else d=/sys/fs/cgroup/systemd{scope}; fi; \
             mkdir -p \"$d\" && echo {pid} > \"$d/cgroup.procs\""
        ),
    ]);
    assert!(moved.status.success(), "move: {}", text(&moved.stderr));
    let cgroup = text(&c.exec(&["cat", &format!("/proc/{pid}/cgroup")]).stdout);
    assert!(cgroup.contains("moved.scope"), "not moved: {cgroup}");
    let id = text(&c.exec(&["cat", &format!("/proc/{pid}/sessionid")]).stdout)
        .trim()
        .to_string();
    assert_eq!(id, login.id, "the program keeps its login's audit session");
    drop(login);
    assert!(
        wait_for(Duration::from_secs(15), || c
            .pids_matching("sleep 3301")
            .is_empty()),
        "the login did not end"
    );
    let rows = c.sessions(&["--backend", "procfs"]);
    let row = rows
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("session {id} not listed: {rows:?}"));
    assert_ne!(row["class"], "manager", "{row}");
    assert!(
        rows.iter()
            .any(|s| s["user"] == user && s["class"] == "manager" && s["id"] != id.as_str()),
        "the user's real service manager is no longer one: {rows:?}"
    );
}
