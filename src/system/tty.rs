//! Terminals: their names from device numbers, their idle time, the active virtual console.

use std::collections::BTreeSet;
use std::io;
use std::time::SystemTime;

use jiff::Timestamp;
use rustix::fs::{Mode, OFlags};

use crate::model::Pid;

/// The terminal name (without `/dev/`) for a `tty_nr` from `/proc/PID/stat`, `None` for none.
///
/// Pseudo-terminals (majors 136–143) and the virtual consoles (major 4) are computed; other
/// character devices are looked up in sysfs (`/sys/dev/char/MAJ:MIN/uevent`).
pub fn name_from_tty_nr(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let dev = tty_nr as u32;
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

/// Since when the terminal has been idle: its access time, as `w` computes it.
pub fn idle_since(tty: &str) -> Option<Timestamp> {
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

/// How many processes of a session are looked at for terminals they hold open.
const HOLDERS_LOOKED_AT: usize = 256;

/// The terminals (`pts/3`, `tty2`) that `pids` hold open, from `/proc/PID/fd`: the shell's
/// terminal, but also those of a tmux or screen server.
pub fn held_by(pids: impl IntoIterator<Item = Pid>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for pid in pids.into_iter().take(HOLDERS_LOOKED_AT) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(name) = target.to_str().and_then(|t| t.strip_prefix("/dev/")) else {
                continue;
            };
            let is_pty = name
                .strip_prefix("pts/")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_pty || crate::model::is_virtual_terminal(name) || name == "console" {
                found.insert(name.to_string());
            }
        }
    }
    found
}

/// Writes to a terminal as write(1) does: opened without becoming anyone's controlling
/// terminal, and without waiting — a terminal stopped with ^S fails (`WouldBlock`) instead
/// of holding logoff up.
pub fn write_to(tty: &str, text: &[u8]) -> io::Result<()> {
    let path = format!("/dev/{}", normalize(tty));
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::WRONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
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

/// Makes text fit for someone else's terminal, as wall(1) does: control characters (and so
/// escape sequences) become `^X`, line ends become CR LF (the terminal may be in raw mode).
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\r\n"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(major: u32, minor: u32) -> i32 {
        ((major << 8) | (minor & 0xff) | ((minor & !0xff) << 12)) as i32
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
    fn sanitizes_for_terminals() {
        assert_eq!(sanitize("save\nnow"), "save\r\nnow");
        assert_eq!(sanitize("\u{1b}[2Jgone"), "^[[2Jgone");
        assert_eq!(sanitize("bell\u{7}"), "bell^G");
        assert_eq!(sanitize("tab\tok"), "tab\tok");
        assert_eq!(sanitize("\u{9b}31m"), "?31m");
    }

    #[test]
    fn normalizes_dev_prefix() {
        assert_eq!(normalize("/dev/pts/3"), "pts/3");
        assert_eq!(normalize("pts/3"), "pts/3");
        assert_eq!(normalize("tty2"), "tty2");
    }
}
