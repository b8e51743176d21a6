//! The crate's layers (issues 18 and 28), from the ground up: each module imports only those
//! of the layers below its own (and, at the ground, its neighbours). A file that reaches up
//! breaks the build's picture of what depends on what; this test names it.

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

/// The files of module `name`: `src/<name>.rs` and everything below `src/<name>/`.
fn sources_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        found.push(file);
    }
    let dir = src.join(name);
    if dir.is_dir() {
        found.extend(sources(&dir));
    }
    assert!(!found.is_empty(), "no module {name} in src/");
    found
}

/// The crate's layers, the ground first. `lib.rs` says what each is for.
const LAYERS: &[&[&str]] = &[
    &["model", "error", "text", "time", "duration", "deadline"],
    &["system"],
    &["desktop"],
    &["presence"],
    &["backend"],
    &["select"],
    &["logoff"],
    &["policy"],
    &["output"],
    &["audit"],
    &["remote"],
    &["daemon"],
    &["cli"],
];

/// The lines of the files below `src/<below>` that name `crate::<above>`.
fn reaching_up(below: &str, above: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let needle = format!("crate::{above}");
    let mut lines = Vec::new();
    let mut files = sources_of(&src, below);
    files.sort();
    for file in files {
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

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let mut found = Vec::new();
    for (at, layer) in LAYERS.iter().enumerate() {
        for below in *layer {
            for above in LAYERS[at + 1..].iter().flat_map(|l| l.iter()) {
                found.extend(reaching_up(below, above));
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports that reach up:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_module_has_its_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layered: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for entry in std::fs::read_dir(&src).expect("read src/") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if ["lib", "main", "bin"].contains(&name) {
            continue;
        }
        assert!(
            layered.contains(&name),
            "src/{name} is in no layer of LAYERS"
        );
    }
}

/// The names issue 28 made single stay single: one planner, one request, no second
/// `Action` or `Event` type, and no folder the remote feature hides in.
#[test]
fn one_name_per_thing() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for gone in [
        "transport",
        "cli/agent.rs",
        "cli/plan.rs",
        "backend/relay",
        "backend/desktop.rs",
        "system/x11",
        "system/xrdp.rs",
        "policy/published.rs",
        "daemon/plan.rs",
    ] {
        assert!(!src.join(gone).exists(), "src/{gone} is back");
    }
    let mut defined: std::collections::HashMap<String, Vec<String>> = Default::default();
    for file in sources(&src) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [vis, kind, name, ..] = words[..]
                && vis.starts_with("pub")
                && (kind == "struct" || kind == "enum" || kind == "trait")
            {
                let name = name
                    .trim_end_matches(['{', '(', ';', '<'])
                    .split('<')
                    .next()
                    .unwrap_or("");
                let shown = file
                    .strip_prefix(&src)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                defined.entry(name.to_string()).or_default().push(shown);
            }
        }
    }
    for name in [
        "Plan", "Action", "Event", "Targets", "Reach", "Request", "State",
    ] {
        let places = defined.get(name).cloned().unwrap_or_default();
        assert!(places.len() <= 1, "{name} is defined in {places:?}");
    }
}
