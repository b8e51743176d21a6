//! Descriptors logoff was started with. Whoever started it may have left some open (a
//! shell's `7<file`, a supervisor's sockets); none of them may reach a program logoff
//! starts — least of all one it starts as another user (a warning's window on a session's
//! display). At start, before any thread, every inherited descriptor above standard error
//! is marked close-on-exec.
//!
//! The one module with `unsafe` code: rustix (like std) names a descriptor it did not open
//! only through `BorrowedFd::borrow_raw`.

#![allow(unsafe_code)]

use std::os::fd::BorrowedFd;

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

/// Marks every open descriptor above 2 close-on-exec. Call first, before any thread starts
/// (nothing may close a descriptor while this looks at it).
pub fn close_inherited_on_exec() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let numbers: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&n| n > 2)
        .collect();
    // The directory's own descriptor is closed now; `fcntl` on it fails (EBADF), harmlessly.
    for n in numbers {
        // SAFETY: `n` was listed as open by /proc/self/fd, no other thread runs yet to close
        // it (or to open another on its number), and the borrow lasts for two fcntl calls
        // that do not close it. If `n` was the listing's own descriptor, now closed, fcntl
        // only fails with EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(n) };
        if let Ok(flags) = fcntl_getfd(fd) {
            let _ = fcntl_setfd(fd, flags | FdFlags::CLOEXEC);
        }
    }
}
