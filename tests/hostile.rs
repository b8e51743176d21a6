//! Regression tests for what a hostile user could do to logoff on this host (the procfs tier:
//! real sessions, real users, real terminals). Each test names the hole it guards and fails
//! on a build without its fix (`LOGOFF_TEST_BIN=/path/to/old/logoff cargo test --test
//! hostile` runs them against another build). Needs root (fails under CI=true without it).

mod common;

use common::*;

/// Starts a thread that sleeps, then ends the main thread alone (the `exit` system call, not
/// `exit_group`): the process reads as a zombie while its other thread runs on.
const ZOMBIE_LEADER_PY: &str = r#"
import ctypes, platform, threading, time
threading.Thread(target=time.sleep, args=(1000,)).start()
time.sleep(0.1)
SYS_exit = {"x86_64": 60, "aarch64": 93}[platform.machine()]
ctypes.CDLL(None).syscall(SYS_exit, 0)
"#;

/// Regression: a thread-group leader whose main thread has exited while other threads run
/// reads as state `Z` in /proc/PID/stat. The rescans counted it as ended, so a process
/// started in answer to SIGTERM/SIGHUP was never signalled and logoff said "no process left".
#[test]
fn regression_a_zombie_leader_with_live_threads_is_not_counted_as_gone() {
    if !need_root("regression_a_zombie_leader_with_live_threads_is_not_counted_as_gone") {
        return;
    }
    let dir = TempDir::new("zl");
    let script = dir.path("zl.py");
    std::fs::write(&script, ZOMBIE_LEADER_PY).expect("write zl.py");
    set_mode(&script, 0o644);
    let user = TestUser::create("zl");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        &format!(
            "trap 'python3 {} & sleep 1; exit' TERM HUP; while :; do sleep 1; done",
            script.display()
        ),
    );
    s.wait_members(2);
    let id = s.id.to_string();
    let out = logoff(&["--backend", "procfs", "--timeout", "5", "-v", &id]);
    assert_ok(&out, "logoff");
    assert!(
        s.is_gone(),
        "logoff said {:?} but left running: {:?}",
        text(&out.stdout),
        s.members()
    );
}
