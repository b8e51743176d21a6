//! Files named on the command line, read without trusting what the name turns out to be.

use std::io;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{FileType, Mode, OFlags};

use crate::deadline::Deadline;

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
                let timeout = rustix::time::Timespec {
                    tv_sec: step.as_secs() as i64,
                    tv_nsec: i64::from(step.subsec_nanos()),
                };
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
