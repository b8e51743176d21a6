//! Benchmark (issue 27): the same fleet logoff of one user on three test hosts (two with
//! systemd, one with elogind), in the same run:
//!
//! - through Ansible: `ansible-playbook logoff.yml -e user=U` (the collection's `logoff`
//!   module on each host, forks 10, no facts gathered);
//! - through logoff itself: `logoff /SERVER:h1,h2,h3 --all --user U`.
//!
//! Each run starts one ssh session of U on every host, then times the contender until it
//! returns (both return once every session is verified gone). Wall time; only the ratio
//! within the run means much on a shared machine. Needs root, ansible-core where
//! scripts/test installs it. Run with:
//!
//! ```text
//! cargo bench --bench ansible_fleet -- [--runs R]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::ansible::Inventory;
use common::container::{self, Container, Fleet, Kind, SshSession};
use support::{median, ms};

fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if !common::ansible::ready("ansible_fleet_bench") {
        std::process::exit(2);
    }
    let Some(hosts) =
        container::boot_kinds("ansbench", &[Kind::Systemd, Kind::Systemd, Kind::Elogind])
    else {
        std::process::exit(2);
    };
    let refs: Vec<&Container> = hosts.iter().collect();
    let inventory = Inventory::new(&refs);
    let fleet = Fleet::new(&refs, "h");
    let user = "benchu";
    for h in &hosts {
        h.add_user(user);
    }
    let servers = format!("/SERVER:{}", fleet.aliases.join(","));
    let sessions = |hosts: &[Container]| -> Vec<SshSession> {
        hosts.iter().map(|h| h.ssh(user, "sleep 3401")).collect()
    };
    let gone = |hosts: &[Container]| {
        hosts
            .iter()
            .all(|h| h.pids_matching("^sleep 3401$").is_empty())
    };
    let (mut ansible, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = sessions(&hosts);
        let start = Instant::now();
        let (out, _) = inventory.play(
            "logoff.yml",
            &[("user", user), ("logoff", "/usr/local/bin/logoff")],
        );
        ansible.push(start.elapsed());
        assert!(out.status.success(), "ansible-playbook failed");
        assert!(gone(&hosts), "ansible left processes");
        drop(s);
        let s = sessions(&hosts);
        let start = Instant::now();
        let out = fleet.logoff(&[&servers, "--all", "--user", user]);
        ours.push(start.elapsed());
        assert!(out.status.success(), "logoff failed");
        assert!(gone(&hosts), "logoff left processes");
        drop(s);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (a, o) = (median(&mut ansible), median(&mut ours));
    println!(
        "one user's sessions logged off on 3 test hosts (2 systemd, 1 elogind), median of {runs}:"
    );
    println!(
        "  logoff /SERVER:h1,h2,h3 --all --user U   {:>8.1} ms",
        ms(o)
    );
    println!(
        "  ansible-playbook (logoff.sessions.logoff) {:>8.1} ms   {:.2}x logoff",
        ms(a),
        a.as_secs_f64() / o.as_secs_f64()
    );
}
