//! The command line front end: parse ([`args`]), then build the plan that touches the system —
//! which host and backend, which sessions — and run it, printing what happened.

pub mod args;
pub mod argv;

use std::process::ExitCode;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::backend::{self, Backend};
use crate::error::{Error, Kind, Result};
use crate::logoff::{self, Log, Options, Outcome};
use crate::output::{self, Out, SessionRow};
use crate::select;
use crate::system::host;
use args::{Args, Mode};

/// Runs logoff with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => return invalid_parameters(&e),
    };
    let mut out = Out::default();
    let result = match args.mode {
        Mode::SeedHelp => {
            out.print(args::SEED_USAGE);
            Ok(())
        }
        Mode::Help => {
            out.print(&args::long_help());
            Ok(())
        }
        Mode::Version => {
            out.line(&format!("logoff {}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        Mode::List => list(&args, &mut out),
        Mode::Logoff => run_logoff(&args, &mut out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == Kind::InvalidParameters => invalid_parameters(&e),
        Err(e) => {
            if !e.message().is_empty() {
                output::error_line(e.message());
            }
            e.exit_code()
        }
    }
}

/// The original's answer to a bad command line, then what exactly was wrong.
fn invalid_parameters(e: &Error) -> ExitCode {
    output::stderr_text(&format!(
        "{}\n{}\nlogoff: {}\n",
        args::INVALID_PARAMETERS,
        args::SEED_USAGE,
        e.message()
    ));
    e.exit_code()
}

/// Where the command acts: this host, through the chosen backend.
struct Target {
    host: String,
    backend: Box<dyn Backend>,
}

fn open_target(args: &Args, ends_sessions: bool) -> Result<Target> {
    if let Some(remote) = args.servers.iter().find(|s| !host::is_local(s)) {
        let host = crate::transport::Host::parse(remote)?;
        let (conn, tunnel) =
            crate::transport::over_ssh(&host, &[], std::time::Duration::from_secs(10))?;
        let backend = crate::backend::logind::Logind::through(
            conn,
            Some(tunnel),
            false,
            format!("{} over ssh", host.label),
        )?;
        return Ok(Target {
            host: host.label,
            backend: Box::new(backend),
        });
    }
    if let Some(machine) = &args.machine {
        return Err(Error::new(
            Kind::Remote,
            format!("cannot reach machine '{machine}': /VM:NAME is not supported yet"),
        ));
    }
    Ok(Target {
        host: host::hostname(),
        backend: backend::open_local(args.backend, ends_sessions)?,
    })
}

fn list(args: &Args, out: &mut Out) -> Result<()> {
    let mut target = open_target(args, false)?;
    let sessions = target.backend.list()?;
    let current = target.backend.current()?;
    let shown: Vec<&crate::model::Session> = if args.sessions.is_empty() {
        sessions.iter().collect()
    } else {
        select::resolve(&sessions, &args.sessions, current.as_ref())?
    };
    let backend_name = target.backend.name();
    let now = Timestamp::now();
    let mut rows: Vec<SessionRow> = shown
        .iter()
        .map(|s| {
            SessionRow::new(
                &target.host,
                backend_name,
                s,
                current.as_ref() == Some(&s.id),
                now,
            )
        })
        .collect();
    output::sort_rows(&mut rows);
    if args.verbose && !args.json {
        out.line(&format!("backend: {}", target.backend.describe()));
    }
    if args.json {
        out.line(&to_json(&rows)?);
    } else {
        out.print(&output::session_table(
            &rows,
            false,
            !args.no_legend,
            &TimeZone::system(),
        ));
    }
    Ok(())
}

/// `/V` lines go to standard output as they happen.
struct Verbose<'a> {
    enabled: bool,
    out: &'a mut Out,
}

impl Log for Verbose<'_> {
    fn action(&mut self, line: &str) {
        if self.enabled {
            self.out.line(line);
        }
    }
}

fn run_logoff(args: &Args, out: &mut Out) -> Result<()> {
    crate::system::process::raise_fd_limit();
    let mut target = open_target(args, true)?;
    let caller = target.backend.caller()?;
    let mut log = Verbose {
        enabled: args.verbose && !args.json,
        out,
    };
    log.action(&format!("backend: {}", target.backend.describe()));
    let sessions = target.backend.list()?;
    let current = target.backend.current()?;
    if args.vm
        && let Some(not_an_id) = args
            .sessions
            .iter()
            .find(|a| !sessions.iter().any(|s| &s.id.0 == *a))
    {
        return Err(Error::invalid(format!(
            "/VM needs the session's unique ID: '{not_an_id}' is not the ID of a session"
        )));
    }
    let chosen = select::resolve(&sessions, &args.sessions, current.as_ref())?;
    let targets: Vec<crate::model::Session> = chosen.into_iter().cloned().collect();
    for s in &targets {
        log.action(&format!(
            "session {} found: user {} (uid {}), {}{}{}",
            s.id,
            s.user,
            s.uid,
            s.name()
                .map(|n| format!("terminal {n}"))
                .unwrap_or_else(|| "no terminal".into()),
            s.processes
                .map(|n| format!(", {}", logoff::plural(n, "process", "processes")))
                .unwrap_or_default(),
            if current.as_ref() == Some(&s.id) {
                " (the current session)"
            } else {
                ""
            }
        ));
    }
    let opts = Options {
        timeout: args.timeout,
        console: args.console,
    };
    logoff::check(
        target.backend.as_mut(),
        &targets,
        &caller,
        current.as_ref(),
        &opts,
    )?;
    let outcomes = logoff::run(
        target.backend.as_mut(),
        &targets,
        current.as_ref(),
        &opts,
        &mut log,
    );
    report(args, &target.host, &outcomes, log.out)
}

#[derive(Serialize)]
struct OutcomeJson<'a> {
    host: &'a str,
    id: &'a str,
    user: &'a str,
    name: Option<&'a str>,
    logged_off: bool,
    asked: Option<usize>,
    killed: Option<usize>,
    seconds: Option<f64>,
    error: Option<ErrorJson<'a>>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    kind: &'a str,
    message: &'a str,
}

/// Prints each outcome (errors on standard error, or everything as JSON) and returns the
/// first failure, whose kind sets the exit status.
fn report(args: &Args, host: &str, outcomes: &[Outcome], out: &mut Out) -> Result<()> {
    if args.json {
        let rows: Vec<OutcomeJson> = outcomes
            .iter()
            .map(|o| OutcomeJson {
                host,
                id: &o.session.id.0,
                user: &o.session.user,
                name: o.session.name(),
                logged_off: o.result.is_ok(),
                asked: o.result.as_ref().ok().and_then(|d| d.asked),
                killed: o.result.as_ref().ok().and_then(|d| d.killed),
                seconds: o.result.as_ref().ok().map(|d| d.elapsed.as_secs_f64()),
                error: o.result.as_ref().err().map(|e| ErrorJson {
                    kind: e.kind().as_str(),
                    message: e.message(),
                }),
            })
            .collect();
        out.line(&to_json(&rows)?);
    }
    let mut first = None;
    for o in outcomes {
        if let Err(e) = &o.result {
            if !args.json {
                output::error_line(e.message());
            }
            first.get_or_insert_with(|| e.clone());
        }
    }
    match first {
        // Already printed: carry the exit status only.
        Some(e) => Err(Error::new(e.kind(), String::new())),
        None => Ok(()),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::system(format!("cannot write JSON: {e}")))
}
