//! A test host with a real systemd, logind, polkit and sshd: this machine's own root
//! filesystem, overlaid, booted with systemd-nspawn.
//!
//! The container shares the host's network namespace, so its sshd listens on a loopback port
//! of its own, and the host's ssh reaches it there. Everything inside runs through
//! `nsenter -t PID1 -a`. The built logoff binary is copied to `/usr/local/bin/logoff`.
//!
//! Under `CI=true` a container that cannot be built fails the test; elsewhere the test skips
//! with the reason printed. `Drop` stops the container, unmounts and removes everything, also
//! when the test fails; nspawn gets SIGTERM if the test thread dies first (PR_SET_PDEATHSIG).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{in_ci, logoff_bin, set_mode, text, wait_for};

/// The target the test hosts boot into: what logoff needs, nothing the host image happens to
/// have enabled (databases and the like).
const TARGET: &str = "\
[Unit]
Description=logoff test host
Requires=basic.target dbus.service systemd-logind.service ssh.service systemd-journald.service
Requires=systemd-user-sessions.service
After=basic.target dbus.service systemd-logind.service ssh.service systemd-user-sessions.service
AllowIsolate=yes
";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Container {
    pub name: String,
    base: PathBuf,
    /// The container's root as the host sees it (the overlay mount).
    pub root: PathBuf,
    nspawn: Option<Child>,
    pub pid1: i32,
    pub ssh_port: u16,
    /// Private key authorized for root and for every user made with [`Container::add_user`].
    pub key: PathBuf,
}

/// Boots a test host, or explains why it cannot (skip outside CI, fail under CI).
pub fn boot(test: &str) -> Option<Container> {
    if !rustix::process::geteuid().is_root() {
        assert!(
            !in_ci(),
            "{test}: needs root to boot a test host, and CI=true"
        );
        eprintln!("skipping {test}: needs root to boot a test host");
        return None;
    }
    match Container::boot(test) {
        Ok(c) => Some(c),
        Err(why) => {
            assert!(!in_ci(), "{test}: cannot boot a test host: {why}");
            eprintln!("skipping {test}: cannot boot a test host: {why}");
            None
        }
    }
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ))
    }
}

/// A free loopback port (the kernel picks; the container binds it moments later).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Container {
    pub fn boot(test: &str) -> Result<Container, String> {
        Container::boot_inner(test, true)
    }

    fn boot_inner(test: &str, wait: bool) -> Result<Container, String> {
        for tool in [
            "systemd-nspawn",
            "nsenter",
            "ssh",
            "ssh-keygen",
            "/usr/sbin/sshd",
        ] {
            let found = if tool.starts_with('/') {
                Path::new(tool).exists()
            } else {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("command -v {tool}"))
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !found {
                return Err(format!("{tool} is not installed"));
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        let name = format!("lt{short}{}{n}", std::process::id() % 10_000);
        let base = PathBuf::from(format!("/var/tmp/logoff-ct-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(base.join(d)).map_err(|e| format!("mkdir: {e}"))?;
        }
        let mut c = Container {
            name: name.clone(),
            base: base.clone(),
            root: root.clone(),
            nspawn: None,
            pid1: 0,
            ssh_port: free_port()?,
            key: base.join("id_ed25519"),
        };
        run(Command::new("mount").args([
            "-t",
            "overlay",
            "overlay",
            "-o",
            &format!(
                "lowerdir=/,upperdir={},workdir={}",
                base.join("upper").display(),
                base.join("work").display()
            ),
            &root.display().to_string(),
        ]))?;
        c.prepare_root()?;
        c.start()?;
        if wait {
            c.wait_ready()?;
        }
        Ok(c)
    }

    /// Prepares and starts a test host without waiting for it to come up (see
    /// [`Container::wait_ready`]). nspawn dies with the thread that calls this.
    fn launch(test: &str) -> Result<Container, String> {
        Container::boot_inner(test, false)
    }

    fn write(&self, path: &str, content: &str) -> Result<(), String> {
        let p = self.root.join(path.trim_start_matches('/'));
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))
    }

    fn prepare_root(&self) -> Result<(), String> {
        // A fresh machine ID (nspawn refuses the host's own).
        let machine_id: String = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map_err(|e| format!("uuid: {e}"))?
            .trim()
            .replace('-', "");
        self.write("/etc/machine-id", &format!("{machine_id}\n"))?;
        self.write("/etc/hostname", &format!("{}\n", self.name))?;
        self.write(
            "/etc/ssh/sshd_config.d/logoff-test.conf",
            &format!(
                "Port {}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\n",
                self.ssh_port
            ),
        )?;
        self.write("/etc/systemd/system/logoff-test.target", TARGET)?;
        // The host may not have host keys (sshd never ran here): make them for the guest.
        if !Path::new("/etc/ssh/ssh_host_ed25519_key").exists() {
            run(Command::new("ssh-keygen").args(["-A", "-f", &self.root.display().to_string()]))?;
        }
        let bin = self.root.join("usr/local/bin/logoff");
        std::fs::create_dir_all(self.root.join("usr/local/bin")).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&bin);
        std::fs::copy(logoff_bin(), &bin).map_err(|e| format!("copy logoff: {e}"))?;
        set_mode(&bin, 0o755);
        run(Command::new("ssh-keygen").args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &self.key.display().to_string(),
        ]))?;
        let pubkey = std::fs::read_to_string(self.key.with_extension("pub"))
            .map_err(|e| format!("read key: {e}"))?;
        self.write("/root/.ssh/authorized_keys", &pubkey)?;
        set_mode(&self.root.join("root/.ssh"), 0o700);
        set_mode(&self.root.join("root/.ssh/authorized_keys"), 0o600);
        Ok(())
    }

    fn start(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.base.join("console.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "SIGTERM", "--", "systemd-nspawn", "-D"])
            .arg(&self.root)
            .args([
                "-M",
                &self.name,
                "--register=no",
                "--keep-unit",
                "--link-journal=no",
                "-b",
                "--console=pipe",
                "--",
                "systemd.unit=logoff-test.target",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("systemd-nspawn: {e}"))?;
        self.nspawn = Some(child);
        Ok(())
    }

    /// Waits until the test host's systemd is up and its sshd listens.
    fn wait_ready(&mut self) -> Result<(), String> {
        let nspawn_pid = self.nspawn.as_ref().map_or(0, |c| c.id() as i32);
        let mut pid1 = None;
        wait_for(Duration::from_secs(30), || {
            pid1 = child_named(nspawn_pid, "systemd");
            pid1.is_some()
        });
        self.pid1 = pid1
            .ok_or_else(|| format!("the container's systemd never started: {}", self.console()))?;
        // Until the manager's bus is up, systemctl says "offline" (or nothing): ask again.
        let end = Instant::now() + Duration::from_secs(90);
        let mut state = String::new();
        while Instant::now() < end {
            let out = self
                .exec_timeout(
                    &["systemctl", "is-system-running", "--wait"],
                    Duration::from_secs(60),
                )
                .ok_or("systemctl is-system-running --wait timed out")?;
            state = text(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if state != "running" && state != "degraded" {
            return Err(format!(
                "the container's system is {state:?}: {}",
                self.console()
            ));
        }
        // "degraded" passes above; the test host's own sshd must not be what failed (its
        // port taken by another host's, say), or the port below would answer for another.
        let sshd = self.exec(&["systemctl", "is-active", "ssh.service"]);
        if text(&sshd.stdout).trim() != "active" {
            let status = self.exec(&["systemctl", "status", "ssh", "--no-pager"]);
            return Err(format!(
                "the test host's sshd is not running: {}",
                text(&status.stdout)
            ));
        }
        let port = self.ssh_port;
        if !wait_for(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            let status = self.exec(&["systemctl", "status", "ssh", "--no-pager"]);
            return Err(format!(
                "sshd never listened on {port}: {}",
                text(&status.stdout)
            ));
        }
        Ok(())
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.base.join("console.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid1.to_string(), "-a"]);
        cmd
    }

    /// Runs a command inside the container (as root, in no session).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.nsenter()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Option<Output> {
        let mut child = self
            .nsenter()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return child.wait_with_output().ok();
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a shell script inside the container.
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    /// Runs logoff inside the container as root (outside any session).
    pub fn logoff(&self, args: &[&str]) -> Output {
        let mut all = vec!["/usr/local/bin/logoff"];
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// Runs logoff inside the container as root, with `env` set.
    pub fn logoff_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all = vec!["env"];
        all.extend(vars.iter().map(String::as_str));
        all.push("/usr/local/bin/logoff");
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// `logoff --list --json` inside the container, parsed.
    pub fn sessions(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["--list", "--json"];
        args.extend_from_slice(extra);
        let out = self.logoff(&args);
        assert!(out.status.success(), "logoff --list: {}", text(&out.stderr));
        match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            Ok(serde_json::Value::Array(rows)) => rows,
            other => panic!("logoff --list --json printed {other:?}"),
        }
    }

    /// Waits until a session listed by logind satisfies `pred`; returns it.
    pub fn wait_session(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let mut found = None;
        wait_for(Duration::from_secs(15), || {
            found = self.sessions(&[]).into_iter().find(|s| pred(s));
            found.is_some()
        });
        found.expect("the session never appeared")
    }

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
    pub fn ssh(&self, user: &str, script: &str) -> SshSession {
        let marked = format!("echo LOGOFF-TEST-SESSION=$XDG_SESSION_ID $(tty); {script}");
        let mut child = self
            .ssh_command(user)
            .arg("-tt")
            .arg(marked)
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
        let mut session = SshSession {
            child,
            _stdin: stdin,
            output,
            id: String::new(),
            tty: String::new(),
        };
        // The first login into a cold test host (a fresh machine booting several at once on
        // two cores) has taken over 20 s here.
        let ok = wait_for(Duration::from_secs(90), || {
            let out = session.output();
            if let Some(line) = out.lines().find(|l| l.contains("LOGOFF-TEST-SESSION=")) {
                let rest = line.split("LOGOFF-TEST-SESSION=").nth(1).unwrap_or("");
                let mut parts = rest.split_whitespace();
                session.id = parts.next().unwrap_or("").to_string();
                session.tty = parts
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("/dev/")
                    .to_string();
                true
            } else {
                // The client gave up (refused, or the connection dropped): no use waiting.
                !session.is_connected()
            }
        });
        if !ok || session.id.is_empty() {
            let client = match session.child.try_wait() {
                Ok(Some(status)) => format!("the ssh client exited ({status})"),
                _ => "the ssh client is still waiting".to_string(),
            };
            let journal = self.exec(&["journalctl", "--no-pager", "-n", "30"]);
            let jobs = self.exec(&["systemctl", "list-jobs", "--no-pager"]);
            panic!(
                "the ssh session of {user} never started: {client}; it said: {}\n\
                 jobs in the test host:\n{}\njournal of the test host:\n{}",
                session.output(),
                text(&jobs.stdout),
                text(&journal.stdout)
            );
        }
        session
    }

    /// Starts `su -l user -c script` in the background: a PAM session pam_systemd registers
    /// (class background, no terminal, no audit ID).
    pub fn su(&self, user: &str, script: &str) -> Background {
        Background(
            self.nsenter()
                .args(["su", "-l", user, "-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn su"),
        )
    }

    /// PIDs (as seen inside) of processes whose command line contains `marker`.
    pub fn pids_matching(&self, marker: &str) -> Vec<i32> {
        let out = self.exec(&["pgrep", "-f", marker]);
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `loginctl show-session ID -p Key --value`, or `None` if logind knows no such session.
    pub fn loginctl_property(&self, id: &str, key: &str) -> Option<String> {
        let out = self.exec(&["loginctl", "show-session", id, "-p", key, "--value"]);
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    }

    /// Whether loginctl still lists the session as online or active.
    pub fn session_alive(&self, id: &str) -> bool {
        matches!(
            self.loginctl_property(id, "State").as_deref(),
            Some("online" | "active")
        )
    }
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

/// The first child of `parent` whose command name is `comm`.
fn child_named(parent: i32, comm: &str) -> Option<i32> {
    for pid in super::proc_pids() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid: i32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if ppid == parent && name == comm {
            return Some(pid);
        }
    }
    None
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut nspawn) = self.nspawn.take() {
            let pid = nspawn.id() as i32;
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let stopped = wait_for(Duration::from_secs(15), || {
                matches!(nspawn.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                // Killing the container's init ends everything in its PID namespace.
                if self.pid1 > 0 {
                    let _ = Command::new("kill")
                        .args(["-KILL", &self.pid1.to_string()])
                        .status();
                }
                let _ = nspawn.kill();
            }
            let _ = nspawn.wait();
        }
        for _ in 0..20 {
            let out = Command::new("umount").arg(&self.root).output();
            if out.is_ok_and(|o| o.status.success()) || !is_mounted(&self.root) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if is_mounted(&self.root) {
            let _ = Command::new("umount").arg("-l").arg(&self.root).status();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&path.display().to_string()))
}

/// A command running in the background; killed and reaped when dropped.
pub struct Background(pub Child);

impl Background {
    /// Waits (up to `timeout`) for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        super::wait_exit(&mut self.0, timeout)
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
    _stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    /// logind's session ID (`$XDG_SESSION_ID` on the far side).
    pub id: String,
    /// The session's terminal (`pts/0`).
    pub tty: String,
}

impl SshSession {
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits for the client to exit (the connection closed); its exit status.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        super::wait_exit(&mut self.child, timeout)
    }

    pub fn is_connected(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Types into the session's terminal.
    pub fn send(&mut self, input: &str) {
        if let Some(stdin) = self._stdin.as_mut() {
            let _ = stdin.write_all(input.as_bytes());
            let _ = stdin.flush();
        }
    }
}

impl Drop for SshSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Boots `n` test hosts at once (each boot mostly waits); `None` as for [`boot`].
pub fn boot_many(test: &str, n: usize) -> Option<Vec<Container>> {
    if !rustix::process::geteuid().is_root() {
        assert!(
            !in_ci(),
            "{test}: needs root to boot test hosts, and CI=true"
        );
        eprintln!("skipping {test}: needs root to boot test hosts");
        return None;
    }
    // Launched from this thread (nspawn dies with the thread that starts it), then waited
    // for together: they boot at the same time.
    let launched: Vec<Result<Container, String>> = (0..n)
        .map(|i| Container::launch(&format!("{test}{i}")))
        .collect();
    let results: Vec<Result<Container, String>> = launched
        .into_iter()
        .map(|r| {
            r.and_then(|mut c| {
                c.wait_ready()?;
                Ok(c)
            })
        })
        .collect();
    let mut hosts = Vec::new();
    for r in results {
        match r {
            Ok(c) => hosts.push(c),
            Err(why) => {
                assert!(!in_ci(), "{test}: cannot boot a test host: {why}");
                eprintln!("skipping {test}: cannot boot a test host: {why}");
                return None;
            }
        }
    }
    Some(hosts)
}

/// An ssh configuration that names test hosts (`Host ALIAS` → loopback port, root, test key),
/// and an ssh wrapper that uses it, for `LOGOFF_SSH` (or, as `ssh` first in `PATH`, for
/// `loginctl -H`).
pub struct Fleet {
    pub dir: super::TempDir,
    pub aliases: Vec<String>,
}

impl Fleet {
    pub fn new(hosts: &[&Container], prefix: &str) -> Fleet {
        let dir = super::TempDir::new("fleet");
        let mut config = String::new();
        let mut aliases = Vec::new();
        for (i, c) in hosts.iter().enumerate() {
            let alias = format!("{prefix}{}", i + 1);
            config.push_str(&format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n",
                c.ssh_port,
                c.key.display()
            ));
            aliases.push(alias);
        }
        config.push_str(
            "Host *\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
             UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
        );
        std::fs::write(dir.path("ssh_config"), config).expect("write ssh config");
        let wrapper = dir.path("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                dir.path("ssh_config").display()
            ),
        )
        .expect("write ssh wrapper");
        set_mode(&wrapper, 0o755);
        Fleet { dir, aliases }
    }

    /// Adds a host alias that points at `port` on loopback (a host that is down, or hangs).
    pub fn add_alias(&mut self, alias: &str, port: u16) {
        let path = self.dir.path("ssh_config");
        let old = std::fs::read_to_string(&path).expect("read ssh config");
        std::fs::write(
            &path,
            format!("Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n{old}"),
        )
        .expect("write ssh config");
        self.aliases.push(alias.to_string());
    }

    pub fn ssh(&self) -> PathBuf {
        self.dir.path("ssh")
    }

    /// Runs logoff on this machine with the fleet's ssh.
    pub fn logoff(&self, args: &[&str]) -> Output {
        Command::new(logoff_bin())
            .args(args)
            .env("LOGOFF_SSH", self.ssh())
            .stdin(Stdio::null())
            .output()
            .expect("run logoff")
    }
}
