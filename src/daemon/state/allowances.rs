//! What users have used of their allowances, counted by logoffd pass by pass and kept in
//! its state directory (so a restart, or a reboot, gives nobody time).
//!
//! Between two passes, a user under a rule with an allowance uses the time between them if
//! a session of theirs that the rule takes counts at the second (any session; or, where
//! the allowance counts active time only, one with input within the last minute): from the
//! first pass, or from the logon of the earliest such session if it came later, or from
//! when the day began. Where none counts at the second pass (active time only, all known
//! idle), the user still used the time up to a minute after their last input in it: a
//! pause just before each pass gives nobody the time before it. Several sessions at once
//! count once. Time logoffd did not see (it
//! was stopped, the host was suspended) counts at most [`Memory::account`]'s `gap`; times are
//! logoffd's steady clock's ([`crate::daemon::clock`]), which no step of the wall clock
//! moves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Memory;
use crate::model::{Session, Uid};
use crate::policy::Policy;
use crate::policy::allowance::{Counting, Periods};
use crate::policy::eval::Usage;
use crate::presence;
use crate::time;

/// One user's use of one rule's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Account {
    pub periods: Periods,
    pub day: Duration,
    pub week: Duration,
    /// The pass it was last counted at.
    pub at: Timestamp,
    /// Whether a session of the user counted then.
    pub counting: bool,
}

impl Memory {
    /// What `uid` has used of each rule's allowance.
    pub(super) fn usage_of(&self, uid: Option<Uid>) -> BTreeMap<String, Usage> {
        let Some(uid) = uid else {
            return BTreeMap::new();
        };
        self.allowances
            .iter()
            .filter_map(|(rule, users)| {
                let a = users.get(&uid.as_raw())?;
                Some((
                    rule.clone(),
                    Usage {
                        used: crate::policy::allowance::Used {
                            day: a.day,
                            week: a.week,
                        },
                        periods: a.periods,
                        counting: a.counting,
                    },
                ))
            })
            .collect()
    }

    /// For tests: what `uid` has used of `rule`'s allowance, as of `at`.
    #[cfg(test)]
    pub fn set_usage_for_tests(&mut self, rule: &str, uid: u32, usage: Usage, at: Timestamp) {
        self.allowances.entry(rule.into()).or_default().insert(
            uid,
            Account {
                periods: usage.periods,
                day: usage.used.day,
                week: usage.used.week,
                at,
                counting: usage.counting,
            },
        );
    }

    /// Counts the time since the last pass against the allowances of `policy` (see the
    /// module's doc): at `now` (steady time), with at most `gap` for time not seen. Whether
    /// anything changed.
    pub fn account(
        &mut self,
        policy: &Policy,
        sessions: &[Session],
        now: Timestamp,
        gap: Duration,
    ) -> bool {
        let under = policy.under(sessions);
        let presences = presence::judge(sessions, now);
        let mut kept: BTreeMap<String, BTreeMap<u32, Account>> = BTreeMap::new();
        for (at, rule) in policy.rules.iter().enumerate() {
            let Some(allowance) = &rule.allowance else {
                continue;
            };
            // Each user with a session under the rule, and the earliest logon of theirs that
            // counts now (if one does).
            let mut users: BTreeMap<u32, Option<Timestamp>> = BTreeMap::new();
            // Of users none of whose sessions counts now: their earliest logon, and when the
            // latest of their sessions stopped counting (a minute after its last input).
            let mut stopped: BTreeMap<u32, (Timestamp, Timestamp)> = BTreeMap::new();
            for ((s, r), p) in sessions.iter().zip(&under).zip(&presences) {
                let (Some(id), Some(uid)) = (r, s.uid) else {
                    continue;
                };
                if id.index() != at {
                    continue;
                }
                let counts = match allowance.counting {
                    Counting::Any => true,
                    Counting::Active => !presence::known_idle(s, p, now),
                };
                let entry = users.entry(uid.as_raw()).or_insert(None);
                let logon = s.logon_time.unwrap_or(now);
                if counts {
                    *entry = Some(entry.map_or(logon, |e| e.min(logon)));
                } else if let Some(idle) = &p.idle {
                    // Its last input, or the last change of a terminal's node if later: a
                    // user setting their terminal's access time back (utimensat) changes
                    // the node then, which no typing does.
                    let changed = s.activity.terminals.iter().filter_map(|t| t.made).max();
                    let last = changed.map_or(idle.since, |c| c.max(idle.since));
                    let until = time::add(last, presence::IDLE_AFTER).min(now);
                    let e = stopped.entry(uid.as_raw()).or_insert((logon, until));
                    *e = (e.0.min(logon), e.1.max(until));
                }
            }
            let before = self.allowances.get(&rule.name);
            let known: BTreeSet<u32> = users
                .keys()
                .copied()
                .chain(before.into_iter().flat_map(|b| b.keys().copied()))
                .collect();
            let periods = allowance.periods(now);
            let day_began = allowance.day_began(periods).unwrap_or(now);
            let mut accounts = BTreeMap::new();
            for uid in known {
                let last = before.and_then(|b| b.get(&uid)).copied();
                let mut a = last.unwrap_or(Account {
                    periods,
                    day: Duration::ZERO,
                    week: Duration::ZERO,
                    at: now,
                    counting: false,
                });
                if a.periods.day != periods.day {
                    a.day = Duration::ZERO;
                }
                if a.periods.week != periods.week {
                    a.week = Duration::ZERO;
                }
                a.periods = periods;
                let counting = users.get(&uid).copied().flatten();
                let used_until = match (counting, stopped.get(&uid)) {
                    (Some(logon), _) => Some((logon, now)),
                    // Since the pass before (a session first seen idle used nothing yet).
                    (None, Some(&(logon, until))) if last.is_some() => Some((logon, until)),
                    (None, _) => None,
                };
                if let Some((logon, until)) = used_until {
                    let from = last
                        .map_or(logon, |l| if l.counting { l.at } else { l.at.max(logon) })
                        .max(day_began)
                        .max(time::sub(now, gap));
                    if until > from {
                        let used = time::between(from, until);
                        a.day = a.day.saturating_add(used);
                        a.week = a.week.saturating_add(used);
                    }
                }
                a.at = now;
                a.counting = counting.is_some();
                // A user with no session left and nothing used this week is forgotten.
                if users.contains_key(&uid) || !a.week.is_zero() {
                    accounts.insert(uid, a);
                }
            }
            if !accounts.is_empty() {
                kept.insert(rule.name.clone(), accounts);
            }
        }
        // What changed beyond the time of the pass.
        let shape =
            |m: &BTreeMap<String, BTreeMap<u32, Account>>| -> Vec<(String, u32, u64, u64, bool)> {
                m.iter()
                    .flat_map(|(r, us)| {
                        us.iter().map(move |(u, a)| {
                            (r.clone(), *u, a.day.as_secs(), a.week.as_secs(), a.counting)
                        })
                    })
                    .collect()
            };
        let changed = shape(&kept) != shape(&self.allowances);
        self.allowances = kept;
        changed
    }
}
