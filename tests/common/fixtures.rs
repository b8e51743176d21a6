//! Things a test makes on this host and undoes when dropped: a temporary directory, a utmp
//! record, a listener on `/dev/log`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{require, set_mode, text};

/// A temporary directory removed when dropped, world-writable for test users.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "logoff-test-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let dir = PathBuf::from(
            dir.to_string_lossy()
                .replace([' ', '{', '}', ':', ','], "_"),
        );
        std::fs::create_dir_all(&dir).expect("tempdir");
        set_mode(&dir, 0o1777);
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn read(&self, name: &str) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.path(name)) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Adds a record to the real utmp and restores the file afterwards.
pub struct UtmpGuard {
    original: Option<Vec<u8>>,
}

impl UtmpGuard {
    pub fn add(record_text: &str) -> UtmpGuard {
        use std::io::Write;
        let path = "/var/run/utmp";
        let original = std::fs::read(path).ok();
        let mut child = std::process::Command::new("utmpdump")
            .arg("-r")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("utmpdump (util-linux)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(record_text.as_bytes())
            .expect("write");
        let binary = child.wait_with_output().expect("utmpdump").stdout;
        assert_eq!(binary.len(), 384, "utmpdump made {} bytes", binary.len());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open utmp");
        file.write_all(&binary).expect("append utmp");
        UtmpGuard { original }
    }
}

impl Drop for UtmpGuard {
    fn drop(&mut self) {
        match &self.original {
            Some(bytes) => {
                let _ = std::fs::write("/var/run/utmp", bytes);
            }
            None => {
                let _ = std::fs::remove_file("/var/run/utmp");
            }
        }
    }
}

/// Receives what logoff sends to syslog (`/dev/log`) while it lives: the audit records on a
/// host with neither journald nor a syslog daemon (this machine's CI has neither). One at a
/// time; a thread drains the socket (a datagram socket queues only a few messages, and
/// useradd and userdel log too); `/dev/log` is removed again when dropped.
pub struct SyslogCapture {
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    drain: Option<std::thread::JoinHandle<()>>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl SyslogCapture {
    const PATH: &'static str = "/dev/log";
    const JOURNAL: &'static str = "/run/systemd/journal/socket";

    /// Listens on `/dev/log`; `None` (a skip outside CI, a failure under it) where the host
    /// has a journal or syslog of its own, which would take the records instead.
    pub fn start(test: &str) -> Option<SyslogCapture> {
        use std::sync::atomic::Ordering;
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = ONE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if Path::new(Self::PATH).exists() || Path::new(Self::JOURNAL).exists() {
            require(
                test,
                Err(
                    "the host has a journal or syslog of its own, which would take the audit \
                     records"
                        .into(),
                ),
            );
            return None;
        }
        let socket = std::os::unix::net::UnixDatagram::bind(Self::PATH).expect("bind /dev/log");
        set_mode(Path::new(Self::PATH), 0o666);
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, done) = (received.clone(), stop.clone());
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf)
                    && let Ok(mut r) = sink.lock()
                {
                    r.push(text(&buf[..n]));
                }
            }
        });
        Some(SyslogCapture {
            received,
            stop,
            drain: Some(drain),
            _one_at_a_time: guard,
        })
    }

    /// logoff's records received so far.
    pub fn records(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        self.received
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|l| l.contains("logoff["))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SyslogCapture {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(Self::PATH);
    }
}
