//! Several test hosts at once, and an ssh configuration that names them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::{Container, Kind};
use crate::common::{TempDir, logoff_bin, require, set_mode};

/// Boots `n` (systemd) test hosts at once (each boot mostly waits); `None` as for
/// [`super::boot`].
pub fn boot_many(test: &str, n: usize) -> Option<Vec<Container>> {
    boot_kinds(test, &vec![Kind::Systemd; n])
}

/// Boots one test host of each of `kinds` at once, in that order; `None` as for
/// [`super::boot`].
pub fn boot_kinds(test: &str, kinds: &[Kind]) -> Option<Vec<Container>> {
    if !crate::common::require_root_or_skip(test) {
        return None;
    }
    // Launched from this thread (nspawn dies with the thread that starts it), then waited
    // for together: they boot at the same time.
    let launched: Vec<Result<Container, String>> = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| Container::launch(&format!("{test}{i}"), kind))
        .collect();
    let results: Vec<Result<Container, String>> = launched
        .into_iter()
        .map(|r| {
            r.and_then(|mut c| {
                c.wait_ready()?;
                Ok(c)
            })
        })
        .collect();
    let mut hosts = Vec::new();
    for r in results {
        match r {
            Ok(c) => hosts.push(c),
            Err(why) => {
                require(test, Err(format!("cannot boot a test host: {why}")));
                return None;
            }
        }
    }
    Some(hosts)
}

/// An ssh configuration that names test hosts (`Host ALIAS` → loopback port, root, test key),
/// and an ssh wrapper that uses it, for `LOGOFF_SSH` (or, as `ssh` first in `PATH`, for
/// `loginctl -H`).
pub struct Fleet {
    pub dir: TempDir,
    pub aliases: Vec<String>,
}

impl Fleet {
    pub fn new(hosts: &[&Container], prefix: &str) -> Fleet {
        let dir = TempDir::new("fleet");
        let mut config = String::new();
        let mut aliases = Vec::new();
        for (i, c) in hosts.iter().enumerate() {
            let alias = format!("{prefix}{}", i + 1);
            config.push_str(&format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n",
                c.ssh_port,
                c.key.display()
            ));
            aliases.push(alias);
        }
        config.push_str(
            "Host *\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
             UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
        );
        std::fs::write(dir.path("ssh_config"), config).expect("write ssh config");
        let wrapper = dir.path("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                dir.path("ssh_config").display()
            ),
        )
        .expect("write ssh wrapper");
        set_mode(&wrapper, 0o755);
        Fleet { dir, aliases }
    }

    /// Adds a host alias that points at `port` on loopback (a host that is down, or hangs).
    pub fn add_alias(&mut self, alias: &str, port: u16) {
        let path = self.dir.path("ssh_config");
        let old = std::fs::read_to_string(&path).expect("read ssh config");
        std::fs::write(
            &path,
            format!("Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n{old}"),
        )
        .expect("write ssh config");
        self.aliases.push(alias.to_string());
    }

    pub fn ssh(&self) -> PathBuf {
        self.dir.path("ssh")
    }

    /// Runs logoff on this machine with the fleet's ssh.
    pub fn logoff(&self, args: &[&str]) -> Output {
        Command::new(logoff_bin())
            .args(args)
            .env("LOGOFF_SSH", self.ssh())
            .stdin(Stdio::null())
            .output()
            .expect("run logoff")
    }
}
