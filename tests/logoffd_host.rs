//! logoffd as shipped, under a real systemd with logind and sshd (test hosts booted with
//! systemd-nspawn): the repository's unit file, the binary at /usr/sbin/logoffd, the policy
//! at /etc/logoff/policy.toml; real ssh logins. Limits in seconds. Needs root; under
//! CI=true a test host that cannot be built fails the test.

mod common;

use std::time::{Duration, Instant};

use common::container::{self, Container};
use common::{assert_ok, text, wait_for};
use serde_json::Value;

/// Installs logoffd in the test host as a package would and starts it with systemd.
fn install(c: &Container, policy: &str) {
    c.install_logoffd(policy, "");
}

fn write_policy(c: &Container, policy: &str) {
    c.write_policy(policy);
}

fn active(c: &Container) -> String {
    c.logoffd_state()
}

/// logoffd's own lines in the test host's journal.
fn journal(c: &Container) -> String {
    c.logoffd_journal()
}

fn policy_for(user: &str, limits: &str) -> String {
    container::logoffd::policy_for(&[user], limits)
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn under_systemd_an_idle_ssh_login_is_warned_and_logged_off_as_check_said() {
    let Some(c) = container::boot("dunit") else {
        return;
    };
    c.add_user("idler");
    c.add_user("bystander");
    let mut idle = c.ssh("idler", "cat");
    let other = c.ssh("bystander", "cat");
    install(&c, &policy_for("idler", "idle = \"30s\"\nwarn = [\"20s\"]"));

    // What --check says will happen, then what does.
    let out = c.exec(&["/usr/sbin/logoffd", "--check", "--json"]);
    assert_ok(&out, "logoffd --check --json");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let find = |id: &str| {
        report["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
            .unwrap_or_else(|| panic!("session {id} not in {report:#}"))
    };
    let planned = find(&idle.id);
    assert_eq!(planned["rule"], "short");
    assert_eq!(planned["reason"], "idle");
    let acts_at: jiff::Timestamp = planned["acts_at"]
        .as_str()
        .expect("acts_at")
        .parse()
        .expect("time");
    assert!(find(&other.id)["rule"].is_null(), "{report:#}");
    // Regression: logoff --list shows the deadline the daemon published. (The daemon, in
    // its sandbox, read another boot ID than logoff in a container, and logoff took the
    // published deadlines for another boot's.)
    let published = wait_for(Duration::from_secs(10), || {
        c.sessions(&[])
            .iter()
            .any(|s| s["id"] == idle.id.as_str() && s["time_limit"]["rule"] == "short")
    });
    assert!(published, "--list shows no deadline: {:?}", c.sessions(&[]));

    let warned = wait_for(Duration::from_secs(40), || {
        idle.output().contains("has been idle for 30s")
    });
    assert!(warned, "no warning: {}\n{}", idle.output(), journal(&c));
    assert!(
        idle.wait_closed(Duration::from_secs(40)).is_some(),
        "not logged off: {}",
        journal(&c)
    );
    let late = jiff::Timestamp::now().duration_since(acts_at);
    assert!(
        late.as_secs() >= -1 && late.as_secs() <= 12,
        "logged off {late:?} after the time --check gave"
    );
    assert!(!c.session_alive(&idle.id));
    assert!(c.session_alive(&other.id), "the bystander was touched");
    // The journal record: the command's fields, the rule and the reason. (Written once the
    // logoff is verified, a moment after the session's processes have gone.)
    let record = || {
        let out = c.exec(&[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            &format!("LOGOFF_SESSION={}", idle.id),
        ]);
        text(&out.stdout)
    };
    let recorded = wait_for(Duration::from_secs(10), || {
        record().contains("\"LOGOFF_RESULT\"")
    });
    let rec = record();
    assert!(recorded, "no journal record of the logoff: {rec}");
    assert!(rec.contains("\"LOGOFF_POLICY_RULE\":\"short\""), "{rec}");
    assert!(rec.contains("\"LOGOFF_REASON\":\"idle\""), "{rec}");
    assert!(rec.contains("\"LOGOFF_RESULT\":\"logged-off\""), "{rec}");
    assert_eq!(active(&c), "active", "{}", journal(&c));
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_restart_in_the_middle_of_a_disconnected_limit_keeps_the_clock() {
    let Some(c) = container::boot("dclock") else {
        return;
    };
    c.add_user("leaver");
    install(&c, &policy_for("leaver", "disconnected = \"24s\""));
    // A login that leaves a job behind, then its connection drops: logind keeps the
    // session closing with the job in it.
    let s = c.ssh(
        "leaver",
        "nohup sleep 1000 >/dev/null 2>&1 & echo started; cat",
    );
    assert!(wait_for(Duration::from_secs(10), || s
        .output()
        .contains("started")));
    // "started" can come before the background job has become `sleep`: until nohup has
    // set SIGHUP aside and exec'd it, the hangup below would end the job, and with it the
    // session. (The pattern is anchored: the login shell's own command line names it too.)
    assert!(
        wait_for(Duration::from_secs(10), || !c
            .pids_matching("^sleep 1000$")
            .is_empty()),
        "the job never started"
    );
    let id = s.id.clone();
    drop(s);
    let disconnected = wait_for(Duration::from_secs(40), || {
        c.loginctl_property(&id, "State").as_deref() == Some("closing")
    });
    assert!(
        disconnected,
        "the session never became closing: state {:?}; {}\n{}",
        c.loginctl_property(&id, "State"),
        text(
            &c.exec(&["loginctl", "session-status", &id, "--no-pager"])
                .stdout
        ),
        journal(&c)
    );
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        c.loginctl_property(&id, "State").is_some(),
        "ended too soon"
    );
    let out = c.exec(&["systemctl", "restart", "logoffd"]);
    assert_ok(&out, "systemctl restart logoffd");
    // Without the kept clock it would start again now, and end at 12 + 24 s.
    let gone = wait_for(Duration::from_secs(30), || {
        c.loginctl_property(&id, "State").is_none() || c.pids_matching("^sleep 1000$").is_empty()
    });
    let took = since.elapsed();
    assert!(gone, "not logged off: {}", journal(&c));
    assert!(
        took >= Duration::from_secs(20) && took <= Duration::from_secs(31),
        "logged off {took:?} after it was disconnected: {}",
        journal(&c)
    );
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn sighup_with_a_broken_policy_keeps_the_old_one_and_says_why() {
    let Some(c) = container::boot("dhup") else {
        return;
    };
    c.add_user("kept");
    install(&c, &policy_for("kept", "idle = \"25s\""));
    let mut s = c.ssh("kept", "cat");
    write_policy(&c, "[[rule]]\nname = \"broken\"\nidle = \"soon\"\n");
    let out = c.exec(&["systemctl", "reload", "logoffd"]);
    assert_ok(&out, "systemctl reload logoffd");
    let said = wait_for(Duration::from_secs(10), || {
        journal(&c).contains("the policy in force stays")
    });
    let log = journal(&c);
    assert!(said, "{log}");
    assert!(log.contains("line 3, column 8"), "{log}");
    assert_eq!(active(&c), "active");
    // The old policy still rules: the idle login goes.
    assert!(
        s.wait_closed(Duration::from_secs(50)).is_some(),
        "the old policy was dropped: {}",
        journal(&c)
    );
}

/// Regression: under its unit's sandbox, logoffd could not ask sshd's socket where a session
/// came from (pidfd_getfd is not in @system-service): with the procfs backend a rule
/// matching `remote = true` never took an ssh login, and a disconnect found no connection.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_in_its_sandbox_logoffd_sees_where_an_ssh_login_comes_from() {
    let Some(c) = container::boot("dfrom") else {
        return;
    };
    c.add_user("farther");
    let mut s = c.ssh("farther", "cat");
    let policy = "scan_interval = \"2s\"\n[[rule]]\nname = \"remote\"\n\
                  match = { users = [\"farther\"], remote = true }\nidle = \"5s\"\n\
                  timeout = \"2s\"\n";
    c.install_logoffd(policy, "--backend procfs");
    assert!(
        s.wait_closed(Duration::from_secs(30)).is_some(),
        "the remote rule never took it: {}",
        journal(&c)
    );
}

/// One scrape of the node exporter's `/metrics` on loopback: the body.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ =
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n");
    let mut body = Vec::new();
    let _ = conn.read_to_end(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of one sample line (`name{labels}`) in a scrape.
fn sample(scraped: &str, series: &str) -> Option<f64> {
    scraped.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Issue 21: Debian's node exporter, with its own default textfile directory, serves
/// logoffd's figures; the counters move when the policy logs a session off, and a restart
/// of logoffd keeps them.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_node_exporter_serves_logoffds_counters_and_they_move_with_a_policy_logoff() {
    let Some(c) = container::boot("dprom") else {
        return;
    };
    let exporter = "/usr/bin/prometheus-node-exporter";
    if !common::require(
        "the_node_exporter_serves_logoffds_counters",
        if c.root.join(exporter.trim_start_matches('/')).exists() {
            Ok(())
        } else {
            Err("prometheus-node-exporter is not installed (scripts/test installs it)".into())
        },
    ) {
        return;
    }
    // On a loopback port of its own (the test hosts share this machine's network), as the
    // package's user, with Debian's default textfile directory (not named here: logoffd's
    // default must be the one the node exporter reads).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = c.exec(&[
        "systemd-run",
        "--unit=node-exporter",
        "-p",
        "User=prometheus",
        exporter,
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults",
        "--collector.textfile",
    ]);
    assert_ok(&out, "systemd-run the node exporter");
    assert!(
        wait_for(Duration::from_secs(20), || scrape(port).contains("200 OK")),
        "the node exporter never answered on {port}"
    );

    c.add_user("counted");
    let mut s = c.ssh("counted", "cat");
    install(
        &c,
        &policy_for("counted", "idle = \"25s\"\nwarn = [\"8s\"]"),
    );
    let logoffs = "logoff_logoffs_total{reason=\"idle\",rule=\"short\"}";
    let warnings = "logoff_warnings_total{reason=\"idle\",rule=\"short\"}";
    let served = wait_for(Duration::from_secs(20), || {
        let m = scrape(port);
        m.lines()
            .any(|l| l.starts_with("logoff_sessions{") && l.contains("class=\"user\""))
    });
    let m = scrape(port);
    assert!(
        served,
        "no logoffd figures in the scrape:\n{m}\n{}",
        journal(&c)
    );
    assert_eq!(
        sample(&m, logoffs),
        None,
        "counted before anything was done:\n{m}"
    );
    assert!(sample(&m, "logoff_pass_duration_seconds").is_some(), "{m}");
    assert!(
        m.contains("node_textfile_scrape_error 0"),
        "the node exporter could not read the file:\n{m}"
    );

    assert!(
        s.wait_closed(Duration::from_secs(40)).is_some(),
        "not logged off: {}",
        journal(&c)
    );
    let moved = wait_for(Duration::from_secs(15), || {
        sample(&scrape(port), logoffs) == Some(1.0)
    });
    let m = scrape(port);
    assert!(moved, "the logoff was not counted:\n{m}\n{}", journal(&c));
    assert!(sample(&m, warnings).is_some_and(|n| n >= 1.0), "{m}");

    // A restart: the counters come back as they were.
    let out = c.exec(&["systemctl", "restart", "logoffd"]);
    assert_ok(&out, "systemctl restart logoffd");
    let before = sample(&m, "logoff_last_pass_timestamp_seconds");
    let again = wait_for(Duration::from_secs(15), || {
        let m = scrape(port);
        sample(&m, "logoff_last_pass_timestamp_seconds") > before
    });
    let m = scrape(port);
    assert!(again, "no pass after the restart:\n{m}\n{}", journal(&c));
    assert_eq!(
        sample(&m, logoffs),
        Some(1.0),
        "the counter did not survive:\n{m}"
    );
    // Stopped, logoffd takes its figures away (they would go stale).
    assert_ok(&c.exec(&["systemctl", "stop", "logoffd"]), "stop logoffd");
    assert!(
        !c.root
            .join("var/lib/prometheus/node-exporter/logoffd.prom")
            .exists(),
        "the metrics file stayed after logoffd stopped"
    );
}
