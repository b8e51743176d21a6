//! What a logoff prints at the end: one JSON object per target (`--json`), or the dry run's
//! lines, and every failure, with its host when there are several, and which hosts failed.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::logoff::{Action, Effect, Outcome, plural};

/// What happened on one host: its outcomes, or why nothing could be done there.
pub struct HostResult<'a> {
    pub label: &'a str,
    pub result: &'a Result<Vec<Outcome>>,
}

#[derive(Serialize)]
struct OutcomeJson<'a> {
    host: &'a str,
    id: Option<&'a str>,
    user: Option<&'a str>,
    name: Option<&'a str>,
    /// `logoff`, `disconnect`, `message`.
    action: &'static str,
    logged_off: bool,
    /// `--disconnect`: its connection ended.
    disconnected: bool,
    /// Where its client was (`--disconnect`).
    client: Option<&'a str>,
    dry_run: bool,
    processes: Option<usize>,
    asked: Option<usize>,
    killed: Option<usize>,
    seconds: Option<f64>,
    error: Option<ErrorJson<'a>>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    kind: &'a str,
    message: &'a str,
}

impl<'a> ErrorJson<'a> {
    fn of(e: &'a Error) -> ErrorJson<'a> {
        ErrorJson {
            kind: e.kind().as_str(),
            message: e.message(),
        }
    }
}

impl<'a> OutcomeJson<'a> {
    fn of(host: &'a str, o: &'a Outcome, dry_run: bool, action: Action) -> OutcomeJson<'a> {
        let done = match &o.result {
            Ok(Effect::LoggedOff(done)) => Some(done),
            _ => None,
        };
        let cut = match &o.result {
            Ok(Effect::Disconnected(cut)) => Some(cut),
            _ => None,
        };
        let processes = match &o.result {
            Ok(Effect::Planned { processes }) => Some(*processes),
            _ => None,
        };
        OutcomeJson {
            host,
            id: Some(o.session.id.as_str()),
            user: Some(&o.session.user),
            name: o.session.name(),
            action: action.as_str(),
            logged_off: done.is_some(),
            disconnected: cut.is_some(),
            client: cut.and_then(|c| c.client.as_deref()),
            dry_run,
            processes,
            asked: done.and_then(|d| d.asked).or(cut.map(|c| c.ended)),
            killed: done.and_then(|d| d.killed),
            seconds: done
                .map(|d| d.elapsed)
                .or(cut.map(|c| c.elapsed))
                .map(|e| e.as_secs_f64()),
            error: o.result.as_ref().err().map(ErrorJson::of),
        }
    }

    /// A host that failed as a whole: one object, with no session.
    fn failed(host: &'a str, e: &'a Error, dry_run: bool, action: Action) -> OutcomeJson<'a> {
        OutcomeJson {
            host,
            id: None,
            user: None,
            name: None,
            action: action.as_str(),
            logged_off: false,
            disconnected: false,
            client: None,
            dry_run,
            processes: None,
            asked: None,
            killed: None,
            seconds: None,
            error: Some(ErrorJson::of(e)),
        }
    }
}

/// One JSON object per target, and one per host that failed as a whole.
pub fn json(hosts: &[HostResult<'_>], dry_run: bool, action: Action) -> serde_json::Result<String> {
    let mut rows: Vec<OutcomeJson> = Vec::new();
    for h in hosts {
        match h.result {
            Ok(outcomes) => rows.extend(
                outcomes
                    .iter()
                    .map(|o| OutcomeJson::of(h.label, o, dry_run, action)),
            ),
            Err(e) => rows.push(OutcomeJson::failed(h.label, e, dry_run, action)),
        }
    }
    super::json(&rows)
}

/// `would log off session 7 (bob on pts/2) on h1: 3 processes`, per planned target.
pub fn dry_run_lines(hosts: &[HostResult<'_>], action: Action) -> Vec<String> {
    let would = match action {
        Action::LogOff => "would log off",
        Action::Disconnect => "would disconnect",
        Action::Message => "would write the message to",
    };
    let multi = hosts.len() > 1;
    let mut lines = Vec::new();
    for h in hosts {
        for o in h.result.iter().flatten() {
            let processes = match &o.result {
                Ok(Effect::Planned { processes }) => {
                    format!(": {}", plural(*processes, "process", "processes"))
                }
                _ => String::new(),
            };
            let on = if multi {
                format!(" on {}", h.label)
            } else {
                String::new()
            };
            lines.push(format!("{would} {}{on}{processes}", o.session.describe()));
        }
    }
    lines
}

/// Every failure, each with its host when there are several.
pub fn failures<'a>(hosts: &'a [HostResult<'a>]) -> Vec<(&'a str, &'a Error)> {
    let mut failed = Vec::new();
    for h in hosts {
        match h.result {
            Ok(outcomes) => {
                failed.extend(
                    outcomes
                        .iter()
                        .filter_map(|o| o.result.as_ref().err().map(|e| (h.label, e))),
                );
            }
            Err(e) => failed.push((h.label, e)),
        }
    }
    failed
}

/// `2 of 10 hosts failed: h3, h7`, with several hosts and some failed.
pub fn summary(hosts: usize, failed: &[&str]) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for f in failed {
        if !names.contains(f) {
            names.push(f);
        }
    }
    (hosts > 1 && !names.is_empty()).then(|| {
        format!(
            "{} of {hosts} hosts failed: {}",
            names.len(),
            names.join(", ")
        )
    })
}

/// A failure as printed: prefixed with its host when there are several.
pub fn failure_line(multi: bool, host: &str, e: &Error) -> String {
    if multi {
        format!("{host}: {}", e.message())
    } else {
        e.message().to_string()
    }
}
