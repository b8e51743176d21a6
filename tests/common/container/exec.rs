//! Running things inside a test host: commands, logoff, logind's own tools.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Container, Kind};
use crate::common::{text, wait_for};

impl Container {
    pub(super) fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid1.to_string(), "-a"]);
        cmd
    }

    /// Runs a command inside the container (as root, in no session).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.nsenter()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    pub(super) fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Option<Output> {
        let mut child = self
            .nsenter()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return child.wait_with_output().ok();
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines of the test host's log (its journal, or what syslog wrote), for
    /// diagnostics.
    pub fn log_tail(&self, n: usize) -> String {
        let n = n.to_string();
        let out = match self.kind {
            Kind::Systemd => self.exec(&["journalctl", "--no-pager", "-n", &n]),
            Kind::Elogind => self.exec(&["tail", "-n", &n, "/var/log/syslog", "/var/log/auth.log"]),
        };
        text(&out.stdout)
    }

    /// logoff's audit records on the test host, oldest first, each as the journal gives it
    /// (`MESSAGE` and the `LOGOFF_*` fields). On an elogind host they are read back from
    /// where syslog wrote them (`/var/log/auth.log`: facility authpriv), with `LOGOFF_HOST`
    /// and `LOGOFF_SESSION` restricting them as `journalctl` matches would.
    pub fn audit_records(&self, matches: &[(&str, &str)]) -> Vec<serde_json::Value> {
        match self.kind {
            Kind::Systemd => {
                let mut args = vec![
                    "journalctl".to_string(),
                    "--no-pager".into(),
                    "-o".into(),
                    "json".into(),
                    "SYSLOG_IDENTIFIER=logoff".into(),
                ];
                args.extend(matches.iter().map(|(k, v)| format!("{k}={v}")));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = self.exec(&args);
                text(&out.stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            }
            Kind::Elogind => {
                let out = self.exec(&["cat", "/var/log/auth.log"]);
                text(&out.stdout)
                    .lines()
                    .filter_map(|l| syslog_record(l, "logoff"))
                    .filter(|r| matches.iter().all(|(k, v)| r[*k] == *v))
                    .collect()
            }
        }
    }

    /// Runs a shell script inside the container.
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    /// Runs logoff inside the container as root (outside any session).
    pub fn logoff(&self, args: &[&str]) -> Output {
        let mut all = vec!["/usr/local/bin/logoff"];
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// Runs logoff inside the container as root, with `env` set.
    pub fn logoff_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all = vec!["env"];
        all.extend(vars.iter().map(String::as_str));
        all.push("/usr/local/bin/logoff");
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// `logoff --list --json` inside the container, parsed.
    pub fn sessions(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["--list", "--json"];
        args.extend_from_slice(extra);
        let out = self.logoff(&args);
        assert!(out.status.success(), "logoff --list: {}", text(&out.stderr));
        match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            Ok(serde_json::Value::Array(rows)) => rows,
            other => panic!("logoff --list --json printed {other:?}"),
        }
    }

    /// Waits until a session listed by logind satisfies `pred`; returns it.
    pub fn wait_session(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let mut found = None;
        wait_for(Duration::from_secs(15), || {
            found = self.sessions(&[]).into_iter().find(|s| pred(s));
            found.is_some()
        });
        found.expect("the session never appeared")
    }

    /// PIDs (as seen inside) of processes whose command line contains `marker`.
    pub fn pids_matching(&self, marker: &str) -> Vec<i32> {
        let out = self.exec(&["pgrep", "-f", marker]);
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `loginctl show-session ID -p Key --value`, or `None` if logind knows no such session.
    pub fn loginctl_property(&self, id: &str, key: &str) -> Option<String> {
        let out = self.exec(&["loginctl", "show-session", id, "-p", key, "--value"]);
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    }

    /// Whether loginctl still lists the session as online or active.
    pub fn session_alive(&self, id: &str) -> bool {
        matches!(
            self.loginctl_property(id, "State").as_deref(),
            Some("online" | "active")
        )
    }
}

/// One record logoff (or logoffd) wrote to syslog, as a journal entry would have it:
/// `... IDENT[PID]: MESSAGE [LOGOFF_A=x LOGOFF_B=y]` gives `MESSAGE` and the fields.
pub fn syslog_record(line: &str, ident: &str) -> Option<serde_json::Value> {
    let at = line.find(&format!(" {ident}["))?;
    let rest = &line[at + ident.len() + 2..];
    let (_, rest) = rest.split_once("]: ")?;
    let mut record = serde_json::Map::new();
    let (message, fields) = match rest.rfind(" [LOGOFF_") {
        Some(i) if rest.ends_with(']') => (&rest[..i], &rest[i + 2..rest.len() - 1]),
        _ => (rest, ""),
    };
    record.insert("MESSAGE".into(), message.into());
    let mut key: Option<String> = None;
    let mut value = String::new();
    for word in fields.split(' ') {
        match word.split_once('=') {
            Some((k, v)) if k.starts_with("LOGOFF_") => {
                if let Some(k) = key.take() {
                    record.insert(k, std::mem::take(&mut value).into());
                }
                key = Some(k.to_string());
                value = v.to_string();
            }
            _ => {
                value.push(' ');
                value.push_str(word);
            }
        }
    }
    if let Some(k) = key {
        record.insert(k, value.into());
    }
    Some(serde_json::Value::Object(record))
}
