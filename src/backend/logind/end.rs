//! Ending logind sessions, every target of a logoff together: `TerminateSession` for each
//! (all sent before any answer is awaited), one wait on all their scopes' `cgroup.events` on
//! this host, `KillSession` for what is left after the timeout.

use futures_util::future::join_all;

use super::bus::SystemdProxy;
use super::members::{Source, audit_view, named, untracked};
use super::props::{action_error, bus_error, failure_kind, no_such_unit, vanished};
use super::{Logind, for_each};
use crate::backend::{Backend, Signalled};
use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{ProcessInfo, Session};
use crate::system::cgroup;
use crate::system::handle::Handle;
use crate::system::process::Proc;

/// How the SIGKILL step went for one session.
enum Killed {
    Done(Signalled),
    /// Followed by this audit session ID: the procfs backend's code kills its processes.
    ByAudit(u32),
}

/// How often logind and systemd are asked whether processes are left, when they cannot be
/// watched through pidfds (another host's processes).
const POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(10);
const POLL_MAX: std::time::Duration = std::time::Duration::from_millis(200);

impl Logind {
    /// Before TerminateSession: how many processes the session has, where its cgroup can be
    /// read directly (asking systemd to count costs it a walk over every process of the
    /// scope, with its command line).
    fn count_before(&mut self, session: &Session) -> Result<Signalled> {
        let processes = match &self.tracker(session)?.source {
            Source::Cgroup(dir) => Some(cgroup::pids(dir)?.len()),
            _ => None,
        };
        Ok(Signalled {
            processes,
            ..Signalled::default()
        })
    }

    pub(super) fn terminate_all(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        let mut results: Vec<Result<Signalled>> =
            sessions.iter().map(|s| self.count_before(s)).collect();
        let replies = {
            let manager = match self.manager() {
                Ok(m) => m,
                Err(e) => return for_each(sessions.len(), &e),
            };
            zbus::block_on(join_all(
                sessions
                    .iter()
                    .map(|s| manager.terminate_session(s.id.as_str())),
            ))
        };
        let mut audit = Vec::new();
        for (at, (session, reply)) in sessions.iter().zip(replies).enumerate() {
            if results[at].is_err() {
                continue;
            }
            if let Err(e) = reply {
                results[at] = Err(action_error(self.locality, &e));
                continue;
            }
            // logind marks the session closing (`stopping`) before it answers
            // TerminateSession (session_stop() in logind-session.c), and a closing session
            // never reopens: no need to ask again once the processes are gone. (Asking
            // costs: while the scope ends, logind is busy, and a question then waited 40 to
            // 120 ms for its answer here.)
            match self.tracker(session) {
                Ok(t) => {
                    t.closing = true;
                    t.acted = true;
                    if let Source::Audit(id) = t.source {
                        audit.push((at, id));
                    }
                }
                Err(e) => results[at] = Err(e),
            }
        }
        // Without a scope, logind's stop reaches what it reaches: every process with the
        // session's audit ID is asked too, through pidfds.
        self.through_audit(sessions, &audit, &mut results, |p, s| p.terminate(s));
        results
    }

    /// Runs a step on the sessions followed by audit session ID (`audit`: their positions
    /// and IDs), as the procfs backend does it, and puts its answers in `results`.
    fn through_audit<T>(
        &mut self,
        sessions: &[&Session],
        audit: &[(usize, u32)],
        results: &mut [Result<T>],
        step: impl FnOnce(&mut dyn Backend, &[&Session]) -> Vec<Result<T>>,
    ) {
        if audit.is_empty() {
            return;
        }
        let views: Vec<Session> = audit
            .iter()
            .map(|&(at, id)| audit_view(sessions[at], id))
            .collect();
        let refs: Vec<&Session> = views.iter().collect();
        match self.with_audit(|p| step(p, &refs)) {
            Ok(answers) => {
                for (&(at, _), answer) in audit.iter().zip(answers) {
                    results[at] = answer;
                }
            }
            Err(e) => {
                for &(at, _) in audit {
                    results[at] = Err(e.clone());
                }
            }
        }
    }

    pub(super) fn kill_all(&mut self, sessions: &[&Session]) -> Vec<Result<Signalled>> {
        let mut results: Vec<Result<Signalled>> = Vec::with_capacity(sessions.len());
        let mut audit = Vec::new();
        for (at, session) in sessions.iter().enumerate() {
            results.push(match self.kill_one(session) {
                Ok(Killed::Done(sent)) => Ok(sent),
                Ok(Killed::ByAudit(id)) => {
                    audit.push((at, id));
                    Ok(Signalled::default())
                }
                Err(e) => Err(e),
            });
        }
        self.through_audit(sessions, &audit, &mut results, |p, s| p.kill(s));
        results
    }

    /// The SIGKILL step for one session: KillSession for a scope (counting what is left
    /// first); for our own session, SIGKILL through pidfds to all of it but logoff; for one
    /// followed by audit session ID, KillSession for logind's part, and its ID for the procfs
    /// backend's code to kill its processes.
    fn kill_one(&mut self, session: &Session) -> Result<Killed> {
        let own = self.is_own(session);
        let tracker = self.tracker(session)?;
        tracker.acted = true;
        let source = tracker.source.clone();
        if let Source::Audit(id) = source {
            if !own {
                let manager = self.manager()?;
                // logind may have dropped a scope-less session already: its processes remain.
                if let Err(e) = zbus::block_on(manager.kill_session(session.id.as_str(), "all", 9))
                    && !vanished(&e)
                {
                    return Err(action_error(self.locality, &e));
                }
            }
            return Ok(Killed::ByAudit(id));
        }
        if own {
            // KillSession would end logoff before it has verified the others are gone.
            return self.kill_through_pidfds(session).map(Killed::Done);
        }
        let left = self.members(session)?.len();
        let manager = self.manager()?;
        match zbus::block_on(manager.kill_session(session.id.as_str(), "all", 9)) {
            Ok(()) => Ok(Killed::Done(Signalled {
                processes: Some(left),
                ..Signalled::default()
            })),
            // logind forgets a session once its scope has stopped, and that can be between
            // the count above and KillSession (a session that ends by itself as the timeout
            // passes): whatever the scope may still hold is killed without logind.
            Err(e) if vanished(&e) => self.kill_scope(session, left).map(Killed::Done),
            Err(e) => Err(action_error(self.locality, &e)),
        }
    }

    /// SIGKILL to what a session's scope holds, once logind no longer knows the session:
    /// through pidfds where its cgroup is read here, else with systemd's `KillUnit` on the
    /// scope logind named (`left`: how many processes it had).
    fn kill_scope(&mut self, session: &Session, left: usize) -> Result<Signalled> {
        let Source::Systemd(scope) = self.tracker(session)?.source.clone() else {
            return self.kill_through_pidfds(session);
        };
        // Never anything but a scope: the name came from the other end of the bus.
        if !scope.ends_with(".scope") {
            return Err(Error::new(
                failure_kind(self.locality),
                format!("logind named {scope:?} as the session's scope"),
            ));
        }
        let systemd = zbus::block_on(SystemdProxy::new(&self.conn))
            .map_err(|e| bus_error(self.locality, &e, "cannot reach systemd"))?;
        match zbus::block_on(systemd.kill_unit(&scope, "all", 9)) {
            Ok(()) => Ok(Signalled {
                processes: Some(left),
                ..Signalled::default()
            }),
            Err(e) if no_such_unit(&e) => Ok(Signalled {
                processes: Some(0),
                ..Signalled::default()
            }),
            Err(e) => Err(action_error(self.locality, &e)),
        }
    }

    /// SIGKILL through pidfds to every process of a session followed through its cgroup
    /// here, but logoff itself: for our own session (KillSession would end logoff before it
    /// has verified the others are gone), and for one logind has forgotten.
    fn kill_through_pidfds(&mut self, session: &Session) -> Result<Signalled> {
        let members = self.members(session)?;
        self.watch(session, &members)?;
        let mut sent = Signalled::default();
        let mut count = 0;
        for (pid, handle) in &self.tracker(session)?.watched {
            match handle.signal(rustix::process::Signal::KILL) {
                Ok(true) => count += 1,
                Ok(false) => {}
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    sent.refused.push(Proc::new(*pid).info());
                }
                Err(e) => {
                    return Err(Error::io(
                        Kind::System,
                        format!("cannot signal process {pid}"),
                        e,
                    ));
                }
            }
        }
        sent.processes = Some(count);
        Ok(sent)
    }

    pub(super) fn remaining_all(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>> {
        let mut results: Vec<Result<Vec<ProcessInfo>>> =
            sessions.iter().map(|_| Ok(Vec::new())).collect();
        let (mut audit, mut scopes, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for (at, session) in sessions.iter().enumerate() {
            let own = self.is_own(session);
            match self.tracker(session).map(|t| t.source.clone()) {
                Err(e) => results[at] = Err(e),
                Ok(Source::Audit(id)) => audit.push((at, id)),
                Ok(Source::Untracked(why)) => results[at] = Err(untracked(session, why)),
                // A cgroup2 scope says itself when its last process has gone. Not our own
                // session's: we are in it.
                Ok(Source::Cgroup(dir)) if cgroup::has_events(&dir) && !own => {
                    scopes.push((at, dir));
                }
                Ok(_) => others.push(at),
            }
        }
        self.through_audit(sessions, &audit, &mut results, |p, s| p.remaining(s, until));
        let dirs: Vec<&std::path::Path> = scopes.iter().map(|(_, d)| d.as_path()).collect();
        match cgroup::wait_empty(&dirs, until) {
            Ok(empty) => {
                for (&(at, _), empty) in scopes.iter().zip(empty) {
                    results[at] = if empty {
                        Ok(Vec::new())
                    } else {
                        self.members(sessions[at]).map(named)
                    };
                }
            }
            Err(e) => {
                for &(at, _) in &scopes {
                    results[at] = Err(e.clone());
                }
            }
        }
        for at in others {
            results[at] = self.wait_one(sessions[at], until);
        }
        for (session, result) in sessions.iter().zip(results.iter_mut()) {
            if result.as_ref().is_ok_and(Vec::is_empty)
                && let Err(e) = self.settle(session)
            {
                *result = Err(e);
            }
        }
        results
    }

    /// Waits for one session by asking (systemd, or the cgroup without events), watching
    /// this host's processes through pidfds meanwhile.
    fn wait_one(&mut self, session: &Session, until: Deadline) -> Result<Vec<ProcessInfo>> {
        let mut pause = POLL_FIRST;
        loop {
            let left = self.members(session)?;
            if left.is_empty() || until.passed() {
                return Ok(named(left));
            }
            self.watch(session, &left)?;
            let tracker = self.tracker(session)?;
            let running: Vec<&Handle> = left
                .iter()
                .filter_map(|p| tracker.watched.get(&p.pid))
                .filter(|h| !h.has_exited())
                .collect();
            if running.len() == left.len() {
                // Every one of them watched: the pidfds say when they end.
                for handle in running {
                    if !handle.wait(until) {
                        break;
                    }
                }
                pause = POLL_FIRST;
                continue;
            }
            // Exited but not yet reaped, or another host's: ask again shortly.
            std::thread::sleep(pause.min(until.next_step()));
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}
