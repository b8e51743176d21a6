//! A rule's keys for what counts as activity and what its idle limit does.

use std::ops::Range;

use toml::Spanned;

use super::{PolicyError, line_col};
use crate::logoff::Action;
use crate::policy::{Counts, DEFAULT_ACTIVITY, DEFAULT_BUSY_CPU};

/// `activity = ["input", "cpu"]`: what counts, each once; at least one.
pub(super) fn activity(
    text: &str,
    raw: Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Counts>, PolicyError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_ACTIVITY.to_vec());
    };
    let at = |span: Range<usize>, message: String| PolicyError {
        at: Some(line_col(text, span.start)),
        message,
    };
    let whole = raw.span();
    let mut counts = Vec::new();
    for word in raw.into_inner() {
        let Some(c) = Counts::ALL
            .into_iter()
            .find(|c| c.as_str() == word.get_ref())
        else {
            return Err(at(
                word.span(),
                format!(
                    "activity '{}' is not one of input, output, cpu, inhibit",
                    word.get_ref()
                ),
            ));
        };
        if !counts.contains(&c) {
            counts.push(c);
        }
    }
    if counts.is_empty() {
        return Err(at(whole, "activity must name at least one kind".into()));
    }
    Ok(counts)
}

/// `busy_cpu = "25%"`: a share of one CPU, above 0%.
pub(super) fn busy_cpu(text: &str, raw: Option<Spanned<String>>) -> Result<f64, PolicyError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_BUSY_CPU);
    };
    let share = raw
        .get_ref()
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100_000.0);
    share.map(|p| p / 100.0).ok_or_else(|| PolicyError {
        at: Some(line_col(text, raw.span().start)),
        message: format!(
            "busy_cpu '{}' is not a share of a CPU such as \"10%\" (above 0%)",
            raw.get_ref()
        ),
    })
}

/// `action = "disconnect"`: what the idle, hours and sessions limits do (`logoff` by
/// default); `acts`: whether the rule has one of them.
pub(super) fn action(
    text: &str,
    raw: Option<Spanned<String>>,
    acts: bool,
) -> Result<Action, PolicyError> {
    let Some(raw) = raw else {
        return Ok(Action::LogOff);
    };
    let fail = |message: String| PolicyError {
        at: Some(line_col(text, raw.span().start)),
        message,
    };
    match raw.get_ref().as_str() {
        "logoff" => Ok(Action::LogOff),
        "disconnect" if acts => Ok(Action::Disconnect),
        "disconnect" => Err(fail(
            "action = \"disconnect\" is what an idle, hours or max_sessions limit does: this \
             rule has none"
                .into(),
        )),
        other => Err(fail(format!(
            "action '{other}' is not one of logoff, disconnect"
        ))),
    }
}
