//! When logoffd reads a session's activity again. Reading it (every process's descriptors,
//! its terminals, its tmux and screen servers) is most of what a pass costs, and a session
//! far from its limit needs no fresh look every pass: its limit can come no sooner than
//! what the last look said, as long as that rested on what only moves later — the
//! session's own input and output ([`Limit::firm`]). Such a session is read again when its
//! next warning or deadline comes within reach, and at least every [`AT_LEAST_EVERY`]
//! (a disconnection a look finds — a tmux server left alone — starts its clock at most
//! that late, which only gives its user more time). Between looks it carries what the last
//! one found. A session is looked at every pass when its idle clock rests on something
//! passing (a client attached from another session, a busy CPU, an idle lock), once a
//! warning of its idle limit is out (activity calls the logoff off), and when it is new;
//! and the sessions of a user are looked at together (one may be using another through tmux).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;

use super::planner::Tracking;
use crate::model::{Activity, Session, SessionKey, Uid};
use crate::policy::{Limit, Policy, Reason, Verdict};
use crate::time;

/// The longest a watched session goes without a look.
pub const AT_LEAST_EVERY: Duration = Duration::from_secs(300);

/// What the last look at each session found, and when it needs the next.
#[derive(Debug, Default)]
pub struct Looks {
    known: HashMap<SessionKey, Looked>,
}

#[derive(Debug, Clone)]
struct Looked {
    next: Timestamp,
    activity: Activity,
}

impl Looks {
    /// The users among `watched` with a session due for a look at `now`.
    pub fn due(
        &self,
        sessions: &[Session],
        watched: &HashSet<Uid>,
        now: Timestamp,
    ) -> HashSet<Uid> {
        sessions
            .iter()
            .filter(|s| s.uid.is_some_and(|u| watched.contains(&u)))
            .filter(|s| self.known.get(&s.key()).is_none_or(|l| l.next <= now))
            .filter_map(|s| s.uid)
            .collect()
    }

    /// Gives a session not looked at this pass what the last look found at its processes
    /// (its CPU time is left unread: the reading kept is the last one); what its listing
    /// says now stays.
    pub fn carry(&self, s: &mut Session) {
        if let Some(l) = self.known.get(&s.key()) {
            let last = &l.activity;
            let a = &mut s.activity;
            a.terminals.clone_from(&last.terminals);
            a.clients.clone_from(&last.clients);
            a.inhibitor.clone_from(&last.inhibitor);
            a.looked.clone_from(&last.looked);
            a.cpu = None;
        }
    }

    /// Takes in a pass: for each session looked at now, when it needs the next look.
    /// `fresh`: whether a session was looked at in this pass (else its entry stays).
    pub fn remember(
        &mut self,
        sessions: &[Session],
        verdicts: &[Verdict],
        tracking: &Tracking,
        policy: &Policy,
        fresh: impl Fn(&Session) -> bool,
        now: Timestamp,
    ) {
        let mut known = HashMap::with_capacity(sessions.len());
        for (s, v) in sessions.iter().zip(verdicts) {
            let key = s.key();
            if !fresh(s) {
                if let Some(l) = self.known.remove(&key) {
                    known.insert(key, l);
                }
                continue;
            }
            // Under an allowance that counts active time only, every pass looks: what is
            // counted is each pass's, and a look carried over would show an old change time
            // of its terminals (see `presence::known_idle`).
            let counts_active = v.rule().and_then(|r| policy.rule(r)).is_some_and(|r| {
                r.allowance
                    .as_ref()
                    .is_some_and(|a| a.counting == crate::policy::allowance::Counting::Active)
            });
            if counts_active {
                continue;
            }
            let warned = tracking.get(&key).is_some_and(|t| !t.warned.is_empty());
            let next = match v.limit() {
                Some(limit) if limit.firm && !warned => next_look(limit, policy, now),
                _ => continue,
            };
            known.insert(
                key,
                Looked {
                    next,
                    activity: s.activity.clone(),
                },
            );
        }
        self.known = known;
    }
}

/// When a session under `limit` needs its next look: a scan interval before its next
/// warning or its deadline, and no later than [`AT_LEAST_EVERY`] from now — for an idle
/// limit (input calls it off) and a disconnected one (a client that comes back does); a
/// max-age clock is logoffd's own.
fn next_look(limit: &Limit, policy: &Policy, now: Timestamp) -> Timestamp {
    if limit.reason == Reason::MaxAge {
        return time::add(now, AT_LEAST_EVERY);
    }
    let event = limit
        .warnings
        .iter()
        .map(|(_, at)| *at)
        .find(|at| *at > now)
        .unwrap_or(limit.acts_at);
    let reach = time::sub(event, policy.scan_interval.saturating_mul(2));
    reach.min(time::add(now, AT_LEAST_EVERY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;
    use crate::policy::{RuleId, from_text};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("time")
    }

    fn limited(firm: bool, acts_at: Timestamp) -> Verdict {
        Verdict::Limited {
            rule: RuleId::NONE,
            limit: Limit {
                reason: Reason::Idle,
                limit: Duration::from_secs(3600),
                since: at(0),
                acts_at,
                warnings: vec![],
                cause: None,
                firm,
                action: crate::logoff::Action::LogOff,
                what: None,
                allowance: None,
            },
        }
    }

    /// A session far from its idle limit, on its own input, is left alone until the limit
    /// comes within reach (or five minutes have passed); one whose clock rests on
    /// something passing is looked at every pass.
    #[test]
    fn only_firm_clocks_far_from_their_limit_wait() {
        let policy = from_text("scan_interval = \"60s\"\n[[rule]]\nname = \"r\"\nidle = \"1h\"\n")
            .expect("policy");
        let s = Session {
            id: SessionId::new("1"),
            uid: Some(Uid::from_raw(1000)),
            ..Session::default()
        };
        let watched: HashSet<Uid> = [Uid::from_raw(1000)].into();
        let mut looks = Looks::default();
        assert!(
            !looks
                .due(std::slice::from_ref(&s), &watched, at(0))
                .is_empty()
        );
        let sessions = std::slice::from_ref(&s);
        let tracking = Tracking::new();
        looks.remember(
            sessions,
            &[limited(true, at(3600))],
            &tracking,
            &policy,
            |_| true,
            at(0),
        );
        assert!(looks.due(sessions, &watched, at(200)).is_empty());
        assert!(
            !looks.due(sessions, &watched, at(300)).is_empty(),
            "five minutes at most"
        );
        looks.remember(
            sessions,
            &[limited(true, at(400))],
            &tracking,
            &policy,
            |_| true,
            at(0),
        );
        assert!(
            !looks.due(sessions, &watched, at(280)).is_empty(),
            "within reach"
        );
        looks.remember(
            sessions,
            &[limited(false, at(3600))],
            &tracking,
            &policy,
            |_| true,
            at(0),
        );
        assert!(
            !looks.due(sessions, &watched, at(1)).is_empty(),
            "passing: every pass"
        );
    }

    /// Regression (hostile read of issue 28's fixes): a look carried over between passes
    /// showed a terminal's change time up to five minutes old, so a user setting its access
    /// time back looked idle on four passes of five under an active-only allowance. Those
    /// sessions are looked at every pass.
    #[test]
    fn an_active_only_allowance_is_looked_at_every_pass() {
        let policy = from_text(
            "scan_interval = \"60s\"\n[[rule]]\nname = \"lab\"\ntimezone = \"UTC\"\n\
             allowance = { day = \"1h\", counts = \"active\" }\n",
        )
        .expect("policy");
        let rule = policy.rule_named("lab").expect("rule");
        let s = Session {
            id: SessionId::new("1"),
            uid: Some(Uid::from_raw(1000)),
            ..Session::default()
        };
        let watched: HashSet<Uid> = [Uid::from_raw(1000)].into();
        let Verdict::Limited { limit, .. } = limited(true, at(3600)) else {
            panic!("limited");
        };
        let verdict = Verdict::Limited {
            rule,
            limit: Limit {
                reason: Reason::Allowance,
                ..limit
            },
        };
        let mut looks = Looks::default();
        let sessions = std::slice::from_ref(&s);
        looks.remember(
            sessions,
            &[verdict],
            &Tracking::new(),
            &policy,
            |_| true,
            at(0),
        );
        assert!(
            !looks.due(sessions, &watched, at(60)).is_empty(),
            "looked at the next pass"
        );
    }
}
