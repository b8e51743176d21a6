//! What logoffd says to users: the warning before a session's limit acts (who, why, when,
//! how to stay, and the admin's message with its placeholders filled), and the word that a
//! warned logoff is off. Text for terminals (made safe by [`crate::text::sanitize`]);
//! the backend shows the same in a window on a display.

use std::time::Duration;

use jiff::Timestamp;

use crate::logoff::Action;
use crate::logoff::warn::banner;
use crate::model::Session;
use crate::policy::template::Field;
use crate::policy::{Limit, Reason, Rule};
use crate::text::sanitize;
use crate::time::{self, Now};

/// What is left until `at`, to the second, for people.
pub fn left_until(now: Timestamp, at: Timestamp) -> String {
    let left = time::between(now, at);
    let rounded = left.as_secs() + u64::from(left.subsec_millis() >= 500);
    crate::duration::display(Duration::from_secs(rounded))
}

/// The text of a warning: who, why, when, how to stay; then the admin's message. `acts_at`
/// is when the limit acts (it may be later than the limit says: see `planner`).
pub fn warning_text(
    s: &Session,
    rule: &Rule,
    limit: &Limit,
    acts_at: Timestamp,
    now: impl Into<Now>,
) -> String {
    let now = now.into();
    let left = left_until(now.at, acts_at);
    let at = now
        .wall_of(acts_at)
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string();
    let (done, after) = match limit.action {
        Action::Disconnect => (
            "disconnected",
            "; your programs keep running: reconnect to continue",
        ),
        Action::LogOff | Action::Message => ("logged off", ""),
    };
    let when = if acts_at <= now.at {
        "now".to_string()
    } else {
        format!("in {left} (at {at})")
    };
    let mut text = banner(&sanitize(&format!(
        "this session ({}, {}) {}: it will be {done} {when}, by the policy rule \
         '{}'{after}",
        s.id,
        s.owner_and_place(),
        limit.sentence(),
        rule.name
    )));
    if limit.reason == Reason::Idle {
        text.push_str("*** Any input in this session keeps it: press a key to stay. ***\r\n");
    }
    if let Some(template) = &rule.message {
        let filled = template.fill(|field| match field {
            Field::User => s.user.clone(),
            Field::Rule => rule.name.clone(),
            Field::Reason => limit.reason.as_str().to_string(),
            Field::Limit => crate::duration::display(limit.limit),
            Field::Left => left.clone(),
            Field::At => at.clone(),
            Field::Session => s.id.to_string(),
            Field::Action => done.to_string(),
        });
        text.push_str(&sanitize(&filled));
        text.push_str("\r\n");
    }
    text
}

/// The word that a warned session will not be logged off (or disconnected) now, and why.
pub fn cancel_text(why: &str, action: Action) -> String {
    let done = match action {
        Action::Disconnect => "disconnected",
        Action::LogOff | Action::Message => "logged off",
    };
    banner(&sanitize(&format!(
        "{why}: this session will not be {done} now; carry on"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, Uid};
    use crate::policy::Remembered;

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
            activity: crate::model::Activity::typed_at(Some(
                now.checked_sub(jiff::SignedDuration::from_secs(6600))
                    .expect("t"),
            )),
            login: crate::model::Login::Logind(crate::model::Origin::Ssh),
            ..Session::default()
        };
        let v = p.evaluate(std::slice::from_ref(&s), |_| Remembered::default(), now);
        let d = v[0].limit().expect("limited");
        let text = warning_text(&s, &p.rules[0], d, d.acts_at, now);
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
        assert!(text.starts_with("\r\n\x07*** logoff: "), "{text}");
    }
}
