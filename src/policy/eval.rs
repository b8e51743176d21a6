//! What a policy means for each session now: the rule that applies (the first whose match
//! takes it), and under it the limit reached first — when the warnings go out and when the
//! session is logged off. Pure: the same sessions, clocks and time give the same answer, for
//! `logoffd --check`, for the daemon, and for `logoff --list`.

use std::time::Duration;

use jiff::Timestamp;

use super::rule::Groups;
use super::{Policy, Rule};
use crate::model::Session;
use crate::select::State;

/// Which limit a session is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub struct Deadline {
    pub reason: Reason,
    pub limit: Duration,
    /// Since when the limit's clock runs (idle since, disconnected since, logon).
    pub since: Timestamp,
    pub acts_at: Timestamp,
    /// When each warning goes out, with its lead time, earliest first.
    pub warnings: Vec<(Duration, Timestamp)>,
}

/// What a policy says of one session now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No rule's match takes it.
    NoRule,
    /// A rule takes it, but root, the console and greeters need naming (why).
    Protected { rule: String, why: &'static str },
    /// The rule that takes it exempts it (why).
    Exempt { rule: String, why: String },
    /// The rule takes it, but none of its limits runs now (why).
    Unlimited { rule: String, why: String },
    /// Under a limit.
    Limited { rule: String, deadline: Deadline },
}

impl Verdict {
    pub fn rule(&self) -> Option<&str> {
        match self {
            Verdict::NoRule => None,
            Verdict::Protected { rule, .. }
            | Verdict::Exempt { rule, .. }
            | Verdict::Unlimited { rule, .. }
            | Verdict::Limited { rule, .. } => Some(rule),
        }
    }

    pub fn deadline(&self) -> Option<&Deadline> {
        match self {
            Verdict::Limited { deadline, .. } => Some(deadline),
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

/// A session's identity across listings and restarts: its ID and logon time (an ID may be
/// used again by a later session).
pub fn key(s: &Session) -> String {
    match s.logon_time {
        Some(t) => format!("{}@{}", s.id, t.as_second()),
        None => s.id.to_string(),
    }
}

/// Whether the session counts as disconnected (as `--state disconnected` says).
pub fn is_disconnected(s: &Session) -> bool {
    State::Disconnected.matches(s, Timestamp::now())
}

impl Policy {
    /// The verdict on each of `sessions` at `now`; `disconnected_since` tells since when a
    /// disconnected session has been (the daemon's clocks: `None` means from now).
    pub fn evaluate(
        &self,
        sessions: &[Session],
        disconnected_since: impl Fn(&Session) -> Option<Timestamp>,
        now: Timestamp,
    ) -> Vec<Verdict> {
        let mut groups = Groups::default();
        sessions
            .iter()
            .map(|s| self.verdict(s, disconnected_since(s), now, &mut groups))
            .collect()
    }

    fn verdict(
        &self,
        s: &Session,
        disconnected_since: Option<Timestamp>,
        now: Timestamp,
        groups: &mut Groups,
    ) -> Verdict {
        let Some(rule) = self.rules.iter().find(|r| r.matches.takes(s, groups)) else {
            return Verdict::NoRule;
        };
        let name = rule.name.clone();
        if let Some(why) = rule.matches.protects(s) {
            return Verdict::Protected { rule: name, why };
        }
        if let Some(why) = rule.exempt.exempts(s, groups) {
            return Verdict::Exempt { rule: name, why };
        }
        match rule.deadline(s, disconnected_since, now) {
            Ok(deadline) => Verdict::Limited {
                rule: name,
                deadline,
            },
            Err(why) => Verdict::Unlimited { rule: name, why },
        }
    }
}

impl Rule {
    /// The limit of this rule that `s` reaches first, or why none runs.
    fn deadline(
        &self,
        s: &Session,
        disconnected_since: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Deadline, String> {
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
                candidates.push((
                    Reason::Disconnected,
                    limit,
                    disconnected_since.unwrap_or(now),
                ));
            } else {
                why.push("it is not disconnected");
            }
        }
        if let Some(limit) = self.max_age {
            match s.logon_time {
                Some(since) => candidates.push((Reason::MaxAge, limit, since)),
                None => why.push("its logon time is unknown"),
            }
        }
        let (reason, limit, since) = candidates
            .into_iter()
            .min_by_key(|(_, limit, since)| add(*since, *limit))
            .ok_or_else(|| why.join("; "))?;
        let acts_at = add(since, limit);
        let mut warnings: Vec<(Duration, Timestamp)> = self
            .warn
            .iter()
            .map(|lead| (*lead, sub(acts_at, *lead).max(since)))
            .collect();
        warnings.sort_by_key(|(_, at)| *at);
        Ok(Deadline {
            reason,
            limit,
            since,
            acts_at,
            warnings,
        })
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

fn sub(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
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
            |s| (s.id.as_str() == "2").then(|| at(50)),
            at(200),
        );
        // bob: idle since 100 + 10m = 700, before max age at 3600.
        let d = v[0].deadline().expect("limited");
        assert_eq!((d.reason, d.acts_at), (Reason::Idle, at(700)));
        assert_eq!(
            d.warnings,
            [
                (Duration::from_secs(120), at(580)),
                (Duration::from_secs(30), at(670))
            ]
        );
        // dave: disconnected since 50 (the clock), + 5m.
        let d = v[1].deadline().expect("limited");
        assert_eq!((d.reason, d.acts_at), (Reason::Disconnected, at(350)));
        assert!(matches!(&v[2], Verdict::Exempt { rule, .. } if rule == "staff"));
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
        let v = p.evaluate(&[s], |_| None, at(10));
        let d = v[0].deadline().expect("limited");
        assert_eq!(d.acts_at, at(70));
        assert_eq!(d.warnings, [(Duration::from_secs(300), at(10))]);
    }
}
