//! Graphical sessions on this host, for both backends: xrdp's (remote; connected or
//! disconnected, and from where) and any X display a session's own processes serve (idle
//! time from the X server, warnings in a window on the display).
//!
//! Only what a session's own processes hold counts: the sockets they listen on name its
//! display, the X server must be one of them ([`x11::XServer::find`]). What is learnt from
//! the kernel ([`xrdp`]) and from the X server overrides what logind was told by PAM: xrdp
//! 0.9 tells logind neither that the session is remote nor from where.

use std::collections::HashMap;
use std::io::Write;
use std::process::Child;

use crate::model::{Pid, Session, SessionId};
use crate::system::{x11, xrdp};

/// logind's Service for sessions xrdp's session manager opens.
pub const XRDP_SERVICE: &str = "xrdp-sesman";

/// How long a warning's window stays on the screen if nothing replaces it.
const WINDOW_SECONDS: u64 = 600;

/// The longest text shown in a window.
const WINDOW_TEXT_MAX: usize = 4096;

/// What logoff knows of this host's displays: the unix sockets of the latest listing, and
/// the warning windows it has shown.
#[derive(Default)]
pub struct Desktops {
    sockets: Option<xrdp::Sockets>,
    windows: HashMap<SessionId, Child>,
}

impl Desktops {
    /// Forgets the sockets: the next look reads them afresh (once per listing).
    pub fn refresh(&mut self) {
        self.sockets = None;
    }

    fn sockets(&mut self) -> &xrdp::Sockets {
        self.sockets.get_or_insert_with(xrdp::Sockets::read)
    }

    /// Whether a logind session may be graphical: worth a look at its processes.
    pub fn may_be_graphical(session: &Session) -> bool {
        session.display.is_some() || session.service.as_deref() == Some(XRDP_SERVICE)
    }

    /// Adds what the session's processes `members` tell about its display: an xrdp session
    /// is remote, `disconnected` when no client is connected (`active` when one is, though
    /// it holds no terminal), from its client's address; a session whose X server is one of
    /// its processes is idle since that server last saw input.
    pub fn enrich(&mut self, session: &mut Session, members: &[Pid]) {
        if session.display.is_none() && !self.sockets().serves_displays() {
            return;
        }
        let served = xrdp::served_display(members, self.sockets());
        let number = session
            .display
            .as_deref()
            .and_then(xrdp::display_number)
            .or(served.map(|s| s.number));
        let Some(number) = number else {
            return;
        };
        if session.display.is_none() {
            session.display = Some(format!(":{number}"));
        }
        let is_xrdp = served.is_some_and(|s| s.xrdp && s.number == number)
            || session.service.as_deref() == Some(XRDP_SERVICE);
        if is_xrdp {
            // Its name is its display (a terminal one of its programs opened is not its own).
            session.tty = None;
            let connection = xrdp::connection(members, number, self.sockets());
            session.remote = true;
            if connection.connected {
                if session.remote_host.is_none() {
                    session.remote_host = connection.client;
                }
                if session.state == "disconnected" {
                    session.state = "active".into();
                }
            } else if session.state != "closing" {
                session.state = "disconnected".into();
            }
        }
        if let Some(since) =
            x11::XServer::find(members, number, session.uid).and_then(x11::XServer::idle_since)
        {
            session.idle_since = Some(since);
        }
    }

    /// Shows `text` in a window on the session's display, replacing the window of an earlier
    /// warning to it. `None` when the session has no display served by its own processes.
    pub fn warn(
        &mut self,
        session: &Session,
        members: &[Pid],
        text: &str,
    ) -> Option<Result<String, String>> {
        self.reap();
        let display = session.display.as_deref()?;
        let number = xrdp::display_number(display)?;
        let server = x11::XServer::find(members, number, session.uid)?;
        if let Some(mut old) = self.windows.remove(&session.id) {
            let _ = old.kill();
            let _ = old.wait();
        }
        let Some(uid) = session.uid else {
            return Some(Err(format!("{display} (its user is unknown)")));
        };
        let Some(gid) = x11::gid_of(uid) else {
            return Some(Err(format!("{display} (user {uid} has no group)")));
        };
        let shown =
            x11::show_message(&server, number, uid, gid, WINDOW_SECONDS).and_then(|mut child| {
                let written = child
                    .stdin
                    .take()
                    .map(|mut input| input.write_all(window_text(text).as_bytes()));
                match written {
                    Some(Err(e)) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        Err(e)
                    }
                    _ => Ok(child),
                }
            });
        Some(match shown {
            Ok(child) => {
                self.windows.insert(session.id.clone(), child);
                Ok(format!("{display} (a window)"))
            }
            Err(e) => Err(format!("{display} (xmessage: {e})")),
        })
    }

    /// Collects the windows that have closed.
    fn reap(&mut self) {
        self.windows
            .retain(|_, child| matches!(child.try_wait(), Ok(None)));
    }
}

/// A terminal's warning as a window shows it: no carriage returns or bells, no blank lines
/// around it, at most [`WINDOW_TEXT_MAX`] bytes.
fn window_text(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .filter(|&c| c != '\r' && c != '\x07')
        .collect::<String>()
        .trim()
        .to_string();
    if shown.len() > WINDOW_TEXT_MAX {
        let mut end = WINDOW_TEXT_MAX;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
    }
    shown.push('\n');
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_warning_becomes_a_window_text() {
        assert_eq!(
            window_text("\r\n\x07*** logoff: root is logging off ***\r\nbye\r\n"),
            "*** logoff: root is logging off ***\nbye\n"
        );
        assert_eq!(window_text(&"é".repeat(5000)).len(), WINDOW_TEXT_MAX + 1);
    }

    #[test]
    fn a_session_without_a_display_of_its_own_is_left_as_it_is() {
        let mut desktops = Desktops::default();
        let mut session = Session {
            state: "active".into(),
            ..Session::default()
        };
        let before = session.clone();
        desktops.enrich(&mut session, &[Pid::own()]);
        assert_eq!(session, before);
        assert!(desktops.warn(&session, &[Pid::own()], "hi").is_none());
    }
}
