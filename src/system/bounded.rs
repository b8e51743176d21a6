//! Reads a user can stall, done under one deadline for all of them.
//!
//! Some reads about a user's session wait on that user: another process's environment or
//! command line is read from its memory (a page on the user's FUSE file waits on the user's
//! FUSE server), an X server answers when it likes. None of them may hold logoff — or the
//! daemon — up: [`map`] runs them on a few threads of their own and returns at the
//! deadline with what has come; a read still waiting then is given up (its thread ends
//! when the read does). So that stalled reads cannot pile threads up in a long-running
//! daemon, no new reads start while [`STALLED_MAX`] of them are still waiting: their
//! answers are then unknown, said as such by the caller.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::deadline::Deadline;

/// Reads still running (most are done in microseconds; what is left has stalled).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many reads may be stalled before no new one starts.
pub const STALLED_MAX: usize = 1024;

/// How many threads a call may use.
#[derive(Debug, Clone, Copy)]
pub enum Threads {
    /// A few: reads that are quick unless a user stalls them.
    Few,
    /// One per item, up to 512: reads that each may wait out a deadline of their own (an X
    /// server that never answers), so that a few hundred still end together.
    PerItem,
}

/// `f` on every item, on threads of their own, until `deadline`: the answers in order,
/// `None` for those not done by then (or not started, while too many are stalled).
pub fn map<T, R>(
    items: Vec<T>,
    f: fn(&T) -> R,
    threads: Threads,
    deadline: Deadline,
) -> Vec<Option<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let n = items.len();
    let mut answers: Vec<Option<R>> = (0..n).map(|_| None).collect();
    if n == 0 || RUNNING.load(Ordering::SeqCst) >= STALLED_MAX {
        return answers;
    }
    let queue = Arc::new(Mutex::new(
        items.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    let threads = match threads {
        Threads::Few => 4,
        Threads::PerItem => 512,
    };
    for _ in 0..n.min(threads) {
        let queue = Arc::clone(&queue);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("bounded-read".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((at, item)) = next else { break };
                    RUNNING.fetch_add(1, Ordering::SeqCst);
                    let answer = f(&item);
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                    if tx.send((at, answer)).is_err() {
                        break;
                    }
                }
            });
        if spawned.is_err() {
            break;
        }
    }
    drop(tx);
    let mut got = 0;
    while got < n {
        match rx.recv_timeout(deadline.left().max(Duration::from_millis(1))) {
            Ok((at, answer)) => {
                answers[at] = Some(answer);
                got += 1;
            }
            Err(_) if deadline.passed() => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_order_and_gives_up_on_what_stalls() {
        let got = map(
            (0..200u64).collect(),
            |i| i * 2,
            Threads::Few,
            Deadline::after(Duration::from_secs(5)),
        );
        assert_eq!(got.len(), 200);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, a)| *a == Some(i as u64 * 2))
        );
        let started = std::time::Instant::now();
        let got = map(
            vec![0u64, 3],
            |s| std::thread::sleep(Duration::from_secs(*s)),
            Threads::PerItem,
            Deadline::after(Duration::from_millis(300)),
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(got, vec![Some(()), None]);
    }
}
