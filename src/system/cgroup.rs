//! Control groups on this host: where systemd's tree is mounted, which processes a scope's
//! cgroup holds, and waiting until scopes are empty.
//!
//! A cgroup2 directory says itself when its last process has gone (`populated 0` in
//! `cgroup.events`, a file the kernel signals with POLLPRI when it changes), so a wait on
//! many scopes is one poll(2) on their `cgroup.events` files together.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use rustix::event::{PollFd, PollFlags};

use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::Pid;

/// The mount points of the cgroup hierarchies that hold systemd's tree: cgroup2 first, then
/// the named v1 hierarchy of a hybrid setup.
pub fn mounts() -> Vec<PathBuf> {
    // Mount points are names users may choose (a FUSE mount), not always UTF-8.
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let info = String::from_utf8_lossy(&info);
    let mut v2 = Vec::new();
    let mut named = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        let options = fields.get(sep + 3).copied().unwrap_or("");
        if *fstype == "cgroup2" {
            v2.push(PathBuf::from(mount));
        } else if *fstype == "cgroup" && options.split(',').any(|o| o == "name=systemd") {
            named.push(PathBuf::from(mount));
        }
    }
    v2.extend(named);
    v2
}

/// The directory of systemd's cgroup `group` (`/user.slice/.../session-3.scope`) on this host,
/// where one of [`mounts`] has it.
pub fn find(group: &str) -> Option<PathBuf> {
    mounts()
        .into_iter()
        .map(|m| m.join(group.trim_start_matches('/')))
        .find(|dir| dir.join("cgroup.procs").exists())
}

/// The cgroup process `pid` is in, in systemd's tree (cgroup2's `0::` line, else the named
/// v1 hierarchy's): the kernel's word, which a user cannot change outside what was delegated
/// to them. `None` where it cannot be read.
pub fn of(pid: Pid) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(String::from)
    };
    line("0::").or_else(|| {
        text.lines()
            .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p.to_string()))
    })
}

/// Whether cgroup `path` is where user `uid`'s service manager itself runs:
/// `…/user@UID.service/init.scope` (its services run beside it, in other cgroups of the unit).
fn is_user_manager_cgroup(path: &str, uid: crate::model::Uid) -> bool {
    let unit = format!("user@{uid}.service");
    let mut parts = path.rsplit('/');
    parts.next() == Some("init.scope") && parts.next() == Some(unit.as_str())
}

/// Whether process `pid` (whose parent is `ppid`) is user `uid`'s service manager itself:
/// `systemd --user`, which PID 1 starts (its parent), in `user@UID.service/init.scope`, and
/// which runs the program PID 1 runs (by the path of the kernel's link to it, and the file
/// root's; an upgrade's old file counts as the same). A user's own program in
/// their `user@UID.service` (`systemd-run --user --scope tmux`) is not in `init.scope`, and
/// one they move there runs another program.
pub fn is_user_manager_process(pid: Pid, ppid: i32, uid: crate::model::Uid) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(path) = of(pid) else {
        return false;
    };
    let exe = format!("/proc/{pid}/exe");
    // The file itself (the link followed), root's: a user's own file bind-mounted over
    // systemd's path in a namespace of theirs shows that path, but not root's file.
    let roots = || std::fs::metadata(&exe).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    ppid == 1
        && is_user_manager_cgroup(&path, uid)
        && program(&exe).is_some_and(|p| is_systemd(&p))
        && roots()
}

/// The path of the program a `/proc/PID/exe` link names, without the kernel's ` (deleted)`.
fn program(link: &str) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    let text = target.to_str()?;
    Some(text.strip_suffix(" (deleted)").unwrap_or(text).to_string())
}

/// Whether `path` is systemd's program: PID 1's, or where systemd keeps it (where PID 1's
/// link cannot be read, as in some containers).
fn is_systemd(path: &str) -> bool {
    ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"].contains(&path)
        || program("/proc/1/exe").is_some_and(|init| init == path)
}

/// The PIDs in a cgroup (`cgroup.procs`); `[]` once the cgroup is gone.
pub fn pids(dir: &Path) -> Result<Vec<Pid>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .map(Pid::from_raw)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(
            Kind::System,
            format!("cannot read {}", dir.join("cgroup.procs").display()),
            e,
        )),
    }
}

/// The CPU time the processes of cgroup `dir` have used, those that have ended included
/// (`usage_usec` in its `cpu.stat`, which cgroup2 keeps whether or not the cpu controller
/// is on); `None` where there is none (cgroup v1, the cgroup gone).
pub fn cpu_time(dir: &Path) -> Option<std::time::Duration> {
    let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let usec = text
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_micros(usec))
}

/// Whether `dir` can be waited on through `cgroup.events` (cgroup2).
pub fn has_events(dir: &Path) -> bool {
    dir.join("cgroup.events").exists()
}

/// Waits until each of the cgroup2 directories `dirs` has no process left (`populated 0`, or
/// the directory gone), or `deadline` passes. Returns, per directory, whether it is empty.
pub fn wait_empty(dirs: &[&Path], deadline: Deadline) -> Result<Vec<bool>> {
    let mut files: Vec<Option<File>> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let events = dir.join("cgroup.events");
        match File::open(&events) {
            Ok(f) => files.push(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => files.push(None),
            Err(e) => {
                return Err(Error::io(
                    Kind::System,
                    format!("cannot read {}", events.display()),
                    e,
                ));
            }
        }
    }
    let mut empty: Vec<bool> = files.iter().map(Option::is_none).collect();
    loop {
        for (file, done) in files.iter_mut().zip(empty.iter_mut()) {
            if let Some(f) = file
                && !*done
                && unpopulated(f)
            {
                *done = true;
            }
        }
        if empty.iter().all(|&d| d) || deadline.passed() {
            return Ok(empty);
        }
        let step = deadline.next_step();
        let timeout = crate::deadline::timespec(step);
        // kernfs signals a change of the file as POLLPRI (and POLLERR).
        let mut fds: Vec<PollFd<'_>> = files
            .iter()
            .zip(&empty)
            .filter(|(_, done)| !**done)
            .filter_map(|(f, _)| f.as_ref().map(|f| PollFd::new(f, PollFlags::PRI)))
            .collect();
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::io(
                    Kind::System,
                    "cannot poll cgroup.events",
                    e.into(),
                ));
            }
        }
    }
}

/// Whether an open `cgroup.events` says `populated 0` (or can no longer be read: the cgroup
/// was removed, so nothing is left in it).
fn unpopulated(file: &mut File) -> bool {
    let mut text = String::new();
    match file.rewind().and_then(|()| file.read_to_string(&mut text)) {
        Ok(_) => text.lines().any(|l| l.trim() == "populated 0"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (hostile read of issue 26): any process in `user@UID.service` made its
    /// audit session a protected manager, and `systemd-run --user --scope tmux` puts a
    /// login's programs there.
    #[test]
    fn a_user_managers_cgroup_is_its_init_scope() {
        let uid = crate::model::Uid::from_raw(1000);
        let slice = "/user.slice/user-1000.slice";
        assert!(is_user_manager_cgroup(
            &format!("{slice}/user@1000.service/init.scope"),
            uid
        ));
        for not in [
            format!("{slice}/user@1000.service/app.slice/run-r1.scope"),
            format!("{slice}/user@1000.service/app.slice/x.service"),
            format!("{slice}/session-3.scope"),
            format!("{slice}/user@1001.service/init.scope"),
            "/init.scope".to_string(),
        ] {
            assert!(!is_user_manager_cgroup(&not, uid), "{not}");
        }
        // This test's own process runs no user manager, whatever its parent is said to be.
        assert!(!is_user_manager_process(crate::model::Pid::own(), 1, uid));
        assert!(is_systemd("/lib/systemd/systemd") && !is_systemd("/usr/bin/tmux"));
    }
}
