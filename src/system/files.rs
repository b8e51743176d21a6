//! Files read without trusting what their name turns out to be: files named on the command
//! line, and the one way logoff opens a file whose owner matters ([`open_verified`]) — the
//! policy, its state files, an X server's cookie a user's process names.

use std::io;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{FileType, Mode, OFlags};

use crate::deadline::Deadline;

/// Who may own a file [`open_verified`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root, or whoever runs logoff (a test, a policy checked by its owner).
    RootOrMe,
    /// This user and nobody else (a session's user's own file).
    Exactly(u32),
}

/// What a file must be for [`open_verified`] to read it.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub kind: FileType,
    pub owner: Owner,
    /// Refuse it if others than its owner may write to it (group or others' write bit).
    pub private_writes: bool,
    /// The largest size accepted (regular files).
    pub max_size: u64,
}

/// Opens `path` for reading only once it is known to be what `expect` says: first without
/// opening the file itself (`O_PATH`, not through a last link), then `fstat` of that, then
/// the very inode reopened for reading through `/proc/self/fd`. A path a user named is
/// thus never opened as root: not a device (opening `/dev/watchdog` arms it), not a FIFO
/// (an open that would wake its writer), not another user's file.
pub fn open_verified(path: &std::path::Path, expect: &Expect) -> io::Result<std::fs::File> {
    let located = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&located)?;
    check(&st, expect)?;
    let fd = rustix::fs::open(
        format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&located)
        )
        .as_str(),
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let again = rustix::fs::fstat(&fd)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(io::Error::other("the file changed while it was opened"));
    }
    Ok(std::fs::File::from(fd))
}

fn check(st: &rustix::fs::Stat, expect: &Expect) -> io::Result<()> {
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != expect.kind {
        return Err(io::Error::other(format!(
            "it is not a {} but a {kind:?}",
            if expect.kind == FileType::Directory {
                "directory"
            } else {
                "regular file"
            }
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    let owned = match expect.owner {
        Owner::RootOrMe => st.st_uid == 0 || st.st_uid == me,
        Owner::Exactly(uid) => st.st_uid == uid,
    };
    if !owned {
        return Err(io::Error::other(format!(
            "it is owned by uid {}, not by {}",
            st.st_uid,
            match expect.owner {
                Owner::RootOrMe => "root".to_string(),
                Owner::Exactly(uid) => format!("uid {uid}"),
            }
        )));
    }
    if expect.private_writes && st.st_mode & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "others may write to it (mode {:o}): chmod go-w",
            st.st_mode & 0o777
        )));
    }
    if kind == FileType::RegularFile
        && u64::try_from(st.st_size).unwrap_or(u64::MAX) > expect.max_size
    {
        return Err(io::Error::other(format!(
            "it is larger than {} KiB",
            expect.max_size / 1024
        )));
    }
    Ok(())
}

/// Reads a file or a pipe whole: at most `max` bytes, and for a pipe, until its end or
/// `wait` has passed. Opened without blocking (a FIFO nobody writes to) and without becoming
/// a controlling terminal; directories, devices and sockets are refused.
pub fn read_bounded(path: &str, max: usize, wait: Duration) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let too_big = || io::Error::other(format!("it is larger than {} KiB", max / 1024));
    match kind {
        FileType::RegularFile if usize::try_from(st.st_size).map_or(true, |n| n > max) => {
            return Err(too_big());
        }
        FileType::RegularFile | FileType::Fifo => {}
        other => {
            return Err(io::Error::other(format!(
                "it is not a file but a {other:?}"
            )));
        }
    }
    let deadline = Deadline::after(wait);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > max {
                    return Err(too_big());
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                if deadline.passed() {
                    return Err(io::Error::other(format!(
                        "it did not come to its end within {}s",
                        wait.as_secs()
                    )));
                }
                let step = deadline.next_step();
                let timeout = crate::deadline::timespec(step);
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                match rustix::event::poll(&mut fds, Some(&timeout)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 17, item 4): root opened the file an X server's command line named
    /// before checking whose it was (`/etc/shadow` was opened; a FIFO's writer woke up). A
    /// FIFO is refused without being opened: its writer, waiting for a reader, stays waiting.
    #[test]
    fn nothing_is_opened_before_it_is_known() {
        let dir = std::env::temp_dir().join(format!("logoff-verified-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let regular = dir.join("cookie");
        std::fs::write(&regular, "data").expect("write");
        let me = rustix::process::geteuid().as_raw();
        let expect = Expect {
            kind: FileType::RegularFile,
            owner: Owner::Exactly(me),
            private_writes: false,
            max_size: 1024,
        };
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut open_verified(&regular, &expect).expect("opened"),
            &mut text,
        )
        .expect("read");
        assert_eq!(text, "data");
        let other = Expect {
            owner: Owner::Exactly(me + 1),
            ..expect
        };
        assert!(open_verified(&regular, &other).is_err(), "another's file");
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&regular, &link).expect("symlink");
        assert!(open_verified(&link, &expect).is_err(), "through a link");
        assert!(open_verified(std::path::Path::new("/dev/null"), &expect).is_err());
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo (coreutils)");
        let path = fifo.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Blocks until someone opens the FIFO for reading.
            let f = std::fs::OpenOptions::new().write(true).open(&path);
            let _ = tx.send(f.is_ok());
        });
        assert!(open_verified(&fifo, &expect).is_err(), "a FIFO");
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the FIFO was opened for reading"
        );
        // Let the writer go.
        let _reader = rustix::fs::open(&fifo, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_what_is_not_a_small_file() {
        let dir = std::env::temp_dir().join(format!("logoff-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let small = dir.join("small");
        std::fs::write(&small, "h1\nh2\n").expect("write");
        let path = small.to_str().expect("utf-8");
        assert_eq!(
            read_bounded(path, 1024, Duration::from_secs(1)).expect("small"),
            b"h1\nh2\n"
        );
        assert!(read_bounded(path, 4, Duration::from_secs(1)).is_err());
        assert!(read_bounded(dir.to_str().expect("utf-8"), 1024, Duration::from_secs(1)).is_err());
        assert!(read_bounded("/dev/zero", 1024, Duration::from_secs(1)).is_err());
        // A FIFO with a writer that never writes: refused after the wait, not hung on.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo (coreutils)");
        let fifo_path = fifo.to_str().expect("utf-8").to_string();
        let writer = std::thread::spawn(move || {
            // Blocks until the reader opens, then holds the pipe open, silent.
            let f = std::fs::OpenOptions::new().write(true).open(&fifo_path);
            std::thread::sleep(Duration::from_millis(1500));
            drop(f);
        });
        std::thread::sleep(Duration::from_millis(100));
        let start = std::time::Instant::now();
        let r = read_bounded(
            fifo.to_str().expect("utf-8"),
            1024,
            Duration::from_millis(300),
        );
        assert!(r.is_err(), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        let _ = writer.join();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
