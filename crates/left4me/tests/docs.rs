//! The README and `docs/` stay true to the repository: the README's two
//! commands are the ones CI runs, the test command installs what the
//! package needs in the throwaway machine, every relative link leads to a
//! file, and every screenshot is one the browser test takes.

mod common;

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The README's first code block: one command a line, comments dropped.
fn readme_commands() -> Vec<String> {
    let readme = read("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a ```sh block");
    block
        .lines()
        .map(|line| line.split(" #").next().unwrap().trim().to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

/// The lines of a shell script that run something (comments, blank lines
/// and `set`/`cd` housekeeping dropped).
fn script_commands(path: &str) -> Vec<String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_starts_with_the_run_and_the_test_command_and_ci_runs_the_second() {
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "run and test: {commands:?}");
    let run = &commands[0];
    assert!(
        run.starts_with("cargo build --workspace") && run.ends_with("serve --demo"),
        "the first command builds and serves the demo: {run}"
    );
    let test = &commands[1];
    assert_eq!(test, "./run-tests");

    // .ci/run does exactly that and nothing of its own.
    assert_eq!(
        script_commands(".ci/run"),
        vec![format!("exec {test}")],
        ".ci/run runs the README's test command only"
    );
    let run_tests = script_commands("run-tests");
    for check in [
        "cargo fmt --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "cargo test --workspace --no-fail-fast",
        "fuzz/run 10",
        "cargo fmt --manifest-path fuzz/Cargo.toml --check",
    ] {
        assert!(
            run_tests.iter().any(|l| l == check),
            "run-tests runs `{check}`"
        );
    }
    assert_eq!(
        run_tests.last().map(String::as_str),
        Some("cargo test --workspace --no-fail-fast"),
        "the suite is the last step, so its exit status is the script's"
    );
}

/// The package test installs the `.deb` into a copy of this machine, so
/// every package it depends on must be one the test command installs.
#[test]
fn the_test_command_installs_every_package_the_deb_depends_on() {
    let manifest = read("crates/left4me/Cargo.toml");
    let depends = manifest
        .lines()
        .find_map(|l| l.strip_prefix("depends = \""))
        .expect("[package.metadata.deb] depends");
    let run_tests = read("run-tests");
    for dependency in depends.trim_end_matches('"').split(',').map(str::trim) {
        if dependency == "$auto" || dependency.contains('|') {
            // Libraries of the binary itself, and virtual packages any
            // Debian has (the system bus).
            continue;
        }
        let package = dependency.split_whitespace().next().unwrap();
        assert!(
            run_tests.contains(&format!("|{package}|")),
            "run-tests installs {package}, which the package depends on"
        );
    }
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of `](target)` links that are not web addresses.
fn local_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap().to_string())
        .filter(|t| !t.is_empty() && !t.contains("://"))
        .collect()
}

#[test]
fn every_link_in_the_docs_leads_to_a_file() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for target in local_links(&text) {
            if !dir.join(&target).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
    let readme = read("README.md");
    for page in [
        "panel",
        "api",
        "game",
        "workshop",
        "scripts",
        "cli",
        "production",
        "security",
        "benchmarks",
    ] {
        assert!(
            readme.contains(&format!("(docs/{page}.md)")),
            "the README links docs/{page}.md"
        );
    }
}

#[test]
fn every_screenshot_in_the_docs_comes_from_the_browser_test() {
    let images = repo().join("docs/images");
    let mut shown = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in local_links(&text) {
            if target.ends_with(".png") {
                shown.push(
                    Path::new(&target)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    assert!(
        shown.iter().any(|s| s == "server.png"),
        "the README shows the panel"
    );
    for image in &shown {
        assert!(
            common::DOC_IMAGES.iter().any(|(_, file)| file == image),
            "{image} is not taken by the browser test (add it to DOC_IMAGES)"
        );
    }
    for (shot, file) in common::DOC_IMAGES {
        let png = std::fs::read(images.join(file))
            .unwrap_or_else(|e| panic!("docs/images/{file} (shot {shot}): {e}"));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "docs/images/{file} is a PNG"
        );
    }
}
