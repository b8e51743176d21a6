//! User names and IDs through the system's name service (NSS: /etc/passwd, LDAP, SSSD…),
//! and who the caller is.

use std::collections::HashMap;

use crate::model::Uid;

/// The user name for `uid`, or the number as text when the name service does not know it.
pub fn name_of(uid: Uid) -> String {
    uzers::get_user_by_uid(uid.as_raw())
        .and_then(|u| u.name().to_str().map(String::from))
        .unwrap_or_else(|| uid.to_string())
}

/// The uid of a user name (or of a number given as text).
pub fn uid_of(name: &str) -> Option<Uid> {
    if let Some(user) = uzers::get_user_by_name(name) {
        return Some(Uid::from_raw(user.uid()));
    }
    name.parse().ok().map(Uid::from_raw)
}

/// Looks names up once per uid.
#[derive(Default)]
pub struct NameCache(HashMap<Uid, String>);

impl NameCache {
    pub fn name(&mut self, uid: Uid) -> String {
        self.0.entry(uid).or_insert_with(|| name_of(uid)).clone()
    }
}

/// The user running logoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: Uid,
    pub name: String,
    /// Effective uid 0: may log off anyone's session on the procfs backend.
    pub is_root: bool,
}

impl Caller {
    pub fn current() -> Caller {
        let uid = Uid::from_raw(rustix::process::getuid().as_raw());
        Caller {
            uid,
            name: name_of(uid),
            is_root: rustix::process::geteuid().is_root(),
        }
    }
}

/// Who is behind the caller, for the audit record: the user logoff runs as, and the person
/// who logged in. The login uid (`/proc/self/loginuid`) is the kernel's, set at login and
/// kept through `sudo` and `su`; `SUDO_USER` is what sudo says (an environment variable, so
/// only a claim when logoff was not run by sudo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub caller: Caller,
    pub login_uid: Option<Uid>,
    pub login_name: Option<String>,
    pub sudo_user: Option<String>,
}

impl Person {
    pub fn current() -> Person {
        let login_uid = crate::system::process::Proc::myself()
            .login_uid()
            .map(Uid::from_raw);
        Person {
            caller: Caller::current(),
            login_name: login_uid.map(name_of),
            login_uid,
            sudo_user: std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()),
        }
    }
}

/// Why this process holds privilege it was not given by whoever ran it, if it does: its file
/// is setuid or setgid (real and effective ids differ), or the kernel marked the exec secure
/// (`AT_SECURE`: file capabilities too). logoff is not made to run so: its checks assume the
/// caller's own privilege, and its environment and arguments come from that caller.
pub fn elevated_by_file() -> Option<String> {
    use rustix::process::{getegid, geteuid, getgid, getuid};
    let (ruid, euid) = (getuid().as_raw(), geteuid().as_raw());
    let (rgid, egid) = (getgid().as_raw(), getegid().as_raw());
    if ruid != euid {
        return Some(format!("real uid {ruid}, effective uid {euid}"));
    }
    if rgid != egid {
        return Some(format!("real gid {rgid}, effective gid {egid}"));
    }
    at_secure().then(|| "the kernel marked it secure (AT_SECURE: file capabilities?)".into())
}

/// `AT_SECURE` from `/proc/self/auxv` (pairs of native words).
fn at_secure() -> bool {
    const AT_SECURE: usize = 23;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return false;
    };
    let word = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * word).any(|pair| {
        let (key, value) = pair.split_at(word);
        let read = |b: &[u8]| b.try_into().map_or(0, usize::from_ne_bytes);
        read(key) == AT_SECURE && read(value) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_runner_is_not_elevated() {
        assert_eq!(elevated_by_file(), None);
    }
}
