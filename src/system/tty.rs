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

use jiff::Timestamp;
use rustix::fs::{FileType, Mode, OFlags};

use crate::model::Uid;
use crate::system::handle::Handle;
use crate::system::process::Proc;

/// The major and minor device number a `tty_nr` from `/proc/PID/stat` names (the number as
/// the kernel keeps it, dev_t's bits, not as a signed value).
fn device_of_tty_nr(tty_nr: i32) -> (u32, u32) {
    let dev = u32::from_ne_bytes(tty_nr.to_ne_bytes());
    ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// A statx time as a timestamp (`None` out of range).
fn stamp(t: rustix::fs::StatxTimestamp) -> Option<Timestamp> {
    Timestamp::new(t.tv_sec, i32::try_from(t.tv_nsec).unwrap_or(0)).ok()
}

/// The terminal name (without `/dev/`) for a `tty_nr` from `/proc/PID/stat`, `None` for none.
///
/// Pseudo-terminals (majors 136–143) and the virtual consoles (major 4) are computed; other
/// character devices are looked up in sysfs (`/sys/dev/char/MAJ:MIN/uevent`).
pub fn name_from_tty_nr(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let (major, minor) = device_of_tty_nr(tty_nr);
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

/// A terminal's access or modification time as a time the kernel vouches for: a time in the
/// future is none it wrote (its user set it with utimensat, which they may on their own
/// terminal), and the node's change time — set by the kernel at that moment, by no user's
/// word — is when they did; never "now", never unknown (an unknown input would lift every
/// idle limit).
fn not_ahead(t: Timestamp, changed: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
    if t <= now {
        Some(t)
    } else {
        changed.filter(|c| *c <= now)
    }
}

/// The last input on `proc`'s controlling terminal (`tty_nr`, as its stat gives it), from
/// the node its standard input, output or error holds open: the session's own terminal,
/// whatever devpts instance it is in — never a node found by its name, which in a user's own
/// devpts instance can be another user's terminal's (`pts/3` there is not `pts/3` here).
pub fn input_on_controlling(proc: &Proc, tty_nr: i32) -> Option<Timestamp> {
    use rustix::fs::{AtFlags, StatxFlags};
    let (major, minor) = device_of_tty_nr(tty_nr);
    let dir = rustix::fs::open(
        format!("/proc/{}/fd", proc.pid()).as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    for fd in ["0", "1", "2"] {
        // statx of the magic link is the open file's own inode; DONT_SYNC: no round trip to
        // a (user's) file system.
        let Ok(st) = rustix::fs::statx(
            &dir,
            fd,
            AtFlags::STATX_DONT_SYNC,
            StatxFlags::TYPE | StatxFlags::ATIME | StatxFlags::CTIME,
        ) else {
            continue;
        };
        if FileType::from_raw_mode(u32::from(st.stx_mode)) != FileType::CharacterDevice
            || (st.stx_rdev_major, st.stx_rdev_minor) != (major, minor)
        {
            continue;
        }
        let now = crate::time::now();
        let changed = stamp(st.stx_ctime).filter(|t| *t <= now);
        return stamp(st.stx_atime).and_then(|t| not_ahead(t, changed, now));
    }
    None
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

/// How many descriptors of one process are looked at: a process may hold half a million
/// (its user's limit); a look must end. Beyond it, what the look found is partial.
const DESCRIPTORS_LOOKED_AT: usize = 16_384;

/// How many descriptors of all a session's processes are looked at: 4,096 processes of
/// 16,384 each would take minutes of every pass (about 3 ms a thousand), and every other
/// session's deadline with them. Beyond it, what the look found is partial.
const SESSION_DESCRIPTORS_LOOKED_AT: usize = 131_072;

/// A terminal a process holds open, as the kernel identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Terminal {
    /// `pts/3`, `tty2`: computed from the device number, never read from a link's text.
    pub name: String,
    /// The node's file system and inode number: terminals of two devpts instances (a
    /// container's) have the same device numbers, never the same node.
    node: (u64, u64),
}

impl Terminal {
    /// Whether this is process `stat`'s controlling terminal (which only one POSIX session
    /// can have: the kernel's word on whose terminal it is).
    pub fn controls(&self, stat: &crate::system::process::Stat) -> bool {
        device_of_name(&self.name).is_some_and(|(major, minor)| {
            u64::try_from(stat.tty_nr).is_ok_and(|nr| {
                nr != 0 && (rustix::fs::major(nr), rustix::fs::minor(nr)) == (major, minor)
            })
        })
    }
}

/// When a terminal last saw input (a read: its access time) and output (a write: its
/// modification time), as the kernel keeps them (to 8 seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub input: Option<Timestamp>,
    pub output: Option<Timestamp>,
    /// Its change time: when a pseudo-terminal was made (unless its mode changed since).
    pub made: Option<Timestamp>,
}

/// A terminal as the processes looked at hold it: its times, and which of them hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub times: Times,
    pub holders: Vec<crate::model::Pid>,
}

impl Times {
    fn latest(self, other: Times) -> Times {
        Times {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
            made: self.made.max(other.made),
        }
    }
}

/// The terminals that `procs` hold open (`/proc/PID/fd`): the shell's terminal, but also those
/// of a tmux or screen server, or of a second ssh channel. Each file is judged by `statx` of
/// the open file itself (a character device that is a terminal), never by the text of its
/// link, and without asking its file system to refresh what it knows (a user's FUSE server
/// cannot make the look wait).
///
/// Each process is read between a pidfd opened first and `still_member`, which re-reads /proc
/// afterwards: a process that is still running after both read the same process, so a PID
/// reused in between never lends its terminals to the session.
pub fn held_by(
    procs: impl IntoIterator<Item = Proc>,
    still_member: impl Fn(&Proc) -> io::Result<bool>,
) -> BTreeSet<Terminal> {
    held_with_times(procs, still_member)
        .terminals
        .into_keys()
        .collect()
}

/// What a session's processes hold: terminals, and the master sides of pseudo-terminals.
#[derive(Debug, Default)]
pub struct Holdings {
    pub terminals: std::collections::BTreeMap<Terminal, Held>,
    /// The pseudo-terminals whose master side a process holds (a tmux or screen server's
    /// panes, sshd's and a terminal emulator's terminals): the process, and the
    /// pseudo-terminal's index (`pts/N`), as the kernel tells it (`tty-index` in fdinfo).
    pub masters: Vec<(crate::model::Pid, u32)>,
    /// The sockets the processes hold, by inode (what sock_diag names them by), each once
    /// per process.
    pub sockets: Vec<(crate::model::Pid, u32)>,
    /// Why what was found is not all the processes hold (too many processes, or a process
    /// with too many descriptors), if it is not.
    pub partial: Option<String>,
}

/// [`held_by`], with each terminal's [`Times`] and holders, and the masters held.
pub fn held_with_times(
    procs: impl IntoIterator<Item = Proc>,
    still_member: impl Fn(&Proc) -> io::Result<bool>,
) -> Holdings {
    held_within(procs, still_member, SESSION_DESCRIPTORS_LOOKED_AT)
}

/// [`held_with_times`], looking at up to `budget` descriptors in all.
fn held_within(
    procs: impl IntoIterator<Item = Proc>,
    still_member: impl Fn(&Proc) -> io::Result<bool>,
    budget: usize,
) -> Holdings {
    let mut found = Holdings::default();
    let mut procs = procs.into_iter();
    let mut left = budget;
    for proc in procs.by_ref().take(HOLDERS_LOOKED_AT) {
        if left == 0 {
            found.partial = Some(format!(
                "the session's processes hold more than {budget} descriptors"
            ));
            return found;
        }
        let Ok(Some(handle)) = Handle::open(&proc, |_| Ok(true)) else {
            continue;
        };
        let limit = left.min(DESCRIPTORS_LOOKED_AT);
        let (held, masters, mut sockets, walked, cut) = terminals_of(&proc, limit);
        left = left.saturating_sub(walked);
        if cut {
            found.partial = Some(if limit < DESCRIPTORS_LOOKED_AT {
                format!("the session's processes hold more than {budget} descriptors")
            } else {
                format!(
                    "process {} holds more than {DESCRIPTORS_LOOKED_AT} descriptors",
                    proc.pid()
                )
            });
        }
        // A descriptor duplicated many times is one socket.
        sockets.sort_unstable();
        sockets.dedup();
        if !still_member(&proc).unwrap_or(false) || handle.has_exited() {
            continue;
        }
        for (terminal, times) in held {
            let seen: &mut Held = found.terminals.entry(terminal).or_default();
            seen.times = seen.times.latest(times);
            if !seen.holders.contains(&proc.pid()) {
                seen.holders.push(proc.pid());
            }
        }
        found
            .masters
            .extend(masters.into_iter().map(|index| (proc.pid(), index)));
        found
            .sockets
            .extend(sockets.into_iter().map(|ino| (proc.pid(), ino)));
    }
    if procs.next().is_some() {
        found.partial = Some(format!(
            "the session has more than {HOLDERS_LOOKED_AT} processes"
        ));
    }
    found
}

/// What one walk of a process's descriptors finds: the terminals among them, with their
/// times; the indices of the pseudo-terminals whose master side it holds; the inodes of its
/// sockets; how many descriptors it looked at; whether it stopped at `limit`.
type Walked = (Vec<(Terminal, Times)>, Vec<u32>, Vec<u32>, usize, bool);

fn terminals_of(proc: &Proc, limit: usize) -> Walked {
    use rustix::fs::{AtFlags, Dir, StatxFlags};
    let mut terminals = Vec::new();
    let mut masters = Vec::new();
    let mut sockets = Vec::new();
    // The directory is opened once and each entry looked up in it: no walk of the path from
    // /proc for every descriptor (a look at every session's processes is mostly this).
    let Ok(dir) = rustix::fs::open(
        format!("/proc/{}/fd", proc.pid()).as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return (terminals, masters, sockets, 0, false);
    };
    let Ok(mut entries) = Dir::new(dir) else {
        return (terminals, masters, sockets, 0, false);
    };
    let mut names = Vec::new();
    let mut cut = false;
    while let Some(Ok(entry)) = entries.next() {
        if names.len() >= limit {
            cut = true;
            break;
        }
        if !entry.file_name().to_bytes().starts_with(b".") {
            names.push(entry.file_name().to_owned());
        }
    }
    let Ok(dir) = entries.fd() else {
        return (terminals, masters, sockets, 0, false);
    };
    for fd in &names {
        // statx of the magic link is the open file's own inode; DONT_SYNC: the attributes
        // the kernel has, without a round trip to a (user's) file system.
        let Ok(st) = rustix::fs::statx(
            dir,
            fd.as_c_str(),
            AtFlags::STATX_DONT_SYNC,
            StatxFlags::TYPE
                | StatxFlags::INO
                | StatxFlags::ATIME
                | StatxFlags::MTIME
                | StatxFlags::CTIME,
        ) else {
            continue;
        };
        match FileType::from_raw_mode(u32::from(st.stx_mode)) {
            FileType::CharacterDevice => {}
            FileType::Socket => {
                if let Ok(ino) = u32::try_from(st.stx_ino) {
                    sockets.push(ino);
                }
                continue;
            }
            _ => continue,
        }
        if (st.stx_rdev_major, st.stx_rdev_minor) == PTMX {
            if let Some(index) = master_index(proc, fd) {
                masters.push(index);
            }
            continue;
        }
        let Some(name) = known_name(st.stx_rdev_major, st.stx_rdev_minor) else {
            continue;
        };
        let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
        let now = crate::time::now();
        let made = stamp(st.stx_ctime).filter(|t| *t <= now);
        let at = |t| stamp(t).and_then(|t| not_ahead(t, made, now));
        terminals.push((
            Terminal {
                name,
                node: (dev, st.stx_ino),
            },
            Times {
                input: at(st.stx_atime),
                output: at(st.stx_mtime),
                made,
            },
        ));
    }
    let walked = names.len();
    (terminals, masters, sockets, walked, cut)
}

/// The index of the pseudo-terminal (`pts/N`) whose device number is `nr` (as
/// `/proc/PID/stat`'s `tty_nr` gives it); `None` for any other terminal.
pub fn pts_index(nr: u64) -> Option<u32> {
    let (major, minor) = (rustix::fs::major(nr), rustix::fs::minor(nr));
    (UNIX98_PTY_SLAVES.contains(&major)).then(|| (major - 136) * 256 + minor)
}

/// The majors of devpts's terminals.
const UNIX98_PTY_SLAVES: std::ops::RangeInclusive<u32> = 136..=143;

/// The device number of `/dev/ptmx` (and of each devpts instance's `ptmx`).
const PTMX: (u32, u32) = (5, 2);

/// The index of the pseudo-terminal whose master is `proc`'s descriptor `fd`: the kernel's
/// `tty-index` line in its fdinfo.
fn master_index(proc: &Proc, fd: &std::ffi::CStr) -> Option<u32> {
    let path = format!("/proc/{}/fdinfo/{}", proc.pid(), fd.to_str().ok()?);
    let info = std::fs::read_to_string(path).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("tty-index:"))?
        .trim()
        .parse()
        .ok()
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
    // A warning is not the session's output: the terminal's modification time goes back to
    // what it was, so that a rule counting output as activity is not kept from acting by the
    // warnings it gives (a write does not touch the access time: input).
    let untouched = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: i64::try_from(st.st_mtime_nsec).unwrap_or(0),
        },
    };
    let _ = rustix::fs::futimens(&fd, &untouched);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-terminal of this process: its master and its slave, both held.
    fn own_pty() -> (std::os::fd::OwnedFd, std::fs::File) {
        use rustix::pty::{OpenptFlags, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("utf-8"))
            .expect("open the slave");
        (master, slave)
    }

    /// Regression (hostile read of issue 25): an access time a user set in the future
    /// (`touch -a -d +100d` on their own terminal) was taken as input "now", for ever.
    /// Regression (hostile read of issues 25-28): it was then taken as unknown, which lifts
    /// every idle limit; it is the moment it was set (the node's change time, the kernel's).
    #[test]
    fn a_terminal_time_in_the_future_is_when_it_was_set() {
        use std::os::fd::AsFd;
        let (_master, slave) = own_pty();
        let before = crate::time::now();
        let future = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: before.as_second() + 100 * 86_400,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: before.as_second() - 60,
                tv_nsec: 0,
            },
        };
        rustix::fs::futimens(slave.as_fd(), &future).expect("futimens");
        let st = rustix::fs::fstat(&slave).expect("fstat");
        // This pty's node (other tests' ptys are this process's too).
        let node = (st.st_dev, st.st_ino);
        let after = crate::time::now();
        let held = held_with_times([Proc::myself()], |_| Ok(true));
        let (_, h) = held
            .terminals
            .iter()
            .find(|(t, _)| t.node == node)
            .expect("the slave is held");
        let input = h.times.input.expect("an input time");
        // The kernel's coarse clock stamps the change: up to a tick before `before`.
        let tick = jiff::SignedDuration::from_millis(20);
        assert!(
            input >= before - tick && input <= after,
            "{input} not between {before} and {after}"
        );
        assert_eq!(h.times.input, h.times.made);
        assert_eq!(
            h.times.output.map(Timestamp::as_second),
            Some(before.as_second() - 60)
        );
    }

    /// Regression (hostile read of issues 25-28): a look had bounds per process only, so
    /// one session of 4,096 processes of 16,384 descriptors each took minutes of every pass.
    /// The session's processes share one budget of descriptors; beyond it, the look is
    /// partial.
    #[test]
    fn a_session_s_processes_share_one_budget_of_descriptors() {
        let all = held_within([Proc::myself(), Proc::myself()], |_| Ok(true), 1 << 20);
        assert_eq!(all.partial, None);
        // Standard input, output and error at least: two are past the budget.
        let cut = held_within([Proc::myself(), Proc::myself()], |_| Ok(true), 2);
        assert!(
            cut.partial
                .as_deref()
                .is_some_and(|p| p.contains("the session's processes hold more than")),
            "{:?}",
            cut.partial
        );
        let spent = held_within(
            [Proc::myself(), Proc::myself(), Proc::myself()],
            |_| Ok(true),
            1,
        );
        assert!(spent.partial.is_some());
    }

    /// Regression (hostile read of issues 25-28): the listing's idle time opened the
    /// terminal by name, and in a user's own devpts instance `pts/3` is not this host's
    /// `pts/3`: another user's typing kept their session in use. It is read from the node
    /// the process holds, set ahead or not.
    #[test]
    fn the_controlling_terminal_is_read_where_the_process_holds_it() {
        use std::os::fd::AsFd;
        use std::process::{Command, Stdio};
        let (_master, slave) = own_pty();
        let mut child = Command::new("setsid")
            .args(["-c", "sleep", "30"])
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("setsid");
        let proc = Proc::new(crate::model::Pid::from_raw(
            i32::try_from(child.id()).expect("pid"),
        ));
        let mut tty_nr = 0;
        for _ in 0..200 {
            tty_nr = proc.stat().map_or(0, |s| s.tty_nr);
            if tty_nr != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_ne!(tty_nr, 0, "setsid -c gave no controlling terminal");
        let before = crate::time::now();
        let ahead = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: before.as_second() + 86_400,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: before.as_second(),
                tv_nsec: 0,
            },
        };
        rustix::fs::futimens(slave.as_fd(), &ahead).expect("futimens");
        let at = input_on_controlling(&proc, tty_nr);
        let _ = child.kill();
        let _ = child.wait();
        let at = at.expect("read from the held node");
        assert!(at <= crate::time::now(), "{at}: ahead of now");
        assert!(at >= before - jiff::SignedDuration::from_millis(20), "{at}");
    }

    #[test]
    fn times_ahead_are_their_change_time() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
        assert_eq!(not_ahead(t(5), Some(t(9)), t(10)), Some(t(5)));
        assert_eq!(not_ahead(t(50), Some(t(9)), t(10)), Some(t(9)));
        assert_eq!(not_ahead(t(50), Some(t(11)), t(10)), None);
        assert_eq!(not_ahead(t(50), None, t(10)), None);
    }

    /// Regression (hostile read of issue 25): a socket duplicated a hundred thousand times
    /// made every look at its session quadratic in the descriptors; each process's socket
    /// is kept once, and a process's descriptors are read up to a bound, beyond which the
    /// look says it is partial.
    #[test]
    fn a_duplicated_socket_is_one_socket_and_the_walk_is_bounded() {
        use std::os::fd::AsFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let dups: Vec<std::os::fd::OwnedFd> = (0..200)
            .map(|_| rustix::io::dup(a.as_fd()).expect("dup"))
            .collect();
        let held = held_with_times([Proc::myself()], |_| Ok(true));
        let ino = u32::try_from(rustix::fs::fstat(a.as_fd()).expect("fstat").st_ino).expect("ino");
        assert_eq!(
            held.sockets.iter().filter(|(_, i)| *i == ino).count(),
            1,
            "once"
        );
        assert_eq!(held.partial, None);
        drop(dups);
    }

    fn nr(major: u32, minor: u32) -> i32 {
        ((major << 8) | (minor & 0xff) | ((minor & !0xff) << 12)) as i32
    }

    #[test]
    fn pseudo_terminal_indices_from_tty_nr() {
        let nr = |major: u32, minor: u32| rustix::fs::makedev(major, minor);
        assert_eq!(pts_index(nr(136, 3)), Some(3));
        assert_eq!(pts_index(nr(136, 300)), Some(300));
        assert_eq!(pts_index(nr(137, 1)), Some(257));
        assert_eq!(pts_index(nr(4, 1)), None, "tty1 is no pseudo-terminal");
        assert_eq!(pts_index(0), None);
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
    }

    #[test]
    fn normalizes_dev_prefix() {
        assert_eq!(normalize("/dev/pts/3"), "pts/3");
        assert_eq!(normalize("pts/3"), "pts/3");
        assert_eq!(normalize("tty2"), "tty2");
    }
}
