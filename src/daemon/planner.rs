//! logoffd's decisions, pure: given the policy, this pass's sessions, what is remembered of
//! them, what the last pass left and the time, [`step`] says what to do now — warn, call a
//! warned logoff off, log off, or report what would be done — and when to look again. It
//! reads no clock and touches nothing: every verdict is tested at a fixed moment.
//!
//! The warnings of a rule are a promise: a session is never logged off sooner than the
//! shortest of its rule's lead times after its first warning went out. A limit already past
//! when a session is first seen (at a start, after a reload, when a fact changed) warns now
//! and acts that lead time later.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::state::Memory;
use crate::model::{Session, SessionKey};
use crate::policy::time_limit::{AllowanceLeft, TimeLimit};
use crate::policy::{Enforcement, Limit, Policy, Reason, RuleId, Verdict};
use crate::time;

/// While a warning of an idle limit is out, how often the session is looked at for activity.
pub const ACTIVITY_CHECK: Duration = Duration::from_secs(5);

/// How soon the next pass comes at the earliest.
const MIN_WAKE: Duration = Duration::from_millis(100);

/// What logoffd keeps of a session under a limit between passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub rule: RuleId,
    /// The rule's name, for what users are told once it is gone (a reload).
    pub rule_name: String,
    pub reason: Reason,
    /// What reaching it does (log off, disconnect).
    pub action: crate::logoff::Action,
    /// When the policy says the limit acts (later after activity).
    pub acts_at: Timestamp,
    /// Lead times of the warnings given (or, in dry-run, logged).
    pub warned: Vec<Duration>,
    /// When the first warning went out.
    pub first_warned: Option<Timestamp>,
    /// Reported (dry-run, warn-only) or a logoff failed: not again before this time.
    pub quiet_until: Option<Timestamp>,
    /// Begun with its user's allowance used up: acted on with no lead, on every look until
    /// it is gone (the deadline's own look again included).
    pub no_lead: bool,
}

/// Every session under a limit, by key.
pub type Tracking = BTreeMap<SessionKey, Tracked>;

/// Whether users are told, or only the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    ToUsers,
    LogOnly,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Warn the session's users.
    Warn { key: SessionKey, notice: Notice },
    /// A warned session will not be logged off now (`why`).
    Cancel {
        key: SessionKey,
        of: WarningOf,
        why: String,
        delivery: Delivery,
    },
    /// Its limit has come: log it off (after reading it again).
    LogOff { key: SessionKey, due: Due },
    /// Its limit has come, and the mode says to touch nothing: say what would be done.
    WouldLogOff { key: SessionKey, due: Due },
}

/// What a warning that is called off was about.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningOf {
    /// The rule's name (the rule may be gone: a reload).
    pub rule_name: String,
    pub reason: Reason,
    pub action: crate::logoff::Action,
}

impl Tracked {
    /// What the warnings given to this session were about.
    pub fn warning_of(&self) -> WarningOf {
        WarningOf {
            rule_name: self.rule_name.clone(),
            reason: self.reason,
            action: self.action,
        }
    }
}

/// A warning: the limit of which rule acts when.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub rule: RuleId,
    pub limit: Limit,
    /// When it acts (the limit's moment, or later: see [`promised`]).
    pub acts_at: Timestamp,
    pub delivery: Delivery,
}

/// A limit that has come.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub rule: RuleId,
    pub limit: Limit,
}

/// One pass's decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub decisions: Vec<Decision>,
    /// What is kept for the next pass.
    pub tracking: Tracking,
    /// Each session's deadline, for `logoff --list`, by key.
    pub published: BTreeMap<String, TimeLimit>,
    /// The verdict on each session, in order (for the log and `--check`).
    pub verdicts: Vec<Verdict>,
    /// When to look again.
    pub wake: Timestamp,
}

/// The decisions of one pass over `sessions` at `now` (see the module's doc). Every time
/// here is logoffd's steady time ([`crate::time::Now`]); the wall clock's offset from it
/// serves logon hours only.
pub fn step(
    policy: &Policy,
    sessions: &[Session],
    memory: &Memory,
    last: &Tracking,
    now: impl Into<crate::time::Now>,
) -> Step {
    let at = now.into();
    let now = at.at;
    let verdicts = policy.evaluate(sessions, |s| memory.of(s), at);
    let mut pass = Pass {
        policy,
        now,
        decisions: Vec::new(),
        tracking: Tracking::new(),
        published: BTreeMap::new(),
        wake: time::add(now, policy.scan_interval),
    };
    for (s, verdict) in sessions.iter().zip(&verdicts) {
        let key = s.key();
        let before = last.get(&key);
        match (verdict.rule(), verdict.limit()) {
            (Some(rule), Some(limit)) => pass.limited(key, before, rule, limit, s.logon_time),
            _ => {
                if let Some(t) = before.filter(|t| !t.warned.is_empty()) {
                    let why = verdict.why_not().unwrap_or_default();
                    pass.cancel(key, t, &format!("it is no longer under a limit: {why}"));
                }
            }
        }
    }
    Step {
        decisions: pass.decisions,
        tracking: pass.tracking,
        published: pass.published,
        verdicts,
        wake: pass.wake.max(time::add(now, MIN_WAKE)),
    }
}

/// One pass under way.
struct Pass<'a> {
    policy: &'a Policy,
    now: Timestamp,
    decisions: Vec<Decision>,
    tracking: Tracking,
    published: BTreeMap<String, TimeLimit>,
    wake: Timestamp,
}

impl Pass<'_> {
    fn delivery(&self) -> Delivery {
        match self.policy.mode {
            Enforcement::DryRun => Delivery::LogOnly,
            Enforcement::Enforce | Enforcement::WarnOnly => Delivery::ToUsers,
        }
    }

    fn cancel(&mut self, key: SessionKey, t: &Tracked, why: &str) {
        self.decisions.push(Decision::Cancel {
            key,
            of: t.warning_of(),
            why: why.to_string(),
            delivery: self.delivery(),
        });
    }

    /// A session under `limit` of `rule`; `before`: what the last pass kept of it.
    fn limited(
        &mut self,
        key: SessionKey,
        before: Option<&Tracked>,
        rule: RuleId,
        limit: &Limit,
        logon: Option<Timestamp>,
    ) {
        let Some(r) = self.policy.rule(rule) else {
            return;
        };
        let used_up_at_logon = self.used_up_at_logon(before, limit, logon);
        // Another rule or limit, or a deadline later than it was (the user was active): the
        // warnings given are void, and the users are told.
        // An allowance's end moves later while it is not used (an idle session, where only
        // active time counts): within the longest lead its warnings stand.
        let slack = match limit.reason {
            Reason::Allowance => r.warn.first().copied().unwrap_or_default(),
            _ => Duration::ZERO,
        }
        .max(Duration::from_secs(1));
        let moved = before.is_some_and(|t| {
            t.rule != rule
                || t.reason != limit.reason
                || t.action != limit.action
                || limit.acts_at > time::add(t.acts_at, slack)
        });
        if let Some(t) = before.filter(|t| moved && !t.warned.is_empty()) {
            self.cancel(key.clone(), t, "activity was seen in it");
        }
        let mut t = match before {
            Some(t) if !moved => t.clone(),
            _ => Tracked {
                rule,
                rule_name: r.name.clone(),
                reason: limit.reason,
                action: limit.action,
                acts_at: limit.acts_at,
                warned: Vec::new(),
                first_warned: None,
                quiet_until: None,
                no_lead: false,
            },
        };
        t.no_lead = used_up_at_logon;
        t.acts_at = limit.acts_at;
        let due: Vec<Duration> = limit
            .warnings
            .iter()
            .filter(|(lead, at)| *at <= self.now && !t.warned.contains(lead))
            .map(|(lead, _)| *lead)
            .collect();
        if !due.is_empty() {
            t.warned.extend(&due);
            t.first_warned.get_or_insert(self.now);
        }
        let acts_at = if used_up_at_logon {
            limit.acts_at.min(self.now)
        } else {
            promised(limit, &t, r.warn.last().copied())
        };
        self.publish(&key, &r.name, limit, acts_at);
        if let Some(until) = t.quiet_until.filter(|until| *until > self.now) {
            self.wake = self.wake.min(until);
        } else if acts_at <= self.now {
            if used_up_at_logon && before.is_none_or(|b| b.warned.is_empty()) {
                self.warn(&key, rule, limit, acts_at);
            }
            self.act(&key, &mut t, rule, limit);
        } else {
            if !due.is_empty() {
                self.warn(&key, rule, limit, acts_at);
            }
            self.wake_for(&t, limit, acts_at);
        }
        self.tracking.insert(key, t);
    }

    /// Whether a session is one begun with its user's allowance used up: it gets no lead (it
    /// is told, and logged off now), as long as it is tracked. A lead each time would let a
    /// user who logs on again and again use the allowance on. Begun: since about the last
    /// pass (a restart of logoffd finds older sessions first, and they keep their lead).
    fn used_up_at_logon(
        &self,
        before: Option<&Tracked>,
        limit: &Limit,
        logon: Option<Timestamp>,
    ) -> bool {
        let used_up = limit.reason == Reason::Allowance
            && limit.allowance.as_ref().is_some_and(|a| a.left.is_zero());
        let recent = self
            .policy
            .scan_interval
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(10));
        used_up
            && match before {
                Some(t) => t.no_lead,
                None => logon.is_some_and(|l| time::between(l, self.now) <= recent),
            }
    }

    /// What `logoff --list` shows of the session's time limit.
    fn publish(&mut self, key: &SessionKey, rule_name: &str, limit: &Limit, acts_at: Timestamp) {
        self.published.insert(
            key.to_string(),
            TimeLimit {
                rule: rule_name.to_string(),
                reason: limit.reason,
                logoff_at: acts_at,
                warn_at: limit.warnings.iter().map(|(_, at)| *at).collect(),
                allowance: limit.allowance.as_ref().map(|a| AllowanceLeft {
                    of: a.of.clone(),
                    left_seconds: (!a.counting).then_some(a.left.as_secs()),
                    ends_at: a.counting.then(|| time::add(self.now, a.left)),
                }),
            },
        );
    }

    /// A warning that `limit` acts at `acts_at`.
    fn warn(&mut self, key: &SessionKey, rule: RuleId, limit: &Limit, acts_at: Timestamp) {
        self.decisions.push(Decision::Warn {
            key: key.clone(),
            notice: Notice {
                rule,
                limit: limit.clone(),
                acts_at,
                delivery: self.delivery(),
            },
        });
    }

    /// The limit has come: log off, or say what would be done (once).
    fn act(&mut self, key: &SessionKey, t: &mut Tracked, rule: RuleId, limit: &Limit) {
        let key = key.clone();
        let due = Due {
            rule,
            limit: limit.clone(),
        };
        if self.policy.mode == Enforcement::Enforce {
            self.decisions.push(Decision::LogOff { key, due });
        } else {
            self.decisions.push(Decision::WouldLogOff { key, due });
            t.quiet_until = Some(Timestamp::MAX);
        }
    }

    /// When this session needs a look again: its deadline, its next warning, and while a
    /// warning of an idle limit is out, soon (activity calls the logoff off).
    fn wake_for(&mut self, t: &Tracked, limit: &Limit, acts_at: Timestamp) {
        let mut next = acts_at;
        if let Some((_, at)) = limit.warnings.iter().find(|(_, at)| *at > self.now) {
            next = next.min(*at);
        }
        if !t.warned.is_empty() && limit.reason == Reason::Idle {
            next = next.min(time::add(self.now, ACTIVITY_CHECK));
        }
        self.wake = self.wake.min(next);
    }
}

/// When a limit acts, given the warnings given: never sooner than the shortest lead time
/// after the first warning (`shortest`: the rule's shortest lead, if it warns at all).
fn promised(limit: &Limit, t: &Tracked, shortest: Option<Duration>) -> Timestamp {
    match (t.first_warned, shortest) {
        (Some(first), Some(lead)) => limit.acts_at.max(time::add(first, lead)),
        _ => limit.acts_at,
    }
}

/// The tracking of `last`, for a policy read again: each entry's rule found by its name in
/// `policy` (a rule that is gone gets no place: the next pass calls its warned logoffs off).
pub fn carry_over(last: Tracking, policy: &Policy) -> Tracking {
    last.into_iter()
        .map(|(key, mut t)| {
            t.rule = policy.rule_named(&t.rule_name).unwrap_or(RuleId::NONE);
            (key, t)
        })
        .collect()
}

#[cfg(test)]
mod tests;
