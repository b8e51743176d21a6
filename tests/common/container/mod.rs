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
//!
//! A test host is of one [`Kind`]: systemd (the machine's own init, logind and journal) or
//! elogind (sysvinit, elogind and a syslog daemon instead, see [`elogind`]).
//!
//! [`rootfs`] prepares and starts a host, [`exec`] runs things inside it, [`ssh`] logs in
//! to it (sshd, `su -l`), [`fleet`] boots several and names them for ssh.

mod cgroup;
pub mod elogind;
mod exec;
pub mod fleet;
pub mod logoffd;
pub mod rdp;
mod rootfs;
pub mod ssh;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// Each test crate uses a part of these.
#[allow(unused_imports)]
pub use fleet::{Fleet, boot_kinds, boot_many};
#[allow(unused_imports)]
pub use ssh::{Background, SshSession};

use super::{require, text, wait_for};

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

/// What runs a test host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// systemd as init, systemd-logind, journald: this machine's own root as it is.
    Systemd,
    /// sysvinit, elogind and a syslog daemon, as on Devuan (see [`elogind`]).
    Elogind,
}

pub struct Container {
    pub name: String,
    pub kind: Kind,
    base: PathBuf,
    /// The container's root as the host sees it (the overlay mount).
    pub root: PathBuf,
    nspawn: Option<Child>,
    /// Its own cgroups (removed at the end of `drop`, once nspawn has ended).
    cgroup: Option<cgroup::Own>,
    pub pid1: i32,
    pub ssh_port: u16,
    /// Private key authorized for root and for every user made with [`Container::add_user`].
    pub key: PathBuf,
}

/// Boots a (systemd) test host, or explains why it cannot (skip outside CI, fail under CI).
pub fn boot(test: &str) -> Option<Container> {
    boot_as(test, Kind::Systemd)
}

/// Boots a test host of `kind`, or explains why it cannot (skip outside CI, fail under CI).
pub fn boot_as(test: &str, kind: Kind) -> Option<Container> {
    if !super::require_root_or_skip(test) {
        return None;
    }
    match Container::boot(test, kind) {
        Ok(c) => Some(c),
        Err(why) => {
            require(test, Err(format!("cannot boot a test host: {why}")));
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
    pub fn boot(test: &str, kind: Kind) -> Result<Container, String> {
        Container::boot_inner(test, kind, true)
    }

    fn boot_inner(test: &str, kind: Kind, wait: bool) -> Result<Container, String> {
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
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let name = format!("lt{short}{}{n}", std::process::id() % 10_000);
        let base = PathBuf::from(format!("/var/tmp/logoff-ct-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(base.join(d)).map_err(|e| format!("mkdir: {e}"))?;
        }
        if kind == Kind::Elogind {
            elogind::seed_upper(&base.join("upper"))?;
        }
        let mut c = Container {
            name: name.clone(),
            kind,
            base: base.clone(),
            root: root.clone(),
            nspawn: None,
            cgroup: None,
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
    pub(super) fn launch(test: &str, kind: Kind) -> Result<Container, String> {
        Container::boot_inner(test, kind, false)
    }

    /// Waits until the test host is up and its sshd listens.
    pub(super) fn wait_ready(&mut self) -> Result<(), String> {
        match self.kind {
            Kind::Systemd => self.wait_ready_systemd(),
            Kind::Elogind => self.wait_ready_sysv(),
        }
    }

    /// Waits until the test host's systemd is up and its sshd listens.
    fn wait_ready_systemd(&mut self) -> Result<(), String> {
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
        // A unit of the target can fail to start while several hosts boot at once (seen:
        // systemd-user-sessions "Failed to attach to cgroup" on cgroup v1, which leaves
        // /run/nologin and every user's ssh login refused): start the target again.
        for _ in 0..3 {
            let target = self.exec(&["systemctl", "is-active", "logoff-test.target"]);
            if text(&target.stdout).trim() == "active" {
                break;
            }
            let _ = self.exec(&["systemctl", "reset-failed"]);
            let _ = self.exec(&["systemctl", "start", "logoff-test.target"]);
        }
        let target = self.exec(&["systemctl", "is-active", "logoff-test.target"]);
        if text(&target.stdout).trim() != "active" {
            let failed = self.exec(&["systemctl", "--failed", "--no-pager"]);
            return Err(format!(
                "the test host's target did not start: {}",
                text(&failed.stdout)
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
        // sysvinit does not halt on nspawn's SIGTERM (systemd's SIGRTMIN+3): it is told.
        if self.kind == Kind::Elogind {
            self.halt_sysv();
        }
        if let Some(mut nspawn) = self.nspawn.take() {
            let pid = nspawn.id() as i32;
            let ended = matches!(nspawn.try_wait(), Ok(Some(_)));
            let _ = (!ended).then(|| {
                Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
            });
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
        self.cgroup = None;
    }
}

fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&path.display().to_string()))
}
