//! logoff: terminates login sessions on Linux hosts, the way Windows' `logoff.exe` does on a
//! Remote Desktop server — by ID or name, the current session by default, every process of
//! the session ended and verified gone.
//!
//! Layout, from the top (each layer imports only those below it; `tests/layers.rs` checks):
//! - [`cli`] parses the command line and runs what it asks on every place; [`daemon`] is
//!   logoffd, which enforces [`policy`]; [`audit`] writes the record of each attempt.
//! - [`remote`]: other hosts and machines, both sides of the protocol.
//! - [`output`] renders tables, JSON and messages.
//! - [`logoff`] is the flow: [`logoff::resolve`] (the command's) and [`logoff::end`]
//!   (shared), written once against the [`backend::Backend`] trait; [`select`] resolves
//!   session arguments and filters.
//! - [`backend`] holds the logind and procfs implementations, which gather facts;
//!   [`presence`] decides from them whether each session is idle and whether it is
//!   connected.
//! - [`desktop`]: graphical sessions (xrdp, X displays, warning windows).
//! - [`system`] is the narrow boundary to the operating system.
//! - At the ground: [`model`], [`error`], [`text`], [`time`], [`duration`], [`deadline`].

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
mod desktop;
mod duration;
mod error;
mod logoff;
mod model;
mod output;
pub mod policy;
mod presence;
mod remote;
mod select;
mod system;
mod text;
mod time;
