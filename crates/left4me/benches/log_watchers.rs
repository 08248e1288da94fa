//! Watchers of a server's live log over SSE while the log grows by 1,000
//! lines per second: every watcher must get every line, in order; the
//! panel's CPU time with 100 watchers is compared with 1 watcher in the
//! same run. `cargo bench -p left4me --bench log_watchers`.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use left4me_store::{NewServer, Store};

const LEFT4ME: &str = env!("CARGO_BIN_EXE_left4me");
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
                    if let Some(n) = block
                        .lines()
                        .find_map(|l| l.strip_prefix("data: line "))
                        .and_then(|n| n.parse::<u64>().ok())
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
    let token = "0".repeat(64);
    runtime.block_on(async {
        let store = Store::open(&root.join("left4me.db")).await.unwrap();
        let user = store.create_user("bench", "x", true).await.unwrap();
        let bp = store.create_blueprint(user.id, "bench").await.unwrap();
        store
            .create_server(&NewServer {
                owner_id: user.id,
                blueprint_id: bp.id,
                name: "noisy",
                hostname: "noisy",
                port: None,
                port_range: 30000..=30999,
                rcon_password: "x",
            })
            .await
            .unwrap();
        store
            .create_session(
                &left4me_web::auth::token_hash(&token),
                user.id,
                &"1".repeat(64),
                3600,
            )
            .await
            .unwrap();
        store.close().await;
    });
    let log = root.join("runtime/server-1/console.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "boot\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut panel: Child = Command::new(LEFT4ME)
        .args([
            "--root",
            root.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = panel.id();
    let total = LINES_PER_SEC * SECONDS;
    let (one_cpu, one_ok) = runtime.block_on(run(port, pid, &log, &token, 1, 0));
    let (many_cpu, many_ok) = runtime.block_on(run(port, pid, &log, &token, 100, total));
    let _ = panel.kill();
    let _ = panel.wait();
    println!(
        "| watchers | lines each ({LINES_PER_SEC}/s for {SECONDS} s) | complete and in order | panel CPU |"
    );
    println!("|---|---|---|---|");
    println!("| 1 | {total} | {one_ok}/1 | {one_cpu:.2} s |");
    println!(
        "| 100 | {total} | {many_ok}/100 | {many_cpu:.2} s ({:.1}x one watcher) |",
        many_cpu / one_cpu.max(0.01)
    );
    assert_eq!((one_ok, many_ok), (1, 100), "every watcher gets every line");
}
