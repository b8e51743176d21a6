//! logoffd's decisions ([`planner`]) carried out: warnings written to sessions, warned
//! logoffs called off, and at a deadline the command's own end of a session —
//! [`logoff::end`], with the daemon's [`Steady`] control — after the session is read again,
//! once, on the backend that ends it, so that a user who became active at the last moment
//! keeps it. Each logoff
//! writes the audit record the command writes ([`audit`]), with the rule and the reason.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::log::Log;
use super::metrics::{Counted, Counters};
use super::notice::{cancel_text, left_until, warning_text};
use super::planner::{self, Decision, Delivery, Due, Notice, Tracking, WarningOf};
use super::state::Memory;
use crate::audit::{self, AuditLog};
use crate::backend::{self, Backend, Choice, Purpose};
use crate::error::Result;
use crate::logoff::{
    self, ConsolePolicy, Effect, Ending, Hooks, Options, Steady, Targets, Warning,
};
use crate::model::{Session, SessionKey, Uid};
use crate::policy::{Limit, Policy, Reason, RuleId};
use crate::system::users::Person;
use crate::time;

/// What a pass's decisions are carried out against.
pub struct Situation<'a> {
    pub policy: &'a Policy,
    pub memory: &'a Memory,
    /// Steady time, and the wall clock's offset ([`super::clock`]).
    pub now: crate::time::Now,
    pub clock: &'a super::clock::Steady,
}

/// What logoffd carries its decisions out with.
pub struct Actor {
    /// Opens a backend to end sessions with, at each deadline.
    opener: Opener,
    pub log: Log,
    audit: AuditLog,
    person: Person,
    host: String,
    /// What was done, counted for the metrics.
    pub tally: std::cell::RefCell<Counters>,
}

/// How a logoff at a deadline went, for the tracking.
#[derive(Clone, Copy)]
pub enum Acted {
    /// Logged off (or ended before): forget it.
    Done,
    /// Not due after all (activity at the last moment): the next pass sees it afresh.
    NotDue,
    /// Failed: not again before the next scan.
    Failed,
}

/// How [`Actor`] gets a backend to end sessions with.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Backend>>>;

impl Actor {
    pub fn new(choice: Choice, log: Log, tally: Counters) -> Actor {
        let opener: Opener =
            Box::new(move || Ok(backend::open_here(choice, Purpose::EndSessions)?.backend));
        Actor::with(opener, AuditLog::open(), log, tally)
    }

    /// An actor that ends sessions on what `opener` opens and keeps its records in `audit`.
    pub fn with(opener: Opener, audit: AuditLog, log: Log, tally: Counters) -> Actor {
        Actor {
            opener,
            log,
            audit,
            person: Person::current(),
            host: crate::system::host::hostname(),
            tally: std::cell::RefCell::new(tally),
        }
    }

    /// Carries out the actions of one pass on the sessions it saw (`lister`: the backend
    /// they were listed with). Returns the tracking as the logoffs left it.
    pub fn carry_out(
        &mut self,
        lister: &mut dyn Backend,
        sessions: &[Session],
        at: &Situation<'_>,
        mut tracking: Tracking,
        decisions: Vec<Decision>,
    ) -> Tracking {
        let by_key: HashMap<SessionKey, &Session> = sessions.iter().map(|s| (s.key(), s)).collect();
        for decision in decisions {
            match decision {
                Decision::Warn { key, notice } => {
                    if let Some(s) = by_key.get(&key) {
                        self.warn(lister, s, at, &notice);
                    }
                }
                Decision::Cancel {
                    key,
                    of,
                    why,
                    delivery,
                } => {
                    if let Some(s) = by_key.get(&key) {
                        self.cancel(lister, s, &of, &why, delivery);
                    }
                }
                Decision::WouldLogOff { key, due } => {
                    if let Some(s) = by_key.get(&key) {
                        self.log.info(&format!(
                            "{}: would log off {} (rule {}, {}); touched nothing",
                            at.policy.mode.as_str(),
                            s.describe(),
                            rule_name(at.policy, due.rule),
                            due.limit.words()
                        ));
                    }
                }
                Decision::LogOff { key, .. } => {
                    let acted = self.log_off(at, &tracking, &key);
                    self.after(
                        lister,
                        &mut tracking,
                        at,
                        by_key.get(&key).copied(),
                        &key,
                        acted,
                    );
                }
            }
        }
        tracking
    }

    /// The tracking of a session after a logoff at its deadline was tried.
    fn after(
        &self,
        lister: &mut dyn Backend,
        tracking: &mut Tracking,
        at: &Situation<'_>,
        session: Option<&Session>,
        key: &SessionKey,
        acted: Acted,
    ) {
        match acted {
            Acted::Done => {
                tracking.remove(key);
            }
            Acted::NotDue => {
                if let (Some(t), Some(s)) = (tracking.remove(key), session)
                    && !t.warned.is_empty()
                {
                    let why = "activity was seen in it";
                    self.cancel(lister, s, &t.warning_of(), why, Delivery::ToUsers);
                }
            }
            Acted::Failed => {
                if let Some(t) = tracking.get_mut(key) {
                    t.quiet_until = Some(time::add(at.now.at, at.policy.scan_interval));
                }
            }
        }
    }

    /// The warning, on the session's terminals and display (in dry-run: logged only).
    fn warn(&self, backend: &mut dyn Backend, s: &Session, at: &Situation<'_>, notice: &Notice) {
        let Some(r) = at.policy.rule(notice.rule) else {
            return;
        };
        let limit = &notice.limit;
        let left = left_until(at.now.at, notice.acts_at);
        if notice.delivery == Delivery::LogOnly {
            self.log.info(&format!(
                "dry-run: would warn {} ({}, rule {}): logoff in {left}",
                s.describe(),
                limit.words(),
                r.name
            ));
            return;
        }
        let text = warning_text(s, r, limit, notice.acts_at, at.now);
        match backend.warn(s, &text) {
            Ok(w) if !w.reached.is_empty() => {
                self.count(Counted::Warned, &r.name, limit.reason);
                self.log.info(&format!(
                    "warned {} on {} (rule {}, {}): logoff in {left}",
                    s.describe(),
                    w.reached.join(", "),
                    r.name,
                    limit.words()
                ));
            }
            Ok(w) => self.log.warn(&format!(
                "could not warn {} (rule {}): {}",
                s.describe(),
                r.name,
                if w.missed.is_empty() {
                    "no terminal or display to warn on".to_string()
                } else {
                    w.missed.join(", ")
                }
            )),
            Err(e) => self
                .log
                .warn(&format!("could not warn {}: {e}", s.describe())),
        }
    }

    /// Tells the users of a warned session that its logoff will not happen now.
    pub fn cancel(
        &self,
        backend: &mut dyn Backend,
        s: &Session,
        of: &WarningOf,
        why: &str,
        delivery: Delivery,
    ) {
        self.log.info(&format!(
            "the {} of {} (rule {}) is off: {why}",
            of.action.as_str(),
            s.describe(),
            of.rule_name
        ));
        if delivery == Delivery::ToUsers {
            self.count(Counted::Cancelled, &of.rule_name, of.reason);
            let _ = backend.warn(s, &cancel_text(why, of.action));
        }
    }

    fn count(&self, counted: Counted, rule: &str, reason: Reason) {
        self.tally.borrow_mut().count(counted, rule, reason);
    }

    /// Reads the session again — one listing, on the backend that will end it — and, if a
    /// limit still stands, ends it with the command's own [`logoff::end`] (the limit due
    /// now, which may be another than the pass saw).
    fn log_off(&self, at: &Situation<'_>, tracking: &Tracking, key: &SessionKey) -> Acted {
        let mut backend = match (self.opener)() {
            Ok(backend) => backend,
            Err(e) => {
                self.log
                    .error(&format!("cannot open the backend to log off: {e}"));
                return Acted::Failed;
            }
        };
        let mut fresh = match look(backend.as_mut(), at.policy, None) {
            Ok((sessions, _)) => sessions,
            Err(e) => {
                self.log.error(&format!("cannot look at the sessions: {e}"));
                return Acted::Failed;
            }
        };
        at.clock.steady_facts(&mut fresh);
        at.memory.lend(&mut fresh);
        let Some(session) = fresh.iter().find(|s| s.key() == *key).cloned() else {
            self.log
                .info(&format!("session {} ended before its deadline", key.id()));
            return Acted::Done;
        };
        // The same decision on what is true now, with every session: whether a client
        // reaches this one depends on the others.
        let now = crate::time::Now {
            at: at.clock.peek(),
            offset: at.now.offset,
        };
        let again = planner::step(at.policy, &fresh, at.memory, tracking, now);
        // What is due now (another limit of the rule may have come first meanwhile).
        let Some(due) = again.decisions.iter().find_map(|a| match a {
            Decision::LogOff { key: k, due } if k == key => Some(due),
            _ => None,
        }) else {
            return Acted::NotDue;
        };
        let describe = session.describe();
        match self.end(backend.as_mut(), at, session, fresh, due, tracking.get(key)) {
            Ok(true) => Acted::Done,
            Ok(false) => Acted::Failed,
            Err(e) => {
                self.log
                    .error(&format!("could not log off {describe}: {e}"));
                Acted::Failed
            }
        }
    }

    /// The command's end of one session it holds (`listed`: the listing it was found in),
    /// on the backend it was listed with. Whether it was logged off.
    fn end(
        &self,
        backend: &mut dyn Backend,
        at: &Situation<'_>,
        session: Session,
        listed: Vec<Session>,
        due: &Due,
        tracked: Option<&planner::Tracked>,
    ) -> Result<bool> {
        let (limit, Some(r)) = (&due.limit, at.policy.rule(due.rule)) else {
            return Ok(false);
        };
        // The console's protection is lifted only where the rule names the console.
        let console = if r.matches.console == Some(true) {
            ConsolePolicy::Allow
        } else {
            ConsolePolicy::Protect
        };
        let ending = Ending {
            options: Options {
                timeout: r.timeout,
                console,
                tick: None,
            },
            warning: Warning {
                message: None,
                grace: Duration::ZERO,
                by: format!("logoffd@{}", self.host),
                action: limit.action,
            },
            dry_run: false,
            action: limit.action,
        };
        let warned_for = tracked
            .and_then(|t| t.first_warned)
            .map_or(Duration::ZERO, |first| {
                time::between(first, at.clock.peek())
            });
        let mut hooks = Record {
            actor: self,
            context: audit::Context {
                action: limit.action,
                caller: &self.person,
                host: &self.host,
                machine: None,
                grace: warned_for,
                message: !r.warn.is_empty(),
                console,
                timeout: r.timeout,
                policy: Some((r.name.as_str(), limit.reason)),
            },
            limit,
            logged_off: false,
        };
        let targets = Targets::held(backend, vec![session], listed)?;
        logoff::end(backend, &targets, &ending, &Steady, &mut hooks)?;
        Ok(hooks.logged_off)
    }
}

fn rule_name(policy: &Policy, rule: RuleId) -> &str {
    policy.rule(rule).map_or("?", |r| r.name.as_str())
}

/// The flow's hooks for the daemon: problems to the log, each attempt to the audit trail and
/// the log; the rest unsaid (the record says it).
struct Record<'a> {
    actor: &'a Actor,
    context: audit::Context<'a>,
    limit: &'a Limit,
    logged_off: bool,
}

impl Hooks for Record<'_> {
    fn narrate(&mut self, _line: &str) {}

    fn problem(&mut self, line: &str) {
        self.actor.log.warn(line);
    }

    fn attempted(&mut self, s: &Session, result: &Result<Effect>) {
        if let Err(e) = self.actor.audit.record(&self.context, s, result) {
            self.actor.log.warn(e.message());
        }
        let rule = self.context.policy.map_or("?", |(r, _)| r);
        let done = matches!(result, Ok(Effect::LoggedOff(_) | Effect::Disconnected(_)));
        if done || result.is_err() {
            self.actor.count(
                Counted::of(self.limit.action, done),
                rule,
                self.limit.reason,
            );
        }
        match result {
            Ok(Effect::LoggedOff(done)) => {
                self.logged_off = true;
                self.actor.log.info(&format!(
                    "logged off {} (rule {rule}, {}): {} processes asked to end, {} killed",
                    s.describe(),
                    self.limit.words(),
                    done.asked.unwrap_or(0),
                    done.killed.unwrap_or(0)
                ));
            }
            Ok(Effect::Disconnected(cut)) => {
                self.logged_off = true;
                self.actor.log.info(&format!(
                    "disconnected {} (rule {rule}, {}): its connection ended{}; its programs \
                     keep running",
                    s.describe(),
                    self.limit.words(),
                    cut.client
                        .as_deref()
                        .map(|c| format!(" (client {c})"))
                        .unwrap_or_default()
                ));
            }
            Ok(_) => {}
            Err(e) => self.actor.log.error(&format!(
                "{} of {} (rule {rule}, {}) failed: {e}",
                self.limit.action.as_str(),
                s.describe(),
                self.limit.words()
            )),
        }
    }
}

/// Picks, among the users a policy watches, those whose sessions are read now.
pub type DueUsers<'a> = &'a dyn Fn(&[Session], &HashSet<Uid>) -> HashSet<Uid>;

/// Every session, with what its users did last where the policy can act on it: read now
/// for the users `due` picks among those the policy watches (all of them: `None`).
pub fn look(
    lister: &mut dyn Backend,
    policy: &Policy,
    due: Option<DueUsers<'_>>,
) -> Result<(Vec<Session>, HashSet<Uid>)> {
    let mut sessions = lister.list()?;
    let watched = policy.watched_users(&sessions);
    let fresh = match due {
        Some(due) => due(&sessions, &watched),
        None => watched,
    };
    backend::observe_some(lister, &mut sessions, policy.sources(), |s| {
        s.uid.is_some_and(|u| fresh.contains(&u))
    })?;
    Ok((sessions, fresh))
}

#[cfg(test)]
mod tests;
