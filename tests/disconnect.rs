//! Disconnect, as Remote Desktop does it (issue 20): the connection ends, the programs live
//! on, the user comes back. Real logind test hosts with real sshd and tmux, real xrdp with
//! real xfreerdp clients, and logoffd as installed there taking sessions through warn →
//! disconnect → warn → logoff. Needs root; under CI=true a test host that cannot be built
//! fails the test.

mod common;

use std::time::Duration;

use common::container::logoffd::policy_for;
use common::container::rdp::{self, RdpHost, Screen};
use common::container::{self, Container};
use common::{assert_ok, require, text, wait_for};
use serde_json::Value;

/// Whether any process whose command line matches `pattern` runs in the test host.
fn runs(c: &Container, pattern: &str) -> bool {
    !c.pids_matching(pattern).is_empty()
}

/// The row of session `id` in `logoff --list --json`.
fn row(c: &Container, id: &str) -> Option<Value> {
    c.sessions(&[]).into_iter().find(|s| s["id"] == id)
}

/// logoff's audit records of session `id` in the test host's journal, as JSON lines.
fn records(c: &Container, id: &str) -> String {
    text(
        &c.exec(&[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "SYSLOG_IDENTIFIER=logoff",
            &format!("LOGOFF_SESSION={id}"),
        ])
        .stdout,
    )
}

/// An ssh login running tmux (a pane running `sleep MARK`): disconnected by
/// `logoff --disconnect`, tmux and its program live on, the session shows disconnected and
/// the user's next login reattaches. Then logoffd's disconnected limit: never while the
/// user is attached and typing; once detached past it, logged off whole.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_ssh_session_under_tmux_is_disconnected_reattached_and_later_logged_off_whole() {
    let Some(c) = container::boot("discssh") else {
        return;
    };
    c.add_user("dtm");
    let mut a = c.ssh("dtm", "tmux new-session -s work 'sleep 1501'");
    assert!(wait_for(Duration::from_secs(10), || runs(
        &c,
        "^sleep 1501$"
    )));
    // The shell (here tmux's client) is on the connection's terminal; tmux's server is not.
    let out = c.logoff(&["--disconnect", "--json", &a.id]);
    assert_ok(&out, "logoff --disconnect");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report[0]["action"], "disconnect", "{report}");
    assert_eq!(report[0]["disconnected"], true, "{report}");
    assert_eq!(report[0]["client"], "127.0.0.1", "{report}");
    assert!(
        a.wait_closed(Duration::from_secs(10)).is_some(),
        "the ssh connection did not end"
    );
    assert!(runs(&c, "^sleep 1501$"), "the program under tmux ended");
    let listed = wait_for(Duration::from_secs(10), || {
        row(&c, &a.id).is_some_and(|r| r["state"] == "closing")
    });
    assert!(listed, "not shown disconnected: {:?}", row(&c, &a.id));
    assert!(
        c.sessions(&["--state", "disconnected"])
            .iter()
            .any(|s| s["id"] == a.id.as_str())
    );
    let rec = records(&c, &a.id);
    assert!(rec.contains("\"LOGOFF_ACTION\":\"disconnect\""), "{rec}");
    assert!(rec.contains("\"LOGOFF_RESULT\":\"disconnected\""), "{rec}");

    // A new login reattaches; while it is attached and typing, the limit leaves A alone.
    let mut b = c.ssh("dtm", "tmux attach -t work");
    let in_use = wait_for(Duration::from_secs(15), || {
        row(&c, &a.id).is_some_and(|r| r["in_use_by"] == b.id.as_str())
    });
    assert!(in_use, "{:?}", row(&c, &a.id));
    c.install_logoffd(&policy_for(&["dtm"], "disconnected = \"6s\""), "");
    for _ in 0..8 {
        b.type_line("typing");
        assert!(runs(&c, "^sleep 1501$"), "logged off while attached");
        std::thread::sleep(Duration::from_secs(2));
    }
    // Detached (B's client goes with B's connection): A is disconnected, and goes whole.
    drop(b);
    let gone = wait_for(Duration::from_secs(40), || !runs(&c, "^sleep 1501$"));
    assert!(gone, "never logged off: {}", c.logoffd_journal());
    assert!(
        wait_for(Duration::from_secs(10), || !c
            .sessions(&[])
            .iter()
            .any(|s| s["id"] == a.id.as_str())),
        "the session is still listed"
    );
    let rec = records(&c, &a.id);
    assert!(rec.contains("\"LOGOFF_RESULT\":\"logged-off\""), "{rec}");
    assert!(rec.contains("\"LOGOFF_REASON\":\"disconnected\""), "{rec}");
}

/// On hosts without logind (the procfs backend), an ssh login with a terminal is
/// disconnected: its connection is found from the session's first process as the kernel
/// has it (sshd's monitor), not from utmp (whose record names whichever process sshd chose
/// to write it from); its job lives on.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn procfs_disconnects_an_ssh_login_with_a_terminal_and_its_job_lives_on() {
    let Some(c) = container::boot("discpfs") else {
        return;
    };
    c.add_user("dpf");
    let mut a = c.ssh(
        "dpf",
        "nohup sleep 1504 >/dev/null 2>&1 & echo started; cat",
    );
    assert!(wait_for(Duration::from_secs(10), || a
        .output()
        .contains("started")));
    assert!(wait_for(Duration::from_secs(10), || runs(
        &c,
        "^sleep 1504$"
    )));
    let out = c.logoff(&["--backend", "procfs", "--list", "--json", "--user", "dpf"]);
    assert_ok(&out, "procfs list");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = rows
        .iter()
        .find(|r| r["tty"] == "pts/0")
        .unwrap_or_else(|| panic!("no procfs session with a terminal: {rows:?}"));
    let id = row["id"].as_str().expect("id").to_string();
    let out = c.logoff(&["--backend", "procfs", "--disconnect", "--json", &id]);
    assert_ok(&out, "logoff --backend procfs --disconnect");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report[0]["disconnected"], true, "{report}");
    assert_eq!(report[0]["client"], "127.0.0.1", "{report}");
    assert!(
        a.wait_closed(Duration::from_secs(10)).is_some(),
        "the ssh connection did not end"
    );
    assert!(runs(&c, "^sleep 1504$"), "the session's job ended");
}

/// What disconnect refuses, with nothing touched: another user's session without
/// privilege (4); a session with no connection to end — a local `su -l` login — (7).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn disconnect_refuses_what_it_must_and_touches_nothing() {
    let Some(c) = container::boot("discno") else {
        return;
    };
    c.add_user("dvic");
    c.add_user("deve");
    let mut victim = c.ssh("dvic", "sleep 1502");
    let out = c.sh(&format!(
        "setpriv --reuid=deve --regid=deve --init-groups /usr/local/bin/logoff --disconnect {}",
        victim.id
    ));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(victim.is_connected(), "another user disconnected it");

    let _local = c.su("deve", "sleep 1503");
    let local = c.wait_session(|s| s["user"] == "deve");
    let id = local["id"].as_str().expect("id").to_string();
    assert!(wait_for(Duration::from_secs(10), || runs(
        &c,
        "^sleep 1503$"
    )));
    let out = c.logoff(&["--disconnect", &id]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no connection to end"),
        "{}",
        text(&out.stderr)
    );
    assert!(runs(&c, "^sleep 1503$"), "the local session was touched");
    let rec = records(&c, &id);
    assert!(rec.contains("\"LOGOFF_RESULT\":\"no-connection\""), "{rec}");
    // The user's own disconnect needs no privilege (tsdiscon, as RDS users know it).
    let link = c.sh("ln -sf /usr/local/bin/logoff /usr/local/bin/tsdiscon");
    assert_ok(&link, "the tsdiscon link");
    let out = c.sh(&format!(
        "setpriv --reuid=dvic --regid=dvic --init-groups /usr/local/bin/tsdiscon {}",
        victim.id
    ));
    assert_ok(&out, "the user's own tsdiscon");
    assert!(victim.wait_closed(Duration::from_secs(10)).is_some());
}

/// logoffd with `idle`, `action = "disconnect"` and `disconnected` takes an idle ssh+tmux
/// session through warn → disconnect → warn → logoff; the audit records name each step.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn logoffd_disconnects_an_idle_session_then_logs_it_off_once_disconnected_too_long() {
    let Some(c) = container::boot("disctwo") else {
        return;
    };
    c.add_user("dtwo");
    let mut a = c.ssh("dtwo", "tmux new-session -s w 'sleep 1504'");
    c.install_logoffd(
        &policy_for(
            &["dtwo"],
            "idle = \"10s\"\naction = \"disconnect\"\ndisconnected = \"10s\"\nwarn = [\"5s\"]",
        ),
        "",
    );
    assert!(
        a.wait_closed(Duration::from_secs(40)).is_some(),
        "never disconnected: {}",
        c.logoffd_journal()
    );
    let said = a.output();
    assert!(
        said.contains("it will be disconnected in") && said.contains("reconnect to continue"),
        "{said}"
    );
    assert!(runs(&c, "^sleep 1504$"), "disconnect ended the program");
    let gone = wait_for(Duration::from_secs(40), || !runs(&c, "^sleep 1504$"));
    assert!(gone, "never logged off: {}", c.logoffd_journal());
    let journal = c.logoffd_journal();
    assert!(
        journal.contains(&format!("disconnected session {}", a.id)),
        "{journal}"
    );
    assert!(
        journal.contains(&format!("logged off session {}", a.id)),
        "{journal}"
    );
    let rec = records(&c, &a.id);
    let lines: Vec<&str> = rec.lines().collect();
    let step = |action: &str, reason: &str| {
        lines.iter().position(|l| {
            l.contains(&format!("\"LOGOFF_ACTION\":\"{action}\""))
                && l.contains(&format!("\"LOGOFF_REASON\":\"{reason}\""))
        })
    };
    let first = step("disconnect", "idle").unwrap_or_else(|| panic!("no disconnect: {rec}"));
    let second = step("logoff", "disconnected").unwrap_or_else(|| panic!("no logoff: {rec}"));
    assert!(first < second, "{rec}");
}

/// A test host with xrdp running (or why not: skip outside CI, fail under it).
fn boot_rdp(test: &str) -> Option<(Container, RdpHost)> {
    let c = container::boot(test)?;
    match c.start_xrdp() {
        Ok(host) => Some((c, host)),
        Err(why) => {
            require(test, Err(format!("cannot run xrdp in a test host: {why}")));
            None
        }
    }
}

/// The RDP session of `user`, once `pred` holds of it.
fn rdp_session(c: &Container, user: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Vec::new();
    let mut found = None;
    let ok = wait_for(Duration::from_secs(45), || {
        last = c.sessions(&[]);
        found = last
            .iter()
            .find(|s| s["user"] == user && s["service"] == "xrdp-sesman" && pred(s))
            .cloned();
        found.is_some()
    });
    assert!(ok, "the RDP session of {user} never got there: {last:#?}");
    found.expect("found")
}

/// The first xterm window's ID on `display`, as `xwininfo -root -tree` lists it.
fn xterm_window(c: &Container, user: &str, display: &str) -> Option<String> {
    c.windows_on(user, display)
        .lines()
        .find(|l| l.contains("xterm") || l.contains("XTerm"))
        .and_then(|l| l.split_whitespace().next().map(String::from))
}

/// `logoff --disconnect :10` on a real RDP login: the client's connection ends, the
/// session's X programs run on, and the user's next RDP login gets the same display and its
/// windows. Then logoffd's disconnected limit logs it off whole.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_rdp_session_is_disconnected_reconnected_to_its_windows_and_later_logged_off() {
    let _one = rdp::one_at_a_time();
    let Some((c, host)) = boot_rdp("discrdp") else {
        return;
    };
    c.add_rdp_user("drdp");
    let screen = Screen::start();
    let mut client = screen.connect(&host, "drdp");
    let s = rdp_session(&c, "drdp", |s| s["state"] == "active");
    let id = s["id"].as_str().expect("id").to_string();
    let display = s["display"].as_str().expect("display").to_string();
    let mut window = None;
    assert!(
        wait_for(Duration::from_secs(30), || {
            window = xterm_window(&c, "drdp", &display);
            window.is_some()
        }),
        "no xterm on {display}: {}",
        c.windows_on("drdp", &display)
    );
    let out = c.logoff(&["--disconnect", "/V", &display]);
    assert_ok(&out, "logoff --disconnect :N");
    assert!(
        client.exited(Duration::from_secs(15)),
        "the RDP client is still connected"
    );
    let s = rdp_session(&c, "drdp", |s| s["state"] == "disconnected");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(
        xterm_window(&c, "drdp", &display),
        window,
        "the window went"
    );

    // The user comes back: the same session, display and window.
    let back = screen.connect(&host, "drdp");
    let s = rdp_session(&c, "drdp", |s| s["state"] == "active");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["display"], display.as_str());
    assert_eq!(xterm_window(&c, "drdp", &display), window);

    // Disconnected past the limit: logged off whole.
    back.disconnect();
    rdp_session(&c, "drdp", |s| s["state"] == "disconnected");
    c.install_logoffd(&policy_for(&["drdp"], "disconnected = \"5s\""), "");
    let gone = wait_for(Duration::from_secs(40), || {
        !c.sessions(&[]).iter().any(|s| s["id"] == id.as_str())
    });
    assert!(gone, "never logged off: {}", c.logoffd_journal());
    // Of the user's processes, those of a login session (not the user's service manager's,
    // which logind stops on its own once the user has no session).
    let left = c.sh(
        "for p in $(pgrep -u drdp); do grep -q 'session-.*scope' /proc/$p/cgroup 2>/dev/null \
         && tr '\\0' ' ' < /proc/$p/cmdline && echo; done",
    );
    assert_eq!(text(&left.stdout).trim(), "", "processes left");
}

/// logoffd takes an idle RDP session through warn → disconnect (its client goes, its
/// programs stay) → warn → logoff, the audit records naming each step.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn logoffd_disconnects_an_idle_rdp_session_then_logs_it_off() {
    let _one = rdp::one_at_a_time();
    let Some((c, host)) = boot_rdp("discrdp2") else {
        return;
    };
    c.add_rdp_user("drdp2");
    let screen = Screen::start();
    let mut client = screen.connect(&host, "drdp2");
    let s = rdp_session(&c, "drdp2", |s| s["state"] == "active");
    let id = s["id"].as_str().expect("id").to_string();
    c.install_logoffd(
        &policy_for(
            &["drdp2"],
            "idle = \"10s\"\naction = \"disconnect\"\ndisconnected = \"10s\"\nwarn = [\"5s\"]",
        ),
        "",
    );
    assert!(
        client.exited(Duration::from_secs(45)),
        "never disconnected: {}",
        c.logoffd_journal()
    );
    assert!(
        c.session_alive(&id) || row(&c, &id).is_some(),
        "logged off, not disconnected"
    );
    let gone = wait_for(Duration::from_secs(45), || row(&c, &id).is_none());
    assert!(gone, "never logged off: {}", c.logoffd_journal());
    let rec = records(&c, &id);
    assert!(
        rec.contains("\"LOGOFF_ACTION\":\"disconnect\"")
            && rec.contains("\"LOGOFF_ACTION\":\"logoff\""),
        "{rec}"
    );
}
