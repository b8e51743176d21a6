//! Sessions made for the benchmarks: many audit sessions of one user, as logins make them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestUser, has_ended, proc_pids};

/// The login uid of a process.
pub fn login_uid(pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/loginuid")).ok()?;
    text.trim().parse().ok()
}

/// The live processes of `uid`'s sessions (their login uid is `uid`).
pub fn members(uid: u32) -> Vec<i32> {
    proc_pids()
        .into_iter()
        .filter(|&pid| login_uid(pid) == Some(uid) && !has_ended(pid))
        .collect()
}

/// Makes `n` sessions of `per_session` processes of `user`: one launcher forks a process
/// per session, which takes a fresh audit session ID (writing its login uid), becomes the
/// user and forks the rest. Returns the launcher, once every process is up.
pub fn make_sessions(user: &TestUser, n: usize, per_session: usize) -> Child {
    let forks = per_session.saturating_sub(1);
    let script = format!(
        "use POSIX; for (1..{n}) {{ my $p = fork; die \"fork: $!\" unless defined $p; \
         next if $p; open(my $f, '>', '/proc/self/loginuid') or die; print $f '{uid}'; \
         close($f) or die; POSIX::setgid({gid}); POSIX::setuid({uid}) or die; \
         for (1..{forks}) {{ my $c = fork; if (defined $c && $c == 0) {{ sleep 1000; exit 0 }} }} \
         sleep 1000; exit 0 }} sleep 1000",
        uid = user.uid,
        gid = user.gid,
    );
    launch(user, &script, per_session * n)
}

/// Makes `n` sessions (rounded up to an even number) of `per_session` processes of `user`,
/// linked in pairs as clients of each other are: the two sessions of a pair hold the two
/// ends of a unix socket pair and of a loopback TCP connection, so that a look at them reads
/// the unix and the TCP tables and checks each other end's holder (the connection sources).
#[allow(dead_code)] // The logoffd benchmark's: the other benchmarks include this file too.
pub fn make_linked_sessions(user: &TestUser, n: usize, per_session: usize) -> Child {
    let forks = per_session.saturating_sub(1);
    let pairs = n.div_ceil(2);
    let script = format!(
        "use POSIX; use Socket; use IO::Socket::INET; \
         my $l = IO::Socket::INET->new(Listen => 1024, LocalAddr => '127.0.0.1', LocalPort => 0, \
           Proto => 'tcp') or die \"listen: $!\"; my $port = $l->sockport; \
         for (1..{pairs}) {{ \
           socketpair(my $u1, my $u2, AF_UNIX, SOCK_STREAM, 0) or die \"socketpair: $!\"; \
           my $t1 = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, \
             Proto => 'tcp') or die \"connect: $!\"; my $t2 = $l->accept or die \"accept: $!\"; \
           for my $side (0, 1) {{ my $p = fork; die \"fork: $!\" unless defined $p; next if $p; \
             if ($side) {{ close $u1; close $t1 }} else {{ close $u2; close $t2 }} close $l; \
             open(my $f, '>', '/proc/self/loginuid') or die; print $f '{uid}'; close($f) or die; \
             POSIX::setgid({gid}); POSIX::setuid({uid}) or die; \
             for (1..{forks}) {{ my $c = fork; if (defined $c && $c == 0) {{ sleep 1000; exit 0 }} }} \
             sleep 1000; exit 0 }} \
           close $u1; close $u2; close $t1; close $t2 }} sleep 1000",
        uid = user.uid,
        gid = user.gid,
    );
    launch(user, &script, 2 * pairs * per_session)
}

/// Starts the perl `script` that makes sessions, and returns it once `expected` processes
/// of `user`'s sessions run.
fn launch(user: &TestUser, script: &str, expected: usize) -> Child {
    settle();
    let launcher = Command::new("perl")
        .args(["-e", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the sessions");
    let deadline = Instant::now() + Duration::from_secs(120);
    while members(user.uid).len() < expected {
        assert!(
            Instant::now() < deadline,
            "the sessions never all started ({expected} processes)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The forks have settled.
    std::thread::sleep(Duration::from_millis(500));
    launcher
}

/// Waits until the previous run's zombies are reaped (this machine's init reaps orphans
/// lazily, and /proc entries left over would slow the next contender's scans) and the forks
/// that made the session have settled.
pub fn settle() {
    let deadline = Instant::now() + Duration::from_secs(20);
    while zombies() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn zombies() -> usize {
    proc_pids()
        .into_iter()
        .filter(|&pid| has_ended(pid))
        .count()
}
