//! Terminals: their names from device numbers, their idle time, the active virtual console,
//! and warnings written to them.
//!
//! A terminal is identified by what the kernel says of an open file, never by text a user
//! controls (a link's text in /proc, a utmp line, a name another host gave): which terminals a
//! session holds is read from the device and node of its processes' open files
//! ([`held_by`]), and before a warning is written, the node opened by name is checked to be
//! that very terminal, owned by the session's user or root ([`write_checked`]).

use std::collections::BTreeSet;
use std::io;
use std::time::SystemTime;

use jiff::Timestamp;
use rustix::fs::{FileType, Mode, OFlags};

use crate::model::Uid;
use crate::system::handle::Handle;
use crate::system::process::Proc;

/// The terminal name (without `/dev/`) for a `tty_nr` from `/proc/PID/stat`, `None` for none.
///
/// Pseudo-terminals (majors 136–143) and the virtual consoles (major 4) are computed; other
/// character devices are looked up in sysfs (`/sys/dev/char/MAJ:MIN/uevent`).
pub fn name_from_tty_nr(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    // The number as the kernel keeps it (dev_t's bits), not as a signed value.
    let dev = u32::from_ne_bytes(tty_nr.to_ne_bytes());
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    if let Some(name) = known_name(major, minor) {
        return Some(name);
    }
    let uevent = std::fs::read_to_string(format!("/sys/dev/char/{major}:{minor}/uevent")).ok()?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(String::from)
}

/// The `tty_nr` (as `/proc/PID/stat` writes it) of device `major:minor`.
pub fn tty_nr_of(major: u32, minor: u32) -> i32 {
    let dev = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
    i32::from_ne_bytes(dev.to_ne_bytes())
}

fn known_name(major: u32, minor: u32) -> Option<String> {
    match major {
        136..=143 => Some(format!("pts/{}", (major - 136) * 256 + minor)),
        4 if minor < 64 => Some(format!("tty{minor}")),
        4 => Some(format!("ttyS{}", minor - 64)),
        5 if minor == 1 => Some("console".into()),
        _ => None,
    }
}

/// Normalises a user-typed terminal name: `/dev/pts/3` → `pts/3`.
pub fn normalize(name: &str) -> &str {
    name.strip_prefix("/dev/").unwrap_or(name)
}

/// The device (major, minor) a terminal name means, if it is a name logoff reads or writes:
/// `pts/N`, `ttyN` (a virtual console), `ttySN` (a serial line) or `console`. Anything else —
/// a path, `..`, another device — is not a terminal name.
pub fn device_of_name(name: &str) -> Option<(u32, u32)> {
    fn number(digits: &str) -> Option<u32> {
        let ok =
            !digits.is_empty() && digits.len() <= 7 && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| digits.parse().ok()).flatten()
    }
    if name == "console" {
        return Some((5, 1));
    }
    // devpts numbers its nodes MKDEV(136, index), the index up to the 20 bits of a minor.
    if let Some(n) = name.strip_prefix("pts/").and_then(number) {
        return (n < 1 << 20).then_some((136, n));
    }
    if let Some(n) = name.strip_prefix("ttyS").and_then(number) {
        return (n < 192).then_some((4, 64 + n));
    }
    if let Some(n) = name.strip_prefix("tty").and_then(number) {
        return (n < 64).then_some((4, n));
    }
    None
}

/// Whether `name` is a terminal name logoff reads or writes (see [`device_of_name`]).
pub fn is_terminal_name(name: &str) -> bool {
    device_of_name(name).is_some()
}

/// Since when the terminal has been idle: its access time, as `w` computes it.
pub fn idle_since(tty: &str) -> Option<Timestamp> {
    if !is_terminal_name(tty) {
        return None;
    }
    let meta = std::fs::metadata(format!("/dev/{tty}")).ok()?;
    let atime = meta.accessed().ok()?;
    let now = SystemTime::now();
    // A terminal read in the future (clock skew) is idle since now.
    let atime = atime.min(now);
    Timestamp::try_from(atime).ok()
}

/// The active virtual console (`tty2`), from sysfs; `None` where there is none.
pub fn active_vt() -> Option<String> {
    let active = std::fs::read_to_string("/sys/class/tty/tty0/active").ok()?;
    let active = active.trim();
    (!active.is_empty()).then(|| active.to_string())
}

/// How many processes of a session are looked at for terminals they hold open: enough for
/// any real session, a bound on the time a warning takes for a runaway one.
const HOLDERS_LOOKED_AT: usize = 4096;

/// A terminal a process holds open, as the kernel identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Terminal {
    /// `pts/3`, `tty2`: computed from the device number, never read from a link's text.
    pub name: String,
    /// The node's file system and inode number: terminals of two devpts instances (a
    /// container's) have the same device numbers, never the same node.
    node: (u64, u64),
}

/// The terminals that `procs` hold open (`/proc/PID/fd`): the shell's terminal, but also those
/// of a tmux or screen server. Each file is judged by `stat` of the open file itself (a
/// character device that is a terminal), never by the text of its link.
///
/// Each process is read between a pidfd opened first and `still_member`, which re-reads /proc
/// afterwards: a process that is still running after both read the same process, so a PID
/// reused in between never lends its terminals to the session.
pub fn held_by(
    procs: impl IntoIterator<Item = Proc>,
    still_member: impl Fn(&Proc) -> io::Result<bool>,
) -> BTreeSet<Terminal> {
    let mut found = BTreeSet::new();
    for proc in procs.into_iter().take(HOLDERS_LOOKED_AT) {
        let Ok(Some(handle)) = Handle::open(&proc, |_| Ok(true)) else {
            continue;
        };
        let held = terminals_of(&proc);
        if !still_member(&proc).unwrap_or(false) || handle.has_exited() {
            continue;
        }
        found.extend(held);
    }
    found
}

/// The terminals among one process's open files.
fn terminals_of(proc: &Proc) -> Vec<Terminal> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", proc.pid())) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            // stat(2) of the magic link is the open file's own inode.
            let st = rustix::fs::stat(fd.path()).ok()?;
            if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice {
                return None;
            }
            let rdev = st.st_rdev;
            let name = known_name(rustix::fs::major(rdev), rustix::fs::minor(rdev))?;
            Some(Terminal {
                name,
                node: (st.st_dev, st.st_ino),
            })
        })
        .collect()
}

/// Writes a warning to a terminal the session holds, as write(1) does: opened by its name
/// without following a link, without becoming anyone's controlling terminal and without
/// waiting (a terminal stopped with ^S fails with `WouldBlock` rather than hold logoff up).
/// Before anything is written, the opened file must be that very terminal — a character
/// device with the name's device number, the node the session's process holds — and owned
/// by `owner` or root.
pub fn write_checked(terminal: &Terminal, owner: Option<Uid>, text: &[u8]) -> io::Result<()> {
    let Some((major, minor)) = device_of_name(&terminal.name) else {
        return Err(io::Error::other("not a terminal name"));
    };
    let fd = rustix::fs::open(
        format!("/dev/{}", terminal.name).as_str(),
        OFlags::WRONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || st.st_rdev != rustix::fs::makedev(major, minor)
    {
        return Err(io::Error::other("not the terminal device its name means"));
    }
    if (st.st_dev, st.st_ino) != terminal.node {
        return Err(io::Error::other(
            "not the terminal the session holds (one of another devpts instance, a \
             container's?)",
        ));
    }
    if st.st_uid != 0 && Some(st.st_uid) != owner.map(Uid::as_raw) {
        return Err(io::Error::other("owned by another user"));
    }
    let mut rest = text;
    while !rest.is_empty() {
        match rustix::io::write(&fd, rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(major: u32, minor: u32) -> i32 {
        ((major << 8) | (minor & 0xff) | ((minor & !0xff) << 12)) as i32
    }

    #[test]
    fn device_numbers_both_ways() {
        for (major, minor) in [(136, 3), (136, 300), (137, 1), (4, 2), (5, 1)] {
            assert_eq!(tty_nr_of(major, minor), nr(major, minor));
        }
    }

    #[test]
    fn names_from_device_numbers() {
        assert_eq!(name_from_tty_nr(0), None);
        assert_eq!(name_from_tty_nr(nr(136, 3)).as_deref(), Some("pts/3"));
        assert_eq!(name_from_tty_nr(nr(136, 300)).as_deref(), Some("pts/300"));
        assert_eq!(name_from_tty_nr(nr(137, 1)).as_deref(), Some("pts/257"));
        assert_eq!(name_from_tty_nr(nr(4, 2)).as_deref(), Some("tty2"));
        assert_eq!(name_from_tty_nr(nr(4, 64)).as_deref(), Some("ttyS0"));
        assert_eq!(name_from_tty_nr(nr(5, 1)).as_deref(), Some("console"));
    }

    #[test]
    fn only_terminal_names_are_terminal_names() {
        assert_eq!(device_of_name("pts/3"), Some((136, 3)));
        assert_eq!(device_of_name("pts/300"), Some((136, 300)));
        assert_eq!(device_of_name("tty2"), Some((4, 2)));
        assert_eq!(device_of_name("ttyS0"), Some((4, 64)));
        assert_eq!(device_of_name("console"), Some((5, 1)));
        for bad in [
            "../tmp/x",
            "pts/../x",
            "pts/3/../../x",
            "pts/",
            "pts/3a",
            "pts/+3",
            "pts/-3",
            "/dev/pts/3",
            "tty",
            "tty64",
            "ttyS",
            "tty2/x",
            "ptmx",
            "null",
            "pts/99999999",
        ] {
            assert_eq!(device_of_name(bad), None, "{bad}");
        }
        // What the kernel names a pty is what the name means.
        assert_eq!(known_name(136, 300).as_deref(), Some("pts/300"));
        assert!(idle_since("../etc/passwd").is_none());
    }

    #[test]
    fn normalizes_dev_prefix() {
        assert_eq!(normalize("/dev/pts/3"), "pts/3");
        assert_eq!(normalize("pts/3"), "pts/3");
        assert_eq!(normalize("tty2"), "tty2");
    }
}
