//! `logoffd --check`: is the policy valid, and what will it do right now? The rules in
//! order, then each current session with the rule that applies, the limit, and when it
//! would warn and act — the same evaluation the daemon makes.

use std::path::Path;

use comfy_table::{ContentArrangement, Table};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::state::{Clocks, StateDir};
use crate::model::Session;
use crate::output::clean;
use crate::policy::{Policy, Verdict};

#[derive(Serialize)]
struct Report<'a> {
    policy: String,
    valid: bool,
    mode: &'a str,
    scan_interval_seconds: u64,
    rules: Vec<RuleRow>,
    sessions: Vec<SessionRow>,
}

#[derive(Serialize)]
struct RuleRow {
    name: String,
    description: String,
}

#[derive(Serialize)]
struct SessionRow {
    id: String,
    user: String,
    name: Option<String>,
    rule: Option<String>,
    /// `idle`, `disconnected`, `max-age`; null when no limit runs.
    reason: Option<&'static str>,
    limit_seconds: Option<u64>,
    since: Option<String>,
    warn_at: Vec<String>,
    acts_at: Option<String>,
    /// Why no limit runs (no rule, exempt, protected, unknown idle time).
    why_not: Option<String>,
}

/// The clocks the daemon keeps, if its state directory exists (read only).
pub fn clocks(dir: &Path) -> Clocks {
    if !dir.exists() {
        return Clocks::default();
    }
    StateDir::open(dir)
        .map(|d| Clocks::load(&d).0)
        .unwrap_or_default()
}

/// The report, as text or JSON.
pub fn report(
    path: &Path,
    policy: &Policy,
    sessions: &[Session],
    clocks: &Clocks,
    now: Timestamp,
    json: bool,
) -> String {
    let verdicts = policy.evaluate(sessions, |s| clocks.since(s), now);
    let rows: Vec<SessionRow> = sessions
        .iter()
        .zip(&verdicts)
        .map(|(s, v)| row(s, v))
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

fn row(s: &Session, v: &Verdict) -> SessionRow {
    let d = v.deadline();
    SessionRow {
        id: s.id.to_string(),
        user: s.user.clone(),
        name: s.name().map(String::from),
        rule: v.rule().map(String::from),
        reason: d.map(|d| d.reason.as_str()),
        limit_seconds: d.map(|d| d.limit.as_secs()),
        since: d.map(|d| d.since.to_string()),
        warn_at: d
            .map(|d| d.warnings.iter().map(|(_, at)| at.to_string()).collect())
            .unwrap_or_default(),
        acts_at: d.map(|d| d.acts_at.to_string()),
        why_not: v.why_not(),
    }
}

fn text(
    path: &Path,
    policy: &Policy,
    rules: &[RuleRow],
    rows: &[SessionRow],
    now: Timestamp,
) -> String {
    let tz = TimeZone::system();
    let clock = |t: &str| -> String {
        let Ok(t) = t.parse::<Timestamp>() else {
            return t.to_string();
        };
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
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "ID",
            "USER",
            "NAME",
            "RULE",
            "LIMIT",
            "WARNS AT",
            "LOGS OFF AT",
        ]);
    for r in rows {
        let limit = match (r.reason, r.limit_seconds) {
            (Some(reason), Some(secs)) => format!(
                "{reason} {}",
                crate::duration::display(std::time::Duration::from_secs(secs))
            ),
            _ => "-".into(),
        };
        let warns: Vec<String> = r.warn_at.iter().map(|t| clock(t)).collect();
        let acts = match (&r.acts_at, &r.why_not) {
            (Some(t), _) => clock(t),
            (None, Some(why)) => format!("never: {why}"),
            (None, None) => "-".into(),
        };
        table.add_row([
            clean(&r.id).into_owned(),
            clean(&r.user).into_owned(),
            clean(r.name.as_deref().unwrap_or("-")).into_owned(),
            clean(r.rule.as_deref().unwrap_or("-")).into_owned(),
            limit,
            if warns.is_empty() {
                "-".into()
            } else {
                warns.join(", ")
            },
            acts,
        ]);
    }
    out.push('\n');
    out.push_str(&table.to_string());
    out.push('\n');
    out
}
