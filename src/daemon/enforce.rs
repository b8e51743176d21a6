//! One pass of logoffd over this host's sessions: the policy's verdict on each, warnings as
//! their times come, a cancellation when the user comes back, and at the deadline the same
//! logoff as the command's ([`crate::logoff::end::end_sessions`]) — after reading the session
//! again, so a user who became active at the last moment keeps it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;

use super::log::Log;
use super::notice::{left_until, limit_words, warning_text};
use super::state::{Clocks, Deadlines, StateDir};
use crate::audit::{AuditLog, Entry};
use crate::backend::{self, Backend, Choice, Purpose};
use crate::error::Result;
use crate::logoff::{ConsolePolicy, Done, Hooks, Options, end};
use crate::model::Session;
use crate::policy::eval::{self, Deadline, Reason};
use crate::policy::{Mode, Policy, Rule, Verdict};
use crate::system::tty::sanitize;
use crate::system::users::Person;
use crate::transport::{Auth, ConnectOptions, Place};

/// While a warning is out, how often the session is looked at for activity.
const ACTIVITY_CHECK: Duration = Duration::from_secs(5);

/// What logoffd remembers of a session under a deadline.
struct Tracked {
    rule: String,
    reason: Reason,
    acts_at: Timestamp,
    /// Lead times of the warnings sent (or, in dry-run, logged) for this deadline.
    warned: Vec<Duration>,
    /// The deadline was reported (dry-run, warn-only) or a logoff was tried and failed:
    /// not again before this time.
    quiet_until: Option<Timestamp>,
}

/// logoffd's work on this host.
pub struct Enforcer {
    pub policy: Policy,
    choice: Choice,
    lister: Box<dyn Backend>,
    state: StateDir,
    clocks: Clocks,
    tracked: HashMap<String, Tracked>,
    published: Option<Deadlines>,
    pub log: Log,
    audit: AuditLog,
    person: Person,
    host: String,
}

impl Enforcer {
    pub fn new(policy: Policy, choice: Choice, state: StateDir, log: Log) -> Result<Enforcer> {
        let lister = open(choice, Purpose::List)?.backend;
        let (clocks, problem) = Clocks::load(&state);
        if let Some(p) = problem {
            log.warn(&p);
        }
        Ok(Enforcer {
            policy,
            choice,
            lister,
            state,
            clocks,
            tracked: HashMap::new(),
            published: None,
            log,
            audit: AuditLog::open(),
            person: Person::current(),
            host: crate::system::host::hostname(),
        })
    }

    /// The backend's name, for the log.
    pub fn backend_name(&self) -> &'static str {
        self.lister.about().0.as_str()
    }

    /// Looks at every session; returns when to look again.
    pub fn pass(&mut self, now: Timestamp) -> Result<Timestamp> {
        let sessions = self.lister.list()?;
        if self.clocks.update(&sessions, now)
            && let Err(e) = self.clocks.save(&self.state)
        {
            self.log.warn(&format!("cannot keep the clocks: {e}"));
        }
        let clocks = &self.clocks;
        let verdicts = self.policy.evaluate(&sessions, |s| clocks.since(s), now);
        self.publish(&sessions, &verdicts);
        let mut next = add(now, self.policy.scan_interval);
        let mut seen = HashSet::new();
        for (s, v) in sessions.iter().zip(&verdicts) {
            let key = eval::key(s);
            seen.insert(key.clone());
            match (v.rule(), v.deadline()) {
                (Some(rule), Some(d)) => {
                    let rule = rule.to_string();
                    if let Some(at) = self.under_deadline(s, &key, &rule, d, now) {
                        next = next.min(at);
                    }
                }
                _ => {
                    if let Some(t) = self.tracked.remove(&key)
                        && !t.warned.is_empty()
                    {
                        let why = v.why_not().unwrap_or_default();
                        self.cancel(s, &t.rule, &format!("it is no longer under a limit: {why}"));
                    }
                }
            }
        }
        self.tracked.retain(|k, _| seen.contains(k));
        Ok(next.max(add(now, Duration::from_millis(100))))
    }

    /// Handles one session under deadline `d` of `rule`; when to look at it again.
    fn under_deadline(
        &mut self,
        s: &Session,
        key: &str,
        rule: &str,
        d: &Deadline,
        now: Timestamp,
    ) -> Option<Timestamp> {
        // A deadline that moved later (the user was active), or another limit: the warnings
        // sent are void, and the user is told.
        let moved = self.tracked.get(key).is_some_and(|t| {
            t.rule != rule
                || t.reason != d.reason
                || d.acts_at > add(t.acts_at, Duration::from_secs(1))
        });
        if moved
            && let Some(t) = self.tracked.remove(key)
            && !t.warned.is_empty()
        {
            self.cancel(s, &t.rule, "activity was seen in it");
        }
        let t = self.tracked.entry(key.to_string()).or_insert(Tracked {
            rule: rule.to_string(),
            reason: d.reason,
            acts_at: d.acts_at,
            warned: Vec::new(),
            quiet_until: None,
        });
        t.acts_at = d.acts_at;
        if let Some(until) = t.quiet_until
            && until > now
        {
            return Some(until);
        }
        if d.acts_at <= now {
            self.act(s, key, rule, d);
            return self.tracked.get(key).and_then(|t| t.quiet_until);
        }
        let due: Vec<Duration> = d
            .warnings
            .iter()
            .filter(|(lead, at)| *at <= now && !t.warned.contains(lead))
            .map(|(lead, _)| *lead)
            .collect();
        let outstanding = !t.warned.is_empty() || !due.is_empty();
        if !due.is_empty() {
            t.warned.extend(&due);
            self.warn(s, rule, d, now);
        }
        let mut next = d.acts_at;
        if let Some((_, at)) = d.warnings.iter().find(|(_, at)| *at > now) {
            next = next.min(*at);
        }
        if outstanding && d.reason == Reason::Idle {
            next = next.min(add(now, ACTIVITY_CHECK));
        }
        Some(next)
    }

    fn rule(&self, name: &str) -> Option<&Rule> {
        self.policy.rules.iter().find(|r| r.name == name)
    }

    /// The warning: on the session's terminals and display (not in dry-run: logged only).
    fn warn(&mut self, s: &Session, rule: &str, d: &Deadline, now: Timestamp) {
        let Some(r) = self.rule(rule) else {
            return;
        };
        let text = warning_text(s, r, d, now);
        let left = left_until(now, d.acts_at);
        if self.policy.mode == Mode::DryRun {
            self.log.info(&format!(
                "dry-run: would warn {} ({}, rule {rule}): logoff in {left}",
                s.describe(),
                limit_words(d)
            ));
            return;
        }
        match self.lister.warn(s, &text) {
            Ok(w) if !w.reached.is_empty() => self.log.info(&format!(
                "warned {} on {} (rule {rule}, {}): logoff in {left}",
                s.describe(),
                w.reached.join(", "),
                limit_words(d)
            )),
            Ok(w) => self.log.warn(&format!(
                "could not warn {} (rule {rule}): {}",
                s.describe(),
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

    /// Tells the users of a warned session that the logoff will not happen now.
    fn cancel(&mut self, s: &Session, rule: &str, why: &str) {
        self.log.info(&format!(
            "the logoff of {} (rule {rule}) is off: {why}",
            s.describe()
        ));
        if self.policy.mode == Mode::DryRun {
            return;
        }
        let text = format!(
            "\r\n\x07*** logoff: {}: this session will not be logged off now; carry on ***\r\n",
            sanitize(why)
        );
        let _ = self.lister.warn(s, &text);
    }

    /// Tells every warned session that logoffd stops and its logoff will not happen.
    pub fn stop(&mut self) {
        let warned: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| !t.warned.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        if !warned.is_empty()
            && let Ok(sessions) = self.lister.list()
        {
            for s in sessions.iter().filter(|s| warned.contains(&eval::key(s))) {
                let rule = self.tracked.get(&eval::key(s)).map(|t| t.rule.clone());
                self.cancel(
                    s,
                    &rule.unwrap_or_default(),
                    "the time-limit service stopped",
                );
            }
        }
        Deadlines::withdraw(&self.state);
    }

    /// A new policy (SIGHUP): warnings given under the old one stand until the next pass
    /// says otherwise.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    fn publish(&mut self, sessions: &[Session], verdicts: &[Verdict]) {
        let now = Deadlines::from_verdicts(self.policy.mode.as_str(), sessions, verdicts);
        if self.published.as_ref() == Some(&now) {
            return;
        }
        if let Err(e) = now.save(&self.state) {
            self.log.warn(&format!("cannot publish the deadlines: {e}"));
        }
        self.published = Some(now);
    }

    /// The deadline has come: log it (dry-run, warn-only) or log the session off.
    fn act(&mut self, s: &Session, key: &str, rule: &str, d: &Deadline) {
        let quiet = add(Timestamp::now(), self.policy.scan_interval);
        if self.policy.mode != Mode::Enforce {
            self.log.info(&format!(
                "{}: would log off {} (rule {rule}, {}); touched nothing",
                self.policy.mode.as_str(),
                s.describe(),
                limit_words(d)
            ));
            if let Some(t) = self.tracked.get_mut(key) {
                t.quiet_until = Some(Timestamp::MAX);
            }
            return;
        }
        match self.log_off(s, key, rule) {
            Ok(true) => {
                self.tracked.remove(key);
            }
            Ok(false) => {}
            Err(e) => {
                self.log
                    .error(&format!("could not log off {}: {e}", s.describe()));
                if let Some(t) = self.tracked.get_mut(key) {
                    t.quiet_until = Some(quiet);
                }
            }
        }
    }

    /// Reads the session again and, if its deadline still stands, logs it off. Whether it
    /// was logged off.
    fn log_off(&mut self, s: &Session, key: &str, rule: &str) -> Result<bool> {
        let mut backend = open(self.choice, Purpose::EndSessions)?.backend;
        let now = Timestamp::now();
        let Some(fresh) = backend.list()?.into_iter().find(|x| eval::key(x) == key) else {
            self.log
                .info(&format!("{} ended before its deadline", s.describe()));
            return Ok(true);
        };
        let clocks = &self.clocks;
        let verdict = self
            .policy
            .evaluate(std::slice::from_ref(&fresh), |x| clocks.since(x), now)
            .remove(0);
        let still = match (&verdict.rule(), verdict.deadline()) {
            (Some(r), Some(d)) if *r == rule && d.acts_at <= add(now, Duration::from_secs(1)) => {
                Some(d.clone())
            }
            _ => None,
        };
        let Some(d) = still else {
            if let Some(t) = self.tracked.remove(key)
                && !t.warned.is_empty()
            {
                self.cancel(&fresh, rule, "activity was seen in it");
            }
            return Ok(false);
        };
        let timeout = self
            .rule(rule)
            .map_or(crate::policy::DEFAULT_TIMEOUT, |r| r.timeout);
        let opts = Options {
            timeout,
            console: ConsolePolicy::Allow,
            hurry: None,
            tick: None,
        };
        let mut hooks = Quiet { log: &self.log };
        let outcomes = end::end_sessions(
            backend.as_mut(),
            std::slice::from_ref(&fresh),
            &opts,
            &mut hooks,
        );
        let mut ok = true;
        for o in &outcomes {
            self.record(&o.session, rule, &d, timeout, &o.result);
            ok &= o.result.is_ok();
        }
        Ok(ok)
    }

    /// The audit record, and a line in logoffd's log.
    fn record(
        &self,
        s: &Session,
        rule: &str,
        d: &Deadline,
        timeout: Duration,
        result: &Result<Done>,
    ) {
        let (outcome, detail) = match result {
            Ok(_) => ("logged-off".to_string(), None),
            Err(e) => (e.kind().as_str().to_string(), Some(e.message().to_string())),
        };
        let forced = result.as_ref().is_ok_and(|done| done.forced(timeout));
        let entry = Entry {
            caller: &self.person,
            host: &self.host,
            machine: None,
            session: s,
            grace: Duration::ZERO,
            message: self.rule(rule).is_some_and(|r| !r.warn.is_empty()),
            forced,
            console: s.is_console(),
            result: &outcome,
            detail: detail.as_deref(),
            policy: Some((rule, d.reason.as_str())),
        };
        if let Err(e) = self.audit.record(&entry) {
            self.log.warn(e.message());
        }
        match result {
            Ok(done) => self.log.info(&format!(
                "logged off {} (rule {rule}, {}): {} processes asked to end, {} killed",
                s.describe(),
                limit_words(d),
                done.asked.unwrap_or(0),
                done.killed.unwrap_or(0)
            )),
            Err(e) => self.log.error(&format!(
                "logoff of {} (rule {rule}, {}) failed: {e}",
                s.describe(),
                limit_words(d)
            )),
        }
    }
}

/// The flow's hooks for the daemon: problems to the log, the rest unsaid (the record says it).
struct Quiet<'a> {
    log: &'a Log,
}

impl Hooks for Quiet<'_> {
    fn narrate(&mut self, _line: &str) {}

    fn problem(&mut self, line: &str) {
        self.log.warn(line);
    }

    fn attempted(&mut self, _session: &Session, _result: &Result<Done>) {}
}

/// The backend for this host.
pub fn open(choice: Choice, purpose: Purpose) -> Result<backend::Opened> {
    let place = Place::here(crate::system::host::hostname());
    let opts = ConnectOptions {
        timeout: Duration::from_secs(10),
        auth: Auth::Batch,
    };
    backend::open(&place, choice, purpose, &opts)
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// From `a` to `b` (zero if `b` is not later).
pub fn duration_between(a: Timestamp, b: Timestamp) -> Duration {
    Duration::try_from(b.duration_since(a)).unwrap_or_default()
}
