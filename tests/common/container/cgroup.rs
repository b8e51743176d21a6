//! A cgroup of its own for each test host.
//!
//! nspawn with `--keep-unit` puts the container's processes in `payload` under the cgroup it
//! was started in. Every test host started by one test process was started in the same
//! cgroup, so they all shared one tree: two hosts' `user.slice/user-UID.slice/
//! session-c1.scope` (same user ID, same su session name) were one cgroup. One host's systemd
//! then saw the other's processes in its scope as PID 0 and failed to list it (EIO), waited
//! for them, or stopped units over them. Each test host now starts in
//! `logoff-test-NAME` below this process's cgroup, in every hierarchy systemd uses (the
//! unified one, and the v1 `name=systemd` one where it is mounted).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cgroup directories made for one test host; removed (once empty) when dropped.
pub struct Own {
    dirs: Vec<PathBuf>,
}

impl Own {
    /// Makes `logoff-test-NAME` in each hierarchy systemd uses, below this process's cgroup.
    pub fn make(name: &str) -> Result<Own, String> {
        let mut own = Own { dirs: Vec::new() };
        for dir in here()? {
            let mine = dir.join(format!("logoff-test-{name}"));
            // One left by a test process that was killed (names repeat across runs).
            remove_tree(&mine);
            std::fs::create_dir(&mine).map_err(|e| format!("mkdir {}: {e}", mine.display()))?;
            own.dirs.push(mine);
        }
        if own.dirs.is_empty() {
            return Err("no cgroup hierarchy of systemd's is mounted".to_string());
        }
        Ok(own)
    }

    /// The `cgroup.procs` files that the test host's nspawn writes itself into, as one
    /// space-separated word list for `sh` (the paths have no spaces: checked).
    pub fn procs(&self) -> Result<String, String> {
        let files: Vec<String> = self
            .dirs
            .iter()
            .map(|d| d.join("cgroup.procs").display().to_string())
            .collect();
        match files.iter().find(|f| f.contains(char::is_whitespace)) {
            Some(f) => Err(format!("a cgroup path with a space: {f}")),
            None => Ok(files.join(" ")),
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        // The test host's last processes may take a moment to leave.
        for dir in &self.dirs {
            for _ in 0..30 {
                remove_tree(dir);
                if !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Removes a cgroup and the cgroups below it, deepest first (those still in use stay).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// This process's cgroup directory in the unified hierarchy and in v1's `name=systemd`
/// (those that are mounted).
fn here() -> Result<Vec<PathBuf>, String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mut dirs = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let wanted = match controllers {
            "" => Hierarchy::Unified,
            "name=systemd" => Hierarchy::NamedSystemd,
            _ => continue,
        };
        if let Some((root, point)) = mounts.lines().find_map(|m| mount_of(m, wanted)) {
            let below = Path::new(path).strip_prefix(&root).unwrap_or(Path::new(""));
            dirs.push(point.join(below));
        }
    }
    Ok(dirs)
}

#[derive(Clone, Copy, PartialEq)]
enum Hierarchy {
    Unified,
    NamedSystemd,
}

/// The root and mount point of a mountinfo line, if it mounts the hierarchy wanted.
fn mount_of(line: &str, wanted: Hierarchy) -> Option<(PathBuf, PathBuf)> {
    let (mount, fs) = line.split_once(" - ")?;
    let fields: Vec<&str> = mount.split(' ').collect();
    let fs: Vec<&str> = fs.split(' ').collect();
    let is = match (fs.first()?, wanted) {
        (&"cgroup2", Hierarchy::Unified) => true,
        (&"cgroup", Hierarchy::NamedSystemd) => fs.get(2)?.split(',').any(|o| o == "name=systemd"),
        _ => false,
    };
    let (root, point) = (fields.get(3)?, fields.get(4)?);
    is.then(|| (PathBuf::from(root), PathBuf::from(point)))
}
