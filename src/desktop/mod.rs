//! Graphical sessions on this host, for both backends: xrdp's (remote; connected or
//! disconnected, and from where) and any X display a session's own processes serve (idle
//! time from the X server, warnings in a window on the display).
//!
//! Only what a session's own processes hold counts: the sockets they listen on name its
//! display, and the X server must be one of them ([`x11::XServer::find`]). Whether a session
//! is xrdp's is the backend's to vouch for (logind's Service, or root's xrdp session manager
//! opened it): a socket's name is its maker's. What the kernel says of an xrdp session's
//! connection ([`xrdp`]) overrides what logind was told: xrdp 0.9 tells logind neither that
//! the session is remote nor from where.
//!
//! Every X server is asked at once, with one deadline for all ([`bounded::map`]): a
//! display that never answers costs the listing that deadline, not a wait per session.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

pub mod x11;
pub mod xrdp;

use crate::deadline::Deadline;
use crate::model::{Login, Pid, Session, SessionId, Uid};
use crate::system::bounded::{self, Threads};
pub use crate::system::process::Look;
use crate::system::process::Membership;
use crate::system::sockets::{self, UnixSockets};
use x11::{XServer, window::Window};

/// logind's Service for sessions xrdp's session manager opens.
pub const XRDP_SERVICE: &str = "xrdp-sesman";

/// How long the X servers of one listing are waited for, all together.
const DISPLAYS_WAIT: Duration = Duration::from_millis(2500);

/// How long a warning's window stays on the screen if nothing replaces or closes it.
const WINDOW_LIFETIME: Duration = Duration::from_secs(600);

/// The longest text shown in a window.
const WINDOW_TEXT_MAX: usize = 4096;

/// What logoff knows of this host's displays: the unix sockets of the latest listing, and
/// the warning windows it shows.
#[derive(Default)]
pub struct Desktops {
    sockets: Option<Arc<UnixSockets>>,
    windows: HashMap<SessionId, Window>,
}

/// One X server to ask for its idle time.
struct Question {
    number: u32,
    owner: Option<Uid>,
    membership: Membership,
    sockets: Arc<UnixSockets>,
}

impl Desktops {
    /// Forgets the sockets: the next look reads them afresh (once per listing).
    pub fn refresh(&mut self) {
        self.sockets = None;
    }

    fn sockets(&mut self) -> Arc<UnixSockets> {
        Arc::clone(
            self.sockets
                .get_or_insert_with(|| Arc::new(UnixSockets::read())),
        )
    }

    /// Whether a logind session may be graphical: worth a look at its processes.
    pub fn may_be_graphical(session: &Session) -> bool {
        session.display.is_some() || session.service.as_deref() == Some(XRDP_SERVICE)
    }

    /// Adds what each session's processes tell of its display: an xrdp session is remote,
    /// its login its RDP client (connected through xrdp or not), from its client's address;
    /// a session whose X server is one of its processes has that server's last input.
    pub fn enrich(&mut self, looks: Vec<Look<'_>>) {
        let sockets = self.sockets();
        if !xrdp::serves_displays(&sockets) {
            return;
        }
        // The connections of every xrdp session, and who holds their other ends: one look
        // at every process's descriptors for all of them.
        let mut found = Vec::new();
        let mut peers = HashSet::new();
        for look in looks {
            let Some(number) = display_of(look.session, &look.members, &sockets) else {
                continue;
            };
            let theirs = if look.session.xrdp {
                xrdp::display_peers(&xrdp::held_by(&look.members), number, &sockets)
            } else {
                HashSet::new()
            };
            peers.extend(theirs.iter().copied());
            found.push((look, number, theirs));
        }
        let holders = sockets::holders(&peers);
        let mut asked: Vec<(&mut Session, Question)> = Vec::new();
        for (look, number, theirs) in found {
            if look.session.xrdp {
                connect(look.session, &xrdp::connection(&theirs, &holders));
            }
            let question = Question {
                number,
                owner: look.session.uid,
                membership: look.membership,
                sockets: Arc::clone(&sockets),
            };
            asked.push((look.session, question));
        }
        let (sessions, questions): (Vec<&mut Session>, Vec<Question>) = asked.into_iter().unzip();
        // Every server at once: one that never answers costs this listing DISPLAYS_WAIT.
        let deadline = Deadline::after(DISPLAYS_WAIT);
        let answers = bounded::map(questions, idle_of, Threads::PerItem, deadline);
        for (session, answer) in sessions.into_iter().zip(answers) {
            if let Some(Some(since)) = answer {
                session.activity.display = Some(since);
            }
        }
    }

    /// Shows `text` in a window on the session's display, replacing the window of an earlier
    /// warning to it. `None` when the session has no display served by its own processes.
    pub fn warn(
        &mut self,
        session: &Session,
        membership: &Membership,
        text: &str,
    ) -> Option<Result<String, String>> {
        let display = session.display.as_deref()?;
        let number = xrdp::display_number(display)?;
        // The old window goes first, whatever becomes of the new one.
        self.windows.remove(&session.id);
        let question = Question {
            number,
            owner: session.uid,
            membership: membership.clone(),
            sockets: Arc::new(UnixSockets::read()),
        };
        let found = bounded::map(
            vec![question],
            find,
            Threads::Few,
            Deadline::after(x11::X_WAIT),
        );
        let server = found.into_iter().next().flatten().flatten()?;
        Some(
            match Window::show(server, &window_text(text), WINDOW_LIFETIME) {
                Ok(window) => {
                    self.windows.insert(session.id.clone(), window);
                    Ok(format!("{display} (a window)"))
                }
                Err(e) => Err(format!("{display} (window: {e})")),
            },
        )
    }
}

/// The session's display number; its display and xrdp's part of its name filled in.
fn display_of(session: &mut Session, members: &[Pid], sockets: &UnixSockets) -> Option<u32> {
    let served = xrdp::served_display(members, sockets);
    let number = session
        .display
        .as_deref()
        .and_then(xrdp::display_number)
        .or(served.map(|(n, _)| n))?;
    if session.display.is_none() {
        session.display = Some(format!(":{number}"));
    }
    if session.service.as_deref() == Some(XRDP_SERVICE) {
        session.xrdp = true;
    }
    if session.xrdp {
        // Its name is its display (a terminal one of its programs opened is not its own).
        session.tty = None;
    }
    Some(number)
}

/// An xrdp session's login and origin from its connection: remote; its RDP client
/// connected through xrdp, or not.
fn connect(session: &mut Session, connection: &xrdp::Connection) {
    session.remote = true;
    session.login = Login::Rdp {
        connected: Some(connection.connected),
    };
    if connection.connected && session.remote_host.is_none() {
        session.remote_host.clone_from(&connection.client);
    }
}

fn find(q: &Question) -> Option<XServer> {
    XServer::find(q.number, q.owner, &q.membership, &q.sockets)
}

fn idle_of(q: &Question) -> Option<Timestamp> {
    find(q)?.idle_since()
}

/// A terminal's warning as a window shows it: at most [`WINDOW_TEXT_MAX`] bytes.
fn window_text(text: &str) -> String {
    let mut shown = text.to_string();
    if shown.len() > WINDOW_TEXT_MAX {
        let mut end = WINDOW_TEXT_MAX;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_warning_is_cut_on_a_character() {
        assert_eq!(window_text(&"é".repeat(5000)).len(), WINDOW_TEXT_MAX);
    }

    #[test]
    fn a_session_without_a_display_of_its_own_is_left_as_it_is() {
        let mut desktops = Desktops::default();
        let mut session = Session {
            state: "active".into(),
            ..Session::default()
        };
        let before = session.clone();
        let membership = Membership::Audit(u32::MAX - 1);
        desktops.enrich(vec![Look {
            session: &mut session,
            members: vec![Pid::own()],
            membership: membership.clone(),
            cgroup: None,
        }]);
        assert_eq!(session, before);
        assert!(desktops.warn(&session, &membership, "hi").is_none());
    }
}
