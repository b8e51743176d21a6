//! `logoffd`: session time limits, enforced. It reads the policy ([`crate::policy`]), looks
//! at this host's sessions, warns their users as deadlines near and logs them off when they
//! pass — the same logoff as the command's, recorded with the rule and the reason.
//!
//! It sleeps until the next deadline (a warning, a limit, or the policy's scan interval),
//! waking early for signals and, where logind runs, for its SessionNew and SessionRemoved
//! ([`events`]). SIGHUP reloads the policy (a broken one is reported and the old one
//! stays); SIGTERM stops, telling the users of sessions under a warning that their logoff is
//! off. Clocks that must survive a restart live in the state directory ([`state`]).

pub mod check;
pub mod enforce;
pub mod events;
pub mod log;
pub mod notice;
pub mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use jiff::Timestamp;

use crate::backend::{Choice, Flavor, Purpose};
use crate::cli::args::BackendArg;
use crate::policy::{self, Policy};
use events::Event;
use log::{Log, notify};
use state::StateDir;

/// How soon a pass that failed (logind unreachable, say) is tried again, at most.
const RETRY: Duration = Duration::from_secs(30);

const ABOUT: &str = "Enforces session time limits: logs off idle, disconnected and \
                     long-running sessions by policy, with warnings users can act on";

const LONG_ABOUT: &str = "\
logoffd applies the session time limits of a policy file (see logoff-policy(5)): for each \
session, the first rule whose match takes it sets its limits — idle (active but idle), \
disconnected (since it lost its terminal or connection) and max_age (since logon). Users are \
warned on their terminals and displays ahead of the deadline; an idle session that is used \
again keeps going, and its user is told. At the deadline the session is logged off as \
`logoff` does it (SIGHUP and SIGTERM, the rule's timeout, SIGKILL, verified gone) and an audit \
record names the rule and the reason.

Root's sessions, the console and greeter or service-manager sessions are left alone unless a \
rule names them. mode = \"dry-run\" logs what would happen and touches nothing; mode = \
\"warn-only\" warns but logs nobody off.

logoffd runs in the foreground, logging to standard error and the journal (where no journal \
runs, to syslog, facility daemon); SIGHUP reloads the policy (a broken file is reported and \
the policy in force stays), SIGTERM stops. Under systemd, logoffd.service runs it \
(Type=notify); under sysvinit, /etc/init.d/logoffd (start, stop, reload, status).";

/// The command line of `logoffd`.
#[derive(Debug, Parser)]
#[command(name = "logoffd", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(
    after_help = "Exit status: 0 success (with --check: the policy is valid); 1 a \
                        system error (sessions cannot be listed, the state directory cannot \
                        be used); 2 an invalid policy or command line."
)]
pub struct Args {
    /// The policy file
    #[arg(long, value_name = "FILE", default_value = policy::DEFAULT_PATH)]
    pub policy: PathBuf,
    /// Where clocks that survive a restart, and the published deadlines, are kept
    #[arg(long, value_name = "DIR", default_value = state::DEFAULT_DIR)]
    pub state_dir: PathBuf,
    /// Where sessions come from
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Check the policy and show what it would do now with each session; then exit
    #[arg(long)]
    pub check: bool,
    /// With --check: print JSON
    #[arg(long, requires = "check")]
    pub json: bool,
}

/// The clap definition (for the man page).
pub fn command() -> clap::Command {
    Args::command()
}

/// The `logoffd` executable.
pub fn main() -> ExitCode {
    crate::system::descriptors::close_inherited_on_exec();
    if let Some(how) = crate::system::users::elevated_by_file() {
        eprintln!("logoffd: refusing to run with privilege from its file ({how})");
        return ExitCode::from(2);
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let choice = match args.backend {
        BackendArg::Auto => Choice::Auto,
        BackendArg::Logind => Choice::Logind,
        BackendArg::Procfs => Choice::Procfs,
    };
    let policy = match policy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "logoffd: {}: {e}",
                crate::output::clean(&args.policy.display().to_string())
            );
            return ExitCode::from(2);
        }
    };
    if args.check {
        return check(&args, &policy, choice);
    }
    run(&args, policy, choice)
}

fn check(args: &Args, policy: &Policy, choice: Choice) -> ExitCode {
    let sessions = match enforce::open(choice, Purpose::List).and_then(|mut o| o.backend.list()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logoffd: {e}");
            return ExitCode::from(1);
        }
    };
    let clocks = check::clocks(&args.state_dir);
    let out = check::report(
        &args.policy,
        policy,
        &sessions,
        &clocks,
        Timestamp::now(),
        args.json,
    );
    print!("{out}");
    if args.json {
        println!();
    }
    ExitCode::SUCCESS
}

fn run(args: &Args, policy: Policy, choice: Choice) -> ExitCode {
    let log = Log::open();
    let state = match StateDir::open(&args.state_dir) {
        Ok(s) => s,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(1);
        }
    };
    crate::system::handle::prepare_descriptors();
    let (tx, rx) = events::channel_pair();
    if let Err(e) = events::watch_signals(tx.clone()) {
        log.error(&format!("cannot handle signals: {e}"));
        return ExitCode::from(1);
    }
    let described = describe(&policy);
    let mut enforcer = match enforce::Enforcer::new(policy, choice, state, log) {
        Ok(e) => e,
        Err(e) => {
            Log::open().error(&e.to_string());
            return ExitCode::from(1);
        }
    };
    if enforcer.backend_name() == Flavor::Logind.as_str()
        && let Err(e) = events::watch_logind(tx.clone())
    {
        enforcer
            .log
            .warn(&format!("cannot follow logind's signals: {e}"));
    }
    enforcer.log.info(&format!(
        "started: {described}; backend {}",
        enforcer.backend_name()
    ));
    let mut ready = false;
    loop {
        let now = Timestamp::now();
        let next = match enforcer.pass(now) {
            Ok(t) => t,
            Err(e) => {
                enforcer
                    .log
                    .error(&format!("cannot look at the sessions: {e}"));
                add(now, enforcer.policy.scan_interval.min(RETRY))
            }
        };
        if !ready {
            notify(&format!("READY=1\nSTATUS={described}"));
            ready = true;
        }
        let wait = enforce::duration_between(Timestamp::now(), next);
        match rx.recv_timeout(wait) {
            Ok(Event::Reload) => reload(&mut enforcer, &args.policy),
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => {
                notify("STOPPING=1");
                enforcer.stop();
                enforcer.log.info("stopped");
                return ExitCode::SUCCESS;
            }
            Ok(Event::WatchLost) => enforcer.log.warn(
                "lost logind's signals: new and closed sessions are seen at the scan interval",
            ),
            Ok(Event::Sessions) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// SIGHUP: the policy again; a broken one is reported and the one in force stays.
fn reload(enforcer: &mut enforce::Enforcer, path: &std::path::Path) {
    notify("RELOADING=1");
    let shown = crate::output::clean(&path.display().to_string()).into_owned();
    match policy::load(path) {
        Ok(p) => {
            let described = describe(&p);
            enforcer.set_policy(p);
            enforcer.log.info(&format!("reloaded {shown}: {described}"));
            notify(&format!("READY=1\nSTATUS={described}"));
        }
        Err(e) => {
            enforcer.log.error(&format!(
                "SIGHUP: {shown} is not valid ({e}); the policy in force stays"
            ));
            notify("READY=1");
        }
    }
}

fn describe(p: &Policy) -> String {
    format!(
        "mode {}, {} rule{}",
        p.mode.as_str(),
        p.rules.len(),
        if p.rules.len() == 1 { "" } else { "s" }
    )
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}
