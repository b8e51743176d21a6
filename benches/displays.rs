//! Benchmark of `logoff --list` on a host where N sessions (default 100) each serve an X
//! display that never answers (a process of the session listens on `@/tmp/.X11-unix/XN` and
//! never replies): every X server of a listing is asked at once, under one deadline, so the
//! listing costs that deadline (2.5 s), not 2 s per display. Against it, in the same run,
//! the same listing of as many sessions without displays. Goal (issue 17): within 3 s.
//!
//! Needs root. Run with:
//!
//! ```text
//! cargo bench --bench displays -- [--sessions N] [--runs R]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/sessions.rs"]
mod sessions;
#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestUser;
use support::{median, ms};

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("displays bench: needs root (it makes sessions by writing /proc/self/loginuid)");
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
    let n = arg("--sessions", 100);
    let runs = arg("--runs", 5);
    let user = TestUser::create("xbench");
    let mut plain = sessions::make_sessions(&user, n, 1);
    let without = time_list(&user, runs);
    let _ = plain.kill();
    let _ = plain.wait();
    end(user.uid);
    let mut silent = silent_displays(&user, n);
    let with = time_list(&user, runs);
    let _ = silent.kill();
    let _ = silent.wait();
    end(user.uid);
    let (mut with, mut without) = (with, without);
    let (w, wo) = (median(&mut with), median(&mut without));
    let worst = with.iter().max().copied().unwrap_or_default();
    println!(
        "logoff --list, {n} sessions, {runs} runs: displays that never answer {:.0} ms \
         (worst {:.0} ms), no displays {:.0} ms; goal: under 3000 ms",
        ms(w),
        ms(worst),
        ms(wo)
    );
}

/// `logoff --list --user U` (the release build), `runs` times.
fn time_list(user: &TestUser, runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_logoff"))
                .args(["--list", "--json", "--user", &user.name])
                .stdout(Stdio::null())
                .status()
                .expect("run logoff");
            assert!(out.success());
            start.elapsed()
        })
        .collect()
}

/// `n` sessions of `user`, each a process listening on an X display's abstract socket that
/// never answers (displays 5000 + i).
fn silent_displays(user: &TestUser, n: usize) -> Child {
    let script = format!(
        "use POSIX; use Socket; for my $i (0..{last}) {{ my $p = fork; die \"fork\" unless \
         defined $p; next if $p; open(my $f, '>', '/proc/self/loginuid') or die; \
         print $f '{uid}'; close($f) or die; POSIX::setgid({gid}); POSIX::setuid({uid}) or die; \
         socket(S, PF_UNIX, SOCK_STREAM, 0) or die; \
         bind(S, pack_sockaddr_un(\"\\0/tmp/.X11-unix/X\" . (5000 + $i))) or die; \
         listen(S, 128) or die; sleep 1000; exit 0 }} sleep 1000",
        last = n - 1,
        uid = user.uid,
        gid = user.gid,
    );
    sessions::settle();
    let launcher = Command::new("perl")
        .args(["-e", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the sessions");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sessions::members(user.uid).len() < n {
        assert!(Instant::now() < deadline, "the sessions never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    launcher
}

fn end(uid: u32) {
    let _ = Command::new("pkill")
        .args(["-KILL", "-U", &uid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sessions::members(uid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
