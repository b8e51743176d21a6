//! The narrow boundary to the operating system: /proc, pidfds and signals, terminals, utmp,
//! the name service. Everything above this module works with the plain types of
//! [`crate::model`].

pub mod bounded;
pub mod cgroup;
pub mod descriptors;
pub mod files;
pub mod handle;
pub mod host;
pub mod lines;
pub mod process;
pub mod sockets;
pub mod syslog;
pub mod tty;
pub mod users;
pub mod utmp;
