//! What logoffd says to users: the warning before a logoff under a time limit (who, why,
//! when, how to stay, and the admin's message with its placeholders filled), for terminals
//! (control characters shown as `^X`) and, through the backend, displays.

use std::time::Duration;

use jiff::Timestamp;

use super::enforce::duration_between;
use crate::model::Session;
use crate::policy::Rule;
use crate::policy::eval::{Deadline, Reason};
use crate::policy::template::{Field, Template};
use crate::system::tty::sanitize;

/// `idle for 2h`, `disconnected for 30m`, `logged on for 1d`.
pub fn limit_words(d: &Deadline) -> String {
    format!(
        "{} {}",
        d.reason.state_words(),
        crate::duration::display(d.limit)
    )
}

/// What is left until `at`, to the second, for people.
pub fn left_until(now: Timestamp, at: Timestamp) -> String {
    let left = duration_between(now, at);
    crate::duration::display(Duration::from_secs(left.as_secs_f64().round() as u64))
}

/// The text of a warning: who, why, when, how to stay; then the admin's message.
pub fn warning_text(s: &Session, rule: &Rule, d: &Deadline, now: Timestamp) -> String {
    let left = left_until(now, d.acts_at);
    let at = d
        .acts_at
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string();
    let mut text = format!(
        "\r\n\x07*** logoff: this session ({}, {}) has been {}: it will be logged off in \
         {left} (at {at}), by the policy rule '{}' ***\r\n",
        s.id,
        s.owner_and_place(),
        limit_words(d),
        rule.name
    );
    if d.reason == Reason::Idle {
        text.push_str("*** Any input in this session keeps it: press a key to stay. ***\r\n");
    }
    if let Some(template) = &rule.message {
        let filled = fill(template, s, rule, d, &left, &at);
        text.push_str(&filled.replace('\n', "\r\n"));
        text.push_str("\r\n");
    }
    sanitize_keeping_lines(&text)
}

/// The admin's template with its placeholders filled.
fn fill(
    template: &Template,
    s: &Session,
    rule: &Rule,
    d: &Deadline,
    left: &str,
    at: &str,
) -> String {
    template.fill(|field| match field {
        Field::User => s.user.clone(),
        Field::Rule => rule.name.clone(),
        Field::Reason => d.reason.as_str().to_string(),
        Field::Limit => crate::duration::display(d.limit),
        Field::Left => left.to_string(),
        Field::At => at.to_string(),
        Field::Session => s.id.to_string(),
        Field::Action => "logged off".to_string(),
    })
}

/// Control characters shown as `^X` (the text goes to terminals), but line breaks and the
/// bell of the header kept.
fn sanitize_keeping_lines(text: &str) -> String {
    text.split("\r\n")
        .map(|line| match line.strip_prefix('\x07') {
            Some(rest) => format!("\x07{}", sanitize(rest)),
            None => sanitize(line),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, Uid};

    #[test]
    fn the_warning_says_who_why_when_and_how_to_stay() {
        let p = crate::policy::from_text(
            "[[rule]]\nname = \"idle\"\nidle = \"2h\"\nwarn = [\"10m\"]\n\
             message = \"{user}: idle for {limit}; out in {left} ({{rule}} {rule}) \\u001b[2J\"\n",
        )
        .expect("policy");
        let now = Timestamp::from_second(1_800_000_000).expect("t");
        let s = Session {
            id: SessionId::new("7"),
            uid: Some(Uid::from_raw(1000)),
            user: "bob".into(),
            tty: Some("pts/1".into()),
            state: "active".into(),
            idle_since: Some(
                now.checked_sub(jiff::SignedDuration::from_secs(6600))
                    .expect("t"),
            ),
            ..Session::default()
        };
        let v = p.evaluate(std::slice::from_ref(&s), |_| None, now);
        let d = v[0].deadline().expect("limited");
        let text = warning_text(&s, &p.rules[0], d, now);
        assert!(
            text.contains("(7, bob on pts/1) has been idle for 2h"),
            "{text}"
        );
        assert!(text.contains("logged off in 10m"), "{text}");
        assert!(text.contains("press a key to stay"), "{text}");
        assert!(
            text.contains("bob: idle for 2h; out in 10m ({rule} idle) ^[[2J"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
    }
}
