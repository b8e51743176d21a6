//! The packages, proven by installing them: the .deb into a test host with a real systemd
//! (dpkg -i, use, dpkg -r, dpkg -P) and into an elogind test host (sysvinit, no journal),
//! where its init script runs logoffd; lintian on it and on cockpit-logoff's, the .rpms'
//! layout and metadata read with rpm, and a second build of the same commit compared byte for
//! byte. (cockpit-logoff at work in a browser: tests/cockpit.rs.)
//!
//! scripts/test builds the packages (scripts/package) before the tests run; these tests need
//! them in target/packages/ (under CI=true their absence fails the test). Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::container::{self, Container, Kind};
use common::{assert_ok, require, require_root_or_skip, text, wait_for};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn packages() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/packages")
}

/// The package of `file`, or why the test cannot run (skip outside CI, fail under it).
fn package(test: &str, file: &str) -> Option<PathBuf> {
    if !require_root_or_skip(test) {
        return None;
    }
    let path = packages().join(file);
    if path.exists() {
        Some(path)
    } else {
        require(
            test,
            Err(format!(
                "{} is missing: run scripts/package",
                path.display()
            )),
        );
        None
    }
}

fn deb_name() -> String {
    format!("logoff_{VERSION}_amd64.deb")
}

fn rpm_name() -> String {
    format!("logoff-{VERSION}-1.x86_64.rpm")
}

fn cockpit_deb_name() -> String {
    format!("cockpit-logoff_{VERSION}_all.deb")
}

fn cockpit_rpm_name() -> String {
    format!("cockpit-logoff-{VERSION}-1.noarch.rpm")
}

/// What the Cockpit page is made of, where Cockpit looks for packages.
const COCKPIT_PAGE: [&str; 4] = [
    "/usr/share/cockpit/logoff/index.html",
    "/usr/share/cockpit/logoff/logoff.css",
    "/usr/share/cockpit/logoff/logoff.js",
    "/usr/share/cockpit/logoff/manifest.json",
];

/// `rpm ARGS FILE`'s output.
fn rpm_query(rpm: &Path, args: &[&str]) -> String {
    let out = Command::new("rpm")
        .args(args)
        .arg(rpm)
        .output()
        .expect("rpm");
    assert!(out.status.success(), "rpm {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// What the .deb installs (files only), as `dpkg-deb -c` lists them.
fn deb_files(deb: &Path) -> Vec<String> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success());
    text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_deb_installs_works_and_goes_away_cleanly() {
    let Some(deb) = package("deb_install", &deb_name()) else {
        return;
    };
    let Some(c) = container::boot("debinst") else {
        return;
    };
    std::fs::copy(&deb, c.root.join("root/logoff.deb")).expect("copy the .deb");
    let out = c.exec(&["dpkg", "-i", "/root/logoff.deb"]);
    assert_ok(&out, "dpkg -i");

    let out = c.exec(&["/usr/bin/logoff", "--version"]);
    assert_eq!(text(&out.stdout).trim(), format!("logoff {VERSION}"));
    let out = c.exec(&["/usr/sbin/logoffd", "--version"]);
    assert_eq!(text(&out.stdout).trim(), format!("logoffd {VERSION}"));
    for page in ["logoff", "logoffd", "logoff-policy"] {
        let out = c.exec(&["man", "-w", page]);
        assert_ok(&out, &format!("man -w {page}"));
        assert!(text(&out.stdout).contains("/usr/share/man/"), "{page}");
    }
    // What a bash login shell completes for `logoff --ti<TAB>`: bash-completion loads the
    // completion from where the package put it, on demand, as it does at a prompt.
    let out = c.exec(&[
        "bash",
        "-lic",
        "_completion_loader logoff; COMP_WORDS=(logoff --ti); COMP_CWORD=1; \
         COMP_LINE='logoff --ti'; COMP_POINT=${#COMP_LINE}; \
         $(complete -p logoff | sed 's/.*-F \\([^ ]*\\).*/\\1/') logoff --ti logoff; \
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]);
    assert_eq!(
        text(&out.stdout).trim(),
        "--timeout",
        "{}",
        text(&out.stderr)
    );
    let out = c.exec(&["systemctl", "is-enabled", "logoffd"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "disabled",
        "{}",
        text(&out.stderr)
    );
    let out = c.exec(&["systemctl", "is-active", "logoffd"]);
    assert_eq!(text(&out.stdout).trim(), "inactive");
    let out = c.exec(&["/usr/sbin/logoffd", "--check"]);
    assert_ok(&out, "logoffd --check with the example policy");
    assert!(
        text(&out.stdout).contains("0 rules"),
        "{}",
        text(&out.stdout)
    );

    // The installed binary logs off a real ssh session.
    c.add_user("pkguser");
    let mut s = c.ssh("pkguser", "sleep 1000");
    let out = c.exec(&["/usr/bin/logoff", &s.id]);
    assert_ok(&out, "the installed logoff");
    assert!(s.wait_closed(Duration::from_secs(10)).is_some());
    assert!(wait_for(Duration::from_secs(5), || !c.session_alive(&s.id)));
    // tsdiscon, as RDS users know it: the package's link, which disconnects.
    let out = c.exec(&["readlink", "/usr/bin/tsdiscon"]);
    assert_eq!(text(&out.stdout).trim(), "logoff");
    let mut s = c.ssh("pkguser", "sleep 1001");
    let out = c.exec(&["/usr/bin/tsdiscon", &s.id]);
    assert_ok(&out, "the installed tsdiscon");
    assert!(s.wait_closed(Duration::from_secs(10)).is_some());
    let out = c.exec(&["/usr/bin/tsdiscon", "/?"]);
    assert!(
        text(&out.stdout).contains("TSDISCON [sessionid"),
        "{}",
        text(&out.stdout)
    );

    // dpkg -r leaves the conffile only; dpkg -P takes it too.
    let files = deb_files(&deb);
    assert!(
        files.contains(&"/etc/logoff/policy.toml".to_string()),
        "{files:?}"
    );
    remove_and_purge(&c, &files);
}

/// dpkg -r leaves the conffiles only (the policy, the init script); dpkg -P takes them too,
/// and the init script's links.
fn remove_and_purge(c: &Container, files: &[String]) {
    let out = c.exec(&["dpkg", "-r", "logoff"]);
    assert_ok(&out, "dpkg -r");
    let mut left: Vec<&str> = files
        .iter()
        .filter(|f| c.root.join(f.trim_start_matches('/')).exists())
        .map(String::as_str)
        .collect();
    left.sort_unstable();
    assert_eq!(left, ["/etc/init.d/logoffd", "/etc/logoff/policy.toml"]);
    let out = c.exec(&["dpkg", "-P", "logoff"]);
    assert_ok(&out, "dpkg -P");
    assert!(!c.root.join("etc/logoff/policy.toml").exists());
    assert!(
        !c.root.join("etc/logoff").exists(),
        "dpkg -P leaves /etc/logoff"
    );
    let links = c.sh("ls /etc/rc?.d | grep logoffd");
    assert_eq!(
        text(&links.stdout),
        "",
        "dpkg -P leaves the init script's links"
    );
}

/// Issue 22: logoffd on a host without systemd. The .deb installs on an elogind test host
/// (sysvinit, elogind, syslog; dpkg -i with no systemd running), registered but not
/// enabled; its init script starts logoffd, which warns an idle ssh login and logs it off
/// as it does under systemd, with its messages in syslog and the audit record in
/// auth.log; reload refuses a broken policy, and SIGHUP keeps the policy in force; stop,
/// remove and purge leave nothing running or linked.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn on_an_elogind_host_the_init_script_runs_logoffd_from_the_deb() {
    let Some(deb) = package("deb_elogind", &deb_name()) else {
        return;
    };
    let Some(c) = container::boot_as("debelogind", Kind::Elogind) else {
        return;
    };
    assert!(
        !c.root.join("run/systemd/system").exists(),
        "systemd runs there"
    );
    std::fs::copy(&deb, c.root.join("root/logoff.deb")).expect("copy the .deb");
    assert_ok(&c.exec(&["dpkg", "-i", "/root/logoff.deb"]), "dpkg -i");
    let out = c.exec(&["/usr/sbin/logoffd", "--version"]);
    assert_eq!(text(&out.stdout).trim(), format!("logoffd {VERSION}"));
    // Registered, not enabled: stop links only; not running.
    let links = text(&c.sh("ls /etc/rc?.d | grep logoffd").stdout);
    assert!(links.contains("K01logoffd"), "{links}");
    assert!(!links.contains("S01logoffd"), "enabled at install: {links}");
    let out = c.exec(&["service", "logoffd", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));

    c.add_user("idler");
    c.add_user("bystander");
    let mut idle = c.ssh("idler", "cat");
    let mut other = c.ssh("bystander", "cat");
    write_policy(
        &c,
        "scan_interval = \"2s\"\n[[rule]]\nname = \"short\"\n\
         match = { users = [\"idler\"] }\ntimeout = \"2s\"\nidle = \"12s\"\nwarn = [\"6s\"]\n",
    );
    let out = c.exec(&["/usr/sbin/logoffd", "--check", "--json"]);
    assert_ok(&out, "logoffd --check --json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        report["sessions"].as_array().is_some_and(|s| s
            .iter()
            .any(|s| s["id"] == idle.id.as_str() && s["rule"] == "short" && s["reason"] == "idle")),
        "{report:#}"
    );
    let out = c.exec(&["service", "logoffd", "start"]);
    assert_ok(&out, "service logoffd start");
    assert_ok(&c.exec(&["service", "logoffd", "status"]), "status");

    let syslog = || text(&c.exec(&["cat", "/var/log/daemon.log"]).stdout);
    let warned = wait_for(Duration::from_secs(30), || {
        idle.output().contains("has been idle for 12s")
    });
    assert!(
        warned,
        "no warning: {}
{}",
        idle.output(),
        syslog()
    );
    assert!(
        idle.wait_closed(Duration::from_secs(30)).is_some(),
        "not logged off: {}",
        syslog()
    );
    assert!(other.is_connected(), "the bystander was touched");
    assert!(!c.session_alive(&idle.id));
    assert!(syslog().contains("logoffd["), "no messages in syslog");
    assert!(
        wait_for(Duration::from_secs(10), || syslog()
            .contains(&format!("logged off session {} (idler", idle.id))),
        "{}",
        syslog()
    );
    let records = c.audit_records(&[("LOGOFF_SESSION", idle.id.as_str())]);
    assert!(
        records.iter().any(|r| r["LOGOFF_POLICY_RULE"] == "short"
            && r["LOGOFF_REASON"] == "idle"
            && r["LOGOFF_RESULT"] == "logged-off"),
        "{records:?}"
    );
    reload_and_stop(&c, syslog);
    remove_and_purge(&c, &deb_files(&deb));
}

/// The init script's reload refuses a broken policy (saying where it is broken) and leaves
/// logoffd alone; SIGHUP itself keeps the policy in force; stop stops it.
fn reload_and_stop(c: &Container, syslog: impl Fn() -> String) {
    write_policy(c, "[[rule]]\nname = \"broken\"\nidle = \"soon\"\n");
    let out = c.exec(&["service", "logoffd", "reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("line 3, column 8"), "{said}");
    let pid = text(&c.exec(&["cat", "/run/logoffd.pid"]).stdout)
        .trim()
        .to_string();
    assert_ok(&c.exec(&["kill", "-HUP", &pid]), "SIGHUP");
    assert!(
        wait_for(Duration::from_secs(10), || syslog()
            .contains("the policy in force stays")),
        "{}",
        syslog()
    );
    assert_ok(&c.exec(&["service", "logoffd", "status"]), "still running");
    assert_ok(
        &c.exec(&["service", "logoffd", "stop"]),
        "service logoffd stop",
    );
    assert!(
        c.pids_matching("^/usr/sbin/logoffd").is_empty(),
        "logoffd still runs"
    );
    let out = c.exec(&["service", "logoffd", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
}

fn write_policy(c: &Container, policy: &str) {
    let path = c.root.join("etc/logoff/policy.toml");
    std::fs::write(&path, policy).expect("policy");
    common::set_mode(&path, 0o644);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn lintian_finds_no_error_in_the_deb() {
    for name in [deb_name(), cockpit_deb_name()] {
        let Some(deb) = package("lintian", &name) else {
            return;
        };
        let out = Command::new("lintian")
            .args(["--fail-on", "error,warning", "--display-info"])
            .arg(&deb)
            .output()
            .expect("lintian");
        assert!(
            out.status.success(),
            "lintian {name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_cockpit_packages_hold_the_page_and_depend_on_logoff() {
    let Some(deb) = package("cockpit_packages", &cockpit_deb_name()) else {
        return;
    };
    let mut files = deb_files(&deb);
    files.retain(|f| f.starts_with("/usr/share/cockpit/"));
    files.sort();
    assert_eq!(files, COCKPIT_PAGE);
    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(name)
            .output()
            .expect("dpkg-deb -f");
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Architecture"), "all");
    assert_eq!(field("Version"), VERSION);
    assert_eq!(field("Depends"), "logoff, cockpit-bridge");

    let rpm = packages().join(cockpit_rpm_name());
    let mut files: Vec<String> = rpm_query(&rpm, &["-qlp"])
        .lines()
        .map(String::from)
        .collect();
    files.sort();
    assert_eq!(files, COCKPIT_PAGE);
    let info = rpm_query(&rpm, &["-qip"]);
    for want in [
        "Name        : cockpit-logoff",
        &format!("Version     : {VERSION}"),
        "Architecture: noarch",
    ] {
        assert!(info.contains(want), "no '{want}' in {info}");
    }
    let mut requires: Vec<String> = rpm_query(&rpm, &["-qp", "--requires"])
        .lines()
        .filter(|l| !l.starts_with("rpmlib("))
        .map(String::from)
        .collect();
    requires.sort();
    assert_eq!(requires, ["cockpit-bridge", "logoff"]);
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_rpm_has_rhel_paths_and_metadata() {
    let Some(rpm) = package("rpm_layout", &rpm_name()) else {
        return;
    };
    let query = |args: &[&str]| rpm_query(&rpm, args);
    let mut files: Vec<String> = query(&["-qlp"]).lines().map(String::from).collect();
    files.sort();
    let mut expected = vec![
        "/etc/logoff/policy.toml",
        "/usr/bin/logoff",
        "/usr/lib/systemd/system/logoffd.service",
        "/usr/sbin/logoffd",
        "/usr/share/bash-completion/completions/logoff",
        "/usr/share/doc/logoff/CHANGELOG.md",
        "/usr/share/doc/logoff/README.md",
        "/usr/share/fish/vendor_completions.d/logoff.fish",
        "/usr/share/man/man1/logoff.1.gz",
        "/usr/share/man/man5/logoff-policy.5.gz",
        "/usr/share/man/man8/logoffd.8.gz",
        "/usr/share/zsh/site-functions/_logoff",
    ];
    expected.sort_unstable();
    assert_eq!(files, expected);
    let info = query(&["-qip"]);
    for want in [
        "Name        : logoff",
        &format!("Version     : {VERSION}"),
        "License     : MIT OR Apache-2.0",
    ] {
        assert!(info.contains(want), "no '{want}' in {info}");
    }
    assert_eq!(query(&["-qcp"]).trim(), "/etc/logoff/policy.toml");
    assert!(query(&["-qp", "--recommends"]).contains("openssh-clients"));
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn two_builds_of_one_commit_give_identical_packages() {
    if package("reproducible", &deb_name()).is_none() {
        return;
    }
    let dir = common::fixtures::TempDir::new("repro");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package"))
        .arg("--out")
        .arg(&dir.0)
        .output()
        .expect("scripts/package");
    assert_ok(&out, "scripts/package --out");
    for name in [
        deb_name(),
        rpm_name(),
        cockpit_deb_name(),
        cockpit_rpm_name(),
    ] {
        let again = std::fs::read(dir.path(&name)).expect("the second build");
        assert!(
            again == std::fs::read(packages().join(&name)).expect("the first build"),
            "{name} differs between two builds of one commit"
        );
    }
}
