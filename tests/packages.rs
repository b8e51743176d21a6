//! The packages, proven by installing them: the .deb into a test host with a real systemd
//! (dpkg -i, use, dpkg -r, dpkg -P), lintian on it and on cockpit-logoff's, the .rpms'
//! layout and metadata read with rpm, and a second build of the same commit compared byte for
//! byte. (cockpit-logoff at work in a browser: tests/cockpit.rs.)
//!
//! scripts/test builds the packages (scripts/package) before the tests run; these tests need
//! them in target/packages/ (under CI=true their absence fails the test). Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::container;
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

    // dpkg -r leaves the conffile only; dpkg -P takes it too.
    let files = deb_files(&deb);
    assert!(
        files.contains(&"/etc/logoff/policy.toml".to_string()),
        "{files:?}"
    );
    let out = c.exec(&["dpkg", "-r", "logoff"]);
    assert_ok(&out, "dpkg -r");
    let left: Vec<&String> = files
        .iter()
        .filter(|f| c.root.join(f.trim_start_matches('/')).exists())
        .collect();
    assert_eq!(left, [&"/etc/logoff/policy.toml".to_string()]);
    let out = c.exec(&["dpkg", "-P", "logoff"]);
    assert_ok(&out, "dpkg -P");
    assert!(!c.root.join("etc/logoff/policy.toml").exists());
    assert!(
        !c.root.join("etc/logoff").exists(),
        "dpkg -P leaves /etc/logoff"
    );
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
