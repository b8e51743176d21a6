//! The crate's layers (issue 18): `system/` is below the output, and the policy and the
//! daemon are below the command line. A file that reaches up breaks the build's picture of
//! what depends on what; this test names it.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

/// The lines of the files below `src/<below>` that name `crate::<above>`.
fn reaching_up(below: &str, above: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let needle = format!("crate::{above}");
    let mut lines = Vec::new();
    for file in sources(&src.join(below)) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let named = code.match_indices(&needle).any(|(at, _)| {
                // `crate::output` and `crate::output::x`, not `crate::outputs`.
                !code[at + needle.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if named {
                let shown = file.strip_prefix(&src).unwrap_or(&file).display();
                lines.push(format!("src/{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    lines
}

#[test]
fn nothing_in_system_reaches_the_output() {
    let found = reaching_up("system", "output");
    assert!(
        found.is_empty(),
        "system/ imports output/:\n{}",
        found.join("\n")
    );
}

#[test]
fn neither_policy_nor_daemon_reaches_the_command_line() {
    let mut found = reaching_up("policy", "cli");
    found.extend(reaching_up("daemon", "cli"));
    assert!(found.is_empty(), "imports of cli/:\n{}", found.join("\n"));
}
