//! The `logoffd` executable: everything lives in the library; see `logoff::daemon`.

fn main() -> std::process::ExitCode {
    logoff::daemon::main()
}
