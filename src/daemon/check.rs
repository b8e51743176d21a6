//! `logoffd --check`: is the policy valid, and what will it do right now? The rules in
//! order, then each current session with the rule that applies, the limit, and when it
//! would warn and act — the planner's own decision ([`planner::step`]), as a daemon starting
//! now would make it.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::planner::{self, Tracking};
use super::state::{Memory, StateDir};
use crate::model::Session;
use crate::output::clean;
use crate::output::table::render;
use crate::policy::{Policy, Reason};

#[derive(Serialize)]
struct Report<'a> {
    policy: String,
    valid: bool,
    mode: &'a str,
    scan_interval_seconds: u64,
    rules: Vec<RuleRow>,
    sessions: Vec<CheckRow>,
}

#[derive(Serialize)]
struct RuleRow {
    name: String,
    description: String,
}

/// What `--check` says of one session.
#[derive(Serialize)]
struct CheckRow {
    id: String,
    user: String,
    name: Option<String>,
    rule: Option<String>,
    /// `idle`, `disconnected`, `max-age`; null when no limit runs.
    reason: Option<Reason>,
    limit_seconds: Option<u64>,
    since: Option<Timestamp>,
    warn_at: Vec<Timestamp>,
    acts_at: Option<Timestamp>,
    /// Why no limit runs (no rule, exempt, protected, unknown idle time).
    why_not: Option<String>,
    /// What the limit's clock runs from — for an idle limit `in use through tmux from session
    /// 12, idle 3s`, `busy: 2.0 CPU-seconds in the last 5s`, `idle lock held by ...`; for a
    /// disconnected one, since when nothing connects it — then what connects the session.
    activity: Option<String>,
    /// Whether a live client reaches it (`null`: not known), and what (`connected by ...`,
    /// `disconnected: ...`, `connection unknown: ...`), as `logoff --list --json` says it.
    connected: Option<bool>,
    connection: String,
    /// What is left of its user's allowance, where its rule gives one (seconds).
    allowance_left_seconds: Option<u64>,
}

/// Where a rule counts CPU time as activity, `--check` measures each session's use since the
/// daemon's last reading if that is at least this old (else it takes the daemon's rate);
/// with no daemon's reading, the use is not measured yet (as for a daemon starting).
pub const CPU_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// What the daemon remembers, if its state directory exists (read only).
pub fn memory(dir: &Path) -> Memory {
    if !dir.exists() {
        return Memory::default();
    }
    StateDir::open(dir)
        .map(|d| Memory::load(&d).0)
        .unwrap_or_default()
}

/// The report, as text or JSON.
pub fn report(
    path: &Path,
    policy: &Policy,
    sessions: &[Session],
    memory: &Memory,
    now: Timestamp,
    json: bool,
) -> String {
    let step = planner::step(policy, sessions, memory, &Tracking::new(), now);
    let presences = crate::presence::judge(sessions, now);
    let rows: Vec<CheckRow> = sessions
        .iter()
        .zip(&step.verdicts)
        .zip(&presences)
        .map(|((s, v), p)| {
            let limit = v.limit();
            let published = step.published.get(&s.key().to_string());
            CheckRow {
                id: s.id.to_string(),
                user: s.user.clone(),
                name: s.name().map(String::from),
                rule: v
                    .rule()
                    .and_then(|r| policy.rule(r))
                    .map(|r| r.name.clone()),
                reason: limit.map(|l| l.reason),
                limit_seconds: limit.map(|l| l.limit.as_secs()),
                since: limit.map(|l| l.since),
                warn_at: published.map(|p| p.warn_at.clone()).unwrap_or_default(),
                acts_at: published.map(|p| p.logoff_at),
                why_not: v.why_not(),
                activity: Some(activity(limit, p)),
                allowance_left_seconds: limit
                    .and_then(|l| l.allowance.as_ref())
                    .map(|a| a.left.as_secs()),
                connected: p.is_connected(),
                connection: p.words(),
            }
        })
        .collect();
    let rules: Vec<RuleRow> = policy
        .rules
        .iter()
        .map(|r| RuleRow {
            name: r.name.clone(),
            description: r.describe(),
        })
        .collect();
    if json {
        let report = Report {
            policy: path.display().to_string(),
            valid: true,
            mode: policy.mode.as_str(),
            scan_interval_seconds: policy.scan_interval.as_secs(),
            rules,
            sessions: rows,
        };
        return crate::output::json(&report).unwrap_or_default();
    }
    text(path, policy, &rules, &rows, now)
}

/// The ACTIVITY column: what the limit's clock runs from, and what connects the session
/// (once: a disconnected limit's clock says it already).
fn activity(limit: Option<&crate::policy::Limit>, p: &crate::presence::Presence) -> String {
    let connection = p.words();
    let mut parts: Vec<String> = limit.and_then(|l| l.cause.clone()).into_iter().collect();
    if let Some(l) = limit
        && l.reason != Reason::Allowance
        && let Some(a) = &l.allowance
    {
        parts.push(format!(
            "{} of its allowance ({}) left",
            crate::duration::display(a.left),
            a.of
        ));
    }
    if !parts.iter().any(|c| c.contains(&connection)) {
        parts.push(connection);
    }
    parts.join("; ")
}

fn text(
    path: &Path,
    policy: &Policy,
    rules: &[RuleRow],
    rows: &[CheckRow],
    now: Timestamp,
) -> String {
    let tz = TimeZone::system();
    let clock = |t: Timestamp| -> String {
        if t <= now {
            "now".into()
        } else {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        }
    };
    let mut out = format!(
        "policy {}: valid; mode {}; {} rule{} (the first that matches a session applies):\n",
        clean(&path.display().to_string()),
        policy.mode.as_str(),
        rules.len(),
        if rules.len() == 1 { "" } else { "s" }
    );
    for (i, r) in rules.iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", i + 1, clean(&r.description)));
    }
    if rows.is_empty() {
        out.push_str("\nno sessions.\n");
        return out;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let limit = match (r.reason, r.limit_seconds) {
                (Some(reason @ (Reason::Hours | Reason::Allowance | Reason::Sessions)), _) => {
                    reason.as_str().to_string()
                }
                (Some(reason), Some(secs)) => format!(
                    "{} {}",
                    reason.as_str(),
                    crate::duration::display(std::time::Duration::from_secs(secs))
                ),
                _ => "-".into(),
            };
            let warns: Vec<String> = r.warn_at.iter().map(|t| clock(*t)).collect();
            let acts = match (&r.acts_at, &r.why_not) {
                (Some(t), _) => clock(*t),
                (None, Some(why)) => format!("never: {why}"),
                (None, None) => "-".into(),
            };
            vec![
                r.id.clone(),
                r.user.clone(),
                r.name.clone().unwrap_or_else(|| "-".into()),
                r.rule.clone().unwrap_or_else(|| "-".into()),
                limit,
                if warns.is_empty() {
                    "-".into()
                } else {
                    warns.join(", ")
                },
                acts,
                r.activity.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "ID",
        "USER",
        "NAME",
        "RULE",
        "LIMIT",
        "WARNS AT",
        "LOGS OFF AT",
        "ACTIVITY",
    ];
    out.push('\n');
    out.push_str(&render(Some(&header), &cells, &[]));
    out
}
