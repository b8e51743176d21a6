//! Users made for one test, removed afterwards.

use std::process::Command;
use std::time::Duration;

use super::text;

/// A user made for one test, removed afterwards (with anything it still runs).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// A new user with a uid of its own: never one a previous test used, whose zombies (this
    /// machine's init reaps orphans lazily) would still count against RLIMIT_NPROC.
    pub fn create(tag: &str) -> TestUser {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT_UID: AtomicU32 = AtomicU32::new(0);
        let _ = NEXT_UID.compare_exchange(
            0,
            40_000 + (std::process::id() % 2_000) * 16,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let name = format!("lgt{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).output();
        let mut last = String::new();
        for _ in 0..50 {
            let uid = NEXT_UID.fetch_add(1, Ordering::SeqCst).to_string();
            // useradd takes a lock on /etc/passwd; parallel tests may meet there.
            let out = Command::new("useradd")
                .args([
                    "-M", "-N", "-g", "nogroup", "-s", "/bin/sh", "-u", &uid, &name,
                ])
                .output()
                .expect("run useradd");
            if out.status.success() {
                let id = |flag: &str| -> u32 {
                    let out = Command::new("id").args([flag, &name]).output().expect("id");
                    text(&out.stdout).trim().parse().expect("numeric id")
                };
                return TestUser {
                    uid: id("-u"),
                    gid: id("-g"),
                    name,
                };
            }
            last = text(&out.stderr);
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("useradd {name} failed: {last}");
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-U", &self.uid.to_string()])
            .status();
        for _ in 0..50 {
            let out = Command::new("userdel").arg(&self.name).output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
