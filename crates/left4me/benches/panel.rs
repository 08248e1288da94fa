//! The panel's footprint: resident memory idle and with 200 servers
//! registered, and the time from process start to the first answered
//! request, against the start of a process that does nothing (`left4me
//! config default`) measured in the same run. Run with
//! `cargo bench -p left4me --bench panel`.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::LEFT4ME;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Starts the panel and returns it once /health answers, with the time
/// that took.
// The child goes back to the caller, which stops and reaps it.
#[allow(clippy::zombie_processes)]
fn start_panel(root: &Path, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let child = common::spawn_panel(root, port);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                return (child, started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            common::stop(child);
            panic!("the panel did not come up");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Baseline: a process of the same binary that starts and exits.
    let baseline = median(
        (0..20)
            .map(|_| {
                let t = Instant::now();
                let status = Command::new(LEFT4ME)
                    .args(["config", "default"])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
                t.elapsed()
            })
            .collect(),
    );

    // First start creates and migrates the database; then ten warm starts.
    let (child, first_start) = start_panel(root, free_port());
    common::stop(child);
    let mut starts = Vec::new();
    let mut idle_rss = Vec::new();
    for _ in 0..10 {
        let (child, took) = start_panel(root, free_port());
        starts.push(took);
        std::thread::sleep(Duration::from_millis(500));
        idle_rss.push(rss_kib(child.id()));
        common::stop(child);
    }

    // 200 servers registered, and a logged-in dashboard listing them all.
    let token = common::TOKEN;
    runtime.block_on(common::seed(root, 200, || None));
    let port = free_port();
    let (child, _) = start_panel(root, port);
    std::thread::sleep(Duration::from_millis(500));
    let rss_200_idle = rss_kib(child.id());
    let client = reqwest::Client::new();
    let dashboard: Vec<Duration> = runtime.block_on(async {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let res = client
                .get(format!("http://127.0.0.1:{port}/"))
                .header("cookie", format!("left4me_session={token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body = res.text().await.unwrap();
            assert!(body.contains("server-199"));
            times.push(t.elapsed());
        }
        times
    });
    let rss_200_after = rss_kib(child.id());
    common::stop(child);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| baseline: `left4me config default` start to exit (median of 20) | {:.1} ms |",
        ms(baseline)
    );
    println!(
        "| first start (creates + migrates the database) to first answer | {:.1} ms |",
        ms(first_start)
    );
    println!(
        "| warm start to first answered request (median of 10) | {:.1} ms ({:.1}x the baseline) |",
        ms(median(starts.clone())),
        median(starts).as_secs_f64() / baseline.as_secs_f64()
    );
    idle_rss.sort_unstable();
    println!(
        "| idle resident memory, no servers (median of 10) | {:.1} MiB |",
        idle_rss[idle_rss.len() / 2] as f64 / 1024.0
    );
    println!(
        "| idle resident memory, 200 servers registered | {:.1} MiB |",
        rss_200_idle as f64 / 1024.0
    );
    println!(
        "| resident memory after 20 dashboard renders of 200 servers | {:.1} MiB |",
        rss_200_after as f64 / 1024.0
    );
    println!(
        "| dashboard with 200 servers (median of 20) | {:.1} ms |",
        ms(median(dashboard))
    );
}
