//! xrdp sessions, with real RDP logins: xrdp 0.9 and xorgxrdp in a test host, xfreerdp under
//! Xvfb on this machine as the client (see `common/container/rdp.rs`). Needs root; under
//! CI=true a test host or an xrdp that cannot be started fails the test.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::container::rdp::{self, MARKER, RdpHost, Screen};
use common::container::{self, Container};
use common::{assert_ok, require, text, wait_for};
use serde_json::Value;

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

/// The session of `user` as `logoff --list --json` shows it, once it satisfies `pred`.
fn wait_rdp_session(c: &Container, user: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    let mut last = Vec::new();
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

/// The processes of `user` in a login session's scope (not the user's service manager,
/// which logind stops on its own once the user has no session left), as `pgrep -a` says.
fn session_processes(c: &Container, user: &str) -> String {
    let out = c.sh(&format!(
        "for p in $(pgrep -u {user}); do grep -q 'session-.*scope' /proc/$p/cgroup 2>/dev/null \
         && tr '\\0' ' ' < /proc/$p/cmdline && echo; done"
    ));
    text(&out.stdout).trim().to_string()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_rdp_login_is_remote_from_its_client_idle_and_disconnects_and_reconnects() {
    let _one = rdp::one_at_a_time();
    let Some((c, host)) = boot_rdp("rdplist") else {
        return;
    };
    c.add_rdp_user("rdpuser");
    let screen = Screen::start();
    let client = screen.connect(&host, "rdpuser");
    let s = wait_rdp_session(&c, "rdpuser", |s| s["remote_host"] == "127.0.0.1");
    let id = s["id"].as_str().expect("id").to_string();
    assert_eq!(s["state"], "active", "{s:#}");
    assert_eq!(s["remote"], true, "{s:#}");
    assert!(
        s["idle_seconds"].is_u64(),
        "idle time from the X server: {s:#}"
    );
    let display = s["display"].as_str().expect("display").to_string();
    assert_eq!(s["name"], display.as_str());
    // The same session as logind's: ID, user, display.
    assert_eq!(c.loginctl_property(&id, "Name").as_deref(), Some("rdpuser"));
    assert_eq!(
        c.loginctl_property(&id, "Display").as_deref(),
        Some(display.as_str())
    );
    assert_eq!(
        c.loginctl_property(&id, "User"),
        s["uid"].as_u64().map(|u| u.to_string())
    );
    // Filters find it as an RDP admin would look for it.
    assert_eq!(ids(&c.sessions(&["--from", "127.0.0.1"])), vec![id.clone()]);
    assert!(ids(&c.sessions(&["--remote"])).contains(&id));
    let table = c.logoff(&["--list"]);
    assert_ok(&table, "logoff --list");
    let line = text(&table.stdout)
        .lines()
        .find(|l| l.contains("rdpuser"))
        .map(String::from)
        .expect("listed");
    assert!(
        line.contains(&display) && line.contains("127.0.0.1"),
        "{line}"
    );

    // The client goes: disconnected, as Windows' Disc; found by --state disconnected.
    client.disconnect();
    let s = wait_rdp_session(&c, "rdpuser", |s| s["state"] == "disconnected");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["remote"], true);
    assert_eq!(
        ids(&c.sessions(&["--state", "disconnected"])),
        vec![id.clone()]
    );
    assert!(c.session_alive(&id), "logind still has it");

    // Reconnecting: xrdp reuses the session, active again.
    let _client = screen.connect(&host, "rdpuser");
    let s = wait_rdp_session(&c, "rdpuser", |s| s["state"] == "active");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["remote_host"], "127.0.0.1");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_disconnected_sweep_ends_only_the_disconnected_rdp_session_and_all_of_it() {
    let _one = rdp::one_at_a_time();
    let Some((c, host)) = boot_rdp("rdpsweep") else {
        return;
    };
    c.add_rdp_user("stays");
    c.add_rdp_user("leaves");
    c.add_user("sshuser");
    let screen = Screen::start();
    let _stays = screen.connect(&host, "stays");
    let leaves = screen.connect(&host, "leaves");
    let kept = wait_rdp_session(&c, "stays", |s| s["remote_host"] == "127.0.0.1");
    wait_rdp_session(&c, "leaves", |s| s["remote_host"] == "127.0.0.1");
    let ssh = c.ssh("sshuser", "sleep 1000");
    leaves.disconnect();
    let gone = wait_rdp_session(&c, "leaves", |s| s["state"] == "disconnected");
    let gone_id = gone["id"].as_str().expect("id").to_string();
    let before = session_processes(&c, "leaves");
    assert!(
        before.contains("Xorg") && before.contains(MARKER),
        "the disconnected session runs its X server and its program: {before}"
    );

    let out = c.logoff(&["--state", "disconnected", "--all", "/V"]);
    assert_ok(&out, "logoff --state disconnected --all");
    // Every process of it ended (its X server, its terminal, the marked sleep), the
    // session gone; the connected RDP session and the ssh session untouched.
    let left = session_processes(&c, "leaves");
    assert!(left.is_empty(), "left running: {left}");
    assert!(!c.session_alive(&gone_id));
    let kept_id = kept["id"].as_str().expect("id");
    assert!(c.session_alive(kept_id));
    assert!(c.session_alive(&ssh.id));
    let marked = c.exec(&["pgrep", "-u", "stays", "-f", MARKER]);
    assert!(
        !text(&marked.stdout).trim().is_empty(),
        "stays' session runs on"
    );
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains(&gone_id), "{said}");
    assert!(!said.contains(&format!("session {kept_id} ")), "{said}");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_warning_shows_on_the_rdp_display_and_ctrl_c_cancels() {
    let _one = rdp::one_at_a_time();
    let Some((c, host)) = boot_rdp("rdpwarn") else {
        return;
    };
    c.add_rdp_user("rdpwarned");
    let screen = Screen::start();
    let _client = screen.connect(&host, "rdpwarned");
    let s = wait_rdp_session(&c, "rdpwarned", |s| s["remote_host"] == "127.0.0.1");
    let id = s["id"].as_str().expect("id").to_string();
    let display = s["display"].as_str().expect("display").to_string();
    assert!(!c.windows_on("rdpwarned", &display).contains("\"logoff\""));

    let mut logoff = Command::new("nsenter")
        .args(["-t", &c.pid1.to_string(), "-a", "sh", "-c"])
        .arg(format!(
            "exec /usr/local/bin/logoff {id} /V --grace 60s \
             --message 'Maintenance: please save your work'"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logoff");
    let shown = wait_for(Duration::from_secs(15), || {
        c.windows_on("rdpwarned", &display).contains("\"logoff\"")
    });
    assert!(
        shown,
        "no window on {display}: {}",
        c.windows_on("rdpwarned", &display)
    );
    // Regression (issue 17, item 2): the window was `xmessage`, run as the user with
    // logoff's audit session, login uid and cgroup; the user could ptrace it and start
    // what would then carry the admin's identity. logoff draws the window itself: no
    // process runs as the user outside their own session and user manager.
    let strays = c.sh(
        "for p in $(pgrep -u rdpwarned); do grep -qE 'session-.*scope|user@' /proc/$p/cgroup \
         || tr '\\0' ' ' < /proc/$p/cmdline; done",
    );
    assert_eq!(
        text(&strays.stdout).trim(),
        "",
        "processes of the user's outside their session"
    );

    // Ctrl-C during the grace period: nobody is logged off; the run ends, and its window
    // with it. (To logoff itself, inside: nsenter does not pass signals on.)
    let interrupted = c.exec(&["pkill", "-INT", "-x", "logoff"]);
    assert_ok(&interrupted, "pkill -INT logoff");
    let status = common::wait_exit(&mut logoff, Duration::from_secs(15)).expect("logoff ended");
    let out = logoff.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(130), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("warned on") && said.contains(&display),
        "{said}"
    );
    assert!(c.session_alive(&id));
    let closed = wait_for(Duration::from_secs(5), || {
        !c.windows_on("rdpwarned", &display).contains("\"logoff\"")
    });
    assert!(closed, "the window outlived the logoff that showed it");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_procfs_backend_sees_rdp_sessions_that_have_an_audit_session() {
    let _one = rdp::one_at_a_time();
    let Some(c) = container::boot("rdpprocfs") else {
        return;
    };
    // xrdp's PAM stack gives its sessions no audit session ID; with pam_loginuid it does.
    let pam = c.sh("echo 'session required pam_loginuid.so' >> /etc/pam.d/xrdp-sesman");
    assert_ok(&pam, "pam_loginuid for xrdp-sesman");
    let host = match c.start_xrdp() {
        Ok(host) => host,
        Err(why) => {
            require("rdpprocfs", Err(why));
            return;
        }
    };
    c.add_rdp_user("viaprocfs");
    let screen = Screen::start();
    let client = screen.connect(&host, "viaprocfs");
    let find = |state: &str| {
        let mut last = Vec::new();
        let ok = wait_for(Duration::from_secs(45), || {
            last = c.sessions(&["--backend", "procfs", "--user", "viaprocfs"]);
            last.iter()
                .any(|s| s["display"].is_string() && s["state"] == state)
        });
        assert!(ok, "procfs never showed it {state}: {last:#?}");
        last.into_iter()
            .find(|s| s["display"].is_string())
            .expect("found")
    };
    let s = find("active");
    assert_eq!(s["remote_host"], "127.0.0.1", "{s:#}");
    assert_eq!(
        s["name"], s["display"],
        "named by its display, not its xterm's terminal"
    );
    assert!(s["idle_seconds"].is_u64(), "{s:#}");
    client.disconnect();
    let s = find("disconnected");
    let id = s["id"].as_str().expect("id");
    let out = c.logoff(&["--backend", "procfs", id]);
    assert_ok(&out, "logoff --backend procfs");
    let left = c.exec(&["pgrep", "-a", "-u", "viaprocfs", "-f", MARKER]);
    assert!(
        text(&left.stdout).trim().is_empty(),
        "{}",
        text(&left.stdout)
    );
}
