//! The logind backend: systemd-logind or elogind over D-Bus (`org.freedesktop.login1`), the
//! source of truth for sessions where it runs.
//!
//! It works on whatever bus it is given ([`Bus`]): this host's ([`Bus::system`]), or
//! another host's or a machine's, as [`crate::remote`] connects to it. Sessions come from `ListSessionsEx` where logind has it, else
//! `ListSessions`, and their properties from one `GetAll` per session, all sent before any
//! reply is awaited ([`props`]). A session that vanishes while being listed is skipped.
//!
//! Logging off ([`end`]): `TerminateSession` (systemd stops the session's scope: SIGTERM and
//! SIGHUP to every process), then waiting until no process of the scope is left
//! ([`members`]); after the timeout, `KillSession(id, "all", SIGKILL)`. logind keeps a
//! session object in state `closing` for a while after its processes are gone: done means no
//! process left and the session closing or removed.
//!
//! Privilege is logind's and polkit's to decide. Before anything is touched, logoff asks polkit
//! the question logind will ask (`org.freedesktop.login1.manage`), so that one refusal among
//! several targets leaves all of them untouched; AccessDenied and
//! InteractiveAuthorizationRequired from logind itself mean the same "access denied".

mod bus;
mod disconnect;
mod end;
mod members;
mod props;
mod warn;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use zbus::{Connection, OwnedObjectPath};

use super::activity;
use super::procfs::Procfs;
use super::{Backend, Flavor, Signalled, Sources, Warned, access_denied, deliver_locally};
use crate::deadline::Deadline;
use crate::desktop::Desktops;
use crate::error::{Error, Result};
use crate::model::{Inhibitor, Pid, ProcessInfo, Session, SessionId, Uid};
use crate::system::process::{Look, Membership, Proc};
use crate::system::tty;
use crate::system::users::Caller;
use bus::{MANAGE_ACTION, ManagerProxy, PolkitProxy, properties, session_path};
use members::{Followed, Source, audit_view};
use props::{bus_error, denied, get_str, session_from, unknown_method, vanished};

/// How long a method call may take before the bus counts as not answering.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// What a bus connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// This host's own system bus: its PIDs are ours, to follow through pidfds and cgroups.
    ThisHost,
    /// Another host, or a machine: its PIDs mean nothing here, and its failures are a
    /// remote host's (exit status 6).
    Elsewhere,
}

/// A bus connection to logind, and what carries it (the ssh or bridge process it runs
/// through, if any), kept alive with it.
pub struct Bus {
    pub conn: Connection,
    pub locality: Locality,
    /// Ended when dropped (see [`crate::remote`]).
    pub carrier: Option<Box<dyn Send>>,
}

impl Bus {
    /// This host's system bus.
    pub fn system() -> Result<Bus> {
        Ok(Bus {
            conn: system_bus()?,
            locality: Locality::ThisHost,
            carrier: None,
        })
    }
}

/// This host's system bus, as a connection.
pub fn system_bus() -> Result<Connection> {
    zbus::block_on(async {
        zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(|e| Error::system(format!("cannot connect to the system bus: {e}")))
    })
}

/// How long to wait, once no process is left, for logind to mark the session closing.
const CLOSING_WAIT: Duration = Duration::from_millis(2000);

/// How often logind is asked whether a session is closing yet.
const CLOSING_POLL: Duration = Duration::from_millis(10);

/// The logind backend.
pub struct Logind {
    conn: Connection,
    /// What the bus reaches: on this host's own, its PIDs are ours to watch through pidfds.
    locality: Locality,
    own_pid: Pid,
    /// Per session being ended: where its processes are read from, and pidfds on them.
    trackers: HashMap<SessionId, Followed>,
    /// The caller's own session, once asked.
    current: Option<Option<SessionId>>,
    /// The ssh (or bridge) process the connection runs through, if any: kept alive with it.
    _carrier: Option<Box<dyn Send>>,
    /// For sessions without a scope on this host: the procfs backend, by audit session ID
    /// (made when first needed; `None` inside on a kernel without audit session IDs).
    audit: Option<Option<Procfs>>,
    /// This host's displays: xrdp sessions, X servers, warning windows.
    desktops: Desktops,
    /// Reached over ssh, by a bridge that runs in an ssh login there (not a machine's bus,
    /// whose bridge runs outside it).
    over_ssh: bool,
}

impl Logind {
    /// Uses logind on `bus`, after checking that it answers (activating it if the bus can).
    pub fn new(bus: Bus) -> Result<Logind> {
        let backend = Logind {
            conn: bus.conn,
            locality: bus.locality,
            own_pid: Pid::own(),
            trackers: HashMap::new(),
            current: None,
            _carrier: bus.carrier,
            audit: None,
            desktops: Desktops::default(),
            over_ssh: false,
        };
        zbus::block_on(async {
            let proxy = zbus::fdo::PeerProxy::builder(&backend.conn)
                .destination("org.freedesktop.login1")
                .path("/org/freedesktop/login1")
                .build()
                .await?;
            proxy.ping().await
        })
        .map_err(|e| bus_error(backend.locality, &e, "logind does not answer on the bus"))?;
        Ok(backend)
    }

    /// Marks the bus as another host's, reached over ssh (see [`Backend::carrier`]).
    pub fn over_ssh(mut self) -> Logind {
        self.over_ssh = true;
        self
    }

    /// Every session as logind tells it.
    fn list_from_logind(&self) -> Result<Vec<Session>> {
        let locality = self.locality;
        zbus::block_on(async {
            let manager = ManagerProxy::new(&self.conn)
                .await
                .map_err(|e| bus_error(locality, &e, "cannot reach logind"))?;
            let listed: Vec<(String, OwnedObjectPath)> = match manager.list_sessions_ex().await {
                Ok(list) => list.into_iter().map(|s| (s.0, s.9)).collect(),
                // Older logind has no ListSessionsEx; the bus policy of some refuses what it
                // does not know to unprivileged callers (AccessDenied) rather than saying so.
                Err(e) if unknown_method(&e) || denied(&e) => manager
                    .list_sessions()
                    .await
                    .map_err(|e| bus_error(locality, &e, "cannot list sessions"))?
                    .into_iter()
                    .map(|s| (s.0, s.4))
                    .collect(),
                Err(e) => return Err(bus_error(locality, &e, "cannot list sessions")),
            };
            // Every GetAll goes out before any reply is awaited.
            let replies = join_all(
                listed
                    .iter()
                    .map(|(_, path)| properties(&self.conn, path.clone())),
            )
            .await;
            let mut sessions = Vec::new();
            for ((id, _), reply) in listed.into_iter().zip(replies) {
                match reply {
                    Ok(props) => sessions.push(session_from(&props)),
                    // Gone between the list and the question: it is not a session any more.
                    Err(e) if vanished(&e) => {}
                    Err(e) => {
                        return Err(bus_error(
                            locality,
                            &e,
                            &format!("cannot read session {id}"),
                        ));
                    }
                }
            }
            Ok(sessions)
        })
    }

    fn manager(&self) -> Result<ManagerProxy<'_>> {
        zbus::block_on(ManagerProxy::new(&self.conn))
            .map_err(|e| bus_error(self.locality, &e, "cannot reach logind"))
    }

    fn is_own(&mut self, session: &Session) -> bool {
        self.own_session().as_ref() == Some(&session.id)
    }

    /// The session logoff runs in (asked once): logind's view of our PID, else
    /// `XDG_SESSION_ID`. Only on this host's own bus.
    fn own_session(&mut self) -> Option<SessionId> {
        if self.locality != Locality::ThisHost {
            return None;
        }
        if let Some(known) = &self.current {
            return known.clone();
        }
        let found = zbus::block_on(async {
            let manager = ManagerProxy::new(&self.conn).await.ok()?;
            let raw = u32::try_from(self.own_pid.as_raw()).ok()?;
            let path = manager.get_session_by_pid(raw).await.ok()?;
            let props = properties(&self.conn, path).await.ok()?;
            Some(SessionId::new(get_str(&props, "Id")))
        })
        .filter(|id| !id.as_str().is_empty())
        .or_else(|| {
            std::env::var("XDG_SESSION_ID")
                .ok()
                .filter(|s| !s.is_empty())
                .map(SessionId::new)
        });
        self.current = Some(found.clone());
        found
    }

    /// The session's state as logind now reports it; `None` once the session is gone.
    async fn state(&self, session: &Session) -> Result<Option<String>> {
        match properties(&self.conn, session_path(&session.id)).await {
            Ok(props) => Ok(Some(get_str(&props, "State"))),
            Err(e) if vanished(&e) => Ok(None),
            Err(e) => Err(bus_error(
                self.locality,
                &e,
                &format!("cannot read session {}", session.id),
            )),
        }
    }

    /// Whether logind has the session closing, or has dropped it.
    fn is_closing(&self, session: &Session) -> Result<bool> {
        Ok(match zbus::block_on(self.state(session))? {
            None => true,
            Some(state) => state != "active" && state != "online",
        })
    }

    /// Once no process is left of a session asked to end: waits (briefly) for logind to
    /// mark it closing or drop it, as it does when the scope stops, unless it is known to be
    /// closing already.
    fn settle(&mut self, session: &Session) -> Result<()> {
        let tracker = self.tracker(session)?;
        if tracker.closing || !tracker.acted {
            return Ok(());
        }
        let end = Instant::now() + CLOSING_WAIT;
        while !self.is_closing(session)? {
            if Instant::now() >= end {
                return Ok(());
            }
            std::thread::sleep(CLOSING_POLL);
        }
        self.tracker(session)?.closing = true;
        Ok(())
    }

    /// The idle locks (`systemd-inhibit --what=idle`, mode block) logind holds, by holder.
    fn idle_locks(&self) -> Result<Vec<Inhibitor>> {
        let listed =
            zbus::block_on(async { ManagerProxy::new(&self.conn).await?.list_inhibitors().await })
                .map_err(|e| bus_error(self.locality, &e, "cannot list logind's inhibitors"))?;
        Ok(listed
            .into_iter()
            .filter(|(what, _, _, mode, _, _)| {
                mode == "block" && what.split(':').any(|w| w == "idle")
            })
            .filter_map(|(_, _, why, _, _, pid)| {
                let pid = Pid::from_raw(i32::try_from(pid).ok()?);
                Some(Inhibitor {
                    pid,
                    command: Proc::new(pid).command_name(),
                    why,
                })
            })
            .collect())
    }

    /// polkit's answer to whether the bus name we are may manage other users' sessions.
    fn polkit_allows(&self) -> zbus::Result<bool> {
        let unique = self
            .conn
            .unique_name()
            .map(ToString::to_string)
            .unwrap_or_default();
        zbus::block_on(async {
            let polkit = PolkitProxy::new(&self.conn).await?;
            let mut subject = HashMap::new();
            subject.insert("name", zbus::Variant::from(unique.as_str()));
            let (allowed, _, _) = polkit
                .check_authorization(
                    &("system-bus-name", subject),
                    MANAGE_ACTION,
                    HashMap::new(),
                    0,
                    "",
                )
                .await?;
            Ok(allowed)
        })
    }
}

impl Backend for Logind {
    fn about(&self) -> (Flavor, String) {
        (Flavor::Logind, "org.freedesktop.login1".into())
    }

    /// On this host, graphical sessions get what their processes tell of their display
    /// ([`Desktops::enrich`]).
    fn list(&mut self) -> Result<Vec<Session>> {
        let mut sessions = self.list_from_logind()?;
        if self.locality == Locality::ThisHost {
            self.desktops.refresh();
            let mut looks = Vec::new();
            for session in sessions
                .iter_mut()
                .filter(|s| Desktops::may_be_graphical(s))
            {
                let members = self.pids_here(session);
                if let Some(membership) = membership(session) {
                    looks.push(Look {
                        session,
                        members,
                        membership,
                        cgroup: None,
                    });
                }
            }
            self.desktops.enrich(looks);
        }
        Ok(sessions)
    }

    fn observe(&mut self, sessions: &mut [Session], sources: Sources) -> Result<()> {
        if self.locality != Locality::ThisHost {
            return Ok(());
        }
        let inhibitors = if sources.inhibitors {
            self.idle_locks()?
        } else {
            Vec::new()
        };
        let mut looks = Vec::with_capacity(sessions.len());
        for session in sessions.iter_mut() {
            let Some(membership) = membership(session) else {
                continue;
            };
            let (members, cgroup) = self.here(session);
            looks.push(Look {
                session,
                members,
                membership,
                cgroup,
            });
        }
        activity::observe(&mut looks, sources, &inhibitors);
        Ok(())
    }

    fn current(&mut self) -> Result<Option<SessionId>> {
        Ok(self.own_session())
    }

    /// On another host's bus, reached over ssh: the session of the process the bus daemon
    /// there sees at the other end of logoff's connection (its peer credentials: the bus
    /// bridge, which runs in the ssh login). Unknown (`None`) where the bus or logind will
    /// not say; none on a machine's bus (its bridge's process is not in the machine).
    fn carrier(&mut self) -> Result<Option<SessionId>> {
        if self.locality == Locality::ThisHost || !self.over_ssh {
            return Ok(None);
        }
        Ok(zbus::block_on(async {
            let dbus = zbus::fdo::DBusProxy::new(&self.conn).await.ok()?;
            let me = self.conn.unique_name()?;
            let pid = dbus
                .get_connection_unix_process_id(zbus::names::BusName::from(me.as_ref()))
                .await
                .ok()?;
            let manager = ManagerProxy::new(&self.conn).await.ok()?;
            let path = manager.get_session_by_pid(pid).await.ok()?;
            let props = properties(&self.conn, path).await.ok()?;
            Some(SessionId::new(get_str(&props, "Id")))
        })
        .filter(|id| !id.as_str().is_empty()))
    }

    /// On another host's bus, the caller is whoever the bus there sees: the ssh user.
    fn caller(&mut self) -> Result<Caller> {
        if self.locality == Locality::ThisHost {
            return Ok(Caller::current());
        }
        zbus::block_on(async {
            let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
            let me = self
                .conn
                .unique_name()
                .ok_or_else(|| zbus::Error::Failure("no unique name".into()))?;
            let uid = dbus
                .get_connection_unix_user(zbus::names::BusName::from(me.as_ref()))
                .await?;
            Ok::<u32, zbus::Error>(uid)
        })
        .map(|uid| Caller {
            uid: Uid::from_raw(uid),
            name: uid.to_string(),
            is_root: uid == 0,
        })
        .map_err(|e| bus_error(self.locality, &e, "cannot learn who the bus sees"))
    }

    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        // logind lets the owner and root through without asking polkit.
        if caller.is_root || session.belongs_to(caller.uid) {
            return Ok(());
        }
        match self.polkit_allows() {
            Ok(true) => Ok(()),
            Ok(false) => Err(access_denied(session)),
            // No polkit to ask: logind will answer when asked to terminate.
            Err(_) => Ok(()),
        }
    }

    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned> {
        let here = self.locality == Locality::ThisHost;
        match self.source_of(session)? {
            Source::Audit(id) => {
                return self.with_audit(|p| p.warn(&audit_view(session, id), text))?;
            }
            Source::Untracked(_) if here => return Ok(Warned::default()),
            _ => {}
        }
        if !here {
            return Ok(self.warn_remote(session, text));
        }
        // The scope's processes now, each re-checked to be in the scope after its open
        // files were read; their terminals by the nodes they hold open.
        let members = self.members(session)?;
        let scope = session.scope.clone().unwrap_or_default();
        let terminals = tty::held_by(members.iter().map(|m| Proc::new(m.pid)), |p| {
            Ok(!scope.is_empty() && p.in_unit(&scope)?)
        });
        let mut warned = deliver_locally(terminals, session.uid, text);
        if let Some(membership) = membership(session) {
            warned.add(self.desktops.warn(session, &membership, text));
        }
        Ok(warned)
    }

    fn terminate(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.terminate_all(sessions)
    }

    fn kill(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        self.kill_all(sessions)
    }

    fn remaining(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>> {
        self.remaining_all(sessions, until)
    }

    /// On this host, as root, as on procfs ([`super::connection`]); elsewhere, or for a
    /// user's own session, an ssh login's leader, through logind ([`disconnect`]).
    fn disconnect(&mut self, sessions: &[&Session], timeout: Duration) -> Vec<Result<super::Cut>> {
        sessions
            .iter()
            .map(|s| self.disconnect_one(s, timeout))
            .collect()
    }

    fn finish(&mut self, session: &Session) -> Result<Vec<String>> {
        self.trackers.remove(&session.id);
        Ok(Vec::new())
    }
}

/// What makes a process one of the session's on this host: its scope, else its audit
/// session ID.
fn membership(session: &Session) -> Option<Membership> {
    match (&session.scope, session.audit) {
        (Some(scope), _) => Some(Membership::Unit(scope.clone())),
        (None, Some(id)) => Some(Membership::Audit(id)),
        (None, None) => None,
    }
}

/// An error for each of `n` sessions.
fn for_each<T>(n: usize, e: &Error) -> Vec<Result<T>> {
    (0..n).map(|_| Err(e.clone())).collect()
}
