//! The utmp login records: read to learn a session's terminal, logon time and remote host;
//! marked dead after a logoff, as login(1) and sshd do, so that `who` stops listing it.
//!
//! utmp is optional: many hosts have none, and then this module returns nothing. Records are
//! parsed with the `utmp-rs` crate; a record it cannot parse is skipped. Marking a record dead
//! rewrites it in place under a write lock, after checking that it still is the record read
//! (a live USER_PROCESS entry of the same PID), and appends a logout record to wtmp, as
//! logout(3) and logwtmp(3) do.
//!
//! # Platform specific behavior
//! The record layout is glibc's on 64-bit Linux (384 bytes, 32-bit times); on other targets
//! utmp is only read, never written.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use utmp_rs::{UtmpEntry, UtmpParser};

use crate::model::Pid;

pub const UTMP_PATH: &str = "/var/run/utmp";
pub const WTMP_PATH: &str = "/var/log/wtmp";

/// A live login record (USER_PROCESS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the file, in records.
    pub index: usize,
    pub pid: Pid,
    /// Terminal without `/dev/` (`pts/3`).
    pub line: String,
    pub user: String,
    pub host: String,
    pub time: Option<Timestamp>,
}

/// The live login records of `path`; empty when the file is missing or unreadable.
pub fn read(path: &Path) -> Vec<Record> {
    let Ok(parser) = UtmpParser::from_path(path) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for (index, entry) in parser.enumerate() {
        match entry {
            Ok(UtmpEntry::UserProcess {
                pid,
                line,
                user,
                host,
                time,
                ..
            }) => records.push(Record {
                index,
                pid: Pid::from_raw(pid),
                line,
                user,
                host,
                time: Timestamp::from_nanosecond(time.unix_timestamp_nanos()).ok(),
            }),
            Ok(_) => {}
            // A record that does not parse is skipped; a read error ends the file.
            Err(utmp_rs::ParseError::Utmp(_)) => {}
            Err(_) => break,
        }
    }
    records
}

/// glibc's `struct utmp` on 64-bit Linux.
mod layout {
    pub const RECORD: usize = 384;
    pub const TYPE: usize = 0;
    pub const PID: usize = 4;
    pub const LINE: usize = 8;
    pub const LINE_LEN: usize = 32;
    pub const USER: usize = 44;
    pub const USER_LEN: usize = 32;
    pub const HOST: usize = 76;
    pub const HOST_LEN: usize = 256;
    pub const TV: usize = 340;
    pub const USER_PROCESS: i16 = 7;
    pub const DEAD_PROCESS: i16 = 8;
    pub const WRITABLE: bool = cfg!(all(
        target_os = "linux",
        target_env = "gnu",
        target_pointer_width = "64"
    ));
}

/// Marks the live records of `pids` dead in `utmp` and appends logout records to `wtmp`.
/// Returns the terminals whose records were closed.
pub fn close_records(utmp: &Path, wtmp: &Path, pids: &[Pid]) -> io::Result<Vec<String>> {
    if !layout::WRITABLE || pids.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<Record> = read(utmp)
        .into_iter()
        .filter(|r| pids.contains(&r.pid))
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let file = OpenOptions::new().read(true).write(true).open(utmp)?;
    lock(&file, utmp)?;
    let now = crate::time::now();
    let mut closed = Vec::new();
    for record in &targets {
        let offset = (record.index * layout::RECORD) as u64;
        let mut buf = [0u8; layout::RECORD];
        file.read_exact_at(&mut buf, offset)?;
        // Still the record we read? Another logout may have reused the slot meanwhile.
        let kind = i16::from_ne_bytes([buf[layout::TYPE], buf[layout::TYPE + 1]]);
        let pid = i32::from_ne_bytes(field(&buf, layout::PID));
        if kind != layout::USER_PROCESS
            || pid != record.pid.as_raw()
            || line_of(&buf) != record.line
        {
            continue;
        }
        set_dead(&mut buf, now);
        file.write_all_at(&buf, offset)?;
        closed.push(record.line.clone());
        // wtmp is a log: a missing file means the admin does not keep one.
        if wtmp.exists() {
            append(wtmp, &buf)?;
        }
    }
    let _ = rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::Unlock);
    Ok(closed)
}

/// Turns a record into logout(3)'s dead record: type DEAD_PROCESS, no user or host, now.
fn set_dead(buf: &mut [u8; layout::RECORD], now: Timestamp) {
    buf[layout::TYPE..layout::TYPE + 2].copy_from_slice(&layout::DEAD_PROCESS.to_ne_bytes());
    buf[layout::USER..layout::USER + layout::USER_LEN].fill(0);
    buf[layout::HOST..layout::HOST + layout::HOST_LEN].fill(0);
    // utmp's 32-bit time: after 2038 the record says the last moment it can.
    let secs = i32::try_from(now.as_second()).unwrap_or(i32::MAX);
    let usecs = now.subsec_microsecond();
    buf[layout::TV..layout::TV + 4].copy_from_slice(&secs.to_ne_bytes());
    buf[layout::TV + 4..layout::TV + 8].copy_from_slice(&usecs.to_ne_bytes());
}

fn field(buf: &[u8], at: usize) -> [u8; 4] {
    [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
}

/// How long a lock on utmp or wtmp is waited for, as glibc waits for its own.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Takes the write lock that glibc's utmp functions take (fcntl, whole file), waiting at most
/// [`LOCK_WAIT`]: the files are world-readable, so any user can hold a read lock on them for
/// as long as they like.
fn lock(file: &File, path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::fcntl_lock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::ACCESS | rustix::io::Errno::INTR) => {
            }
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} is locked by another process (waited {}s)",
                    path.display(),
                    LOCK_WAIT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append(path: &Path, record: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new().append(true).open(path)?;
    lock(&file, path)?;
    let result = write_all(&file, record);
    let _ = rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::Unlock);
    result
}

fn write_all(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    file.write_all(bytes)
}

/// The terminal name stored in a raw record.
fn line_of(buf: &[u8]) -> String {
    let raw = &buf[layout::LINE..layout::LINE + layout::LINE_LEN];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Builds a binary utmp file with util-linux's utmpdump, the reference writer.
    fn utmpdump_reverse(text: &str, out: &Path) -> bool {
        let Ok(mut child) = Command::new("utmpdump")
            .arg("-r")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .expect("write utmpdump input");
        }
        let output = child.wait_with_output().expect("utmpdump");
        std::fs::write(out, output.stdout).expect("write utmp");
        output.status.success()
    }

    const SAMPLE: &str = "\
[2] [00000] [~~  ] [reboot  ] [~           ] [6.1.0               ] [0.0.0.0        ] [2026-11-24T10:00:00,000000+00:00]
[7] [04242] [ts/3] [bob     ] [pts/3       ] [10.0.0.5            ] [10.0.0.5       ] [2026-11-24T10:05:00,000000+00:00]
[7] [04343] [ts/4] [carol   ] [pts/4       ] [                    ] [0.0.0.0        ] [2026-11-24T10:06:00,000000+00:00]
";

    #[test]
    fn reads_user_records_and_closes_one() {
        let dir = std::env::temp_dir().join(format!("logoff-utmp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmpdir");
        let utmp = dir.join("utmp");
        let wtmp = dir.join("wtmp");
        if !utmpdump_reverse(SAMPLE, &utmp) {
            // CI installs util-linux: there, a missing utmpdump is a failure, not a skip.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "utmpdump (util-linux) is missing, and CI=true forbids skipping"
            );
            eprintln!("skipping: utmpdump (util-linux) is not installed");
            return;
        }
        std::fs::write(&wtmp, b"").expect("wtmp");
        let records = read(&utmp);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0].index, 1);
        assert_eq!(records[0].pid, Pid::from_raw(4242));
        assert_eq!(records[0].line, "pts/3");
        assert_eq!(records[0].user, "bob");
        assert_eq!(records[0].host, "10.0.0.5");
        assert_eq!(
            records[0].time.map(Timestamp::as_second),
            Some(
                "2026-11-24T10:05:00Z"
                    .parse::<Timestamp>()
                    .expect("ts")
                    .as_second()
            )
        );

        let closed = close_records(&utmp, &wtmp, &[Pid::from_raw(4242)]).expect("close");
        assert_eq!(closed, ["pts/3"]);
        let after = read(&utmp);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].user, "carol");
        // The wtmp log got one logout record for pts/3, and `who` agrees.
        let wtmp_bytes = std::fs::read(&wtmp).expect("read wtmp");
        assert_eq!(wtmp_bytes.len(), layout::RECORD);
        assert_eq!(line_of(&wtmp_bytes), "pts/3");
        if let Ok(who) = Command::new("who").arg(&utmp).output() {
            let text = String::from_utf8_lossy(&who.stdout);
            assert!(!text.contains("bob"), "who still lists bob: {text}");
            assert!(text.contains("carol"), "who lost carol: {text}");
        }
        // Closing again finds nothing to close.
        assert!(
            close_records(&utmp, &wtmp, &[Pid::from_raw(4242)])
                .expect("again")
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_file_is_empty() {
        assert!(read(Path::new("/nonexistent/utmp")).is_empty());
    }
}
