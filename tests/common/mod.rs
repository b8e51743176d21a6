//! Helpers for tests that run the real binary against real sessions on this host.
//!
//! A test session is made the way pam_loginuid makes one: a child writes a uid to
//! `/proc/self/loginuid` before it execs, which gives it a fresh kernel audit session ID that
//! all its descendants inherit. Everything a test makes — sessions, users, files — is undone
//! by `Drop`, so a failing test leaves nothing behind.
//!
//! Tests that need root or a test host are marked `#[ignore]` (a non-root `cargo test`
//! reports them as ignored; `scripts/test` runs them with `--include-ignored`), and when
//! they cannot run they fail under `CI=true` and skip elsewhere with the reason printed
//! ([`require`]).

// Each test crate uses a part of these helpers.
#![allow(dead_code)]

pub mod ansible;
pub mod container;
pub mod fixtures;
pub mod session;
pub mod users;
pub mod webdriver;

// Each test crate uses a part of these helpers.
#[allow(unused_imports)]
pub use fixtures::{SyslogCapture, TempDir, UtmpGuard};
/// The seed's usage block, as the binary must print it: the one copy, logoff's own.
#[allow(unused_imports)]
pub use logoff::cli::args::SEED_USAGE;
#[allow(unused_imports)]
pub use session::{SessionSpec, TestSession};
#[allow(unused_imports)]
pub use users::TestUser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether a test may run, given what it needs: it runs when `needs` is met; otherwise it
/// fails under `CI=true` (a test that cannot run there is a defect) and elsewhere skips with
/// the reason printed.
pub fn require(test: &str, needs: Result<(), String>) -> bool {
    match needs {
        Ok(()) => true,
        Err(why) => {
            assert!(!in_ci(), "{test}: {why}, and CI=true forbids skipping");
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// [`require`] for root (sessions, users, test hosts).
pub fn require_root_or_skip(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    require(
        test,
        if root {
            Ok(())
        } else {
            Err("needs root (run the suite as root: scripts/test)".into())
        },
    )
}

/// Names another logoff binary for the tests to run (an older build, to check that a
/// regression test fails without its fix). Unset: the binary cargo built.
pub const TEST_BIN_ENV: &str = "LOGOFF_TEST_BIN";

/// Names another logoffd binary for the tests to run (see [`TEST_BIN_ENV`]).
pub const TEST_DAEMON_ENV: &str = "LOGOFF_TEST_DAEMON";

/// The logoffd the tests run: the one cargo built, or `$LOGOFF_TEST_DAEMON`.
pub fn logoffd_bin() -> PathBuf {
    std::env::var_os(TEST_DAEMON_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_logoffd")),
        PathBuf::from,
    )
}

/// The built binary, copied to a world-readable place so test users can run it too.
pub fn logoff_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("logoff-test-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bin dir");
        let dst = dir.join("logoff");
        let src = std::env::var_os(TEST_BIN_ENV).map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_logoff")),
            PathBuf::from,
        );
        std::fs::copy(&src, &dst).expect("copy logoff");
        set_mode(&dir, 0o755);
        set_mode(&dst, 0o755);
        dst
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs logoff with `args` (as root unless `user` is given) and returns its output.
pub fn logoff(args: &[&str]) -> Output {
    logoff_as(None, args, &[])
}

pub fn logoff_as(user: Option<&TestUser>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(logoff_bin());
            c
        }
        None => Command::new(logoff_bin()),
    };
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run logoff")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the test, showing everything the command said, unless it succeeded.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Fails the test unless the command exited with `code` and said `says` on standard error.
pub fn assert_fails(out: &Output, code: i32, says: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
}

/// Waits up to `timeout` for a child to exit; its status, or `None` if it still runs.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The audit session ID of a process, `None` if unset or gone.
pub fn audit_session_of(pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/sessionid")).ok()?;
    text.trim().parse().ok().filter(|&id| id != u32::MAX)
}

/// The state letter of a `/proc/.../stat` file.
fn state_in(path: &str) -> Option<char> {
    // The command name in it is whatever the process chose, not always UTF-8.
    let stat = String::from_utf8_lossy(&std::fs::read(path).ok()?).into_owned();
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Every PID in /proc, by an independent scan (not logoff's code).
pub fn proc_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a process has ended: gone, or no thread of it runs. Each thread's own state
/// decides (`/proc/PID/task/TID/stat`): a thread-group leader that has exited reads as a
/// zombie while its other threads run on, and such a process has not ended.
pub fn has_ended(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    !tasks.flatten().any(|t| {
        let path = format!("{}/stat", t.path().display());
        state_in(&path).is_some_and(|s| s != 'Z' && s != 'X')
    })
}

/// Live (non-zombie) processes in audit session `id`, by an independent /proc scan.
pub fn live_members(id: u32) -> Vec<i32> {
    proc_pids()
        .into_iter()
        .filter(|&pid| audit_session_of(pid) == Some(id) && !has_ended(pid))
        .collect()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `logoff ARGS` on a pty of its own (script(1)); what the terminal showed.
pub fn on_a_pty(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = fixtures::TempDir::new("pty");
    let transcript = dir.path("ts");
    let command = std::iter::once(logoff_bin().display().to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = std::process::Command::new("script");
    script
        .args(["-qfec", &command])
        .arg(&transcript)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    for (k, v) in env {
        script.env(k, v);
    }
    assert_ok(&script.output().expect("run script"), "script");
    String::from_utf8_lossy(&std::fs::read(&transcript).expect("transcript")).into_owned()
}

/// A virtual terminal this machine has (`tty2` ... `tty11`), to put a console session on.
pub fn free_vt() -> Option<String> {
    (2..12).map(|n| format!("tty{n}")).find(|t| {
        std::fs::OpenOptions::new()
            .read(true)
            .open(format!("/dev/{t}"))
            .is_ok()
    })
}
