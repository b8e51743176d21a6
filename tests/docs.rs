//! The committed man page and completions are what the clap definition generates today.
//! `LOGOFF_UPDATE_DOCS=1 cargo test --test docs` rewrites them.

#[test]
fn committed_man_page_and_completions_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var("LOGOFF_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, generated) in logoff::cli::docs::files() {
        let file = root.join(path);
        if update {
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&file, &generated).expect("write");
            continue;
        }
        match std::fs::read(&file) {
            Ok(committed) if committed == generated => {}
            _ => stale.push(path),
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run LOGOFF_UPDATE_DOCS=1 cargo test --test docs and commit"
    );
}

#[test]
fn the_man_page_carries_the_seed_syntax_and_the_exit_statuses() {
    let man = String::from_utf8(logoff::cli::docs::man_page()).expect("utf-8");
    assert!(man.contains("LOGOFF [sessionname | sessionid]"), "{man}");
    assert!(man.contains("Exit status"), "{man}");
    assert!(man.contains("\\-\\-grace"), "{man}");
}

#[test]
fn the_policy_examples_in_the_man_page_and_readme_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let man = std::fs::read_to_string(root.join("doc/logoff-policy.5")).expect("man page");
    let example = man
        .split(".nf\n")
        .nth(1)
        .and_then(|rest| rest.split(".fi\n").next())
        .expect("an example");
    let example = example.replace("\\-", "-");
    let policy = logoff::policy::from_text(&example).expect("the man page's example");
    assert_eq!(policy.rules.len(), 2);
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let toml = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().expect("a block"))
        .collect::<Vec<_>>();
    assert!(!toml.is_empty(), "README has a policy example");
    for block in toml {
        logoff::policy::from_text(block).expect("README's policy example");
    }
}

#[test]
fn the_changelogs_name_this_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    let debian = std::fs::read_to_string(root.join("packaging/debian/changelog")).expect("it");
    assert!(
        debian.starts_with(&format!("logoff ({version}) ")),
        "packaging/debian/changelog does not begin with version {version}"
    );
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).expect("it");
    assert!(
        changelog.contains(&format!("## [{version}] - ")),
        "CHANGELOG.md has no section for {version}"
    );
}

/// The commands of README's Quick start, each the first `sh` block after its lead-in.
fn quick_start() -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let section = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Quick start section");
    let blocks: Vec<String> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().expect("a block").trim().to_string())
        .collect();
    assert!(blocks.len() >= 2, "Quick start has two commands: {section}");
    (blocks[0].clone(), blocks[1].clone())
}

/// Regression (issue 17, item 0): README's first command failed on a fresh clone with
/// "could not determine which binary to run". It is run here as written, in the
/// repository, with the suite's own target directory; the second is the one `.ci/run` runs
/// (running it here would run this suite inside itself).
#[test]
fn the_quick_start_commands_run_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (build_and_run, test_suite) = quick_start();
    assert!(build_and_run.starts_with("cargo run"), "{build_and_run}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build_and_run)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`{build_and_run}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SESSIONNAME") || stdout.contains("No sessions."),
        "`{build_and_run}` printed no session list: {stdout}"
    );
    // `sudo scripts/test` (or, as root, `scripts/test`): what CI's entry point runs.
    let script = test_suite.trim_start_matches("sudo ").to_string();
    assert!(root.join(&script).is_file(), "{script} is not a file");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == format!("exec {script}")),
        ".ci/run does not run {script}: {ci}"
    );
}
