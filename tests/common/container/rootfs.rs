//! A test host's root: this machine's own, overlaid, with a fresh machine ID, an sshd on a
//! loopback port of its own, the test key authorized, the built logoff in
//! `/usr/local/bin`; and systemd-nspawn booting it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Container, Kind, TARGET, run};
use crate::common::{logoff_bin, set_mode};

impl Container {
    pub(super) fn write(&self, path: &str, content: &str) -> Result<(), String> {
        let p = self.root.join(path.trim_start_matches('/'));
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub(super) fn prepare_root(&self) -> Result<(), String> {
        // A fresh machine ID (nspawn refuses the host's own).
        let machine_id: String = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map_err(|e| format!("uuid: {e}"))?
            .trim()
            .replace('-', "");
        self.write("/etc/machine-id", &format!("{machine_id}\n"))?;
        self.write("/etc/hostname", &format!("{}\n", self.name))?;
        self.write(
            "/etc/ssh/sshd_config.d/logoff-test.conf",
            &format!(
                "Port {}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\n",
                self.ssh_port
            ),
        )?;
        if self.kind == Kind::Systemd {
            self.write("/etc/systemd/system/logoff-test.target", TARGET)?;
        }
        // The host may not have host keys (sshd never ran here): make them for the guest.
        if !Path::new("/etc/ssh/ssh_host_ed25519_key").exists() {
            run(Command::new("ssh-keygen").args(["-A", "-f", &self.root.display().to_string()]))?;
        }
        let bin = self.root.join("usr/local/bin/logoff");
        std::fs::create_dir_all(self.root.join("usr/local/bin")).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&bin);
        std::fs::copy(logoff_bin(), &bin).map_err(|e| format!("copy logoff: {e}"))?;
        set_mode(&bin, 0o755);
        run(Command::new("ssh-keygen").args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &self.key.display().to_string(),
        ]))?;
        let pubkey = std::fs::read_to_string(self.key.with_extension("pub"))
            .map_err(|e| format!("read key: {e}"))?;
        self.write("/root/.ssh/authorized_keys", &pubkey)?;
        set_mode(&self.root.join("root/.ssh"), 0o700);
        set_mode(&self.root.join("root/.ssh/authorized_keys"), 0o600);
        Ok(())
    }

    pub(super) fn start(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.base.join("console.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        // nspawn first moves itself into the test host's own cgroups (see `cgroup`).
        let procs = match super::cgroup::Own::make(&self.name).and_then(|own| {
            let procs = own.procs()?;
            self.cgroup = Some(own);
            Ok(procs)
        }) {
            Ok(procs) => procs,
            Err(e) => {
                eprintln!(
                    "test host {}: no cgroup of its own ({e}): it shares this one",
                    self.name
                );
                String::new()
            }
        };
        let mut nspawn = Command::new("sh");
        nspawn
            .args([
                "-c",
                r#"for f in $LOGOFF_TEST_CGROUPS; do echo $$ > "$f" || exit 97; done; exec "$@""#,
                "sh",
                "setpriv",
            ])
            .env("LOGOFF_TEST_CGROUPS", procs)
            .args(["--pdeathsig", "SIGTERM", "--", "systemd-nspawn", "-D"])
            .arg(&self.root)
            .args([
                "-M",
                &self.name,
                "--register=no",
                "--keep-unit",
                "--link-journal=no",
                "-b",
                "--console=pipe",
            ]);
        match self.kind {
            Kind::Systemd => {
                nspawn.args(["--", "systemd.unit=logoff-test.target"]);
            }
            // elogind needs a cgroup2 hierarchy of its own, whatever this machine mounts.
            Kind::Elogind => {
                nspawn.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1");
            }
        }
        let child = nspawn
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("systemd-nspawn: {e}"))?;
        self.nspawn = Some(child);
        Ok(())
    }
}
