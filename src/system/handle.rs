//! A process to signal and wait for, known by a pidfd: nothing sent through it can reach a
//! recycled PID. And the descriptors that holding one per process takes.
//!
//! A handle is opened first and checked after ([`Handle::open`]): the process that now has
//! the PID still belongs where the caller says. kill(2) is used only where the kernel has
//! no pidfd_open (before Linux 5.3), or where holding one more pidfd would eat into the
//! descriptors reserved for reading /proc, right after the same check.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::process::{PidfdFlags, Signal};

use super::process::Proc;
use crate::deadline::Deadline;
use crate::model::Pid;

/// A process to signal and wait for: a pidfd, or where the kernel has none, the PID.
pub struct Handle {
    pid: Pid,
    /// Without a pidfd: the start time in clock ticks since boot, which with the PID names
    /// one process instance.
    start_time: u64,
    fd: Option<OwnedFd>,
}

impl Handle {
    /// Opens a pidfd for `proc`, then checks with `still_ours` (which reads /proc afresh) that
    /// the process with that PID is still one to signal. `None` when it is gone or failed.
    ///
    /// Why this order is safe: if the pidfd's process is still running when a signal is sent
    /// through it, it was running during the check, so its PID was not reused and the check
    /// read that process. If it has ended, the signal reaches nobody.
    ///
    /// Out of descriptors (a session of more processes than the file limit) or on a kernel
    /// without pidfd_open, the handle holds the PID only and signals with kill(2), right
    /// after the same check.
    pub fn open(
        proc: &Proc,
        still_ours: impl Fn(&Proc) -> io::Result<bool>,
    ) -> io::Result<Option<Handle>> {
        let pid = proc.pid();
        let Some(raw) = rustix::process::Pid::from_raw(pid.as_raw()) else {
            return Ok(None);
        };
        let fd = match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            // Keep descriptors in reserve for reading /proc: past that, signal by PID.
            Ok(fd) if fd.as_raw_fd() >= fd_budget() => None,
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE | rustix::io::Errno::NOSYS) => {
                None
            }
            Err(_) => return Ok(None),
        };
        if !still_ours(proc)? {
            return Ok(None);
        }
        // Without a pidfd, the start time tells this process from a later one with its PID.
        let start_time = match fd {
            Some(_) => 0,
            None => match proc.try_stat()? {
                Some(stat) => stat.starttime,
                None => return Ok(None),
            },
        };
        Ok(Some(Handle {
            pid,
            start_time,
            fd,
        }))
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the handle holds a pidfd (else it signals by PID).
    pub fn has_pidfd(&self) -> bool {
        self.fd.is_some()
    }

    /// Sends `signal`. `Ok(false)` if the process had already ended.
    ///
    /// Without a pidfd, the PID's start time is read again right before kill(2): a process
    /// that has ended and whose PID was taken meanwhile is not signalled. (What is left is
    /// the moment between that read and kill(2), on kernels without pidfds or past the file
    /// limit.)
    pub fn signal(&self, signal: Signal) -> io::Result<bool> {
        let result = match &self.fd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
            None => {
                let ours = Proc::new(self.pid)
                    .live_stat()?
                    .is_some_and(|s| s.starttime == self.start_time);
                match rustix::process::Pid::from_raw(self.pid.as_raw()) {
                    Some(pid) if ours => rustix::process::kill_process(pid, signal),
                    _ => return Ok(false),
                }
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the PID still belongs to this handle's process — running, or ended but not yet
    /// reaped (a zombie keeps its PID): while it does, no other process can have that PID,
    /// and nothing need be read to know what it is. Without a pidfd: /proc, by start time.
    /// With one, asked of a process that has ended (only: see below), a SIGCONT through the
    /// pidfd succeeds until it is reaped and fails with ESRCH after. A signal to a thread
    /// group that has exited is discarded: the probe does nothing to anyone. Any other
    /// answer counts as no, and the caller then looks at the PID afresh.
    pub fn holds_pid(&self) -> bool {
        match &self.fd {
            Some(fd) => {
                if !self.has_exited() {
                    return true;
                }
                rustix::process::pidfd_send_signal(fd, Signal::CONT).is_ok()
            }
            None => Proc::new(self.pid)
                .stat()
                .is_some_and(|s| s.starttime == self.start_time),
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

    /// Without a pidfd: whether the process with our PID and start time still runs. A
    /// failed read counts as running: the caller then waits or asks again, never skips it.
    fn alive_by_proc(&self) -> bool {
        match Proc::new(self.pid).live_stat() {
            Ok(stat) => stat.is_some_and(|s| s.starttime == self.start_time),
            Err(_) => true,
        }
    }

    /// Blocks until the process has ended or `deadline` passes; true if it ended.
    pub fn wait(&self, deadline: Deadline) -> bool {
        loop {
            match &self.fd {
                Some(fd) => {
                    let step = deadline.next_step();
                    let ts = crate::deadline::timespec(step);
                    let mut fds = [PollFd::new(fd, PollFlags::IN)];
                    match rustix::event::poll(&mut fds, Some(&ts)) {
                        Ok(n) if n > 0 => return true,
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(_) => return !self.alive_by_proc(),
                    }
                }
                None => {
                    if !self.alive_by_proc() {
                        return true;
                    }
                    std::thread::sleep(deadline.next_step().min(Duration::from_millis(10)));
                }
            }
            if deadline.passed() {
                return false;
            }
        }
    }
}

/// Descriptors kept free for reading /proc and talking to the system while pidfds are held.
const FD_RESERVE: u64 = 64;

/// How large the descriptor table is grown before any thread starts (see
/// [`prepare_descriptors`]): a pidfd for every process of a busy host.
const TABLE_AHEAD: u64 = 65_536;

/// Makes room for one pidfd per process of a large session: raises the soft limit on open
/// files to the hard limit, and grows the descriptor table to its size at once. Call it
/// while the process has one thread: the kernel grows a table shared by several threads only
/// after an RCU grace period, each time it doubles — 5 to 15 ms a step here, which made a
/// logoff of a session of 1,000 processes take half again as long. Failure is harmless:
/// handles fall back to kill(2).
pub fn prepare_descriptors() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let top = getrlimit(Resource::Nofile)
        .current
        .unwrap_or(TABLE_AHEAD)
        .min(TABLE_AHEAD)
        .saturating_sub(1);
    if let Ok(any) = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        // The table grows to hold the new descriptor; closing it leaves the table as it is.
        let _ = rustix::io::fcntl_dupfd_cloexec(&any, i32::try_from(top).unwrap_or(i32::MAX));
    }
}

/// The highest descriptor number a pidfd may take (read once: [`prepare_descriptors`] comes
/// first).
fn fd_budget() -> i32 {
    static BUDGET: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::from(u32::MAX));
        i32::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(i32::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn handle_signals_and_waits() {
        let mut child = Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = Pid::from_raw(child.id() as i32);
        let proc = Proc::new(pid);
        let handle = Handle::open(&proc, |p| Ok(p.stat().is_some()))
            .expect("open")
            .expect("a handle");
        assert!(!handle.has_exited());
        assert!(handle.signal(Signal::KILL).expect("kill"));
        assert!(handle.wait(Deadline::after(Duration::from_secs(5))));
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
        let proc = Proc::new(Pid::from_raw(child.id() as i32));
        assert!(Handle::open(&proc, |_| Ok(false)).expect("open").is_none());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(proc.stat().is_none(), "a reaped process still reads");
    }
}
