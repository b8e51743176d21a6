//! The seed's `/SWITCH` spellings, rewritten into GNU options before clap sees them.
//!
//! Only the seed's own switch names are rewritten (`/SERVER:name`, `/V`, `/VM`, `/VM:name`,
//! `/?`, case-insensitive), so that a session name such as `/dev/pts/3` passes through
//! untouched. An argument shaped like a switch (`/word` or `/word:value`, no second `/`) that
//! is not one of them is an invalid parameter, as it is for the original. Nothing after `--`
//! is rewritten. `-?` is the GNU spelling of `/?`.
//!
//! Nor is the value of an option: `--message /V` writes "/V", `--user /x` looks for a user
//! named "/x". Which arguments are values is read from the clap definition itself
//! ([`super::args::command`]), by clap's own rules (see [`Options`]), so that an option added
//! there can never have its value taken for a switch here.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use crate::error::{Error, Result};

/// Hidden long options the rewrite produces for forms that have no GNU twin.
pub const SEED_HELP: &str = "--seed-help";

/// Rewrites `args` (without the program name) into GNU form.
pub fn rewrite(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    rewrite_for(Options::ours(), args)
}

/// What the clap definition says about its options that take values: by every long name and
/// alias (without `--`) and every short name and alias.
struct Options {
    long: HashMap<String, Values>,
    short: HashMap<char, Values>,
}

/// How clap reads the values of one option given without an attached value (`--message`,
/// not `--message=TEXT`): the arguments after it, up to `max` of them, stopping at one
/// that looks like an option (`-x`, `--x`) or at `--`, unless the option takes values that
/// begin with `-`; a value terminator ends them (and is no value).
#[derive(Debug, Clone)]
struct Values {
    max: usize,
    hyphen_values: bool,
    negative_numbers: bool,
    terminator: Option<String>,
}

impl Values {
    /// Whether clap reads `arg`, following the option, as one of its values.
    fn takes(&self, arg: &OsStr) -> bool {
        if self.hyphen_values {
            return true;
        }
        match arg.as_encoded_bytes() {
            // `--`, or a long option.
            [b'-', b'-', ..] => false,
            [b'-', rest @ ..] if !rest.is_empty() => self.negative_numbers && is_number(rest),
            _ => true,
        }
    }
}

/// `3`, `0.3`, `1.`, `1.2e10` (after the `-`): what clap takes for a negative number (digits,
/// one `.` and one `e` after the first, no `e` last), as `clap_lex` decides it.
fn is_number(arg: &[u8]) -> bool {
    let mut seen_dot = false;
    let mut position_of_e = None;
    for (i, c) in arg.iter().enumerate() {
        match c {
            b'0'..=b'9' => {}
            b'.' if !seen_dot && position_of_e.is_none() && i > 0 => seen_dot = true,
            b'e' | b'E' if position_of_e.is_none() && i > 0 => position_of_e = Some(i),
            _ => return false,
        }
    }
    position_of_e.is_none_or(|i| i != arg.len() - 1)
}

impl Options {
    /// logoff's own, read from its clap definition once.
    fn ours() -> &'static Options {
        static OURS: std::sync::OnceLock<Options> = std::sync::OnceLock::new();
        OURS.get_or_init(|| Options::of(super::args::command()))
    }

    /// Reads `command`'s options. Built first, so that every argument's number of values is
    /// set (a flag's is zero), as clap's parser sees it.
    fn of(mut command: clap::Command) -> Self {
        command.build();
        let mut options = Options {
            long: HashMap::new(),
            short: HashMap::new(),
        };
        for arg in command.get_arguments().filter(|a| !a.is_positional()) {
            let Some(range) = arg
                .get_num_args()
                .filter(clap::builder::ValueRange::takes_values)
            else {
                continue;
            };
            // `--opt=value` only: the next argument is never its value.
            if arg.is_require_equals_set() {
                continue;
            }
            let values = Values {
                max: range.max_values(),
                hyphen_values: arg.is_allow_hyphen_values_set(),
                negative_numbers: arg.is_allow_negative_numbers_set(),
                terminator: arg.get_value_terminator().map(|t| t.as_str().to_owned()),
            };
            let longs = arg
                .get_long()
                .into_iter()
                .chain(arg.get_all_aliases().unwrap_or_default());
            for long in longs {
                options.long.insert(long.to_owned(), values.clone());
            }
            let shorts = arg
                .get_short()
                .into_iter()
                .chain(arg.get_all_short_aliases().unwrap_or_default());
            for short in shorts {
                options.short.insert(short, values.clone());
            }
        }
        options
    }

    /// The values `arg` leaves to be read from the arguments after it, if it is an option
    /// that takes values and none is attached (`--message`, `-m`, `-vm`; not `--message=x`,
    /// `-mx`, `-v`).
    fn pending_after(&self, arg: &OsStr) -> Option<&Values> {
        let text = arg.to_str()?;
        if let Some(long) = text.strip_prefix("--") {
            // `--name=value` is whole; `--` itself is handled before.
            return if long.contains('=') {
                None
            } else {
                self.long.get(long)
            };
        }
        // A cluster of short flags: the first that takes a value takes the rest of the
        // argument, or, if nothing is left, the arguments after it.
        // (A letter that is no option is clap's to refuse.)
        for (i, c) in text.strip_prefix('-')?.char_indices() {
            if let Some(values) = self.short.get(&c) {
                let rest = &text[1 + i + c.len_utf8()..];
                return rest.is_empty().then_some(values);
            }
        }
        None
    }
}

/// Which arguments are values of the option before them, argument by argument.
struct Reading<'o> {
    options: &'o Options,
    /// The option whose values come next, and how many it may still take.
    pending: Option<(&'o Values, usize)>,
}

impl<'o> Reading<'o> {
    fn new(options: &'o Options) -> Self {
        Reading {
            options,
            pending: None,
        }
    }

    /// Whether `arg`, the next argument, is the value of an option before it. After an
    /// option that takes values, a value passes; a terminator (a value too) ends them. An
    /// option or `--` ends them as well, and is read as one (too few values is clap's to
    /// report).
    fn is_value(&mut self, arg: &OsStr) -> bool {
        if let Some((values, left)) = self.pending.take()
            && values.takes(arg)
        {
            let ends = values.terminator.as_deref().is_some_and(|t| arg == t) || left <= 1;
            if !ends {
                self.pending = Some((values, left - 1));
            }
            return true;
        }
        if arg != "--"
            && let Some(values) = self.options.pending_after(arg)
        {
            self.pending = Some((values, values.max));
        }
        false
    }
}

/// The arguments before `--` that are no option's value: where a switch (`/?`, `--help`)
/// may be. `--message /?` asks for no help.
pub fn not_values(args: &[OsString]) -> Vec<&OsString> {
    let mut reading = Reading::new(Options::ours());
    args.iter()
        .take_while(|a| *a != "--")
        .filter(|a| !reading.is_value(a))
        .collect()
}

/// Rewrites `args` for the command line `options` describes.
fn rewrite_for(
    options: &Options,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut seed_server_seen = false;
    let mut reading = Reading::new(options);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // A value passes untouched.
        if reading.is_value(&arg) {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if arg == "-?" {
            out.push(SEED_HELP.into());
            continue;
        }
        if options.pending_after(&arg).is_some() {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            // Not UTF-8: cannot be one of our switches; clap reports it if it matters.
            out.push(arg);
            continue;
        };
        let Some((name, value)) = switch_shape(text) else {
            out.push(arg);
            continue;
        };
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), value) {
            ("?", None) => out.push(SEED_HELP.into()),
            ("v", None) => out.push("--verbose".into()),
            ("vm", None) => out.push("--vm".into()),
            ("vm", Some(machine)) => {
                if machine.is_empty() {
                    return Err(Error::invalid("/VM: needs a machine name (/VM:name)"));
                }
                out.push(format!("--machine={machine}").into());
            }
            ("server", Some(server)) => {
                if seed_server_seen {
                    return Err(Error::invalid(
                        "/SERVER given more than once (name several hosts as /SERVER:h1,h2)",
                    ));
                }
                seed_server_seen = true;
                if server.is_empty() {
                    return Err(Error::invalid(
                        "/SERVER: needs a server name (/SERVER:servername)",
                    ));
                }
                out.push(format!("--server={server}").into());
            }
            ("server", None) => {
                return Err(Error::invalid(
                    "/SERVER needs a server name (/SERVER:servername)",
                ));
            }
            _ => return Err(Error::invalid(format!("unknown switch '{text}'"))),
        }
    }
    Ok(out)
}

/// `/NAME` or `/NAME:VALUE` where NAME is letters or `?` — the shape of a seed switch.
/// `/dev/pts/3` is not switch-shaped (its name would contain `/`).
fn switch_shape(arg: &str) -> Option<(&str, Option<&str>)> {
    let rest = arg.strip_prefix('/')?;
    let (name, value) = match rest.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (rest, None),
    };
    let shaped = !name.is_empty() && (name == "?" || name.bytes().all(|b| b.is_ascii_alphabetic()));
    shaped.then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Result<Vec<String>> {
        rewrite(args.iter().map(OsString::from)).map(|v| {
            v.into_iter()
                .map(|s| s.into_string().expect("utf-8"))
                .collect()
        })
    }

    #[test]
    fn seed_switches_any_case() {
        for (input, want) in [
            ("/v", "--verbose"),
            ("/V", "--verbose"),
            ("/vm", "--vm"),
            ("/VM", "--vm"),
            ("/Vm", "--vm"),
            ("/?", SEED_HELP),
            ("-?", SEED_HELP),
            ("/server:x", "--server=x"),
            ("/SERVER:x", "--server=x"),
            ("/Server:Host.Example", "--server=Host.Example"),
            ("/SERVER:bob@h:2222", "--server=bob@h:2222"),
            ("/VM:web1", "--machine=web1"),
        ] {
            assert_eq!(rw(&[input]).expect(input), [want], "{input}");
        }
    }

    #[test]
    fn session_names_pass_through() {
        for name in ["/dev/pts/3", "pts/3", "12", "console", ":10", "tty2", "c1"] {
            assert_eq!(rw(&[name]).expect(name), [name]);
        }
    }

    #[test]
    fn nothing_rewritten_after_double_dash() {
        assert_eq!(
            rw(&["/v", "--", "/v", "-?", "/SERVER:x"]).expect("ok"),
            ["--verbose", "--", "/v", "-?", "/SERVER:x"]
        );
    }

    #[test]
    fn gnu_options_pass_through() {
        assert_eq!(
            rw(&["--server", "x", "-v", "--vm", "--list"]).expect("ok"),
            ["--server", "x", "-v", "--vm", "--list"]
        );
    }

    #[test]
    fn invalid_switches() {
        for bad in [
            vec!["/SERVER"],
            vec!["/SERVER:"],
            vec!["/server:a", "/SERVER:b"],
            vec!["/x"],
            vec!["/verbose"],
            vec!["/VM:"],
            vec!["/tmp"],
        ] {
            let err = rw(&bad).expect_err(&format!("{bad:?}"));
            assert_eq!(err.kind(), crate::error::Kind::InvalidParameters, "{bad:?}");
        }
    }

    #[test]
    fn message_value_is_not_a_switch() {
        for text in [
            "/V",
            "/v",
            "/Shutdown",
            "/?",
            "/SERVER:x",
            "/VM",
            "/VM:web1",
        ] {
            assert_eq!(
                rw(&["--message", text]).expect(text),
                ["--message", text],
                "{text}"
            );
        }
    }

    #[test]
    fn real_switch_beside_a_message_value_is_rewritten() {
        assert_eq!(
            rw(&["/V", "--message", "/V", "/V", "12"]).expect("ok"),
            ["--verbose", "--message", "/V", "--verbose", "12"]
        );
        assert_eq!(
            rw(&["--message=/V", "/V"]).expect("ok"),
            ["--message=/V", "--verbose"]
        );
    }

    #[test]
    fn every_option_value_passes_through() {
        let options = Options::of(super::super::args::command());
        for long in options.long.keys() {
            let opt = format!("--{long}");
            for value in ["/V", "/Shutdown", "/SERVER:x", "/bogus"] {
                assert_eq!(rw(&[&opt, value]).expect(&opt), [opt.as_str(), value]);
            }
        }
    }

    #[test]
    fn options_that_take_values_come_from_clap() {
        let options = Options::of(super::super::args::command());
        for long in [
            "server",
            "servers-file",
            "parallel",
            "connect-timeout",
            "machine",
            "timeout",
            "message",
            "grace",
            "user",
            "state",
            "idle-for",
            "from",
            "backend",
        ] {
            assert!(options.long.contains_key(long), "--{long} takes a value");
        }
        for flag in [
            "verbose",
            "vm",
            "list",
            "json",
            "all",
            "dry-run",
            "help",
            "seed-help",
        ] {
            assert!(!options.long.contains_key(flag), "--{flag} is a flag");
        }
        // Its short options are all flags: `-v /V` is verbose twice.
        assert!(options.short.is_empty(), "{:?}", options.short.keys());
        assert_eq!(rw(&["-v", "/V"]).expect("ok"), ["-v", "--verbose"]);
    }

    /// Abbreviated long options (`--mess` for `--message`) would be values' options the
    /// rewrite does not know: clap must refuse them.
    #[test]
    fn long_options_are_not_inferred() {
        let err = super::super::args::command()
            .try_get_matches_from(["logoff", "--mess", "x"])
            .expect_err("--mess is no option");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn option_value_then_switches_and_sessions() {
        assert_eq!(
            rw(&["--user", "/x", "/V", "pts/3", "--server", "/h", "/SERVER:y"]).expect("ok"),
            [
                "--user",
                "/x",
                "--verbose",
                "pts/3",
                "--server",
                "/h",
                "--server=y"
            ]
        );
    }

    #[test]
    fn option_or_double_dash_ends_the_values() {
        // `-v` is an option to clap, not --message's value (clap reports the missing value).
        assert_eq!(
            rw(&["--message", "-v", "/V"]).expect("ok"),
            ["--message", "-v", "--verbose"]
        );
        assert_eq!(
            rw(&["--message", "--", "/V"]).expect("ok"),
            ["--message", "--", "/V"]
        );
        assert_eq!(
            rw(&["--message", "-?"]).expect("ok"),
            ["--message", SEED_HELP]
        );
    }

    #[test]
    fn message_values_reach_args() {
        for text in ["/V", "/Shutdown", "/SERVER:x", "/?"] {
            let args =
                super::super::args::parse(["logoff", "--message", text, "12"].map(OsString::from))
                    .expect(text);
            assert_eq!(args.message.as_deref(), Some(text));
            assert_eq!(args.sessions, ["12"]);
            assert!(!args.verbose);
        }
        let args = super::super::args::parse(["logoff", "--user", "/V", "/V"].map(OsString::from))
            .expect("ok");
        assert_eq!(args.filters.users, ["/V"]);
        assert!(args.verbose);
        // Help asked for as a switch still is.
        let help =
            super::super::args::parse(["logoff", "--message", "x", "/?"].map(OsString::from))
                .expect("help");
        assert!(matches!(help.mode, super::super::args::Mode::SeedHelp));
    }

    /// A definition with what logoff's lacks: short options with values, several values,
    /// `=` required, hyphen values, negative numbers, a terminator.
    fn synthetic() -> clap::Command {
        use clap::{Arg, ArgAction, Command};
        Command::new("t")
            .arg(
                Arg::new("verbose")
                    .short('v')
                    .long("verbose")
                    .action(ArgAction::Count),
            )
            .arg(
                Arg::new("message")
                    .short('m')
                    .long("message")
                    .visible_alias("msg"),
            )
            .arg(Arg::new("pair").long("pair").num_args(2))
            .arg(
                Arg::new("some")
                    .long("some")
                    .num_args(1..)
                    .value_terminator(";"),
            )
            .arg(Arg::new("eq").long("eq").require_equals(true))
            .arg(Arg::new("any").long("any").allow_hyphen_values(true))
            .arg(Arg::new("n").long("n").allow_negative_numbers(true))
            .arg(Arg::new("sessions").num_args(0..))
    }

    /// The rewrite agrees with clap's own parse of what it produced: every `/V` it kept is
    /// an option's value, and every `--verbose` it wrote (or `-v` given) counts as verbose.
    #[test]
    fn clap_rules_for_values() {
        let options = Options::of(synthetic());
        for (input, want, clap_ok) in [
            (
                &["-m", "/V", "/V"][..],
                &["-m", "/V", "--verbose"][..],
                true,
            ),
            (&["-vm", "/V", "/V"], &["-vm", "/V", "--verbose"], true),
            (&["-mx", "/V"], &["-mx", "--verbose"], true),
            (&["-m=x", "/V"], &["-m=x", "--verbose"], true),
            (&["--msg", "/V", "/V"], &["--msg", "/V", "--verbose"], true),
            (
                &["--pair", "/V", "/V", "/V"],
                &["--pair", "/V", "/V", "--verbose"],
                true,
            ),
            (
                &["--some", "/V", "/V", ";", "/V"],
                &["--some", "/V", "/V", ";", "--verbose"],
                true,
            ),
            (
                &["--some", "/V", "-v", "/V"],
                &["--some", "/V", "-v", "--verbose"],
                true,
            ),
            (&["--any", "--", "/V"], &["--any", "--", "--verbose"], true),
            (&["--any", "-?", "/V"], &["--any", "-?", "--verbose"], true),
            (&["--n", "-1.5", "/V"], &["--n", "-1.5", "--verbose"], true),
            (&["--eq", "/V"], &["--eq", "--verbose"], false),
            (&["--n", "-x", "/V"], &["--n", "-x", "--verbose"], false),
            (
                &["--message", "-1", "/V"],
                &["--message", "-1", "--verbose"],
                false,
            ),
        ] {
            let got: Vec<String> = rewrite_for(&options, input.iter().map(OsString::from))
                .expect("ok")
                .into_iter()
                .map(|s| s.into_string().expect("utf-8"))
                .collect();
            assert_eq!(got, want, "{input:?}");
            let parsed =
                synthetic().try_get_matches_from(std::iter::once("t").chain(want.iter().copied()));
            assert_eq!(parsed.is_ok(), clap_ok, "{want:?}: {parsed:?}");
            let Ok(m) = parsed else { continue };
            let verbose = want
                .iter()
                .filter(|a| **a == "--verbose" || a.starts_with("-v"))
                .count();
            assert_eq!(usize::from(m.get_count("verbose")), verbose, "{want:?}");
            let values: usize = ["message", "pair", "some", "any", "n"]
                .iter()
                .filter_map(|id| m.get_many::<String>(id))
                .map(|v| v.filter(|v| *v == "/V").count())
                .sum();
            let kept = want.iter().filter(|a| **a == "/V").count();
            assert_eq!(values, kept, "{want:?}");
            assert!(m.get_many::<String>("sessions").is_none(), "{want:?}");
        }
    }

    #[test]
    fn negative_numbers_as_clap_sees_them() {
        for yes in ["1", "0.3", "1.", "1.2e10", "33.03"] {
            assert!(is_number(yes.as_bytes()), "{yes}");
        }
        for no in ["x", ".5", "1e", "1..2", "e1", "1-2"] {
            assert!(!is_number(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn invalid_switch_message_names_it() {
        let err = rw(&["/bogus"]).expect_err("invalid");
        assert!(err.message().contains("/bogus"), "{err}");
    }
}
