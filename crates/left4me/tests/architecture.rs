//! The invariants of ARCHITECTURE.md that a reading of the source can
//! check, checked on every test run:
//!
//! 1. Only `left4me-host` starts or signals processes and touches mounts:
//!    no other crate's `src/` names the APIs for it. Tests and benchmarks
//!    (`tests/`, `benches/`) may start programs: that is how they test them.
//! 2. Route handlers (`left4me-web/src/routes/`) neither create directories
//!    nor bind sockets: they ask the operation layer (`left4me-files`,
//!    `StateRoot`, `left4me_host::ports`).
//! 3. The HTTP crate (`left4me-web`) reaches the store, the host, the job
//!    runner and the live state only through the operation layer
//!    (`left4me_app::ops`): no call of theirs in its source.
//! 4. In `left4me-app`, the engine (everything outside `ops/`) never uses
//!    `App` or the operations, which sit above it.
//! 5. The CLI's host-only subcommands (`instance`, `logs`, `query`/`rcon`,
//!    `demo`) do not go through the web crate.
//!
//! A line whose code (comments dropped) contains a forbidden name is a
//! violation, reported as `file:line`.

use std::path::{Path, PathBuf};

/// Names only `left4me-host` may use.
const PROCESS_AND_MOUNT_APIS: &[&str] = &[
    "std::process::Command",
    "Command::new(",
    "CommandExt",
    "tokio::process",
    "rustix::mount",
    "nix::mount",
    "libc::mount",
    "fsopen",
    "fsmount",
    "move_mount",
    "libc::kill",
    "nix::sys::signal",
    "kill_process",
];

/// Names route handlers may not use.
const ROUTE_FORBIDDEN: &[&str] = &["create_dir", "UdpSocket", "TcpListener", "socket2"];

/// What the engine below the operations (the runner, poller, schedulers,
/// builders) may not use: the operations sit above it, so nothing circles.
const ENGINE_FORBIDDEN: &[&str] = &["crate::App", "crate::ops", "use crate::{App"];

/// What the HTTP crate may not reach past the operation layer: the store,
/// the host, the job runner and the live state.
const BELOW_OPERATIONS: &[&str] = &[".store()", ".host()", ".jobs()", ".live()", "left4me_host"];

/// The CLI's modules for subcommands that only need the host.
const CLI_HOST_ONLY: &[&str] = &[
    "main.rs",
    "instance.rs",
    "logs.rs",
    "net.rs",
    "demo.rs",
    "game.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each line's code, with its number; `//` comments (doc comments
/// included) dropped.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| {
        let code = line.find("//").map_or(line, |at| &line[..at]);
        (i + 1, code)
    })
}

/// Every violation below `workspace` (which has `crates/NAME/src/`).
fn violations(workspace: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let crates = workspace.join("crates");
    let mut names: Vec<_> = std::fs::read_dir(&crates)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let src = crates.join(&name).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file.strip_prefix(workspace).unwrap().display().to_string();
            let mut rules: Vec<(&[&str], &str)> = Vec::new();
            if name != "left4me-host" {
                rules.push((
                    PROCESS_AND_MOUNT_APIS,
                    "only left4me-host starts or signals processes and touches mounts",
                ));
            }
            if name == "left4me-app"
                && !file.starts_with(src.join("ops"))
                && !file.ends_with("lib.rs")
            {
                rules.push((
                    ENGINE_FORBIDDEN,
                    "the engine never calls the operation layer above it",
                ));
            }
            if name == "left4me-web" {
                rules.push((
                    BELOW_OPERATIONS,
                    "pages and the API call left4me_app::ops, which checks access, validates and records",
                ));
            }
            if file.starts_with(crates.join("left4me-web/src/routes")) {
                rules.push((
                    ROUTE_FORBIDDEN,
                    "route handlers do not create directories or bind sockets; ask left4me-files or left4me-host",
                ));
            }
            if name == "left4me"
                && file.parent() == Some(src.as_path())
                && CLI_HOST_ONLY.iter().any(|m| file.ends_with(m))
            {
                rules.push((
                    &["left4me_web"],
                    "the CLI's host-only subcommands do not go through the web crate",
                ));
            }
            for (line, code) in code_lines(&text) {
                for (names, why) in &rules {
                    for forbidden in *names {
                        if code.contains(forbidden) {
                            found.push(format!("{shown}:{line}: uses `{forbidden}`: {why}"));
                        }
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_source_keeps_the_architecture_invariants() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap();
    let found = violations(&workspace);
    assert!(
        found.is_empty(),
        "ARCHITECTURE.md invariants broken:\n{}",
        found.join("\n")
    );
}

/// The checker itself: a tree with one violation of each rule (and
/// look-alikes that are allowed) gets exactly those, by file and line.
#[test]
fn the_checker_names_file_and_line_of_each_violation() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "crates/left4me-host/src/journal.rs",
        "use std::process::Command;\nfn f() { tokio::process::Command::new(\"journalctl\"); }\n",
    );
    write(
        "crates/left4me-web/src/journal.rs",
        "// tokio::process is mentioned in a comment only\nfn f() {\n    tokio::process::Command::new(\"journalctl\");\n}\n",
    );
    write(
        "crates/left4me-web/src/routes/overlays.rs",
        "fn f() {\n    OverlayFiles::create(&dir);\n    std::fs::create_dir_all(&dir);\n}\n",
    );
    write(
        "crates/left4me-web/src/routes/servers.rs",
        "fn f() {\n    servers::list(state.app(), &user);\n    state.app().store().servers(None);\n}\n",
    );
    write(
        "crates/left4me/src/logs.rs",
        "use left4me_host::journal;\nuse left4me_web::log_follow;\n",
    );
    write("crates/left4me/src/panel.rs", "use left4me_web::Launch;\n");
    write(
        "crates/left4me-app/src/runner.rs",
        "use crate::ops::servers;\n",
    );
    write("crates/left4me-app/src/ops/servers.rs", "use crate::App;\n");
    assert_eq!(
        violations(dir.path()),
        [
            "crates/left4me/src/logs.rs:2: uses `left4me_web`: the CLI's host-only subcommands do not go through the web crate",
            "crates/left4me-app/src/runner.rs:1: uses `crate::ops`: the engine never calls the operation layer above it",
            "crates/left4me-web/src/journal.rs:3: uses `Command::new(`: only left4me-host starts or signals processes and touches mounts",
            "crates/left4me-web/src/journal.rs:3: uses `tokio::process`: only left4me-host starts or signals processes and touches mounts",
            "crates/left4me-web/src/routes/overlays.rs:3: uses `create_dir`: route handlers do not create directories or bind sockets; ask left4me-files or left4me-host",
            "crates/left4me-web/src/routes/servers.rs:3: uses `.store()`: pages and the API call left4me_app::ops, which checks access, validates and records",
        ]
    );
}
