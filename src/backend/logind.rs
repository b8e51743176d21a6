//! The logind backend: systemd-logind or elogind over D-Bus (`org.freedesktop.login1`), the
//! source of truth for sessions where it runs.
//!
//! It works on whatever connection it is given (see [`crate::transport`]): the local system
//! bus, or another host's. Sessions come from `ListSessionsEx` where logind has it, else
//! `ListSessions`, and their properties from one `GetAll` per session, all sent before any
//! reply is awaited. A session that vanishes while being listed is skipped.
//!
//! Logging off: `TerminateSession` (systemd stops the session's scope: SIGTERM and SIGHUP to
//! every process), then waiting until no process of the scope is left — on pidfds where the
//! processes are this host's, by asking systemd (`GetUnitProcesses`) otherwise, and always
//! confirmed by systemd; after the timeout, `KillSession(id, "all", SIGKILL)`. logind keeps a
//! session object in state `closing` for a while after its processes are gone: done means no
//! process left and the session closing or removed.
//!
//! Privilege is logind's and polkit's to decide. Before anything is touched, logoff asks polkit
//! the question logind will ask (`org.freedesktop.login1.manage`), so that one refusal among
//! several targets leaves all of them untouched; AccessDenied and
//! InteractiveAuthorizationRequired from logind itself mean the same "access denied".

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use zbus::names::InterfaceName;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

use super::procfs::Procfs;
use super::{Backend, Signalled, Warned, access_denied, deliver_locally};
use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{Pid, ProcessInfo, Session, SessionId, Uid};
use crate::system::process::{Handle, Proc};
use crate::system::tty;
use crate::system::users::Caller;
use crate::transport::Tunnel;

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    fn list_sessions(&self) -> zbus::Result<Vec<(String, u32, String, String, OwnedObjectPath)>>;

    #[allow(clippy::type_complexity)]
    #[zbus(name = "ListSessionsEx")]
    fn list_sessions_ex(
        &self,
    ) -> zbus::Result<
        Vec<(
            String,
            u32,
            String,
            String,
            u32,
            String,
            String,
            bool,
            u64,
            OwnedObjectPath,
        )>,
    >;

    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;

    fn terminate_session(&self, session_id: &str) -> zbus::Result<()>;

    fn kill_session(&self, session_id: &str, who: &str, signal: i32) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Systemd {
    fn get_unit_processes(&self, unit: &str) -> zbus::Result<Vec<(String, u32, String)>>;

    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, zbus::Variant<'_>)],
        aux: &[(&str, &[(&str, zbus::Variant<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
trait Polkit {
    #[allow(clippy::type_complexity)]
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, zbus::Variant<'_>>),
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

const SESSION_INTERFACE: &str = "org.freedesktop.login1.Session";
const MANAGE_ACTION: &str = "org.freedesktop.login1.manage";

/// How often logind and systemd are asked whether processes are left, when they cannot be
/// watched through pidfds (another host's processes).
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(200);

/// How long a warning to another host's terminal may take to be written.
const WARNING_WAIT: Duration = Duration::from_secs(5);

/// How long to wait, once no process is left, for logind to mark the session closing.
const CLOSING_WAIT: Duration = Duration::from_secs(2);

/// The logind backend.
pub struct Logind {
    conn: Connection,
    /// Whether the bus is this host's: its PIDs are ours, to watch through pidfds.
    local: bool,
    why: String,
    own_pid: Pid,
    /// Per session: where its processes are read from, and pidfds on them.
    tracked: HashMap<SessionId, Tracked>,
    /// The caller's own session, once asked.
    current: Option<Option<SessionId>>,
    /// The ssh (or bridge) process the connection runs through, if any: kept alive with it.
    _tunnel: Option<Tunnel>,
    /// For sessions without a scope on this host: the procfs backend, by audit session ID
    /// (made when first needed; `None` inside on a kernel without audit session IDs).
    audit: Option<Option<Procfs>>,
}

impl Logind {
    /// Uses logind on `conn`, after checking that it answers. `local`: the bus is this host's
    /// own. `why` is shown by `/V`.
    pub fn connect(conn: Connection, local: bool, why: impl Into<String>) -> Result<Logind> {
        Logind::through(conn, None, local, why)
    }

    /// Uses logind on a connection that runs through `tunnel` (ssh, a bridge): another
    /// host's or machine's bus, never this host's.
    pub fn through(
        conn: Connection,
        tunnel: Option<Tunnel>,
        local: bool,
        why: impl Into<String>,
    ) -> Result<Logind> {
        let backend = Logind {
            conn,
            local,
            why: why.into(),
            own_pid: Pid(std::process::id() as i32),
            tracked: HashMap::new(),
            current: None,
            _tunnel: tunnel,
            audit: None,
        };
        backend.ping()?;
        Ok(backend)
    }

    /// Whether logind answers (activating it if the bus can).
    fn ping(&self) -> Result<()> {
        zbus::block_on(async {
            let proxy = zbus::fdo::PeerProxy::builder(&self.conn)
                .destination("org.freedesktop.login1")
                .path("/org/freedesktop/login1")
                .build()
                .await?;
            proxy.ping().await
        })
        .map_err(|e| Error::system(format!("logind does not answer on the bus: {e}")))
    }

    /// The procfs backend that follows scope-less sessions here by audit session ID.
    fn audit_procfs(&mut self) -> Option<&mut Procfs> {
        self.audit
            .get_or_insert_with(|| {
                Procfs::audit_sessions("following a logind session without a scope")
            })
            .as_mut()
    }

    /// Runs `f` on the procfs backend that follows scope-less sessions here.
    fn with_audit<T>(&mut self, f: impl FnOnce(&mut Procfs) -> Result<T>) -> Result<T> {
        match self.audit_procfs() {
            Some(procfs) => f(procfs),
            None => Err(Error::system("audit session tracking lost")),
        }
    }

    fn manager(&self) -> zbus::Result<ManagerProxy<'_>> {
        zbus::block_on(ManagerProxy::new(&self.conn))
    }

    /// How a session's processes are followed; found once per session.
    fn tracked(&mut self, session: &Session) -> Result<&mut Tracked> {
        if !self.tracked.contains_key(&session.id) {
            let source = match session.scope.as_deref().filter(|s| !s.is_empty()) {
                Some(scope) if self.local => match zbus::block_on(self.control_group(scope))? {
                    Some(dir) => Source::Cgroup(dir),
                    None => Source::Systemd(scope.to_string()),
                },
                Some(scope) => Source::Systemd(scope.to_string()),
                // No scope (elogind): on this host, the kernel's audit session ID still
                // groups the session's processes.
                None if !self.local => {
                    Source::Untracked("it is on another host, where only a scope can be followed")
                }
                None => match session.audit {
                    Some(id) if self.audit_procfs().is_some() => Source::Audit(id),
                    Some(_) => Source::Untracked("this kernel has no audit session IDs"),
                    None => Source::Untracked("it has no audit session ID either"),
                },
            };
            self.tracked.insert(
                session.id.clone(),
                Tracked {
                    source,
                    watched: HashMap::new(),
                    closing: false,
                },
            );
        }
        self.tracked
            .get_mut(&session.id)
            .ok_or_else(|| Error::system("session tracking lost"))
    }

    /// The cgroup directory of a scope on this host, from systemd's `ControlGroup`; `None`
    /// where no cgroup hierarchy here has it (then systemd is asked instead).
    async fn control_group(&self, scope: &str) -> Result<Option<PathBuf>> {
        let proxy = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(unit_path(scope))
            .build()
            .await
            .map_err(|e| bus_error(e, "cannot reach systemd"))?;
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
        if group.is_empty() {
            return Ok(None);
        }
        Ok(cgroup_mounts()
            .into_iter()
            .map(|m| m.join(group.trim_start_matches('/')))
            .find(|dir| dir.join("cgroup.procs").exists()))
    }

    /// What is still running in a session's scope, and its commands for messages. `[]` once
    /// the scope is gone. logoff itself is never counted.
    fn members(&mut self, session: &Session) -> Result<Vec<ProcessInfo>> {
        let source = self.tracked(session)?.source.clone();
        match &source {
            Source::Untracked(why) => Err(untracked(session, why)),
            Source::Audit(id) => Ok(self
                .audit_procfs()
                .ok_or_else(|| Error::system("audit session tracking lost"))?
                .members_of(*id)?
                .into_iter()
                .filter(|p| p.pid != self.own_pid)
                .collect()),
            Source::Cgroup(dir) => Ok(cgroup_pids(dir)?
                .into_iter()
                .filter(|&p| p != self.own_pid)
                .map(|pid| ProcessInfo {
                    pid,
                    command: String::new(),
                })
                .collect()),
            Source::Systemd(scope) => zbus::block_on(self.unit_processes(scope)),
        }
    }

    /// systemd's list of a unit's processes (`[]` once the unit is gone).
    async fn unit_processes(&self, scope: &str) -> Result<Vec<ProcessInfo>> {
        let systemd = SystemdProxy::new(&self.conn)
            .await
            .map_err(|e| bus_error(e, "cannot reach systemd"))?;
        match systemd.get_unit_processes(scope).await {
            Ok(list) => Ok(list
                .into_iter()
                .map(|(_, pid, cmdline)| ProcessInfo {
                    pid: Pid(pid as i32),
                    command: cmdline,
                })
                .filter(|p| p.pid != self.own_pid || !self.local)
                .collect()),
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                Ok(Vec::new())
            }
            Err(e) => Err(bus_error(
                e,
                &format!("cannot list the processes of {scope}"),
            )),
        }
    }

    /// Opens pidfds on the members not watched yet (local cgroups only), then reads the
    /// cgroup again and keeps only those still in it: the pidfds were opened first, so that
    /// read verifies them.
    fn watch(&mut self, session: &Session, members: &[ProcessInfo]) -> Result<()> {
        let tracked = self.tracked(session)?;
        let Source::Cgroup(dir) = &tracked.source else {
            return Ok(());
        };
        let dir = dir.clone();
        let mut fresh = Vec::new();
        for m in members {
            if tracked.watched.get(&m.pid).is_some_and(|h| !h.has_exited()) {
                continue;
            }
            if let Ok(Some(handle)) = Handle::open(&Proc::new(m.pid), |_| Ok(true)) {
                fresh.push(handle);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let still: std::collections::HashSet<Pid> = cgroup_pids(&dir)?.into_iter().collect();
        for handle in fresh {
            if still.contains(&handle.pid()) && handle.has_pidfd() {
                tracked.watched.insert(handle.pid(), handle);
            }
        }
        Ok(())
    }

    /// The session's state as logind now reports it; `None` once the session is gone.
    async fn state(&self, session: &Session) -> Result<Option<String>> {
        match properties(&self.conn, session_path(&session.id)).await {
            Ok(props) => Ok(Some(get_str(&props, "State"))),
            Err(e) if vanished(&e) => Ok(None),
            Err(e) => Err(bus_error(e, &format!("cannot read session {}", session.id))),
        }
    }

    fn is_own(&mut self, session: &Session) -> bool {
        self.local && self.own_session().as_ref() == Some(&session.id)
    }

    /// The session logoff runs in (asked once): logind's view of our PID, else
    /// `XDG_SESSION_ID`. Only on this host's own bus.
    fn own_session(&mut self) -> Option<SessionId> {
        if !self.local {
            return None;
        }
        if let Some(known) = &self.current {
            return known.clone();
        }
        let found = zbus::block_on(async {
            let manager = ManagerProxy::new(&self.conn).await.ok()?;
            let path = manager
                .get_session_by_pid(self.own_pid.0 as u32)
                .await
                .ok()?;
            let props = properties(&self.conn, path).await.ok()?;
            Some(SessionId(get_str(&props, "Id")))
        })
        .filter(|id| !id.0.is_empty())
        .or_else(|| {
            std::env::var("XDG_SESSION_ID")
                .ok()
                .filter(|s| !s.is_empty())
                .map(SessionId)
        });
        self.current = Some(found.clone());
        found
    }

    /// SIGKILL to every process of our own session but ourselves: KillSession would end
    /// logoff before it has verified the others are gone. (Our own session is this host's.)
    fn kill_all_but_self(&mut self, session: &Session) -> Result<Signalled> {
        let members = self.members(session)?;
        self.watch(session, &members)?;
        let mut count = 0;
        let mut refused = Vec::new();
        let tracked = self.tracked(session)?;
        for (pid, handle) in &tracked.watched {
            match handle.signal(rustix::process::Signal::KILL) {
                Ok(true) => count += 1,
                Ok(false) => {}
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    refused.push(Proc::new(*pid).info());
                }
                Err(e) => return Err(Error::system(format!("cannot signal process {pid}: {e}"))),
            }
        }
        Ok(Signalled {
            processes: Some(count),
            frozen: None,
            refused,
        })
    }

    /// Writes `text` to a terminal of another host: a transient service there runs `cat` with
    /// the text as its standard input and the terminal as its standard output. The text is
    /// data, never a command line.
    async fn write_remote(&self, session: &Session, tty: &str, text: &str) -> Result<()> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let systemd = SystemdProxy::new(&self.conn)
            .await
            .map_err(|e| bus_error(e, "cannot reach systemd"))?;
        let unit = format!(
            "logoff-warning-{}-{}-{}.service",
            bus_label(&session.id.0),
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        );
        let exec: Vec<(String, Vec<String>, bool)> =
            vec![("/bin/cat".into(), vec!["cat".into()], false)];
        let properties: Vec<(&str, zbus::Variant<'_>)> = vec![
            (
                "Description",
                zbus::Variant::from(format!("logoff: warning to {tty}")),
            ),
            ("ExecStart", zbus::Variant::from(exec)),
            ("StandardInput", zbus::Variant::from("data")),
            (
                "StandardInputData",
                zbus::Variant::from(text.as_bytes().to_vec()),
            ),
            ("StandardOutput", zbus::Variant::from("tty")),
            ("StandardError", zbus::Variant::from("null")),
            ("TTYPath", zbus::Variant::from(format!("/dev/{tty}"))),
            // The start job ends when cat has: the text is out before anything is signalled.
            ("Type", zbus::Variant::from("oneshot")),
            ("CollectMode", zbus::Variant::from("inactive-or-failed")),
        ];
        let job = systemd
            .start_transient_unit(&unit, "fail", &properties, &[])
            .await
            .map_err(|e| match error_name(&e).as_deref() {
                Some(
                    "org.freedesktop.DBus.Error.AccessDenied"
                    | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                ) => Error::new(Kind::AccessDenied, "not allowed to start a unit there"),
                _ => bus_error(e, "cannot start a unit there"),
            })?;
        // A job object exists until the job is done.
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(job)
            .build()
            .await
            .map_err(|e| bus_error(e, "cannot follow the job"))?;
        let end = Instant::now() + WARNING_WAIT;
        while Instant::now() < end {
            let state = props
                .get(
                    InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Job"),
                    "State",
                )
                .await;
            if state.is_err() {
                return Ok(());
            }
            std::thread::sleep(POLL_FIRST);
        }
        Err(Error::system("the warning was not written in time"))
    }

    /// What is still running, named (commands from /proc where systemd did not give them).
    fn named(members: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
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
}

/// Where a session's processes are read from.
#[derive(Clone)]
enum Source {
    /// The scope's cgroup directory on this host: read directly, watched through pidfds.
    Cgroup(PathBuf),
    /// Another host's scope: systemd is asked (`GetUnitProcesses`).
    Systemd(String),
    /// No scope, on this host: the processes with this kernel audit session ID, followed
    /// and signalled by the procfs backend's code.
    Audit(u32),
    /// Nothing can follow its processes (why): its end cannot be verified.
    Untracked(&'static str),
}

/// The error for a session whose end nothing can verify.
fn untracked(session: &Session, why: &str) -> Error {
    Error::system(format!(
        "cannot verify that {} has ended: logind gives it no scope, and {why}; it was asked \
         to end (TerminateSession), but whether every process of it has is unknown",
        session.describe()
    ))
}

/// The session as the procfs backend names it: by its audit session ID.
fn audit_view(session: &Session, id: u32) -> Session {
    Session {
        id: SessionId(id.to_string()),
        uid: session.uid,
        user: session.user.clone(),
        ..Session::default()
    }
}

struct Tracked {
    source: Source,
    watched: HashMap<Pid, Handle>,
    /// The session is known to be closing (logind accepted TerminateSession, or said so).
    /// A closing session never reopens: once no process is left, nothing more to ask.
    closing: bool,
}

impl Backend for Logind {
    fn name(&self) -> &'static str {
        "logind"
    }

    fn describe(&self) -> String {
        format!("logind ({})", self.why)
    }

    fn list(&mut self) -> Result<Vec<Session>> {
        zbus::block_on(async {
            let manager = ManagerProxy::new(&self.conn)
                .await
                .map_err(|e| bus_error(e, "cannot reach logind"))?;
            let listed: Vec<(String, OwnedObjectPath)> = match manager.list_sessions_ex().await {
                Ok(list) => list.into_iter().map(|s| (s.0, s.9)).collect(),
                // Older logind has no ListSessionsEx; the bus policy of some refuses what it
                // does not know to unprivileged callers (AccessDenied) rather than saying so.
                Err(e) if unknown_method(&e) || denied(&e) => manager
                    .list_sessions()
                    .await
                    .map_err(|e| bus_error(e, "cannot list sessions"))?
                    .into_iter()
                    .map(|s| (s.0, s.4))
                    .collect(),
                Err(e) => return Err(bus_error(e, "cannot list sessions")),
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
                    Err(e) => return Err(bus_error(e, &format!("cannot read session {id}"))),
                }
            }
            Ok(sessions)
        })
    }

    fn current(&mut self) -> Result<Option<SessionId>> {
        Ok(self.own_session())
    }

    /// On another host's bus, the caller is whoever the bus there sees: the ssh user.
    fn caller(&mut self) -> Result<Caller> {
        if self.local {
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
            uid: Uid(uid),
            name: uid.to_string(),
            is_root: uid == 0,
        })
        .map_err(|e| bus_error(e, "cannot learn who the bus sees"))
    }

    fn check_access(&mut self, session: &Session, caller: &Caller) -> Result<()> {
        // logind lets the owner and root through without asking polkit.
        if caller.is_root || caller.uid == session.uid {
            return Ok(());
        }
        let unique = self
            .conn
            .unique_name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let answer = zbus::block_on(async {
            let polkit = PolkitProxy::new(&self.conn).await?;
            let mut subject = HashMap::new();
            subject.insert("name", zbus::Variant::from(unique.as_str()));
            polkit
                .check_authorization(
                    &("system-bus-name", subject),
                    MANAGE_ACTION,
                    HashMap::new(),
                    0,
                    "",
                )
                .await
        });
        match answer {
            Ok((true, _, _)) => Ok(()),
            Ok((false, _, _)) => Err(access_denied(session)),
            // No polkit to ask: logind will answer when asked to terminate.
            Err(_) => Ok(()),
        }
    }

    fn count(&mut self, session: &Session) -> Result<Option<usize>> {
        if let Source::Untracked(_) = self.tracked(session)?.source {
            return Ok(None);
        }
        Ok(Some(self.members(session)?.len()))
    }

    fn warn(&mut self, session: &Session, text: &str) -> Result<Warned> {
        let local = self.local;
        match self.tracked(session)?.source {
            Source::Audit(id) => {
                return self.with_audit(|p| p.warn(&audit_view(session, id), text));
            }
            Source::Untracked(_) if local => return Ok(Warned::default()),
            _ => {}
        }
        if self.local {
            // The scope's processes now, each re-checked to be in the scope after its open
            // files were read; their terminals by the nodes they hold open.
            let members = self.members(session)?;
            let scope = session.scope.clone().unwrap_or_default();
            let terminals = tty::held_by(members.iter().map(|m| Proc::new(m.pid)), |p| {
                Ok(!scope.is_empty() && p.in_unit(&scope)?)
            });
            return Ok(deliver_locally(terminals, session.uid, text));
        }
        let mut warned = Warned::default();
        // The name is the other host's text, and becomes a path there: only a terminal's.
        if let Some(tty) = session.tty.clone() {
            if !tty::is_terminal_name(&tty) {
                warned.missed.push(format!("{tty} (not a terminal name)"));
                return Ok(warned);
            }
            match zbus::block_on(self.write_remote(session, &tty, text)) {
                Ok(()) => warned.reached.push(tty),
                Err(e) => warned.missed.push(format!("{tty} ({e})")),
            }
        }
        Ok(warned)
    }

    fn terminate(&mut self, session: &Session) -> Result<Signalled> {
        // Counting costs systemd a walk over every process with its command line: only
        // where the cgroup can be read directly.
        let count = match &self.tracked(session)?.source {
            Source::Cgroup(dir) => Some(cgroup_pids(dir)?.len()),
            _ => None,
        };
        let manager = self
            .manager()
            .map_err(|e| bus_error(e, "cannot reach logind"))?;
        zbus::block_on(manager.terminate_session(&session.id.0))
            .map_err(|e| action_error(e, session))?;
        // logind marks the session closing (`stopping`) before it answers TerminateSession
        // (session_stop() in logind-session.c), and a closing session never reopens: no need
        // to ask again once the processes are gone. Asking costs: while the scope ends,
        // logind is busy, and a question then waited 40 to 120 ms for its answer here.
        self.tracked(session)?.closing = true;
        // Without a scope, logind's stop reaches what it reaches: every process with the
        // session's audit ID is asked too, through pidfds.
        if let Source::Audit(id) = self.tracked(session)?.source {
            return self.with_audit(|p| p.terminate(&audit_view(session, id)));
        }
        Ok(Signalled {
            processes: count,
            frozen: None,
            refused: Vec::new(),
        })
    }

    fn kill(&mut self, session: &Session) -> Result<Signalled> {
        if let Source::Audit(id) = self.tracked(session)?.source {
            // logind's part (it may have dropped the session already), then every process
            // with the session's audit ID, as the procfs backend kills (logoff spared).
            if !self.is_own(session)
                && let Err(e) = zbus::block_on(
                    self.manager()
                        .map_err(|e| bus_error(e, "cannot reach logind"))?
                        .kill_session(&session.id.0, "all", 9),
                )
                && !vanished(&e)
            {
                return Err(action_error(e, session));
            }
            return self.with_audit(|p| p.kill(&audit_view(session, id)));
        }
        if self.is_own(session) {
            return self.kill_all_but_self(session);
        }
        let left = self.members(session)?;
        let manager = self
            .manager()
            .map_err(|e| bus_error(e, "cannot reach logind"))?;
        zbus::block_on(manager.kill_session(&session.id.0, "all", 9))
            .map_err(|e| action_error(e, session))?;
        Ok(Signalled {
            processes: Some(left.len()),
            frozen: None,
            refused: Vec::new(),
        })
    }

    fn wait(&mut self, session: &Session, deadline: Deadline) -> Result<Vec<ProcessInfo>> {
        // A cgroup2 scope says itself when its last process has gone (`populated 0` in
        // cgroup.events, which can be polled). Not for our own session: we are in it.
        let own = self.is_own(session);
        if let Source::Audit(id) = self.tracked(session)?.source {
            let left = self.with_audit(|p| p.wait(&audit_view(session, id), deadline))?;
            if left.is_empty() {
                self.settle(session)?;
            }
            return Ok(left);
        }
        if let Source::Cgroup(dir) = &self.tracked(session)?.source
            && dir.join("cgroup.events").exists()
            && !own
        {
            let events = dir.join("cgroup.events");
            if wait_unpopulated(&events, deadline)? {
                return self.settle(session).map(|()| Vec::new());
            }
            return Ok(Self::named(self.members(session)?));
        }
        let mut pause = POLL_FIRST;
        loop {
            let left = self.members(session)?;
            if left.is_empty() {
                return self.settle(session).map(|()| left);
            }
            if deadline.passed() {
                return Ok(Self::named(left));
            }
            self.watch(session, &left)?;
            let tracked = self.tracked(session)?;
            let running: Vec<&Handle> = left
                .iter()
                .filter_map(|p| tracked.watched.get(&p.pid))
                .filter(|h| !h.has_exited())
                .collect();
            if running.len() == left.len() {
                // Every one of them watched: the pidfds say when they end.
                for handle in running {
                    if !handle.wait(deadline) {
                        break;
                    }
                }
                pause = POLL_FIRST;
                continue;
            }
            // Exited but not yet reaped, or another host's: ask again shortly.
            std::thread::sleep(pause.min(deadline.next_step()));
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

impl Logind {
    /// Whether logind has the session closing, or has dropped it.
    fn is_closing(&self, session: &Session) -> Result<bool> {
        Ok(match zbus::block_on(self.state(session))? {
            None => true,
            Some(state) => state != "active" && state != "online",
        })
    }

    /// Once no process is left: waits (briefly) for logind to mark the session closing or
    /// drop it, as it does when the scope stops, unless it is known to be closing already.
    fn settle(&mut self, session: &Session) -> Result<()> {
        if self.tracked(session)?.closing {
            return Ok(());
        }
        let end = Instant::now() + CLOSING_WAIT;
        while !self.is_closing(session)? {
            if Instant::now() >= end {
                return Ok(());
            }
            std::thread::sleep(POLL_FIRST);
        }
        self.tracked(session)?.closing = true;
        Ok(())
    }
}

/// The mount points of the cgroup hierarchies that hold systemd's tree: cgroup2 first, then
/// the named v1 hierarchy of a hybrid setup.
fn cgroup_mounts() -> Vec<PathBuf> {
    // Mount points are names users may choose (a FUSE mount), not always UTF-8.
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let info = String::from_utf8_lossy(&info);
    let mut v2 = Vec::new();
    let mut named = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        let options = fields.get(sep + 3).copied().unwrap_or("");
        if *fstype == "cgroup2" {
            v2.push(PathBuf::from(mount));
        } else if *fstype == "cgroup" && options.split(',').any(|o| o == "name=systemd") {
            named.push(PathBuf::from(mount));
        }
    }
    v2.extend(named);
    v2
}

/// Waits until a cgroup2 directory has no process left (its `cgroup.events` says
/// `populated 0`, or it is gone); false if the deadline passes first.
fn wait_unpopulated(events: &std::path::Path, deadline: Deadline) -> Result<bool> {
    use rustix::event::{PollFd, PollFlags, poll};
    use std::io::{Read, Seek};
    let mut file = match std::fs::File::open(events) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => {
            return Err(Error::system(format!(
                "cannot read {}: {e}",
                events.display()
            )));
        }
    };
    let mut text = String::new();
    loop {
        text.clear();
        if file
            .rewind()
            .and_then(|()| file.read_to_string(&mut text))
            .is_err()
        {
            // The cgroup was removed under us: nothing is left in it.
            return Ok(true);
        }
        if text.lines().any(|l| l.trim() == "populated 0") {
            return Ok(true);
        }
        if deadline.passed() {
            return Ok(false);
        }
        let left = deadline.next_step();
        let timeout = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        // kernfs signals a change of the file as POLLPRI (and POLLERR).
        let mut fds = [PollFd::new(&file, PollFlags::PRI)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::system(format!(
                    "cannot poll {}: {e}",
                    events.display()
                )));
            }
        }
    }
}

/// The PIDs in a cgroup (`cgroup.procs`); `[]` once the cgroup is gone.
fn cgroup_pids(dir: &std::path::Path) -> Result<Vec<Pid>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .map(Pid)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::system(format!(
            "cannot read {}: {e}",
            dir.join("cgroup.procs").display()
        ))),
    }
}

/// An object path label escaped as sd-bus does (`bus_label_escape`): letters, and digits
/// after the first character, stay; every other byte becomes `_xx`.
fn bus_label(name: &str) -> String {
    let mut label = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            label.push(b as char);
        } else {
            label.push_str(&format!("_{b:02x}"));
        }
    }
    label
}

fn object_path(prefix: &str, name: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{prefix}{}", bus_label(name)))
        .unwrap_or_else(|_| OwnedObjectPath::from(zbus::ObjectPath::from_static_str_unchecked("/")))
}

/// logind's object path for a session ID (`3` → `/org/freedesktop/login1/session/_33`).
fn session_path(id: &SessionId) -> OwnedObjectPath {
    object_path("/org/freedesktop/login1/session/", &id.0)
}

/// systemd's object path for a unit (`session-3.scope` →
/// `/org/freedesktop/systemd1/unit/session_2d3_2escope`).
fn unit_path(unit: &str) -> OwnedObjectPath {
    object_path("/org/freedesktop/systemd1/unit/", unit)
}

async fn properties(
    conn: &Connection,
    path: OwnedObjectPath,
) -> zbus::Result<HashMap<String, OwnedVariant>> {
    let proxy = zbus::fdo::PropertiesProxy::builder(conn)
        .destination("org.freedesktop.login1")
        .path(path)
        .build()
        .await?;
    Ok(proxy
        .get_all(InterfaceName::from_static_str_unchecked(SESSION_INTERFACE))
        .await?)
}

fn get_str(props: &HashMap<String, OwnedVariant>, key: &str) -> String {
    props
        .get(key)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_string()
}

fn get_u32(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<u32> {
    props.get(key).and_then(|v| u32::try_from(v).ok())
}

fn get_u64(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<u64> {
    props.get(key).and_then(|v| u64::try_from(v).ok())
}

fn get_bool(props: &HashMap<String, OwnedVariant>, key: &str) -> bool {
    props
        .get(key)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

/// The first field of a struct property (`User` is `(uo)`, `Seat` is `(so)`).
fn first_field<'a>(
    props: &'a HashMap<String, OwnedVariant>,
    key: &str,
) -> Option<&'a zbus::Variant<'a>> {
    let structure = <&zbus::Structure>::try_from(props.get(key)?).ok()?;
    structure.fields().first()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn timestamp_us(us: Option<u64>) -> Option<jiff::Timestamp> {
    us.filter(|&t| t > 0)
        .and_then(|t| jiff::Timestamp::from_microsecond(t as i64).ok())
}

/// A session from its `GetAll` properties. Strings stay strings: logind adds new classes,
/// types and states.
fn session_from(props: &HashMap<String, OwnedVariant>) -> Session {
    let uid = first_field(props, "User")
        .and_then(|v| u32::try_from(v).ok())
        .map(Uid)
        .unwrap_or(Uid(u32::MAX));
    let seat = first_field(props, "Seat")
        .and_then(|v| <&str>::try_from(v).ok())
        .map(String::from)
        .and_then(non_empty);
    let remote_host = non_empty(get_str(props, "RemoteHost"));
    Session {
        id: SessionId(get_str(props, "Id")),
        uid,
        user: get_str(props, "Name"),
        tty: non_empty(get_str(props, "TTY")),
        display: non_empty(get_str(props, "Display")),
        seat,
        vtnr: get_u32(props, "VTNr").filter(|&v| v > 0),
        state: get_str(props, "State"),
        class: non_empty(get_str(props, "Class")),
        kind: non_empty(get_str(props, "Type")),
        service: non_empty(get_str(props, "Service")),
        remote: get_bool(props, "Remote") || remote_host.is_some(),
        remote_host,
        idle_since: timestamp_us(get_u64(props, "IdleSinceHint")),
        idle_hint: props.get("IdleHint").and_then(|v| bool::try_from(v).ok()),
        logon_time: timestamp_us(get_u64(props, "Timestamp")),
        leader: get_u32(props, "Leader")
            .filter(|&p| p > 0)
            .map(|p| Pid(p as i32)),
        processes: None,
        // LOGOFF_LOGIND_NO_SCOPES=1: as on elogind, which has no scopes (for testing).
        scope: non_empty(get_str(props, "Scope")).filter(|_| !ignore_scopes()),
        audit: get_u32(props, "Audit").filter(|&a| a > 0 && a != u32::MAX),
    }
}

/// Set to `1` to treat logind's sessions as scope-less, as elogind's are (for testing the
/// tracking of such sessions on a systemd host).
pub const NO_SCOPES_ENV: &str = "LOGOFF_LOGIND_NO_SCOPES";

fn ignore_scopes() -> bool {
    std::env::var(NO_SCOPES_ENV).is_ok_and(|v| v == "1")
}

/// The D-Bus error name of a method error reply.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(fdo) => Some(zbus::DBusError::name(fdo.as_ref()).to_string()),
        _ => None,
    }
}

fn unknown_method(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some("org.freedesktop.DBus.Error.UnknownMethod")
    )
}

fn denied(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some("org.freedesktop.DBus.Error.AccessDenied")
    )
}

/// The session went away between listing and asking.
fn vanished(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.UnknownObject"
                | "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.UnknownInterface"
                | "org.freedesktop.login1.NoSuchSession"
        )
    )
}

fn bus_error(e: zbus::Error, what: &str) -> Error {
    Error::system(format!("{what}: {e}"))
}

/// An error from TerminateSession or KillSession, named for the session.
fn action_error(e: zbus::Error, session: &Session) -> Error {
    match error_name(&e).as_deref() {
        Some(
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ) => access_denied(session),
        Some("org.freedesktop.login1.NoSuchSession") => Error::new(
            Kind::NoSuchSession,
            format!("cannot log off {}: no such session", session.describe()),
        ),
        _ => Error::system(format!("cannot log off {}: {e}", session.describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_escape_like_sd_bus() {
        assert_eq!(
            unit_path("session-3.scope").as_str(),
            "/org/freedesktop/systemd1/unit/session_2d3_2escope"
        );
    }

    #[test]
    fn session_paths_escape_like_sd_bus() {
        assert_eq!(
            session_path(&SessionId("3".into())).as_str(),
            "/org/freedesktop/login1/session/_33"
        );
        assert_eq!(
            session_path(&SessionId("c1".into())).as_str(),
            "/org/freedesktop/login1/session/c1"
        );
        assert_eq!(
            session_path(&SessionId("12".into())).as_str(),
            "/org/freedesktop/login1/session/_312"
        );
    }
}
