//! Page latency and throughput under `wrk` on loopback: the dashboard, a
//! server page and the API's server list with 200 servers registered and
//! 20 running, against
//! `/health` (the cheapest route) in the same run. Needs root and `wrk`
//! (Debian package). `cargo bench -p left4me --bench pages`. Fails when
//! the dashboard or the API's list answers fewer than 5,000 requests/s or
//! has a p99 of 10 ms or more.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::LEFT4ME;
const SRCDS_SIM: &str = env!("CARGO_BIN_EXE_srcds-sim");
const REGISTERED: usize = 200;
const RUNNING: usize = 20;

fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// (requests/s, p50 ms, p99 ms) from `wrk --latency` output.
fn wrk(url: &str, token: &str) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            "-d5s",
            "--latency",
            "-H",
            &format!("Cookie: left4me_session={token}"),
            url,
        ])
        .output()
        .expect("wrk must be installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "errors from {url}:\n{text}");
    let ms = |v: &str| -> f64 {
        if let Some(n) = v.strip_suffix("ms") {
            n.parse().unwrap()
        } else if let Some(n) = v.strip_suffix("us") {
            n.parse::<f64>().unwrap() / 1000.0
        } else {
            v.trim_end_matches('s').parse::<f64>().unwrap() * 1000.0
        }
    };
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
    };
    (
        find("Requests/sec:").parse().unwrap(),
        ms(&find("50%")),
        ms(&find("99%")),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    assert!(
        rustix::process::geteuid().is_root(),
        "this benchmark starts servers on overlayfs: run it as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let status = Command::new(SRCDS_SIM)
        .arg("make-installation")
        .arg(root.join("installation"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let (token, csrf) = (common::TOKEN, common::CSRF);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ports = std::collections::HashSet::new();
    runtime.block_on(common::seed(&root, REGISTERED, || {
        std::iter::repeat_with(free_port).find(|p| ports.insert(*p))
    }));
    let port = common::loopback_port();
    let panel = common::spawn_panel(&root, port);
    common::wait_listening(port);
    let base = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for id in 1..=RUNNING {
            let res = client
                .post(format!("{base}/servers/{id}/action"))
                .header("cookie", format!("left4me_session={token}"))
                .header("x-csrf-token", csrf)
                .form(&[("action", "start")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in 1..=RUNNING {
        loop {
            let out = Command::new(LEFT4ME)
                .args([
                    "--root",
                    root.to_str().unwrap(),
                    "instance",
                    "status",
                    &format!("server-{id}"),
                    "--json",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("\"running\": true") {
                break;
            }
            assert!(Instant::now() < deadline, "server {id} did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Let the poller see them all once.
    std::thread::sleep(Duration::from_secs(6));

    let health = wrk(&format!("{base}/health"), token);
    let dashboard = wrk(&format!("{base}/"), token);
    let server_page = wrk(&format!("{base}/servers/1"), token);
    // The API's list with the same session (reading needs no CSRF header).
    let api = wrk(&format!("{base}/api/v1/servers?limit=200"), token);

    for id in 1..=RUNNING {
        let _ = Command::new(LEFT4ME)
            .args([
                "--root",
                root.to_str().unwrap(),
                "instance",
                "stop",
                &format!("server-{id}"),
            ])
            .stderr(Stdio::null())
            .status();
    }
    common::stop(panel);

    println!("wrk -t2 -c16 -d5s, {REGISTERED} servers registered, {RUNNING} running");
    println!("| route | requests/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, (rps, p50, p99)) in [
        ("/health (baseline)", health),
        ("/ (dashboard)", dashboard),
        ("/servers/1", server_page),
        ("/api/v1/servers?limit=200", api),
    ] {
        println!(
            "| {name} | {rps:.0} ({:.2}x baseline) | {p50:.2} ms | {p99:.2} ms |",
            rps / health.0
        );
    }
    // Issue 18's target for the lists, on the 2-core machine.
    for (name, (rps, _, p99)) in [("the dashboard", dashboard), ("the API's list", api)] {
        assert!(
            rps >= 5000.0 && p99 < 10.0,
            "{name}: {rps:.0} requests/s, p99 {p99:.2} ms (target: at least 5,000/s, p99 under 10 ms)"
        );
    }
}
