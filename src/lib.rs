//! logoff: terminates login sessions on Linux hosts, the way Windows' `logoff.exe` does on a
//! Remote Desktop server — by ID or name, the current session by default, every process of
//! the session ended and verified gone.
//!
//! Layout: [`cli`] parses the command line and runs the plan; [`select`] resolves session
//! arguments; [`logoff`] is the flow, written once against the [`backend::Backend`] trait;
//! [`backend`] holds the procfs and logind implementations, which gather facts; [`presence`]
//! decides from them whether each session is idle and whether it is connected; [`system`] is the narrow boundary
//! to the operating system; [`output`] renders tables, JSON and messages.

#![deny(unsafe_code)]
// allowed in `system::descriptors` alone (see Cargo.toml)
// The documentation is the developers': `cargo doc --document-private-items` (scripts/test
// builds it with warnings denied), where links to private modules resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod audit;
pub mod backend;
pub mod cli;
pub mod daemon;
mod deadline;
mod duration;
mod error;
mod logoff;
mod model;
mod output;
pub mod policy;
mod presence;
mod select;
mod system;
mod text;
mod time;
mod transport;
