//! What a script build's sandbox costs to start and end, through the
//! real code path (`Bubblewrap::run` of a script that only exits): the
//! whole sandbox with its filtered network namespace and pasta, against
//! the baseline of bubblewrap alone running the same `true`, both
//! measured in this run. Needs root (the network namespace), bubblewrap,
//! iproute2, nftables and passt. Run with
//! `cargo bench -p left4me --bench sandbox`.
//!
//! The builds send no traffic: pasta attaches to this host's network,
//! and the script exits at once.
//!
//! Knobs (environment): BENCH_BUILDS (20).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::sandbox::bubblewrap::Bubblewrap;
use left4me_host::sandbox::network::BuildNetwork;
use left4me_host::sandbox::{BuildRun, Limits, Sandbox};
use support::{env_or, median, ms};

/// The sandbox's whole cost must stay under this many bare bubblewrap
/// starts.
const TARGET_RATIO: f64 = 25.0;

fn main() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the sandbox bench makes network namespaces: run it as root"
    );
    let builds: usize = env_or("BENCH_BUILDS", 20);
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Bubblewrap::new(Limits::default());

    let bare = median(
        (0..builds)
            .map(|_| {
                let started = Instant::now();
                let status = Command::new(&sandbox.bwrap)
                    .args(["--ro-bind", "/", "/", "--unshare-all", "--", "true"])
                    .status()
                    .expect("bubblewrap (apt install bubblewrap)");
                assert!(status.success());
                started.elapsed()
            })
            .collect(),
    );

    let mut uplink = String::new();
    let whole = median(
        (0..builds)
            .map(|i| {
                let build = dir.path().join(format!("b{i}"));
                std::fs::create_dir_all(build.join("layer")).unwrap();
                std::fs::write(build.join("script.sh"), "exit 0\n").unwrap();
                let lines = std::sync::Mutex::new(Vec::new());
                let sink = |e: Event| {
                    if let Event::Step(l) | Event::Stderr(l) = e {
                        lines.lock().unwrap().push(l);
                    }
                };
                let started = Instant::now();
                let result = sandbox.run(
                    &BuildRun {
                        name: &format!("bench-{}-{i}", std::process::id()),
                        dir: &build,
                        hidden: &[],
                    },
                    &Ctx::new(&sink, &CancellationToken::new()),
                );
                let took = started.elapsed();
                let lines = lines.into_inner().unwrap();
                assert!(result.is_ok(), "{result:?}: {lines:?}");
                uplink = lines
                    .into_iter()
                    .find(|l| l.contains("network"))
                    .unwrap_or_default();
                took
            })
            .collect(),
    );

    let network = median(
        (0..builds)
            .map(|i| {
                let network = BuildNetwork::new(&format!("bench-net-{}-{i}", std::process::id()));
                let started = Instant::now();
                network.up().expect("the build's network namespace");
                network.down();
                started.elapsed()
            })
            .collect(),
    );

    let ratio = whole.as_secs_f64() / bare.as_secs_f64();
    println!("script builds of `exit 0`, median of {builds}:");
    println!(
        "  bubblewrap alone (baseline):          {:8.1} ms",
        ms(bare)
    );
    println!(
        "  the whole sandbox, with its network:  {:8.1} ms",
        ms(whole)
    );
    println!(
        "    of which the network, up and down: {:8.1} ms",
        ms(network)
    );
    println!("  ratio: {ratio:.1}x (target: under {TARGET_RATIO}x)");
    println!("  the build said: {uplink}");
    assert!(
        !Path::new("/run/netns")
            .read_dir()
            .is_ok_and(|mut d| d
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains("bench-")))),
        "every namespace was removed"
    );
    assert!(
        ratio < TARGET_RATIO,
        "the sandbox took {ratio:.1}x a bare bubblewrap start, over the {TARGET_RATIO}x target"
    );
}
