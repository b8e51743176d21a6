//! The man page and the shell completions, generated from the one clap definition
//! ([`super::args::command`]). The generated files are committed (`doc/`, `completions/`);
//! a test checks they are current (`LOGOFF_UPDATE_DOCS=1 cargo test --test docs` rewrites
//! them).

use clap_complete::Shell;

use super::args;

/// The generated files: path in the repository, and contents.
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("doc/logoff.1", man_page()),
        ("doc/logoffd.8", daemon_man_page()),
        ("doc/tsdiscon.1", tsdiscon_man_page()),
        ("completions/logoff.bash", completion(Shell::Bash)),
        ("completions/_logoff", completion(Shell::Zsh)),
        ("completions/logoff.fish", completion(Shell::Fish)),
    ]
}

/// logoff(1), with the seed's syntax and the exit statuses.
pub fn man_page() -> Vec<u8> {
    let cmd = args::command().long_about(format!(
        "{}\n\nThe original's syntax and switches are accepted as they are:\n\n{}",
        args::LONG_ABOUT,
        args::SEED_USAGE
    ));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd)
        .date("2026-11-24")
        .manual("User Commands")
        .render(&mut out);
    out
}

/// tsdiscon(1): logoff under the name Remote Desktop's users know disconnect by. Its
/// options are logoff's (tsdiscon is `logoff --disconnect`).
pub fn tsdiscon_man_page() -> Vec<u8> {
    let cmd = args::command()
        .name(args::TSDISCON)
        .bin_name(args::TSDISCON)
        .about("Disconnects a session: its connection ends, its programs keep running")
        .long_about(format!(
            "tsdiscon is logoff --disconnect (a link to logoff(1)): it ends a session's \
             connection and nothing else. An RDP session's xrdp connection process ends; \
             Xorg, the desktop and the user's programs keep running and the user's next RDP \
             login reconnects to them. An ssh session's sshd connection processes end; what \
             runs under tmux, screen or nohup keeps running, and a shell that is not under \
             one of them gets SIGHUP, as when a network drops. A session with no connection \
             to end (a console, a local X session) is left untouched (exit status 7). Every \
             option of logoff(1) is accepted.\n\nThe original's syntax:\n\n{}",
            args::TSDISCON_USAGE
        ));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd)
        .date("2026-12-05")
        .manual("User Commands")
        .render(&mut out);
    out
}

/// logoffd(8).
pub fn daemon_man_page() -> Vec<u8> {
    let cmd = crate::daemon::command();
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd)
        .section("8")
        .date("2026-11-27")
        .manual("System Administration")
        .render(&mut out);
    out
}

pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = args::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "logoff", &mut out);
    out
}
