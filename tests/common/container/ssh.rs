//! Logging in to a test host: users with the test key, ssh logins with a terminal, `su -l`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Container;
use crate::common::{text, wait_for};

impl Container {
    /// Makes a user (with a home and the test key authorized); returns its uid.
    pub fn add_user(&self, name: &str) -> u32 {
        let out = self.exec(&["useradd", "-m", "-s", "/bin/bash", name]);
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            text(&out.stderr)
        );
        let pubkey = std::fs::read_to_string(self.key.with_extension("pub")).expect("pubkey");
        let out = self.sh(&format!(
            "mkdir -p ~{name}/.ssh && echo '{}' > ~{name}/.ssh/authorized_keys && \
             chown -R {name}: ~{name}/.ssh && chmod 700 ~{name}/.ssh && \
             chmod 600 ~{name}/.ssh/authorized_keys",
            pubkey.trim()
        ));
        assert!(
            out.status.success(),
            "authorize {name}: {}",
            text(&out.stderr)
        );
        let out = self.exec(&["id", "-u", name]);
        text(&out.stdout).trim().parse().expect("uid")
    }

    /// The ssh command that reaches `user` on this host (host's ssh client, test key).
    pub fn ssh_command(&self, user: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-i",
            &self.key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-p",
            &self.ssh_port.to_string(),
            &format!("{user}@127.0.0.1"),
        ]);
        cmd
    }

    /// Opens an ssh session with a terminal (`ssh -tt`) running `script`; returns once logind
    /// has registered it.
    ///
    /// A login pam_systemd could not register (pam_systemd is optional in Debian's PAM
    /// stack, so sshd lets it in anyway) runs nothing of `script` and is made once more. Seen
    /// once in CI, on one of three test hosts booting together: a login without
    /// `$XDG_SESSION_ID`. Twice in a row fails the test, with the test host's journal.
    pub fn ssh(&self, user: &str, script: &str) -> SshSession {
        let mut first = self.login(user, script);
        if !first.id.is_empty() {
            return first;
        }
        eprintln!(
            "the ssh login of {user} has no logind session; logging in again. Log of the \
             test host:\n{}",
            self.log_tail(40)
        );
        // It exits by itself (97). Not checked: the next login does not need it gone, only
        // its terminal's number might differ, and the tests check the terminal they get.
        first.wait_closed(Duration::from_secs(10));
        let session = self.login(user, script);
        if session.id.is_empty() {
            panic!(
                "the ssh login of {user} has no logind session, twice (pam_systemd did not \
                 register it; terminal {:?}); it said: {}\nlog of the test host:\n{}",
                session.tty,
                session.output(),
                self.log_tail(60)
            );
        }
        session
    }

    /// One ssh login running `script` once logind has registered it (else nothing: its `id`
    /// is then empty).
    fn login(&self, user: &str, script: &str) -> SshSession {
        // Both fields are delimited: an empty `$XDG_SESSION_ID` must not read as a session
        // named after the terminal.
        let marked = format!(
            "echo \"LOGOFF-TEST-SESSION=[$XDG_SESSION_ID] [$(tty)]\"; \
             [ -n \"$XDG_SESSION_ID\" ] || exit 97; {script}"
        );
        let mut session = SshSession::spawn(self.ssh_command(user).arg("-tt").arg(marked));
        // The first login into a cold test host (a fresh machine booting several at once on
        // two cores) has taken over 20 s here.
        let mut seen = false;
        wait_for(Duration::from_secs(90), || {
            let out = session.output();
            if let Some((id, tty)) = out.lines().find_map(marker) {
                session.id = id;
                session.tty = tty;
                seen = true;
                true
            } else {
                // The client gave up (refused, or the connection dropped): no use waiting.
                !session.is_connected()
            }
        });
        if !seen {
            let client = match session.child.try_wait() {
                Ok(Some(status)) => format!("the ssh client exited ({status})"),
                _ => "the ssh client is still waiting".to_string(),
            };
            let jobs = self.exec(&["systemctl", "list-jobs", "--no-pager"]);
            panic!(
                "the ssh session of {user} never started: {client}; it said: {}\n\
                 jobs in the test host:\n{}\nlog of the test host:\n{}",
                session.output(),
                text(&jobs.stdout),
                self.log_tail(30)
            );
        }
        session
    }

    /// A second channel with a terminal (`ssh -S socket -tt`) over the connection of the
    /// `ssh -M -S socket` master already running: the same logind session, a new terminal.
    /// Its `id` is empty (the session is the master's).
    pub fn ssh_channel(&self, user: &str, socket: &std::path::Path, script: &str) -> SshSession {
        SshSession::spawn(
            self.ssh_command(user)
                .arg("-S")
                .arg(socket)
                .arg("-tt")
                .arg(script),
        )
    }

    /// Starts `su -l user -c script` in the background: a PAM session pam_systemd registers
    /// (class background, no terminal, no audit ID).
    pub fn su(&self, user: &str, script: &str) -> Background {
        self.su_with(user, script, &[])
    }

    /// [`Container::su`] with `env` set for su (pam_systemd reads `XDG_SESSION_TYPE` and
    /// `XDG_SESSION_CLASS` from it: a graphical session, say).
    pub fn su_with(&self, user: &str, script: &str, env: &[(&str, &str)]) -> Background {
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Background(
            self.nsenter()
                .arg("env")
                .args(&vars)
                .args(["su", "-l", user, "-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn su"),
        )
    }
}

/// The session ID and terminal (`pts/0`) in the line [`Container::ssh`] has the login print.
fn marker(line: &str) -> Option<(String, String)> {
    let rest = line.split("LOGOFF-TEST-SESSION=[").nth(1)?;
    let (id, rest) = rest.split_once("] [")?;
    let (tty, _) = rest.split_once(']')?;
    Some((id.to_string(), tty.trim_start_matches("/dev/").to_string()))
}

/// Appends what `from` says, line by line, to `sink` (on a thread of its own).
fn collect(from: impl std::io::Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if let Ok(mut o) = sink.lock() {
                o.push_str(&line);
                o.push('\n');
            }
        }
    });
}

/// A command running in the background; killed and reaped when dropped.
pub struct Background(pub Child);

impl Background {
    /// Waits (up to `timeout`) for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        crate::common::wait_exit(&mut self.0, timeout)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An ssh client connected to a test host with a terminal.
pub struct SshSession {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    /// logind's session ID (`$XDG_SESSION_ID` on the far side).
    pub id: String,
    /// The session's terminal (`pts/0`).
    pub tty: String,
}

impl SshSession {
    /// Runs `ssh` (a command [`Container::ssh_command`] made), its input piped, its output
    /// collected.
    fn spawn(ssh: &mut Command) -> SshSession {
        let mut child = ssh
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh");
        let stdin = child.stdin.take();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&output);
        let stdout = child.stdout.take().expect("ssh stdout");
        let stderr = child.stderr.take().expect("ssh stderr");
        collect(stdout, Arc::clone(&sink));
        collect(stderr, sink);
        SshSession {
            child,
            stdin,
            output,
            id: String::new(),
            tty: String::new(),
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits for the client to exit (the connection closed); its exit status.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        crate::common::wait_exit(&mut self.child, timeout)
    }

    pub fn is_connected(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Types `line` and Enter on the session's terminal (what the login reads from it).
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        if let Some(input) = self.stdin.as_mut() {
            let _ = input.write_all(format!("{line}\r").as_bytes());
            let _ = input.flush();
        }
    }
}

impl Drop for SshSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
