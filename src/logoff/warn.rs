//! The warning before a logoff: on the users' terminals, repeated a minute and ten seconds
//! before the end of a grace period (as shutdown does), and the cancellation, if it comes.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::{Action, Control, Hooks};
use crate::backend::Backend;
use crate::duration;
use crate::error::{Error, Kind, Result};
use crate::model::Session;
use crate::text::sanitize;

/// The warning before a logoff.
pub struct Warning<'a> {
    pub message: Option<&'a str>,
    pub grace: Duration,
    /// Who logs them off: `root@host`.
    pub by: String,
    /// What comes after the warning (its words, and whether to wait for it to be read).
    pub action: Action,
}

impl Warning<'_> {
    /// Whether there is anything to say or wait for.
    pub fn is_some(&self) -> bool {
        self.message.is_some() || !self.grace.is_zero()
    }
}

/// When, before the end of a grace period, the warning is repeated.
const REMINDERS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(10)];

/// With a message and no grace period, how long logoff waits after the warning before the
/// logoff: the text written to a pseudo-terminal reaches the user only once the program
/// holding its other end (sshd, a terminal emulator) has read and forwarded it, and a
/// session ended at once takes that program with it.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Warns the users of `targets` and waits out the grace period, repeating the warning a
/// minute and ten seconds before its end when the period is longer than that. Cancelled
/// (`Kind::Cancelled`): nothing is logged off, and the users are told.
pub fn warn_and_wait(
    backend: &mut dyn Backend,
    targets: &[Session],
    warning: &Warning<'_>,
    control: &dyn Control,
    hooks: &mut dyn Hooks,
) -> Result<()> {
    if !warning.is_some() {
        return Ok(());
    }
    // A message alone needs no time before an end that does not come.
    let settle = match warning.action {
        Action::Message => Duration::ZERO,
        Action::LogOff | Action::Disconnect => SETTLE,
    };
    let deadline = Instant::now() + warning.grace.max(settle);
    let at = crate::time::now() + warning.grace;
    notify(backend, targets, hooks, |s| {
        notice(warning, s, warning.grace, at)
    });
    let mut reminders: Vec<Duration> = REMINDERS
        .into_iter()
        .filter(|r| *r < warning.grace)
        .collect();
    loop {
        if control.cancelled() {
            notify(backend, targets, hooks, |_| cancelled(warning));
            return Err(Error::new(
                Kind::Cancelled,
                "cancelled during the grace period: nobody was logged off",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if let Some(&next) = reminders.first()
            && left <= next
        {
            reminders.remove(0);
            notify(backend, targets, hooks, |s| notice(warning, s, next, at));
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn notify(
    backend: &mut dyn Backend,
    targets: &[Session],
    hooks: &mut dyn Hooks,
    text: impl Fn(&Session) -> String,
) {
    for s in targets {
        match backend.warn(s, &text(s)) {
            Ok(w) => {
                if !w.reached.is_empty() {
                    hooks.narrate(&format!(
                        "session {}: warned on {}",
                        s.id,
                        w.reached.join(", ")
                    ));
                }
                if !w.missed.is_empty() {
                    hooks.problem(&format!(
                        "could not warn {} on {}",
                        s.describe(),
                        w.missed.join(", ")
                    ));
                }
                if w.reached.is_empty() && w.missed.is_empty() {
                    hooks.narrate(&format!("session {}: no terminal to warn on", s.id));
                }
            }
            Err(e) => hooks.problem(&format!("could not warn {}: {e}", s.describe())),
        }
    }
}

/// The text on a user's terminal: who logs them off, when, and the admin's message.
fn notice(w: &Warning<'_>, s: &Session, left: Duration, at: Timestamp) -> String {
    let when = if left.is_zero() {
        "now".to_string()
    } else {
        format!(
            "in {} (at {})",
            duration::display(left),
            at.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S %Z")
        )
    };
    let what = match w.action {
        Action::LogOff => format!("{} is logging off this session", w.by),
        Action::Disconnect => format!("{} is disconnecting this session", w.by),
        Action::Message => format!("message from {} to this session", w.by),
    };
    let when = match w.action {
        Action::LogOff => format!(" {when}"),
        Action::Disconnect => {
            format!(" {when}: your programs keep running; reconnect to continue")
        }
        Action::Message => String::new(),
    };
    let mut text = banner(&sanitize(&format!(
        "{what} ({}, {}){when}",
        s.id,
        s.owner_and_place()
    )));
    if let Some(m) = w.message {
        text.push_str(&sanitize(m));
        text.push_str("\r\n");
    }
    text
}

fn cancelled(w: &Warning<'_>) -> String {
    let what = match w.action {
        Action::Disconnect => "disconnect",
        Action::LogOff | Action::Message => "logoff",
    };
    banner(&sanitize(&format!(
        "{} cancelled the {what} of this session; carry on",
        w.by
    )))
}

/// How every word of logoff's to a user's terminal begins and ends: a bell, and the text
/// (already made safe) between `*** logoff:` and `***`, on a line of its own.
pub fn banner(safe_text: &str) -> String {
    format!("\r\n\x07*** logoff: {safe_text} ***\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    #[test]
    fn notices_name_who_and_when_and_defuse_escapes() {
        let w = Warning {
            message: Some("bye\u{1b}[2J"),
            grace: Duration::from_secs(300),
            by: "root@h".into(),
            action: Action::LogOff,
        };
        let s = Session {
            id: SessionId::new("7"),
            user: "u1".into(),
            tty: Some("pts/1".into()),
            ..Session::default()
        };
        let text = notice(&w, &s, Duration::from_secs(300), crate::time::now());
        assert!(
            text.contains("root@h is logging off this session (7, u1 on pts/1) in 5m"),
            "{text}"
        );
        assert!(text.contains("bye^[[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }
}
