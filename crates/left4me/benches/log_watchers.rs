//! Watchers of a server's live log over SSE while the log grows by 1,000
//! lines per second: every watcher must get every line, in order; the
//! panel's CPU time with 100 watchers is compared with 10 in the same
//! run. `cargo bench -p left4me --bench log_watchers`.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

const LINES_PER_SEC: u64 = 1000;
const SECONDS: u64 = 5;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Runs `watchers` SSE clients while lines are appended; returns the
/// panel's CPU seconds and whether every client saw every line in order.
async fn run(
    port: u16,
    pid: u32,
    log: &std::path::Path,
    token: &str,
    watchers: usize,
    first: u64,
) -> (f64, usize) {
    let client = reqwest::Client::new();
    let total = LINES_PER_SEC * SECONDS;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let res = client
            .get(format!("http://127.0.0.1:{port}/servers/1/log/events"))
            .header("cookie", format!("left4me_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        tasks.push(tokio::spawn(async move {
            let mut stream = res.bytes_stream();
            let (mut buffer, mut expected) = (String::new(), first);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(SECONDS + 20);
            while expected < first + total {
                let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await
                else {
                    return false;
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    // An event carries a batch: one `data:` field per line.
                    for n in block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: line "))
                        .filter_map(|n| n.parse::<u64>().ok())
                    {
                        if n < first {
                            continue; // the backlog of an earlier round
                        }
                        if n != expected {
                            return false;
                        }
                        expected += 1;
                    }
                }
            }
            true
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_ticks(pid);
    let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let started = Instant::now();
    for n in first..first + total {
        writeln!(file, "line {n}").unwrap();
        let due = Duration::from_micros((n - first + 1) * 1_000_000 / LINES_PER_SEC);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut complete = 0;
    for task in tasks {
        if task.await.unwrap() {
            complete += 1;
        }
    }
    let ticks = cpu_ticks(pid) - cpu_before;
    (ticks as f64 / 100.0, complete)
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
    runtime.block_on(common::seed(&root, 1, || None));
    let log = root.join("runtime/server-1/console.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "boot\n").unwrap();
    let port = common::loopback_port();
    let panel = common::spawn_panel(&root, port);
    common::wait_listening(port);
    let pid = panel.id();
    let total = LINES_PER_SEC * SECONDS;
    // Each round appends its own numbered lines after the previous one's.
    let rounds: Vec<(usize, f64, usize)> = [1, 10, 100]
        .into_iter()
        .enumerate()
        .map(|(i, watchers)| {
            let first = total * i as u64;
            let (cpu, ok) = runtime.block_on(run(port, pid, &log, common::TOKEN, watchers, first));
            (watchers, cpu, ok)
        })
        .collect();
    common::stop(panel);
    println!(
        "| watchers | lines each ({LINES_PER_SEC}/s for {SECONDS} s) | complete and in order | panel CPU |"
    );
    println!("|---|---|---|---|");
    // CPU time comes in 10 ms ticks, too coarse for one watcher: 10 is the
    // baseline, and linear growth to 100 would be 10x.
    let ten = rounds[1].1.max(0.01);
    for (watchers, cpu, ok) in &rounds {
        let ratio = if *watchers == 100 {
            format!(" ({:.1}x 10 watchers)", cpu / ten)
        } else {
            String::new()
        };
        println!("| {watchers} | {total} | {ok}/{watchers} | {cpu:.2} s{ratio} |");
    }
    assert!(
        rounds.iter().all(|(watchers, _, ok)| watchers == ok),
        "every watcher gets every line"
    );
}
