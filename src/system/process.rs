//! Processes as /proc shows them.
//!
//! /proc is a moving target: a process can vanish between two reads, so a read that finds the
//! process gone (ENOENT, ESRCH) means "gone" and the caller goes on. Any other failure of a
//! read that decides membership (out of file descriptors, say) is an error, never "not a
//! member": logoff must not skip a process because it could not look at it. Small /proc
//! files are read with one open and one read into a stack buffer (no size probe, no seek): a
//! logoff scans every process of the host more than once, and those scans are most of its
//! cost beyond the kernel's own exit work. `/proc/PID/stat` is parsed from the last `)`.
//! Signals go through [`super::handle::Handle`].

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use procfs::process::Process;
use rustix::fs::{Mode, OFlags};

use crate::model::{Pid, ProcessInfo, Session};

/// One session looked at: its processes on this host, and what makes a process its own.
pub struct Look<'a> {
    pub session: &'a mut Session,
    pub members: Vec<Pid>,
    pub membership: Membership,
    /// Its scope's cgroup directory on this host, where it has one: its CPU time is the
    /// cgroup's (which counts processes that have ended, as a build's compilers).
    pub cgroup: Option<PathBuf>,
}

/// The audit session ID value that means "none" (`(u32)-1`).
pub const NO_AUDIT_SESSION: u32 = u32::MAX;

/// Reads a small /proc file with one open and one read: `Ok(None)` if the process is gone.
fn read_small<'a>(path: &str, buf: &'a mut [u8]) -> io::Result<Option<&'a [u8]>> {
    let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if gone(e) => return Ok(None),
        Err(e) => return Err(io::Error::other(format!("cannot open {path}: {e}"))),
    };
    let n = loop {
        match rustix::io::read(&fd, &mut *buf) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) if gone(e) => return Ok(None),
            Err(e) => return Err(io::Error::other(format!("cannot read {path}: {e}"))),
        }
    };
    if n == buf.len() {
        return Err(io::Error::other(format!("{path} is longer than expected")));
    }
    Ok(Some(&buf[..n]))
}

/// The errors that mean the process has gone away while we looked.
fn gone(e: rustix::io::Errno) -> bool {
    matches!(e, rustix::io::Errno::NOENT | rustix::io::Errno::SRCH)
}

fn parse_u32(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// What makes a process one of a session's, read afresh each time it is asked (after a
/// pidfd on the process was opened, that read is about that very process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// A kernel audit session ID.
    Audit(u32),
    /// A POSIX session ID (the procfs backend's fallback).
    Posix(i32),
    /// A systemd unit: a logind session's scope.
    Unit(String),
}

/// One process, by PID. Every read goes to /proc afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pid: Pid,
}

impl Proc {
    pub fn new(pid: Pid) -> Proc {
        Proc { pid }
    }

    pub fn myself() -> Proc {
        Proc::new(Pid::own())
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn read_u32(&self, file: &str) -> io::Result<Option<u32>> {
        let mut buf = [0u8; 32];
        Ok(read_small(&format!("/proc/{}/{file}", self.pid), &mut buf)?.and_then(parse_u32))
    }

    /// The kernel audit session ID: `None` when unset (4294967295) or the process is gone.
    pub fn audit_session(&self) -> io::Result<Option<u32>> {
        Ok(self
            .read_u32("sessionid")?
            .filter(|&id| id != NO_AUDIT_SESSION))
    }

    /// The login uid (`/proc/PID/loginuid`), `None` when unset or unreadable.
    pub fn login_uid(&self) -> Option<u32> {
        self.read_u32("loginuid")
            .ok()
            .flatten()
            .filter(|&id| id != u32::MAX)
    }

    /// `/proc/PID/stat`: `None` when the process is gone.
    pub fn try_stat(&self) -> io::Result<Option<Stat>> {
        let mut buf = [0u8; 1024];
        match read_small(&format!("/proc/{}/stat", self.pid), &mut buf)? {
            Some(bytes) => Stat::parse(bytes)
                .map(Some)
                .ok_or_else(|| io::Error::other(format!("cannot parse /proc/{}/stat", self.pid))),
            None => Ok(None),
        }
    }

    /// `/proc/PID/stat` for display: `None` when it cannot be read.
    pub fn stat(&self) -> Option<Stat> {
        self.try_stat().ok().flatten()
    }

    /// `/proc/PID/stat` of a process whose thread group still runs; `None` when it is gone
    /// or has ended.
    ///
    /// The state letter alone does not tell: a thread-group leader whose own thread has
    /// exited reads as a zombie (`Z`) while its other threads run on, and a signal to it
    /// still reaches them. For a `Z`, the thread count decides (`num_threads`, the same
    /// number as `Threads:` in status): it counts the leader until the whole group has
    /// exited, so more than one means threads run.
    pub fn live_stat(&self) -> io::Result<Option<Stat>> {
        Ok(self.try_stat()?.filter(Stat::thread_group_runs))
    }

    /// Whether the thread group still runs (see [`Proc::live_stat`]).
    pub fn is_running(&self) -> io::Result<bool> {
        Ok(self.live_stat()?.is_some())
    }

    /// A /proc file of the process, whole, as bytes: `None` when the process is gone. Text in
    /// them (a command name in `status`, a cgroup's name) is whatever a user chose, not
    /// always UTF-8: read as text, one such process would fail every scan.
    fn read_whole(&self, file: &str) -> io::Result<Option<Vec<u8>>> {
        let path = format!("/proc/{}/{file}", self.pid);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if rustix::io::Errno::from_io_error(&e).is_some_and(gone) => Ok(None),
            Err(e) => Err(io::Error::other(format!("cannot read {path}: {e}"))),
        }
    }

    /// The value after `key` (`Threads:`, `Uid:`) in `/proc/PID/status`; `None` when the
    /// process is gone or the line is missing.
    fn status_field(&self, key: &str) -> io::Result<Option<String>> {
        let Some(bytes) = self.read_whole("status")? else {
            return Ok(None);
        };
        Ok(bytes
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(key.as_bytes()))
            .map(|value| String::from_utf8_lossy(value).trim().to_string()))
    }

    fn process(&self) -> Option<Process> {
        Process::new(self.pid.as_raw()).ok()
    }

    /// The real uid of the process (`Uid:` in `/proc/PID/status`). Not the owner of
    /// `/proc/PID`: that is root for a process that made itself non-dumpable.
    pub fn uid(&self) -> Option<u32> {
        self.status_field("Uid:")
            .ok()
            .flatten()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The real, effective, saved and file-system uids (`Uid:` in `/proc/PID/status`);
    /// `None` when the process is gone.
    pub fn uids(&self) -> io::Result<Option<[u32; 4]>> {
        let Some(line) = self.status_field("Uid:")? else {
            return Ok(None);
        };
        let ids: Vec<u32> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        Ok(ids.try_into().ok())
    }

    /// Whether every uid of the process is root's: no user can make such a process, and
    /// nothing a user runs can take it over (a setuid program keeps its caller's real uid).
    pub fn is_roots(&self) -> bool {
        self.uids().ok().flatten().is_some_and(|u| u == [0; 4])
    }

    /// The program the process runs (`/proc/PID/exe`, the kernel's link). Of a process of
    /// root's (see [`Proc::is_roots`]) it is what root started; of another it is a claim
    /// like any.
    pub fn exe(&self) -> Option<std::path::PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok()
    }

    /// Whether the process lives only in a container below us that root made: its
    /// `ns/pid` is not ours (the namespace's inode, which the kernel gives), and the user
    /// namespace owning it was created by root. A PID namespace a user made (`unshare
    /// -Urpf`: owned by a user namespace of theirs) is no container of the host's but a
    /// part of their session, hidden in it: it is theirs like any process. Unreadable
    /// counts as ours; a namespace whose owner cannot be asked, as root's.
    pub fn in_a_container_below(&self) -> bool {
        static OURS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let ours =
            *OURS.get_or_init(|| rustix::fs::stat("/proc/self/ns/pid").ok().map(|s| s.st_ino));
        let Ok(theirs) = std::fs::File::open(format!("/proc/{}/ns/pid", self.pid)) else {
            return false;
        };
        let Some(ours) = ours else {
            return false;
        };
        match rustix::fs::fstat(&theirs) {
            Ok(st) if st.st_ino == ours => false,
            Ok(_) => crate::system::descriptors::namespace_owner(&theirs)
                .ok()
                .is_none_or(|uid| uid == 0),
            Err(_) => false,
        }
    }

    /// Whether the process is in the systemd unit `unit` (`session-3.scope`), as systemd
    /// places a session's scope: its cgroup (`/proc/PID/cgroup`, which the kernel keeps) is
    /// that unit, in slices only. A cgroup of that name deeper down — in a user's own
    /// delegated tree (`user@1000.service/…`) or a container's (`machine-x.scope/…`), where
    /// anyone may name a cgroup `session-3.scope` — is not it.
    pub fn in_unit(&self, unit: &str) -> io::Result<bool> {
        let Some(bytes) = self.read_whole("cgroup")? else {
            return Ok(false);
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.lines().any(|line| {
            line.splitn(3, ':')
                .nth(2)
                .is_some_and(|cgroup| is_unit_in_slices(cgroup, unit))
        }))
    }

    /// Whether the process is one of the session `membership` describes, now.
    pub fn belongs(&self, membership: &Membership) -> bool {
        match membership {
            Membership::Audit(id) => self.audit_session().ok().flatten() == Some(*id),
            Membership::Posix(sid) => self
                .try_stat()
                .ok()
                .flatten()
                .is_some_and(|s| s.session == *sid),
            Membership::Unit(unit) => self.in_unit(unit).unwrap_or(false),
        }
    }

    /// One environment variable, if the caller may read the environment.
    pub fn env_var(&self, name: &str) -> Option<String> {
        // Most environments fit a page or two: one read, no size probe; else the whole file.
        let mut buf = [0u8; 8192];
        let path = format!("/proc/{}/environ", self.pid);
        let env = match read_small(&path, &mut buf) {
            Ok(Some(env)) => env.to_vec(),
            Ok(None) => return None,
            Err(_) => self.read_whole("environ").ok()??,
        };
        let key = format!("{name}=");
        env.split(|&b| b == 0)
            .find_map(|var| var.strip_prefix(key.as_bytes()))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(String::from)
    }

    /// The command for messages: the command line, else the short name.
    pub fn command(&self) -> String {
        if let Some(Ok(cmdline)) = self.process().map(|p| p.cmdline())
            && !cmdline.is_empty()
        {
            return cmdline.join(" ");
        }
        self.command_name()
    }

    /// The command name (`/proc/PID/comm`: what the process calls itself); empty when it
    /// cannot be read.
    pub fn command_name(&self) -> String {
        let mut buf = [0u8; 64];
        match read_small(&format!("/proc/{}/comm", self.pid), &mut buf) {
            Ok(Some(name)) => String::from_utf8_lossy(name).trim_end().to_string(),
            _ => String::new(),
        }
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            command: self.command(),
        }
    }
}

/// Every process in /proc (thread group leaders: signals to them reach every thread).
pub fn all() -> io::Result<Vec<Proc>> {
    Ok(std::fs::read_dir("/proc")?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            Some(Proc::new(Pid::from_raw(pid)))
        })
        .collect())
}

/// Applies `f` to every process in /proc and keeps the `Some` results, in PID order; the
/// first error `f` returns fails the scan.
///
/// One thread on purpose: spread over threads, pidfd_open contends on the kernel's pidfs
/// locks and the scan got three times slower, not faster.
pub fn scan<T>(f: impl Fn(Proc) -> io::Result<Option<T>>) -> io::Result<Vec<T>> {
    let mut out = Vec::new();
    for proc in all()? {
        if let Some(t) = f(proc)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// How many PIDs [`scan_and_stat`] hands its reader at once (one channel send each).
const STAT_BATCH: usize = 64;

/// [`scan`], and meanwhile a second thread reads the `stat` of every process `f` keeps
/// (`pid_of` says which), as the scan finds it: after the read in `f` that found it, as a
/// read after the scan would be. `stat` costs the kernel more than any other file a scan
/// reads, and unlike pidfd_open those reads do not contend, so on two CPUs a listing's cost
/// is that of the scan or the reads, whichever is larger, not their sum. The `stat`s are
/// those of live thread groups ([`Proc::live_stat`]): a process that had ended or could
/// not be read has none.
pub fn scan_and_stat<T>(
    f: impl Fn(Proc) -> io::Result<Option<T>>,
    pid_of: impl Fn(&T) -> Pid,
) -> io::Result<(Vec<T>, HashMap<Pid, Stat>)> {
    let (to_reader, batches) = std::sync::mpsc::channel::<Vec<Pid>>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut stats = HashMap::new();
            for pid in batches.into_iter().flatten() {
                if let Ok(Some(stat)) = Proc::new(pid).live_stat() {
                    stats.insert(pid, stat);
                }
            }
            stats
        });
        let mut kept = Vec::new();
        let mut batch = Vec::with_capacity(STAT_BATCH);
        let scanned = (|| {
            for proc in all()? {
                let Some(t) = f(proc)? else { continue };
                batch.push(pid_of(&t));
                kept.push(t);
                if batch.len() == STAT_BATCH {
                    // The reader ends only when this sender is dropped: it cannot be gone.
                    let _ = to_reader.send(std::mem::take(&mut batch));
                }
            }
            io::Result::Ok(())
        })();
        let _ = to_reader.send(batch);
        drop(to_reader);
        let stats = reader
            .join()
            .map_err(|_| io::Error::other("the thread reading /proc/PID/stat failed"))?;
        scanned.map(|()| (kept, stats))
    })
}

/// Whether cgroup path `cgroup` is systemd's unit `unit` placed in slices: `/a.slice/
/// b.slice/unit`.
fn is_unit_in_slices(cgroup: &str, unit: &str) -> bool {
    let mut parts: Vec<&str> = cgroup.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop() == Some(unit) && parts.iter().all(|p| p.ends_with(".slice"))
}

/// What logoff reads of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    /// Its parent's PID.
    pub ppid: i32,
    /// The POSIX session ID.
    pub session: i32,
    /// The controlling terminal's device number (0: none).
    pub tty_nr: i32,
    pub num_threads: i64,
    /// CPU time used in user and in system mode, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// The same of its children that have ended and been waited for.
    pub cutime: u64,
    pub cstime: u64,
    /// Start time, in clock ticks since boot.
    pub starttime: u64,
    /// Its command name starts with `X` (Xorg, Xvfb, Xwayland, Xvnc): it may be an X server.
    /// Only a hint of where to look (the name is the process's choice).
    pub x_like_name: bool,
}

impl Stat {
    /// Parses the fields after the command name, which is found from the last `)`: the name
    /// may hold anything, spaces and `)` included (sudo-rs reads it the same way). Read on
    /// every process of the host, more than once per logoff: no allocation.
    pub fn parse(bytes: &[u8]) -> Option<Stat> {
        fn number(field: Option<&[u8]>) -> Option<i64> {
            std::str::from_utf8(field?).ok()?.trim().parse().ok()
        }
        let close = bytes.iter().rposition(|&b| b == b')')?;
        let open = bytes.iter().position(|&b| b == b'(')?;
        let x_like_name = bytes.get(open + 1) == Some(&b'X');
        // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
        // stime cutime cstime priority nice num_threads itrealvalue starttime ...
        let mut fields = bytes.get(close + 2..)?.split(|&b| b == b' ');
        let state = char::from(*fields.next()?.first()?);
        let ppid = i32::try_from(number(fields.next())?).ok()?;
        let session = i32::try_from(number(fields.nth(1))?).ok()?;
        let tty_nr = i32::try_from(number(fields.next())?).ok()?;
        let utime = u64::try_from(number(fields.nth(6))?).ok()?;
        let stime = u64::try_from(number(fields.next())?).ok()?;
        let cutime = u64::try_from(number(fields.next())?).ok()?;
        let cstime = u64::try_from(number(fields.next())?).ok()?;
        let num_threads = number(fields.nth(2))?;
        let starttime = u64::try_from(number(fields.nth(1))?).ok()?;
        Some(Stat {
            state,
            ppid,
            session,
            tty_nr,
            num_threads,
            utime,
            stime,
            cutime,
            cstime,
            starttime,
            x_like_name,
        })
    }

    /// The CPU time it and its children that have ended used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime
            .saturating_add(self.stime)
            .saturating_add(self.cutime)
            .saturating_add(self.cstime)
    }

    /// Whether the process's thread group runs: not a zombie or dead — or a zombie leader
    /// whose other threads run on.
    pub fn thread_group_runs(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x') || self.num_threads > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself() {
        let me = Proc::myself();
        assert_eq!(me.pid(), Pid::own());
        me.stat().expect("stat");
        assert!(me.is_running().expect("read"));
        assert!(
            me.try_stat()
                .expect("read")
                .is_some_and(|s| s.starttime > 0)
        );
        assert!(!me.in_a_container_below());
    }

    #[test]
    fn scan_and_stat_reads_the_stat_of_what_the_scan_keeps() {
        let me = Pid::own();
        let keep_me = |p: Proc| Ok((p.pid() == me).then_some(p.pid()));
        let (kept, stats) = scan_and_stat(keep_me, |pid| *pid).expect("scan");
        assert_eq!(kept, vec![me]);
        assert_eq!(stats.keys().copied().collect::<Vec<_>>(), vec![me]);
        let starttime = Proc::myself()
            .try_stat()
            .expect("read")
            .map(|s| s.starttime);
        assert_eq!(stats.get(&me).map(|s| s.starttime), starttime);

        // More than two batches of processes kept: each has its stat.
        let mut children: Vec<std::process::Child> = (0..2 * STAT_BATCH + 1)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .expect("sleep")
            })
            .collect();
        let pids: Vec<Pid> = children
            .iter()
            .map(|c| Pid::from_raw(c.id() as i32))
            .collect();
        let ours = |p: Proc| Ok(pids.contains(&p.pid()).then_some(p.pid()));
        let (kept, stats) = scan_and_stat(ours, |pid| *pid).expect("scan");
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut kept = kept;
        kept.sort();
        let mut pids = pids;
        pids.sort();
        assert_eq!(kept, pids);
        assert_eq!(stats.len(), pids.len());

        // A failing scan fails, and the reader does not keep it waiting.
        let failed = scan_and_stat(|_| Err::<Option<Pid>, _>(io::Error::other("x")), |p| *p);
        assert!(failed.is_err());
    }

    /// A cgroup named like another's session scope, in a user's delegated tree or a
    /// container's, is not that scope.
    #[test]
    fn a_unit_is_known_by_where_systemd_puts_it() {
        let unit = "session-3.scope";
        assert!(is_unit_in_slices(
            "/user.slice/user-1000.slice/session-3.scope",
            unit
        ));
        assert!(is_unit_in_slices("/session-3.scope", unit));
        for elsewhere in [
            "/user.slice/user-1000.slice/user@1000.service/app.slice/session-3.scope",
            "/machine.slice/machine-x.scope/user.slice/user-0.slice/session-3.scope",
            "/user.slice/user-1000.slice/session-3.scope/sub",
            "/user.slice/user-1000.slice/session-33.scope",
            "",
        ] {
            assert!(!is_unit_in_slices(elsewhere, unit), "{elsewhere}");
        }
    }

    #[test]
    fn stat_is_parsed_from_the_last_parenthesis() {
        let line = b"4242 (a) b (c) S 1 4242 4242 34816 4242 4194560 1 0 0 0 2 3 5 7 20 0 3 0 \
                     12345 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = Stat::parse(line).expect("parses");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.tty_nr, 34816);
        assert_eq!(stat.num_threads, 3);
        assert_eq!((stat.utime, stat.stime), (2, 3));
        assert_eq!((stat.cutime, stat.cstime), (5, 7));
        assert_eq!(stat.cpu_ticks(), 17);
        assert_eq!(stat.starttime, 12345);
        assert!(stat.thread_group_runs());
        let zombie_leader = Stat { state: 'Z', ..stat };
        assert!(zombie_leader.thread_group_runs());
        assert!(
            !Stat {
                num_threads: 1,
                ..zombie_leader
            }
            .thread_group_runs()
        );
        assert_eq!(Stat::parse(b"4242 (x) S 1"), None);
    }
}
