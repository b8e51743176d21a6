//! Ansible for the tests and benchmarks of the collection (`contrib/ansible`): ansible-core
//! where scripts/test installs it, an inventory naming test hosts, and the results of a
//! playbook run as JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::container::Container;
use super::{TempDir, require};

/// Where scripts/test installs ansible-core (a virtual environment of Debian's Python).
pub const VENV: &str = "/var/tmp/logoff-ansible";

pub fn collections() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ansible")
}

pub fn playbooks() -> PathBuf {
    collections().join("tests/playbooks")
}

pub fn deb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/packages/logoff_{}_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ))
}

/// What the test needs beyond root, or why it cannot run.
pub fn ready(test: &str) -> bool {
    if !super::require_root_or_skip(test) {
        return false;
    }
    let playbook = Path::new(VENV).join("bin/ansible-playbook");
    if !playbook.exists() {
        return require(
            test,
            Err(format!(
                "{} is missing: scripts/test installs it",
                playbook.display()
            )),
        );
    }
    if !deb().exists() {
        return require(
            test,
            Err(format!(
                "{} is missing: run scripts/package",
                deb().display()
            )),
        );
    }
    true
}

/// An inventory and configuration naming the test hosts `h1`, `h2`, `h3` (group `fleet`).
pub struct Inventory {
    dir: TempDir,
}

impl Inventory {
    pub fn new(hosts: &[&Container]) -> Inventory {
        let dir = TempDir::new("ansible");
        let mut inventory = String::from("[fleet]\n");
        for (i, c) in hosts.iter().enumerate() {
            inventory.push_str(&format!(
                "h{} ansible_host=127.0.0.1 ansible_port={} ansible_user=root \
                 ansible_ssh_private_key_file={} ansible_python_interpreter=/usr/bin/python3\n",
                i + 1,
                c.ssh_port,
                c.key.display()
            ));
        }
        std::fs::write(dir.path("inventory"), inventory).expect("inventory");
        std::fs::write(
            dir.path("ansible.cfg"),
            "[defaults]\nhost_key_checking = False\nforks = 10\n\
             [ssh_connection]\nssh_args = -o UserKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=no -o IdentitiesOnly=yes -o ControlMaster=no\n",
        )
        .expect("ansible.cfg");
        Inventory { dir }
    }

    /// `ansible-playbook PLAYBOOK -e VARS`, its results as JSON (the tests' callback).
    pub fn play(&self, playbook: &str, vars: &[(&str, &str)]) -> (Output, Value) {
        let mut cmd = Command::new(Path::new(VENV).join("bin/ansible-playbook"));
        cmd.arg("-i")
            .arg(self.dir.path("inventory"))
            .arg(playbooks().join(playbook))
            .env("ANSIBLE_CONFIG", self.dir.path("ansible.cfg"))
            .env("ANSIBLE_COLLECTIONS_PATH", collections())
            .env("ANSIBLE_STDOUT_CALLBACK", "results_json")
            .env(
                "ANSIBLE_CALLBACK_PLUGINS",
                collections().join("tests/callback_plugins"),
            )
            .env("ANSIBLE_LOCAL_TEMP", self.dir.path("tmp"))
            .env("HOME", self.dir.path(""));
        for (k, v) in vars {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        let out = cmd.output().expect("ansible-playbook");
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, json)
    }
}

/// The results of task `name` by host, in a json callback's output.
pub fn task(report: &Value, name: &str) -> serde_json::Map<String, Value> {
    report["plays"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["tasks"].as_array().into_iter().flatten())
        // A role's tasks are named `ROLE : NAME`.
        .find(|t| {
            t["task"]["name"]
                .as_str()
                .is_some_and(|n| n == name || n.ends_with(&format!(" : {name}")))
        })
        .and_then(|t| t["hosts"].as_object().cloned())
        .unwrap_or_else(|| panic!("no task {name:?} in {report}"))
}
