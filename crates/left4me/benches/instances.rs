//! Instance creation: left4me's overlay instances against a full copy of the
//! installation per server (what panels that copy do), plus mount cost by
//! layer count. Needs root. Run with
//! `cargo bench -p left4me --bench instances` (figures in docs/benchmarks.md).
//!
//! Knobs (environment): BENCH_INSTANCES (50), BENCH_FILES (10000),
//! BENCH_BYTES (1 GiB), BENCH_DIR (a directory on the disk to measure;
//! default /var/tmp).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_host::layer::{Layer, OverlayPath};
use left4me_host::layout::StateRoot;
use left4me_host::mount::{self, MountApi, OverlaySpec};
use left4me_host::name::InstanceName;
use left4me_host::spec::{Port, Spec};
use steamcmd_sim::copy_tree;
use support::{env_or, median, ms};

/// Bytes on disk (allocated blocks) below `path`, not crossing mounts.
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        let dev = meta.dev();
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            let child = entry.path();
            if std::fs::symlink_metadata(&child).is_ok_and(|m| m.dev() == dev) {
                total += disk_usage(&child);
            }
        }
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes harness-less benches this way.
    }
    assert!(
        rustix::process::geteuid().is_root(),
        "this benchmark mounts overlayfs and must run as root"
    );
    let instances: usize = env_or("BENCH_INSTANCES", 50);
    let files: usize = env_or("BENCH_FILES", 10_000);
    let bytes: u64 = env_or("BENCH_BYTES", 1 << 30);
    let base: String = env_or("BENCH_DIR", "/var/tmp".to_owned());
    let dir = tempfile::Builder::new()
        .prefix("left4me-bench-")
        .tempdir_in(base)
        .unwrap();
    let root = StateRoot::new(dir.path()).unwrap();
    root.ensure().unwrap();

    println!("synthetic installation: {files} files, {} MiB", bytes >> 20);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_srcds-sim"))
        .args([
            "make-installation",
            root.installation().to_str().unwrap(),
            "--files",
            &files.to_string(),
            "--bytes",
            &bytes.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let install_size = disk_usage(&root.installation());

    // Baseline: a full copy per server, removed after each measurement so
    // the disk holds at most one.
    let mut copy_times = Vec::new();
    for i in 0..instances {
        let target = dir.path().join(format!("copy-{i}"));
        let started = Instant::now();
        copy_tree(&root.installation(), &target).unwrap();
        rustix::fs::sync();
        copy_times.push(started.elapsed());
        std::fs::remove_dir_all(&target).unwrap();
    }

    // left4me: initialize + stage + mount + spawn, through the library.
    let host = support::builtin_host(root.path());
    let cancel = CancellationToken::new();
    let ctx = Ctx::new(&discard, &cancel);
    let mut start_times = Vec::new();
    let mut per_instance_disk = Vec::new();
    let mut names = Vec::new();
    for i in 0..instances {
        let name = InstanceName::parse(&format!("bench-{i}")).unwrap();
        let port = Port::new(40_000 + u16::try_from(i).unwrap()).unwrap();
        let spec = Spec::new(
            port,
            vec!["+map".into(), "c1m1_hotel".into()],
            vec!["hostname bench".into()],
            vec![],
        )
        .unwrap();
        let started = Instant::now();
        host.start(&name, Some(&spec), &ctx).unwrap();
        rustix::fs::sync();
        start_times.push(started.elapsed());
        let paths = root.instance(&name);
        let console = disk_usage(&paths.console_log());
        per_instance_disk.push(disk_usage(&paths.dir) + disk_usage(&paths.runtime) - console);
        names.push(name);
    }
    let mut stop_times = Vec::new();
    for name in &names {
        let started = Instant::now();
        host.delete(name, &ctx).unwrap();
        stop_times.push(started.elapsed());
    }

    // Mount cost by layer count (mount + unmount), the installation at the
    // bottom of every stack.
    let mut mount_rows = Vec::new();
    for layers in [1usize, 10, 100, 500] {
        let lowers: Vec<Layer> = (0..layers - 1)
            .map(|i| {
                let p = OverlayPath::parse(&format!("layer-{i:03}")).unwrap();
                std::fs::create_dir_all(root.overlay(&p)).unwrap();
                Layer::Overlay(p)
            })
            .chain([Layer::Installation(1)])
            .collect();
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir_all(root.path().join("runtime/mountbench").join(d)).unwrap();
        }
        let spec = OverlaySpec {
            lowers,
            upper: "runtime/mountbench/upper".into(),
            work: "runtime/mountbench/work".into(),
            target: "runtime/mountbench/merged".into(),
        };
        let merged = root.path().join(&spec.target);
        let times: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                mount::mount(&root, &spec, MountApi::Auto).unwrap();
                mount::unmount(&merged).unwrap();
                started.elapsed()
            })
            .collect();
        mount_rows.push((layers, median(times)));
    }

    let copy = median(copy_times);
    let start = median(start_times);
    let disk = per_instance_disk.iter().copied().max().unwrap_or(0);
    println!();
    println!(
        "instances: {instances}; installation on disk: {} MiB",
        install_size >> 20
    );
    println!("| per instance (median of {instances}) | time | disk |");
    println!("|---|---|---|");
    println!(
        "| full copy of the installation | {:.1} ms | {} MiB |",
        ms(copy),
        install_size >> 20
    );
    println!(
        "| left4me init + stage + mount + spawn | {:.1} ms | {} KiB (max) |",
        ms(start),
        disk >> 10
    );
    println!(
        "| left4me stop + unmount + delete | {:.1} ms | - |",
        ms(median(stop_times))
    );
    println!();
    println!(
        "speed-up over the copy: {:.0}x; disk ratio: {:.0}x less",
        copy.as_secs_f64() / start.as_secs_f64(),
        install_size as f64 / disk.max(1) as f64
    );
    println!();
    println!("| lower layers | mount + unmount (median of 20) |");
    println!("|---|---|");
    for (layers, t) in mount_rows {
        println!("| {layers} | {:.2} ms |", ms(t));
    }
}
