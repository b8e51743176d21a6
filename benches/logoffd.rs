//! Benchmark of logoffd against `logoff --list` on the same host, in the same run (this
//! machine is shared and noisy: only ratios within one run mean much):
//!
//! 1. One evaluation pass over N sessions (default 1000, 2 processes each, one user), with a
//!    rule counting input, output and CPU time (the terminals, tmux/screen and CPU sources
//!    on): `logoffd --check` (list, observe, evaluate the policy, print) against `logoff
//!    --list`; and in process, the daemon's pass (list + observe + evaluate) against a
//!    listing alone. Goal: within 2x. Then the same with the connection sources on (issue
//!    25): sessions linked in pairs by a unix socket and a loopback TCP connection, so that
//!    the unix and TCP tables are read and every other end's holder is checked.
//! 2. The daemon at rest: CPU time of logoffd over 60 s with 100 idle sessions and no deadline
//!    due (the sum of its threads' `schedstat` run time, start-up excluded). Goal: < 10 ms.
//! 3. Its resident memory (VmRSS, VmHWM). Goal: < 15 MiB.
//!
//! The procfs backend (this host has no logind). Needs root. Run with:
//!
//! ```text
//! cargo bench --bench logoffd -- [--sessions N] [--runs R] [--rest-seconds S]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/sessions.rs"]
mod sessions;
#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestUser;
use support::{median, ms};

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("logoffd bench: needs root (it makes sessions by writing /proc/self/loginuid)");
        std::process::exit(2);
    }
    let argv: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = arg("--sessions", 1000);
    let runs = arg("--runs", 7);
    let rest = arg("--rest-seconds", 60) as u64;
    let user = TestUser::create("dbench");
    let dir = common::fixtures::TempDir::new("dbench");
    let policy = dir.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[rule]]\nname = \"bench\"\nmatch = {{ users = [\"{}\"] }}\nidle = \"1h\"\n\
             disconnected = \"1h\"\nmax_age = \"1d\"\nwarn = [\"10m\", \"1m\"]\n\
             activity = [\"input\", \"output\", \"cpu\"]\n",
            user.name
        ),
    )
    .expect("policy");
    common::set_mode(&policy, 0o644);

    let mut sessions = sessions::make_sessions(&user, n, 2);
    evaluation_pass(n, runs, &policy, "2 processes each");
    let _ = sessions.kill();
    let _ = sessions.wait();
    end_sessions(user.uid);

    // The connection sources (issue 25): every session's login has ended, and each holds a
    // unix socket and a loopback TCP connection whose other ends another session holds.
    let mut sessions = sessions::make_linked_sessions(&user, n, 2);
    evaluation_pass(
        n,
        runs,
        &policy,
        "2 processes each, linked in pairs by a unix socket and a TCP connection",
    );
    let _ = sessions.kill();
    let _ = sessions.wait();
    end_sessions(user.uid);

    let mut sessions = sessions::make_sessions(&user, 100, 2);
    at_rest(&policy, &dir.path("state"), rest);
    let _ = sessions.kill();
    let _ = sessions.wait();
    end_sessions(user.uid);
}

fn evaluation_pass(n: usize, runs: usize, policy: &std::path::Path, shape: &str) {
    let logoff = env!("CARGO_BIN_EXE_logoff");
    let logoffd = env!("CARGO_BIN_EXE_logoffd");
    let time = |cmd: &mut Command| {
        let start = Instant::now();
        let out = cmd.stdout(Stdio::null()).status().expect("run");
        assert!(out.success(), "{cmd:?} failed");
        start.elapsed()
    };
    let (mut list, mut check) = (Vec::new(), Vec::new());
    let (mut lib_list, mut lib_pass) = (Vec::new(), Vec::new());
    let p = logoff::policy::load(policy).expect("policy");
    for _ in 0..runs {
        list.push(time(Command::new(logoff).args([
            "--list",
            "--backend",
            "procfs",
        ])));
        check.push(time(
            Command::new(logoffd)
                .args(["--check", "--backend", "procfs", "--policy"])
                .arg(policy),
        ));
        let mut backend = logoff::backend::procfs::Procfs::new(logoff::backend::Purpose::List);
        let start = Instant::now();
        let listed = logoff::backend::Backend::list(&mut backend).expect("list");
        lib_list.push(start.elapsed());
        let start = Instant::now();
        let mut listed2 = logoff::backend::Backend::list(&mut backend).expect("list");
        logoff::backend::Backend::observe(&mut backend, &mut listed2, p.sources())
            .expect("observe");
        let verdicts = p.evaluate(
            &listed2,
            |_| logoff::policy::Remembered::default(),
            jiff::Timestamp::now(),
        );
        lib_pass.push(start.elapsed());
        assert!(listed.len() >= n && verdicts.iter().filter(|v| v.limit().is_some()).count() >= n);
    }
    let (l, c) = (median(&mut list), median(&mut check));
    let (ll, lp) = (median(&mut lib_list), median(&mut lib_pass));
    println!("one evaluation pass over {n} sessions ({shape}), median of {runs} runs:");
    println!("  logoff --list                    {:>8.1} ms", ms(l));
    println!(
        "  logoffd --check                  {:>8.1} ms   {:.2}x logoff --list",
        ms(c),
        c.as_secs_f64() / l.as_secs_f64()
    );
    println!("  in process: list                 {:>8.1} ms", ms(ll));
    println!(
        "  in process: list + observe + evaluate {:>8.1} ms   {:.2}x list",
        ms(lp),
        lp.as_secs_f64() / ll.as_secs_f64()
    );
}

fn at_rest(policy: &std::path::Path, state: &std::path::Path, seconds: u64) {
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_logoffd"))
        .arg("--policy")
        .arg(policy)
        .arg("--state-dir")
        .arg(state)
        .args(["--backend", "procfs"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start logoffd");
    let pid = daemon.id();
    std::thread::sleep(Duration::from_secs(2));
    let start_cpu = cpu_ns(pid);
    std::thread::sleep(Duration::from_secs(seconds));
    let end_cpu = cpu_ns(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.trim_start_matches(k).trim().to_string())
            .unwrap_or_default()
    };
    println!("logoffd at rest with 100 idle sessions (no deadline due):");
    println!(
        "  CPU time over {seconds} s (start-up excluded): {:.2} ms (start-up: {:.2} ms)",
        (end_cpu - start_cpu) as f64 / 1e6,
        start_cpu as f64 / 1e6
    );
    println!(
        "  resident memory: VmRSS {}, VmHWM {}",
        field("VmRSS:"),
        field("VmHWM:")
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = daemon.wait();
}

/// The CPU time of every thread of `pid`, in nanoseconds (`schedstat`'s first field).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn end_sessions(uid: u32) {
    let _ = Command::new("pkill")
        .args(["-KILL", "-u", &uid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sessions::members(uid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
