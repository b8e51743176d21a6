//! The second layer of parsing (ripgrep's LowArgs → HiArgs): [`Invocation::from_args`] turns the
//! validated command line into what to do — where (every place, each host checked as data,
//! built once), how, what to say and how to print. It reads nothing but the servers file.
//! Nothing after it sees [`Args`].

use std::time::Duration;

use super::args::{Args, Mode, Output};
use crate::backend::Choice;
use crate::error::{Error, Result};
use crate::logoff::{Action, ConsolePolicy, Request};
use crate::remote::{ConnectOptions, Host, HostRef, Place};
use crate::select::Filters;
use crate::system::host;

/// What the command does.
pub enum Invocation {
    /// The seed's usage block (`/?`).
    SeedHelp,
    /// `--help`.
    Help,
    Version,
    List(Listing),
    Logoff(Logoff),
}

/// Where and how a command reaches sessions, and how it prints.
pub struct Reach {
    /// Every place, in the order named, each once.
    pub places: Vec<Place>,
    pub backend: Choice,
    pub connect: ConnectOptions,
    /// How many places are worked on at once.
    pub parallel: usize,
    pub verbose: bool,
    pub json: bool,
}

impl Reach {
    pub fn several(&self) -> bool {
        self.places.len() > 1
    }
}

/// `--list`.
pub struct Listing {
    pub reach: Reach,
    pub sessions: Vec<String>,
    pub filters: Filters,
    pub legend: bool,
}

/// A logoff.
pub struct Logoff {
    pub reach: Reach,
    /// Which sessions, as the flow takes it on each place.
    pub request: Request,
    pub timeout: Duration,
    pub console: ConsolePolicy,
    pub message: Option<String>,
    pub grace: Duration,
    pub dry_run: bool,
    pub action: Action,
}

impl Invocation {
    /// What `args` ask for, with every place built and checked (nothing is touched).
    pub fn from_args(args: Args) -> Result<Invocation> {
        Ok(match args.mode {
            Mode::SeedHelp => Invocation::SeedHelp,
            Mode::Help => Invocation::Help,
            Mode::Version => Invocation::Version,
            Mode::List => Invocation::List(Listing {
                reach: reach(&args)?,
                legend: args.output != Output::TableWithoutLegend,
                sessions: args.sessions,
                filters: args.filters,
            }),
            Mode::Logoff => Invocation::Logoff(Logoff {
                reach: reach(&args)?,
                request: Request {
                    sessions: args.sessions,
                    filters: args.filters,
                    ids_only: args.vm,
                },
                timeout: args.timeout,
                console: args.console,
                grace: args.grace,
                dry_run: args.dry_run,
                action: args.action,
                message: args.message,
            }),
        })
    }
}

fn reach(args: &Args) -> Result<Reach> {
    Ok(Reach {
        places: places(
            &args.servers,
            args.servers_file.as_deref(),
            args.machine.as_deref(),
        )?,
        backend: args.backend,
        connect: ConnectOptions {
            timeout: args.connect_timeout,
            auth: args.auth,
        },
        parallel: args.parallel,
        verbose: args.verbose && args.output != Output::Json,
        json: args.output == Output::Json,
    })
}

/// The places named by `--server`/`/SERVER` (each may list several, comma-separated) and
/// `--servers-file`, in order, each once; this host when none is named. With `/VM:NAME`,
/// that machine on each.
pub fn places(
    servers: &[String],
    servers_file: Option<&str>,
    machine: Option<&str>,
) -> Result<Vec<Place>> {
    let mut names: Vec<String> = Vec::new();
    for value in servers {
        for name in value.split(',') {
            let name = name.trim();
            if name.is_empty() {
                return Err(Error::invalid(format!("empty server name in '{value}'")));
            }
            names.push(name.to_string());
        }
    }
    if let Some(path) = servers_file {
        names.extend(read_servers_file(path)?);
    }
    if names.is_empty() {
        names.push(".".into());
    }
    let mut places: Vec<Place> = Vec::new();
    for name in names {
        let (label, host) = if host::is_local(&name) {
            (host::hostname(), HostRef::Local)
        } else {
            let host = Host::parse(&name)?;
            (host.label.clone(), HostRef::Ssh(host))
        };
        let place = Place {
            label,
            host,
            machine: machine.map(String::from),
        };
        if !places.contains(&place) {
            places.push(place);
        }
    }
    Ok(places)
}

/// The largest servers file accepted (a fleet of tens of thousands of hosts fits).
const SERVERS_FILE_MAX: usize = 1 << 20;

/// How long a servers file that is a pipe may take to come to its end.
const SERVERS_FILE_WAIT: Duration = Duration::from_secs(10);

/// One host per line; `#` starts a comment; blank lines are skipped. The file must be text
/// (UTF-8, no NUL), at most 1 MiB, a file or a pipe (`<(cmd)`), and end within 10 s: a
/// name that turns out to be a FIFO nobody writes to, a device or a huge file is refused,
/// never waited on or read whole.
fn read_servers_file(path: &str) -> Result<Vec<String>> {
    let bad = |why: &str| Error::invalid(format!("cannot read servers file '{path}': {why}"));
    let bytes = crate::system::files::read_bounded(path, SERVERS_FILE_MAX, SERVERS_FILE_WAIT)
        .map_err(|e| bad(&e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not text (not UTF-8)"))?;
    if text.contains('\0') {
        return Err(bad("it is not text (it holds NUL bytes)"));
    }
    let names = parse_servers_file(&text);
    if names.is_empty() {
        // An empty list must not fall back to this host: `--all` would act here.
        return Err(bad("it names no server"));
    }
    Ok(names)
}

fn parse_servers_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(p: &[Place]) -> Vec<String> {
        p.iter().map(|p| p.label.clone()).collect()
    }

    #[test]
    fn no_server_is_this_host() {
        let p = places(&[], None, None).expect("plan");
        assert_eq!(p.len(), 1);
        assert!(p[0].is_this_host());
    }

    #[test]
    fn comma_lists_and_repeats_deduplicated() {
        let p = places(&["h1,h2".into(), "h3".into(), "h1".into()], None, None).expect("plan");
        assert_eq!(labels(&p), ["h1", "h2", "h3"]);
        assert!(p.iter().all(|p| matches!(p.host, HostRef::Ssh(_))));
        let p = places(&["localhost,.".into()], None, None).expect("plan");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].host, HostRef::Local);
    }

    #[test]
    fn a_machine_is_on_every_place() {
        let p = places(&["h1,.".into()], None, Some("web1")).expect("plan");
        assert!(p.iter().all(|p| p.machine.as_deref() == Some("web1")));
        assert!(!p[1].is_this_host());
    }

    #[test]
    fn bad_names_are_refused_before_anything() {
        for bad in ["h1,,h2", "h1,-oProxyCommand=x", "a;b", "$(x)", "`x`"] {
            assert!(places(&[bad.into()], None, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_file_comments_and_blanks() {
        assert_eq!(
            parse_servers_file("# fleet\nh1\n\n  h2  # rack 2\n#h3\nbob@h4:2222\n"),
            ["h1", "h2", "bob@h4:2222"]
        );
    }
}
