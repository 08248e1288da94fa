//! Synthetic installations, and a server reading its configuration from one.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{A2s, Rcon};
use srcds_sim::{SimConfig, make_installation, start};

/// (files, bytes) below `dir`.
fn tree_size(dir: &Path) -> (usize, u64) {
    let mut total = (0, 0);
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (files, bytes) = tree_size(&entry.path());
            total = (total.0 + files, total.1 + bytes);
        } else {
            total = (total.0 + 1, total.1 + meta.len());
        }
    }
    total
}

fn fake_executable(dir: &Path) -> std::path::PathBuf {
    let exe = dir.join("sim-binary");
    fs::write(&exe, b"#!/bin/sh\necho not really srcds\n").unwrap();
    exe
}

#[test]
fn creates_the_layout_and_filler() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = fake_executable(tmp.path());
    let dir = tmp.path().join("installation");
    make_installation(&dir, &exe, 2500, 10_000_003).unwrap();

    for program in ["srcds_linux", "srcds_run"] {
        let program = dir.join(program);
        assert_eq!(fs::read(&program).unwrap(), fs::read(&exe).unwrap());
        let mode = fs::metadata(&program).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    assert!(dir.join("bin").is_dir());
    assert_eq!(
        fs::read_to_string(dir.join("steam_appid.txt"))
            .unwrap()
            .trim(),
        "222860"
    );
    let cfg = fs::read_to_string(dir.join("left4dead2/cfg/server.cfg")).unwrap();
    assert!(cfg.contains("\nhostname "));
    assert!(dir.join("left4dead2/addons").is_dir());
    assert!(dir.join("left4dead2/maps/c1m1_hotel.bsp").is_file());

    let filler = dir.join("left4dead2/filler");
    assert_eq!(tree_size(&filler), (2500, 10_000_003));
    let mut subdirs: Vec<_> = fs::read_dir(&filler)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    subdirs.sort();
    assert_eq!(subdirs.len(), 3);
    assert!(
        subdirs
            .iter()
            .all(|d| fs::read_dir(d).unwrap().count() <= 1000)
    );
    let sample = fs::read(subdirs[2].join("f0002499.bin")).unwrap();
    assert_eq!(sample.len(), 4000);
    assert!(!sample.contains(&0));
}

#[test]
fn is_idempotent_and_follows_new_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = fake_executable(tmp.path());
    let dir = tmp.path().join("installation");
    make_installation(&dir, &exe, 1200, 1_000_000).unwrap();
    fs::write(dir.join("left4dead2/cfg/server.cfg"), "hostname edited\n").unwrap();
    let before = tree_size(&dir);

    make_installation(&dir, &exe, 1200, 1_000_000).unwrap();
    assert_eq!(tree_size(&dir), before);
    assert_eq!(
        fs::read_to_string(dir.join("left4dead2/cfg/server.cfg")).unwrap(),
        "hostname edited\n"
    );

    make_installation(&dir, &exe, 10, 1000).unwrap();
    assert_eq!(tree_size(&dir.join("left4dead2/filler")), (10, 1000));
    make_installation(&dir, &exe, 0, 0).unwrap();
    assert_eq!(tree_size(&dir.join("left4dead2/filler")), (0, 0));
    assert!(make_installation(&dir, &exe, 0, 5).is_err());
}

#[tokio::test]
async fn server_reads_server_cfg_and_exec_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = fake_executable(tmp.path());
    let root = tmp.path().join("merged");
    make_installation(&root, &exe, 0, 0).unwrap();
    let cfg = root.join("left4dead2/cfg");
    fs::write(
        cfg.join("server.cfg"),
        "// left4me server.cfg\n\
         hostname \"From server.cfg\"\n\
         exec server_overlay_1   // overlay config\n\
         exec \"missing_one\"\n\
         exec loop.cfg\n\
         rcon_password s3cret; sv_password \"\"\n",
    )
    .unwrap();
    fs::write(
        cfg.join("server_overlay_1.cfg"),
        "sv_gravity 400\nhostname \"Overlay Host\"\nmaxplayers 10\n",
    )
    .unwrap();
    fs::write(cfg.join("loop.cfg"), "exec loop\n").unwrap();

    let args: Vec<String> = "-game left4dead2 +ip 127.0.0.1 -port 0 +map c2m1_highway \
                             +maxplayers 4 +hostname CommandLine +sv_password pw -tickrate 100"
        .split(' ')
        .map(str::to_owned)
        .collect();
    let mut config = SimConfig::from_srcds_args(&root, &args).unwrap();
    config.echo_stdout = false;
    let sim = start(config).await.unwrap();
    sim.wait_ready().await;

    let info = A2s::connect(sim.local_addr()).await.info().await;
    // server.cfg runs after the command line, so it wins.
    assert_eq!(info.name, "Overlay Host");
    assert_eq!(info.map, "c2m1_highway");
    assert_eq!(info.max_players, 10);
    assert_eq!(info.visibility, 0);
    assert_eq!(sim.cvar("sv_gravity").as_deref(), Some("400"));

    let console = sim.console_lines();
    assert!(
        console
            .iter()
            .any(|l| l == "exec: couldn't exec missing_one.cfg")
    );
    assert!(console.iter().any(|l| l.contains("recursion limit")));

    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    let (addons, _) = rcon.exec("sim_addons").await;
    assert_eq!(addons, "0 addons\n");
    fs::write(root.join("left4dead2/addons/tank.vpk"), b"VPK").unwrap();
    fs::write(root.join("left4dead2/addons/bad.name.vpk"), b"VPK").unwrap();
    let (addons, _) = rcon.exec("sim_addons").await;
    assert_eq!(
        addons,
        "bad.name.vpk (not loaded: more than one dot in name)\ntank.vpk\n1 addons\n"
    );
}
