//! Following a logind session's processes: through its scope's cgroup on this host (read
//! directly, watched through pidfds), by asking systemd elsewhere (`GetUnitProcesses`), or —
//! for a session without a scope, as elogind's are — by its kernel audit session ID on this
//! host, with the procfs backend's code.

use std::collections::HashMap;
use std::path::PathBuf;

use zbus::names::InterfaceName;

use super::Locality;
use super::Logind;
use super::bus::{SystemdProxy, unit_path};
use super::props::{bus_error, no_such_unit};
use crate::backend::procfs::Procfs;
use crate::error::{Error, Result};
use crate::model::{Pid, ProcessInfo, Session, SessionId};
use crate::system::cgroup;
use crate::system::handle::Handle;
use crate::system::process::Proc;

/// Where a session's processes are read from.
#[derive(Clone)]
pub(super) enum Source {
    /// The scope's cgroup directory on this host: read directly, watched through pidfds.
    Cgroup(PathBuf),
    /// Another host's scope (or one whose cgroup is not found here): systemd is asked.
    Systemd(String),
    /// No scope, on this host: the processes with this kernel audit session ID.
    Audit(u32),
    /// Nothing can follow its processes (why): its end cannot be verified.
    Untracked(&'static str),
}

/// What logoff knows of one session it is ending.
pub(super) struct Followed {
    pub source: Source,
    /// pidfds on its processes (local cgroups only).
    pub watched: HashMap<Pid, Handle>,
    /// The session is known to be closing (logind accepted TerminateSession, or said so).
    /// A closing session never reopens: once no process is left, nothing more to ask.
    pub closing: bool,
    /// Asked to end (TerminateSession or KillSession): once empty, it should be closing.
    pub acted: bool,
}

/// The error for a session whose end nothing can verify.
pub(super) fn untracked(session: &Session, why: &str) -> Error {
    Error::system(format!(
        "cannot verify that {} has ended: logind gives it no scope, and {why}; it was asked \
         to end (TerminateSession), but whether every process of it has is unknown",
        session.describe()
    ))
}

/// The session as the procfs backend names it: by its audit session ID.
pub(super) fn audit_view(session: &Session, id: u32) -> Session {
    Session {
        id: SessionId::new(id.to_string()),
        uid: session.uid,
        user: session.user.clone(),
        display: session.display.clone(),
        ..Session::default()
    }
}

impl Logind {
    /// How a session's processes are followed; found once per session.
    pub(super) fn tracker(&mut self, session: &Session) -> Result<&mut Followed> {
        if !self.trackers.contains_key(&session.id) {
            let source = self.source(session)?;
            self.trackers.insert(
                session.id.clone(),
                Followed {
                    source,
                    watched: HashMap::new(),
                    closing: false,
                    acted: false,
                },
            );
        }
        self.trackers
            .get_mut(&session.id)
            .ok_or_else(|| Error::system("session tracking lost"))
    }

    fn source(&mut self, session: &Session) -> Result<Source> {
        let here = self.locality == Locality::ThisHost;
        Ok(match session.scope.as_deref().filter(|s| !s.is_empty()) {
            Some(scope) if here => match zbus::block_on(self.control_group(scope))? {
                Some(dir) => Source::Cgroup(dir),
                None => Source::Systemd(scope.to_string()),
            },
            Some(scope) => Source::Systemd(scope.to_string()),
            // No scope (elogind): on this host, the kernel's audit session ID still groups
            // the session's processes.
            None if !here => {
                Source::Untracked("it is on another host, where only a scope can be followed")
            }
            None => match session.audit {
                Some(id) if self.audit_procfs().is_some() => Source::Audit(id),
                Some(_) => Source::Untracked("this kernel has no audit session IDs"),
                None => Source::Untracked("it has no audit session ID either"),
            },
        })
    }

    /// The procfs backend that follows scope-less sessions here by audit session ID (made
    /// when first needed; `None` on a kernel without audit session IDs).
    pub(super) fn audit_procfs(&mut self) -> Option<&mut Procfs> {
        self.audit
            .get_or_insert_with(Procfs::audit_sessions)
            .as_mut()
    }

    /// Runs `f` on the procfs backend that follows scope-less sessions here.
    pub(super) fn with_audit<T>(&mut self, f: impl FnOnce(&mut Procfs) -> T) -> Result<T> {
        match self.audit_procfs() {
            Some(procfs) => Ok(f(procfs)),
            None => Err(Error::system("audit session tracking lost")),
        }
    }

    /// The cgroup directory of a scope on this host, from systemd's `ControlGroup`; `None`
    /// where no cgroup hierarchy here has it (then systemd is asked instead).
    async fn control_group(&self, scope: &str) -> Result<Option<PathBuf>> {
        let proxy = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(unit_path(scope))
            .build()
            .await
            .map_err(|e| bus_error(self.locality, &e, "cannot reach systemd"))?;
        let group = match proxy
            .get(
                InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Scope"),
                "ControlGroup",
            )
            .await
        {
            Ok(v) => <&str>::try_from(&v).map(String::from).unwrap_or_default(),
            // Already gone, or not a scope: systemd will say when asked.
            Err(_) => return Ok(None),
        };
        Ok((!group.is_empty()).then(|| cgroup::find(&group)).flatten())
    }

    /// What is still running of a session, and its commands for messages where systemd
    /// gives them. `[]` once it is gone. logoff itself is never counted.
    pub(super) fn members(&mut self, session: &Session) -> Result<Vec<ProcessInfo>> {
        let source = self.source_of(session)?;
        let own = self.own_pid;
        match &source {
            Source::Untracked(why) => Err(untracked(session, why)),
            Source::Audit(id) => self.with_audit(|p| p.members_of(*id))?,
            Source::Cgroup(dir) => Ok(cgroup::pids(dir)?
                .into_iter()
                .filter(|&p| p != own)
                .map(|pid| ProcessInfo {
                    pid,
                    command: String::new(),
                })
                .collect()),
            Source::Systemd(scope) => zbus::block_on(self.unit_processes(scope)),
        }
    }

    /// Where a session's processes are read from: its tracker's, while it is being ended;
    /// else found now, and not kept (a warning or a listing adds no tracker, which only the
    /// end of a logoff removes: a daemon that warns for months would keep them all).
    pub(super) fn source_of(&mut self, session: &Session) -> Result<Source> {
        match self.trackers.get(&session.id) {
            Some(t) => Ok(t.source.clone()),
            None => self.source(session),
        }
    }

    /// The session's processes on this host, for a look at its display (none where they
    /// cannot be read here).
    pub(super) fn pids_here(&mut self, session: &Session) -> Vec<Pid> {
        self.here(session).0
    }

    /// The session's processes on this host, and its scope's cgroup directory where it has
    /// one here.
    pub(super) fn here(&mut self, session: &Session) -> (Vec<Pid>, Option<PathBuf>) {
        match self.source(session) {
            Ok(Source::Cgroup(dir)) => (cgroup::pids(&dir).unwrap_or_default(), Some(dir)),
            Ok(Source::Audit(id)) => {
                let pids = self
                    .with_audit(|p| p.members_of(id))
                    .ok()
                    .and_then(Result::ok)
                    .map(|m| m.into_iter().map(|p| p.pid).collect())
                    .unwrap_or_default();
                (pids, None)
            }
            _ => (Vec::new(), None),
        }
    }

    /// systemd's list of a unit's processes (`[]` once the unit is gone).
    async fn unit_processes(&self, scope: &str) -> Result<Vec<ProcessInfo>> {
        let systemd = SystemdProxy::new(&self.conn)
            .await
            .map_err(|e| bus_error(self.locality, &e, "cannot reach systemd"))?;
        let here = self.locality == Locality::ThisHost;
        match systemd.get_unit_processes(scope).await {
            Ok(list) => Ok(list
                .into_iter()
                .filter_map(|(_, pid, cmdline)| {
                    Some(ProcessInfo {
                        pid: Pid::from_raw(i32::try_from(pid).ok()?),
                        command: cmdline,
                    })
                })
                .filter(|p| p.pid != self.own_pid || !here)
                .collect()),
            Err(e) if no_such_unit(&e) => Ok(Vec::new()),
            Err(e) => Err(bus_error(
                self.locality,
                &e,
                &format!("cannot list the processes of {scope}"),
            )),
        }
    }

    /// Opens pidfds on the members not watched yet (local cgroups only), then reads the
    /// cgroup again and keeps only those still in it: the pidfds were opened first, so that
    /// read verifies them.
    pub(super) fn watch(&mut self, session: &Session, members: &[ProcessInfo]) -> Result<()> {
        let tracker = self.tracker(session)?;
        let Source::Cgroup(dir) = &tracker.source else {
            return Ok(());
        };
        let dir = dir.clone();
        let mut fresh = Vec::new();
        for m in members {
            if tracker.watched.get(&m.pid).is_some_and(|h| !h.has_exited()) {
                continue;
            }
            if let Ok(Some(handle)) = Handle::open(&Proc::new(m.pid), |_| Ok(true)) {
                fresh.push(handle);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let still: std::collections::HashSet<Pid> = cgroup::pids(&dir)?.into_iter().collect();
        for handle in fresh {
            if still.contains(&handle.pid()) && handle.has_pidfd() {
                tracker.watched.insert(handle.pid(), handle);
            }
        }
        Ok(())
    }
}

/// What is still running, named (commands from /proc where systemd did not give them).
pub(super) fn named(members: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    members
        .into_iter()
        .map(|p| {
            if p.command.is_empty() {
                Proc::new(p.pid).info()
            } else {
                p
            }
        })
        .collect()
}
