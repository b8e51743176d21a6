//! Disconnect with logind (see [`crate::backend::connection`]). On this host, as root, the
//! connection's processes are found and ended through pidfds. Elsewhere — another host's
//! bus, or a user ending their own session's connection, who may not look into sshd's
//! processes — an ssh session's connection is its leader: the process that opened it with
//! logind (sshd's privileged monitor, which passes SIGTERM on to its child for the
//! connection). logind signals it (`KillSession(id, "leader", SIGTERM)`, which a session's
//! own user may ask), and the connection has ended once logind says the session is
//! `closing`. An RDP session's leader is its whole desktop: only root on its host can end
//! its connection alone.

use std::time::{Duration, Instant};

use super::Locality;
use super::Logind;
use super::props::{action_error, get_str, vanished};
use crate::backend::{Cut, connection};
use crate::error::{Error, Kind, Result};
use crate::model::Session;

/// After SIGKILL to the leader, how long logind gets to say the session is closing.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often logind is asked whether the session is closing.
const POLL: Duration = Duration::from_millis(100);

impl Logind {
    pub(super) fn disconnect_one(&mut self, s: &Session, timeout: Duration) -> Result<Cut> {
        let root_here = self.locality == Locality::ThisHost && rustix::process::geteuid().is_root();
        if root_here {
            let members = self.pids_here(s);
            let Some(membership) = super::membership(s) else {
                return Err(Error::new(
                    Kind::NoConnection,
                    format!(
                        "{} has no connection to end (logind gives it neither a scope nor an \
                         audit session to follow it by); nothing was done",
                        s.describe()
                    ),
                ));
            };
            return connection::cut(s, &members, &membership, timeout);
        }
        if s.xrdp {
            return Err(Error::new(
                Kind::AccessDenied,
                format!(
                    "cannot disconnect {}: only root on its host can end an RDP client's \
                     connection alone (xrdp's process for it is root's)",
                    s.describe()
                ),
            ));
        }
        if s.service.as_deref() != Some("sshd") || !s.remote {
            return Err(Error::new(
                Kind::NoConnection,
                format!(
                    "{} has no connection to end (it is not an ssh login); nothing was done",
                    s.describe()
                ),
            ));
        }
        self.disconnect_leader(s, timeout)
    }

    /// SIGTERM to the session's leader, `timeout`, SIGKILL: done once logind says closing.
    fn disconnect_leader(&mut self, s: &Session, timeout: Duration) -> Result<Cut> {
        if !self.is_open(s)? {
            return Err(Error::new(
                Kind::NoConnection,
                format!(
                    "{} has no connection to end (it is already closing); nothing was done",
                    s.describe()
                ),
            ));
        }
        let start = Instant::now();
        self.signal_leader(s, 15)?;
        let mut forced = false;
        if !self.closes_within(s, timeout)? {
            forced = true;
            self.signal_leader(s, 9)?;
            if !self.closes_within(s, KILL_WAIT)? {
                return Err(Error::new(
                    Kind::Survivors,
                    format!(
                        "the connection of {} did not end: logind still has it open after \
                         SIGKILL to its leader",
                        s.describe()
                    ),
                ));
            }
        }
        Ok(Cut {
            ended: 1,
            client: s.remote_host.clone(),
            forced,
            elapsed: start.elapsed(),
        })
    }

    fn signal_leader(&self, s: &Session, signal: i32) -> Result<()> {
        let manager = self.manager()?;
        match zbus::block_on(manager.kill_session(s.id.as_str(), "leader", signal)) {
            Ok(()) => Ok(()),
            Err(e) if vanished(&e) => Ok(()),
            Err(e) => Err(action_error(self.locality, &e)),
        }
    }

    /// Whether logind says the session is still open (not closing, not gone).
    fn is_open(&self, s: &Session) -> Result<bool> {
        let path = super::session_path(&s.id);
        match zbus::block_on(super::properties(&self.conn, path)) {
            Ok(props) => Ok(get_str(&props, "State") != "closing"),
            Err(e) if vanished(&e) => Ok(false),
            Err(e) => Err(action_error(self.locality, &e)),
        }
    }

    fn closes_within(&self, s: &Session, wait: Duration) -> Result<bool> {
        let end = Instant::now() + wait;
        loop {
            if !self.is_open(s)? {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }
}
