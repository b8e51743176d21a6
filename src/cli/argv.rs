//! The seed's `/SWITCH` spellings, rewritten into GNU options before clap sees them.
//!
//! Only the seed's own switch names are rewritten (`/SERVER:name`, `/V`, `/VM`, `/VM:name`,
//! `/?`, case-insensitive), so that a session name such as `/dev/pts/3` passes through
//! untouched. An argument shaped like a switch (`/word` or `/word:value`, no second `/`) that
//! is not one of them is an invalid parameter, as it is for the original. Nothing after `--`
//! is rewritten. `-?` is the GNU spelling of `/?`.

use std::ffi::OsString;

use crate::error::{Error, Result};

/// Hidden long options the rewrite produces for forms that have no GNU twin.
pub const SEED_HELP: &str = "--seed-help";

/// Rewrites `args` (without the program name) into GNU form.
pub fn rewrite(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut seed_server_seen = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if arg == "-?" {
            out.push(SEED_HELP.into());
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
    fn invalid_switch_message_names_it() {
        let err = rw(&["/bogus"]).expect_err("invalid");
        assert!(err.message().contains("/bogus"), "{err}");
    }
}
