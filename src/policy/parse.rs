//! The policy file's syntax (TOML) and its checks: unknown keys, bad durations, rules without
//! a limit, unknown placeholders — each error with the line and column it is about.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::allowance::{Allowance, Counting};
use super::hours::{self, Hours, Zone};
use super::rule::{Exempt, Match, UidRange};
use super::template::Template;
use activity::{action, activity, busy_cpu};

mod activity;
use super::{
    Cap, DEFAULT_METRICS_DIR, DEFAULT_SCAN_INTERVAL, DEFAULT_TIMEOUT, Enforcement, Go, Policy,
    PolicyError, Rule,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    mode: Option<Spanned<String>>,
    scan_interval: Option<Spanned<String>>,
    metrics_dir: Option<Spanned<String>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default, rename = "match")]
    matches: RawMatch,
    #[serde(default)]
    exempt: RawExempt,
    idle: Option<Spanned<String>>,
    disconnected: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    #[serde(default)]
    warn: Vec<Spanned<String>>,
    message: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    activity: Option<Spanned<Vec<Spanned<String>>>>,
    busy_cpu: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    hours: Option<Spanned<OneOrMany<String>>>,
    timezone: Option<Spanned<String>>,
    allowance: Option<Spanned<RawAllowance>>,
    max_sessions: Option<Spanned<i64>>,
    sessions_go: Option<Spanned<String>>,
}

/// `allowance = { day = "2h", week = "10h", counts = "active", reset = "04:00" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowance {
    day: Option<Spanned<String>>,
    week: Option<Spanned<String>>,
    counts: Option<Spanned<String>>,
    reset: Option<Spanned<String>>,
    week_starts: Option<Spanned<String>>,
}

/// One value or a list of them (`users = "bob"` or `users = ["bob", "carol"]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

fn list<T>(v: Option<OneOrMany<T>>) -> Vec<T> {
    v.map(OneOrMany::into_vec).unwrap_or_default()
}

/// A uid or a range of them: `1000`, or `"1000-1999"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawUid {
    Number(u32),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    users: Option<OneOrMany<String>>,
    groups: Option<OneOrMany<String>>,
    uids: Option<Spanned<OneOrMany<RawUid>>>,
    remote: Option<bool>,
    local: Option<bool>,
    from: Option<Spanned<OneOrMany<String>>>,
    tty: Option<bool>,
    x11: Option<bool>,
    service: Option<OneOrMany<String>>,
    class: Option<OneOrMany<String>>,
    console: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExempt {
    users: Option<OneOrMany<String>>,
    groups: Option<OneOrMany<String>>,
    uids: Option<Spanned<OneOrMany<RawUid>>>,
}

/// Parses and checks a policy's text.
pub(super) fn parse(text: &str) -> Result<Policy, PolicyError> {
    let at = |span: Range<usize>, message: String| PolicyError {
        at: Some(line_col(text, span.start)),
        message,
    };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError {
        at: e.span().map(|s| line_col(text, s.start)),
        message: if e.message().contains("untagged enum OneOrMany") {
            "expected a value or a list of them: text for names and hosts, a number or \
             \"first-last\" for uids"
                .into()
        } else {
            e.message().trim().to_string()
        },
    })?;
    let mode = match raw.mode {
        None => Enforcement::default(),
        Some(m) => match m.get_ref().as_str() {
            "enforce" => Enforcement::Enforce,
            "dry-run" => Enforcement::DryRun,
            "warn-only" => Enforcement::WarnOnly,
            other => {
                return Err(at(
                    m.span(),
                    format!("mode '{other}' is not one of enforce, dry-run, warn-only"),
                ));
            }
        },
    };
    let scan_interval = match raw.scan_interval {
        None => DEFAULT_SCAN_INTERVAL,
        Some(s) => {
            let d = duration(text, &s)?;
            if d < Duration::from_secs(1) {
                return Err(at(s.span(), "scan_interval must be at least 1s".into()));
            }
            d
        }
    };
    let metrics_dir = match raw.metrics_dir {
        None => Some(std::path::PathBuf::from(DEFAULT_METRICS_DIR)),
        Some(d) if d.get_ref().is_empty() => None,
        Some(d) if d.get_ref().starts_with('/') && !d.get_ref().contains('\0') => {
            Some(std::path::PathBuf::from(d.get_ref()))
        }
        Some(d) => {
            return Err(at(
                d.span(),
                "metrics_dir must be an absolute path (or \"\" for no metrics)".into(),
            ));
        }
    };
    let mut rules: Vec<Rule> = Vec::new();
    for raw_rule in raw.rules {
        let name_span = raw_rule.name.span();
        let rule = rule(text, raw_rule)?;
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(at(
                name_span,
                format!("a rule named '{}' comes earlier", rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(Policy {
        mode,
        scan_interval,
        metrics_dir,
        rules,
    })
}

fn rule(text: &str, raw: RawRule) -> Result<Rule, PolicyError> {
    let at = |span: Range<usize>, message: String| PolicyError {
        at: Some(line_col(text, span.start)),
        message,
    };
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(at(
            raw.name.span(),
            "a rule's name must be text without control characters".into(),
        ));
    }
    let limit = |v: &Option<Spanned<String>>| -> Result<Option<Duration>, PolicyError> {
        match v {
            None => Ok(None),
            Some(s) => {
                let d = duration(text, s)?;
                if d.is_zero() {
                    return Err(at(s.span(), "a limit must be longer than 0s".into()));
                }
                Ok(Some(d))
            }
        }
    };
    let idle = limit(&raw.idle)?;
    let disconnected = limit(&raw.disconnected)?;
    let max_age = limit(&raw.max_age)?;
    let zone = match &raw.timezone {
        None => Zone::host(),
        Some(z) => Zone::named(z.get_ref()).map_err(|e| at(z.span(), e))?,
    };
    let hours = match raw.hours {
        None => None,
        Some(h) => {
            let span = h.span();
            let texts = h.into_inner().into_vec();
            Some(Hours::parse(&texts, zone.clone()).map_err(|e| at(span, e))?)
        }
    };
    let allowance = match raw.allowance {
        None => None,
        Some(a) => Some(allowance(text, a, zone)?),
    };
    let max_sessions = cap(text, raw.max_sessions, raw.sessions_go)?;
    if idle.is_none()
        && disconnected.is_none()
        && max_age.is_none()
        && hours.is_none()
        && allowance.is_none()
        && max_sessions.is_none()
    {
        return Err(at(
            raw.name.span(),
            format!(
                "rule '{name}' sets no limit: give idle, disconnected, max_age, hours, \
                 allowance or max_sessions"
            ),
        ));
    }
    let mut warn = Vec::new();
    for w in &raw.warn {
        let d = duration(text, w)?;
        if d.is_zero() {
            return Err(at(
                w.span(),
                "a warning's lead time must be longer than 0s".into(),
            ));
        }
        warn.push(d);
    }
    warn.sort_unstable_by(|a, b| b.cmp(a));
    warn.dedup();
    let message = match &raw.message {
        None => None,
        // The template's position in the text: the value's, after its opening quote.
        Some(m) => Some(Template::parse(m.get_ref()).map_err(|e| PolicyError {
            at: Some(line_col(text, m.span().start + 1 + e.offset)),
            message: e.message,
        })?),
    };
    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => duration(text, t)?,
    };
    Ok(Rule {
        name,
        matches: matches(text, raw.matches)?,
        exempt: Exempt {
            users: list(raw.exempt.users),
            groups: list(raw.exempt.groups),
            uids: uids(text, raw.exempt.uids)?,
        },
        idle,
        disconnected,
        max_age,
        warn,
        message,
        timeout,
        activity: activity(text, raw.activity)?,
        busy_cpu: busy_cpu(text, raw.busy_cpu)?,
        action: action(
            text,
            raw.action,
            idle.is_some() || hours.is_some() || max_sessions.is_some(),
        )?,
        hours,
        allowance,
        max_sessions,
    })
}

/// `allowance = { ... }`: a day's and/or a week's time, what counts, when it resets.
fn allowance(text: &str, raw: Spanned<RawAllowance>, zone: Zone) -> Result<Allowance, PolicyError> {
    let at = |span: Range<usize>, message: String| PolicyError {
        at: Some(line_col(text, span.start)),
        message,
    };
    let whole = raw.span();
    let raw = raw.into_inner();
    let amount = |v: &Option<Spanned<String>>| -> Result<Option<Duration>, PolicyError> {
        match v {
            None => Ok(None),
            Some(s) => {
                let d = duration(text, s)?;
                if d.is_zero() {
                    return Err(at(s.span(), "an allowance must be longer than 0s".into()));
                }
                Ok(Some(d))
            }
        }
    };
    let (day, week) = (amount(&raw.day)?, amount(&raw.week)?);
    if day.is_none() && week.is_none() {
        return Err(at(
            whole,
            "allowance needs day, week or both (day = \"2h\")".into(),
        ));
    }
    let counting = match &raw.counts {
        None => Counting::Any,
        Some(c) => match c.get_ref().as_str() {
            "any" => Counting::Any,
            "active" => Counting::Active,
            other => {
                return Err(at(
                    c.span(),
                    format!("allowance counts '{other}' is not one of any, active"),
                ));
            }
        },
    };
    let reset = match &raw.reset {
        None => 0,
        Some(r) => hours::time_of_day(r.get_ref()).map_err(|e| at(r.span(), e))?,
    };
    let week_starts = match &raw.week_starts {
        None => jiff::civil::Weekday::Monday,
        Some(w) => hours::weekday(w.get_ref()).map_err(|e| at(w.span(), e))?,
    };
    Ok(Allowance {
        day,
        week,
        counting,
        reset,
        week_starts,
        zone,
    })
}

/// `max_sessions = 2`, `sessions_go = "oldest"`.
fn cap(
    text: &str,
    max: Option<Spanned<i64>>,
    go: Option<Spanned<String>>,
) -> Result<Option<Cap>, PolicyError> {
    let at = |span: Range<usize>, message: String| PolicyError {
        at: Some(line_col(text, span.start)),
        message,
    };
    let go = match &go {
        None => None,
        Some(g) => Some(match g.get_ref().as_str() {
            "newest" => Go::Newest,
            "oldest" => Go::Oldest,
            other => {
                return Err(at(
                    g.span(),
                    format!("sessions_go '{other}' is not one of newest, oldest"),
                ));
            }
        }),
    };
    let Some(max) = max else {
        return match go {
            Some(_) => Err(PolicyError {
                at: None,
                message: "sessions_go says which sessions above max_sessions go: give \
                          max_sessions too"
                    .into(),
            }),
            None => Ok(None),
        };
    };
    let n = usize::try_from(*max.get_ref())
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            at(
                max.span(),
                "max_sessions is a number from 1 to 10000".into(),
            )
        })?;
    Ok(Some(Cap {
        max: n,
        go: go.unwrap_or(Go::Newest),
    }))
}

fn matches(text: &str, raw: RawMatch) -> Result<Match, PolicyError> {
    if let (Some(r), Some(l)) = (raw.remote, raw.local)
        && r == l
    {
        return Err(PolicyError {
            at: None,
            message: "match: remote and local say the same thing twice or contradict \
                      each other; give one of them"
                .into(),
        });
    }
    let mut from = Vec::new();
    if let Some(spanned) = raw.from {
        let start = spanned.span().start;
        for f in spanned.into_inner().into_vec() {
            let parsed = crate::select::HostSpec::parse(&f).map_err(|e| PolicyError {
                at: Some(line_col(text, start)),
                message: e,
            })?;
            from.push(parsed);
        }
    }
    Ok(Match {
        users: list(raw.users),
        groups: list(raw.groups),
        uids: uids(text, raw.uids)?,
        remote: raw.remote.or(raw.local.map(|l| !l)),
        from,
        tty: raw.tty,
        x11: raw.x11,
        services: list(raw.service),
        classes: list(raw.class),
        console: raw.console,
    })
}

fn uids(text: &str, raw: Option<Spanned<OneOrMany<RawUid>>>) -> Result<Vec<UidRange>, PolicyError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let start = raw.span().start;
    raw.into_inner()
        .into_vec()
        .into_iter()
        .map(|u| match u {
            RawUid::Number(n) => Ok(UidRange { first: n, last: n }),
            RawUid::Text(t) => UidRange::parse(&t).map_err(|e| PolicyError {
                at: Some(line_col(text, start)),
                message: e,
            }),
        })
        .collect()
}

fn duration(text: &str, s: &Spanned<String>) -> Result<Duration, PolicyError> {
    crate::duration::parse(s.get_ref()).map_err(|e| PolicyError {
        at: Some(line_col(text, s.span().start)),
        message: e,
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // An offset into a value's decoded text may not fall on a character of the raw text.
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
mode = "enforce"
[[rule]]
name = "remote-idle"
match = { remote = true }
exempt = { users = ["alice"], groups = ["admins"] }
idle = "2h"
disconnected = "30m"
max_age = "24h"
warn = ["1m", "10m"]
message = "{user}: idle for {limit}; you will be logged off in {left}. Press any key to stay."
timeout = "10s"
"#;

    #[test]
    fn the_example_of_the_issue_parses() {
        let p = parse(EXAMPLE).expect("parses");
        assert_eq!(p.mode, Enforcement::Enforce);
        assert_eq!(p.rules.len(), 1);
        let r = &p.rules[0];
        assert_eq!(r.name, "remote-idle");
        assert_eq!(r.matches.remote, Some(true));
        assert_eq!(r.exempt.users, ["alice"]);
        assert_eq!(r.idle, Some(Duration::from_secs(7200)));
        assert_eq!(r.warn, [Duration::from_secs(600), Duration::from_secs(60)]);
        assert_eq!(r.timeout, Duration::from_secs(10));
        assert_eq!(p.scan_interval, DEFAULT_SCAN_INTERVAL);
        assert_eq!(
            p.metrics_dir.as_deref(),
            Some(std::path::Path::new(DEFAULT_METRICS_DIR))
        );
    }

    #[test]
    fn metrics_go_to_an_absolute_directory_or_nowhere() {
        let p = parse("metrics_dir = \"\"\n").expect("parses");
        assert_eq!(p.metrics_dir, None);
        let p = parse("metrics_dir = \"/srv/prom\"\n").expect("parses");
        assert_eq!(
            p.metrics_dir.as_deref(),
            Some(std::path::Path::new("/srv/prom"))
        );
        let e = parse("mode = \"enforce\"\nmetrics_dir = \"prom\"\n").expect_err("relative");
        assert_eq!(e.at, Some((2, 15)), "{e}");
        assert!(e.message.contains("absolute"), "{e}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad = |text: &str| parse(text).expect_err("must fail");
        let e = bad("mode = \"enforce\"\n[[rule]]\nname = \"x\"\nidle = \"2 fortnights\"\n");
        assert_eq!(e.at, Some((4, 8)), "{e}");
        let e = bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\nidel = \"2h\"\n");
        assert_eq!(e.at.map(|a| a.0), Some(4), "{e}");
        assert!(e.message.contains("idel"), "{e}");
        let e = bad("[[rule]]\nname = \"x\"\n");
        assert!(e.message.contains("no limit"), "{e}");
        let e = bad("mode = \"sometimes\"\n");
        assert_eq!(e.at, Some((1, 8)));
        let e = bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\nmessage = \"bye {usr}\"\n");
        assert!(e.message.contains("{usr}"), "{e}");
        let e =
            bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\n[[rule]]\nname = \"x\"\nidle = \"2h\"\n");
        assert_eq!(e.at, Some((5, 8)), "{e}");
        let e = bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\nmatch = { from = \"10.0.0.0/40\" }\n");
        assert_eq!(e.at, Some((4, 18)), "{e}");
        assert!(e.message.contains("prefix length"), "{e}");
        let e = bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\nmatch = { uids = [\"9-1\"] }\n");
        assert!(e.message.contains("ends before it begins"), "{e}");
        let e = bad("[[rule]]\nname = \"x\"\nidle = \"1h\"\nmatch = { users = 5 }\n");
        assert!(e.message.contains("a list of them"), "{e}");
        let e = bad("[[rule]\n");
        assert!(e.at.is_some(), "{e}");
    }

    /// Regression (issue 17, item 5): a lone `}` in a message passed the check, then
    /// panicked the daemon at its first warning. It is refused with its line and column.
    #[test]
    fn a_lone_brace_in_a_message_is_refused_where_it_is() {
        let e = parse("[[rule]]\nname = \"x\"\nidle = \"1h\"\nmessage = \"bye }\"\n")
            .expect_err("refused");
        assert_eq!(e.at, Some((4, 16)), "{e}");
        assert!(e.message.contains("'}' without"), "{e}");
    }

    /// Lines a policy is made of, right and wrong, for the property test below.
    const PIECES: &[&str] = &[
        "[[rule]]",
        "name = \"r\"",
        "name = \"r2\"",
        "name = \"\"",
        "idle = \"1h\"",
        "idle = \"0\"",
        "idle = \"-1s\"",
        "disconnected = \"30m\"",
        "max_age = \"101d\"",
        "warn = [\"10m\", \"1m\"]",
        "warn = [\"0s\"]",
        "warn = 5",
        "message = \"{user} }\"",
        "message = \"\\u00e9}\"",
        "message = \"{{{left}}}\"",
        "timeout = \"2s\"",
        "match = { remote = true, local = true }",
        "match = { from = [\"10.0.0.0/99\", \"h\"] }",
        "match = { uids = [\"9-1\", 5, \"x\"] }",
        "match = { users = 5 }",
        "exempt = { groups = [\"sudo\"] }",
        "mode = \"warn-only\"",
        "mode = \"x\"",
        "scan_interval = \"0s\"",
        "metrics_dir = \"x\"",
        "metrics_dir = \"/m\"",
        "é = 1",
        "[rule]",
        "\"",
        "=",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// No policy text panics the parser (issue 17, item 5): arbitrary text, and
        /// policies put together from right and wrong lines.
        #[test]
        fn no_policy_text_panics(text in proptest::prelude::any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn no_policy_made_of_lines_panics(
            lines in proptest::collection::vec(proptest::sample::select(PIECES), 0..16)
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
