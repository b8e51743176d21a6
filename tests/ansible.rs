//! The Ansible collection (issue 27), driven by a real `ansible-playbook` on this machine
//! against three test hosts over ssh — two with systemd, one with elogind and sysvinit:
//! the `logoffd` role installs the .deb and a policy and runs logoffd; `logoff_info` lists
//! real ssh sessions; `logoff` in check mode changes nothing and says what it would do, then
//! logs one user's sessions off on all three, every process gone; a second run changes
//! nothing. Also `ansible-test sanity` on the collection. Needs root (test hosts), the
//! packages (`scripts/package`) and ansible-core in `/var/tmp/logoff-ansible` (scripts/test
//! installs it); under CI=true their absence fails the test.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::ansible::{Inventory, VENV, collections, deb, ready, task};
use common::container::{self, Container, Kind};
use common::{text, wait_for};
use serde_json::Value;

/// Whether logoffd runs in a test host.
fn logoffd_runs(c: &Container) -> bool {
    !c.pids_matching("^/usr/sbin/logoffd").is_empty()
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_playbook_installs_logoffd_lists_and_logs_a_user_off_on_a_mixed_fleet() {
    if !ready("ansible_fleet") {
        return;
    }
    let Some(hosts) =
        container::boot_kinds("ansible", &[Kind::Systemd, Kind::Systemd, Kind::Elogind])
    else {
        return;
    };
    let refs: Vec<&Container> = hosts.iter().collect();
    let inventory = Inventory::new(&refs);
    let deb = deb().display().to_string();
    // The role: the .deb, a policy from variables (checked by logoffd --check), logoffd on.
    // A user's file where the role once copied the package (see below).
    hosts[0].add_user("planter");
    let name = Path::new(&deb)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("the package's file name")
        .to_string();
    let planted = format!("/var/tmp/{name}");
    let plant = hosts[0].exec(&[
        "su",
        "-s",
        "/bin/sh",
        "planter",
        "-c",
        &format!("echo planted > {planted}"),
    ]);
    assert!(plant.status.success(), "plant: {}", text(&plant.stderr));
    let (out, report) = inventory.play("setup.yml", &[("deb", &deb)]);
    assert!(
        out.status.success(),
        "setup: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for c in &hosts {
        assert!(
            wait_for(Duration::from_secs(20), || logoffd_runs(c)),
            "{}: logoffd does not run",
            c.name
        );
        let policy =
            std::fs::read_to_string(c.root.join("etc/logoff/policy.toml")).unwrap_or_default();
        assert!(policy.contains("name = \"abandoned\""), "{policy}");
        assert!(policy.contains("Bye {user} 👋"), "{policy}");
    }
    // Regression (hostile read of issue 27): the role copied the package to /var/tmp, where
    // a user's file of that name kept its owner and could be swapped before the install.
    let stat = |path: &str| {
        let out = hosts[0].exec(&["stat", "-c", "%U %a", path]);
        text(&out.stdout).trim().to_string()
    };
    let still = hosts[0].exec(&["cat", &planted]);
    assert_eq!(
        (text(&still.stdout).trim(), stat(&planted).as_str()),
        ("planted", "planter 644"),
        "the role wrote to the user's file in /var/tmp"
    );
    let kept = format!("/var/cache/logoff-packages/{name}");
    assert_eq!(
        (stat(&kept), stat("/var/cache/logoff-packages")),
        ("root 600".to_string(), "root 700".to_string())
    );
    assert!(
        task(
            &report,
            "Write the policy (checked by logoffd --check before it replaces the old one)"
        )
        .values()
        .all(|r| r["changed"] == true)
    );
    // Real ssh sessions of one user on every host (two on the first).
    let user = "fleetu";
    let mut sessions = Vec::new();
    for (i, c) in hosts.iter().enumerate() {
        c.add_user(user);
        sessions.push(c.ssh(user, "sleep 3301"));
        if i == 0 {
            sessions.push(c.ssh(user, "sleep 3301"));
        }
    }
    let running = |c: &Container| !c.pids_matching("^sleep 3301$").is_empty();
    let (out, report) = inventory.play("check.yml", &[("user", user)]);
    assert!(out.status.success(), "check: {}", text(&out.stdout));
    let listed = task(&report, "List the user's sessions");
    for (host, want) in [("h1", 2), ("h2", 1), ("h3", 1)] {
        let rows = listed[host]["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(rows.len(), want, "{host}: {rows:?}");
        assert!(rows.iter().all(|r| r["user"] == user), "{rows:?}");
    }
    let would = task(&report, "Log the user off everywhere (check mode)");
    for host in ["h1", "h2", "h3"] {
        let r = &would[host];
        // Check mode predicts: changed where a session would be logged off.
        assert_eq!(r["changed"], true, "{host}: {r}");
        let results = r["sessions"].as_array().cloned().unwrap_or_default();
        assert!(!results.is_empty(), "{host}: {r}");
        assert!(
            results
                .iter()
                .all(|s| s["dry_run"] == true && s["logged_off"] == false),
            "{r}"
        );
    }
    for c in &hosts {
        assert!(running(c), "{}: check mode touched the sessions", c.name);
    }
    // The logoff: every session of the user, on every host, every process gone.
    let (out, report) = inventory.play("logoff.yml", &[("user", user)]);
    assert!(out.status.success(), "logoff: {}", text(&out.stdout));
    let done = task(&report, "Log off every session of the user");
    for host in ["h1", "h2", "h3"] {
        assert_eq!(done[host]["changed"], true, "{host}: {}", done[host]);
    }
    for c in &hosts {
        assert!(
            wait_for(Duration::from_secs(10), || !running(c)),
            "{}: a process of the user's survived",
            c.name
        );
    }
    // Again: nothing left to do.
    let (out, report) = inventory.play("logoff.yml", &[("user", user)]);
    assert!(out.status.success(), "again: {}", text(&out.stdout));
    let again = task(&report, "Log off every session of the user");
    for host in ["h1", "h2", "h3"] {
        assert_eq!(again[host]["changed"], false, "{host}: {}", again[host]);
    }
    // A failure is logoff's, in its words, with its exit status (2: invalid parameters).
    let (out, report) = inventory.play("invalid.yml", &[("user", user)]);
    assert!(!out.status.success());
    let failed = task(
        &report,
        "Log off the user's sessions idle for two fortnights",
    );
    for host in ["h1", "h2", "h3"] {
        let r = &failed[host];
        assert_eq!(
            (r["failed"].clone(), r["rc"].clone()),
            (Value::Bool(true), Value::from(2)),
            "{r}"
        );
        assert!(
            r["msg"].as_str().is_some_and(|m| m.contains("fortnights")),
            "{r}"
        );
    }
    // Regression (hostile read of issue 27): session arguments go after `--`, so a name
    // that looks like an option is a session's name (none has it: exit status 3).
    let named = task(&report, "Log off the session named /SERVER:elsewhere");
    for host in ["h1", "h2", "h3"] {
        let r = &named[host];
        assert_eq!(r["rc"], Value::from(3), "{r}");
    }
    drop(sessions);
}

/// `ansible-test sanity` on the collection (what Ansible's Galaxy and its users check a
/// collection with).
#[test]
#[ignore = "needs ansible-core: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_collection_passes_ansible_test_sanity() {
    if !ready("ansible_sanity") {
        return;
    }
    let collection = collections().join("ansible_collections/logoff/sessions");
    let out = Command::new(Path::new(VENV).join("bin/ansible-test"))
        .args(["sanity", "--python", "3.11", "--requirements"])
        .current_dir(&collection)
        .output()
        .expect("ansible-test");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
