//! Game updates on versioned layers, through the real code path
//! (`Game::update`, steamcmd-sim as steamcmd): an update that changes 1%
//! of the installation against a full copy of it, and a server start on
//! a 20-version installation against one on a single version. Needs
//! root. Run with `cargo bench -p left4me --bench game`.
//!
//! Knobs (environment): BENCH_FILES (10000), BENCH_BYTES (1 GiB),
//! BENCH_DIR (a directory on the disk to measure; default /var/tmp),
//! BENCH_STARTS (20).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_host::fsutil::disk_usage;
use left4me_host::game::{Game, Steamcmd, Updated};
use left4me_host::layout::StateRoot;
use left4me_host::name::InstanceName;
use left4me_host::spec::{Port, Spec};
use steamcmd_sim::{SimConfig, SteamcmdSim, copy_tree, files_below};
use support::{env_or, median, ms};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// A state root with a simulated steamcmd whose public build is the
/// synthetic game, installed as version 1.
fn installed(base: &Path, name: &str, files: usize, bytes: u64) -> (PathBuf, Game, SteamcmdSim) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let system = dir.join("system");
    for (lib, _) in left4me_host::game::LIBRARIES_32 {
        std::fs::create_dir_all(system.join(lib).parent().unwrap()).unwrap();
        std::fs::write(system.join(lib), "").unwrap();
    }
    let sim = SteamcmdSim::create(
        &dir.join("steamcmd"),
        Path::new(env!("CARGO_BIN_EXE_steamcmd-sim")),
    )
    .unwrap();
    sim.set_config(&SimConfig {
        bytes_per_second: u64::MAX,
        ..SimConfig::default()
    })
    .unwrap();
    sim.publish_game(
        1001,
        Path::new(env!("CARGO_BIN_EXE_srcds-sim")),
        files,
        bytes,
    )
    .unwrap();
    let game = Game {
        root: StateRoot::open(dir.join("state")).unwrap(),
        steamcmd: Steamcmd {
            program: sim.program(),
            stall_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
        },
        system_root: system,
        // The 20-version stack stays 20 deep.
        max_layers: 64,
    };
    update(&game);
    (dir, game, sim)
}

fn update(game: &Game) -> Duration {
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let outcome = game.update(false, &Ctx::new(&discard, &cancel)).unwrap();
    assert!(matches!(outcome, Updated::Published(_)), "{outcome:?}");
    started.elapsed()
}

/// Median time of `starts` start + stop pairs of one server.
fn start_times(game: &Game, starts: usize) -> Duration {
    let host = support::builtin_host(game.root.path());
    let cancel = CancellationToken::new();
    let ctx = Ctx::new(&discard, &cancel);
    let name = InstanceName::parse("bench").unwrap();
    let spec = Spec::new(
        Port::new(41_000).unwrap(),
        vec!["+map".into(), "c1m1_hotel".into()],
        vec![],
        vec![],
    )
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..starts {
        let started = Instant::now();
        host.start(&name, Some(&spec), &ctx).unwrap();
        times.push(started.elapsed());
        host.stop(&name, &ctx).unwrap();
    }
    host.delete(&name, &ctx).unwrap();
    median(times)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes harness-less benches this way.
    }
    assert!(
        rustix::process::geteuid().is_root(),
        "this benchmark mounts overlayfs and must run as root"
    );
    let files: usize = env_or("BENCH_FILES", 10_000);
    let bytes: u64 = env_or("BENCH_BYTES", 1 << 30);
    let starts: usize = env_or("BENCH_STARTS", 20);
    let base: String = env_or("BENCH_DIR", "/var/tmp".to_owned());
    let dir = tempfile::Builder::new()
        .prefix("left4me-bench-game-")
        .tempdir_in(base)
        .unwrap();

    println!("installation: {files} files, {} MiB", bytes >> 20);
    let (_, game, sim) = installed(dir.path(), "update", files, bytes);
    let v1 = game.root.installation().join("v/1");
    let install_disk = disk_usage(&v1);

    // Baseline: what updating a copy would cost, a full copy of it.
    let copy = dir.path().join("copy");
    let started = Instant::now();
    copy_tree(&v1, &copy).unwrap();
    rustix::fs::sync();
    let copy_time = started.elapsed();
    let copy_disk = disk_usage(&copy);
    std::fs::remove_dir_all(&copy).unwrap();

    // An update that rewrites 1% of the files (same sizes, new content).
    let all = files_below(&v1).unwrap();
    let filler: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.starts_with("left4dead2/filler"))
        .collect();
    let step = (filler.len() / (files / 100).max(1)).max(1);
    let changed: Vec<(String, String)> = filler
        .iter()
        .step_by(step)
        .map(|p| {
            let size = std::fs::metadata(v1.join(p)).unwrap().len();
            let size = usize::try_from(size).unwrap();
            (p.to_string_lossy().into_owned(), "u".repeat(size))
        })
        .collect();
    let changes: Vec<(&str, Option<&str>)> = changed
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    sim.derive_build(1002, &changes).unwrap();
    let update_time = update(&game);
    rustix::fs::sync();
    let update_disk = disk_usage(&game.root.installation().join("v/2"));

    // Starts: one server on a 20-version stack against one on a single
    // version, each update adding a file.
    let (_, deep, deep_sim) = installed(dir.path(), "deep", 100, 1 << 20);
    for build in 1002..1021 {
        let file = format!("left4dead2/build-{build}.txt");
        deep_sim
            .derive_build(build, &[(file.as_str(), Some("x"))])
            .unwrap();
        update(&deep);
    }
    let stack = deep.status().unwrap().installed.unwrap().stack.len();
    let (_, single, _) = installed(dir.path(), "single", 100, 1 << 20);
    let single_start = start_times(&single, starts);
    let deep_start = start_times(&deep, starts);

    println!();
    println!(
        "| update changing 1% ({} files) | time | extra disk |",
        changes.len()
    );
    println!("|---|---|---|");
    println!(
        "| full copy of the installation | {:.0} ms | {:.1} MiB |",
        ms(copy_time),
        mib(copy_disk)
    );
    println!(
        "| left4me update (steamcmd-sim into an overlay build) | {:.0} ms | {:.1} MiB |",
        ms(update_time),
        mib(update_disk)
    );
    println!(
        "installation {:.1} MiB; the update needs {:.1}% of a copy's disk, {:.2}x its time",
        mib(install_disk),
        update_disk as f64 * 100.0 / copy_disk as f64,
        update_time.as_secs_f64() / copy_time.as_secs_f64()
    );
    println!();
    println!("| server start (median of {starts}) | time |");
    println!("|---|---|");
    println!("| installation of 1 version | {:.1} ms |", ms(single_start));
    println!(
        "| installation of {stack} versions | {:.1} ms |",
        ms(deep_start)
    );
    let ratio = deep_start.as_secs_f64() / single_start.as_secs_f64();
    println!("ratio {ratio:.2}x (target: under 2x)");
    assert!(ratio < 2.0, "a deep stack starts {ratio:.2}x slower");
}
