//! Ending sessions' processes, every target of a logoff together.
//!
//! SIGHUP, SIGTERM and SIGCONT go to every member (rescanning for processes forked
//! meanwhile), then SIGKILL to what is left, repeated until a scan finds no live member;
//! when processes keep appearing, a session is frozen with SIGSTOP before the next SIGKILL
//! ([`Procfs::freeze_and_kill`]). Every signal goes through a pidfd checked to still be a
//! member after it was opened ([`Handle`]). Each step is one pass over /proc for all the
//! sessions it concerns, so that ending many sessions costs what their processes cost, not
//! sessions × processes.

use std::collections::{HashMap, HashSet};

use rustix::process::Signal;

use super::facts::Member;
use super::{Key, Procfs, proc_error};
use crate::deadline::Deadline;
use crate::error::{Error, Kind, Result};
use crate::model::{Pid, ProcessInfo, Session, SessionId};
use crate::system::handle::Handle;
use crate::system::process::{self, Proc};

/// An upper bound on the scans of one SIGKILL step, so that a runaway cannot keep logoff busy
/// forever (the flow then names what is left).
const MAX_SCANS: usize = 1_000;

const POLITE: [Signal; 3] = [Signal::HUP, Signal::TERM, Signal::CONT];

/// The processes a logoff has signalled in one session so far, by step.
#[derive(Default)]
pub(super) struct Ending {
    asked: HashMap<Pid, Handle>,
    killed: HashMap<Pid, Handle>,
    /// Processes the kernel would not let us signal: not worth waiting for.
    refused: HashSet<Pid>,
    /// A scan after the last SIGKILL found every member signalled, and none was refused:
    /// no new process can appear, so once the killed ones have exited the session is empty.
    sealed: bool,
}

/// One session in a step: where it is in the caller's list, its key, what it has been sent.
struct Target {
    index: usize,
    key: Key,
    id: SessionId,
    tracker: Ending,
    sent: Sent,
}

/// What one step sent to one session.
#[derive(Default)]
struct Sent {
    signalled: usize,
    frozen: usize,
    refused: Vec<ProcessInfo>,
}

impl Procfs {
    /// Takes each session's tracker out, with its key; a session whose ID is not a key gets
    /// its error in `results`.
    fn targets<T>(&mut self, sessions: &[&Session], results: &mut [Result<T>]) -> Vec<Target> {
        let mut targets = Vec::new();
        for (index, s) in sessions.iter().enumerate() {
            match Key::of(s) {
                Ok(key) => targets.push(Target {
                    index,
                    key,
                    id: s.id.clone(),
                    tracker: self.trackers.remove(&s.id).unwrap_or_default(),
                    sent: Sent::default(),
                }),
                Err(e) => results[index] = Err(e),
            }
        }
        targets
    }

    /// Puts the trackers back and turns what was sent into each session's answer.
    fn settle_sent(
        &mut self,
        targets: Vec<Target>,
        results: &mut [Result<crate::backend::Signalled>],
        failed: Option<&Error>,
    ) {
        for mut t in targets {
            t.tracker
                .refused
                .extend(t.sent.refused.iter().map(|p| p.pid));
            results[t.index] = match failed {
                Some(e) => Err(e.clone()),
                None => Ok(crate::backend::Signalled {
                    processes: Some(t.sent.signalled),
                    frozen: (t.sent.frozen > 0).then_some(t.sent.frozen),
                    refused: t.sent.refused,
                }),
            };
            self.trackers.insert(t.id, t.tracker);
        }
    }

    /// One pass over /proc: the live processes of the sessions `keys` (key → position) that
    /// no handle in `known` accounts for, with the position of their session.
    fn scan(
        &self,
        keys: &HashMap<Key, usize>,
        known: &HashMap<Pid, &Handle>,
    ) -> Result<Vec<(usize, Proc)>> {
        process::scan(|proc| {
            let pid = proc.pid();
            if pid == self.own_pid {
                return Ok(None);
            }
            // A process we signalled that still holds its PID (running, or a zombie not yet
            // reaped) needs no read: it is accounted for. Reaped: the PID is a newcomer's.
            if known.get(&pid).is_some_and(|h| h.holds_pid()) {
                return Ok(None);
            }
            // Most processes are not members: the key decides before the costlier stat.
            let Some(&at) = self.key_of(&proc)?.and_then(|k| keys.get(&k)) else {
                return Ok(None);
            };
            Ok(proc.is_running()?.then_some((at, proc)))
        })
        .map_err(proc_error)
    }

    /// The live processes of each session of `keys` now (logoff itself left out): one pass
    /// over /proc for all of them. Every key has an entry, empty when nothing is left.
    pub(super) fn members_of_each(&self, keys: &[Key]) -> Result<HashMap<Key, Vec<Pid>>> {
        let at: HashMap<Key, usize> = keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let mut each: HashMap<Key, Vec<Pid>> = keys.iter().map(|&k| (k, Vec::new())).collect();
        for (i, p) in self.scan(&at, &HashMap::new())? {
            if let Some(members) = keys.get(i).and_then(|k| each.get_mut(k)) {
                members.push(p.pid());
            }
        }
        Ok(each)
    }

    /// The live processes of session `key` now (logoff itself left out).
    pub(super) fn members_now(&self, key: Key) -> Result<Vec<Proc>> {
        let keys = HashMap::from([(key, 0)]);
        Ok(self
            .scan(&keys, &HashMap::new())?
            .into_iter()
            .map(|(_, p)| p)
            .collect())
    }

    /// Opens a handle for each process that is still a member, sends it `signals`, and keeps
    /// it in `done`. Counts what was signalled; what the kernel refused goes to `sent`.
    fn signal(
        &self,
        key: Key,
        procs: impl IntoIterator<Item = Proc>,
        done: &mut HashMap<Pid, Handle>,
        signals: &[Signal],
        sent: &mut Sent,
    ) -> Result<()> {
        for proc in procs {
            if proc.pid() == self.own_pid {
                continue;
            }
            let Some(handle) =
                Handle::open(&proc, |p| Ok(self.key_of(p)? == Some(key))).map_err(proc_error)?
            else {
                continue;
            };
            if send(&handle, signals, &mut sent.refused)? {
                sent.signalled += 1;
            }
            done.insert(proc.pid(), handle);
        }
        Ok(())
    }

    /// [`Procfs::signal`] for listed members: through the pidfd the listing verified where it
    /// kept one, else with the check.
    fn signal_members(
        &self,
        key: Key,
        members: Vec<Member>,
        done: &mut HashMap<Pid, Handle>,
        signals: &[Signal],
        sent: &mut Sent,
    ) -> Result<()> {
        let mut unverified = Vec::new();
        for member in members {
            match member.handle {
                Some(handle) => {
                    if send(&handle, signals, &mut sent.refused)? {
                        sent.signalled += 1;
                    }
                    done.insert(member.pid, handle);
                }
                None => unverified.push(Proc::new(member.pid)),
            }
        }
        self.signal(key, unverified, done, signals, sent)
    }

    /// SIGHUP, SIGTERM, SIGCONT: the first time to the members the listing found (no scan),
    /// afterwards to what one scan for all of them finds that was not asked yet.
    pub(super) fn terminate_all(
        &mut self,
        sessions: &[&Session],
    ) -> Vec<Result<crate::backend::Signalled>> {
        let mut results: Vec<Result<_>> = sessions.iter().map(|_| Ok(Default::default())).collect();
        let mut targets = self.targets(sessions, &mut results);
        let failed = self.ask(&mut targets).err();
        self.settle_sent(targets, &mut results, failed.as_ref());
        results
    }

    fn ask(&mut self, targets: &mut [Target]) -> Result<()> {
        let mut rescan = HashMap::new();
        for (at, t) in targets.iter_mut().enumerate() {
            match self.members.remove(&t.id) {
                Some(members) if t.tracker.asked.is_empty() => {
                    let asked = &mut t.tracker.asked;
                    self.signal_members(t.key, members, asked, &POLITE, &mut t.sent)?;
                }
                _ => {
                    rescan.insert(t.key, at);
                }
            }
        }
        if rescan.is_empty() {
            return Ok(());
        }
        let found = {
            let known = handles(targets.iter(), true);
            self.scan(&rescan, &known)?
        };
        for (at, proc) in found {
            let t = &mut targets[at];
            self.signal(t.key, [proc], &mut t.tracker.asked, &POLITE, &mut t.sent)?;
        }
        Ok(())
    }

    /// SIGKILL to every member: those already asked through the pidfds held since, the listed
    /// ones through new pidfds. Then scans — one for all sessions not sealed yet — for
    /// members forked before their parent got SIGKILL (a process with SIGKILL pending cannot
    /// fork, so none can appear after the scan has begun): a session where one turns up
    /// forks as fast as it dies, and is frozen before it is killed. Until a scan finds no
    /// member left unsignalled; the session is then sealed: no new process can appear.
    pub(super) fn kill_all(
        &mut self,
        sessions: &[&Session],
    ) -> Vec<Result<crate::backend::Signalled>> {
        let mut results: Vec<Result<_>> = sessions.iter().map(|_| Ok(Default::default())).collect();
        let mut targets = self.targets(sessions, &mut results);
        let failed = self.kill_targets(&mut targets).err();
        self.settle_sent(targets, &mut results, failed.as_ref());
        results
    }

    fn kill_targets(&mut self, targets: &mut [Target]) -> Result<()> {
        for t in targets.iter_mut() {
            for (pid, handle) in std::mem::take(&mut t.tracker.asked) {
                if !handle.has_exited() && send(&handle, &[Signal::KILL], &mut t.sent.refused)? {
                    t.sent.signalled += 1;
                }
                t.tracker.killed.insert(pid, handle);
            }
            // Listed but never asked (a zero timeout).
            if let Some(members) = self.members.remove(&t.id) {
                let fresh: Vec<Member> = members
                    .into_iter()
                    .filter(|m| !t.tracker.killed.contains_key(&m.pid))
                    .collect();
                let killed = &mut t.tracker.killed;
                self.signal_members(t.key, fresh, killed, &[Signal::KILL], &mut t.sent)?;
            }
            t.tracker.sealed = false;
        }
        let mut open: Vec<usize> = (0..targets.len()).collect();
        for _ in 0..MAX_SCANS {
            if open.is_empty() {
                break;
            }
            let keys: HashMap<Key, usize> = open.iter().map(|&at| (targets[at].key, at)).collect();
            let found = {
                let known = handles(open.iter().map(|&at| &targets[at]), false);
                self.scan(&keys, &known)?
            };
            let mut missed: HashMap<usize, Vec<Proc>> = HashMap::new();
            for (at, proc) in found {
                missed.entry(at).or_default().push(proc);
            }
            // A session the scan found nothing of is done; the others are scanned again.
            let mut again = Vec::new();
            for &at in &open {
                let t = &mut targets[at];
                match missed.remove(&at) {
                    None => {
                        t.tracker.sealed =
                            t.sent.refused.is_empty() && t.tracker.refused.is_empty();
                        continue;
                    }
                    // Nothing listed (or all of it gone): the scan's finds are the session.
                    Some(procs) if t.tracker.killed.is_empty() => {
                        let killed = &mut t.tracker.killed;
                        self.signal(t.key, procs, killed, &[Signal::KILL], &mut t.sent)?;
                    }
                    Some(procs) => self.freeze_and_kill(t, procs)?,
                }
                again.push(at);
            }
            open = again;
        }
        Ok(())
    }

    /// Freezes `first` and every member of the session found after it with SIGSTOP,
    /// rescanning until a scan finds nobody new, then kills them all. Stopped processes
    /// cannot fork and keep their process slots, so a fork loop that refills the slots its
    /// killed children free cannot outrun this.
    fn freeze_and_kill(&self, t: &mut Target, first: Vec<Proc>) -> Result<()> {
        let mut stopped = HashMap::new();
        let keys = HashMap::from([(t.key, 0)]);
        let mut batch = first;
        for _ in 0..MAX_SCANS {
            if batch.is_empty() {
                break;
            }
            self.signal(t.key, batch, &mut stopped, &[Signal::STOP], &mut t.sent)?;
            let known: HashMap<Pid, &Handle> = t
                .tracker
                .killed
                .iter()
                .chain(stopped.iter())
                .map(|(p, h)| (*p, h))
                .collect();
            batch = self
                .scan(&keys, &known)?
                .into_iter()
                .map(|(_, p)| p)
                .collect();
        }
        t.sent.frozen += stopped.len();
        // (The STOPs counted as signalled; each is then killed.)
        for (pid, handle) in stopped {
            send(&handle, &[Signal::KILL], &mut t.sent.refused)?;
            t.tracker.killed.insert(pid, handle);
        }
        Ok(())
    }

    /// What is left of each session once it has ended or `until` has passed: the processes
    /// signalled so far, waited for through their pidfds (killed ones first: they end
    /// soonest; refused ones not at all), then one scan for all sessions not sealed.
    pub(super) fn remaining_all(
        &mut self,
        sessions: &[&Session],
        until: Deadline,
    ) -> Vec<Result<Vec<ProcessInfo>>> {
        let mut results: Vec<Result<Vec<ProcessInfo>>> =
            sessions.iter().map(|_| Ok(Vec::new())).collect();
        let targets = self.targets(sessions, &mut results);
        let mut keys = HashMap::new();
        for (at, t) in targets.iter().enumerate() {
            let tracker = &t.tracker;
            let mut waits = tracker.killed.iter().chain(tracker.asked.iter());
            // Waited for until one does not end by the deadline: it, those after it and those
            // the kernel would not let us signal (not waited for) are asked again below.
            let mut unsure = Vec::new();
            for (pid, handle) in waits.by_ref() {
                if tracker.refused.contains(pid) {
                    unsure.push((pid, handle));
                } else if !handle.wait(until) {
                    unsure.push((pid, handle));
                    break;
                }
            }
            let running: Vec<ProcessInfo> = unsure
                .into_iter()
                .chain(waits)
                .filter(|(_, h)| !h.has_exited())
                .map(|(pid, _)| Proc::new(*pid).info())
                .collect();
            // Sealed and every killed process has exited: nothing of it can be left.
            if !(tracker.sealed && running.is_empty()) {
                keys.insert(t.key, at);
            }
            results[t.index] = Ok(running);
        }
        if !keys.is_empty() {
            let found = {
                let known = handles(targets.iter(), true);
                self.scan(&keys, &known)
            };
            match found {
                Ok(found) => {
                    for (at, proc) in found {
                        if let Ok(left) = &mut results[targets[at].index] {
                            left.push(proc.info());
                        }
                    }
                }
                Err(e) => {
                    for t in &targets {
                        results[t.index] = Err(e.clone());
                    }
                }
            }
        }
        for t in targets {
            self.trackers.insert(t.id, t.tracker);
        }
        results
    }
}

/// The handles of `targets` (killed ones, and with `asked` the politely asked ones too), by
/// PID.
fn handles<'a>(targets: impl Iterator<Item = &'a Target>, asked: bool) -> HashMap<Pid, &'a Handle> {
    let mut known = HashMap::new();
    for t in targets {
        known.extend(t.tracker.killed.iter().map(|(p, h)| (*p, h)));
        if asked {
            known.extend(t.tracker.asked.iter().map(|(p, h)| (*p, h)));
        }
    }
    known
}

/// Sends `signals` in order through `handle`: `Ok(false)` if the process had already ended.
/// A refusal (EPERM) is recorded in `refused`, not an error: the process survives, and the
/// logoff says so.
fn send(handle: &Handle, signals: &[Signal], refused: &mut Vec<ProcessInfo>) -> Result<bool> {
    for &signal in signals {
        match handle.signal(signal) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                refused.push(Proc::new(handle.pid()).info());
                return Ok(false);
            }
            Err(e) => {
                return Err(Error::io(
                    Kind::System,
                    format!("cannot signal process {}", handle.pid()),
                    e,
                ));
            }
        }
    }
    Ok(true)
}
