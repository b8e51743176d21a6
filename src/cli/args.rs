//! The command line as one clap definition, and its first layer of parsing.
//!
//! [`parse`] turns argv into [`Args`], a plain value, validated, with no system calls, so that
//! every flag has a unit test beside it. The help text, the man page and the shell
//! completions all come from [`command`], never written twice.

use std::ffi::OsString;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use super::argv;
use crate::backend::Choice;
use crate::duration;
use crate::error::{EXIT_STATUS_HELP, Error, Result};

/// The exit statuses and the audit record's fields, after `--help` and in the man page.
fn after_long_help() -> String {
    format!("{EXIT_STATUS_HELP}\n\n{}", crate::audit::FIELDS_HELP)
}

use crate::logoff::{Action, ConsolePolicy};
use crate::remote::Auth;
use crate::select::{Filters, HostSpec, StateFilter};

/// The seed's usage block (logoff.exe's own words and layout), printed after
/// `Invalid parameter(s)` and by `/?`.
pub const SEED_USAGE: &str = "\
Terminates a session.

LOGOFF [sessionname | sessionid] [/SERVER:servername] [/V] [/VM]

  sessionname         The name of the session.
  sessionid           The ID of the session.
  /SERVER:servername  Specifies the Remote Desktop server containing the user
                      session to log off (default is current).
  /V                  Displays information about the actions performed.
  /VM                 Logs off a session on server or within virtual machine. The unique ID of the session needs to be specified.
";

/// tsdiscon's usage block: the same command as `logoff --disconnect`, under the name users
/// of Remote Desktop know it by (a link named `tsdiscon` to logoff).
pub const TSDISCON_USAGE: &str = "\
Disconnects a session: its connection ends, its programs keep running.

TSDISCON [sessionid | sessionname] [/SERVER:servername] [/V] [/VM]

  sessionid           The ID of the session.
  sessionname         The name of the session.
  /SERVER:servername  Specifies the Remote Desktop server containing the user
                      session to disconnect (default is current).
  /V                  Displays information about the actions performed.
  /VM                 Disconnects a session on server or within virtual machine. The unique ID of the session needs to be specified.
";

/// The name logoff answers to as tsdiscon.
pub const TSDISCON: &str = "tsdiscon";

/// Whether logoff runs as tsdiscon (the program's file name, as it was invoked).
pub fn as_tsdiscon(program: &std::ffi::OsStr) -> bool {
    std::path::Path::new(program)
        .file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case(TSDISCON))
}

/// The usage block of the front logoff runs as.
pub fn usage() -> &'static str {
    match std::env::args_os().next() {
        Some(p) if as_tsdiscon(&p) => TSDISCON_USAGE,
        _ => SEED_USAGE,
    }
}

/// The first line of standard error for invalid parameters, as the original prints it.
pub const INVALID_PARAMETERS: &str = "Invalid parameter(s)";

pub const LONG_ABOUT: &str = "\
Logs off a session: every process of it ends, verified, and the session is gone.

A session is named by its ID (logind's ID, or the kernel audit session ID) or by its
name: its terminal (pts/3, /dev/pts/3, tty2), its X display (:10), or `console`.
Without a session argument, logoff logs off the session it runs in. You can always
log off your own sessions; other users' sessions need root (or, with logind, polkit's
org.freedesktop.login1.manage). Another user's console session is refused unless
--console is given.";

/// The GNU-style command line. The seed's `/SWITCH` forms are rewritten into these first.
/// (Its doc comments are the `--help` text, not rustdoc: `[user@]host` is no link.)
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Parser)]
#[command(
    name = "logoff",
    version,
    about = "Terminates a session.",
    long_about = LONG_ABOUT,
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = EXIT_STATUS_HELP,
    after_long_help = after_long_help(),
)]
// The clap definition: each flag is a bool; `validate` turns them into the enums of `Args`.
#[allow(clippy::struct_excessive_bools)]
struct Cli {
    /// Session name (pts/3, /dev/pts/3, tty2, console, :10) or session ID; several may be given
    #[arg(value_name = "SESSION")]
    sessions: Vec<String>,

    /// Act on this server over ssh instead of the local host (/SERVER:servername); several
    /// may be given, repeated or comma-separated ([user@]host[:port])
    #[arg(long, value_name = "SERVER")]
    server: Vec<String>,

    /// Read servers from FILE, one per line (# starts a comment)
    #[arg(long, value_name = "FILE")]
    servers_file: Option<String>,

    /// How many servers to work on at once
    #[arg(long, value_name = "N", default_value = "16", value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,

    /// Give up on a server that does not answer within DURATION
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    connect_timeout: Duration,

    /// Let ssh ask for passwords and passphrases on the terminal (else keys and agents only)
    #[arg(long)]
    ask_password: bool,

    /// Print one line per action performed (/V)
    #[arg(short, long)]
    verbose: bool,

    /// Log off a session on a server or within a virtual machine; needs a session ID (/VM)
    #[arg(long)]
    vm: bool,

    /// Target this container or VM registered with systemd-machined (/VM:NAME)
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,

    /// List the sessions instead of logging off
    #[arg(short, long)]
    list: bool,

    /// End the sessions' connections only (an ssh connection, an RDP client), as Remote
    /// Desktop's disconnect: their programs keep running, their users reconnect (tsdiscon)
    ///
    /// An RDP session: xrdp's process for the client's connection ends; the X server, the
    /// desktop and its programs keep running, and the user's next RDP login is given the
    /// same display. An ssh session: sshd's processes for the connection end (its monitor
    /// and its child, found by the TCP connection they hold, never by name); what runs
    /// detached from the terminal — tmux, screen, nohup jobs — keeps running, and the user
    /// reattaches from a new login. A shell that is not under tmux or screen, and whatever
    /// runs in the foreground on that terminal, gets SIGHUP as the terminal goes, exactly as
    /// when a network connection drops: most shells exit, and programs that do not catch or
    /// ignore SIGHUP end. A session with no connection of its own to end (a console, a
    /// local X session, a mosh session, one reached only through another session's tmux
    /// client or forward) is left untouched, exit status 7. Needs root for other users' sessions (as
    /// logoff does) and, for an RDP session, root on its host.
    #[arg(long, conflicts_with_all = ["list", "warn_only"])]
    disconnect: bool,

    /// Write --message to the sessions' terminals and displays, and end nothing (as msg)
    #[arg(long, requires = "message", conflicts_with = "list")]
    warn_only: bool,

    /// Print JSON instead of a table or messages
    #[arg(long)]
    json: bool,

    /// Do not print the header and the "N sessions listed." line
    #[arg(long)]
    no_legend: bool,

    /// Time between SIGTERM and SIGKILL (30s, 5m, 500ms; 0 = SIGKILL at once)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    timeout: Duration,

    /// Allow logging off another user's console (console, ttyN) session
    #[arg(long)]
    console: bool,

    /// Write TEXT to the terminals of each session before logging it off
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,

    /// Warn, wait DURATION (repeating the message a minute and ten seconds before), then log
    /// off; Ctrl-C cancels
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration::parse)]
    grace: Duration,

    /// Only sessions of this user (name or uid; repeatable)
    #[arg(long, value_name = "NAME")]
    user: Vec<String>,

    /// Only sessions in this state (repeatable)
    #[arg(long, value_enum, value_name = "STATE")]
    state: Vec<StateFilter>,

    /// Only sessions idle at least DURATION
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    idle_for: Option<Duration>,

    /// Only sessions that came from HOST or network (10.0.0.0/8), as the system vouches for it
    #[arg(long, value_name = "HOST", value_parser = HostSpec::parse)]
    from: Option<HostSpec>,

    /// Only sessions that came in over the network
    #[arg(long, conflicts_with = "local")]
    remote: bool,

    /// Only sessions that did not come in over the network
    #[arg(long)]
    local: bool,

    /// Every session (but your own, unless named) that passes the filters
    #[arg(long)]
    all: bool,

    /// Print what would be logged off, and touch nothing
    #[arg(long)]
    dry_run: bool,

    /// Session backend: logind where it answers on the system bus, else procfs
    #[arg(long, value_enum, value_name = "BACKEND", default_value = "auto")]
    backend: Choice,

    /// Print help (the seed's usage block and every option)
    #[arg(short = 'h', long, action = ArgAction::SetTrue)]
    help: bool,

    /// Print the seed's usage block (/?, -?)
    #[arg(long = "seed-help", hide = true, action = ArgAction::SetTrue)]
    seed_help: bool,

    /// Print version
    #[arg(long, action = ArgAction::SetTrue)]
    version: bool,
}

/// What the command line asks for, validated, before anything touches the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub mode: Mode,
    pub sessions: Vec<String>,
    pub servers: Vec<String>,
    pub servers_file: Option<String>,
    pub parallel: usize,
    pub connect_timeout: Duration,
    pub auth: Auth,
    pub verbose: bool,
    pub vm: bool,
    pub machine: Option<String>,
    pub output: Output,
    pub timeout: Duration,
    pub console: ConsolePolicy,
    pub backend: Choice,
    pub filters: Filters,
    pub message: Option<String>,
    pub grace: Duration,
    pub dry_run: bool,
    pub action: Action,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    /// `--no-legend`: no header, no count.
    TableWithoutLegend,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print the seed's usage block to standard output (`/?`).
    SeedHelp,
    /// Print the seed's usage block and every option (`--help`).
    Help,
    Version,
    List,
    Logoff,
}

/// The clap definition, for help, the man page and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// `--help`: the seed's usage block, then every option and the exit statuses.
pub fn long_help() -> String {
    let options = command()
        .help_template("{all-args}{after-help}")
        .term_width(100)
        .render_help()
        .to_string();
    format!("{SEED_USAGE}\n{LONG_ABOUT}\n\n{}\n", options.trim_end())
}

/// Parses argv (with the program name first). Help and version are answered before anything
/// else is looked at, as ripgrep does: `logoff --version --user ''` prints the version.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args> {
    let mut argv = argv.into_iter();
    let program = argv.next().unwrap_or_else(|| "logoff".into());
    let mut argv: Vec<OsString> = argv.collect();
    // tsdiscon is logoff --disconnect (said again, it is still said once).
    if as_tsdiscon(&program) && !argv.iter().any(|a| a == "--disconnect") {
        argv.insert(0, "--disconnect".into());
    }
    if let Some(mode) = asked_for_help_or_version(&argv) {
        let cli = Cli::try_parse_from([program]).map_err(|e| clap_error(&e))?;
        return Ok(Args {
            mode,
            ..validate(cli)?
        });
    }
    let rewritten = argv::rewrite(argv)?;
    let matches = command()
        .try_get_matches_from(std::iter::once(program).chain(rewritten))
        .map_err(|e| clap_error(&e))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| clap_error(&e))?;
    validate(cli)
}

/// `/?` or `-?`, `-h` or `--help`, `--version` among the arguments (before `--`), in that
/// order of precedence.
fn asked_for_help_or_version(argv: &[OsString]) -> Option<Mode> {
    let words = argv::not_values(argv);
    let has = |names: &[&str]| words.iter().any(|w| names.iter().any(|n| *w == n));
    if has(&["/?", "-?", argv::SEED_HELP]) {
        Some(Mode::SeedHelp)
    } else if has(&["-h", "--help"]) {
        Some(Mode::Help)
    } else if has(&["--version"]) {
        Some(Mode::Version)
    } else {
        None
    }
}

fn clap_error(e: &clap::Error) -> Error {
    // clap's first line is "error: <what>"; the usage we print ourselves.
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid parameters");
    Error::invalid(first.trim_start_matches("error: ").to_string())
}

fn validate(cli: Cli) -> Result<Args> {
    let mode = if cli.seed_help {
        Mode::SeedHelp
    } else if cli.help {
        Mode::Help
    } else if cli.version {
        Mode::Version
    } else if cli.list {
        Mode::List
    } else {
        Mode::Logoff
    };
    check_values(&cli)?;
    if mode == Mode::Logoff && (cli.vm || cli.machine.is_some()) && cli.sessions.is_empty() {
        // The seed: "The unique ID of the session needs to be specified."
        return Err(Error::invalid(
            "/VM needs the session's ID: the unique ID of the session needs to be specified",
        ));
    }
    let remote = match (cli.remote, cli.local) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Ok(Args {
        mode,
        sessions: cli.sessions,
        servers: cli.server,
        servers_file: cli.servers_file,
        parallel: usize::from(cli.parallel),
        connect_timeout: cli.connect_timeout,
        auth: if cli.ask_password {
            Auth::Interactive
        } else {
            Auth::Batch
        },
        verbose: cli.verbose,
        vm: cli.vm || cli.machine.is_some(),
        machine: cli.machine,
        output: match (cli.json, cli.no_legend) {
            (true, _) => Output::Json,
            (false, true) => Output::TableWithoutLegend,
            (false, false) => Output::Table,
        },
        timeout: cli.timeout,
        console: if cli.console {
            ConsolePolicy::Allow
        } else {
            ConsolePolicy::Protect
        },
        backend: cli.backend,
        filters: Filters {
            users: cli.user,
            states: cli.state,
            idle_for: cli.idle_for,
            from: cli.from,
            remote,
            all: cli.all,
        },
        message: cli.message,
        grace: cli.grace,
        dry_run: cli.dry_run,
        action: if cli.disconnect {
            Action::Disconnect
        } else if cli.warn_only {
            Action::Message
        } else {
            Action::LogOff
        },
    })
}

/// Refuses values that are empty (or blank where blank means nothing) and a machine name
/// that is not one.
fn check_values(cli: &Cli) -> Result<()> {
    let blank = |v: &str| v.trim().is_empty();
    let refuse = |what: &str| Err(Error::invalid(format!("empty {what}")));
    if cli.sessions.iter().any(|s| blank(s)) {
        return refuse("session name");
    }
    if cli.server.iter().any(String::is_empty) {
        return refuse("server name");
    }
    if cli.user.iter().any(|u| blank(u)) {
        return refuse("user name");
    }
    if cli.message.as_deref().is_some_and(blank) {
        return refuse("--message");
    }
    if cli.warn_only && !cli.grace.is_zero() {
        return Err(Error::invalid(
            "--warn-only ends nothing: a --grace period before nothing means nothing",
        ));
    }
    if cli.servers_file.as_deref().is_some_and(str::is_empty) {
        return refuse("servers file name");
    }
    if let Some(m) = &cli.machine {
        crate::remote::check_machine(m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
