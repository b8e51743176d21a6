//! Writes what the packages install beyond the binaries, from the one clap definition: the
//! man pages (gzipped by `scripts/package`) and the shell completions, into the directory
//! given (`target/assets` by default).
//!
//! ```text
//! cargo run --release --example generate-assets -- DIR
//! ```

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/assets"), PathBuf::from);
    for (path, bytes) in logoff::cli::docs::files() {
        let dest = out.join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&dest, bytes)?;
    }
    // The policy's man page is written by hand (no clap definition describes a file format).
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("doc/logoff-policy.5");
    std::fs::copy(policy, out.join("doc/logoff-policy.5"))?;
    Ok(())
}
