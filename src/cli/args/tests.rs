use super::*;
use crate::error::Kind;

fn p(args: &[&str]) -> Result<Args> {
    parse(
        std::iter::once("logoff")
            .chain(args.iter().copied())
            .map(OsString::from),
    )
}

fn ok(args: &[&str]) -> Args {
    p(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn invalid(args: &[&str]) -> Error {
    let e = p(args).expect_err(&format!("{args:?} accepted"));
    assert_eq!(e.kind(), Kind::InvalidParameters, "{args:?}: {e}");
    e
}

#[test]
fn no_arguments_is_the_current_session() {
    let a = ok(&[]);
    assert_eq!(a.mode, Mode::Logoff);
    assert!(a.sessions.is_empty());
    assert!(a.servers.is_empty());
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert!(!a.verbose && !a.vm && a.console == ConsolePolicy::Protect);
    assert_eq!(a.output, Output::Table);
}

#[test]
fn session_by_id_and_by_name() {
    assert_eq!(ok(&["12"]).sessions, ["12"]);
    assert_eq!(ok(&["pts/3"]).sessions, ["pts/3"]);
    assert_eq!(ok(&["/dev/pts/3"]).sessions, ["/dev/pts/3"]);
    assert_eq!(ok(&["12", "pts/3", "c1"]).sessions, ["12", "pts/3", "c1"]);
    assert_eq!(ok(&["--", "-weird"]).sessions, ["-weird"]);
}

#[test]
fn every_server_spelling() {
    for args in [
        &["/SERVER:h1"][..],
        &["/server:h1"],
        &["/Server:h1"],
        &["--server", "h1"],
        &["--server=h1"],
    ] {
        assert_eq!(ok(args).servers, ["h1"], "{args:?}");
    }
    assert_eq!(ok(&["TERM04", "/server:Server1"]).sessions, ["TERM04"]);
}

#[test]
fn filters_and_warnings() {
    let a = ok(&[
        "--user",
        "bob",
        "--user",
        "1002",
        "--state",
        "idle",
        "--idle-for",
        "1h",
    ]);
    assert_eq!(a.filters.users, ["bob", "1002"]);
    assert_eq!(a.filters.states, [StateFilter::Idle]);
    assert_eq!(a.filters.idle_for, Some(Duration::from_secs(3600)));
    assert!(a.filters.given());
    assert!(!ok(&[]).filters.given());
    assert_eq!(ok(&["--remote"]).filters.remote, Some(true));
    assert_eq!(ok(&["--local"]).filters.remote, Some(false));
    assert!(ok(&["--all"]).filters.all);
    assert_eq!(
        ok(&["--from", "10.0.0.5"]).filters.from,
        Some(crate::select::HostSpec::Host("10.0.0.5".into()))
    );
    let a = ok(&["--message", "bye", "--grace", "5m", "--dry-run"]);
    assert_eq!(a.message.as_deref(), Some("bye"));
    assert_eq!(a.grace, Duration::from_secs(300));
    assert!(a.dry_run);
    invalid(&["--remote", "--local"]);
    invalid(&["--state", "sleepy"]);
    invalid(&["--user", ""]);
    invalid(&["--message", " "]);
    invalid(&["--grace", "soon"]);
    invalid(&["--idle-for", "-1h"]);
}

#[test]
fn many_servers() {
    let a = ok(&["/SERVER:h1,h2", "--server", "h3"]);
    assert_eq!(a.servers, ["h1,h2", "h3"]);
    assert_eq!(
        ok(&["--servers-file", "fleet.txt"]).servers_file.as_deref(),
        Some("fleet.txt")
    );
    assert_eq!(ok(&[]).parallel, 16);
    assert_eq!(ok(&["--parallel", "3"]).parallel, 3);
    invalid(&["--parallel", "0"]);
    assert_eq!(
        ok(&["--connect-timeout", "2s"]).connect_timeout,
        Duration::from_secs(2)
    );
    assert_eq!(ok(&[]).auth, Auth::Batch);
    assert_eq!(ok(&["--ask-password"]).auth, Auth::Interactive);
    invalid(&["/VM:a;b", "7"]);
}

#[test]
fn every_verbose_and_vm_spelling() {
    for args in [&["/V"][..], &["/v"], &["-v"], &["--verbose"]] {
        assert!(ok(args).verbose, "{args:?}");
    }
    for args in [&["12", "/VM"][..], &["12", "/vm"], &["12", "--vm"]] {
        assert!(ok(args).vm, "{args:?}");
    }
    let a = ok(&["12", "/VM:web1"]);
    assert!(a.vm);
    assert_eq!(a.machine.as_deref(), Some("web1"));
}

#[test]
fn help_spellings() {
    assert_eq!(ok(&["/?"]).mode, Mode::SeedHelp);
    assert_eq!(ok(&["-?"]).mode, Mode::SeedHelp);
    assert_eq!(ok(&["-h"]).mode, Mode::Help);
    assert_eq!(ok(&["--help"]).mode, Mode::Help);
    assert_eq!(ok(&["--version"]).mode, Mode::Version);
}

/// Regression (issue 18): `logoff --version --user ''` said "empty user name". Help and
/// version are answered before anything else is looked at.
#[test]
fn help_and_version_come_before_validation() {
    assert_eq!(ok(&["--version", "--user", ""]).mode, Mode::Version);
    assert_eq!(ok(&["--help", "--timeout", "soon"]).mode, Mode::Help);
    assert_eq!(ok(&["/bogus", "/?"]).mode, Mode::SeedHelp);
    assert_eq!(ok(&["--version", "/?"]).mode, Mode::SeedHelp);
    // After `--`, they are session names.
    invalid(&["--user", "", "--", "--version"]);
}

#[test]
fn list_and_json() {
    let a = ok(&["-l", "--json"]);
    assert_eq!(a.mode, Mode::List);
    assert_eq!(a.output, Output::Json);
    assert_eq!(ok(&["--list", "--no-legend"]).mode, Mode::List);
}

#[test]
fn backend_choice() {
    assert_eq!(ok(&[]).backend, crate::backend::Choice::Auto);
    assert_eq!(
        ok(&["--backend", "logind"]).backend,
        crate::backend::Choice::Logind
    );
    assert_eq!(
        ok(&["--backend=procfs"]).backend,
        crate::backend::Choice::Procfs
    );
    invalid(&["--backend", "consolekit"]);
}

#[test]
fn timeout_forms() {
    assert_eq!(ok(&["--timeout", "0"]).timeout, Duration::ZERO);
    assert_eq!(ok(&["--timeout=2s"]).timeout, Duration::from_secs(2));
    assert_eq!(
        ok(&["--timeout", "500ms"]).timeout,
        Duration::from_millis(500)
    );
    invalid(&["--timeout", "soon"]);
    invalid(&["--timeout", "-1s"]);
}

#[test]
fn invalid_forms() {
    invalid(&["--bogus"]);
    invalid(&["-x"]);
    invalid(&["/x"]);
    invalid(&["/SERVER"]);
    invalid(&["/SERVER:"]);
    invalid(&["/SERVER:a", "/SERVER:b"]);
    invalid(&["--server"]);
    invalid(&["--server="]);
    invalid(&[""]);
    invalid(&["   "]);
    invalid(&["/VM"]);
    invalid(&["--vm"]);
    invalid(&["/VM:"]);
    invalid(&["--timeout"]);
}

#[test]
fn vm_without_id_names_the_problem() {
    let e = invalid(&["/VM"]);
    assert!(e.message().contains("session"), "{e}");
}

#[test]
fn unknown_option_is_named() {
    let e = invalid(&["--bogus"]);
    assert!(e.message().contains("--bogus"), "{e}");
}

#[test]
fn long_help_starts_with_seed_usage_and_lists_options() {
    let h = long_help();
    assert!(h.starts_with(SEED_USAGE));
    for opt in [
        "--server",
        "--verbose",
        "--list",
        "--json",
        "--timeout",
        "--console",
    ] {
        assert!(h.contains(opt), "{opt} missing from --help");
    }
    assert!(h.contains("Exit status:"));
}

#[test]
fn clap_definition_is_consistent() {
    command().debug_assert();
}

#[test]
fn tsdiscon_is_logoff_disconnect_and_takes_it_said_again() {
    let tsdiscon = |args: &[&str]| {
        parse(
            std::iter::once("/usr/bin/tsdiscon")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    };
    let a = tsdiscon(&["12"]).expect("tsdiscon 12");
    assert_eq!(a.action, crate::logoff::Action::Disconnect);
    let a = tsdiscon(&["--disconnect", "12"]).expect("tsdiscon --disconnect 12");
    assert_eq!(a.action, crate::logoff::Action::Disconnect);
    assert_eq!(a.sessions, ["12"]);
}
