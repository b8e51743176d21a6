//! Benchmark: a 1,000-process ssh session on a real systemd-logind (a test host booted with
//! systemd-nspawn, as the system tests do), ended two ways in the same run:
//!
//! - `logoff ID` (default timeout: logind's TerminateSession, then waiting until systemd lists
//!   no process of the session's scope and logind has it closing — verified);
//! - the baseline: `loginctl terminate-session ID`, then polling until the processes are gone.
//!   The polling is the bench's own, as good as polling gets: it holds a pidfd to every process
//!   of the session's scope (sshd's session process included; opened before the clock
//!   starts) and notes when the last one has exited.
//!
//! (An ssh session rather than `su -l`: su, sent SIGTERM, waits two seconds before it kills
//! its child and exits, and that would be all either contender measured.)
//!
//! Both are timed from the command's start to "no process of the session left"; logoff's time
//! is when it returns (it only returns once it has verified that). Needs root. Run with:
//!
//! ```text
//! cargo bench --bench logind_logoff -- [--runs R] [--processes N]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/mod.rs"]
mod support;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use support::{median, ms};

use common::container::{self, Container};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

fn main() {
    let mut runs = 7;
    let mut n = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            "--processes" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            _ => {}
        }
    }
    let Some(c) = container::boot("logindbench") else {
        std::process::exit(2);
    };
    c.add_user("bob");
    let mut logoff = Vec::new();
    let mut baseline = Vec::new();
    for run in 0..runs {
        logoff.push(measure(&c, n, &format!("lb{run}a"), |id| {
            let out = c.logoff(&[id]);
            assert!(
                out.status.success(),
                "logoff: {}",
                common::text(&out.stderr)
            );
        }));
        baseline.push(measure(&c, n, &format!("lb{run}b"), |id| {
            let out = c.exec(&["loginctl", "terminate-session", id]);
            assert!(
                out.status.success(),
                "loginctl: {}",
                common::text(&out.stderr)
            );
        }));
    }
    let l = median(&mut logoff);
    let b = median(&mut baseline);
    println!("session of {n} processes on systemd-logind, median of {runs} runs:");
    println!(
        "  loginctl terminate-session + polling       {:>8.1} ms",
        ms(b)
    );
    println!(
        "  logoff (TerminateSession, verified)        {:>8.1} ms   {:.2}x the baseline",
        ms(l),
        l.as_secs_f64() / b.as_secs_f64()
    );
}

/// Starts a session of `n` processes marked `marker`, runs `end` with its ID, and returns
/// the time until the command had returned and every process of the session had exited.
fn measure(c: &Container, n: usize, marker: &str, end: impl FnOnce(&str)) -> Duration {
    let mut ssh = c.ssh(
        "bob",
        &format!(
            "exec perl -e 'for (2..{n}) {{ my $p = fork; if (defined $p && $p == 0) \
             {{ sleep 1000; exit 0 }} }} sleep 1000' {marker}"
        ),
    );
    let scope = format!("/session-{}.scope", ssh.id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pids = scope_pids(&scope);
    while pids.len() < n + 1 {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} processes",
            pids.len()
        );
        std::thread::sleep(Duration::from_millis(50));
        pids = scope_pids(&scope);
    }
    let fds: Vec<OwnedFd> = pids
        .into_iter()
        .filter_map(|p| pidfd_open(Pid::from_raw(p)?, PidfdFlags::empty()).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    end(&ssh.id);
    let returned = start.elapsed();
    for fd in &fds {
        let mut p = [PollFd::new(fd, PollFlags::IN)];
        let _ = poll(&mut p, None);
    }
    let all_gone = start.elapsed();
    assert!(
        scope_pids(&scope).is_empty(),
        "processes of {scope} survived"
    );
    let _ = ssh.wait_closed(Duration::from_secs(10));
    // logoff returns only once it has verified; the baseline is charged until the last exit.
    returned.max(all_gone)
}

/// Host PIDs of the live processes in the cgroup of a session's scope.
fn scope_pids(scope: &str) -> Vec<i32> {
    common::proc_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cg| cg.lines().any(|l| l.ends_with(scope)))
        })
        .filter(|&pid| !common::has_ended(pid))
        .collect()
}
