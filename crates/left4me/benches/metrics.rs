//! `/metrics` of a panel with 500 servers, end to end (the panel's own
//! process, its metrics listener, the database and the poller's view):
//! sequential scrapes' median and 99th percentile against `/health` in the
//! same run. Target: every scrape under 50 ms. `cargo bench -p left4me
//! --bench metrics`.

mod common;

use std::time::{Duration, Instant};

const SERVERS: usize = 500;
const SCRAPES: usize = 200;

/// Median and 99th percentile of `SCRAPES` sequential GETs of `url`, and
/// the last body.
async fn timed(url: &str) -> (Duration, Duration, String) {
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    let mut body = String::new();
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let res = client.get(url).send().await.unwrap();
        assert!(res.status().is_success(), "{url}: {}", res.status());
        body = res.text().await.unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    (took[SCRAPES / 2], took[SCRAPES * 99 / 100], body)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(common::seed(&root, SERVERS, || None));
    let (port, metrics_port) = (common::loopback_port(), common::loopback_port());
    let panel = common::spawn_panel_with(
        &root,
        port,
        &[(
            "LEFT4ME_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )],
    );
    common::wait_listening(port);
    common::wait_listening(metrics_port);
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let health = format!("http://127.0.0.1:{port}/health");
    let ((health_median, health_p99, _), (median, p99, body)) = runtime.block_on(async {
        // Until the poller has seen every server once.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
            if body.matches("left4me_server_running{").count() == SERVERS {
                break;
            }
            assert!(Instant::now() < deadline, "the poller never saw them all");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (timed(&health).await, timed(&metrics).await)
    });
    common::stop(panel);
    println!("| sequential GETs ({SCRAPES}), {SERVERS} servers | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| `/health` | {:.2} ms | {:.2} ms |",
        health_median.as_secs_f64() * 1000.0,
        health_p99.as_secs_f64() * 1000.0
    );
    println!(
        "| `/metrics` ({} KiB) | {:.2} ms ({:.1}x `/health`) | {:.2} ms (target under 50 ms) |",
        body.len() / 1024,
        median.as_secs_f64() * 1000.0,
        median.as_secs_f64() / health_median.as_secs_f64(),
        p99.as_secs_f64() * 1000.0
    );
    assert!(p99 < Duration::from_millis(50), "/metrics p99 {p99:?}");
}
