//! The `logoff` executable: everything lives in the library; see `logoff::cli`.

fn main() -> std::process::ExitCode {
    logoff::cli::main()
}
