//! Benchmark: time until every process of a large session has ended, for three contenders in
//! the same run (this machine is shared and noisy, so only ratios within one run mean much):
//!
//! - `logoff`: `logoff --timeout 0 ID` (SIGKILL at once; it returns once it has verified the
//!   session empty), and `logoff ID` with the default timeout (SIGTERM first; `sleep` obeys);
//! - the baseline: `pkill -KILL -s SID; pidwait -s SID`;
//! - the floor: one /proc scan, SIGKILL to every member through a pidfd, then waiting on the
//!   pidfds until all have exited — the kernel's own exit work, nothing verified.
//!
//! Each run gets a fresh session of N processes (perl forks them; they share one audit session
//! ID and one POSIX session). Needs root. Run with:
//!
//! ```text
//! cargo bench --bench procfs_logoff -- [N ...] [--runs R]
//! ```
//! (default: N = 1000 and 10000, R = 5). With `--sessions`, the many-sessions case instead
//! (`support/many_sessions.rs`): N sessions of 3 processes, default N = 100, 300, 1000.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/many_sessions.rs"]
mod many_sessions;
#[path = "support/sessions.rs"]
mod sessions;
#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{median, ms};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("procfs_logoff: needs root (it makes sessions by writing /proc/self/loginuid)");
        std::process::exit(2);
    }
    raise_nofile();
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--watch-login") {
        many_sessions::watch(
            argv.get(2)
                .and_then(|a| a.parse().ok())
                .expect("--watch-login UID"),
        );
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--watch") {
        watch(
            argv.get(2)
                .and_then(|a| a.parse().ok())
                .expect("--watch ID"),
        );
        return;
    }
    let mut sizes = Vec::new();
    let mut runs = 5;
    let mut sessions = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(runs),
            "--sessions" => sessions = true,
            "--bench" => {}
            other => {
                if let Ok(n) = other.parse::<usize>() {
                    sizes.push(n);
                }
            }
        }
    }
    if sessions {
        if sizes.is_empty() {
            sizes = vec![100, 300, 1000];
        }
        many_sessions::run(&sizes, runs);
        return;
    }
    if sizes.is_empty() {
        sizes = vec![1000, 10_000];
    }
    let logoff = env!("CARGO_BIN_EXE_logoff");
    // Another build to compare with in the same run (an older one, say).
    let other = std::env::var_os("LOGOFF_BENCH_OTHER");
    for n in sizes {
        let mut floor = Vec::new();
        let mut kill0 = Vec::new();
        let mut other_kill0 = Vec::new();
        let mut polite = Vec::new();
        let mut baseline = Vec::new();
        for _ in 0..runs {
            // Interleave the contenders so that drift in the machine's load hits all alike.
            floor.push(measure("floor", n, |s| floor_logoff(s.audit_id)));
            kill0.push(measure("logoff --timeout 0", n, |s| {
                run(Command::new(logoff).args(["--timeout", "0", &s.audit_id.to_string()]));
            }));
            polite.push(measure("logoff", n, |s| {
                run(Command::new(logoff).arg(s.audit_id.to_string()));
            }));
            if let Some(other) = &other {
                other_kill0.push(measure("other --timeout 0", n, |s| {
                    run(Command::new(other).args(["--timeout", "0", &s.audit_id.to_string()]));
                }));
            }
            baseline.push(measure("baseline", n, |s| {
                let sid = s.sid.to_string();
                run(Command::new("pkill").args(["-KILL", "-s", &sid]));
                // pidwait exits 1 when nothing matched any more: that is success here.
                let _ = Command::new("pidwait").args(["-s", &sid]).status();
            }));
        }
        let f = median(&mut floor);
        let k = median(&mut kill0);
        let p = median(&mut polite);
        let b = median(&mut baseline);
        println!("session of {n} processes, median of {runs} runs:");
        println!(
            "  floor (scan, pidfd SIGKILL, wait)       {:>9.1} ms",
            ms(f)
        );
        println!(
            "  logoff --timeout 0                      {:>9.1} ms   {:.2}x floor",
            ms(k),
            ratio(k, f)
        );
        println!(
            "  logoff (default: SIGTERM first)         {:>9.1} ms   {:.2}x floor",
            ms(p),
            ratio(p, f)
        );
        println!(
            "  baseline pkill -KILL -s; pidwait -s     {:>9.1} ms   {:.2}x floor, {:.2}x logoff --timeout 0",
            ms(b),
            ratio(b, f),
            ratio(b, k)
        );
        if !other_kill0.is_empty() {
            let o = median(&mut other_kill0);
            println!(
                "  $LOGOFF_BENCH_OTHER --timeout 0         {:>9.1} ms   {:.2}x floor",
                ms(o),
                ratio(o, f)
            );
        }
    }
}

struct BenchSession {
    audit_id: u32,
    sid: i32,
}

/// Makes a session of `n` processes, times `end` on it until every process of it has ended,
/// and checks nothing of it is left.
///
/// A watcher process (this program, `--watch`) holds a pidfd to every member, opened before
/// the clock starts, and reports when the last one has exited, so "ended" means the same for
/// every contender: the kernel says so. A contender that returns earlier (pidwait can return
/// while processes are still exiting) is charged until the last one has. The watcher is a
/// process of its own so that its descriptors do not count against the contenders' (the floor
/// runs in this process).
fn measure(name: &str, n: usize, end: impl FnOnce(&BenchSession)) -> Duration {
    let (session, child) = make_session(n);
    let guard = Cleanup {
        audit_id: session.audit_id,
        child,
    };
    let id = session.audit_id.to_string();
    let (start, returned, ended) = watched(
        &["--watch", &id],
        || end(&session),
        || !members(session.audit_id).is_empty(),
    );
    if ended > returned {
        eprintln!(
            "  ({name}: returned {:.1} ms before the last process had exited)",
            (ended - returned) as f64 / 1e6
        );
    }
    let took = Duration::from_nanos((ended - start) as u64);
    let left = members(session.audit_id);
    if !left.is_empty() {
        let sample: Vec<String> = left
            .iter()
            .take(3)
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
            .collect();
        panic!("{name}: {} processes survived, e.g. {sample:?}", left.len());
    }
    drop(guard);
    took
}

/// Starts a watcher (this program with `watch_args`), runs `end`, and returns the monotonic
/// times (ns) it started, it returned, and everything had ended. Only if processes were still
/// `running` when it returned does the watcher's clock count (it notices exits a little late,
/// which must not be charged to contenders that wait).
pub fn watched(
    watch_args: &[&str],
    end: impl FnOnce(),
    running: impl Fn() -> bool,
) -> (u128, u128, u128) {
    let mut watcher = Command::new(std::env::current_exe().expect("own path"))
        .args(watch_args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watcher");
    let mut lines = BufReader::new(watcher.stdout.take().expect("watcher stdout")).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(ready, "ready", "the watcher did not start");
    let start = monotonic_ns();
    end();
    let returned = monotonic_ns();
    let running = running();
    let last_exit: u128 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.trim().parse().ok())
        .expect("the watcher reports the last exit");
    let _ = watcher.wait();
    let ended = if running {
        last_exit.max(returned)
    } else {
        returned
    };
    (start, returned, ended)
}

/// `--watch ID`: [`watch_pids`] on the members of session ID.
fn watch(audit_id: u32) {
    watch_pids(members(audit_id));
}

/// Holds a pidfd to each of `pids`, prints `ready`, then prints the monotonic time (ns) at
/// which the last one had exited (or now, after 60 s).
fn watch_pids(pids: Vec<i32>) {
    let fds: Vec<OwnedFd> = pids
        .into_iter()
        .filter_map(|pid| pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok())
        .collect();
    println!("ready");
    let patience = rustix::time::Timespec {
        tv_sec: 60,
        tv_nsec: 0,
    };
    for fd in &fds {
        let mut p = [PollFd::new(fd, PollFlags::IN)];
        if poll(&mut p, Some(&patience)).unwrap_or(0) == 0 {
            break;
        }
    }
    println!("{}", monotonic_ns());
}

fn monotonic_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// Ends a bench session whatever happens, so a failed run leaves no processes behind.
struct Cleanup {
    audit_id: u32,
    child: std::process::Child,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for _ in 0..10 {
            if members(self.audit_id).is_empty() {
                break;
            }
            floor_logoff(self.audit_id);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_session(n: usize) -> (BenchSession, std::process::Child) {
    let script = format!(
        "echo 0 > /proc/self/loginuid || exit 99; exec setsid perl -e '\
         for (2..{n}) {{ my $p = fork; die \"fork: $!\" unless defined $p; \
         if ($p == 0) {{ sleep 1000; exit 0 }} }} sleep 1000'"
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start session");
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(120);
    let audit_id = loop {
        if let Some(id) = audit_session(pid) {
            break id;
        }
        assert!(Instant::now() < deadline, "no audit session");
        std::thread::sleep(Duration::from_millis(5));
    };
    while members(audit_id).len() < n {
        assert!(
            Instant::now() < deadline,
            "session never reached {n} processes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sessions::settle();
    (BenchSession { audit_id, sid: pid }, child)
}

/// The floor: one scan, SIGKILL through a pidfd per member, wait on the pidfds.
fn floor_logoff(audit_id: u32) {
    let pids = common::proc_pids()
        .into_iter()
        .filter(|&pid| audit_session(pid) == Some(audit_id));
    let fds: Vec<OwnedFd> = pids
        .filter_map(|pid| {
            let pid = Pid::from_raw(pid)?;
            match pidfd_open(pid, PidfdFlags::empty()) {
                Ok(fd) => {
                    pidfd_send_signal(&fd, Signal::KILL).ok()?;
                    Some(fd)
                }
                // Out of descriptors: kill(2), as logoff does.
                Err(_) => {
                    let _ = rustix::process::kill_process(pid, Signal::KILL);
                    None
                }
            }
        })
        .collect();
    for fd in &fds {
        let mut p = [PollFd::new(fd, PollFlags::IN)];
        let _ = poll(&mut p, None);
    }
}

fn members(audit_id: u32) -> Vec<i32> {
    common::proc_pids()
        .into_iter()
        .filter(|&pid| audit_session(pid) == Some(audit_id) && !common::has_ended(pid))
        .collect()
}

/// One open and one read, as cheap as reading a /proc file gets (the floor must not be slowed
/// by buffered reading's size probe and seek).
fn audit_session(pid: i32) -> Option<u32> {
    use rustix::fs::{Mode, OFlags, open};
    let fd = open(
        format!("/proc/{pid}/sessionid").as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&v| v != u32::MAX)
}

fn run(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).status().expect("run contender");
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// One pidfd per member (the floor, the watcher): raise the soft limit to the hard one.
/// Contenders inherit it.
fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
