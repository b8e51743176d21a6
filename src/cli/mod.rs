//! The command line front end: parse ([`args`]), plan ([`plan`]), run the plan on every
//! place ([`fleet`], [`list`], [`logoff`]), print, and exit with the status the most severe
//! failure calls for. `logoff --remote-agent` serves another host's logoff instead
//! ([`agent`]).

pub mod agent;
pub mod args;
pub mod argv;
pub mod docs;
pub mod fleet;
pub mod list;
pub mod logoff;
pub mod plan;
pub mod progress;

use std::process::ExitCode;

use crate::error::{Error, Kind};
use crate::output::{self, Out};
use plan::Plan;

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
        return agent::serve();
    }
    let plan = match args::parse(std::env::args_os()).and_then(Plan::from_args) {
        Ok(plan) => plan,
        Err(e) => return failed(&e),
    };
    let mut out = Out::default();
    let ran = match plan {
        Plan::SeedHelp => {
            out.print(args::SEED_USAGE);
            Ok(None)
        }
        Plan::Help => {
            out.print(&args::long_help());
            Ok(None)
        }
        Plan::Version => {
            out.line(&format!("logoff {}", env!("CARGO_PKG_VERSION")));
            Ok(None)
        }
        Plan::List(listing) => list::run(&listing, &mut out),
        Plan::Logoff(logoff) => logoff::run(&logoff, &mut out),
    };
    match ran {
        Ok(kind) => exit(kind),
        Err(e) => failed(&e),
    }
}

/// Whether the arguments are exactly `--remote-agent`.
fn is_agent(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let rest: Vec<std::ffi::OsString> = args.skip(1).collect();
    rest.len() == 1 && rest[0] == crate::transport::agent::REMOTE_COMMAND[1]
}

/// The exit status for the most severe failure, if any.
fn exit(kind: Option<Kind>) -> ExitCode {
    ExitCode::from(kind.map_or(0, Kind::exit_status))
}

/// Prints an error of the command as a whole and returns its status. Invalid parameters get
/// the original's answer first: `Invalid parameter(s)` and the usage block.
fn failed(e: &Error) -> ExitCode {
    if e.kind() == Kind::InvalidParameters {
        output::stderr_text(&format!(
            "{}\n{}\nlogoff: {}\n",
            args::INVALID_PARAMETERS,
            args::SEED_USAGE,
            output::clean(e.message())
        ));
    } else {
        output::error_line(e.message());
    }
    exit(Some(e.kind()))
}
