//! The Sessions page in Cockpit (cockpit/, the cockpit-logoff package), proven in a real
//! browser: a test host with the logoff and cockpit-logoff .debs installed and Debian's
//! Cockpit (cockpit-ws, cockpit-system) listening on a loopback port of its own; a headless
//! Chromium (driven by chromedriver, see `common::webdriver`) logs in through Cockpit's
//! login form.
//!
//! An admin (a user in the sudo group, with a password, and Cockpit's administrative
//! access) finds another user's real ssh session in the table and logs it off through the
//! dialog with a message; the test host then shows every process of that session gone and
//! the audit record names the admin. A user without administrative access sees another
//! user's session with no enabled action, and the host is untouched.
//!
//! The test saves a screenshot of the page (target/cockpit-sessions.png; with
//! LOGOFF_UPDATE_DOCS=1 also doc/cockpit-sessions.png, the one README shows). Needs root,
//! the packages (scripts/package) and the browser (scripts/test installs chromium).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::container::{self, Container, SshSession};
use common::webdriver::{self, Browser, Element};
use common::{assert_ok, require, text, wait_for};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ADMIN: &str = "ckadmin";
const USER: &str = "ckuser";
const VICTIM: &str = "ckvictim";
const PASSWORD: &str = "Cockpit-test-2026";
const MESSAGE: &str = "Maintenance: logged off from Cockpit";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The two .debs, or why the test cannot run (skip outside CI, fail under it).
fn debs(test: &str) -> Option<[PathBuf; 2]> {
    let dir = repo().join("target/packages");
    let debs = [
        dir.join(format!("logoff_{VERSION}_amd64.deb")),
        dir.join(format!("cockpit-logoff_{VERSION}_all.deb")),
    ];
    let needs = match debs.iter().find(|d| !d.exists()) {
        Some(missing) => Err(format!(
            "{} is missing: run scripts/package",
            missing.display()
        )),
        None => webdriver::available().and_then(|()| {
            Path::new("/usr/lib/cockpit/cockpit-ws")
                .exists()
                .then_some(())
                .ok_or_else(|| "cockpit-ws is not installed (scripts/test installs it)".into())
        }),
    };
    require(test, needs).then_some(debs)
}

/// Installs the packages; the page then runs the packaged /usr/bin/logoff (the test host's
/// /usr/local/bin copy, first in PATH, goes).
fn install(c: &Container, debs: &[PathBuf; 2]) {
    let mut args = vec!["dpkg".to_string(), "-i".to_string()];
    for deb in debs {
        let name = deb.file_name().expect("a file name").to_string_lossy();
        std::fs::copy(deb, c.root.join("root").join(&*name)).expect("copy a .deb");
        args.push(format!("/root/{name}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_ok(&c.exec(&args), "dpkg -i");
    std::fs::remove_file(c.root.join("usr/local/bin/logoff")).expect("rm /usr/local/bin/logoff");
    let out = c.sh("command -v logoff");
    assert_eq!(text(&out.stdout).trim(), "/usr/bin/logoff");
}

/// A user who logs in to Cockpit with a password (and over ssh with the test key); an
/// admin is in the sudo group.
fn add_password_user(c: &Container, name: &str, admin: bool) {
    c.add_user(name);
    if admin {
        assert_ok(&c.exec(&["usermod", "-aG", "sudo", name]), "usermod");
    }
    assert_ok(
        &c.sh(&format!("echo '{name}:{PASSWORD}' | chpasswd")),
        "chpasswd",
    );
}

/// Starts Cockpit in the test host on a free loopback port (the test hosts share this
/// machine's network: not on 9090); returns the port.
fn start_cockpit(c: &Container) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dropin = c.root.join("etc/systemd/system/cockpit.socket.d");
    std::fs::create_dir_all(&dropin).expect("mkdir cockpit.socket.d");
    std::fs::write(
        dropin.join("logoff-test.conf"),
        format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    )
    .expect("write the socket drop-in");
    assert_ok(&c.exec(&["systemctl", "daemon-reload"]), "daemon-reload");
    assert_ok(
        &c.exec(&["systemctl", "start", "cockpit.socket"]),
        "start cockpit.socket",
    );
    assert!(
        wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "cockpit never listened on {port}"
    );
    port
}

/// Logs in through Cockpit's login form. An admin logs in as one who chose administrative
/// access before: Cockpit remembers that choice per user in the browser, and the login then
/// hands the password to sudo for the privileged bridge.
fn login(b: &Browser, port: u16, user: &str, admin: bool) {
    b.goto(&format!("http://127.0.0.1:{port}/"))
        .expect("open Cockpit");
    b.wait("#login-user-input", Duration::from_secs(30))
        .expect("Cockpit's login form");
    if admin {
        b.script(&format!(
            "window.localStorage.setItem('superuser:{user}', 'any');"
        ))
        .expect("remember administrative access");
    }
    // The form takes input once the login page's script has shown it.
    b.type_css("#login-user-input", user, Duration::from_secs(30))
        .expect("type the user");
    b.type_css("#login-password-input", PASSWORD, Duration::from_secs(10))
        .expect("type the password");
    b.click_css("#login-button", Duration::from_secs(10))
        .expect("log in");
    b.wait("#super-user-indicator", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the shell never came after {user}'s login: {e}"));
}

/// Opens the Sessions page and works inside its frame; waits for the list and the
/// permission check (body[data-admin]).
fn open_sessions(b: &Browser, port: u16) {
    b.goto(&format!("http://127.0.0.1:{port}/logoff"))
        .expect("open /logoff");
    let frame = b
        .wait("iframe[name$='/logoff']", Duration::from_secs(30))
        .expect("the page's frame");
    b.enter_frame(&frame).expect("enter the frame");
    assert!(
        b.wait_until(
            "return document.querySelector('#rows tr') !== null && \
             ['yes', 'no'].includes(document.body.dataset.admin)",
            Duration::from_secs(30),
        ),
        "the page never listed sessions: {}",
        b.script("return document.body.innerText")
            .unwrap_or_default()
    );
}

/// The table row of session `id`, once the page shows it (it refreshes on logind's signals).
fn row(b: &Browser, id: &str) -> Element {
    b.wait(
        &format!("#rows tr[data-id='{id}']"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("session {id} is not in the table: {e}"))
}

fn button(b: &Browser, id: &str, action: &str) -> Element {
    row(b, id);
    b.find(&format!(
        "#rows tr[data-id='{id}'] button[data-action='{action}']"
    ))
    .unwrap_or_else(|| panic!("no {action} button for session {id}"))
}

/// On a failure, what the browser showed: target/cockpit-failure.png.
struct Evidence<'a>(&'a Browser);

impl Drop for Evidence<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.leave_frames();
            if let Ok(png) = self.0.screenshot() {
                let path = repo().join("target/cockpit-failure.png");
                if std::fs::write(&path, png).is_ok() {
                    eprintln!("the browser showed: {}", path.display());
                }
            }
        }
    }
}

/// Saves what the window shows as target/cockpit-NAME.png (and the README's image, with
/// LOGOFF_UPDATE_DOCS=1, from "sessions"); then works inside the page's frame again.
fn screenshot(b: &Browser, name: &str) {
    b.leave_frames().expect("leave the frame");
    let png = b.screenshot().expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is no PNG");
    let path = repo().join(format!("target/cockpit-{name}.png"));
    std::fs::write(&path, &png).expect("save the screenshot");
    if name == "sessions" && std::env::var_os("LOGOFF_UPDATE_DOCS").is_some() {
        std::fs::write(repo().join("doc/cockpit-sessions.png"), &png).expect("save doc image");
    }
    let frame = b.find("iframe[name$='/logoff']").expect("the page's frame");
    b.enter_frame(&frame).expect("enter the frame");
}

/// The audit records of logoff in the test host's journal, for session `id`.
fn audit_records(c: &Container, id: &str) -> Vec<serde_json::Value> {
    let out = c.exec(&[
        "journalctl",
        "--no-pager",
        "-o",
        "json",
        "SYSLOG_IDENTIFIER=logoff",
        &format!("LOGOFF_SESSION={id}"),
    ]);
    text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The admin logs off `victim` through the dialog (Escape first closes it, focus back).
fn admin_logs_off(b: &Browser, victim: &SshSession) {
    assert!(
        b.wait_until(
            "return document.body.dataset.admin === 'yes'",
            Duration::from_secs(30)
        ),
        "Cockpit gave the admin no administrative access"
    );
    let logoff = format!(
        "#rows tr[data-id='{}'] button[data-action='logoff']",
        victim.id
    );
    assert!(
        b.enabled(&button(b, &victim.id, "logoff")),
        "an admin's Log off is disabled"
    );
    // sshd gives a new session its terminal just after logind announced it; the page lists
    // again a moment after each new session.
    assert!(
        b.wait_until(
            "return [...document.querySelectorAll('#rows td[data-column=name]')]\
             .every(td => td.textContent !== '-')",
            Duration::from_secs(10)
        ),
        "a session's terminal never showed"
    );
    screenshot(b, "sessions");
    b.click_css(&logoff, Duration::from_secs(10))
        .expect("click Log off");
    assert!(
        b.wait_until(
            "return document.getElementById('dialog').open && \
             document.activeElement.id === 'dialog-message'",
            Duration::from_secs(5)
        ),
        "the dialog did not open with the focus on its message"
    );
    b.type_css("#dialog-message", "\u{e00c}", Duration::from_secs(5))
        .expect("press Escape");
    assert!(
        b.wait_until(
            &format!(
                "return !document.getElementById('dialog').open && \
                 document.activeElement.dataset.focus === 'logoff-{}'",
                victim.id
            ),
            Duration::from_secs(5)
        ),
        "Escape did not close the dialog and give the focus back"
    );
    b.click_css(&logoff, Duration::from_secs(10))
        .expect("click Log off again");
    b.type_css(
        "#dialog[open] #dialog-message",
        MESSAGE,
        Duration::from_secs(5),
    )
    .expect("type the message");
    // A grace period, so the warning has reached the user's ssh client before logoff ends
    // the session (with none, sshd may die before it forwards the terminal's output).
    b.type_css("#dialog-grace", "2s", Duration::from_secs(5))
        .expect("type the grace period");
    screenshot(b, "dialog");
    b.click_css("#dialog-ok", Duration::from_secs(5))
        .expect("confirm");
    let done = b
        .wait("#alerts [class*='pf-m-success']", Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "no success shown ({e}): {}",
                b.script("return document.getElementById('alerts').innerText")
                    .unwrap_or_default()
            )
        });
    assert!(b.text(&done).contains("Logged off"), "{}", b.text(&done));
    screenshot(b, "done");
}

/// The admin runs `action` (Disconnect, Send message) on session `id` through its dialog,
/// with `message` if the action takes one; waits for the page's word that it was done (the
/// newest alert comes first).
fn admin_runs(b: &Browser, id: &str, action: &str, message: Option<&str>, done: &str) {
    let successes = "return document.querySelectorAll(\"#alerts [class*='pf-m-success']\").length";
    let before = b
        .script(successes)
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    assert!(b.enabled(&button(b, id, action)), "{action} is disabled");
    b.click_css(
        &format!("#rows tr[data-id='{id}'] button[data-action='{action}']"),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("click {action}: {e}"));
    assert!(
        b.wait_until(
            "return document.getElementById('dialog').open",
            Duration::from_secs(5)
        ),
        "the {action} dialog did not open"
    );
    if let Some(text) = message {
        b.type_css(
            "#dialog[open] #dialog-message",
            text,
            Duration::from_secs(5),
        )
        .expect("type the message");
    }
    b.click_css("#dialog-ok", Duration::from_secs(5))
        .expect("confirm");
    let shown = b.wait_until(
        &format!(
            "const a = document.querySelectorAll(\"#alerts [class*='pf-m-success']\"); \
             return a.length > {before} && a[0].innerText.includes('{done}')"
        ),
        Duration::from_secs(60),
    );
    assert!(
        shown,
        "no success shown for {action}: {}",
        b.script("return document.getElementById('alerts').innerText")
            .unwrap_or_default()
    );
}

/// The admin disconnects an ssh session (its job lives on, the record says disconnect) and
/// sends another a message (it is shown, nothing ends).
fn admin_disconnects_and_sends_a_message(b: &Browser, c: &Container, bystander: &mut SshSession) {
    let mut leaving = c.ssh(
        VICTIM,
        "nohup sleep 3401 >/dev/null 2>&1 & echo started; cat",
    );
    assert!(wait_for(Duration::from_secs(10), || leaving
        .output()
        .contains("started")));
    assert!(
        wait_for(Duration::from_secs(10), || !c
            .pids_matching("^sleep 3401$")
            .is_empty()),
        "the job never started"
    );
    row(b, &leaving.id);
    admin_runs(b, &leaving.id, "disconnect", None, "Disconnected");
    assert!(
        leaving.wait_closed(Duration::from_secs(20)).is_some(),
        "the ssh connection did not end"
    );
    assert!(
        !c.pids_matching("^sleep 3401$").is_empty(),
        "the session's job did not survive its disconnect"
    );
    let records = audit_records(c, &leaving.id);
    let record = records
        .iter()
        .find(|r| r["LOGOFF_RESULT"] == "disconnected")
        .unwrap_or_else(|| panic!("no audit record of the disconnect: {records:?}"));
    assert_eq!(record["LOGOFF_ACTION"], "disconnect", "{record}");
    assert_eq!(record["LOGOFF_CALLER_LOGIN_USER"], ADMIN, "{record}");

    let note = "Cockpit says: the printer is fixed";
    admin_runs(
        b,
        &bystander.id,
        "message",
        Some(note),
        "Sent the message to",
    );
    assert!(
        wait_for(Duration::from_secs(10), || bystander
            .output()
            .contains(note)),
        "the user never saw the message: {}",
        bystander.output()
    );
    assert!(
        c.session_alive(&bystander.id),
        "a message ended the session"
    );
    assert!(!c.pids_matching("sleep 3301").is_empty());
    screenshot(b, "actions");
}

/// The control group of session `id`'s scope (`/user.slice/…/session-N.scope`).
fn scope_cgroup(c: &Container, id: &str) -> String {
    let out = c.exec(&[
        "systemctl",
        "show",
        "-p",
        "ControlGroup",
        "--value",
        &format!("session-{id}.scope"),
    ]);
    text(&out.stdout).trim().to_string()
}

/// The PIDs in a control group, as the kernel lists them (cgroup v2, or systemd's named
/// hierarchy on v1); `None` when the group is gone.
fn scope_procs(c: &Container, cgroup: &str) -> Option<String> {
    let out = c.sh(&format!(
        "for root in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do \
           [ -e \"$root{cgroup}/cgroup.procs\" ] && exec cat \"$root{cgroup}/cgroup.procs\"; \
         done; exit 1"
    ));
    out.status.success().then(|| text(&out.stdout))
}

/// The session is gone on the host: no process of it, its scope stopped, logind done with
/// it, and the audit record names the admin.
fn assert_logged_off_by_admin(c: &Container, victim: &mut SshSession, cgroup: &str) {
    assert!(victim.wait_closed(Duration::from_secs(20)).is_some());
    assert!(
        wait_for(Duration::from_secs(10), || c
            .pids_matching("sleep 310")
            .is_empty()),
        "processes of the session survived: {:?}",
        c.pids_matching("sleep 310")
    );
    // The scope: stopped, and no process left in its cgroup (where the kernel keeps them).
    let scope = format!("session-{}.scope", victim.id);
    let state = c.exec(&["systemctl", "is-active", &scope]);
    assert_ne!(text(&state.stdout).trim(), "active", "the scope still runs");
    let left = scope_procs(c, cgroup);
    assert!(
        left.as_deref().is_none_or(|p| p.trim().is_empty()),
        "processes left in {scope}: {left:?}"
    );
    assert!(wait_for(Duration::from_secs(10), || !c.session_alive(&victim.id)));
    assert!(
        victim.output().contains(MESSAGE),
        "the user never saw the message: {}",
        victim.output()
    );
    let records = audit_records(c, &victim.id);
    let record = records
        .iter()
        .find(|r| r["LOGOFF_RESULT"] == "logged-off")
        .unwrap_or_else(|| panic!("no audit record of the logoff: {records:?}"));
    assert_eq!(record["LOGOFF_USER"], VICTIM, "{record}");
    assert_eq!(record["LOGOFF_CALLER_LOGIN_USER"], ADMIN, "{record}");
    assert_eq!(record["LOGOFF_MESSAGE"], "yes", "{record}");
    assert_eq!(record["LOGOFF_GRACE_SECONDS"], "2", "{record}");
}

/// A user without administrative access: another user's session has no enabled action;
/// their own (the Cockpit login) has.
fn user_cannot_act(b: &Browser, c: &Container, other: &SshSession) {
    assert_eq!(
        b.script("return document.body.dataset.admin").ok(),
        Some(serde_json::json!("no"))
    );
    for action in ["logoff", "disconnect", "message"] {
        let e = button(b, &other.id, action);
        assert!(
            !b.enabled(&e),
            "{action} is enabled on another user's session"
        );
        // A click on it does nothing.
        let _ = b.click(&e);
    }
    let check = b
        .find(&format!(
            "#rows tr[data-id='{}'] input[type=checkbox]",
            other.id
        ))
        .expect("the row's checkbox");
    assert!(!b.enabled(&check), "another user's session can be selected");
    assert!(
        b.wait_until(
            "return document.querySelector(\"#rows tr[data-user='ckuser'] \
             button[data-action='logoff']:enabled\") !== null",
            Duration::from_secs(10)
        ),
        "the user cannot log off their own session"
    );
    assert!(b.find("#dialog[open]").is_none(), "a dialog opened");
    screenshot(b, "user");
    // The page listed again (Refresh) and the session is there, alive, unaudited.
    b.click_css("#refresh", Duration::from_secs(5))
        .expect("refresh");
    row(b, &other.id);
    assert!(c.session_alive(&other.id), "the session was touched");
    assert!(!c.pids_matching("sleep 3201").is_empty());
    assert!(audit_records(c, &other.id).is_empty(), "logoff ran on it");
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn cockpit_page_logs_off_as_an_admin_and_offers_a_user_nothing_on_others() {
    let Some(debs) = debs("cockpit") else {
        return;
    };
    let Some(c) = container::boot("cockpit") else {
        return;
    };
    install(&c, &debs);
    add_password_user(&c, ADMIN, true);
    add_password_user(&c, USER, false);
    c.add_user(VICTIM);
    let port = start_cockpit(&c);

    let b = Browser::start().unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let evidence = Evidence(&b);
    login(&b, port, ADMIN, true);
    open_sessions(&b, port);
    // Sessions that begin while the page is open appear on logind's signal, well before the
    // next poll (30 s).
    assert!(
        b.wait_until(
            "return document.body.dataset.refresh === 'logind'",
            Duration::from_secs(10)
        ),
        "the page does not follow logind's signals"
    );
    let mut victim = c.ssh(VICTIM, "sleep 3101 & sleep 3102");
    let mut bystander = c.ssh(USER, "sleep 3301");
    for s in [&victim, &bystander] {
        b.wait(
            &format!("#rows tr[data-id='{}']", s.id),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("a new session did not appear at once: {e}"));
    }
    let cgroup = scope_cgroup(&c, &victim.id);
    let before = scope_procs(&c, &cgroup).unwrap_or_default();
    assert!(
        !before.trim().is_empty(),
        "no processes in {cgroup} before the logoff"
    );
    admin_logs_off(&b, &victim);
    admin_disconnects_and_sends_a_message(&b, &c, &mut bystander);
    drop(evidence);
    drop(b);
    assert_logged_off_by_admin(&c, &mut victim, &cgroup);

    let other = c.ssh(VICTIM, "sleep 3201");
    let b = Browser::start().unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let _evidence = Evidence(&b);
    login(&b, port, USER, false);
    open_sessions(&b, port);
    user_cannot_act(&b, &c, &other);
}
