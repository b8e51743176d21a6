//! Logoff without losing work, on a real logind with real terminals (test hosts booted with
//! systemd-nspawn): the warning on the session's pty, the grace period that lets a program
//! save, Ctrl-C that cancels, selection filters, dry runs, and the audit record in the
//! journal. They run on an elogind test host too (named `elogind_...`), where the record
//! goes to syslog.

mod common;

use std::time::{Duration, Instant};

use common::container::{self, Fleet, Kind};
use common::{assert_ok, text, wait_for};
use serde_json::Value;

/// A program that saves its buffer to ~/saved on SIGHUP or SIGTERM.
const SAVER: &str = "sh -c 'trap \"echo saved-buffer > $HOME/saved; exit 0\" HUP TERM; \
                     echo editing; while :; do sleep 1; done'";

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_grace_period_lets_programs_save_and_the_message_reaches_the_pty() {
    a_grace_period_lets_programs_save("grace", Kind::Systemd);
}

/// On elogind the warning from another host goes through that host's own logoff (it has no
/// systemd-stdio-bridge).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_a_grace_period_lets_programs_save_and_the_message_reaches_the_pty() {
    a_grace_period_lets_programs_save("elgrace", Kind::Elogind);
}

fn a_grace_period_lets_programs_save(test: &str, kind: Kind) {
    let Some(h) = container::boot_as(test, kind) else {
        return;
    };
    h.add_user("frank");
    let mut s = h.ssh("frank", SAVER);
    assert!(wait_for(Duration::from_secs(5), || s
        .output()
        .contains("editing")));
    let start = Instant::now();
    let out = h.logoff(&[
        "-v",
        "--grace",
        "2s",
        "--message",
        "Maintenance at noon: please save your work",
        &s.id,
    ]);
    let took = start.elapsed();
    assert_ok(&out, "logoff --grace 2s --message");
    assert!(took >= Duration::from_secs(2), "no grace: {took:?}");
    assert!(s.wait_closed(Duration::from_secs(10)).is_some());
    let said = s.output();
    assert!(
        said.contains("Maintenance at noon: please save your work"),
        "{said}"
    );
    assert!(said.contains("is logging off this session"), "{said}");
    let saved = h.exec(&["cat", "/home/frank/saved"]);
    assert_eq!(
        text(&saved.stdout).trim(),
        "saved-buffer",
        "the program did not save"
    );
    assert!(
        !text(&out.stdout).contains("SIGKILL"),
        "{}",
        text(&out.stdout)
    );

    // The same from another host, over ssh: the warning still reaches the pty.
    let mut s = h.ssh("frank", "sleep 1010");
    let fleet = Fleet::new(&[&h], "lt-g");
    let out = fleet.logoff(&["/SERVER:lt-g1", "--message", "from afar", &s.id]);
    assert_ok(&out, "remote logoff with a message");
    assert!(s.wait_closed(Duration::from_secs(10)).is_some());
    assert!(
        s.output().contains("from afar"),
        "{}\nlogoff said: {}",
        s.output(),
        text(&out.stderr)
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn ctrl_c_in_the_grace_period_cancels_and_says_so() {
    ctrl_c_cancels("cancel", Kind::Systemd);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_ctrl_c_in_the_grace_period_cancels_and_says_so() {
    ctrl_c_cancels("elcancel", Kind::Elogind);
}

fn ctrl_c_cancels(test: &str, kind: Kind) {
    let Some(h) = container::boot_as(test, kind) else {
        return;
    };
    h.add_user("ivy");
    let mut s = h.ssh("ivy", "sleep 1011");
    let logoff = std::process::Command::new("nsenter")
        .args(["-t", &h.pid1.to_string(), "-a"])
        .args([
            "/usr/local/bin/logoff",
            "--grace",
            "60s",
            "--message",
            "going down",
        ])
        .arg(&s.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn logoff");
    let mut logoff = container::Background(logoff);
    assert!(
        wait_for(Duration::from_secs(10), || s
            .output()
            .contains("going down")),
        "no warning: {}",
        s.output()
    );
    // Ctrl-C: SIGINT to logoff itself (inside the test host's PID namespace).
    let pids = h.pids_matching("logoff --grace 60s");
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_ok(
        &h.exec(&["kill", "-INT", &pids[0].to_string()]),
        "send SIGINT",
    );
    let status = logoff.wait(Duration::from_secs(10)).expect("logoff ended");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        wait_for(Duration::from_secs(5), || s
            .output()
            .contains("cancelled the logoff")),
        "{}",
        s.output()
    );
    // logoff has exited: had it asked logind to terminate, the session would be closing now.
    assert!(s.is_connected(), "the session was logged off anyway");
    assert!(h.session_alive(&s.id));
    assert_eq!(h.pids_matching("sleep 1011").len(), 1);
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn filters_dry_run_and_cleaning_up_a_user() {
    filters_dry_run("filters", Kind::Systemd);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_filters_dry_run_and_cleaning_up_a_user() {
    filters_dry_run("elfilter", Kind::Elogind);
}

fn filters_dry_run(test: &str, kind: Kind) {
    let Some(h) = container::boot_as(test, kind) else {
        return;
    };
    h.add_user("gina");
    h.add_user("hank");
    let mut g1 = h.ssh("gina", "sleep 1012");
    let mut g2 = h.ssh("gina", "sleep 1013");
    let mut k = h.ssh("hank", "sleep 1014");

    // --dry-run says what would happen and changes nothing.
    let out = h.logoff(&["--dry-run", "--user", "gina", "--all"]);
    assert_ok(&out, "dry run");
    let said = text(&out.stdout);
    for s in [&g1, &g2] {
        assert!(
            said.contains(&format!(
                "would log off session {} (gina on {})",
                s.id, s.tty
            )),
            "{said}"
        );
    }
    assert!(!said.contains("hank"), "{said}");
    let out = h.logoff(&["--dry-run", "--json", "--user", "gina", "--all"]);
    let planned: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(planned.len(), 2, "{planned:?}");
    assert!(
        planned
            .iter()
            .all(|p| p["dry_run"] == true && p["logged_off"] == false)
    );
    assert!(
        planned
            .iter()
            .all(|p| p["processes"].as_u64().is_some_and(|n| n >= 2))
    );
    assert!(g1.is_connected() && g2.is_connected() && k.is_connected());

    // --idle-for: only the session whose terminal was last touched two hours ago.
    assert_ok(
        &h.exec(&[
            "touch",
            "-a",
            "-d",
            "2 hours ago",
            &format!("/dev/{}", g2.tty),
        ]),
        "set the terminal's access time back",
    );
    assert_eq!(ids(&h.sessions(&["--idle-for", "1h"])), [g2.id.clone()]);
    assert_eq!(
        ids(&h.sessions(&["--state", "idle"])),
        [g2.id.clone()],
        "--state idle"
    );
    let out = h.logoff(&["--dry-run", "--all", "--idle-for", "1h"]);
    assert_ok(&out, "dry run idle");
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out.stdout)
    );
    // Filters that match nothing touch nothing and are not an error.
    let out = h.logoff(&["--user", "nobody-here", "--all"]);
    assert_ok(&out, "no match");
    assert!(g1.is_connected() && g2.is_connected() && k.is_connected());

    // --user gina --all ends gina's sessions only.
    let out = h.logoff(&["--user", "gina", "--all"]);
    assert_ok(&out, "logoff --user gina --all");
    assert!(g1.wait_closed(Duration::from_secs(10)).is_some());
    assert!(g2.wait_closed(Duration::from_secs(10)).is_some());
    assert!(k.is_connected(), "hank's session ended too");
    assert_eq!(h.pids_matching("sleep 101[23]").len(), 0);
    assert_eq!(h.pids_matching("sleep 1014").len(), 1);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_journal_holds_one_record_per_logoff() {
    one_record_per_logoff("journal", Kind::Systemd);
}

/// Where there is no journal, the record goes to syslog (facility authpriv).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn elogind_syslog_holds_one_record_per_logoff() {
    one_record_per_logoff("elsyslog", Kind::Elogind);
}

fn one_record_per_logoff(test: &str, kind: Kind) {
    let Some(h) = container::boot_as(test, kind) else {
        return;
    };
    h.add_user("jack");
    h.add_user("kate");
    let mut j = h.ssh("jack", "sleep 1015");
    let mut k = h.ssh("kate", "sleep 1016");
    // kate tries jack's session: refused, and recorded.
    let out = h
        .ssh_command("kate")
        .arg(format!("logoff {}", j.id))
        .output()
        .expect("ssh");
    assert!(
        text(&out.stderr).contains("access denied"),
        "{}",
        text(&out.stderr)
    );
    // root logs jack off with a grace period and a message.
    assert_ok(
        &h.logoff(&["--grace", "1s", "--message", "bye", &j.id]),
        "logoff jack",
    );
    assert!(j.wait_closed(Duration::from_secs(10)).is_some());
    assert!(k.is_connected());

    let records = h.audit_records(&[]);
    assert_eq!(records.len(), 2, "{records:?}");
    let refused = &records[0];
    assert_eq!(refused["LOGOFF_CALLER"], "kate", "{refused}");
    assert_eq!(refused["LOGOFF_SESSION"], j.id.as_str());
    assert_eq!(refused["LOGOFF_USER"], "jack");
    assert_eq!(refused["LOGOFF_RESULT"], "access-denied");
    let done = &records[1];
    assert_eq!(done["LOGOFF_CALLER"], "root", "{done}");
    assert_eq!(done["LOGOFF_CALLER_UID"], "0");
    assert_eq!(done["LOGOFF_SESSION"], j.id.as_str());
    assert_eq!(done["LOGOFF_USER"], "jack");
    assert_eq!(done["LOGOFF_TTY"], j.tty.as_str());
    assert_eq!(done["LOGOFF_REMOTE_HOST"], "127.0.0.1");
    assert_eq!(done["LOGOFF_HOST"], h.name.as_str());
    assert_eq!(done["LOGOFF_GRACE_SECONDS"], "1");
    assert_eq!(done["LOGOFF_RESULT"], "logged-off");
    assert!(
        done["MESSAGE"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("logged off session {} (jack on", j.id))),
        "{done}"
    );
}
