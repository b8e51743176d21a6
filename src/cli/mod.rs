//! The command line front end: parse ([`args`]), turn what was asked into an
//! [`Invocation`] ([`invocation`]), run it on every
//! place ([`fleet`], [`list`], [`logoff`]), print, and exit with the status the most severe
//! failure calls for. `logoff --remote-agent` serves another host's logoff instead
//! ([`crate::remote::agent`]).

pub mod args;
mod argv;
pub mod docs;
mod fleet;
mod invocation;
mod list;
mod logoff;
mod progress;
mod signals;

use std::process::ExitCode;

use crate::error::{Error, Kind};
use crate::output::{self, Out};
use invocation::Invocation;

/// Runs logoff with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    crate::system::descriptors::close_inherited_on_exec();
    if let Some(how) = crate::system::users::elevated_by_file() {
        output::error_line(&format!(
            "refusing to run with privilege from its file ({how}): logoff is not made to be \
             installed setuid, setgid or with file capabilities; run it with sudo, or use \
             polkit with logind"
        ));
        return exit(Some(Kind::InvalidParameters));
    }
    // `logoff --remote-agent`, and nothing else: another host's logoff asking this one to
    // act here (`agent`). A protocol entry point, not an option: not in the help.
    if is_agent(std::env::args_os()) {
        return crate::remote::agent::serve();
    }
    let invocation = match args::parse(std::env::args_os()).and_then(Invocation::from_args) {
        Ok(invocation) => invocation,
        Err(e) => return failed(&e),
    };
    let mut out = Out::default();
    let ran = match invocation {
        Invocation::SeedHelp => {
            out.print(args::usage());
            Ok(None)
        }
        Invocation::Help => {
            out.print(&args::long_help());
            Ok(None)
        }
        Invocation::Version => {
            out.line(&format!("logoff {}", env!("CARGO_PKG_VERSION")));
            Ok(None)
        }
        Invocation::List(listing) => list::run(&listing, &mut out),
        Invocation::Logoff(logoff) => return log_off(logoff),
    };
    match ran {
        Ok(kind) => exit(kind),
        Err(e) => failed(&e),
    }
}

/// A logoff, on a thread of its own: a signal before anything is touched ends the command
/// at once, by way of this function (the only place that ends the process early).
fn log_off(command: invocation::Logoff) -> ExitCode {
    // While this is the only thread (see its doc): before the signal thread and the worker.
    crate::system::handle::prepare_descriptors();
    let (tx, rx) = std::sync::mpsc::channel();
    if let Err(e) = signals::install(tx.clone()) {
        return failed(&Error::io(Kind::System, "cannot handle Ctrl-C", e));
    }
    let worker = std::thread::Builder::new()
        .name("logoff".into())
        .spawn(move || {
            let mut out = Out::default();
            let status = match logoff::run(&command, &mut out) {
                Ok(kind) => status(kind),
                Err(e) => report(&e),
            };
            let _ = tx.send(status);
        });
    if let Err(e) = worker {
        return failed(&Error::io(Kind::System, "cannot start working", e));
    }
    // The worker (or the signal thread) always answers; a worker that died answers nothing.
    ExitCode::from(rx.recv().unwrap_or(Kind::System.exit_status()))
}

/// Whether the arguments are exactly `--remote-agent`.
fn is_agent(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let rest: Vec<std::ffi::OsString> = args.skip(1).collect();
    rest.len() == 1 && rest[0] == crate::remote::channel::REMOTE_COMMAND[1]
}

/// The exit status for the most severe failure, if any.
fn exit(kind: Option<Kind>) -> ExitCode {
    ExitCode::from(status(kind))
}

fn status(kind: Option<Kind>) -> u8 {
    kind.map_or(0, Kind::exit_status)
}

/// Prints an error of the command as a whole and returns its status.
fn failed(e: &Error) -> ExitCode {
    ExitCode::from(report(e))
}

/// Prints an error of the command as a whole; its status. Invalid parameters get the
/// original's answer first: `Invalid parameter(s)` and the usage block.
fn report(e: &Error) -> u8 {
    if e.kind() == Kind::InvalidParameters {
        output::stderr_text(&format!(
            "{}\n{}\nlogoff: {}\n",
            args::INVALID_PARAMETERS,
            args::usage(),
            output::clean(e.message())
        ));
    } else {
        output::error_line(e.message());
    }
    e.kind().exit_status()
}
