//! Login sessions made for a test, the way pam_loginuid makes one: a child writes a uid to
//! `/proc/self/loginuid` before it execs, which gives it a fresh kernel audit session ID that
//! all its descendants inherit. Every process of one is killed when it is dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::users::TestUser;
use super::{audit_session_of, live_members, shell_quote, wait_exit, wait_for};

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
    /// With `pty`: keep script(1)'s input open, for [`TestSession::type_line`] (what is
    /// typed is what the session reads from its terminal).
    pub input: bool,
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
            .stdin(if spec.input {
                Stdio::piped()
            } else {
                Stdio::null()
            })
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

    /// Types `line` (and Enter) on the session's terminal (needs [`SessionSpec::input`]).
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let input = self
            .child
            .stdin
            .as_mut()
            .expect("a session started with input");
        input
            .write_all(format!("{line}\r").as_bytes())
            .expect("type");
        input.flush().expect("flush");
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
