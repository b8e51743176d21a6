//! The elogind test host: this machine's root, overlaid, turned into a sysvinit host with
//! elogind (as Devuan's are), booted with systemd-nspawn.
//!
//! The packages (sysvinit-core, elogind, libpam-elogind and a syslog daemon) replace systemd
//! in an overlay only, installed once per test process from the `.deb` files scripts/test
//! downloads to [`DEBS`] (no network in the tests). The result — the overlay's upper layer,
//! about 17 MB — is kept in [`CACHE`] under a key made of this machine's package state and
//! the recipe, so the test processes of one run (and later runs, while nothing changes)
//! install them once; each elogind test host starts from a copy of it (0.1 s).
//!
//! The recipe (issue 22): while apt runs, a `policy-rc.d` refuses to start services and a
//! no-op `init` comes first in dpkg's path (sysvinit-core's postinst asks the running init to
//! re-execute itself, and this one is not sysvinit: 45 s of timeouts otherwise). Then only
//! what a test host needs starts at boot: the `rcS` and `rc2` links of everything else are
//! removed, and so are the `rc0`/`rc6` links that would remount the shared root read-only
//! (`umountroot`, `umountfs`) or touch this machine's clock and devices; the gettys are
//! commented out. The host boots with `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1` from a cgroup of
//! its own: elogind needs a cgroup2 hierarchy to put sessions in (with this machine's
//! hybrid v1 layout it cannot mount one, exits, and every login then stalls 25 s).

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Container, cgroup, run};
use crate::common::{text, wait_for};

/// Where scripts/test downloads the packages the elogind host installs (apt-get
/// `--download-only`, into a directory of their own so no `apt-get clean` here takes them).
pub const DEBS: &str = "/var/cache/logoff-elogind-debs";

/// What is installed in the overlay. dbus, openssh-server and polkitd come from this
/// machine (scripts/test installs them); polkitd stays, on libpam-elogind.
const PACKAGES: [&str; 4] = [
    "sysvinit-core",
    "elogind",
    "libpam-elogind",
    "inetutils-syslogd",
];

/// The init scripts an elogind test host runs at boot and at halt; every other link goes.
const SERVICES: [&str; 9] = [
    "hostname.sh",
    "bootmisc.sh",
    "inetutils-syslogd",
    "dbus",
    "rmnologin",
    "ssh",
    "elogind",
    "halt",
    "reboot",
];

/// Bumped whenever the recipe changes, so that a cached layer of an older recipe is not used.
const RECIPE: u32 = 1;

/// Prepared layers, one directory per key; `lock` serialises their making and removal.
const CACHE: &str = "/var/tmp/logoff-elogind-layer";

/// How long apt may take in the overlay.
const APT_TIMEOUT: Duration = Duration::from_secs(300);

/// The prepared upper layer (a directory to copy), made once per test process.
fn layer() -> Result<PathBuf, String> {
    static LAYER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LAYER.get_or_init(prepare_or_reuse).clone()
}

/// Copies the prepared layer into `upper` (the new test host's upper directory), holding
/// the cache's lock shared so that no other test process removes the layer meanwhile.
pub(super) fn seed_upper(upper: &Path) -> Result<(), String> {
    let layer = layer()?;
    let _lock = Lock::take(rustix::fs::FlockOperation::LockShared)?;
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", layer.display()))
        .arg(upper))?;
    Ok(())
}

/// The layer for this machine's packages as they are now: the cached one, or a new one.
fn prepare_or_reuse() -> Result<PathBuf, String> {
    let debs = deb_files()?;
    let key = key(&debs)?;
    std::fs::create_dir_all(CACHE).map_err(|e| format!("mkdir {CACHE}: {e}"))?;
    let _lock = Lock::take(rustix::fs::FlockOperation::LockExclusive)?;
    let dir = Path::new(CACHE).join(format!("{key:016x}"));
    if dir.join("ready").exists() {
        return Ok(dir.join("upper"));
    }
    // Layers of other keys are stale (older package states or recipes): nobody copies from
    // them now (that takes the lock).
    if let Ok(entries) = std::fs::read_dir(CACHE) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_layer(&entry.path());
            }
        }
    }
    let start = Instant::now();
    let made = make_layer(&dir);
    if let Err(e) = &made {
        remove_layer(&dir);
        return Err(e.clone());
    }
    std::fs::write(dir.join("ready"), "").map_err(|e| format!("mark the layer ready: {e}"))?;
    eprintln!(
        "elogind test host layer prepared in {:.1}s: {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(dir.join("upper"))
}

/// Runs the recipe in an overlay of `/` whose upper directory is `dir/upper`.
fn make_layer(dir: &Path) -> Result<(), String> {
    let root = dir.join("root");
    for d in ["upper", "work", "root"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("mkdir: {e}"))?;
    }
    run(Command::new("mount").args([
        "-t",
        "overlay",
        "overlay",
        "-o",
        &format!(
            "lowerdir=/,upperdir={},workdir={}",
            dir.join("upper").display(),
            dir.join("work").display()
        ),
        &root.display().to_string(),
    ]))?;
    let installed = install(&root).and_then(|()| trim_boot(&root));
    let _ = Command::new("umount").arg(&root).status();
    installed?;
    let _ = std::fs::remove_dir_all(dir.join("work"));
    let _ = std::fs::remove_dir(&root);
    Ok(())
}

/// apt-get install in the overlay (nspawn without booting, in a cgroup of its own).
fn install(root: &Path) -> Result<(), String> {
    let noinit = "/var/lib/logoff-noinit";
    let files = [
        (format!("{noinit}/init"), "#!/bin/sh\nexit 0\n"),
        ("/usr/sbin/policy-rc.d".to_string(), "#!/bin/sh\nexit 101\n"),
    ];
    for (path, content) in &files {
        let p = root.join(path.trim_start_matches('/'));
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
        crate::common::set_mode(&p, 0o755);
    }
    let machine_id: String = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(|e| format!("uuid: {e}"))?
        .trim()
        .replace('-', "");
    std::fs::write(root.join("etc/machine-id"), format!("{machine_id}\n"))
        .map_err(|e| format!("machine-id: {e}"))?;
    let own = cgroup::Own::make(&format!("elogind-layer-{}", std::process::id()))?;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"for f in $LOGOFF_TEST_CGROUPS; do echo $$ > "$f" || exit 97; done; exec "$@""#,
        "sh",
        "setpriv",
        "--pdeathsig",
        "SIGTERM",
        "--",
        "systemd-nspawn",
        "-q",
        "--register=no",
        "--keep-unit",
        "-E",
        "DEBIAN_FRONTEND=noninteractive",
        "-D",
    ])
    .arg(root)
    .args([
        "--",
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "--no-download",
        "-o",
        &format!("Dir::Cache::Archives={DEBS}/"),
        "-o",
        &format!("DPkg::Path={noinit}:/usr/sbin:/usr/bin:/sbin:/bin"),
    ])
    .args(PACKAGES)
    .env("LOGOFF_TEST_CGROUPS", own.procs()?)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("systemd-nspawn: {e}"))?;
    let out = wait_output(child, APT_TIMEOUT)?;
    if !out.status.success() {
        return Err(format!(
            "apt-get install {} in the overlay failed ({}; if apt's lists here have moved on \
             since the packages were downloaded, remove {DEBS} and run scripts/test again): \
             {}{}",
            PACKAGES.join(" "),
            out.status,
            tail(&text(&out.stdout), 30),
            tail(&text(&out.stderr), 30)
        ));
    }
    for (path, _) in &files {
        let _ = std::fs::remove_file(root.join(path.trim_start_matches('/')));
    }
    let _ = std::fs::remove_dir(root.join(noinit.trim_start_matches('/')));
    if root.join("usr/bin/systemd-stdio-bridge").exists() {
        return Err("systemd is still installed in the elogind overlay".into());
    }
    Ok(())
}

/// Only what a test host needs runs at boot and halt, and no getty.
fn trim_boot(root: &Path) -> Result<(), String> {
    let keep = SERVICES.join("|");
    let script = format!(
        "set -e; cd \"$1/etc\"; for l in rc?.d/[SK]*; do n=${{l#*/[SK][0-9][0-9]}}; \
         case \"$n\" in {keep}) ;; *) rm \"$l\";; esac; done; \
         sed -i 's/^\\([1-6]:\\)/#\\1/' inittab"
    );
    run(Command::new("sh").args(["-c", &script, "sh"]).arg(root))?;
    Ok(())
}

/// The downloaded packages, one for each of [`PACKAGES`] at least (sorted names).
fn deb_files() -> Result<Vec<String>, String> {
    let missing = || {
        format!(
            "the elogind test host's packages are not in {DEBS}: scripts/test (as root) \
             downloads them there (apt-get install --download-only {})",
            PACKAGES.join(" ")
        )
    };
    let mut names: Vec<String> = std::fs::read_dir(DEBS)
        .map_err(|_| missing())?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| n.ends_with(".deb"))
        .collect();
    names.sort();
    if PACKAGES
        .iter()
        .all(|p| names.iter().any(|n| n.starts_with(&format!("{p}_"))))
    {
        Ok(names)
    } else {
        Err(missing())
    }
}

/// The cache key: the recipe, this machine's installed packages, the downloaded ones.
fn key(debs: &[String]) -> Result<u64, String> {
    let status = std::fs::read("/var/lib/dpkg/status").map_err(|e| format!("dpkg status: {e}"))?;
    // FNV-1a: stable across Rust versions and runs, as a cache key must be.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&RECIPE.to_le_bytes());
    feed(&status);
    for d in debs {
        feed(d.as_bytes());
        feed(b"\n");
    }
    Ok(h)
}

/// Removes a layer directory (unmounting its overlay first, if a killed test left it).
fn remove_layer(dir: &Path) {
    let root = dir.join("root");
    if root.exists() {
        let _ = Command::new("umount").arg("-l").arg(&root).status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The cache's lock (flock on `CACHE/lock`), released when dropped.
struct Lock(std::fs::File);

impl Lock {
    /// Takes it, waiting at most as long as a preparation takes.
    fn take(how: rustix::fs::FlockOperation) -> Result<Lock, String> {
        use rustix::fs::FlockOperation as Op;
        std::fs::create_dir_all(CACHE).map_err(|e| format!("mkdir {CACHE}: {e}"))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(Path::new(CACHE).join("lock"))
            .map_err(|e| format!("{CACHE}/lock: {e}"))?;
        let nonblocking = match how {
            Op::LockShared => Op::NonBlockingLockShared,
            _ => Op::NonBlockingLockExclusive,
        };
        let end = Instant::now() + APT_TIMEOUT + Duration::from_secs(60);
        loop {
            match rustix::fs::flock(file.as_fd(), nonblocking) {
                Ok(()) => return Ok(Lock(file)),
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("lock {CACHE}/lock: {e}")),
            }
        }
    }
}

/// Waits for `child` (its output piped) up to `timeout`; kills it past that.
fn wait_output(
    mut child: std::process::Child,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let Some(status) = crate::common::wait_exit(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("still running after {timeout:?}: killed"));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Container {
    /// Waits until the elogind test host's init has reached runlevel 2, elogind and sshd
    /// run (sshd listening on its port) and the syslog daemon's socket is there.
    pub(super) fn wait_ready_sysv(&mut self) -> Result<(), String> {
        let nspawn_pid = self.nspawn.as_ref().map_or(0, |c| c.id() as i32);
        let mut pid1 = None;
        wait_for(Duration::from_secs(30), || {
            pid1 = super::child_named(nspawn_pid, "init");
            pid1.is_some()
        });
        self.pid1 =
            pid1.ok_or_else(|| format!("the container's init never started: {}", self.console()))?;
        let mut state = String::new();
        let up = wait_for(Duration::from_secs(60), || {
            let runlevel = self.exec(&["runlevel"]);
            state = text(&runlevel.stdout).trim().to_string();
            state.ends_with(" 2")
                && self
                    .exec(&["pgrep", "-x", "elogind-daemon"])
                    .status
                    .success()
                && self.exec(&["pgrep", "-x", "sshd"]).status.success()
                // The syslog daemon's socket: logoff's audit record goes there.
                && self.exec(&["test", "-S", "/dev/log"]).status.success()
        });
        if !up {
            let ps = self.exec(&["ps", "-ef"]);
            return Err(format!(
                "the elogind test host never came up (runlevel {state:?}): {}\n{}",
                text(&ps.stdout),
                self.log_tail(20)
            ));
        }
        let port = self.ssh_port;
        if !wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            return Err(format!(
                "sshd never listened on {port}: {}",
                self.log_tail(20)
            ));
        }
        Ok(())
    }

    /// Halts a sysvinit test host (`telinit 0`); true once nspawn has ended.
    pub(super) fn halt_sysv(&mut self) -> bool {
        if self.pid1 <= 0 {
            return false;
        }
        let _ = self.exec_timeout(&["telinit", "0"], Duration::from_secs(5));
        let Some(nspawn) = self.nspawn.as_mut() else {
            return true;
        };
        wait_for(Duration::from_secs(10), || {
            matches!(nspawn.try_wait(), Ok(Some(_)))
        })
    }
}
