//! What a policy means for each session now: the rule that applies (the first whose match
//! takes it), and under it the limit reached first — when the warnings go out and when the
//! session is logged off. Pure: the same sessions, clocks and time give the same answer, for
//! `logoffd --check`, for the daemon, and for `logoff --list`.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::rule::Groups;
use super::{Policy, Rule};
use crate::model::Session;
use crate::select::State;
use crate::time;

/// A rule of a policy, by its place in it (the policy it came from says which rule it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub(super) usize);

impl RuleId {
    /// No rule of any policy (one that a policy read again no longer has).
    pub const NONE: RuleId = RuleId(usize::MAX);
}

/// Which limit a session is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Active but idle.
    Idle,
    /// Its terminal or connection gone.
    Disconnected,
    /// Logged on too long.
    MaxAge,
}

impl Reason {
    /// As the journal's `LOGOFF_REASON` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::Disconnected => "disconnected",
            Reason::MaxAge => "max-age",
        }
    }

    /// `idle for`, `disconnected for`, `logged on for`.
    pub fn state_words(self) -> &'static str {
        match self {
            Reason::Idle => "idle for",
            Reason::Disconnected => "disconnected for",
            Reason::MaxAge => "logged on for",
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
}

impl Limit {
    /// `idle for 2h`, `disconnected for 30m`, `logged on for 1d`.
    pub fn words(&self) -> String {
        format!(
            "{} {}",
            self.reason.state_words(),
            crate::duration::display(self.limit)
        )
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remembered {
    pub disconnected_since: Option<Timestamp>,
    pub first_logon: Option<Timestamp>,
}

/// Whether the session counts as disconnected (as `--state disconnected` says).
pub fn is_disconnected(s: &Session) -> bool {
    State::Disconnected.matches(s, Timestamp::now())
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

    /// The verdict on each of `sessions` at `now`; `remembered` tells what the daemon knows
    /// of a session beyond the listing (nothing: a disconnected clock starts now).
    pub fn evaluate(
        &self,
        sessions: &[Session],
        remembered: impl Fn(&Session) -> Remembered,
        now: Timestamp,
    ) -> Vec<Verdict> {
        let mut groups = Groups::default();
        sessions
            .iter()
            .map(|s| self.verdict(s, remembered(s), now, &mut groups))
            .collect()
    }

    fn verdict(
        &self,
        s: &Session,
        remembered: Remembered,
        now: Timestamp,
        groups: &mut Groups,
    ) -> Verdict {
        let Some(at) = self.rules.iter().position(|r| r.matches.takes(s, groups)) else {
            return Verdict::NoRule;
        };
        let (rule, id) = (&self.rules[at], RuleId(at));
        if let Some(why) = rule.matches.protects(s) {
            return Verdict::Protected { rule: id, why };
        }
        if let Some(why) = rule.exempt.exempts(s, groups) {
            return Verdict::Exempt { rule: id, why };
        }
        match rule.limit_for(s, remembered, now) {
            Ok(limit) => Verdict::Limited { rule: id, limit },
            Err(why) => Verdict::Unlimited { rule: id, why },
        }
    }
}

impl Rule {
    /// The limit of this rule that `s` reaches first, or why none runs.
    fn limit_for(
        &self,
        s: &Session,
        remembered: Remembered,
        now: Timestamp,
    ) -> Result<Limit, String> {
        let disconnected = is_disconnected(s);
        let mut candidates = Vec::new();
        let mut why = Vec::new();
        if let Some(limit) = self.idle {
            match s.idle_since {
                _ if disconnected => why.push("it is disconnected, not idle"),
                Some(since) => candidates.push((Reason::Idle, limit, since)),
                None => why.push("its idle time is unknown"),
            }
        }
        if let Some(limit) = self.disconnected {
            if disconnected {
                let since = remembered.disconnected_since.unwrap_or(now);
                candidates.push((Reason::Disconnected, limit, since));
            } else {
                why.push("it is not disconnected");
            }
        }
        if let Some(limit) = self.max_age {
            let logon = match (remembered.first_logon, s.logon_time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match logon {
                Some(since) => candidates.push((Reason::MaxAge, limit, since)),
                None => why.push("its logon time is unknown"),
            }
        }
        let (reason, limit, since) = candidates
            .into_iter()
            .min_by_key(|(_, limit, since)| time::add(*since, *limit))
            .ok_or_else(|| why.join("; "))?;
        let acts_at = time::add(since, limit);
        let mut warnings: Vec<(Duration, Timestamp)> = self
            .warn
            .iter()
            .map(|lead| (*lead, time::sub(acts_at, *lead).max(since)))
            .collect();
        warnings.sort_by_key(|(_, at)| *at);
        Ok(Limit {
            reason,
            limit,
            since,
            acts_at,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, Uid};
    use crate::policy::from_text;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("time")
    }

    fn session(id: &str, user: &str, uid: u32) -> Session {
        Session {
            id: SessionId::new(id),
            uid: Some(Uid::from_raw(uid)),
            user: user.into(),
            tty: Some("pts/1".into()),
            state: "active".into(),
            remote: true,
            logon_time: Some(at(0)),
            idle_since: Some(at(100)),
            ..Session::default()
        }
    }

    const POLICY: &str = r#"
[[rule]]
name = "staff"
match = { users = ["carol"] }
exempt = { users = ["carol"] }
idle = "1h"
[[rule]]
name = "remote"
match = { remote = true }
idle = "10m"
disconnected = "5m"
max_age = "1h"
warn = ["2m", "30s"]
"#;

    #[test]
    fn the_first_matching_rule_and_the_earliest_limit() {
        let p = from_text(POLICY).expect("policy");
        let bob = session("1", "bob", 1000);
        let mut gone = session("2", "dave", 1001);
        gone.state = "disconnected".into();
        gone.tty = None;
        let carol = session("3", "carol", 1002);
        let mut local = session("4", "erin", 1003);
        local.remote = false;
        let root = session("5", "root", 0);
        let mut unknown = session("6", "frank", 1004);
        unknown.idle_since = None;
        unknown.logon_time = None;
        let sessions = [bob, gone, carol, local, root, unknown];
        let v = p.evaluate(
            &sessions,
            |s| Remembered {
                disconnected_since: (s.id.as_str() == "2").then(|| at(50)),
                first_logon: None,
            },
            at(200),
        );
        let remote = p.rule_named("remote");
        // bob: idle since 100 + 10m = 700, before max age at 3600.
        let d = v[0].limit().expect("limited");
        assert_eq!((d.reason, d.acts_at), (Reason::Idle, at(700)));
        assert_eq!(v[0].rule(), remote);
        assert_eq!(
            d.warnings,
            [
                (Duration::from_secs(120), at(580)),
                (Duration::from_secs(30), at(670))
            ]
        );
        // dave: disconnected since 50 (the clock), + 5m.
        let d = v[1].limit().expect("limited");
        assert_eq!((d.reason, d.acts_at), (Reason::Disconnected, at(350)));
        assert!(
            matches!(&v[2], Verdict::Exempt { rule, .. } if Some(*rule) == p.rule_named("staff"))
        );
        assert_eq!(v[3], Verdict::NoRule);
        assert!(matches!(&v[4], Verdict::Protected { .. }));
        assert!(matches!(&v[5], Verdict::Unlimited { why, .. } if why.contains("idle time")));
    }

    #[test]
    fn a_clock_not_yet_started_starts_now_and_warnings_never_precede_it() {
        let p = from_text("[[rule]]\nname = \"r\"\ndisconnected = \"1m\"\nwarn = [\"5m\"]\n")
            .expect("policy");
        let mut s = session("1", "bob", 1000);
        s.state = "closing".into();
        let v = p.evaluate(&[s], |_| Remembered::default(), at(10));
        let d = v[0].limit().expect("limited");
        assert_eq!(d.acts_at, at(70));
        assert_eq!(d.warnings, [(Duration::from_secs(300), at(10))]);
    }

    /// Regression (issue 17, item 3): replacing a session's oldest process moved the logon
    /// time a listing shows; the max-age clock runs from the earliest logon ever seen.
    #[test]
    fn max_age_runs_from_the_earliest_logon_remembered() {
        let p = from_text("[[rule]]\nname = \"r\"\nmax_age = \"1h\"\n").expect("policy");
        let mut s = session("1", "bob", 1000);
        s.logon_time = Some(at(3000));
        let v = p.evaluate(
            std::slice::from_ref(&s),
            |_| Remembered {
                disconnected_since: None,
                first_logon: Some(at(0)),
            },
            at(3100),
        );
        assert_eq!(v[0].limit().map(|l| l.acts_at), Some(at(3600)));
    }
}
