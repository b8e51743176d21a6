//! Terminals: their names from device numbers, their idle time, the active virtual console.

use std::time::SystemTime;

use jiff::Timestamp;

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
    fn normalizes_dev_prefix() {
        assert_eq!(normalize("/dev/pts/3"), "pts/3");
        assert_eq!(normalize("pts/3"), "pts/3");
        assert_eq!(normalize("tty2"), "tty2");
    }
}
