//! `left4me game`: the game from Steam, through the real steamcmd code
//! path against the steamcmd simulator.

mod common;

use std::path::{Path, PathBuf};

use common::{stderr, stdout};
use steamcmd_sim::{Fault, SimConfig, SteamcmdSim};

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");

/// A state root without a game, and the 32-bit libraries the install
/// checks for, in a system root of its own.
struct GameRoot {
    dir: tempfile::TempDir,
}

impl GameRoot {
    fn new() -> Self {
        common::require_root();
        let dir = tempfile::Builder::new()
            .prefix("left4me-game-")
            .tempdir()
            .unwrap();
        common::fake_system_root(dir.path(), &common::libraries_32());
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A simulated steamcmd serving the synthetic game as build 1001.
    fn sim(&self) -> SteamcmdSim {
        let sim = SteamcmdSim::create(&self.dir.path().join("steamcmd"), Path::new(STEAMCMD_SIM))
            .unwrap();
        sim.publish_game(1001, Path::new(common::SRCDS_SIM), 20, 100_000)
            .unwrap();
        sim
    }

    fn cmd(&self, steamcmd: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(common::LEFT4ME);
        cmd.arg("--root")
            .arg(self.state())
            .args(args)
            .env("LEFT4ME_STEAMCMD", steamcmd)
            .env("LEFT4ME_SYSTEM_ROOT", self.dir.path().join("system"))
            .env("LEFT4ME_STEAMCMD_RETRY_MS", "50")
            .env("LEFT4ME_STEAMCMD_STALL_SECS", "3")
            .env_remove("LEFT4ME_ROOT");
        cmd
    }

    fn game(&self, sim: &SteamcmdSim, args: &[&str]) -> std::process::Output {
        let mut all = vec!["game"];
        all.extend(args);
        self.left4me(&sim.program(), &all)
    }

    fn ok(&self, sim: &SteamcmdSim, args: &[&str]) -> String {
        let out = self.game(sim, args);
        assert!(
            out.status.success(),
            "left4me game {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// `left4me instance WHAT NAME`, which must succeed.
    fn instance(&self, sim: &SteamcmdSim, what: &str, name: &str) {
        let out = self.left4me(&sim.program(), &["instance", what, name]);
        assert!(out.status.success(), "{what} {name}: {}", stderr(&out));
    }

    /// Starts server `name` on the installed game; its merged tree.
    fn start_server(&self, sim: &SteamcmdSim, name: &str) -> PathBuf {
        let spec = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &spec,
            format!(
                "port: {}\narguments: [\"+map\", \"c1m1_hotel\"]\n",
                common::free_port()
            ),
        )
        .unwrap();
        let spec = spec.to_str().unwrap();
        let out = self.left4me(&sim.program(), &["instance", "start", name, "--spec", spec]);
        assert!(out.status.success(), "start {name}: {}", stderr(&out));
        self.state().join("runtime").join(name).join("merged")
    }

    fn installation(&self) -> PathBuf {
        self.state().join("installation")
    }

    fn left4me(&self, steamcmd: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(common::LEFT4ME)
            .arg("--root")
            .arg(self.state())
            .args(args)
            .env("LEFT4ME_STEAMCMD", steamcmd)
            .env("LEFT4ME_SYSTEM_ROOT", self.dir.path().join("system"))
            .env("LEFT4ME_STEAMCMD_RETRY_MS", "50")
            .env("LEFT4ME_STEAMCMD_STALL_SECS", "3")
            .env_remove("LEFT4ME_ROOT")
            .output()
            .unwrap()
    }
}

#[test]
fn a_missing_steamcmd_says_how_to_get_it() {
    let root = GameRoot::new();
    let out = root.left4me(Path::new("/nonexistent/steamcmd.sh"), &["game", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    for hint in [
        "steamcmd is not at /nonexistent/steamcmd.sh",
        "apt install steamcmd",
        "steamcmd_linux.tar.gz",
        "LEFT4ME_STEAMCMD",
    ] {
        assert!(text.contains(hint), "{hint} in {text}");
    }
    let status = root.left4me(Path::new("/nonexistent/steamcmd.sh"), &["game", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("installed: no"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn missing_32_bit_libraries_are_named_by_package() {
    let root = GameRoot::new();
    std::fs::remove_file(root.dir.path().join("system/usr/lib32/libgcc_s.so.1")).unwrap();
    std::fs::remove_file(
        root.dir
            .path()
            .join("system/usr/lib/i386-linux-gnu/libSDL2-2.0.so.0"),
    )
    .unwrap();
    // Any existing file will do as steamcmd: the check comes first.
    let out = root.left4me(Path::new(common::LEFT4ME), &["game", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("install lib32gcc-s1 libsdl2-2.0-0:i386"),
        "{text}"
    );
    assert!(
        !text.contains("lib32stdc++6"),
        "present ones are not named: {text}"
    );
    assert!(text.contains("dpkg --add-architecture i386"), "{text}");
}

#[test]
fn a_fresh_install_gets_past_invalid_platform_and_publishes_version_one() {
    let root = GameRoot::new();
    let sim = root.sim();
    let log = root.ok(&sim, &["install"]);
    assert!(
        log.contains("got past \"Invalid platform\" with a Windows pass, then the Linux one"),
        "{log}"
    );
    assert!(log.contains("version 1 (build 1001) is current"), "{log}");
    let current = root.installation().join("v/1");
    assert_eq!(
        std::fs::read_to_string(current.join("build.txt")).unwrap(),
        "1001\n"
    );
    assert!(current.join("srcds_run").is_file());
    // force_install_dir before login, Windows pass before Linux, one run.
    let runs = sim.invocations();
    let args = runs.last().unwrap();
    let at = |a: &str| args.iter().position(|x| x == a).unwrap();
    assert!(at("+force_install_dir") < at("+login"), "{args:?}");
    assert!(at("windows") < at("linux"), "{args:?}");
    // Steamclient linked for the game's account, whose home is the root.
    assert!(root.state().join(".steam/sdk32/steamclient.so").exists());
    let status = root.ok(&sim, &["status", "--json"]);
    assert!(status.contains("\"build_id\": \"1001\""), "{status}");
    // Installing again is refused; updating finds nothing new.
    let again = root.game(&sim, &["install"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    let up = root.ok(&sim, &["update"]);
    assert!(up.contains("the game is up to date"), "{up}");
    let up = root.game(&sim, &["update", "--json"]);
    assert_eq!(stdout(&up).trim(), "\"UpToDate\"", "{}", stderr(&up));
    assert!(!root.installation().join("v/2").exists());
}

#[test]
fn a_check_retries_empty_answers_and_gives_up_plainly() {
    let root = GameRoot::new();
    let sim = root.sim();
    root.ok(&sim, &["install"]);
    sim.set_config(&SimConfig {
        app_info_empty_runs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    sim.derive_build(1002, &[("left4dead2/new.txt", Some("new"))])
        .unwrap();
    let check = root.ok(&sim, &["check"]);
    assert!(check.contains("printed no build for the app"), "{check}");
    assert!(
        check.contains("installed build: 1001, public build: 1002 (update available)"),
        "{check}"
    );
    sim.set_config(&SimConfig {
        app_info_empty_runs: 100,
        ..SimConfig::default()
    })
    .unwrap();
    let out = root.game(&sim, &["check"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("never said which build is public"),
        "{}",
        stderr(&out)
    );
}

/// Every file below `dir` with its contents.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    steamcmd_sim::files_below(dir)
        .unwrap()
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn an_update_never_changes_what_a_running_server_sees() {
    let root = GameRoot::new();
    let sim = root.sim();
    root.ok(&sim, &["install"]);
    let merged = root.start_server(&sim, "alpha");
    let before = tree(&merged);
    // The new build rewrites a file in place, adds one and deletes one.
    sim.derive_build(
        1002,
        &[
            ("left4dead2/cfg/server.cfg", Some("hostname changed\n")),
            ("left4dead2/added.txt", Some("added")),
            ("left4dead2/maps/c1m1_hotel.bsp", None),
        ],
    )
    .unwrap();
    let log = root.ok(&sim, &["update"]);
    assert!(log.contains("version 2 (build 1002) is current"), "{log}");
    assert_eq!(
        tree(&merged),
        before,
        "the running server's tree is unchanged"
    );
    // Version 2 is only what changed: the rewritten and the added file
    // and a whiteout, not a copy of the game.
    let delta = steamcmd_sim::files_below(&root.installation().join("v/2")).unwrap();
    assert!(delta.len() < 8, "{delta:?}");
    assert!(root.installation().join("v/1").exists(), "still in use");
    root.instance(&sim, "stop", "alpha");
    root.instance(&sim, "start", "alpha");
    assert_eq!(
        std::fs::read_to_string(merged.join("build.txt")).unwrap(),
        "1002\n"
    );
    assert!(merged.join("left4dead2/added.txt").exists());
    assert!(!merged.join("left4dead2/maps/c1m1_hotel.bsp").exists());
    root.instance(&sim, "stop", "alpha");
    // A third build: once no server runs version 2's stack alone, the
    // superseded descriptions go; layers of the current stack stay.
    sim.derive_build(1003, &[("left4dead2/third.txt", Some("3"))])
        .unwrap();
    root.ok(&sim, &["update"]);
    let status = root.ok(&sim, &["status", "--json"]);
    assert!(status.contains("\"build_id\": \"1003\""), "{status}");
    let versions: serde_json::Value =
        serde_json::from_str(&stdout(&root.game(&sim, &["status", "--json"]))).unwrap();
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );
}

#[test]
fn steamcmds_failures_become_plain_messages() {
    let root = GameRoot::new();
    let sim = root.sim();
    root.ok(&sim, &["install"]);
    sim.derive_build(1002, &[("left4dead2/new.txt", Some("new"))])
        .unwrap();
    let fail_with = |fault: Fault, runs: u32| {
        sim.set_config(&SimConfig {
            fault: Some(fault),
            fault_runs: runs,
            ..SimConfig::default()
        })
        .unwrap();
        let _ = std::fs::remove_file(root.dir.path().join("steamcmd/sim/update-runs"));
        root.game(&sim, &["update"])
    };
    let out = fail_with(Fault::State(0x202), 0);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("not enough disk space (steamcmd state 0x202)"),
        "{text}"
    );
    assert!(text.contains("free below the state root, about"), "{text}");
    // A network failure exits 0 like the real one; it is retried.
    let out = fail_with(Fault::State(0x602), 0);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could not reach Steam"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).matches("retrying in").count(),
        2,
        "{}",
        stderr(&out)
    );
    let out = fail_with(Fault::NoSubscription, 0);
    assert!(
        stderr(&out).contains("(No subscription)"),
        "{}",
        stderr(&out)
    );
    let out = fail_with(Fault::LoginFailure, 0);
    assert!(
        stderr(&out).contains("could not log in"),
        "{}",
        stderr(&out)
    );
    let out = fail_with(Fault::Hang, 0);
    assert!(
        stderr(&out).contains("printed nothing for 3 s and was ended"),
        "{}",
        stderr(&out)
    );
    // Every failure left version 1 current and no build behind.
    assert_eq!(
        std::fs::read_to_string(root.installation().join("current")).unwrap(),
        "1\n"
    );
    assert!(
        !root.installation().join("build").exists()
            || steamcmd_sim::files_below(&root.installation().join("build"))
                .unwrap()
                .is_empty()
    );
    // Two network failures, then success: retried, published.
    let out = fail_with(Fault::State(0x402), 2);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("build 1002"), "{}", stdout(&out));
}

#[test]
fn cancel_or_kill_mid_download_leaves_the_current_version() {
    let root = GameRoot::new();
    let sim = root.sim();
    root.ok(&sim, &["install"]);
    sim.derive_build(1002, &[("left4dead2/big.bin", Some(&"x".repeat(400_000)))])
        .unwrap();
    sim.set_config(&SimConfig {
        bytes_per_second: 20_000,
        ..SimConfig::default()
    })
    .unwrap();
    let downloading = |child: &mut std::process::Child| {
        let build = root.installation().join("build");
        common::wait_until(
            "the download runs",
            std::time::Duration::from_secs(20),
            || {
                steamcmd_sim::files_below(&build).is_ok_and(|f| !f.is_empty())
                    || child.try_wait().unwrap().is_some()
            },
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // Ctrl-C: cancelled, rolled back.
    let mut child = root
        .cmd(&sim.program(), &["game", "update"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    downloading(&mut child);
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.installation().join("current")).unwrap(),
        "1\n"
    );
    assert!(!root.installation().join("build/2").exists());
    // kill -9: the build stays mounted and half written; the next run
    // clears it and publishes.
    let mut child = root
        .cmd(&sim.program(), &["game", "update"])
        .spawn()
        .unwrap();
    downloading(&mut child);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    child.wait().unwrap();
    // steamcmd, in its own group, may outlive us: end it by its pid.
    for pid in common::steamcmd_pids(&sim.program()) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    assert_eq!(
        std::fs::read_to_string(root.installation().join("current")).unwrap(),
        "1\n"
    );
    sim.set_config(&SimConfig::default()).unwrap();
    let log = root.ok(&sim, &["update"]);
    assert!(log.contains("build 1002"), "{log}");
    assert_eq!(
        std::fs::read_to_string(root.installation().join("current")).unwrap(),
        "2\n",
        "the killed build was cleared, never published"
    );
}

#[test]
fn a_deep_installation_is_flattened_into_one_layer_of_hard_links() {
    let root = GameRoot::new();
    let sim = root.sim();
    root.ok(&sim, &["install"]);
    let merged = root.start_server(&sim, "deep");
    let before = tree(&merged);
    sim.derive_build(
        1002,
        &[
            ("left4dead2/a.txt", Some("a2")),
            ("left4dead2/maps/c1m1_hotel.bsp", None),
        ],
    )
    .unwrap();
    root.ok(&sim, &["update"]);
    sim.derive_build(
        1003,
        &[
            ("left4dead2/a.txt", Some("a3")),
            ("left4dead2/b.txt", Some("b3")),
        ],
    )
    .unwrap();
    let out = root
        .cmd(&sim.program(), &["game", "update"])
        .env("LEFT4ME_INSTALLATION_MAX_LAYERS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 layers deep: flattened into version 4"),
        "{}",
        stderr(&out)
    );
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&root.game(&sim, &["status", "--json"]))).unwrap();
    assert_eq!(status["installed"]["version"], 4);
    assert_eq!(status["installed"]["stack"], serde_json::json!([4]));
    assert_eq!(status["installed"]["build_id"], "1003");
    // The flat layer shows what the stack showed: latest contents, the
    // deleted map gone, files shared with the old layers by hard links.
    let flat = root.installation().join("v/4");
    let v1 = root.installation().join("v/1");
    let stacked: Vec<_> = tree(&flat);
    assert_eq!(
        std::fs::read_to_string(flat.join("left4dead2/a.txt")).unwrap(),
        "a3"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("left4dead2/b.txt")).unwrap(),
        "b3"
    );
    assert!(!flat.join("left4dead2/maps/c1m1_hotel.bsp").exists());
    assert!(stacked.iter().any(|(p, _)| p.ends_with("srcds_run")));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(flat.join("srcds_run")).unwrap().ino(),
        std::fs::metadata(v1.join("srcds_run")).unwrap().ino(),
        "a hard link to version 1's file (still run), not a copy"
    );
    // The running server still sees version 1, untouched.
    assert_eq!(tree(&merged), before);
    root.instance(&sim, "stop", "deep");
    root.instance(&sim, "start", "deep");
    assert_eq!(
        std::fs::read_to_string(merged.join("left4dead2/a.txt")).unwrap(),
        "a3"
    );
    assert!(!merged.join("left4dead2/maps/c1m1_hotel.bsp").exists());
    // Nothing runs the old stack any more: only the flat layer is left.
    root.instance(&sim, "delete", "deep");
    let left: Vec<_> = std::fs::read_dir(root.installation().join("v"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<u32>().is_ok())
        .collect();
    assert_eq!(left, ["4"], "layers left: {left:?}");
}

#[test]
fn each_invalid_platform_workaround_is_tried_and_a_dead_end_is_said_plainly() {
    let root = GameRoot::new();
    let sim = root.sim();
    // The Windows pass no longer helps: the seeded manifest does.
    sim.set_config(&SimConfig {
        windows_pass_installs: false,
        ..SimConfig::default()
    })
    .unwrap();
    let log = root.ok(&sim, &["install"]);
    assert!(
        log.contains("trying a pre-seeded appmanifest (StateFlags 2)"),
        "{log}"
    );
    assert!(
        log.contains("got past \"Invalid platform\" with a pre-seeded appmanifest"),
        "{log}"
    );
    // Neither helps: a plain message quoting steamcmd.
    let root = GameRoot::new();
    let sim = root.sim();
    sim.set_config(&SimConfig {
        windows_pass_installs: false,
        seeded_manifest_works: false,
        ..SimConfig::default()
    })
    .unwrap();
    let out = root.game(&sim, &["install"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("neither workaround")
            && text.contains("ERROR! Failed to install app '222860' (Invalid platform)"),
        "{text}"
    );
    assert!(!root.installation().join("current").exists());
}

#[test]
fn missing_configuration_is_retried() {
    let root = GameRoot::new();
    let sim = root.sim();
    sim.set_config(&SimConfig {
        fault: Some(Fault::MissingConfiguration),
        fault_runs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let log = root.ok(&sim, &["install"]);
    assert_eq!(
        log.matches("steamcmd: Missing configuration; retrying")
            .count(),
        2,
        "{log}"
    );
    assert!(log.contains("version 1 (build 1001) is current"), "{log}");
}

/// A VPK's magic bytes, then something of the item's own.
fn vpk(text: &str) -> Vec<u8> {
    let mut bytes = vec![0x34, 0x12, 0xAA, 0x55];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// What an in-process download reported and how it ended.
struct Downloaded {
    result: Result<PathBuf, left4me_host::game::GameError>,
    events: Vec<left4me_host::events::Event>,
}

impl Downloaded {
    fn log(&self) -> String {
        self.events
            .iter()
            .map(|e| format!("{e:?}\n"))
            .collect::<String>()
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(path) => panic!("downloaded {}:\n{}", path.display(), self.log()),
            Err(e) => e.to_string(),
        }
    }
}

impl GameRoot {
    /// The game as the panel's installer runs it in process, with this
    /// test's steamcmd and waits.
    fn host_game(&self, sim: &SteamcmdSim, stall: std::time::Duration) -> left4me_host::game::Game {
        left4me_host::game::Game {
            root: left4me_host::layout::StateRoot::open(self.state()).unwrap(),
            steamcmd: left4me_host::game::Steamcmd {
                program: sim.program(),
                stall_timeout: stall,
                retry_backoff: std::time::Duration::from_millis(50),
            },
            system_root: self.dir.path().join("system"),
            max_layers: 16,
        }
    }

    /// Downloads `item` through `Installer::download_workshop_item`,
    /// cancelled when `cancel` is.
    fn download(
        &self,
        sim: &SteamcmdSim,
        item: u64,
        cancel: &left4me_host::events::CancellationToken,
    ) -> Downloaded {
        use left4me_host::game::Installer;
        let game = self.host_game(sim, std::time::Duration::from_secs(60));
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |e: left4me_host::events::Event| events.lock().unwrap().push(e);
        let ctx = left4me_host::events::Ctx::new(&sink, cancel);
        let installer: &dyn Installer = &game;
        let result = installer.download_workshop_item(item, &ctx);
        Downloaded {
            result,
            events: events.into_inner().unwrap(),
        }
    }

    fn workshop_steamcmd(&self) -> PathBuf {
        self.state().join("workshop_cache/steamcmd")
    }
}

/// The runs of `workshop_download_item` the simulator saw.
fn workshop_runs(sim: &SteamcmdSim) -> Vec<Vec<String>> {
    sim.invocations()
        .into_iter()
        .filter(|args| args.iter().any(|a| a == "+workshop_download_item"))
        .collect()
}

#[test]
fn a_workshop_item_downloads_with_steamcmd_into_the_cache() {
    let root = GameRoot::new();
    let sim = root.sim();
    let content = vpk("the map of item 123456789");
    sim.publish_workshop_item(123_456_789, &content).unwrap();
    let got = root.download(&sim, 123_456_789, &Default::default());
    let path = got
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}\n{}", got.log()));
    assert_eq!(
        *path,
        root.workshop_steamcmd()
            .join("steamapps/workshop/content/550/123456789/123456789_legacy.bin")
    );
    assert_eq!(std::fs::read(path).unwrap(), content);
    let log = got.log();
    assert!(
        log.contains("Success. Downloaded item 123456789 to"),
        "{log}"
    );
    assert!(!log.contains("waiting for steamcmd"), "{log}");
    // The install directory before the login, the game's app, one run.
    let runs = workshop_runs(&sim);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let args = &runs[0];
    let at = |a: &str| args.iter().position(|x| x == a).unwrap();
    assert_eq!(
        args[at("+force_install_dir") + 1],
        root.workshop_steamcmd().display().to_string()
    );
    assert!(at("+force_install_dir") < at("+login"), "{args:?}");
    assert_eq!(
        args[at("+workshop_download_item") + 1..at("+quit")],
        ["550", "123456789"]
    );
    // A new version of the item replaces the file.
    let newer = vpk("version 2");
    sim.publish_workshop_item(123_456_789, &newer).unwrap();
    let again = root.download(&sim, 123_456_789, &Default::default());
    assert_eq!(std::fs::read(again.result.unwrap()).unwrap(), newer);
}

#[test]
fn workshop_failures_are_retried_and_private_or_deleted_items_are_said_plainly() {
    use left4me_host::game::{GameError, ItemUnavailable};
    use steamcmd_sim::WorkshopFault;
    let root = GameRoot::new();
    let sim = root.sim();
    for item in [1, 2, 3, 4] {
        sim.publish_workshop_item(item, &vpk(&format!("item {item}")))
            .unwrap();
    }
    sim.set_config(&SimConfig {
        workshop_faults: [
            (1, WorkshopFault::Failure),
            (2, WorkshopFault::AccessDenied),
            (3, WorkshopFault::FileNotFound),
        ]
        .into(),
        fault_runs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let runs_of = |item: u64| {
        workshop_runs(&sim)
            .iter()
            .filter(|args| args.contains(&item.to_string()))
            .count()
    };

    // Two transient failures, then the file.
    let got = root.download(&sim, 1, &Default::default());
    let log = got.log();
    assert_eq!(std::fs::read(got.result.unwrap()).unwrap(), vpk("item 1"));
    assert_eq!(
        log.matches("download of item 1 failed (Failure); retrying in")
            .count(),
        2,
        "{log}"
    );
    assert_eq!(runs_of(1), 3);

    // Private and deleted: said plainly, typed, never retried.
    let got = root.download(&sim, 2, &Default::default());
    assert_eq!(got.error(), "item 2 is private (Access Denied)");
    assert!(matches!(
        got.result,
        Err(GameError::ItemUnavailable(ItemUnavailable::Private(2)))
    ));
    assert_eq!(runs_of(2), 1);
    let got = root.download(&sim, 3, &Default::default());
    assert_eq!(got.error(), "item 3 was deleted (File Not Found)");
    assert_eq!(runs_of(3), 1);
    let got = root.download(&sim, 99, &Default::default());
    assert_eq!(got.error(), "item 99 was deleted (File Not Found)");
    assert!(matches!(
        got.result,
        Err(GameError::ItemUnavailable(ItemUnavailable::Deleted(99)))
    ));

    // Failure every time: given up after the bounded retries.
    sim.set_config(&SimConfig {
        workshop_faults: [(4, WorkshopFault::Failure)].into(),
        ..SimConfig::default()
    })
    .unwrap();
    let got = root.download(&sim, 4, &Default::default());
    assert_eq!(
        got.error(),
        "steamcmd could not download item 4: Steam answered (Failure) 3 times; try again later"
    );
    assert_eq!(runs_of(4), 3);
    assert!(
        !root
            .workshop_steamcmd()
            .join("steamapps/workshop/content/550/4")
            .exists()
    );
}

#[test]
fn cancelling_a_workshop_download_ends_steamcmd() {
    let root = GameRoot::new();
    let sim = root.sim();
    // 400 kB at 20 kB/s: steamcmd is busy for 20 s.
    sim.publish_workshop_item(7, &vpk(&"x".repeat(400_000)))
        .unwrap();
    sim.set_config(&SimConfig {
        bytes_per_second: 20_000,
        ..SimConfig::default()
    })
    .unwrap();
    let cancel = left4me_host::events::CancellationToken::new();
    std::thread::scope(|s| {
        let download = s.spawn(|| root.download(&sim, 7, &cancel));
        common::wait_until("steamcmd runs", std::time::Duration::from_secs(20), || {
            !common::steamcmd_pids(&sim.program()).is_empty()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let cancelled_at = std::time::Instant::now();
        cancel.cancel();
        let got = download.join().unwrap();
        assert_eq!(got.error(), "cancelled", "{}", got.log());
        assert!(
            cancelled_at.elapsed() < std::time::Duration::from_secs(5),
            "the cancel took {:?}",
            cancelled_at.elapsed()
        );
    });
    assert!(
        common::steamcmd_pids(&sim.program()).is_empty(),
        "steamcmd outlived the cancel"
    );
    assert!(
        !root
            .workshop_steamcmd()
            .join("steamapps/workshop/content/550/7")
            .exists()
    );
    assert_eq!(workshop_runs(&sim).len(), 1, "a cancel is not retried");
}

#[test]
fn a_workshop_download_waits_for_a_game_install_to_finish() {
    let root = GameRoot::new();
    let sim = root.sim();
    sim.publish_workshop_item(5, &vpk("item 5")).unwrap();
    // The install's 28 MB (mostly the simulator as srcds) at 10 MB/s:
    // about 3 s of steamcmd.
    sim.set_config(&SimConfig {
        bytes_per_second: 10_000_000,
        ..SimConfig::default()
    })
    .unwrap();
    let install = root
        .cmd(&sim.program(), &["game", "install"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(
        "the install runs steamcmd",
        std::time::Duration::from_secs(20),
        || !common::steamcmd_pids(&sim.program()).is_empty(),
    );
    let got = root.download(&sim, 5, &Default::default());
    let install = install.wait_with_output().unwrap();
    assert!(install.status.success(), "install: {}", stderr(&install));
    let log = got.log();
    assert_eq!(
        std::fs::read(got.result.as_ref().unwrap_or_else(|e| panic!("{e}\n{log}"))).unwrap(),
        vpk("item 5")
    );
    assert_eq!(
        log.matches("waiting for steamcmd (a game install or update is running)")
            .count(),
        1,
        "{log}"
    );
    // steamcmd never ran twice at once: the download's run came after
    // every run of the install.
    let runs = sim.invocations();
    let download = runs
        .iter()
        .position(|args| args.iter().any(|a| a == "+workshop_download_item"))
        .unwrap();
    assert_eq!(download, runs.len() - 1, "{runs:?}");
    assert!(
        runs[..download]
            .iter()
            .all(|args| args.iter().any(|a| a == "+app_update")),
        "{runs:?}"
    );
}

/// Under systemd the download runs in `left4me-game@workshop-ID`: here a
/// stand-in `systemctl` runs the unit's `left4me game-helper` in the
/// background and a stand-in `journalctl` follows what it prints.
#[test]
fn under_systemd_a_workshop_download_runs_in_its_unit_and_relays_the_result() {
    use left4me_host::game::systemd::SystemdInstaller;
    use left4me_host::game::{GameError, Installer, ItemUnavailable};
    use std::os::unix::fs::PermissionsExt;
    let root = GameRoot::new();
    let sim = root.sim();
    sim.publish_workshop_item(11, &vpk("item 11")).unwrap();
    sim.set_config(&SimConfig {
        workshop_faults: [(12, steamcmd_sim::WorkshopFault::AccessDenied)].into(),
        ..SimConfig::default()
    })
    .unwrap();
    let unit = root.dir.path().join("unit");
    std::fs::create_dir(&unit).unwrap();
    let script = |name: &str, text: String| {
        let path = unit.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let u = unit.display();
    let systemctl = script(
        "systemctl",
        format!(
            r#"#!/bin/sh
echo "$@" >> '{u}/calls'
case "$1" in
show)
    state=inactive
    [ -e '{u}/running' ] && state=active
    printf 'InvocationID=%s\nActiveState=%s\n' "$(cat '{u}/id' 2>/dev/null)" "$state" ;;
start)
    task=${{3#left4me-game@}}
    : > '{u}/journal'
    touch '{u}/running'
    (LEFT4ME_STEAMCMD='{steamcmd}' LEFT4ME_SYSTEM_ROOT='{system}' LEFT4ME_STEAMCMD_RETRY_MS=50 \
        '{left4me}' --root '{state}' game-helper "${{task%.service}}" >> '{u}/journal' 2>&1
     rm '{u}/running') &
    date +%s%N > '{u}/id' ;;
esac
"#,
            steamcmd = sim.program().display(),
            system = root.dir.path().join("system").display(),
            left4me = common::LEFT4ME,
            state = root.state().display(),
        ),
    );
    let journalctl = script(
        "journalctl",
        format!("#!/bin/sh\nexec tail -n +1 -f '{u}/journal'\n"),
    );
    let installer = SystemdInstaller {
        game: root.host_game(&sim, std::time::Duration::from_secs(60)),
        units: left4me_host::units::Systemctl {
            systemctl,
            journalctl,
        },
    };
    let download = |item: u64| {
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |e: left4me_host::events::Event| events.lock().unwrap().push(e);
        let cancel = left4me_host::events::CancellationToken::new();
        let ctx = left4me_host::events::Ctx::new(&sink, &cancel);
        let result = installer.download_workshop_item(item, &ctx);
        Downloaded {
            result,
            events: events.into_inner().unwrap(),
        }
    };

    let got = download(11);
    let log = got.log();
    let path = got.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(std::fs::read(&path).unwrap(), vpk("item 11"));
    assert!(
        path.starts_with(root.workshop_steamcmd()),
        "{}",
        path.display()
    );
    // The helper's events, relayed.
    assert!(
        log.contains("starting left4me-game@workshop-11.service"),
        "{log}"
    );
    assert!(log.contains("Success. Downloaded item 11 to"), "{log}");
    let calls = std::fs::read_to_string(unit.join("calls")).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l == "start --no-block left4me-game@workshop-11.service"),
        "{calls}"
    );

    // A private item stays typed across the unit: no retry will help.
    let got = download(12);
    assert_eq!(got.error(), "item 12 is private (Access Denied)");
    assert!(matches!(
        got.result,
        Err(GameError::ItemUnavailable(ItemUnavailable::Private(12)))
    ));
}
