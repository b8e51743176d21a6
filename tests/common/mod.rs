//! Helpers for tests that run the real binary against real sessions on this host.
//!
//! A test session is made the way pam_loginuid makes one: a child writes a uid to
//! `/proc/self/loginuid` before it execs, which gives it a fresh kernel audit session ID that
//! all its descendants inherit. Everything a test makes — sessions, users, files — is undone
//! by `Drop`, so a failing test leaves nothing behind.
//!
//! Tests that need root fail under `CI=true` when they are not root, and skip elsewhere with
//! a printed reason.

#![allow(dead_code)]

pub mod container;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the test may run: root here, or (outside CI) a skip with the reason printed.
pub fn need_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: needs root to make sessions, and CI=true forbids skipping"
    );
    eprintln!("skipping {test}: needs root to make sessions (run the suite as root)");
    false
}

/// Names another logoff binary for the tests to run (an older build, to check that a
/// regression test fails without its fix). Unset: the binary cargo built.
pub const TEST_BIN_ENV: &str = "LOGOFF_TEST_BIN";

/// The built binary, copied to a world-readable place so test users can run it too.
pub fn logoff_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("logoff-test-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bin dir");
        let dst = dir.join("logoff");
        let src = std::env::var_os(TEST_BIN_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_logoff")));
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

/// A user made for one test, removed afterwards (with anything it still runs).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// A new user with a uid of its own: never one a previous test used, whose zombies (this
    /// machine's init reaps orphans lazily) would still count against RLIMIT_NPROC.
    pub fn create(tag: &str) -> TestUser {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT_UID: AtomicU32 = AtomicU32::new(0);
        let _ = NEXT_UID.compare_exchange(
            0,
            40_000 + (std::process::id() % 2_000) * 16,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let name = format!("lgt{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).output();
        let mut last = String::new();
        for _ in 0..50 {
            let uid = NEXT_UID.fetch_add(1, Ordering::SeqCst).to_string();
            // useradd takes a lock on /etc/passwd; parallel tests may meet there.
            let out = Command::new("useradd")
                .args([
                    "-M", "-N", "-g", "nogroup", "-s", "/bin/sh", "-u", &uid, &name,
                ])
                .output()
                .expect("run useradd");
            if out.status.success() {
                let id = |flag: &str| -> u32 {
                    let out = Command::new("id").args([flag, &name]).output().expect("id");
                    text(&out.stdout).trim().parse().expect("numeric id")
                };
                return TestUser {
                    uid: id("-u"),
                    gid: id("-g"),
                    name,
                };
            }
            last = text(&out.stderr);
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("useradd {name} failed: {last}");
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-U", &self.uid.to_string()])
            .status();
        for _ in 0..50 {
            let out = Command::new("userdel").arg(&self.name).output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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

/// How a test session is started.
#[derive(Default)]
pub struct SessionSpec<'a> {
    /// Run the session's processes as this user (else root).
    pub user: Option<&'a TestUser>,
    /// RLIMIT_NPROC for the session (counts the user's processes).
    pub nproc: Option<u32>,
    /// Give the session a pseudo-terminal (through `script`).
    pub pty: bool,
    /// The login uid to record, when it differs from `user` (processes run as root).
    pub login_uid: Option<u32>,
    /// With `pty`: where script(1) records what the terminal shows (else nowhere).
    pub transcript: Option<&'a Path>,
}

/// A login session made for a test; every process of it is killed when dropped.
pub struct TestSession {
    pub id: u32,
    child: Child,
}

impl TestSession {
    /// Starts `script` (a sh script) as a new session.
    pub fn start(spec: SessionSpec<'_>, script: &str) -> TestSession {
        let uid = spec.login_uid.unwrap_or(spec.user.map_or(0, |u| u.uid));
        let mut inner: Vec<String> = Vec::new();
        if let Some(n) = spec.nproc {
            inner.extend(["prlimit".into(), format!("--nproc={n}:{n}"), "--".into()]);
        }
        if let Some(u) = spec.user {
            inner.extend([
                "setpriv".into(),
                format!("--reuid={}", u.uid),
                format!("--regid={}", u.gid),
                "--clear-groups".into(),
                "--".into(),
            ]);
        }
        if spec.pty {
            // script(1) gives the command a new pty as its controlling terminal.
            inner.extend(["script".into(), "-qfec".into()]);
            inner.push(format!("sh -c {}", shell_quote(script)));
            inner.push(
                spec.transcript
                    .map_or("/dev/null".into(), |p| p.display().to_string()),
            );
        } else {
            inner.extend(["sh".into(), "-c".into(), script.into()]);
        }
        let launcher = format!("echo {uid} > /proc/self/loginuid || exit 99; exec \"$@\"",);
        let child = Command::new("sh")
            .arg("-c")
            .arg(launcher)
            .arg("logoff-test-session")
            .args(&inner)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn session");
        let pid = child.id() as i32;
        let mut id = None;
        let ok = wait_for(Duration::from_secs(5), || {
            id = audit_session_of(pid);
            id.is_some()
        });
        let session = TestSession {
            id: id.unwrap_or(0),
            child,
        };
        assert!(ok, "the test session never got an audit session ID");
        session
    }

    pub fn members(&self) -> Vec<i32> {
        live_members(self.id)
    }

    /// Waits until the session has at least `n` live processes.
    pub fn wait_members(&self, n: usize) -> Vec<i32> {
        let mut m = Vec::new();
        let ok = wait_for(Duration::from_secs(10), || {
            m = self.members();
            m.len() >= n
        });
        assert!(
            ok,
            "session {} has {} processes, wanted {n}",
            self.id,
            m.len()
        );
        m
    }

    /// The session's terminal (`pts/3`), from its processes' controlling terminals.
    pub fn pty(&self) -> String {
        let mut found = None;
        wait_for(Duration::from_secs(5), || {
            found = self.members().into_iter().find_map(|pid| {
                let link = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok()?;
                let s = link.to_str()?.strip_prefix("/dev/")?.to_string();
                s.starts_with("pts/").then_some(s)
            });
            found.is_some()
        });
        found.expect("the session has no pty")
    }

    pub fn leader_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the session's first process (the test's own child) to exit; its status.
    pub fn wait_child(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }

    pub fn is_gone(&self) -> bool {
        self.members().is_empty()
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        for _ in 0..100 {
            let members = self.members();
            if members.is_empty() {
                break;
            }
            for pid in members {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A temporary directory removed when dropped, world-writable for test users.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "logoff-test-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let dir = PathBuf::from(
            dir.to_string_lossy()
                .replace([' ', '{', '}', ':', ','], "_"),
        );
        std::fs::create_dir_all(&dir).expect("tempdir");
        set_mode(&dir, 0o1777);
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn read(&self, name: &str) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.path(name)) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The seed's usage block, as the binary must print it (kept in sync by a test in the crate).
pub const SEED_USAGE_FIRST_LINES: &str = "Invalid parameter(s)\nTerminates a session.\n\nLOGOFF [sessionname | sessionid] [/SERVER:servername] [/V] [/VM]\n";

/// Adds a record to the real utmp and restores the file afterwards.
pub struct UtmpGuard {
    original: Option<Vec<u8>>,
}

impl UtmpGuard {
    pub fn add(record_text: &str) -> UtmpGuard {
        use std::io::Write;
        let path = "/var/run/utmp";
        let original = std::fs::read(path).ok();
        let mut child = std::process::Command::new("utmpdump")
            .arg("-r")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("utmpdump (util-linux)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(record_text.as_bytes())
            .expect("write");
        let binary = child.wait_with_output().expect("utmpdump").stdout;
        assert_eq!(binary.len(), 384, "utmpdump made {} bytes", binary.len());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open utmp");
        file.write_all(&binary).expect("append utmp");
        UtmpGuard { original }
    }
}

impl Drop for UtmpGuard {
    fn drop(&mut self) {
        match &self.original {
            Some(bytes) => {
                let _ = std::fs::write("/var/run/utmp", bytes);
            }
            None => {
                let _ = std::fs::remove_file("/var/run/utmp");
            }
        }
    }
}

/// Receives what logoff sends to syslog (`/dev/log`) while it lives: the audit records on a
/// host with neither journald nor a syslog daemon (this machine's CI has neither). One at a
/// time; a thread drains the socket (a datagram socket queues only a few messages, and
/// useradd and userdel log too); `/dev/log` is removed again when dropped.
pub struct SyslogCapture {
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    drain: Option<std::thread::JoinHandle<()>>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl SyslogCapture {
    const PATH: &'static str = "/dev/log";
    const JOURNAL: &'static str = "/run/systemd/journal/socket";

    /// Listens on `/dev/log`; `None` (a skip outside CI, a failure under it) where the host
    /// has a journal or syslog of its own, which would take the records instead.
    pub fn start(test: &str) -> Option<SyslogCapture> {
        use std::sync::atomic::Ordering;
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if Path::new(Self::PATH).exists() || Path::new(Self::JOURNAL).exists() {
            assert!(
                !in_ci(),
                "{test}: this host has a journal or syslog of its own; CI=true forbids skipping"
            );
            eprintln!("skipping the audit check of {test}: the host's own journal or syslog runs");
            return None;
        }
        let socket = std::os::unix::net::UnixDatagram::bind(Self::PATH).expect("bind /dev/log");
        set_mode(Path::new(Self::PATH), 0o666);
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, done) = (received.clone(), stop.clone());
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf)
                    && let Ok(mut r) = sink.lock()
                {
                    r.push(text(&buf[..n]));
                }
            }
        });
        Some(SyslogCapture {
            received,
            stop,
            drain: Some(drain),
            _one_at_a_time: guard,
        })
    }

    /// logoff's records received so far.
    pub fn records(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        self.received
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|l| l.contains("logoff["))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SyslogCapture {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(Self::PATH);
    }
}
