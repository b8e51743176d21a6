//! What a policy means for each session now: the rule that applies (the first whose match
//! takes it), and under it the limit reached first — when the warnings go out and when the
//! session is logged off. Pure: the same sessions, clocks and time give the same answer, for
//! `logoffd --check`, for the daemon, and for `logoff --list`.

use std::time::Duration;

use jiff::Timestamp;

use serde::{Deserialize, Serialize};

use super::allowance::{Periods, Used};
use super::rule::Groups;
use super::{Counts, Policy, Rule};
use crate::logoff::Action;
use crate::model::{IdleSource, Session};
use crate::presence::{self, By, Presence};
use crate::time::{self, Now};

mod limits;

/// A rule of a policy, by its place in it (the policy it came from says which rule it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub(super) usize);

impl RuleId {
    /// No rule of any policy (one that a policy read again no longer has).
    pub const NONE: RuleId = RuleId(usize::MAX);

    /// Its place in its policy.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Which limit a session is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Active but idle.
    Idle,
    /// Nothing connects it ([`crate::presence`]).
    Disconnected,
    /// Logged on too long.
    MaxAge,
    /// Outside its logon hours.
    Hours,
    /// Its user's allowance used up.
    Allowance,
    /// One of more sessions than its user may have.
    Sessions,
}

impl Reason {
    /// As the journal's `LOGOFF_REASON` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::Disconnected => "disconnected",
            Reason::MaxAge => "max-age",
            Reason::Hours => "hours",
            Reason::Allowance => "allowance",
            Reason::Sessions => "sessions",
        }
    }

    /// `idle for`, `disconnected for`, `logged on for` (the limits that are durations).
    pub fn state_words(self) -> &'static str {
        match self {
            Reason::Idle => "idle for",
            Reason::Disconnected => "disconnected for",
            Reason::MaxAge => "logged on for",
            Reason::Hours => "outside its hours",
            Reason::Allowance => "past its allowance",
            Reason::Sessions => "above its sessions",
        }
    }
}

/// The limit a session is under, and when it acts.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub reason: Reason,
    pub limit: Duration,
    /// Since when the limit's clock runs (idle since, disconnected since, logon).
    pub since: Timestamp,
    pub acts_at: Timestamp,
    /// When each warning goes out, with its lead time, earliest first.
    pub warnings: Vec<(Duration, Timestamp)>,
    /// What its clock runs from, in words: for an idle limit `last input on terminal pts/3,
    /// idle 3s`, `in use through tmux from session 12, idle 3s`; for a disconnected one what
    /// [`Presence::words`] says.
    pub cause: Option<String>,
    /// Whether `since` can only move later: its clock runs from the session's own input or
    /// output (or from what logoffd remembers), not from what can stop at any moment — a
    /// client attached from another session, a busy CPU, an idle lock — after which the
    /// session would have been idle since earlier.
    pub firm: bool,
    /// What reaching it does: log off, or (an idle, hours or sessions limit whose rule says
    /// so) disconnect.
    pub action: crate::logoff::Action,
    /// For the hours, allowance and sessions limits: what the rule says (`Mon-Fri
    /// 08:00-18:00`, `2h a day`, `max_sessions = 2`).
    pub what: Option<String>,
    /// The user's allowance, where the rule gives one: what is left of it now (whichever
    /// limit comes first).
    pub allowance: Option<Left>,
}

/// What is left of a user's allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub left: Duration,
    /// Whether it is being used now (a session counts).
    pub counting: bool,
    /// The allowance (`2h a day, 10h a week`).
    pub of: String,
}

impl Limit {
    /// `idle for 2h`, `disconnected for 30m`, `logged on for 1d`, `outside its hours (Mon-Fri
    /// 08:00-18:00)`, `past its allowance (2h a day)`, `above its sessions (max_sessions =
    /// 2)`.
    pub fn words(&self) -> String {
        match &self.what {
            Some(what) => format!("{} ({what})", self.reason.state_words()),
            None => format!(
                "{} {}",
                self.reason.state_words(),
                crate::duration::display(self.limit)
            ),
        }
    }

    /// What a warning says of the session: `has been idle for 2h`, `reaches the end of its
    /// logon hours (Mon-Fri 08:00-18:00)`, ...
    pub fn sentence(&self) -> String {
        let what = self.what.as_deref().unwrap_or_default();
        match self.reason {
            Reason::Idle | Reason::Disconnected | Reason::MaxAge => {
                format!("has been {}", self.words())
            }
            Reason::Hours => format!("is at the end of its logon hours ({what})"),
            Reason::Allowance => format!("is using the last of its user's allowance ({what})"),
            Reason::Sessions => {
                format!("is one of more sessions than its user may have ({what})")
            }
        }
    }
}

/// What a policy says of one session now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No rule's match takes it.
    NoRule,
    /// A rule takes it, but root, the console and greeters need naming (why).
    Protected { rule: RuleId, why: &'static str },
    /// The rule that takes it exempts it (why).
    Exempt { rule: RuleId, why: String },
    /// The rule takes it, but none of its limits runs now (why).
    Unlimited { rule: RuleId, why: String },
    /// Under a limit.
    Limited { rule: RuleId, limit: Limit },
}

impl Verdict {
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            Verdict::NoRule => None,
            Verdict::Protected { rule, .. }
            | Verdict::Exempt { rule, .. }
            | Verdict::Unlimited { rule, .. }
            | Verdict::Limited { rule, .. } => Some(*rule),
        }
    }

    pub fn limit(&self) -> Option<&Limit> {
        match self {
            Verdict::Limited { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// Why there is no deadline, in words.
    pub fn why_not(&self) -> Option<String> {
        match self {
            Verdict::NoRule => Some("no rule matches".into()),
            Verdict::Protected { why, .. } => Some((*why).to_string()),
            Verdict::Exempt { why, .. } | Verdict::Unlimited { why, .. } => Some(why.clone()),
            Verdict::Limited { .. } => None,
        }
    }
}

/// What the daemon remembers of a session beyond what a listing shows: since when it has
/// been disconnected, and the earliest logon time ever seen for it (a user who replaces
/// their session's oldest process moves what a listing calls its logon time, never this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    pub disconnected_since: Option<Timestamp>,
    pub first_logon: Option<Timestamp>,
    /// How much CPU its processes used between the last two looks.
    pub cpu: Option<CpuRate>,
    /// What its user has used of each rule's allowance, by rule name.
    pub allowances: std::collections::BTreeMap<String, Usage>,
}

/// What a user has used of a rule's allowance, in which periods, and whether they use it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: Used,
    pub periods: Periods,
    pub counting: bool,
}

/// CPU time used over a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuRate {
    pub used: Duration,
    pub over: Duration,
}

impl CpuRate {
    /// The share of one CPU.
    pub fn share(self) -> f64 {
        if self.over.is_zero() {
            return 0.0;
        }
        self.used.as_secs_f64() / self.over.as_secs_f64()
    }
}

impl Policy {
    /// The rule `id` names (one of this policy's: [`RuleId`]s come from it).
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.0)
    }

    /// The rule named `name` (a policy read again keeps its rules' names, not their places).
    pub fn rule_named(&self, name: &str) -> Option<RuleId> {
        self.rules.iter().position(|r| r.name == name).map(RuleId)
    }

    /// The verdict on each of `sessions` at `now` (steady time, and the wall clock's offset
    /// for logon hours: [`Now`]); `remembered` tells what the daemon knows of a session
    /// beyond the listing (nothing: a disconnected clock starts now).
    pub fn evaluate(
        &self,
        sessions: &[Session],
        remembered: impl Fn(&Session) -> Remembered,
        now: impl Into<Now>,
    ) -> Vec<Verdict> {
        let now = now.into();
        let mut groups = Groups::default();
        let remembered: Vec<Remembered> = sessions.iter().map(remembered).collect();
        let assigned: Vec<Assigned> = sessions
            .iter()
            .map(|s| self.assign(s, &mut groups))
            .collect();
        let extra = limits::above_caps(self, sessions, &assigned, &remembered, now.at);
        sessions
            .iter()
            .zip(presence::judge(sessions, now.at))
            .zip(assigned)
            .zip(remembered)
            .zip(extra)
            .map(|((((s, p), a), r), extra)| match a {
                Assigned::NoRule => Verdict::NoRule,
                Assigned::Protected(rule, why) => Verdict::Protected { rule, why },
                Assigned::Exempt(rule, why) => Verdict::Exempt { rule, why },
                Assigned::Under(id) => {
                    let at = Situation {
                        p: &p,
                        remembered: &r,
                        now,
                        extra,
                        logon: limits::logon(&r, s),
                    };
                    match self.rules[id.0].limit_for(s, &at) {
                        Ok(limit) => Verdict::Limited { rule: id, limit },
                        Err(why) => Verdict::Unlimited { rule: id, why },
                    }
                }
            })
            .collect()
    }

    /// The rule each of `sessions` is under (taken, neither protected nor exempt).
    pub fn under(&self, sessions: &[Session]) -> Vec<Option<RuleId>> {
        let mut groups = Groups::default();
        sessions
            .iter()
            .map(|s| match self.assign(s, &mut groups) {
                Assigned::Under(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// Which rule takes `s`, and whether it protects or exempts it.
    fn assign(&self, s: &Session, groups: &mut Groups) -> Assigned {
        let Some(at) = self.rules.iter().position(|r| r.matches.takes(s, groups)) else {
            return Assigned::NoRule;
        };
        let (rule, id) = (&self.rules[at], RuleId(at));
        if let Some(why) = rule.matches.protects(s) {
            return Assigned::Protected(id, why);
        }
        if let Some(why) = rule.exempt.exempts(s, groups) {
            return Assigned::Exempt(id, why);
        }
        Assigned::Under(id)
    }
}

/// Which rule takes a session, and how.
#[derive(Debug, Clone)]
enum Assigned {
    NoRule,
    Protected(RuleId, &'static str),
    Exempt(RuleId, String),
    Under(RuleId),
}

/// What a session's limits are judged with.
struct Situation<'a> {
    p: &'a Presence,
    remembered: &'a Remembered,
    now: Now,
    /// Above its rule's `max_sessions`: since when, and why ([`limits::above_caps`]).
    extra: Option<(Timestamp, String)>,
    /// Its earliest logon known.
    logon: Option<Timestamp>,
}

/// A limit that may come first: its reason, length, start and cause (with whether its clock
/// only moves later).
type Candidate = (Reason, Duration, Timestamp, Option<(String, bool)>);

impl Rule {
    /// The limit of this rule that `s` reaches first, or why none runs.
    fn limit_for(&self, s: &Session, at: &Situation<'_>) -> Result<Limit, String> {
        let (p, remembered, now) = (at.p, at.remembered, at.now.at);
        let disconnected = p.is_disconnected();
        let connection = p.words();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut why: Vec<String> = Vec::new();
        // Only a connection of its own over the network (an RDP client, ssh) is ended alone.
        let own_connection = matches!(p.by(), Some(By::Ssh | By::Rdp)) && (s.remote || s.xrdp);
        if let Some(limit) = self.idle {
            match self.idle_since(s, p, remembered.cpu, now) {
                _ if disconnected => why.push("it is disconnected, not idle".into()),
                _ if self.action == Action::Disconnect && !own_connection => {
                    why.push(format!(
                        "it has no connection of its own to end (action = \"disconnect\"; {connection})"
                    ));
                }
                Some(idle) => candidates.push((
                    Reason::Idle,
                    limit,
                    idle.since,
                    Some((idle.cause, idle.firm)),
                )),
                None => why.push("its idle time is unknown".into()),
            }
        }
        if let Some(limit) = self.disconnected {
            if disconnected {
                let since = remembered.disconnected_since.unwrap_or(now);
                let cause = format!(
                    "{connection}, since {}",
                    crate::duration::display(time::between(since, now))
                );
                candidates.push((Reason::Disconnected, limit, since, Some((cause, true))));
            } else {
                why.push(format!("it is not disconnected ({connection})"));
            }
        }
        if let Some(limit) = self.max_age {
            let logon = match (remembered.first_logon, s.logon_time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match logon {
                Some(since) => candidates.push((Reason::MaxAge, limit, since, None)),
                None => why.push("its logon time is unknown".into()),
            }
        }
        let (more, allowance) = self.new_limits(at, own_connection, &mut why);
        candidates.extend(more);
        let (reason, limit, since, cause) = candidates
            .into_iter()
            .min_by_key(|(_, limit, since, _)| time::add(*since, *limit))
            .ok_or_else(|| why.join("; "))?;
        let acts_at = time::add(since, limit);
        let mut warnings: Vec<(Duration, Timestamp)> = self
            .warn
            .iter()
            .map(|lead| (*lead, time::sub(acts_at, *lead).max(since)))
            .collect();
        warnings.sort_by_key(|(_, at)| *at);
        let (cause, firm) = cause.map_or((None, true), |(c, firm)| (Some(c), firm));
        Ok(Limit {
            reason,
            limit,
            since,
            acts_at,
            warnings,
            cause,
            firm,
            action: match reason {
                Reason::Idle | Reason::Hours | Reason::Sessions => self.action,
                Reason::Disconnected | Reason::MaxAge | Reason::Allowance => Action::LogOff,
            },
            what: self.what(reason),
            allowance,
        })
    }

    /// Since when `s` has been idle as this rule counts activity (its `activity`), and
    /// what says so; `None` when nothing it counts is known.
    fn idle_since(
        &self,
        s: &Session,
        p: &Presence,
        cpu: Option<CpuRate>,
        now: Timestamp,
    ) -> Option<Idle> {
        let idle = |at: Timestamp| crate::duration::display(time::between(at, now));
        let mut seen: Vec<Idle> = Vec::new();
        let firm = |since, cause| Idle {
            since,
            cause,
            firm: true,
        };
        let passing = |since, cause| Idle {
            since,
            cause,
            firm: false,
        };
        for counts in &self.activity {
            match counts {
                Counts::Input => {
                    if let Some(input) = &p.idle {
                        let (words, own) = match &input.source {
                            IdleSource::Multiplexer {
                                kind: crate::model::MULTIPLEXED_BY_A_PROGRAM,
                                by,
                                ..
                            } => (format!("in use through a terminal of session {by}"), false),
                            IdleSource::Multiplexer { kind, by, .. } => {
                                (format!("in use through {kind} from session {by}"), false)
                            }
                            source => (format!("last input on {source}"), true),
                        };
                        let cause = format!("{words}, idle {}", idle(input.since));
                        seen.push(if own {
                            firm(input.since, cause)
                        } else {
                            passing(input.since, cause)
                        });
                    }
                }
                Counts::Output => {
                    if let Some(at) = s.activity.latest_output() {
                        seen.push(firm(
                            at,
                            format!("last output on a terminal {} ago", idle(at)),
                        ));
                    }
                }
                Counts::Cpu => match cpu {
                    Some(rate) if rate.share() >= self.busy_cpu => seen.push(passing(
                        now,
                        format!(
                            "busy: {:.1} CPU-seconds in the last {}",
                            rate.used.as_secs_f64(),
                            crate::duration::display(rate.over)
                        ),
                    )),
                    Some(_) => {}
                    // A rate needs two looks: until then the session may be busy, and is
                    // not acted on (a daemon just started must not end a running job).
                    None if s.activity.cpu.is_some() => {
                        seen.push(passing(now, "CPU use not measured yet".to_string()));
                    }
                    None => {}
                },
                Counts::Inhibit => {
                    if let Some(lock) = &s.activity.inhibitor {
                        seen.push(passing(
                            now,
                            format!("idle lock held by `{}` (pid {})", lock.command, lock.pid),
                        ));
                    }
                }
            }
        }
        seen.into_iter().max_by_key(|i| i.since)
    }
}

/// Since when a session is idle as a rule counts activity, why, and whether that can only
/// move later ([`Limit::firm`]).
struct Idle {
    since: Timestamp,
    cause: String,
    firm: bool,
}

#[cfg(test)]
mod tests;
