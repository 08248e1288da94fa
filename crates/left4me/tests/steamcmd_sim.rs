//! The steamcmd simulator behaves like steamcmd where our code depends
//! on it: argument order, the Invalid platform trap, exit codes, block
//! buffering without a terminal, in-place rewrites, and Workshop downloads.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steamcmd_sim::{Fault, SimConfig, SteamcmdSim};

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");

fn sim() -> (tempfile::TempDir, SteamcmdSim) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SteamcmdSim::create(&dir.path().join("steamcmd"), Path::new(STEAMCMD_SIM)).unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("left4dead2")).unwrap();
    std::fs::write(tree.join("left4dead2/a.txt"), "a1001").unwrap();
    std::fs::write(tree.join("left4dead2/gone.txt"), "gone").unwrap();
    sim.publish_build(1001, &tree).unwrap();
    (dir, sim)
}

fn run(sim: &SteamcmdSim, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(sim.program()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn update(install: &Path, platforms: &[&str]) -> Vec<String> {
    let mut args = vec![
        "+force_install_dir".to_owned(),
        install.display().to_string(),
        "+login".into(),
        "anonymous".into(),
    ];
    for p in platforms {
        args.extend(["+@sSteamCmdForcePlatformType", p, "+app_update", "222860"].map(String::from));
    }
    args.push("+quit".into());
    args
}

#[test]
fn an_anonymous_linux_install_hits_invalid_platform_and_the_windows_pass_gets_past_it() {
    let (dir, sim) = sim();
    let install = dir.path().join("install");
    let args = update(&install, &["linux"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = run(&sim, &args);
    assert_eq!(code, Some(8), "{out}");
    assert!(
        out.contains("ERROR! Failed to install app '222860' (Invalid platform)"),
        "{out}"
    );
    let args = update(&install, &["windows", "linux"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = run(&sim, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Success! App '222860' fully installed."),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(install.join("left4dead2/a.txt")).unwrap(),
        "a1001"
    );
    // force_install_dir after login is ignored, with steamcmd's complaint.
    let (_, out) = run(
        &sim,
        &[
            "+login",
            "anonymous",
            "+force_install_dir",
            "/nowhere",
            "+quit",
        ],
    );
    assert!(
        out.contains("Please use force_install_dir before logon!"),
        "{out}"
    );
    assert_eq!(sim.invocations().len(), 3);
}

#[test]
fn an_update_rewrites_changed_files_in_place_adds_and_deletes() {
    let (dir, sim) = sim();
    let install = dir.path().join("install");
    let args = update(&install, &["windows", "linux"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&sim, &args);
    // A hard link shares the inode: it sees an in-place rewrite.
    let link = dir.path().join("link");
    std::fs::hard_link(install.join("left4dead2/a.txt"), &link).unwrap();
    sim.derive_build(
        1002,
        &[
            ("left4dead2/a.txt", Some("a1002")),
            ("left4dead2/new.txt", Some("new")),
            ("left4dead2/gone.txt", None),
        ],
    )
    .unwrap();
    let args = update(&install, &["linux"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = run(&sim, &args);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "a1002", "in place");
    assert!(install.join("left4dead2/new.txt").exists());
    assert!(!install.join("left4dead2/gone.txt").exists());
    let (_, out) = run(&sim, &args);
    assert!(out.contains("already up to date"), "{out}");
}

#[test]
fn failures_print_steamcmds_lines_and_a_network_failure_exits_zero() {
    let (dir, sim) = sim();
    let install = dir.path().join("install");
    let args = update(&install, &["windows", "linux"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for (fault, line, code) in [
        (Fault::State(0x202), "state is 0x202 after update job", 8),
        (Fault::State(0x602), "state is 0x602 after update job", 0),
        (Fault::NoSubscription, "(No subscription)", 8),
        (Fault::MissingConfiguration, "(Missing configuration)", 8),
        (Fault::LoginFailure, "FAILED (No Connection)", 5),
    ] {
        sim.set_config(&SimConfig {
            fault: Some(fault),
            ..SimConfig::default()
        })
        .unwrap();
        let (got, out) = run(&sim, &args);
        assert_eq!(got, Some(code), "{line}: {out}");
        assert!(out.contains(line), "{line}: {out}");
        assert!(!out.contains("Success!"), "{out}");
    }
}

#[test]
fn without_a_terminal_output_comes_in_blocks() {
    let (dir, sim) = sim();
    let install = dir.path().join("install");
    let tree = dir.path().join("big");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("big.bin"), vec![7u8; 400_000]).unwrap();
    sim.publish_build(1002, &tree).unwrap();
    sim.set_config(&SimConfig {
        invalid_platform: false,
        bytes_per_second: 200_000,
        ..SimConfig::default()
    })
    .unwrap();
    let args = update(&install, &["linux"]);
    let mut child = Command::new(sim.program())
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    // The banner and progress are far below 4 KiB: nothing arrives until
    // the two-second download is over and the program exits.
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "output arrived after {:?}",
        started.elapsed()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn workshop_download_item_writes_the_legacy_bin_and_fails_with_exit_code_zero() {
    let (dir, sim) = sim();
    sim.publish_workshop_item(42, b"\x34\x12\xaa\x55vpk")
        .unwrap();
    let install = dir.path().join("install");
    let install_arg = install.display().to_string();
    let download = |app: &str, item: &str| {
        run(
            &sim,
            &[
                "+force_install_dir",
                &install_arg,
                "+login",
                "anonymous",
                "+workshop_download_item",
                app,
                item,
                "+quit",
            ],
        )
    };
    let (code, out) = download("550", "42");
    assert_eq!(code, Some(0), "{out}");
    let content = install.join("steamapps/workshop/content/550/42");
    assert!(out.contains("Downloading item 42 ..."), "{out}");
    assert!(
        out.contains(&format!(
            "Success. Downloaded item 42 to \"{}\" (7 bytes)",
            content.display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read(content.join("42_legacy.bin")).unwrap(),
        b"\x34\x12\xaa\x55vpk"
    );
    assert!(
        !install.join("steamapps/workshop/downloads/550/42").exists(),
        "staged, then renamed"
    );
    // Failures are in the output only, as with the real one.
    let (code, out) = download("550", "43");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ERROR! Download item 43 failed (File Not Found)."),
        "{out}"
    );
    let (code, out) = download("222860", "42");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ERROR! Download item 42 failed (Failure)."),
        "{out}"
    );
    // Failure only for the first `fault_runs` downloads of the item.
    sim.set_config(&SimConfig {
        workshop_faults: [(42, steamcmd_sim::WorkshopFault::Failure)].into(),
        fault_runs: 1,
        ..SimConfig::default()
    })
    .unwrap();
    let (_, out) = download("550", "42");
    assert!(out.contains("failed (Failure)."), "{out}");
    let (_, out) = download("550", "42");
    assert!(out.contains("Success. Downloaded item 42"), "{out}");
    // Not logged in: nothing downloaded.
    let (_, out) = run(&sim, &["+workshop_download_item", "550", "42", "+quit"]);
    assert!(out.contains("ERROR! Not logged on."), "{out}");
}
