//! Regression tests for what a hostile user could do to logoff on this host (the procfs tier:
//! real sessions, real users, real terminals). Each test names the hole it guards and fails
//! on a build without its fix (`LOGOFF_TEST_BIN=/path/to/old/logoff cargo test --test
//! hostile` runs them against another build). Needs root (fails under CI=true without it).

mod common;

use common::*;

/// Debian's Python (package python3), by its path: a test user cannot reach one in root's
/// home that may come first in `PATH`.
const PYTHON: &str = "/usr/bin/python3";

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
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_zombie_leader_with_live_threads_is_not_counted_as_gone() {
    if !require_root_or_skip("regression_a_zombie_leader_with_live_threads_is_not_counted_as_gone")
    {
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
            "trap '{PYTHON} {} & sleep 1; exit' TERM HUP; while :; do sleep 1; done",
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

/// A pty session of `user` whose terminal output script(1) records in `dir/NAME.ts`;
/// returns it with its terminal (`pts/N`).
fn recorded_pty(user: &TestUser, dir: &TempDir, name: &str) -> (TestSession, String) {
    let transcript = dir.path(&format!("{name}.ts"));
    let s = TestSession::start(
        SessionSpec {
            user: Some(user),
            pty: true,
            transcript: Some(&transcript),
            ..Default::default()
        },
        "sleep 1000",
    );
    s.wait_members(2);
    let pts = s.pty();
    (s, pts)
}

/// Logs off `session` with a warning, and checks that the warning reached nobody but whom
/// it was meant for: not the victim's terminal (its transcript), whatever else happened.
fn warn_and_check_victim(id: u32, dir: &TempDir, victim: &str) -> std::process::Output {
    let out = logoff(&[
        "--message",
        "MISDIRECTED-WARNING",
        "--timeout",
        "1",
        &id.to_string(),
    ]);
    assert_ok(&out, "logoff --message");
    let seen = dir.read(&format!("{victim}.ts"));
    assert!(
        !seen.contains("MISDIRECTED-WARNING"),
        "the warning reached another user's terminal: {seen:?}\nlogoff said: {}",
        text(&out.stderr)
    );
    out
}

/// Regression: terminal names were read from the text of /proc/PID/fd links, so a process in
/// a private mount namespace holding a regular file it named `/dev/pts/N` made root write
/// the warning onto another user's terminal pts/N.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_file_named_like_a_terminal_gets_no_warning() {
    if !require_root_or_skip("regression_a_file_named_like_a_terminal_gets_no_warning") {
        return;
    }
    let dir = TempDir::new("fakepts");
    let (victim_user, attacker) = (TestUser::create("fv"), TestUser::create("fa"));
    let (_victim, pts) = recorded_pty(&victim_user, &dir, "victim");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&attacker),
            ..Default::default()
        },
        &format!(
            "exec unshare -r -m sh -c 'mount -t tmpfs tmpfs /dev/pts && touch /dev/{pts} && \
             exec sleep 1000 3>/dev/{pts}'"
        ),
    );
    s.wait_members(1);
    assert!(
        wait_for(std::time::Duration::from_secs(5), || s
            .members()
            .iter()
            .any(|p| {
                std::fs::read_link(format!("/proc/{p}/fd/3"))
                    .is_ok_and(|l| l.to_str() == Some(&format!("/dev/{pts}")))
            })),
        "the attacker never held its fake /dev/{pts}"
    );
    warn_and_check_victim(s.id, &dir, "victim");
    assert!(s.is_gone());
}

/// Regression: utmp's ut_line was trusted as a terminal name with only `/dev/` stripped, so a
/// record whose line was `../tmp/...` made root write the warning over a file.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_utmp_line_is_never_a_path() {
    if !require_root_or_skip("regression_a_utmp_line_is_never_a_path") {
        return;
    }
    // ut_line holds 32 bytes: a short directory of our own.
    let short = std::path::PathBuf::from(format!("/tmp/lv{}", std::process::id() % 100_000));
    std::fs::create_dir_all(&short).expect("mkdir");
    let _cleanup = RemoveOnDrop(short.clone());
    let victim_file = short.join("v");
    std::fs::write(&victim_file, "precious\n").expect("write victim file");
    let user = TestUser::create("ul");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        "sleep 1000",
    );
    let members = s.wait_members(2);
    let leader = *members.iter().min().expect("a member");
    let line = format!("..{}", victim_file.display());
    let _utmp = UtmpGuard::add(&format!(
        "[7] [{leader:05}] [lv  ] [{:<8}] [{line:<12}] [                    ] [0.0.0.0        ] [2026-11-24T10:05:00,000000+00:00]\n",
        user.name
    ));
    let dir = TempDir::new("utmpline");
    warn_and_check_victim(s.id, &dir, "none");
    assert_eq!(
        std::fs::read_to_string(&victim_file).expect("read victim file"),
        "precious\n",
        "root wrote the warning over a file"
    );
}

/// Allocates ptys in a private devpts instance until one has the index `sys.argv[1]`, then
/// runs `sleep` with that pty as its controlling terminal: its `tty_nr` is the host's pts/N.
const PRIVATE_PTY_PY: &str = r#"
import os, sys
want = "/dev/pts/" + sys.argv[1]
held = []
while True:
    m, s = os.openpty()
    held.append((m, s))
    if os.ttyname(s) == want:
        break
    if len(held) > 4096:
        sys.exit("no " + want)
if os.fork() == 0:
    os.setsid()
    fd = os.open(want, os.O_RDWR)
    for n in (0, 1, 2):
        os.dup2(fd, n)
    os.execvp("sleep", ["sleep", "1000"])
os.wait()
"#;

/// Regression: a session's terminal was named from its processes' `tty_nr`, which a private
/// devpts instance (a container's, or one a user mounts in a user namespace) shares with the
/// host's: root wrote the warning onto the host's pts/N, another user's terminal.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_private_devpts_terminal_is_not_the_hosts() {
    if !require_root_or_skip("regression_a_private_devpts_terminal_is_not_the_hosts") {
        return;
    }
    let dir = TempDir::new("privpts");
    let script = dir.path("alloc.py");
    std::fs::write(&script, PRIVATE_PTY_PY).expect("write alloc.py");
    set_mode(&script, 0o644);
    let (victim_user, attacker) = (TestUser::create("pv"), TestUser::create("pa"));
    let (_victim, pts) = recorded_pty(&victim_user, &dir, "victim");
    let n = pts.trim_start_matches("pts/");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&attacker),
            ..Default::default()
        },
        &format!(
            "exec unshare -r -m sh -c 'mount -t devpts -o newinstance,ptmxmode=0666 devpts \
             /dev/pts && mount --bind /dev/pts/ptmx /dev/ptmx && exec {PYTHON} {} {n}'",
            script.display()
        ),
    );
    assert!(
        wait_for(std::time::Duration::from_secs(10), || {
            let rows = logoff(&["--list", "--json"]);
            serde_json::from_slice::<serde_json::Value>(&rows.stdout).is_ok_and(|v| {
                v.as_array().is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r["id"] == s.id.to_string().as_str() && r["tty"] == pts.as_str())
                })
            })
        }),
        "the attacker's session never showed on {pts}"
    );
    warn_and_check_victim(s.id, &dir, "victim");
    assert!(s.is_gone());
}

/// Removes a directory tree when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The control for the tests above: the warning does reach the session's own terminals (its
/// pty, and one its process holds open besides).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_warning_reaches_the_sessions_own_terminals() {
    if !require_root_or_skip("the_warning_reaches_the_sessions_own_terminals") {
        return;
    }
    let dir = TempDir::new("ownpts");
    let user = TestUser::create("ow");
    let (other, _) = recorded_pty(&user, &dir, "other");
    let transcript = dir.path("own.ts");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            pty: true,
            transcript: Some(&transcript),
            ..Default::default()
        },
        &format!("sleep 1000 3>/dev/{} & wait", other.pty()),
    );
    s.wait_members(3);
    let out = logoff(&["--message", "MEANT-FOR-YOU", "-v", &s.id.to_string()]);
    assert_ok(&out, "logoff --message");
    assert!(
        dir.read("own.ts").contains("MEANT-FOR-YOU"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        dir.read("other.ts").contains("MEANT-FOR-YOU"),
        "{}",
        text(&out.stdout)
    );
}

/// Runs as PID 1 of a PID namespace of its own (so that it reaps orphans and can choose the
/// next PID): a victim and a target session on recorded ptys; logoff warns the target with a
/// grace period; after the first warning a process of the target that held its terminal
/// dies, and the victim's process takes its PID, holding the victim's terminal.
const PID_REUSE_PY: &str = r#"
import os, shlex, subprocess, sys, time
logoff, vuid, tuid, d = sys.argv[1:5]
null = subprocess.DEVNULL
def session(uid, cmd, ts):
    inner = "echo %s > /proc/self/loginuid && exec script -qfec %s %s" % (uid, shlex.quote(cmd), ts)
    return subprocess.Popen(["sh", "-c", inner], stdin=null, stdout=null, stderr=null)
def pid_of(cmdline):
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open("/proc/%s/cmdline" % p).read() == cmdline:
                    return int(p)
            except OSError:
                pass
def wait_until(cond, what):
    end = time.time() + 10
    while not cond():
        if time.time() > end:
            sys.exit("timed out: " + what)
        time.sleep(0.02)
session(vuid, "sleep 1000", d + "/victim.ts")
# The target's "sleep 1002" holds its terminal; its parent exits, so it is ours to reap.
session(tuid, "sh -c 'sleep 1002 &'; exec sleep 1001", d + "/target.ts")
wait_until(lambda: pid_of("sleep\0" "1000\0") and pid_of("sleep\0" "1002\0"), "sessions")
victim_pts = os.readlink("/proc/%d/fd/0" % pid_of("sleep\0" "1000\0"))
p = pid_of("sleep\0" "1002\0")
tid = open("/proc/%d/sessionid" % p).read().strip()
lo = subprocess.Popen([logoff, "--grace", "12s", "--message", "MISDIRECTED-WARNING", tid],
                      stdin=null, stdout=null, stderr=null)
wait_until(lambda: "MISDIRECTED" in open(d + "/target.ts", errors="replace").read(), "warning")
os.kill(p, 9)
os.waitpid(p, 0)
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(p - 1))
holder = subprocess.Popen(["sh", "-c", "echo %s > /proc/self/loginuid && exec sleep 1003" % vuid],
                          stdin=null, stdout=open(victim_pts, "w"), stderr=null)
print("reused" if holder.pid == p else "not reused: %d, wanted %d" % (holder.pid, p), flush=True)
lo.wait(timeout=60)
print("logoff exited %d" % lo.returncode, flush=True)
"#;

/// Regression: reminders during a grace period went to the terminals of the PIDs the session
/// had when it was listed; a PID reused meanwhile by another user's process made root write
/// the reminder onto that user's terminal.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_reminder_goes_to_the_session_as_it_is_now() {
    if !require_root_or_skip("regression_a_reminder_goes_to_the_session_as_it_is_now") {
        return;
    }
    let dir = TempDir::new("pidreuse");
    let script = dir.path("reuse.py");
    std::fs::write(&script, PID_REUSE_PY).expect("write reuse.py");
    let (victim, target) = (TestUser::create("rv"), TestUser::create("rt"));
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", PYTHON])
        .arg(&script)
        .arg(logoff_bin())
        .arg(victim.uid.to_string())
        .arg(target.uid.to_string())
        .arg(&dir.0)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run unshare");
    let said = text(&out.stdout);
    assert!(
        out.status.success() && said.contains("reused\n") && said.contains("logoff exited 0"),
        "{said}{}",
        text(&out.stderr)
    );
    let seen = dir.read("victim.ts");
    assert!(
        !seen.contains("MISDIRECTED-WARNING"),
        "a reminder reached the user who took the PID: {seen:?}"
    );
    assert!(dir.read("target.ts").contains("MISDIRECTED-WARNING"));
}

/// Regression: utmp is world-readable and logoff took its write lock with F_SETLKW: a user
/// holding a read lock made root's logoff hang forever after the kill, with no audit record.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_lock_on_utmp_does_not_hang_logoff() {
    if !require_root_or_skip("regression_a_lock_on_utmp_does_not_hang_logoff") {
        return;
    }
    let syslog = SyslogCapture::start("regression_a_lock_on_utmp_does_not_hang_logoff");
    let user = TestUser::create("lk");
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
    // A login record as login(1) or sshd writes it: after its process started (one older
    // than its process is not the session's: tests/vouched.rs).
    let _utmp = UtmpGuard::add(&format!(
        "[7] [{leader:05}] [{}] [{:<8}] [{pts:<12}] [                    ] [0.0.0.0        ] [{}]\n",
        &pts[pts.len().saturating_sub(4)..],
        user.name,
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S,000000+00:00")
    ));
    // Any user may hold a read lock on utmp.
    let locker = TestUser::create("lh");
    let mut lock = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={}", locker.uid),
            &format!("--regid={}", locker.gid),
            "--clear-groups",
            PYTHON,
            "-c",
            "import fcntl, sys, time; f = open('/var/run/utmp'); \
             fcntl.lockf(f, fcntl.LOCK_SH); print('locked', flush=True); time.sleep(1000)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the locker");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(lock.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "locked");

    let start = std::time::Instant::now();
    let mut run = std::process::Command::new(logoff_bin())
        .args(["--timeout", "1", &s.id.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run logoff");
    let status = wait_exit(&mut run, std::time::Duration::from_secs(30));
    let _ = lock.kill();
    let _ = lock.wait();
    let Some(status) = status else {
        let _ = run.kill();
        panic!("logoff hung behind the lock on utmp");
    };
    let out = run.wait_with_output().expect("output");
    let err = text(&out.stderr);
    assert!(status.success(), "{status:?}: {err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert!(s.is_gone(), "left running: {:?}", s.members());
    assert!(err.contains("utmp record was not marked dead"), "{err}");
    assert!(err.contains("locked by another process"), "{err}");
    if let Some(syslog) = syslog {
        let records = syslog.records();
        assert!(
            records
                .iter()
                .any(|r| r.contains(&format!("LOGOFF_SESSION={}", s.id))
                    && r.contains("LOGOFF_RESULT=logged-off")),
            "no audit record: {records:?}"
        );
    }
}

/// Starts `logoff ARGS` with its standard error read line by line (as it comes).
fn spawn_logoff(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = std::process::Command::new(logoff_bin());
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run logoff");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Sends `signal` to a process.
fn signal(child: &std::process::Child, signal: &str) {
    let out = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .output()
        .expect("kill");
    assert_ok(&out, "kill");
}

/// Regression: Ctrl-C, SIGTERM or a dropped connection (SIGHUP) during the SIGTERM wait
/// ended logoff there: the session half ended (what ignored SIGTERM still running), no utmp
/// update, no audit record. Now the first signal is acknowledged and the work finishes; a
/// second skips the rest of --timeout to SIGKILL.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_an_interrupted_logoff_finishes_and_is_audited() {
    if !require_root_or_skip("regression_an_interrupted_logoff_finishes_and_is_audited") {
        return;
    }
    let syslog = SyslogCapture::start("regression_an_interrupted_logoff_finishes_and_is_audited");
    let user = TestUser::create("int");
    // A program that obeys SIGTERM, and one that ignores it.
    let stubborn = r#"sleep 1000 & exec perl -e '$SIG{HUP} = $SIG{TERM} = "IGNORE"; sleep 1000'"#;
    let spec = || SessionSpec {
        user: Some(&user),
        ..Default::default()
    };

    // One signal: acknowledged, and the logoff runs its course (SIGKILL after --timeout).
    let s = TestSession::start(spec(), stubborn);
    s.wait_members(2);
    let id = s.id.to_string();
    let start = std::time::Instant::now();
    let (mut child, lines) = spawn_logoff(&["--timeout", "3", &id], &[]);
    // Until SIGTERM has gone out, the sleep runs; then it is gone and the shell is left.
    assert!(wait_for(std::time::Duration::from_secs(5), || s
        .members()
        .len()
        == 1));
    signal(&child, "HUP");
    let status = wait_exit(&mut child, std::time::Duration::from_secs(20)).expect("logoff ended");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{status:?}: {said:?}");
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(3),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains("SIGHUP received: finishing")),
        "{said:?}"
    );
    assert!(s.is_gone(), "left running: {:?}", s.members());

    // Two signals: the rest of --timeout is skipped.
    let s2 = TestSession::start(spec(), stubborn);
    s2.wait_members(2);
    let id2 = s2.id.to_string();
    let start = std::time::Instant::now();
    let (mut child, lines) = spawn_logoff(&["--timeout", "60", &id2], &[]);
    assert!(wait_for(std::time::Duration::from_secs(5), || s2
        .members()
        .len()
        == 1));
    signal(&child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&child, "TERM");
    let status = wait_exit(&mut child, std::time::Duration::from_secs(20)).expect("logoff ended");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{status:?}: {said:?}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{said:?}"
    );
    assert!(
        said.iter().any(|l| l.contains("sending SIGKILL now")),
        "{said:?}"
    );
    assert!(s2.is_gone(), "left running: {:?}", s2.members());

    if let Some(syslog) = syslog {
        let records = syslog.records();
        for id in [&id, &id2] {
            assert!(
                records
                    .iter()
                    .any(|r| r.contains(&format!("LOGOFF_SESSION={id} "))
                        && r.contains("LOGOFF_RESULT=logged-off")),
                "no audit record for {id}: {records:?}"
            );
        }
    }
}

/// Regression: the audit record named only the effective user (root, after sudo), not the
/// person behind it: the login uid (which sudo does not change) and SUDO_USER.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_the_record_names_the_person_behind_the_caller() {
    if !require_root_or_skip("regression_the_record_names_the_person_behind_the_caller") {
        return;
    }
    let Some(syslog) =
        SyslogCapture::start("regression_the_record_names_the_person_behind_the_caller")
    else {
        return;
    };
    let admin = TestUser::create("adm");
    let s = TestSession::start(SessionSpec::default(), "sleep 1000");
    s.wait_members(1);
    // As after `sudo` from the admin's login: root, with the admin's login uid.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo {} > /proc/self/loginuid && exec \"$0\" \"$@\"",
            admin.uid
        ))
        .arg(logoff_bin())
        .arg(s.id.to_string())
        .env("SUDO_USER", &admin.name)
        .output()
        .expect("run logoff");
    assert_ok(&out, "logoff as root behind the admin's login");
    let records = syslog.records();
    let record = records
        .iter()
        .find(|r| r.contains(&format!("LOGOFF_SESSION={} ", s.id)))
        .unwrap_or_else(|| panic!("no record: {records:?}"));
    assert!(record.contains("LOGOFF_CALLER=root"), "{record}");
    assert!(
        record.contains(&format!("LOGOFF_CALLER_LOGIN_UID={}", admin.uid)),
        "{record}"
    );
    assert!(
        record.contains(&format!("LOGOFF_CALLER_LOGIN_USER={}", admin.name)),
        "{record}"
    );
    assert!(
        record.contains(&format!("LOGOFF_SUDO_USER={}", admin.name)),
        "{record}"
    );
    assert!(
        record.contains(&format!("login {}", admin.name)),
        "{record}"
    );
}

/// Whether `bytes` hold a character that acts on a terminal: C0 but for the line feed, DEL,
/// C1, or a bidi control.
fn acts_on_a_terminal(bytes: &[u8]) -> Option<char> {
    String::from_utf8_lossy(bytes).chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

/// Regression: user-controlled text (a process's SSH_CONNECTION, a survivor's command line)
/// reached the administrator's terminal as it was: escape sequences, C1 controls, bidi
/// overrides. Now tables and messages show them as visible escapes; JSON keeps the exact
/// value, escaped.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_user_text_never_reaches_the_admins_terminal_raw() {
    if !require_root_or_skip("regression_user_text_never_reaches_the_admins_terminal_raw") {
        return;
    }
    let alice = TestUser::create("esc");
    // ESC ] 0 ; (a title), CSI as C1 (U+009B), RIGHT-TO-LEFT OVERRIDE (U+202E).
    let s = TestSession::start(
        SessionSpec {
            login_uid: Some(alice.uid),
            ..Default::default()
        },
        &format!(
            r#"perl -e '$0 = "evil\e]0;pwned\a\xc2\x9b31m\xe2\x80\xaetxt.exe"; sleep 1000' &
            export SSH_CONNECTION="$(printf '\033[31mEVIL\302\233\342\200\256x') 1 2 3"
            exec setpriv --reuid={} --regid={} --clear-groups -- sleep 1001"#,
            alice.uid, alice.gid
        ),
    );
    s.wait_members(2);
    let id = s.id.to_string();
    let table = logoff(&["--list"]);
    assert_ok(&table, "--list");
    assert_eq!(
        acts_on_a_terminal(&table.stdout),
        None,
        "{}",
        text(&table.stdout)
    );
    assert!(
        text(&table.stdout).contains("^[[31mEVIL\\u{009b}\\u{202e}x"),
        "{}",
        text(&table.stdout)
    );
    let json = logoff(&["--list", "--json"]);
    assert_eq!(
        acts_on_a_terminal(&json.stdout),
        None,
        "{}",
        text(&json.stdout)
    );
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON parses");
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id.as_str()))
        .expect("listed");
    // SSH_CONNECTION is the user's claim (tests/vouched.rs): kept exact, under its own key.
    assert_eq!(
        row["remote_host_claim"], "\u{1b}[31mEVIL\u{9b}\u{202e}x",
        "{row}"
    );

    // alice cannot end root's process in her session: it is named as a survivor.
    let out = logoff_as(Some(&alice), &["-v", &id], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for stream in [&out.stdout, &out.stderr] {
        assert_eq!(acts_on_a_terminal(stream), None, "{}", text(stream));
    }
    assert!(
        text(&out.stderr).contains("evil^[]0;pwned^G"),
        "{}",
        text(&out.stderr)
    );
}

/// A zombie whose command name is not UTF-8 (a user chooses it) must not fail a scan: its
/// liveness is read from /proc/PID/status, whose `Name:` line holds that name.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_zombie_with_a_non_utf8_name_does_not_fail_the_listing() {
    if !require_root_or_skip("a_zombie_with_a_non_utf8_name_does_not_fail_the_listing") {
        return;
    }
    let user = TestUser::create("nu");
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        r#"exec perl -e '$0 = "\xff\xfe"; exit 0 if fork == 0; sleep 1000'"#,
    );
    s.wait_members(1);
    assert!(wait_for(std::time::Duration::from_secs(5), || {
        proc_pids().iter().any(|&p| {
            audit_session_of(p) == Some(s.id)
                && std::fs::read(format!("/proc/{p}/stat"))
                    .is_ok_and(|st| st.windows(3).any(|w| w == b") Z"))
        })
    }));
    let out = logoff(&["--list", "--json"]);
    assert_ok(&out, "--list with a non-UTF-8 zombie");
    let out = logoff(&["--timeout", "1", &s.id.to_string()]);
    assert_ok(&out, "logoff");
    assert!(s.is_gone());
}

/// Asserts that logoff refused its command line (status 2, the seed's answer) and that the
/// session `s` is as it was.
fn assert_refused(out: &std::process::Output, what: &str, s: &TestSession, before: &[i32]) {
    assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("Invalid parameter(s)\n"),
        "{what}: {}",
        text(&out.stderr)
    );
    assert_eq!(s.members(), before, "{what} touched the session");
}

/// Regression: huge durations panicked (`--grace 300000000000`: a deadline past the end of
/// the clock), and a servers file was read whatever it was: a FIFO nobody writes to hung
/// logoff, a huge or binary file was read whole, and an empty one fell back to this host
/// (so `--all` acted here).
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_bad_input_is_refused_with_nothing_touched() {
    if !require_root_or_skip("regression_bad_input_is_refused_with_nothing_touched") {
        return;
    }
    let s = TestSession::start(SessionSpec::default(), "sleep 1000");
    // sh and the sleep it forks (dash does not exec the last command of `sh -c`).
    let before = s.wait_members(2);
    let id = s.id.to_string();
    for args in [
        vec!["--grace", "300000000000", &id],
        vec!["--timeout", "9223372036854775807", &id],
        vec!["--idle-for", "99999999999h", "--all"],
        vec!["--connect-timeout", "300000000000", &id],
    ] {
        let out = logoff_within(&args, 30);
        assert_refused(&out, &format!("{args:?}"), &s, &before);
        assert!(
            text(&out.stderr).contains("at most 100 days"),
            "{}",
            text(&out.stderr)
        );
    }

    let dir = TempDir::new("servers");
    std::fs::write(dir.path("huge"), "h\n".repeat(600 * 1024)).expect("huge file");
    std::fs::write(dir.path("binary"), b"h1\n\0\x01\x02\n").expect("binary file");
    std::fs::write(dir.path("empty"), "# nothing but a comment\n\n").expect("empty file");
    assert_ok(
        &std::process::Command::new("mkfifo")
            .arg(dir.path("fifo"))
            .output()
            .expect("mkfifo"),
        "mkfifo",
    );
    for (name, says) in [
        ("huge", "larger than"),
        ("binary", "not text"),
        ("empty", "names no server"),
        ("fifo", "did not come to its end"),
    ] {
        let path = dir.path(name).display().to_string();
        // A writer that holds the FIFO open and says nothing.
        let _writer = (name == "fifo").then(|| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec sleep 60 > {path}"))
                .spawn()
                .map(Background)
                .expect("writer")
        });
        let out = logoff_within(&["--all", "--servers-file", &path], 30);
        assert_refused(&out, &format!("--servers-file {name}"), &s, &before);
        assert!(
            text(&out.stderr).contains(says),
            "{name}: {}",
            text(&out.stderr)
        );
    }
}

/// Runs logoff with `args`, failing the test (with logoff killed) if it takes more than
/// `seconds`: a regression here would hang, not fail.
fn logoff_within(args: &[&str], seconds: u64) -> std::process::Output {
    let mut child = std::process::Command::new(logoff_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run logoff");
    if wait_exit(&mut child, std::time::Duration::from_secs(seconds)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("logoff {args:?} was still running after {seconds}s");
    }
    child.wait_with_output().expect("output")
}

/// A child process killed and reaped when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Regression: installed setuid root, logoff took the caller for root (its effective uid)
/// and let any user log off anyone's session. It now refuses to run so.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_setuid_logoff_refuses_to_run() {
    if !require_root_or_skip("regression_a_setuid_logoff_refuses_to_run") {
        return;
    }
    let (victim, attacker) = (TestUser::create("sv"), TestUser::create("sa"));
    let s = TestSession::start(
        SessionSpec {
            user: Some(&victim),
            ..Default::default()
        },
        "sleep 1000",
    );
    // sh and the sleep it forks (dash does not exec the last command of `sh -c`).
    let before = s.wait_members(2);
    let dir = TempDir::new("setuid");
    let bin = dir.path("logoff");
    std::fs::copy(logoff_bin(), &bin).expect("copy");
    set_mode(&bin, 0o4755);
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={}", attacker.uid),
            &format!("--regid={}", attacker.gid),
            "--clear-groups",
            "--",
        ])
        .arg(&bin)
        .arg(s.id.to_string())
        .output()
        .expect("run the setuid copy");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refusing to run"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(s.members(), before, "the victim's session was touched");
}

/// Regression: a session's state came from the stat of its 64 lowest PIDs only. After PID
/// wraparound those need not be its login and shell: a live session whose terminal is held
/// by a higher PID read as "disconnected", and `--state disconnected` swept it.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_session_holding_a_terminal_is_never_disconnected() {
    if !require_root_or_skip("regression_a_session_holding_a_terminal_is_never_disconnected") {
        return;
    }
    let user = TestUser::create("wr");
    // 70 processes without a terminal first (lower PIDs), then one on a pty.
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            ..Default::default()
        },
        "for i in $(seq 70); do sleep 1000 & done; exec script -qfec 'sleep 1001' /dev/null",
    );
    s.wait_members(72);
    let id = s.id.to_string();
    let rows = logoff(&["--list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&rows.stdout).expect("json");
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id.as_str()))
        .expect("listed");
    assert_eq!(row["state"], "active", "{row}");
    let out = logoff(&["--dry-run", "--json", "--all", "--state", "disconnected"]);
    assert_ok(&out, "dry run");
    assert!(
        !text(&out.stdout).contains(&format!("\"id\": \"{id}\"")),
        "a session on a terminal would be swept as disconnected: {}",
        text(&out.stdout)
    );
}

/// Regression: in the POSIX grouping a session's user was the owner of /proc/LEADER: the
/// leader's effective uid (and on some kernels root for a non-dumpable leader). A user whose
/// session leader is a setuid-root program (here a setuid copy of sleep, as `passwd` waiting
/// at its prompt would be) had a session that read as root's, and console protection, which
/// spares the caller's own sessions, did not hold for root. The user is now the leader's
/// real uid.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_a_setuid_leader_does_not_make_a_session_roots() {
    if !require_root_or_skip("regression_a_setuid_leader_does_not_make_a_session_roots") {
        return;
    }
    let user = TestUser::create("nd");
    let dir = TempDir::new("suidsleep");
    let sleep = dir.path("sleep");
    std::fs::copy("/bin/sleep", &sleep).expect("copy sleep");
    set_mode(&sleep, 0o4755);
    let s = TestSession::start(
        SessionSpec {
            user: Some(&user),
            pty: true,
            ..Default::default()
        },
        &format!("exec {} 1000", sleep.display()),
    );
    s.wait_members(2);
    let pts = s.pty();
    let env = [("LOGOFF_PROCFS_POSIX_SESSIONS", "1")];
    let out = logoff_as(None, &["--list", "--json"], &env);
    assert_ok(&out, "--list");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["tty"] == pts.as_str()))
        .unwrap_or_else(|| panic!("{pts} not listed: {rows}"));
    assert_eq!(row["uid"], user.uid, "{row}");
    assert_eq!(row["user"], user.name.as_str(), "{row}");
}
