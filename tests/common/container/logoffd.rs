//! logoffd in a test host as a package installs it: the binary at /usr/sbin/logoffd, the
//! repository's unit, a policy at /etc/logoff/policy.toml; started by systemd.

use super::Container;
use crate::common::{logoffd_bin, set_mode, text};

const UNIT: &str = include_str!("../../../packaging/systemd/logoffd.service");

impl Container {
    /// Installs logoffd (binary, unit, policy) and starts it with systemd; `args` are added
    /// to its command line (`--backend procfs`, say).
    pub fn install_logoffd(&self, policy: &str, args: &str) {
        let bin = self.root.join("usr/sbin/logoffd");
        std::fs::copy(logoffd_bin(), &bin).expect("copy logoffd");
        set_mode(&bin, 0o755);
        let unit = UNIT.replace(
            "ExecStart=/usr/sbin/logoffd",
            &format!("ExecStart=/usr/sbin/logoffd {args}"),
        );
        std::fs::write(self.root.join("etc/systemd/system/logoffd.service"), unit).expect("unit");
        self.write_policy(policy);
        let out = self.sh("systemctl daemon-reload && systemctl start logoffd");
        assert!(
            out.status.success(),
            "logoffd did not start: {}\n{}",
            text(&out.stderr),
            self.logoffd_journal()
        );
        assert_eq!(self.logoffd_state(), "active", "{}", self.logoffd_journal());
    }

    pub fn write_policy(&self, policy: &str) {
        let dir = self.root.join("etc/logoff");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("policy.toml"), policy).expect("policy");
        set_mode(&dir.join("policy.toml"), 0o644);
    }

    /// `systemctl is-active logoffd`.
    pub fn logoffd_state(&self) -> String {
        text(&self.exec(&["systemctl", "is-active", "logoffd"]).stdout)
            .trim()
            .to_string()
    }

    /// logoffd's own lines in the test host's journal.
    pub fn logoffd_journal(&self) -> String {
        text(
            &self
                .exec(&["journalctl", "--no-pager", "-u", "logoffd", "-o", "cat"])
                .stdout,
        )
    }
}

/// A policy with one rule, `short`, for `users`, with `limits`; looked at every 2 s.
pub fn policy_for(users: &[&str], limits: &str) -> String {
    let names: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "scan_interval = \"2s\"\n[[rule]]\nname = \"short\"\nmatch = {{ users = [{}] }}\n\
         timeout = \"2s\"\n{limits}\n",
        names.join(", ")
    )
}
