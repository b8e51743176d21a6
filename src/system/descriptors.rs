//! Descriptors logoff was started with. Whoever started it may have left some open (a
//! shell's `7<file`, a supervisor's sockets); none of them may reach a program logoff
//! starts — least of all one it starts as another user (a warning's window on a session's
//! display). At start, before any thread, every inherited descriptor above standard error
//! is marked close-on-exec.
//!
//! The one module with `unsafe` code: rustix (like std) names a descriptor it did not open
//! only through `BorrowedFd::borrow_raw`, and has no safe call for the namespace ioctls
//! ([`namespace_owner`]).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// The `ioctl` group of the namespace file system (`NSIO` in linux/nsfs.h).
const NSIO: u8 = 0xb7;

/// `NS_GET_USERNS`: a new descriptor of the user namespace that owns a namespace.
struct OwningUserNamespace;

// SAFETY: NS_GET_USERNS takes no argument (the pointer is never read) and returns a new
// descriptor, owned by nobody else, as the ioctl's result; it writes no user memory.
unsafe impl rustix::ioctl::Ioctl for OwningUserNamespace {
    type Output = OwnedFd;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        rustix::ioctl::opcode::none(NSIO, 0x1)
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<OwnedFd> {
        // SAFETY: a successful NS_GET_USERNS returns a descriptor it just opened for us.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// The UID that created the user namespace owning the namespace `ns` is (an open
/// `/proc/PID/ns/…` file), as our namespace sees it: `NS_GET_USERNS`, then
/// `NS_GET_OWNER_UID`, both answered by the kernel.
pub fn namespace_owner(ns: impl AsFd) -> io::Result<u32> {
    // SAFETY: `ns` is an open descriptor for the call's length; see `OwningUserNamespace`.
    let userns = unsafe { rustix::ioctl::ioctl(ns.as_fd(), OwningUserNamespace) }?;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t (u32 on Linux) through its pointer.
    let getter =
        unsafe { rustix::ioctl::Getter::<{ rustix::ioctl::opcode::none(NSIO, 0x4) }, u32>::new() };
    // SAFETY: `userns` is the user namespace's descriptor, held for the call.
    Ok(unsafe { rustix::ioctl::ioctl(userns.as_fd(), getter) }?)
}
