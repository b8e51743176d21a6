//! Remote hosts: `/SERVER` over ssh to real test hosts (systemd-nspawn, real sshd and logind),
//! many at once, hosts that fail or hang, injection attempts, and `/VM` with a container
//! registered with systemd-machined inside a test host. Fleets that mix systemd and elogind
//! hosts (the latter reached through their own logoff, `logoff --remote-agent`), and remote
//! logoffs that answer nonsense.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::container::{self, Container, Fleet, Kind};
use common::{TempDir, assert_fails, assert_ok, logoff_bin, set_mode, text, wait_for};
use serde_json::Value;

fn json_rows(out: &std::process::Output) -> Vec<Value> {
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?}\n{}", text(&out.stderr)),
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn one_command_for_three_hosts_and_a_failing_one_fails_alone() {
    let Some(hosts) = container::boot_many("fleet", 3) else {
        return;
    };
    let refs: Vec<&Container> = hosts.iter().collect();
    let mut fleet = Fleet::new(&refs, "lt-h");
    let all = fleet.aliases.join(",");
    // carol's session is the first with a terminal on each host: pts/0 everywhere.
    let mut carols = Vec::new();
    let mut daves = Vec::new();
    for h in &hosts {
        h.add_user("carol");
        h.add_user("dave");
        carols.push(h.ssh("carol", "sleep 1000"));
        daves.push(h.ssh("dave", "sleep 1001"));
    }
    for c in &carols {
        assert_eq!(c.tty, "pts/0", "carol's terminal");
    }

    // The list over three hosts has a HOST column and every host's sessions.
    let out = fleet.logoff(&["--list", &format!("/SERVER:{all}")]);
    assert_ok(&out, "list three hosts");
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|l| l.trim_start().starts_with("HOST")),
        "{table}"
    );
    for alias in &fleet.aliases {
        assert_eq!(
            table
                .lines()
                .filter(|l| l.trim_start().starts_with(alias.as_str()))
                .count(),
            3,
            "carol, dave and logoff's own ssh login on {alias}:\n{table}"
        );
    }
    let args: Vec<String> = fleet
        .aliases
        .iter()
        .flat_map(|a| ["--server".to_string(), a.clone()])
        .collect();
    let mut json_args: Vec<&str> = vec!["--list", "--json"];
    json_args.extend(args.iter().map(String::as_str));
    let rows = json_rows(&fleet.logoff(&json_args));
    for alias in &fleet.aliases {
        assert!(
            rows.iter()
                .any(|r| r["host"] == alias.as_str() && r["user"] == "carol"),
            "{alias}: {rows:?}"
        );
    }

    // On a terminal, the hosts are counted as they answer.
    let shown = common::on_a_pty(
        &["--list", &format!("/SERVER:{all}")],
        &[("LOGOFF_SSH", &fleet.ssh().display().to_string())],
    );
    assert!(
        shown.contains("hosts: 3/3 done, 0 failed, 0 connecting"),
        "{shown:?}"
    );
    // The table is printed after the counter has gone: carol, dave and the list's own ssh
    // login on each of the three.
    assert!(shown.contains("9 sessions listed."), "{shown:?}");

    // One command logs carol off on all three; dave stays everywhere.
    let out = fleet.logoff(&["-v", &format!("/SERVER:{all}"), "pts/0"]);
    assert_ok(&out, "logoff on three hosts");
    let said = text(&out.stdout);
    for alias in &fleet.aliases {
        assert!(said.contains(&format!("{alias}: session")), "{said}");
    }
    for c in &mut carols {
        assert!(
            c.wait_closed(Duration::from_secs(15)).is_some(),
            "carol still connected"
        );
    }
    for d in &mut daves {
        assert!(d.is_connected(), "dave's session ended");
    }

    // One host down: the others still answer, that host's error is shown, the status is not 0.
    let out = hosts[1].exec(&["systemctl", "stop", "ssh.socket", "ssh.service"]);
    assert_ok(&out, "stop sshd on host 2");
    let down = &fleet.aliases[1];
    let out = fleet.logoff(&["--list", &format!("/SERVER:{all}")]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{down}: cannot connect to {down}")),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "ssh's own words: {err}");
    assert!(
        err.contains(&format!("1 of 3 hosts failed: {down}")),
        "{err}"
    );
    let table = text(&out.stdout);
    for (i, alias) in fleet.aliases.iter().enumerate() {
        let listed = table
            .lines()
            .any(|l| l.trim_start().starts_with(alias.as_str()));
        assert_eq!(listed, i != 1, "{alias}:\n{table}");
    }
    // Filters are resolved on each host too.
    let out = fleet.logoff(&[
        "--dry-run",
        &format!("/SERVER:{all}"),
        "--user",
        "dave",
        "--all",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let planned = text(&out.stdout);
    assert_eq!(
        planned.lines().count(),
        2,
        "{planned}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        planned.lines().all(|l| l.contains("(dave on pts/1)")),
        "{planned}"
    );
    // A logoff on all three logs dave off where it can, and says where it could not.
    let out = fleet.logoff(&["--json", &format!("/SERVER:{all}"), "pts/1"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let results = json_rows(&out);
    assert_eq!(results.len(), 3, "{results:?}");
    for r in &results {
        let up = r["host"] != down.as_str();
        assert_eq!(r["logged_off"], up, "{r}");
        if !up {
            assert_eq!(r["error"]["kind"], "remote", "{r}");
        }
    }
    assert!(daves[0].wait_closed(Duration::from_secs(15)).is_some());
    assert!(daves[2].wait_closed(Duration::from_secs(15)).is_some());

    // A host that accepts the connection and then says nothing delays nobody beyond the
    // connect timeout.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = hang.local_addr().expect("addr").port();
    let _accepting = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            held.push(s);
        }
    });
    fleet.add_alias("lt-hang", port);
    let start = Instant::now();
    let out = fleet.logoff(&[
        "--list",
        "--connect-timeout",
        "2s",
        "--server",
        "lt-h1",
        "--server",
        "lt-hang",
    ]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        took < Duration::from_secs(15),
        "the hanging host held everyone for {took:?}"
    );
    assert!(
        text(&out.stderr).contains("lt-hang"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("lt-h1"), "{}", text(&out.stdout));
}

/// A fleet of two systemd hosts and one elogind host (no systemd-stdio-bridge there: it is
/// reached through its own logoff, `logoff --remote-agent`): one command lists and logs off
/// on all three; Ctrl-C during a grace period cancels there too; a logoff killed outright
/// leaves nothing of itself running there.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_mixed_fleet_with_an_elogind_host_lists_and_logs_off_on_all() {
    let kinds = [Kind::Systemd, Kind::Systemd, Kind::Elogind];
    let Some(hosts) = container::boot_kinds("mixed", &kinds) else {
        return;
    };
    let refs: Vec<&Container> = hosts.iter().collect();
    let fleet = Fleet::new(&refs, "lt-x");
    let all = format!("/SERVER:{}", fleet.aliases.join(","));
    let el = fleet.aliases[2].clone();
    let (mut carols, mut daves) = (Vec::new(), Vec::new());
    for h in &hosts {
        h.add_user("carol");
        h.add_user("dave");
        carols.push(h.ssh("carol", "sleep 1030"));
        daves.push(h.ssh("dave", "sleep 1031"));
    }

    // The table: each host's sessions (carol, dave, logoff's own ssh login) and backend.
    let out = fleet.logoff(&["--list", &all]);
    assert_ok(&out, "list the mixed fleet");
    let table = text(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header[..2], ["HOST", "BACKEND"], "{table}");
    for alias in &fleet.aliases {
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.trim_start().starts_with(alias.as_str()))
            .collect();
        assert_eq!(rows.len(), 3, "{alias}:\n{table}");
        let backend = if *alias == el {
            "logind (agent)"
        } else {
            "logind"
        };
        assert!(
            rows.iter()
                .all(|r| r.contains(&format!("{alias}  {backend} "))),
            "{alias}:\n{table}"
        );
    }
    // JSON: the same backend everywhere, and the version of the logoff that answered.
    let rows = json_rows(&fleet.logoff(&["--list", "--json", &all]));
    for r in &rows {
        let agent = if r["host"] == el.as_str() {
            Value::from(env!("CARGO_PKG_VERSION"))
        } else {
            Value::Null
        };
        assert_eq!(r["backend"], "logind", "{r}");
        assert_eq!(r["agent"], agent, "{r}");
    }
    assert!(
        rows.iter().any(|r| r["host"] == el.as_str()
            && r["id"] == carols[2].id.as_str()
            && r["tty"] == "pts/0"),
        "{rows:?}"
    );

    // --backend procfs on another host: that host's own logoff, with its procfs backend.
    let rows = json_rows(&fleet.logoff(&[
        "--list",
        "--json",
        "--backend",
        "procfs",
        &format!("/SERVER:{}", fleet.aliases[0]),
    ]));
    assert!(
        rows.iter()
            .all(|r| r["backend"] == "procfs" && r["agent"] == env!("CARGO_PKG_VERSION")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["id"] == carols[0].id.as_str() && r["user"] == "carol"),
        "{rows:?}"
    );

    cancelled_on_all(&fleet, &all, &hosts, &mut daves);

    // One command logs carol off on all three; dave stays everywhere.
    let out = fleet.logoff(&["-v", &all, "pts/0"]);
    assert_ok(&out, "logoff on the mixed fleet");
    let said = text(&out.stdout);
    for alias in &fleet.aliases {
        assert!(said.contains(&format!("{alias}: session")), "{said}");
    }
    assert!(
        said.contains(&format!("{el}: backend: logind (")) && said.contains("through the logoff"),
        "{said}"
    );
    for c in &mut carols {
        assert!(
            c.wait_closed(Duration::from_secs(15)).is_some(),
            "carol still connected"
        );
    }
    for (h, d) in hosts.iter().zip(&mut daves) {
        assert!(d.is_connected(), "dave's session ended on {}", h.name);
    }
    assert!(hosts[2].pids_matching("^sleep 1030$").is_empty());
    // The elogind host keeps its own trail of what its logoff did, and for whom.
    let trail = text(&hosts[2].exec(&["cat", "/var/log/auth.log"]).stdout);
    for want in [
        "logoff --remote-agent for root (uid 0, from 127.0.0.1): ".to_string(),
        format!("asked session {} (carol on pts/0) to end", carols[2].id),
        format!("session {} (carol on pts/0) has ended", carols[2].id),
    ] {
        assert!(trail.contains(&want), "{want:?} not in:\n{trail}");
    }

    // Regression: --all on other hosts took logoff's own ssh login there too (the bus
    // bridge's) and cut its own connection halfway. It is left out, and said so; everyone
    // else's session goes. (The remote logoff on the elogind host lists its own session
    // for no logoff.)
    let out = fleet.logoff(&["-v", "--all", &all]);
    assert_ok(&out, "logoff --all on the mixed fleet");
    let said = text(&out.stdout);
    for alias in &fleet.aliases[..2] {
        assert!(
            said.contains(&format!("{alias}: leaving out session")),
            "{alias}: {said}"
        );
    }
    for d in &mut daves {
        assert!(
            d.wait_closed(Duration::from_secs(15)).is_some(),
            "dave still connected"
        );
    }
}

/// Ctrl-C during a grace period on every host of `all`: nobody is logged off, each user is
/// told, and no remote logoff is left running on the elogind host (`hosts[2]`). Then a
/// logoff killed outright there: its remote logoff goes too, having done nothing.
fn cancelled_on_all(
    fleet: &Fleet,
    all: &str,
    hosts: &[Container],
    daves: &mut [common::container::SshSession],
) {
    let spawn = |args: &[&str]| {
        container::Background(
            std::process::Command::new(logoff_bin())
                .args(args)
                .env("LOGOFF_SSH", fleet.ssh())
                .process_group(0)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn logoff"),
        )
    };
    let warned = |d: &common::container::SshSession, times: usize| {
        wait_for(Duration::from_secs(20), || {
            d.output().matches("fleet maintenance").count() >= times
        })
    };
    let no_agent_left = || {
        wait_for(Duration::from_secs(10), || {
            hosts[2].pids_matching("logoff --remote-agent").is_empty()
        })
    };
    let mut logoff = spawn(&[
        "--grace",
        "60s",
        "--message",
        "fleet maintenance",
        all,
        "pts/1",
    ]);
    for d in daves.iter() {
        assert!(warned(d, 1), "no warning: {}", d.output());
    }
    assert!(!hosts[2].pids_matching("logoff --remote-agent").is_empty());
    // Ctrl-C as a terminal sends it: SIGINT to logoff's whole process group.
    let group = rustix::process::Pid::from_raw(logoff.0.id() as i32).expect("pid");
    rustix::process::kill_process_group(group, rustix::process::Signal::INT).expect("SIGINT");
    let status = logoff.wait(Duration::from_secs(20)).expect("logoff ended");
    assert_eq!(status.code(), Some(130), "{status:?}");
    for d in daves.iter_mut() {
        assert!(
            wait_for(Duration::from_secs(5), || d
                .output()
                .contains("cancelled the logoff")),
            "{}",
            d.output()
        );
        assert!(d.is_connected(), "dave was logged off anyway");
    }
    assert!(
        no_agent_left(),
        "the elogind host's logoff --remote-agent still runs"
    );

    let el = format!("/SERVER:{}", fleet.aliases[2]);
    let mut logoff = spawn(&[
        "--grace",
        "60s",
        "--message",
        "fleet maintenance",
        &el,
        "pts/1",
    ]);
    assert!(warned(&daves[2], 2), "no warning: {}", daves[2].output());
    let _ = logoff.0.kill();
    let _ = logoff.0.wait();
    assert!(
        no_agent_left(),
        "the remote logoff outlived the one that started it"
    );
    assert!(daves[2].is_connected(), "dave was logged off by an orphan");
    assert_eq!(hosts[2].pids_matching("^sleep 1031$").len(), 1);
}

#[test]
fn host_names_are_data_never_options_or_shell() {
    let dir = TempDir::new("inject");
    let marker = dir.path("ran");
    // An "ssh" that records any call: for these names it must never be called at all.
    let calls = dir.path("calls");
    let fake_ssh = dir.path("ssh");
    std::fs::write(
        &fake_ssh,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 255\n", calls.display()),
    )
    .expect("fake ssh");
    set_mode(&fake_ssh, 0o755);
    let touch = format!("touch {}", marker.display());
    let attempts = [
        format!("-oProxyCommand={touch}"),
        format!("host;{touch}"),
        format!("$({touch})"),
        format!("`{touch}`"),
        format!("host|{touch}"),
        "host\nother".to_string(),
    ];
    let servers_file = dir.path("servers");
    for attempt in &attempts {
        let mut forms = vec![
            vec!["--list".to_string(), format!("/SERVER:{attempt}")],
            vec![
                "--list".to_string(),
                "--server".to_string(),
                attempt.clone(),
            ],
            vec!["--list".to_string(), format!("--server=ok-host,{attempt}")],
        ];
        // In a file a newline separates names; every other attempt goes in a file too.
        if !attempt.contains('\n') {
            forms.push(vec![
                "--list".to_string(),
                "--servers-file".to_string(),
                servers_file.display().to_string(),
            ]);
        }
        for form in forms {
            let mut f = std::fs::File::create(&servers_file).expect("servers file");
            writeln!(f, "ok-host\n{attempt}").expect("write");
            let out = std::process::Command::new(logoff_bin())
                .args(&form)
                .env("LOGOFF_SSH", &fake_ssh)
                .output()
                .expect("run");
            assert_eq!(
                out.status.code(),
                Some(2),
                "{form:?}: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stderr).starts_with("Invalid parameter(s)\n"),
                "{form:?}: {}",
                text(&out.stderr)
            );
            assert!(!marker.exists(), "{form:?} ran a command");
            assert!(
                !calls.exists(),
                "{form:?} called ssh: {}",
                std::fs::read_to_string(&calls).unwrap_or_default()
            );
        }
    }
    // A machine name crosses a shell on the far side: the same care.
    for bad in ["a;b", "$(x)", "`x`", "-x"] {
        let out = std::process::Command::new(logoff_bin())
            .args(["--list", "--server", "somehost", &format!("/VM:{bad}")])
            .env("LOGOFF_SSH", &fake_ssh)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "/VM:{bad}: {}",
            text(&out.stderr)
        );
        assert!(!calls.exists(), "/VM:{bad} called ssh");
    }
}

#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn vm_reaches_a_machine_registered_with_machined() {
    let Some(h) = container::boot("machine") else {
        return;
    };
    h.add_user("erin");
    let leader = start_inner_machine(&h);
    let _session = h.sh(&format!(
        "nsenter -t {leader} -a su -l erin -c 'sleep 1009' >/dev/null 2>&1 &"
    ));
    let rows = || -> Vec<Value> { json_rows(&h.logoff(&["/VM:inner", "--list", "--json"])) };
    assert!(
        wait_for(Duration::from_secs(15), || rows()
            .iter()
            .any(|r| r["user"] == "erin")),
        "erin's session in the machine never showed"
    );
    let id = rows()
        .into_iter()
        .find(|r| r["user"] == "erin")
        .and_then(|r| r["id"].as_str().map(String::from))
        .expect("erin's session");
    // The test host's own logind does not know that session.
    assert!(h.sessions(&[]).iter().all(|r| r["user"] != "erin"));

    // From outside the test host: /SERVER and /VM together, over ssh.
    let fleet = Fleet::new(&[&h], "lt-m");
    let out = fleet.logoff(&["--list", "/SERVER:lt-m1", "/VM:inner", "-v"]);
    assert_ok(&out, "list the machine over ssh");
    assert!(text(&out.stdout).contains("machine inner on lt-m1 over ssh"));
    assert!(text(&out.stdout).contains("erin"), "{}", text(&out.stdout));

    // Per the seed, /VM needs the session's unique ID.
    let out = h.logoff(&["/VM:inner"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = h.logoff(&["/VM:inner", "-v", &id]);
    assert_ok(&out, "logoff in the machine");
    assert!(
        rows()
            .iter()
            .all(|r| r["id"] != id.as_str() || r["state"] == "closing")
    );
    // The audit record (written on the test host, where logoff ran) names the machine.
    let out = h.exec(&[
        "journalctl",
        "--no-pager",
        "-o",
        "json",
        "SYSLOG_IDENTIFIER=logoff",
        &format!("LOGOFF_SESSION={id}"),
    ]);
    let records: Vec<Value> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r["LOGOFF_MACHINE"] == "inner" && r["LOGOFF_USER"] == "erin"),
        "{records:?}"
    );

    // Clear errors: no such machine; machined not running.
    assert_fails(
        &h.logoff(&["/VM:nosuch", "--list"]),
        6,
        "cannot reach machine nosuch: no machine of that name",
    );
    assert_ok(
        &h.exec(&["systemctl", "stop", "inner-machine"]),
        "stop inner",
    );
    assert_ok(
        &h.exec(&["systemctl", "stop", "systemd-machined"]),
        "stop machined",
    );
    assert_fails(
        &h.logoff(&["/VM:inner", "--list"]),
        6,
        "cannot reach machine inner",
    );

    // A host without systemd-stdio-bridge (as elogind hosts are) is reached through its own
    // logoff; a machine on it cannot be, and that is said.
    assert_ok(
        &h.exec(&["rm", "/usr/bin/systemd-stdio-bridge"]),
        "remove the bridge",
    );
    let out = fleet.logoff(&["--list", "-v", "/SERVER:lt-m1"]);
    assert_ok(&out, "list through the host's own logoff");
    assert!(
        text(&out.stdout).contains("lt-m1 over ssh, which has no systemd-stdio-bridge"),
        "{}",
        text(&out.stdout)
    );
    assert_fails(
        &fleet.logoff(&["--list", "/SERVER:lt-m1", "/VM:inner"]),
        6,
        "no systemd-stdio-bridge",
    );
    // Without logoff either, that is said.
    assert_ok(&h.exec(&["rm", "/usr/local/bin/logoff"]), "remove logoff");
    assert_fails(
        &fleet.logoff(&["--list", "/SERVER:lt-m1"]),
        6,
        "has neither systemd-stdio-bridge nor logoff",
    );
}

/// Boots a container inside the test host `h`, registered with its machined as `inner`;
/// returns its leader's PID (as the test host sees it).
fn start_inner_machine(h: &Container) -> String {
    // A container inside the test host, registered with the test host's machined.
    let out = h.sh("systemctl start systemd-machined && \
         mkdir -p /run/inner && mount -t tmpfs tmpfs /run/inner && \
         mkdir -p /run/inner/u /run/inner/w /run/inner/root && \
         mount -t overlay overlay -o lowerdir=/,upperdir=/run/inner/u,workdir=/run/inner/w \
           /run/inner/root && \
         tr -d - < /proc/sys/kernel/random/uuid > /run/inner/root/etc/machine-id && \
         echo inner > /run/inner/root/etc/hostname && \
         rm -f /run/inner/root/etc/ssh/sshd_config.d/logoff-test.conf && \
         systemd-run --unit=inner-machine systemd-nspawn -D /run/inner/root -M inner \
           --register=yes -b --console=pipe -- systemd.unit=logoff-test.target");
    assert_ok(&out, "start the inner machine");
    assert!(
        wait_for(Duration::from_secs(60), || {
            let out = h.exec(&[
                "machinectl",
                "shell",
                "inner",
                "/bin/systemctl",
                "is-system-running",
            ]);
            let said = text(&out.stdout);
            said.contains("running") || said.contains("degraded")
        }),
        "the inner machine never came up"
    );
    text(
        &h.exec(&["machinectl", "show", "inner", "-p", "Leader", "--value"])
            .stdout,
    )
    .trim()
    .to_string()
}

/// Regression: `/VM:NAME` connected, as root, to `/proc/LEADER/root/run/dbus/...`, so an
/// absolute symlink planted inside the machine (which its root, even an unprivileged one,
/// can make) resolved on this host: `--list /VM:inner` showed the host's sessions and
/// `logoff ID /VM:inner` ended a host session. And a machine whose bus is in truth the
/// host's (its leader in the host's namespaces) passed for the machine.
#[test]
#[ignore = "needs root: scripts/test runs it (cargo test -- --include-ignored)"]
fn regression_vm_never_reaches_the_hosts_own_bus() {
    let Some(h) = container::boot("vmhost") else {
        return;
    };
    h.add_user("hostuser");
    let mut host_session = h.ssh("hostuser", "sleep 1020");
    let leader = start_inner_machine(&h);
    assert_ok(
        &h.sh(&format!(
            "nsenter -t {leader} -a sh -c 'rm /run/dbus/system_bus_socket && \
             ln -s /proc/1/root/run/dbus/system_bus_socket /run/dbus/system_bus_socket'"
        )),
        "plant the symlink in the machine",
    );
    let out = h.logoff(&["--list", "--json", "/VM:inner"]);
    assert!(
        !text(&out.stdout).contains("hostuser"),
        "the machine's list shows the host's sessions: {}",
        text(&out.stdout)
    );
    assert_fails(&out, 6, "cannot reach machine inner");
    let out = h.logoff(&["/VM:inner", &host_session.id]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(host_session.is_connected(), "the host's session was ended");
    assert!(h.session_alive(&host_session.id));

    // A machine whose leader runs in the host's own namespaces: the bridge lands on the
    // host's own bus, whose bus ID gives it away.
    let out = h.sh("systemd-run --unit=fake-leader sleep 1021 && sleep 0.3 && \
         pid=$(systemctl show -p MainPID --value fake-leader) && \
         busctl call org.freedesktop.machine1 /org/freedesktop/machine1 \
           org.freedesktop.machine1.Manager RegisterMachine sayssus fake 0 logoff-test \
           container $pid /");
    assert_ok(&out, "register a machine led by a host process");
    let out = h.logoff(&["--list", "--json", "/VM:fake"]);
    assert!(
        !text(&out.stdout).contains("hostuser"),
        "the fake machine's list shows the host's sessions: {}",
        text(&out.stdout)
    );
    assert_fails(&out, 6, "this host's own system bus");
    let out = h.logoff(&["/VM:fake", &host_session.id]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(host_session.is_connected(), "the host's session was ended");
    assert!(
        host_session
            .wait_closed(Duration::from_millis(100))
            .is_none()
    );
}

/// Regression: ssh ran with the user's forwardings (agent, ports from ssh_config) and could
/// stop a whole fleet at a password prompt. Now: no forwarding of any kind, and BatchMode
/// unless `--ask-password`.
#[test]
fn regression_ssh_forwards_nothing_and_asks_nothing_unless_told() {
    let dir = TempDir::new("sshargs");
    let calls = dir.path("calls");
    let fake_ssh = dir.path("ssh");
    std::fs::write(
        &fake_ssh,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 255\n", calls.display()),
    )
    .expect("fake ssh");
    set_mode(&fake_ssh, 0o755);
    let run = |extra: &[&str]| {
        let _ = std::fs::remove_file(&calls);
        let out = std::process::Command::new(logoff_bin())
            .args(["--list", "/SERVER:web1"])
            .args(extra)
            .env("LOGOFF_SSH", &fake_ssh)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
        std::fs::read_to_string(&calls).expect("ssh was called")
    };
    let argv = run(&[]);
    for want in [
        "-xTa",
        "ClearAllForwardings=yes",
        "BatchMode=yes",
        "-- web1 systemd-stdio-bridge",
    ] {
        assert!(argv.contains(want), "{want} missing: {argv}");
    }
    let argv = run(&["--ask-password"]);
    assert!(!argv.contains("BatchMode"), "{argv}");
    assert!(argv.contains("ClearAllForwardings=yes"), "{argv}");
}

/// An "ssh" for which no host has systemd-stdio-bridge, and every host's `logoff
/// --remote-agent` is [`FAKE_AGENT`] answering as the host's name says (`none`: no logoff
/// either); and the file where it writes its command lines.
fn fake_agent_ssh(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let agent = dir.path("agent.py");
    std::fs::write(&agent, FAKE_AGENT).expect("fake agent");
    let calls = dir.path("calls");
    let fake_ssh = dir.path("ssh");
    std::fs::write(
        &fake_ssh,
        format!(
            "#!/bin/sh\necho \"$@\" >> {calls}\n\
             host=$(echo \"$*\" | sed 's/.* -- \\([^ ]*\\).*/\\1/')\n\
             case \"$*\" in\n\
             *systemd-stdio-bridge*) echo 'sh: 1: systemd-stdio-bridge: not found' >&2; exit 127;;\n\
             esac\n\
             [ \"$host\" = none ] && {{ echo 'sh: 1: logoff: not found' >&2; exit 127; }}\n\
             LOGOFF_FAKE_AGENT=$host exec python3 {agent}\n",
            calls = calls.display(),
            agent = agent.display()
        ),
    )
    .expect("fake ssh");
    set_mode(&fake_ssh, 0o755);
    (fake_ssh, calls)
}

/// While logoff waits out a grace period, it pings the remote logoff (which gives up on a
/// silent one after a minute): a grace period longer than that keeps the connection.
#[test]
fn a_grace_period_keeps_the_remote_logoff_with_pings() {
    let dir = TempDir::new("keepalive");
    let (fake_ssh, _) = fake_agent_ssh(&dir);
    let ops = dir.path("ops");
    let logoff = std::process::Command::new(logoff_bin())
        .args(["--grace", "5m", "--message", "hi", "/SERVER:record", "7"])
        .env("LOGOFF_SSH", &fake_ssh)
        .env("LOGOFF_FAKE_OPS", &ops)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logoff");
    let mut logoff = container::Background(logoff);
    let ops_now = || std::fs::read_to_string(&ops).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(30), || ops_now().contains("ping")),
        "no ping: {}",
        ops_now()
    );
    let pid = rustix::process::Pid::from_raw(logoff.0.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let status = logoff.wait(Duration::from_secs(20)).expect("logoff ended");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let seen: Vec<String> = ops_now().lines().map(String::from).collect();
    assert_eq!(
        seen.iter().filter(|o| *o == "warn").count(),
        2,
        "the warning and its cancellation: {seen:?}"
    );
    assert!(!seen.iter().any(|o| o == "terminate"), "{seen:?}");
}

/// A remote "logoff --remote-agent" that answers as `LOGOFF_FAKE_AGENT` says (python3).
const FAKE_AGENT: &str = r#"
import json, os, sys, time
mode = os.environ["LOGOFF_FAKE_AGENT"]
if mode == "old":
    sys.stderr.write("Invalid parameter(s)\nLOGOFF [sessionname | sessionid] ...\n")
    sys.exit(2)
def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
hello = {"reply": "hello", "protocol": 3, "version": "0.2.0", "backend": "logind",
         "about": "org.freedesktop.login1; fake"}
session = {"id": "7", "uid": 1001, "user": "bob", "tty": "pts/0", "display": None,
           "seat": None, "vtnr": None, "state": "active", "class": "user", "kind": "tty",
           "service": "sshd", "remote_host": "192.0.2.7", "remote": True, "idle_since": None,
           "idle_hint": None, "logon_time": None, "leader": 4242, "processes": None,
           "scope": None, "audit": 7, "connected": True, "connected_by": "ssh"}
for line in sys.stdin:
    op = json.loads(line)["op"]
    if mode == "garbage":
        sys.stdout.write("\x1b]0;pwned\x07 hello there\n")
        sys.stdout.flush()
    elif mode == "huge":
        sys.stdout.write("x" * (17 << 20))
        sys.stdout.flush()
    elif mode == "silent":
        pass
    elif mode == "protocol":
        send(dict(hello, protocol=99, version="9.0.0"))
    elif mode == "version":
        send(dict(hello, version="1.0\x1b[2J"))
    elif op == "hello":
        send(hello)
    elif mode == "record":
        with open(os.environ["LOGOFF_FAKE_OPS"], "a") as f:
            f.write(op + "\n")
        if op == "caller":
            send({"reply": "caller", "uid": 0, "name": "root", "is_root": True})
        elif op == "list":
            send({"reply": "sessions", "sessions": [session]})
        elif op == "warn":
            send({"reply": "warned", "reached": ["pts/0"], "missed": []})
        else:
            send({"reply": "done"})
    elif op == "list":
        send({"reply": "sessions", "sessions": [dict(session,
            user="\x1b[31mevil\u202e", remote_host="\x1b]0;pwned\x07")]})
    else:
        send({"reply": "done"})
time.sleep(30 if mode != "record" else 0)
"#;

/// Regression guard for the relay (issue 22): what another host's logoff answers is hostile.
/// Nonsense, a line without end, silence, another protocol, a logoff too old to know
/// `--remote-agent`, and none at all each fail that host alone, in time, with the reason
/// escaped, while the others answer; a session list with escape sequences in it is shown
/// escaped, and kept exact in JSON. (Each fake host answers as its name says.)
#[test]
fn a_remote_logoff_that_answers_nonsense_fails_alone_and_is_shown_escaped() {
    let dir = TempDir::new("fakeagent");
    let (fake_ssh, calls) = fake_agent_ssh(&dir);
    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = std::process::Command::new(logoff_bin())
            .args(args)
            .args(["--connect-timeout", "1s"])
            .env("LOGOFF_SSH", &fake_ssh)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run");
        (out, start.elapsed())
    };
    let failing = [
        ("garbage", "outside logoff's remote protocol"),
        ("huge", "a line longer than"),
        ("silent", "did not answer within"),
        ("protocol", "speaks remote protocol 99"),
        ("version", "outside logoff's remote protocol: a version"),
        ("old", "does not know --remote-agent"),
        ("none", "has neither systemd-stdio-bridge nor logoff"),
    ];
    let names: Vec<&str> = failing.iter().map(|(m, _)| *m).collect();
    let (out, took) = run(&["--list", &format!("/SERVER:hostile,{}", names.join(","))]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let err = text(&out.stderr);
    for (mode, says) in failing {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("logoff: {mode}: ")) && l.contains(says)),
            "{mode}: {says:?} not in:\n{err}"
        );
    }
    assert!(err.contains("7 of 8 hosts failed"), "{err}");
    // A list with escape sequences and a bidi override in it: escaped in the table.
    let table = text(&out.stdout);
    assert!(table.contains("^[[31mevil\\u{202e}"), "{table}");
    for said in [&table, &err] {
        assert!(
            !said.contains('\u{1b}') && !said.contains('\u{202e}'),
            "an escape reached the terminal: {said:?}"
        );
    }
    // The agent is reached as the bridge is: no forwarding, no prompt, `--` before the
    // host, and fixed words after it.
    let argv = std::fs::read_to_string(&calls).expect("calls");
    let agent_call = argv
        .lines()
        .find(|l| l.contains("-- hostile logoff"))
        .expect("the agent was called");
    for want in ["-xTa", "ClearAllForwardings=yes", "BatchMode=yes"] {
        assert!(agent_call.contains(want), "{want} missing: {agent_call}");
    }
    assert!(
        agent_call.ends_with("-- hostile logoff --remote-agent"),
        "{agent_call}"
    );

    // Exact, and escaped, in JSON.
    let (out, _) = run(&["--list", "--json", "/SERVER:hostile"]);
    assert_ok(&out, "JSON list from a hostile agent");
    let raw = text(&out.stdout);
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\u{202e}'),
        "{raw:?}"
    );
    let rows = json_rows(&out);
    assert_eq!(rows[0]["user"], "\u{1b}[31mevil\u{202e}");
    assert_eq!(rows[0]["remote_host"], "\u{1b}]0;pwned\u{7}");
    assert_eq!(rows[0]["agent"], "0.2.0");
}

/// A remote logoff whose other side went silent (its ssh connection hangs, nothing closes
/// it) exits once no request has come for its idle time (six keepalives: 60 s), having
/// done nothing: nothing of a cancelled logoff stays running on a host.
#[test]
fn a_remote_agent_nobody_talks_to_exits_on_its_own() {
    let start = Instant::now();
    let mut agent = std::process::Command::new(logoff_bin())
        .arg("--remote-agent")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start logoff --remote-agent");
    // Its input stays open, and silent.
    let _input = agent.stdin.take();
    let exited = wait_for(Duration::from_secs(90), || {
        agent.try_wait().ok().flatten().is_some()
    });
    let took = start.elapsed();
    if !exited {
        let _ = agent.kill();
    }
    let out = agent.wait_with_output().expect("its output");
    assert!(exited, "still running after {took:?}");
    assert!(took >= Duration::from_secs(59), "gave up after {took:?}");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no request for 1m"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "it answered: {}", text(&out.stdout));
}
