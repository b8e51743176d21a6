//! RDP logins to a test host: xrdp (0.9, with xorgxrdp) inside it, xfreerdp under Xvfb on
//! this machine as the client.
//!
//! xrdp's session manager listens on [::1]:3350 and the X servers' abstract sockets are
//! shared with this machine (the test hosts share its network namespace): only one xrdp
//! test host may run at a time: a test takes [`one_at_a_time`] before it boots one.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::Container;
use crate::common::{text, wait_for};

/// One xrdp test host at a time (per test binary; test binaries run one after another).
static XRDP_HOST: Mutex<()> = Mutex::new(());

/// The password of every RDP test user.
pub const PASSWORD: &str = "rdp-test-secret";

/// The program each RDP session runs (`~/.xsession`): a terminal with a marked command.
pub const MARKER: &str = "900.5";

/// Taken first by every test that runs xrdp, held until its test host is gone.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    XRDP_HOST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A test host running xrdp on a loopback port.
pub struct RdpHost {
    pub port: u16,
}

impl Container {
    /// Starts xrdp in this test host on a free loopback port (the recipe of issue 12).
    pub fn start_xrdp(&self) -> Result<RdpHost, String> {
        for tool in [
            "xrdp",
            "xrdp-sesman",
            "Xvfb",
            "xfreerdp",
            "xterm",
            "xwininfo",
        ] {
            let found = self.sh(&format!("command -v {tool}"));
            if !found.status.success() {
                return Err(format!("{tool} is not installed"));
            }
        }
        if std::net::TcpStream::connect("[::1]:3350").is_ok() {
            return Err(
                "something on this machine listens on [::1]:3350 already (an \
                        xrdp-sesman?), where the test host's would: stop it"
                    .into(),
            );
        }
        let port = super::free_port()?;
        let script = format!(
            "set -e; systemctl unmask xrdp xrdp-sesman >/dev/null 2>&1 || true; \
             usermod -aG ssl-cert xrdp; \
             sed -i 's|^port=3389$|port=tcp://127.0.0.1:{port}|' /etc/xrdp/xrdp.ini; \
             grep -q '^port=tcp://127.0.0.1:{port}$' /etc/xrdp/xrdp.ini; \
             : > /var/log/xrdp.log; systemctl start xrdp-sesman xrdp"
        );
        let out = self.sh(&script);
        if !out.status.success() {
            return Err(format!("xrdp did not start: {}", text(&out.stderr)));
        }
        // It listens about 2 s after `systemctl start` returns.
        let up = wait_for(Duration::from_secs(30), || {
            let log = self.exec(&["cat", "/var/log/xrdp.log"]);
            text(&log.stdout).contains("starting xrdp with pid")
        });
        if !up {
            let log = self.exec(&["journalctl", "--no-pager", "-n", "30", "-u", "xrdp"]);
            return Err(format!("xrdp never listened: {}", text(&log.stdout)));
        }
        Ok(RdpHost { port })
    }

    /// Makes a user who can log in over RDP, whose session runs a terminal running
    /// `sleep 900.5` (the marker); returns its uid.
    pub fn add_rdp_user(&self, name: &str) -> u32 {
        let uid = self.add_user(name);
        let out = self.sh(&format!(
            "echo '{name}:{PASSWORD}' | chpasswd && \
             printf '#!/bin/sh\\nexec xterm -e sleep {MARKER}\\n' > ~{name}/.xsession && \
             chmod 755 ~{name}/.xsession && chown {name}: ~{name}/.xsession"
        ));
        assert!(
            out.status.success(),
            "rdp user {name}: {}",
            text(&out.stderr)
        );
        uid
    }

    /// What windows the X display `display` of `user` shows (`xwininfo -root -tree`, run as
    /// that user with their cookie, outside any PAM session).
    pub fn windows_on(&self, user: &str, display: &str) -> String {
        let out = self.sh(&format!(
            "setpriv --reuid={user} --regid={user} --init-groups \
             env DISPLAY={display} XAUTHORITY=$(getent passwd {user} | cut -d: -f6)/.Xauthority \
             xwininfo -root -tree"
        ));
        text(&out.stdout)
    }
}

/// An X server on this machine for RDP clients to draw on.
pub struct Screen {
    pub display: String,
    xvfb: Child,
}

impl Screen {
    pub fn start() -> Screen {
        let number = 200 + std::process::id() % 100;
        let display = format!(":{number}");
        let xvfb = Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let up = wait_for(Duration::from_secs(10), || {
            std::fs::metadata(format!("/tmp/.X11-unix/X{number}")).is_ok()
        });
        assert!(up, "Xvfb {display} never started");
        Screen { display, xvfb }
    }

    /// Logs `user` in over RDP to the host's xrdp: an xfreerdp client on this screen.
    pub fn connect(&self, host: &RdpHost, user: &str) -> RdpClient {
        let child = Command::new("xfreerdp")
            .arg(format!("/v:127.0.0.1:{}", host.port))
            .arg(format!("/u:{user}"))
            .arg(format!("/p:{PASSWORD}"))
            .args(["/cert:ignore", "/size:800x600"])
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xfreerdp");
        RdpClient(child)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// An RDP client; killing it (or dropping it) disconnects its session.
pub struct RdpClient(Child);

impl RdpClient {
    /// Whether the client exits (its connection ended) within `timeout`.
    pub fn exited(&mut self, timeout: Duration) -> bool {
        crate::common::wait_exit(&mut self.0, timeout).is_some()
    }

    pub fn disconnect(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RdpClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
