//! The limits that are not one session's clock alone: logon hours (the wall clock's time of
//! day), allowances (what the user has used, across sessions) and session caps (the user's
//! other sessions). Pure, as the rest of [`super`].

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::{Assigned, Candidate, Left, Reason, Remembered, Situation};
use crate::model::{Session, Uid};
use crate::policy::hours::Standing;
use crate::policy::{Go, Policy, Rule};
use crate::time;

/// The earliest logon time known of a session (what logoffd remembers, or its listing's).
pub(super) fn logon(remembered: &Remembered, s: &Session) -> Option<Timestamp> {
    match (remembered.first_logon, s.logon_time) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// For each session, whether it is above its rule's `max_sessions`: since when (the logon
/// that took its user's sessions past the cap), and its place in words. A user's sessions
/// that a rule takes count, in the order of their logons (then IDs); which go is the rule's
/// `sessions_go`. A session whose user is not known counts for nobody.
pub(super) fn above_caps(
    policy: &Policy,
    sessions: &[Session],
    assigned: &[Assigned],
    remembered: &[Remembered],
    now: Timestamp,
) -> Vec<Option<(Timestamp, String)>> {
    let mut extra = vec![None; sessions.len()];
    let mut groups: BTreeMap<(usize, Uid), Vec<(Timestamp, usize)>> = BTreeMap::new();
    for (i, (s, a)) in sessions.iter().zip(assigned).enumerate() {
        let (Assigned::Under(rule), Some(uid)) = (a, s.uid) else {
            continue;
        };
        if policy.rules[rule.0].max_sessions.is_none() {
            continue;
        }
        let at = logon(&remembered[i], s).unwrap_or(now);
        groups.entry((rule.0, uid)).or_default().push((at, i));
    }
    for ((rule, _), mut group) in groups {
        let Some(cap) = policy.rules[rule].max_sessions else {
            continue;
        };
        if group.len() <= cap.max {
            continue;
        }
        group.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                crate::model::id_sort_key(&sessions[a.1].id)
                    .cmp(&crate::model::id_sort_key(&sessions[b.1].id))
            })
        });
        let k = group.len();
        let going: Vec<(usize, Timestamp)> = match cap.go {
            // The (N+1)th and later: each went past the cap when it logged on.
            Go::Newest => (cap.max..k).map(|i| (i, group[i].0)).collect(),
            // The oldest k-N: the i-th went past it when the (N+i+1)th logged on.
            Go::Oldest => (0..k - cap.max)
                .map(|i| (i, group[cap.max + i].0))
                .collect(),
        };
        for (place, since) in going {
            let s = &sessions[group[place].1];
            extra[group[place].1] = Some((
                since,
                format!(
                    "session {} of {}'s {k} (by logon), above max_sessions = {}: the {} go",
                    ordinal(place + 1),
                    s.user,
                    cap.max,
                    match cap.go {
                        Go::Newest => "newest",
                        Go::Oldest => "oldest",
                    }
                ),
            ));
        }
    }
    extra
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl Rule {
    /// What the rule says, for the limits that are not a length of time.
    pub(super) fn what(&self, reason: Reason) -> Option<String> {
        match reason {
            Reason::Hours => self
                .hours
                .as_ref()
                .map(crate::policy::hours::Hours::describe),
            Reason::Allowance => self
                .allowance
                .as_ref()
                .map(crate::policy::allowance::Allowance::describe),
            Reason::Sessions => self
                .max_sessions
                .map(|c| format!("max_sessions = {}", c.max)),
            Reason::Idle | Reason::Disconnected | Reason::MaxAge => None,
        }
    }

    /// The hours, allowance and sessions limits of a session, and what is left of its
    /// allowance.
    /// `own_connection`: whether it has a connection of its own that a disconnect ends.
    pub(super) fn new_limits(
        &self,
        at: &Situation<'_>,
        own_connection: bool,
        why: &mut Vec<String>,
    ) -> (Vec<Candidate>, Option<Left>) {
        let now = at.now.at;
        let mut candidates = Vec::new();
        // A disconnect needs a connection of the session's own; without one, these limits of
        // a rule that disconnects leave it to the rule's other limits.
        let can_act = self.action != crate::logoff::Action::Disconnect || own_connection;
        if let Some(hours) = &self.hours {
            let local = |t: Timestamp| {
                t.to_zoned_datetime(hours.zone.tz.clone())
                    .strftime("%a %H:%M")
                    .to_string()
            };
            match hours.standing(at.now.wall()) {
                Standing::Always => why.push("its hours never end".into()),
                _ if !can_act => why.push(format!(
                    "outside its hours it has no connection of its own to end (action = \
                     \"disconnect\"; {})",
                    at.p.words()
                )),
                Standing::Inside { since, until } => {
                    let (since, until) = (at.now.steady_of(since), at.now.steady_of(until));
                    candidates.push((
                        Reason::Hours,
                        time::between(since, until),
                        since,
                        Some((
                            format!("its hours end {}", local(at.now.wall_of(until))),
                            true,
                        )),
                    ));
                }
                // Outside since its last window ended, or since it logged on if later: a
                // moment that stays put, so the warnings given stand pass after pass.
                Standing::Outside { since, next } => candidates.push((
                    Reason::Hours,
                    Duration::ZERO,
                    since
                        .map(|end| at.now.steady_of(end))
                        .into_iter()
                        .chain(at.logon)
                        .max()
                        .unwrap_or(Timestamp::MIN)
                        .min(now),
                    Some((
                        format!(
                            "outside its hours{}",
                            next.map(|n| format!(" (the next begin {})", local(n)))
                                .unwrap_or_default()
                        ),
                        true,
                    )),
                )),
            }
        }
        let mut left = None;
        if let Some(allowance) = &self.allowance {
            // Steady time: a step of the wall clock neither begins a new day nor makes one
            // longer (issue 26).
            let periods = allowance.periods(now);
            let usage = at.remembered.allowances.get(&self.name);
            // A new day or week since logoffd counted: nothing of it used yet.
            let used = usage
                .filter(|u| u.periods == periods)
                .map(|u| u.used)
                .unwrap_or_default();
            let counting = usage.is_some_and(|u| u.counting);
            let rest = allowance.left(used);
            let of = allowance.describe();
            let amount = allowance
                .day
                .into_iter()
                .chain(allowance.week)
                .min()
                .unwrap_or_default();
            let ends = time::add(now, rest);
            candidates.push((
                Reason::Allowance,
                amount,
                time::sub(ends, amount),
                Some((
                    format!(
                        "{} of its allowance ({of}) left{}",
                        crate::duration::display(rest),
                        if counting {
                            ", being used"
                        } else {
                            ", not being used now"
                        }
                    ),
                    true,
                )),
            ));
            left = Some(Left {
                left: rest,
                counting,
                of,
            });
        }
        if let Some((since, place)) = &at.extra {
            if can_act {
                candidates.push((
                    Reason::Sessions,
                    Duration::ZERO,
                    *since,
                    Some((place.clone(), true)),
                ));
            } else {
                why.push(format!(
                    "{place}, but it has no connection of its own to end (action = \"disconnect\")"
                ));
            }
        }
        (candidates, left)
    }
}
