//! The many-sessions case of the procfs benchmark: N sessions of 3 processes each, all of one
//! user U, ended three ways in the same run (interleaved):
//!
//! - `logoff --all --user U --timeout 0` (it returns once it has verified every one empty);
//! - the baseline: `pkill -KILL -u U; pidwait -u U`;
//! - the floor: one /proc scan, SIGKILL through a pidfd to every process of the user's
//!   sessions, wait on the pidfds.
//!
//! A watcher process (`--watch-login UID`) holds a pidfd to every process of them, opened
//! before the clock starts, and reports when the last one has exited: "ended" means the same
//! for every contender. The goal: logoff within 1.3x the floor at every N, so that its cost
//! grows with processes, not sessions × processes.

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::{median, ms};
use crate::common::{TestUser, proc_pids};
use crate::sessions::{login_uid, make_sessions, members};

/// Runs the case for each N in `ns`, `runs` times, and prints the medians.
pub fn run(ns: &[usize], runs: usize) {
    let logoff = env!("CARGO_BIN_EXE_logoff");
    let user = TestUser::create("bench");
    let uid = user.uid.to_string();
    for &n in ns {
        let (mut floor, mut ours, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            floor.push(measure(&user, n, || floor_logoff(user.uid)));
            ours.push(measure(&user, n, || {
                let status = Command::new(logoff)
                    .args(["--all", "--user", &uid, "--timeout", "0"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run logoff");
                assert!(status.success(), "logoff failed: {status}");
            }));
            baseline.push(measure(&user, n, || {
                let _ = Command::new("pkill").args(["-KILL", "-u", &uid]).status();
                // pidwait exits 1 when nothing matched any more: that is success here.
                let _ = Command::new("pidwait").args(["-u", &uid]).status();
            }));
        }
        let (f, o, b) = (median(&mut floor), median(&mut ours), median(&mut baseline));
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!("{n} sessions of 3 processes (one user), median of {runs} runs:");
        println!(
            "  floor (scan, pidfd SIGKILL, wait)         {:>9.1} ms",
            ms(f)
        );
        println!(
            "  logoff --all --user U --timeout 0         {:>9.1} ms   {:.2}x floor",
            ms(o),
            ratio(o, f)
        );
        println!(
            "  baseline pkill -KILL -u U; pidwait -u U   {:>9.1} ms   {:.2}x floor, {:.2}x logoff",
            ms(b),
            ratio(b, f),
            ratio(b, o)
        );
    }
}

/// Makes the sessions, times `end` until every process of them has ended (as the watcher
/// sees it), and checks nothing of them is left.
fn measure(user: &TestUser, n: usize, end: impl FnOnce()) -> Duration {
    let mut launcher = make_sessions(user, n, 3);
    let uid = user.uid.to_string();
    let (start, _, ended) = super::watched(&["--watch-login", &uid], end, || {
        !members(user.uid).is_empty()
    });
    let left = members(user.uid);
    floor_logoff(user.uid);
    let _ = launcher.kill();
    let _ = launcher.wait();
    assert!(left.is_empty(), "{} processes survived", left.len());
    Duration::from_nanos((ended - start) as u64)
}

/// The floor: one scan, SIGKILL through a pidfd to every process of `uid`'s sessions, wait
/// on the pidfds.
fn floor_logoff(uid: u32) {
    let fds: Vec<OwnedFd> = proc_pids()
        .into_iter()
        .filter(|&pid| login_uid(pid) == Some(uid))
        .filter_map(|pid| {
            let fd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
            pidfd_send_signal(&fd, Signal::KILL).ok()?;
            Some(fd)
        })
        .collect();
    for fd in &fds {
        let mut p = [PollFd::new(fd, PollFlags::IN)];
        let _ = poll(&mut p, None);
    }
}

/// `--watch-login UID`: the watcher on every process of `uid`'s sessions.
pub fn watch(uid: u32) {
    super::watch_pids(members(uid));
}
