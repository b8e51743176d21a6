//! Benchmark: one session logged off on each of 10 test hosts (systemd-nspawn with real sshd
//! and logind, as the system tests boot them), in the same run:
//!
//! - logoff on one host: `logoff /SERVER:h1 pts/0`;
//! - logoff on all ten in one command: `logoff /SERVER:h1,...,h10 pts/0`;
//! - the baseline: a sequential loop of `loginctl -H hN terminate-session ID`;
//! - the floor on this machine: ten bare ssh logins at once (`ssh hN true` in parallel), the
//!   same logins logoff makes with nothing done over them. Every test host runs on this
//!   machine's few cores, and the far side of a login (sshd, PAM, the session's cgroup)
//!   costs CPU there: ten hosts cannot take less than that, whatever the client does.
//!
//! Wall time of each command. Goal: ten hosts within 1.5x of one. Needs root. Run with:
//!
//! ```text
//! cargo bench --bench remote_logoff -- [--runs R] [--hosts N]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{median, ms};

use common::container::{self, Container, Fleet, SshSession};

fn main() {
    let mut runs = 5;
    let mut n = 10;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            "--hosts" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            _ => {}
        }
    }
    let Some(hosts) = container::boot_many("remotebench", n) else {
        std::process::exit(2);
    };
    let refs: Vec<&Container> = hosts.iter().collect();
    let fleet = Fleet::new(&refs, "rb");
    for h in &hosts {
        h.add_user("carol");
    }
    let all = fleet.aliases.join(",");
    let mut one = Vec::new();
    let mut many = Vec::new();
    let mut looped = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..runs {
        bare.push(timed(|| {
            let clients: Vec<std::process::Child> = fleet
                .aliases
                .iter()
                .map(|alias| {
                    Command::new(fleet.ssh())
                        .args(["-xT", "--", alias, "true"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("ssh")
                })
                .collect();
            for mut c in clients {
                assert!(c.wait().expect("ssh").success(), "ssh true failed");
            }
        }));

        let sessions = open(&hosts[..1]);
        one.push(timed(|| {
            logoff(&fleet, &[&format!("/SERVER:{}", fleet.aliases[0]), "pts/0"]);
        }));
        closed(sessions);

        let sessions = open(&hosts);
        many.push(timed(|| {
            logoff(&fleet, &[&format!("/SERVER:{all}"), "pts/0"]);
        }));
        closed(sessions);

        let sessions = open(&hosts);
        let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
        looped.push(timed(|| {
            for (alias, id) in fleet.aliases.iter().zip(&ids) {
                let status = Command::new("loginctl")
                    .args(["-H", alias, "terminate-session", id])
                    .env("PATH", path_with(&fleet))
                    .stdout(Stdio::null())
                    .status()
                    .expect("loginctl");
                assert!(status.success(), "loginctl -H {alias} failed");
            }
        }));
        closed(sessions);
    }
    let o = median(&mut one);
    let m = median(&mut many);
    let l = median(&mut looped);
    let b = median(&mut bare);
    println!("one session on each of {n} hosts, median of {runs} runs:");
    println!(
        "  logoff, one host                              {:>8.1} ms",
        ms(o)
    );
    println!(
        "  logoff, {n} hosts in one command               {:>8.1} ms   {:.2}x one host",
        ms(m),
        m.as_secs_f64() / o.as_secs_f64()
    );
    println!(
        "  loop of loginctl -H host terminate-session    {:>8.1} ms   {:.2}x logoff's {n} hosts",
        ms(l),
        l.as_secs_f64() / m.as_secs_f64()
    );
    println!(
        "  floor: {n} bare ssh logins at once             {:>8.1} ms   {:.2}x one host; logoff's {n} hosts {:.2}x this",
        ms(b),
        b.as_secs_f64() / o.as_secs_f64(),
        m.as_secs_f64() / b.as_secs_f64()
    );
}

/// carol's session (the first with a terminal: pts/0) on each host.
fn open(hosts: &[Container]) -> Vec<SshSession> {
    let sessions: Vec<SshSession> = hosts.iter().map(|h| h.ssh("carol", "sleep 1000")).collect();
    for s in &sessions {
        assert_eq!(s.tty, "pts/0", "carol's session is not on pts/0");
    }
    sessions
}

/// Waits until every session's client has seen its connection close.
fn closed(sessions: Vec<SshSession>) {
    for mut s in sessions {
        assert!(
            s.wait_closed(Duration::from_secs(20)).is_some(),
            "session {} still connected",
            s.id
        );
    }
}

fn logoff(fleet: &Fleet, args: &[&str]) {
    let out = fleet.logoff(args);
    assert!(
        out.status.success(),
        "logoff {args:?}: {}",
        common::text(&out.stderr)
    );
}

/// `PATH` with the fleet's ssh wrapper first, for loginctl -H.
fn path_with(fleet: &Fleet) -> String {
    format!(
        "{}:{}",
        fleet.dir.0.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
