//! The deadline one session is under, as logoffd works it out and `logoff --list` shows it
//! (its LOGOFF AT and ALLOWANCE LEFT columns, `time_limit` in JSON); logoffd publishes them
//! ([`crate::daemon`]'s `published`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::eval::Reason;

/// The deadline one session is under, as `logoff --list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimeLimit {
    pub rule: String,
    pub reason: Reason,
    /// When the session is logged off.
    pub logoff_at: Timestamp,
    /// When the warnings go out.
    pub warn_at: Vec<Timestamp>,
    /// Where the rule gives an allowance: what is left of the user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<AllowanceLeft>,
}

/// What is left of a user's allowance, as `logoff --list` shows it: while it is being used,
/// when it runs out; else how much is left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AllowanceLeft {
    /// The allowance (`2h a day`).
    pub of: String,
    /// Left, in seconds, when it is not being used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_seconds: Option<u64>,
    /// When it runs out, while it is being used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
}

impl AllowanceLeft {
    /// What is left at `now`.
    pub fn left(&self, now: Timestamp) -> Option<std::time::Duration> {
        match (self.ends_at, self.left_seconds) {
            (Some(end), _) => Some(crate::time::between(now, end)),
            (None, Some(s)) => Some(std::time::Duration::from_secs(s)),
            (None, None) => None,
        }
    }
}

impl TimeLimit {
    /// Its times, in logoffd's steady time, as the wall clock says them (`now`: the offset).
    pub fn put_in_wall_time(&mut self, now: crate::time::Now) {
        self.logoff_at = now.wall_of(self.logoff_at);
        for w in &mut self.warn_at {
            *w = now.wall_of(*w);
        }
        if let Some(end) = self.allowance.as_mut().and_then(|a| a.ends_at.as_mut()) {
            *end = now.wall_of(*end);
        }
    }
}
