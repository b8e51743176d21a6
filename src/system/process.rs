//! Processes as /proc shows them, and signals delivered so that a recycled PID is never hit.
//!
//! /proc is a moving target: a process can vanish between two reads, so every read that fails
//! means "gone" and the caller goes on. Each [`Proc`] holds an `O_PATH` descriptor of its
//! `/proc/PID` directory; reads go through it, so once the process is gone they fail instead of
//! reading a newcomer that got the same PID.
//!
//! A signal goes through a pidfd ([`Handle`]) that is opened and then checked to still belong
//! to the caller's idea of the process (same start time, still in the session). A pidfd refers
//! to one process for its whole life, so nothing sent through it can reach a recycled PID.
//! kill(2) is used only where the kernel has no pidfd_open (before Linux 5.3), right after the
//! same check.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::time::Instant;

use procfs::process::{Process, Stat};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{PidfdFlags, Signal};

use crate::model::{Pid, ProcessInfo};

/// The audit session ID value that means "none" (`(u32)-1`).
pub const NO_AUDIT_SESSION: u32 = u32::MAX;

/// One process, read through its /proc directory descriptor.
pub struct Proc {
    inner: Process,
}

impl Proc {
    pub fn new(pid: Pid) -> Option<Proc> {
        Process::new(pid.0).ok().map(|inner| Proc { inner })
    }

    pub fn myself() -> Option<Proc> {
        Process::myself().ok().map(|inner| Proc { inner })
    }

    pub fn pid(&self) -> Pid {
        Pid(self.inner.pid())
    }

    /// The kernel audit session ID, `None` when unset (4294967295) or unreadable.
    pub fn audit_session(&self) -> Option<u32> {
        self.read_u32("sessionid")
            .filter(|&id| id != NO_AUDIT_SESSION)
    }

    /// The login uid (`/proc/PID/loginuid`), `None` when unset or unreadable.
    pub fn login_uid(&self) -> Option<u32> {
        self.read_u32("loginuid").filter(|&id| id != u32::MAX)
    }

    fn read_u32(&self, file: &str) -> Option<u32> {
        let mut f = self.inner.open_relative(file).ok()?;
        let mut buf = String::with_capacity(16);
        f.read_to_string(&mut buf).ok()?;
        buf.trim().parse().ok()
    }

    pub fn stat(&self) -> Option<Stat> {
        self.inner.stat().ok()
    }

    /// The owner of the process (the owner of its /proc directory: the effective uid).
    pub fn uid(&self) -> Option<u32> {
        self.inner.uid().ok()
    }

    /// Whether the process lives in the PID namespace of our /proc (not in a container below).
    pub fn in_our_pid_namespace(&self) -> bool {
        match self.inner.status() {
            Ok(status) => status.nspid.is_none_or(|ns| ns.len() <= 1),
            Err(_) => true,
        }
    }

    /// One environment variable, if the caller may read the environment.
    pub fn env_var(&self, name: &str) -> Option<String> {
        let env = self.inner.environ().ok()?;
        env.get(std::ffi::OsStr::new(name))
            .and_then(|v| v.to_str())
            .map(String::from)
    }

    /// The command for messages: the command line, else the short name.
    pub fn command(&self) -> String {
        if let Ok(cmdline) = self.inner.cmdline()
            && !cmdline.is_empty()
        {
            return cmdline.join(" ");
        }
        self.stat().map(|s| s.comm).unwrap_or_default()
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid(),
            command: self.command(),
        }
    }
}

/// Every process in /proc, skipping those that vanish while being opened.
pub fn all() -> io::Result<impl Iterator<Item = Proc>> {
    let iter = procfs::process::all_processes().map_err(io::Error::other)?;
    Ok(iter.filter_map(|p| p.ok().map(|inner| Proc { inner })))
}

/// Whether a process in this state has ended (a zombie waiting to be reaped, or dead).
pub fn state_has_ended(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// A process to signal and wait for: a pidfd, or where the kernel has none, the PID.
pub struct Handle {
    pid: Pid,
    /// Start time in clock ticks since boot: with the PID, it names one process instance.
    start_time: u64,
    fd: Option<OwnedFd>,
}

impl Handle {
    /// Opens a pidfd for `proc`, then re-checks with `still_ours` (reading through the /proc
    /// directory descriptor, which fails if the original process is gone) that the pidfd refers
    /// to the process that was examined. `None` when the process is gone or failed the check.
    ///
    /// Out of descriptors (a session of more processes than the file limit) or on a kernel
    /// without pidfd_open, the handle holds the PID only and signals with kill(2), right
    /// after the same check.
    pub fn open(
        proc: &Proc,
        start_time: u64,
        still_ours: impl Fn(&Proc) -> bool,
    ) -> Option<Handle> {
        let pid = proc.pid();
        let raw = rustix::process::Pid::from_raw(pid.0)?;
        let fd = match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE | rustix::io::Errno::NOSYS) => {
                None
            }
            Err(_) => return None,
        };
        // The pidfd was opened after `proc`'s directory: if the directory still reads as the
        // same member, the process it names was alive when the pidfd was opened, so the pidfd
        // refers to it.
        if !still_ours(proc) {
            return None;
        }
        Some(Handle {
            pid,
            start_time,
            fd,
        })
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// Sends `signal`. `Ok(false)` if the process had already ended.
    pub fn signal(&self, signal: Signal) -> io::Result<bool> {
        let result = match &self.fd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
            None => match rustix::process::Pid::from_raw(self.pid.0) {
                Some(pid) => rustix::process::kill_process(pid, signal),
                None => return Ok(false),
            },
        };
        match result {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the process has ended. Without a pidfd, asks /proc (PID + start time).
    pub fn has_exited(&self) -> bool {
        match &self.fd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let zero = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            }
            None => !self.alive_by_proc(),
        }
    }

    fn alive_by_proc(&self) -> bool {
        Proc::new(self.pid)
            .and_then(|p| p.stat())
            .is_some_and(|s| s.starttime == self.start_time && !state_has_ended(s.state))
    }

    /// Blocks until the process has ended or `deadline` passes; true if it ended.
    pub fn wait(&self, deadline: Instant) -> bool {
        loop {
            let now = Instant::now();
            match &self.fd {
                Some(fd) => {
                    let left = deadline.saturating_duration_since(now);
                    let ts = rustix::time::Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: i64::from(left.subsec_nanos()),
                    };
                    let mut fds = [PollFd::new(fd, PollFlags::IN)];
                    match rustix::event::poll(&mut fds, Some(&ts)) {
                        Ok(n) if n > 0 => return true,
                        Ok(_) => return false,
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(_) => return !self.alive_by_proc(),
                    }
                }
                None => {
                    if !self.alive_by_proc() {
                        return true;
                    }
                    if now >= deadline {
                        return false;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that one pidfd can be held per
/// process of a large session. Failure is harmless: handles fall back to kill(2).
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    #[test]
    fn reads_itself() {
        let me = Proc::myself().expect("/proc/self");
        assert_eq!(me.pid().0 as u32, std::process::id());
        let stat = me.stat().expect("stat");
        assert!(!state_has_ended(stat.state));
        assert!(me.in_our_pid_namespace());
    }

    #[test]
    fn handle_signals_and_waits() {
        let mut child = Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = Pid(child.id() as i32);
        let proc = Proc::new(pid).expect("proc");
        let start = proc.stat().expect("stat").starttime;
        let handle = Handle::open(&proc, start, |p| p.stat().is_some()).expect("open");
        assert!(!handle.has_exited());
        assert!(handle.signal(Signal::KILL).expect("kill"));
        assert!(handle.wait(Instant::now() + Duration::from_secs(5)));
        assert!(handle.has_exited());
        child.wait().expect("reap");
        // Sending to a reaped process through its pidfd is "already ended", never an error.
        assert!(!handle.signal(Signal::TERM).expect("signal after exit"));
    }

    #[test]
    fn handle_refuses_a_process_that_fails_the_check() {
        let mut child = Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let proc = Proc::new(Pid(child.id() as i32)).expect("proc");
        let start = proc.stat().expect("stat").starttime;
        assert!(Handle::open(&proc, start, |_| false).is_none());
        child.kill().expect("kill");
        child.wait().expect("reap");
        // The directory descriptor no longer reads once the process is reaped.
        assert!(proc.stat().is_none());
    }
}
