//! Which sessions a rule takes: its match (the command line's filters, and more), its
//! exemptions, and the sessions no rule takes unless it names them (root, the console,
//! greeters and service managers).

use std::collections::HashMap;

use crate::model::{Session, Uid};
use crate::select::{HostSpec, names_user};

/// The sessions a rule is for. Each field given must pass; a list means any of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// User names (or uids written as text).
    pub users: Vec<String>,
    /// Groups the session's user is a member of (primary or supplementary).
    pub groups: Vec<String>,
    pub uids: Vec<UidRange>,
    /// Came in over the network (`remote = true`), or not (`local = true`).
    pub remote: Option<bool>,
    /// Came from one of these hosts or networks.
    pub from: Vec<HostSpec>,
    /// Has a terminal.
    pub tty: Option<bool>,
    /// Is a graphical session, as vouched for (logind's Type x11 or wayland, an xrdp
    /// session): an X server a user starts in a terminal session does not make it one.
    pub x11: Option<bool>,
    /// logind's Service (`sshd`, `xrdp-sesman`, `login`).
    pub services: Vec<String>,
    /// logind's Class (`user`, `background`, `greeter`).
    pub classes: Vec<String>,
    /// Is the console session (`true` also lifts the console's protection).
    pub console: Option<bool>,
}

/// Users no rule touches though its match takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exempt {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub uids: Vec<UidRange>,
}

/// `1000` or `1000-1999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

impl UidRange {
    pub fn parse(text: &str) -> Result<UidRange, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{text}' is not a uid or a range of uids (1000-1999)"))
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(text)?;
                (n, n)
            }
        };
        if first > last {
            return Err(format!("the range '{text}' ends before it begins"));
        }
        Ok(UidRange { first, last })
    }

    fn contains(self, uid: Uid) -> bool {
        (self.first..=self.last).contains(&uid.as_raw())
    }

    fn describe(self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

/// Session classes no rule takes unless it names them: the login screen and the service
/// managers of users.
pub const PROTECTED_CLASSES: [&str; 4] = ["greeter", "lock-screen", "manager", "manager-early"];

/// The groups of users, looked up once per user in one pass over the sessions.
#[derive(Default)]
pub struct Groups {
    known: HashMap<Uid, Vec<String>>,
}

impl Groups {
    /// The names of the groups `session`'s user is a member of.
    fn of(&mut self, session: &Session) -> &[String] {
        let Some(uid) = session.uid else {
            return &[];
        };
        self.known.entry(uid).or_insert_with(|| {
            let Some(user) = uzers::get_user_by_uid(uid.as_raw()) else {
                return Vec::new();
            };
            uzers::get_user_groups(user.name(), user.primary_group_id())
                .unwrap_or_default()
                .iter()
                .filter_map(|g| g.name().to_str().map(String::from))
                .collect()
        })
    }
}

fn user_in(users: &[String], s: &Session) -> bool {
    users.iter().any(|u| names_user(u, s))
}

fn uid_in(uids: &[UidRange], s: &Session) -> bool {
    s.uid.is_some_and(|u| uids.iter().any(|r| r.contains(u)))
}

fn any_in(values: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| values.iter().any(|x| x == v))
}

impl Match {
    /// Whether the rule is for `session`.
    pub fn takes(&self, s: &Session, groups: &mut Groups) -> bool {
        (self.users.is_empty() || user_in(&self.users, s))
            && (self.uids.is_empty() || uid_in(&self.uids, s))
            && (self.groups.is_empty() || groups.of(s).iter().any(|g| self.groups.contains(g)))
            && self
                .remote
                .is_none_or(|r| !s.origin_unknown && s.remote == r)
            && (self.from.is_empty() || self.from.iter().any(|f| f.takes(s)))
            && self.tty.is_none_or(|t| s.tty.is_some() == t)
            && self.x11.is_none_or(|x| s.is_graphical() == x)
            && (self.services.is_empty() || any_in(&self.services, s.service.as_deref()))
            && (self.classes.is_empty() || any_in(&self.classes, s.class.as_deref()))
            && self.console.is_none_or(|c| s.is_console() == c)
    }

    /// Why a session this rule takes is still no rule's (root, the console, a greeter or
    /// service manager) unless the rule names it; `None`: nothing protects it.
    pub fn protects(&self, s: &Session) -> Option<&'static str> {
        let root = s.uid == Some(Uid::ROOT);
        let names_root = self.users.iter().any(|u| u == "root" || u == "0")
            || self.uids.iter().any(|r| r.contains(Uid::ROOT));
        if root && !names_root {
            return Some("root's session (name root in a rule's match to include it)");
        }
        if s.is_console() && self.console != Some(true) {
            return Some("the console (set console = true in a rule's match to include it)");
        }
        if let Some(class) = s.class.as_deref()
            && PROTECTED_CLASSES.contains(&class)
            && !self.classes.iter().any(|c| c == class)
        {
            return Some("a greeter or service manager session (name its class to include it)");
        }
        None
    }

    /// The match in words, for `--check`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let join = |v: &[String]| v.join(", ");
        if !self.users.is_empty() {
            parts.push(format!("users {}", join(&self.users)));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", join(&self.groups)));
        }
        if !self.uids.is_empty() {
            let u: Vec<String> = self.uids.iter().map(|r| r.describe()).collect();
            parts.push(format!("uids {}", u.join(", ")));
        }
        match self.remote {
            Some(true) => parts.push("remote".into()),
            Some(false) => parts.push("local".into()),
            None => {}
        }
        if !self.from.is_empty() {
            let f: Vec<String> = self.from.iter().map(ToString::to_string).collect();
            parts.push(format!("from {}", f.join(", ")));
        }
        for (name, v) in [
            ("tty", self.tty),
            ("x11", self.x11),
            ("console", self.console),
        ] {
            match v {
                Some(true) => parts.push(format!("with {name}")),
                Some(false) => parts.push(format!("without {name}")),
                None => {}
            }
        }
        if !self.services.is_empty() {
            parts.push(format!("service {}", join(&self.services)));
        }
        if !self.classes.is_empty() {
            parts.push(format!("class {}", join(&self.classes)));
        }
        if parts.is_empty() {
            "every session".into()
        } else {
            format!("sessions: {}", parts.join("; "))
        }
    }
}

impl Exempt {
    /// Why the rule leaves `session` alone; `None`: it does not.
    pub fn exempts(&self, s: &Session, groups: &mut Groups) -> Option<String> {
        if user_in(&self.users, s) {
            return Some(format!("user {} is exempt", s.user));
        }
        if uid_in(&self.uids, s) {
            return Some(format!("uid {} is exempt", s.uid.map_or(0, Uid::as_raw)));
        }
        let g = groups.of(s).iter().find(|g| self.groups.contains(g))?;
        Some(format!("group {g} is exempt"))
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        if !self.uids.is_empty() {
            let u: Vec<String> = self.uids.iter().map(|r| r.describe()).collect();
            parts.push(format!("uids {}", u.join(", ")));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionId;

    fn session(uid: u32, user: &str) -> Session {
        Session {
            id: SessionId::new("7"),
            uid: Some(Uid::from_raw(uid)),
            user: user.into(),
            tty: Some("pts/1".into()),
            state: "active".into(),
            ..Session::default()
        }
    }

    #[test]
    fn uid_ranges() {
        assert_eq!(
            UidRange::parse("1000-1999"),
            Ok(UidRange {
                first: 1000,
                last: 1999
            })
        );
        assert!(UidRange::parse("5-1").is_err());
        assert!(UidRange::parse("x").is_err());
    }

    #[test]
    fn root_the_console_and_greeters_need_naming() {
        let every = Match::default();
        let mut groups = Groups::default();
        let root = session(0, "root");
        assert!(every.takes(&root, &mut groups));
        assert!(every.protects(&root).is_some());
        let named = Match {
            users: vec!["root".into()],
            ..Match::default()
        };
        assert!(named.protects(&root).is_none());
        let mut console = session(1000, "bob");
        console.tty = Some("tty1".into());
        assert!(every.protects(&console).is_some());
        let consoles = Match {
            console: Some(true),
            ..Match::default()
        };
        assert!(consoles.takes(&console, &mut groups) && consoles.protects(&console).is_none());
        let mut greeter = session(105, "gdm");
        greeter.tty = None;
        greeter.class = Some("greeter".into());
        assert!(every.protects(&greeter).is_some());
        assert!(every.protects(&session(1000, "bob")).is_none());
    }

    #[test]
    fn matches_and_exemptions() {
        let mut groups = Groups::default();
        let mut s = session(1000, "bob");
        s.remote = true;
        s.remote_host = Some("192.0.2.9".into());
        s.service = Some("sshd".into());
        let m = Match {
            remote: Some(true),
            from: vec![HostSpec::parse("192.0.2.0/24").expect("net")],
            services: vec!["sshd".into()],
            tty: Some(true),
            uids: vec![UidRange {
                first: 1000,
                last: 1999,
            }],
            ..Match::default()
        };
        assert!(m.takes(&s, &mut groups));
        let x11 = Match {
            x11: Some(true),
            ..Match::default()
        };
        assert!(!x11.takes(&s, &mut groups));
        let exempt = Exempt {
            users: vec!["bob".into()],
            ..Exempt::default()
        };
        assert!(exempt.exempts(&s, &mut groups).is_some());
        assert!(Exempt::default().exempts(&s, &mut groups).is_none());
    }

    /// Regression (hostile read of issues 25-28): on procfs an abandoned ssh login (its
    /// opener ended) looked local, and `local = true` rules took it. Where it came from is
    /// not known: neither a remote nor a local rule takes it; a rule of neither does.
    #[test]
    fn an_unknown_origin_is_neither_remote_nor_local() {
        let mut groups = Groups::default();
        let mut s = session(1000, "bob");
        s.origin_unknown = true;
        let remote = Match {
            remote: Some(true),
            ..Match::default()
        };
        let local = Match {
            remote: Some(false),
            ..Match::default()
        };
        assert!(!remote.takes(&s, &mut groups));
        assert!(!local.takes(&s, &mut groups));
        assert!(Match::default().takes(&s, &mut groups));
        s.origin_unknown = false;
        assert!(local.takes(&s, &mut groups));
    }
}
