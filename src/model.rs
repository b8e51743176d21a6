//! The plain data every backend produces and every front end consumes: sessions, their IDs,
//! users and processes.
//!
//! Newtypes keep a session ID, a uid and a pid apart, so one can never be passed for another.
//! Nothing here touches the system but [`boot_id`], which reads this boot's ID once (a
//! [`SessionKey`] is a session ID within one boot).

use std::fmt;

use jiff::Timestamp;

/// A session's identifier as its backend names it: the audit session ID on procfs hosts
/// (`12`), logind's ID elsewhere (`3`, `c1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub fn new(id: impl Into<String>) -> SessionId {
        SessionId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's state: logind's (`active`, `online`, `closing`), or `disconnected` where
/// nothing connects the session (as shown: [`crate::presence::Presence::state`]). logind
/// may add states: they are kept as it says them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum SessionState {
    #[default]
    Active,
    Online,
    Closing,
    Disconnected,
    Other(String),
}

impl SessionState {
    /// The state as logind (or logoff) words it.
    pub fn parse(text: &str) -> SessionState {
        match text {
            "active" => SessionState::Active,
            "online" => SessionState::Online,
            "closing" => SessionState::Closing,
            "disconnected" => SessionState::Disconnected,
            other => SessionState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SessionState::Active => "active",
            SessionState::Online => "online",
            SessionState::Closing => "closing",
            SessionState::Disconnected => "disconnected",
            SessionState::Other(s) => s,
        }
    }
}

impl From<&str> for SessionState {
    fn from(text: &str) -> SessionState {
        SessionState::parse(text)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session's identity over its whole life and beyond a restart of logoffd: this boot's ID
/// and the session's ID. Audit session IDs (and logind's IDs, which are those or a counter)
/// are never used twice within a boot, unlike a logon time read from processes, which a
/// user can move by replacing their oldest process.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    boot: String,
    id: SessionId,
}

impl SessionKey {
    pub fn new(boot: impl Into<String>, id: SessionId) -> SessionKey {
        SessionKey {
            boot: boot.into(),
            id,
        }
    }

    /// The key of session `id` of this host, in this boot.
    pub fn here(id: &SessionId) -> SessionKey {
        SessionKey::new(boot_id(), id.clone())
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.boot, self.id)
    }
}

/// This boot's ID, read once; empty where it cannot be read.
///
/// As init sees it (through `/proc/1/root`, where root may look): the same in logoff, in
/// logoffd and in `logoffd --check`, whatever a service's sandbox shows. A container's
/// manager gives it its own boot ID (systemd-nspawn mounts one over the kernel's), which a
/// sandboxed service there does not see (`ProtectKernelTunables` shows the kernel's): the
/// daemon and the commands reading its files would key sessions differently.
pub fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        [
            "/proc/1/root/proc/sys/kernel/random/boot_id",
            "/proc/sys/kernel/random/boot_id",
        ]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
    })
}

/// A numeric user ID. Where a uid is not known, the type says so (`Option<Uid>`), rather
/// than a number standing for "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(u32);

impl Uid {
    pub const ROOT: Uid = Uid(0);

    pub const fn from_raw(uid: u32) -> Uid {
        Uid(uid)
    }

    pub const fn as_raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A process ID as seen in the backend's PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    pub const fn from_raw(pid: i32) -> Pid {
        Pid(pid)
    }

    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// logoff's own process.
    pub fn own() -> Pid {
        Pid(rustix::process::getpid().as_raw_nonzero().get())
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A process that is still running, for error messages that name survivors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub command: String,
}

impl fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.command.is_empty() {
            write!(f, "{}", self.pid)
        } else {
            write!(f, "{} ({})", self.pid, self.command)
        }
    }
}

/// One login session, as a backend reports it. Fields a backend cannot know are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    /// The session's user (its login uid); `None` where the backend could not tell.
    pub uid: Option<Uid>,
    pub user: String,
    /// Terminal without `/dev/`: `pts/3`, `tty2`, `console`.
    pub tty: Option<String>,
    /// X11 display, such as `:10` for an xrdp session.
    pub display: Option<String>,
    pub seat: Option<String>,
    /// Virtual terminal number (logind), 0 or `None` when the session has none.
    pub vtnr: Option<u32>,
    pub state: SessionState,
    pub class: Option<String>,
    /// logind's session type: `tty`, `x11`, `wayland`, `unspecified`.
    pub kind: Option<String>,
    pub service: Option<String>,
    /// Where the session came from, as something root's vouches for it: logind's
    /// RemoteHost, or the peer of the TCP connection a process of root's in the session
    /// holds (sshd's), or of xrdp's connection to its display. Policies and filters match
    /// this, never [`Session::remote_claim`].
    pub remote_host: Option<String>,
    /// Where a user's text says the session came from (utmp's host, `SSH_CONNECTION`),
    /// where nothing vouches for it: shown, marked as a claim, never matched.
    pub remote_claim: Option<Claim>,
    /// Came in over the network, as vouched for (logind's Remote, or a vouched host).
    pub remote: bool,
    /// Where it came from is not known (procfs: the root process that opened it has
    /// ended, and with it what vouched for its origin): neither remote nor local, for
    /// filters and rules alike, unless logoffd remembers it (`remote` is then false).
    pub origin_unknown: bool,
    /// An xrdp session, as vouched for: logind's Service, or root's xrdp session manager
    /// opened it.
    pub xrdp: bool,
    /// What vouches for its own login, and whether that still lasts (a fact; whether the
    /// session is connected is [`crate::presence`]'s to say).
    pub login: Login,
    pub logon_time: Option<Timestamp>,
    pub leader: Option<Pid>,
    /// Number of processes, where the backend counts them cheaply.
    pub processes: Option<usize>,
    /// logind's scope unit (`session-3.scope`).
    pub scope: Option<String>,
    /// The kernel audit session ID of its processes (logind's `Audit`), where it has one.
    pub audit: Option<u32>,
    /// What the listing saw and set aside (a utmp record that disagrees with the kernel),
    /// for `/V`.
    pub notes: Vec<String>,
    /// What its users did last, from everything the session is (terminals, displays, tmux
    /// and screen, CPU, idle locks): filled in by [`crate::backend::Backend::observe`].
    pub activity: Activity,
}

/// What a backend found of what a session's users did last and of what reaches it: facts
/// only. What they mean — since when it is idle, whether it is connected, and by what — is
/// [`crate::presence`]'s to say, in one place, for every front end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// The input the listing saw before any look: its terminal's, by name (procfs).
    pub listed: Option<Seen>,
    /// logind's idle hint, as logind gives it.
    pub hint: Option<Hint>,
    /// Each terminal its processes hold, as a look found it.
    pub terminals: Vec<TerminalSeen>,
    /// The latest input its X server saw (a look at its display).
    pub display: Option<Timestamp>,
    /// How much CPU time its processes have used so far.
    pub cpu: Option<std::time::Duration>,
    /// An idle lock (`systemd-inhibit --what=idle`) one of its processes holds.
    pub inhibitor: Option<Inhibitor>,
    /// Other sessions whose processes reach this one's: a tmux or screen client attached to
    /// its server, a socket whose other end they hold (a forward's sshd, say). Of any user:
    /// [`crate::presence`] counts only a live session of the same user.
    pub clients: Vec<Client>,
    /// Whether its processes were looked at, and what could not be read then.
    pub looked: Looked,
    /// When logoffd saw its login end (its memory; `None` where it did not see it).
    pub login_ended: Option<Timestamp>,
}

impl Activity {
    /// For tests: a look found its last input at `at` on `pts/1` (`None`: no input known).
    #[cfg(test)]
    pub fn typed_at(at: Option<Timestamp>) -> Activity {
        Activity {
            listed: at.map(|at| Seen {
                at,
                source: IdleSource::Terminal("pts/1".into()),
            }),
            looked: Looked::Yes,
            ..Activity::default()
        }
    }

    /// The latest output on a terminal the session holds.
    pub fn latest_output(&self) -> Option<Timestamp> {
        self.terminals.iter().filter_map(|t| t.output).max()
    }
}

/// Whether a session's processes were looked at ([`crate::backend::Backend::observe`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Looked {
    /// Only its listing is known.
    #[default]
    No,
    Yes,
    /// Looked at, but something could not be read (why): who reaches it is not known.
    Partly(String),
}

/// logind's `IdleHint` and `IdleSinceHint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub idle: Option<bool>,
    pub since: Option<Timestamp>,
}

/// What vouches for a session's own login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Login {
    /// Nothing is known of it.
    #[default]
    Unknown,
    /// logind's: it lasts while logind says `active` or `online` (`closing` once its PAM
    /// session has closed: the ssh connection, the terminal login gone).
    Logind(Origin),
    /// The root process that opened it (sshd's, login's; procfs) runs, and lasts as long as
    /// the login does: no user can make such a process.
    Opener(Origin),
    /// No opener runs (procfs): what is left is known by the terminals its processes hold.
    Terminals {
        /// A controlling terminal of one of them, as the listing saw it.
        controlling: Option<String>,
    },
    /// An xrdp session: its RDP client, connected through xrdp or not (`None`: not read).
    Rdp { connected: Option<bool> },
    /// What another host's logoff said of it (the remote agent): shown, as it said it.
    Reported {
        connected: Option<bool>,
        by: Option<String>,
        /// The session whose tmux or screen client uses it, as that host's logoff said.
        in_use_by: Option<SessionId>,
    },
}

/// Where a session's login came from: over the network (ssh) or on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Ssh,
    Local,
}

impl Login {
    /// Whether the login itself still lasts, as its fact says (`None`: it does not say).
    pub fn lasts(&self, state: &SessionState) -> Option<bool> {
        match self {
            Login::Unknown | Login::Reported { .. } => None,
            Login::Logind(_) => match state {
                SessionState::Active | SessionState::Online => Some(true),
                SessionState::Closing | SessionState::Disconnected => Some(false),
                SessionState::Other(_) => None,
            },
            Login::Opener(_) => Some(true),
            Login::Terminals { .. } => None,
            Login::Rdp { connected } => *connected,
        }
    }
}

/// A terminal a session's processes hold, as a look found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalSeen {
    /// `pts/3`, `tty2`.
    pub name: String,
    /// Its last input (access time) and output (modification time), to 8 seconds.
    pub input: Option<Timestamp>,
    pub output: Option<Timestamp>,
    /// When its node last changed otherwise (its change time): when a pseudo-terminal was
    /// made, unless its mode was changed since (`mesg`).
    pub made: Option<Timestamp>,
    /// Whether it is the controlling terminal of a process of the session.
    pub controlling: bool,
    /// What writes its input: whoever holds its master side.
    pub served: Served,
}

/// Who holds a terminal's other side, and so writes what its programs read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Nobody of the session: sshd's terminal, the console, a terminal of another session.
    Outside,
    /// A process of the session that serves clients on a unix socket: a tmux or screen
    /// server's pane (`kind`: `tmux`, `screen`, or [`MULTIPLEXED_BY_A_PROGRAM`]).
    Multiplexer { kind: &'static str },
    /// A process of the session that serves no socket: `mosh-server`, `script`. Its command
    /// name is its own choice: shown, never matched.
    Program { pid: Pid, command: String },
}

/// Another session whose processes reach this one's, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub session: SessionId,
    pub through: Through,
}

/// How a client session reaches another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Through {
    /// Its tmux or screen client is attached to this session's server (`kind`; `terminal`:
    /// the client's terminal the server holds, where it does).
    Multiplexer {
        kind: &'static str,
        terminal: Option<String>,
    },
    /// Its sshd (the user's side of its connection) holds the other end of a socket of this
    /// session's: a port forward (`ssh -L`, VS Code Remote, Jupyter).
    Forward,
    /// One of its processes holds the other end of a socket of this session's (`unix`,
    /// `tcp`, `udp`).
    Socket { kind: &'static str },
}

/// When and where input was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at: Timestamp,
    pub source: IdleSource,
}

/// What told a session's idle time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleSource {
    /// A terminal its processes hold (`pts/3`).
    Terminal(String),
    /// Its X display (`:10`).
    Display(String),
    /// A client attached to its tmux or screen server from another session of the user's.
    Multiplexer {
        kind: &'static str,
        by: SessionId,
        terminal: Option<String>,
    },
    /// logind's idle hint.
    Logind,
    /// What another host's logoff (its remote agent) said: shown, as it said it.
    Reported(String),
}

/// The `kind` of an [`IdleSource::Multiplexer`] that is no tmux or screen: a program of
/// the session holding another session's terminal.
pub const MULTIPLEXED_BY_A_PROGRAM: &str = "program";

impl fmt::Display for IdleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleSource::Terminal(t) => write!(f, "terminal {t}"),
            IdleSource::Display(d) => write!(f, "display {d}"),
            IdleSource::Multiplexer {
                kind: MULTIPLEXED_BY_A_PROGRAM,
                by,
                terminal: Some(t),
            } => write!(f, "terminal {t} of session {by}"),
            IdleSource::Multiplexer {
                kind,
                by,
                terminal: Some(t),
            } => write!(f, "{kind} client in session {by} ({t})"),
            IdleSource::Multiplexer { kind, by, .. } => write!(f, "{kind} client in session {by}"),
            IdleSource::Logind => f.write_str("logind's idle hint"),
            IdleSource::Reported(text) => f.write_str(text),
        }
    }
}

/// An idle lock, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibitor {
    pub pid: Pid,
    /// The holder's command name (its own choice: shown, never matched).
    pub command: String,
    /// Why, in the holder's words.
    pub why: String,
}

/// What a user's text says, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub value: String,
    /// `utmp`, `environment`.
    pub source: &'static str,
}

impl Session {
    /// The session's name in the seed's sense: its terminal, else its X display.
    pub fn name(&self) -> Option<&str> {
        self.tty
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.display.as_deref().filter(|d| !d.is_empty()))
    }

    /// Whether this session sits on the console: the terminal `console`, a virtual
    /// terminal `ttyN`, or (logind) a VT on a seat.
    pub fn is_console(&self) -> bool {
        if let Some(tty) = self.tty.as_deref()
            && (tty == "console" || is_virtual_terminal(tty))
        {
            return true;
        }
        self.seat.is_some() && self.vtnr.is_some_and(|vt| vt > 0)
    }

    /// `bob on pts/2`, `bob` — how messages name a session's owner and place.
    pub fn owner_and_place(&self) -> String {
        match self.name() {
            Some(name) => format!("{} on {}", self.user, name),
            None => self.user.clone(),
        }
    }

    /// Whether it is a graphical session, as vouched for: logind's Type, or xrdp's.
    pub fn is_graphical(&self) -> bool {
        self.xrdp || matches!(self.kind.as_deref(), Some("x11" | "wayland" | "mir"))
    }

    /// Maps every time of it that the system stamped (its logon, its terminals' and
    /// display's input, logind's hint) through `f` (logoffd's steady clock).
    pub fn map_times(&mut self, f: impl Fn(Timestamp) -> Timestamp) {
        self.logon_time = self.logon_time.map(&f);
        let a = &mut self.activity;
        if let Some(seen) = a.listed.as_mut() {
            seen.at = f(seen.at);
        }
        if let Some(hint) = a.hint.as_mut() {
            hint.since = hint.since.map(&f);
        }
        a.display = a.display.map(&f);
        for t in &mut a.terminals {
            t.input = t.input.map(&f);
            t.output = t.output.map(&f);
            t.made = t.made.map(&f);
        }
    }

    /// The session's identity on this host ([`SessionKey`]).
    pub fn key(&self) -> SessionKey {
        SessionKey::here(&self.id)
    }

    /// `session 7 (bob on pts/2)` — how messages name a session.
    pub fn describe(&self) -> String {
        format!("session {} ({})", self.id, self.owner_and_place())
    }
}

/// `tty1` … `tty63`: the Linux virtual consoles (not `ttyS0`, not `tty` alone).
pub fn is_virtual_terminal(tty: &str) -> bool {
    tty.strip_prefix("tty")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Sorts session IDs as loginctl does: numbers by value first, then the rest by text.
pub fn id_sort_key(id: &SessionId) -> (u8, u64, String) {
    match id.0.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.0.clone()),
    }
}

impl Session {
    /// Whether `uid` is this session's user (an unknown user is nobody's).
    pub fn belongs_to(&self, uid: Uid) -> bool {
        self.uid == Some(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(tty: Option<&str>, display: Option<&str>) -> Session {
        Session {
            id: SessionId::new("7"),
            user: "bob".into(),
            tty: tty.map(String::from),
            display: display.map(String::from),
            ..Session::default()
        }
    }

    #[test]
    fn name_prefers_terminal_then_display() {
        assert_eq!(session(Some("pts/2"), Some(":10")).name(), Some("pts/2"));
        assert_eq!(session(Some(""), Some(":10")).name(), Some(":10"));
        assert_eq!(session(None, None).name(), None);
    }

    #[test]
    fn console_detection() {
        assert!(session(Some("console"), None).is_console());
        assert!(session(Some("tty2"), None).is_console());
        assert!(!session(Some("ttyS0"), None).is_console());
        assert!(!session(Some("pts/1"), None).is_console());
        let mut s = session(None, Some(":0"));
        s.seat = Some("seat0".into());
        s.vtnr = Some(2);
        assert!(s.is_console());
        s.vtnr = Some(0);
        assert!(!s.is_console());
    }

    #[test]
    fn describe_names_owner_and_place() {
        assert_eq!(
            session(Some("pts/2"), None).describe(),
            "session 7 (bob on pts/2)"
        );
        assert_eq!(session(None, None).describe(), "session 7 (bob)");
    }

    #[test]
    fn ids_sort_numerically_first() {
        let mut ids: Vec<SessionId> = ["c2", "10", "2", "c1"]
            .iter()
            .map(|s| SessionId::new(*s))
            .collect();
        ids.sort_by_key(id_sort_key);
        let got: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(got, ["2", "10", "c1", "c2"]);
    }
}
