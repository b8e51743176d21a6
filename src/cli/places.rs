//! Where the command acts: this host, other hosts over ssh, and within each, optionally a
//! machine registered with systemd-machined (`/VM:NAME`). Every host name is checked before
//! anything is touched anywhere.

use std::time::Duration;

use crate::backend::{self, Backend, Choice, logind::Logind};
use crate::error::{Error, Result};
use crate::system::host;
use crate::transport::{self, Host};

/// One place to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// As the user named it (or this host's name), for messages and the HOST column.
    pub label: String,
    pub reach: Reach,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Local,
    Ssh(Host),
}

/// The places named by `--server`/`/SERVER` (each may list several, comma-separated) and
/// `--servers-file`, in order, each once; this host when none is named.
pub fn plan(servers: &[String], servers_file: Option<&str>) -> Result<Vec<Place>> {
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
    let mut places: Vec<Place> = Vec::new();
    for name in names {
        let place = if host::is_local(&name) {
            Place {
                label: host::hostname(),
                reach: Reach::Local,
            }
        } else {
            let host = Host::parse(&name)?;
            Place {
                label: host.label.clone(),
                reach: Reach::Ssh(host),
            }
        };
        if !places.contains(&place) {
            places.push(place);
        }
    }
    if places.is_empty() {
        places.push(Place {
            label: host::hostname(),
            reach: Reach::Local,
        });
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

/// Checks a machine name: it is passed to systemd-stdio-bridge on the far side of ssh, where a
/// shell reads it, so only the characters machine names use are allowed.
pub fn check_machine(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{}' is not a machine name (letters, digits, '.', '-', '_')",
            name.escape_debug()
        )))
    }
}

/// Opens the session backend for a place (and machine, if one is named).
pub fn open(
    place: &Place,
    machine: Option<&str>,
    choice: Choice,
    ends_sessions: bool,
    connect_timeout: Duration,
    auth: transport::Auth,
) -> Result<Box<dyn Backend>> {
    let remote = !matches!(place.reach, Reach::Local) || machine.is_some();
    if remote && choice == Choice::Procfs {
        return Err(Error::invalid(
            "the procfs backend reads this host's /proc: it cannot reach another host or a \
             machine (use --backend logind or auto)",
        ));
    }
    match (&place.reach, machine) {
        (Reach::Local, None) => backend::open_local(choice, ends_sessions),
        (Reach::Local, Some(name)) => {
            let (conn, tunnel) = transport::machine_bus(name, connect_timeout)?;
            Ok(Box::new(Logind::through(
                conn,
                Some(tunnel),
                false,
                format!("machine {name}, through systemd-stdio-bridge --machine"),
            )?))
        }
        (Reach::Ssh(host), None) => {
            let (conn, tunnel) = transport::over_ssh(host, &[], connect_timeout, auth)?;
            Ok(Box::new(Logind::through(
                conn,
                Some(tunnel),
                false,
                format!("{} over ssh", host.label),
            )?))
        }
        (Reach::Ssh(host), Some(name)) => {
            let arg = format!("--machine={name}");
            let (conn, tunnel) = transport::over_ssh(host, &[&arg], connect_timeout, auth)?;
            Ok(Box::new(Logind::through(
                conn,
                Some(tunnel),
                false,
                format!("machine {name} on {} over ssh", host.label),
            )?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(p: &[Place]) -> Vec<String> {
        p.iter().map(|p| p.label.clone()).collect()
    }

    #[test]
    fn no_server_is_this_host() {
        let p = plan(&[], None).expect("plan");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].reach, Reach::Local);
    }

    #[test]
    fn comma_lists_and_repeats_deduplicated() {
        let p = plan(&["h1,h2".into(), "h3".into(), "h1".into()], None).expect("plan");
        assert_eq!(labels(&p), ["h1", "h2", "h3"]);
        assert!(p.iter().all(|p| matches!(p.reach, Reach::Ssh(_))));
        let p = plan(&["localhost,.".into()], None).expect("plan");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].reach, Reach::Local);
    }

    #[test]
    fn bad_names_are_refused_before_anything() {
        for bad in ["h1,,h2", "h1,-oProxyCommand=x", "a;b", "$(x)", "`x`"] {
            assert!(plan(&[bad.into()], None).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_file_comments_and_blanks() {
        assert_eq!(
            parse_servers_file("# fleet\nh1\n\n  h2  # rack 2\n#h3\nbob@h4:2222\n"),
            ["h1", "h2", "bob@h4:2222"]
        );
    }

    #[test]
    fn machine_names() {
        check_machine("web1").expect("ok");
        check_machine("my-container.v2").expect("ok");
        for bad in ["", "-x", "a b", "a;b", "$(x)", "a/b"] {
            assert!(check_machine(bad).is_err(), "{bad}");
        }
    }
}
