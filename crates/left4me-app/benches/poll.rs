//! One poll cycle over 500 simulated servers (the panel's poller code, in
//! its steady state: each server with its previous answer), against
//! polling one server alone, in the same run; the same cycle with what
//! metrics and graphs add to it (CPU and memory of 500 process trees from
//! one pass over /proc, the history's observations), against the cycle
//! without them (target: within 1.2x); the metrics of 500 servers
//! rendered (target: under 50 ms) and their minute of history written;
//! then the lines the poller adds to an idle server's console per hour,
//! against the previous poller (A2S_INFO, A2S_PLAYER and RCON `status`
//! every cycle). `cargo bench -p left4me-app --bench poll` (target: a
//! cycle under 1 s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use left4me_app::history::History;
use left4me_app::live::{LiveState, PollTarget, ProcessSample, RconMemory, poll_servers};
use left4me_app::metrics::{Metrics, PanelSample, ServerSample};
use left4me_store::{DesiredState, Server};
use srcds_protocol::{RconClient, a2s};
use srcds_sim::SimConfig;

const SERVERS: usize = 500;
/// Poll cycles run against the idle server; an hour is 720 (every 5 s).
const IDLE_CYCLES: u64 = 20;
const CYCLES_PER_HOUR: u64 = 720;

/// One cycle of the previous poller, question for question.
async fn previous_poller_cycle(addr: SocketAddr, password: &str, timeout: Duration) {
    a2s::info(addr, timeout).await.unwrap();
    a2s::players(addr, timeout).await.unwrap();
    let mut rcon = RconClient::connect(addr, password, timeout).await.unwrap();
    rcon.exec("status").await.unwrap();
}

/// Polls `rows` as the poller does: each with its previous answer and what
/// was learnt of asking it over RCON.
async fn poll(
    rows: &[Server],
    before: &[Option<LiveState>],
    memories: &mut [RconMemory],
    timeout: Duration,
) -> Vec<Option<LiveState>> {
    let mut targets: Vec<PollTarget<'_>> = rows
        .iter()
        .zip(
            before
                .iter()
                .map(Option::as_ref)
                .chain(std::iter::repeat(None)),
        )
        .zip(memories.iter_mut())
        .map(|((server, before), rcon)| PollTarget {
            server,
            before,
            rcon,
        })
        .collect();
    poll_servers(&mut targets, timeout).await
}

/// Console lines an idle simulator gets over [`IDLE_CYCLES`] cycles of the
/// panel's poller and of the previous one, per hour.
async fn idle_console_lines(timeout: Duration) -> (u64, u64) {
    let sim = srcds_sim::start(
        SimConfig::default()
            .command("rcon_password pw")
            .command("maxplayers 8"),
    )
    .await
    .expect("a simulator starts");
    sim.wait_ready().await;
    let server = [row(0, &sim)];
    let mut memory = [RconMemory::default()];
    let lines = || sim.console_lines().len() as u64;

    let start = lines();
    for _ in 0..IDLE_CYCLES {
        previous_poller_cycle(sim.local_addr(), "pw", timeout).await;
    }
    let before = lines() - start;

    let start = lines();
    let mut last: Vec<Option<LiveState>> = Vec::new();
    for _ in 0..IDLE_CYCLES {
        last = poll(&server, &last, &mut memory, timeout).await;
        assert!(last[0].is_some(), "the idle server answered");
    }
    let after = lines() - start;
    let per_hour = |n: u64| n * CYCLES_PER_HOUR / IDLE_CYCLES;
    (per_hour(before), per_hour(after))
}

fn row(i: usize, sim: &srcds_sim::SimHandle) -> Server {
    Server {
        id: i64::try_from(i).unwrap(),
        owner_id: 1,
        blueprint_id: 1,
        name: format!("sim-{i}"),
        hostname: format!("sim {i}"),
        port: i64::from(sim.local_addr().port()),
        rcon_password: "pw".into(),
        desired_state: DesiredState::Running,
        created_at: 0,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut sims = Vec::new();
        let mut rows = Vec::new();
        for i in 0..SERVERS {
            let config = SimConfig::default()
                .command(format!("hostname \"sim {i}\""))
                .command("rcon_password pw")
                .command("maxplayers 8");
            let sim = srcds_sim::start(config).await.expect("a simulator starts");
            sim.wait_ready().await;
            if i % 5 == 0 {
                sim.join_player("Coach", Some("STEAM_1:0:42")).unwrap();
            }
            rows.push(row(i, &sim));
            sims.push(sim);
        }
        let timeout = Duration::from_secs(2);
        // The first cycle meets everyone (and asks `status` where players
        // are); the measured ones are the steady state after it.
        let mut memories = vec![RconMemory::default(); SERVERS];
        let previous = poll(&rows, &[], &mut memories, timeout).await;
        let mut single = Vec::new();
        let mut cycle = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            assert!(poll(&rows[..1], &previous, &mut memories, timeout).await[0].is_some());
            single.push(t.elapsed());
            let t = Instant::now();
            let answers = poll(&rows, &previous, &mut memories, timeout).await;
            cycle.push(t.elapsed());
            let answered = answers.iter().filter(|a| a.is_some()).count();
            assert_eq!(answered, SERVERS, "every server answered");
            let with_players = answers
                .iter()
                .flatten()
                .filter(|a| a.online.iter().any(|p| p.steam_id.is_some()))
                .count();
            assert_eq!(with_players, SERVERS / 5, "Steam ids are kept");
        }
        // 500 processes to read, as 500 games would be.
        let games: Vec<std::process::Child> = (0..SERVERS)
            .map(|_| {
                use std::os::unix::process::CommandExt;
                std::process::Command::new("sleep")
                    .arg("600")
                    .process_group(0)
                    .spawn()
                    .expect("sleep starts")
            })
            .collect();
        let pids: Vec<u32> = games.iter().map(std::process::Child::id).collect();
        let history = History::default();
        let mut plain = Vec::new();
        let mut observed = Vec::new();
        let mut last_samples = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let answers = poll(&rows, &previous, &mut memories, timeout).await;
            plain.push(t.elapsed());
            assert_eq!(answers.iter().flatten().count(), SERVERS);
            let t = Instant::now();
            // As the poller does: /proc is read while the servers answer.
            let reading = pids.clone();
            let usage = tokio::task::spawn_blocking(move || {
                left4me_host::usage::of_process_trees(&reading)
            });
            let answers = poll(&rows, &previous, &mut memories, timeout).await;
            let usage = usage.await.unwrap();
            let samples: Vec<ProcessSample> = usage
                .into_iter()
                .map(|usage| ProcessSample {
                    state: "running".into(),
                    running: true,
                    restarts: 0,
                    usage,
                })
                .collect();
            for ((row, answer), sample) in rows.iter().zip(&answers).zip(&samples) {
                history.observe(row.id, answer.as_ref().map(|a| a.players), sample);
            }
            observed.push(t.elapsed());
            assert!(samples.iter().all(|s| s.usage.is_some()), "every tree read");
            last_samples = samples.into_iter().zip(answers).collect();
        }
        for mut game in games {
            let _ = game.kill();
            let _ = game.wait();
        }
        plain.sort();
        observed.sort();
        let metrics = Metrics::default();
        let servers: Vec<ServerSample<'_>> = rows
            .iter()
            .zip(&last_samples)
            .map(|(row, (process, live))| ServerSample {
                name: &row.name,
                wanted: true,
                live: live.as_ref(),
                process: Some(process),
            })
            .collect();
        let mut render = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let t = Instant::now();
            size = metrics.render(&servers, PanelSample::default()).len();
            render.push(t.elapsed());
        }
        render.sort();
        let scratch = tempfile::tempdir().unwrap();
        let store = left4me_store::Store::open(&scratch.path().join("left4me.db"))
            .await
            .unwrap();
        let write_minute: Vec<(i64, left4me_store::Observed)> = (0..SERVERS)
            .map(|i| {
                let mut o = left4me_store::Observed::default();
                o.add(1, Some(5.0), Some(1 << 20));
                (i64::try_from(i).unwrap(), o)
            })
            .collect();
        single.sort();
        cycle.sort();
        let (one, many) = (single[2], cycle[2]);
        println!("| measurement (median of 5) | time |");
        println!("|---|---|");
        println!("| poll one server | {:.1} ms |", one.as_secs_f64() * 1000.0);
        println!(
            "| poll {SERVERS} servers at once | {:.1} ms ({:.1}x one server; target under 1 s) |",
            many.as_secs_f64() * 1000.0,
            many.as_secs_f64() / one.as_secs_f64()
        );
        let (plain, observed) = (plain[2], observed[2]);
        let ratio = observed.as_secs_f64() / plain.as_secs_f64();
        println!(
            "| poll {SERVERS} servers with CPU, memory and history | {:.1} ms ({ratio:.2}x the cycle without, {:.1} ms; target within 1.2x) |",
            observed.as_secs_f64() * 1000.0,
            plain.as_secs_f64() * 1000.0
        );
        let render = render[2];
        println!(
            "| render /metrics of {SERVERS} servers | {:.1} ms ({} KiB; target under 50 ms) |",
            render.as_secs_f64() * 1000.0,
            size / 1024
        );
        write_a_minute_of_history(&store, &write_minute).await;
        drop(sims);
        let (before, after) = idle_console_lines(timeout).await;
        println!();
        println!("| idle server's console, lines per hour from the poller | lines |");
        println!("|---|---|");
        println!("| previous poller (A2S_INFO, A2S_PLAYER, RCON status every 5 s) | {before} |");
        println!("| this poller | {after} |");
        assert!(ratio <= 1.2, "metrics and history cost {ratio:.2}x the cycle");
        assert!(render < Duration::from_millis(50), "render took {render:?}");
    });
}

/// A minute of history for every server written in one transaction (what
/// the writer does once a minute, beside the poller).
async fn write_a_minute_of_history(
    store: &left4me_store::Store,
    minute: &[(i64, left4me_store::Observed)],
) {
    let user = store.create_user("bench", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "bench").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..minute.len() {
        let name = format!("s{i}");
        let server = store
            .create_server(&left4me_store::NewServer {
                owner_id: user.id,
                blueprint_id: bp.id,
                name: &name,
                hostname: "h",
                port: Some(u16::try_from(20_000 + i).unwrap()),
                port_range: 20_000..=30_000,
                rcon_password: "pw",
                held_elsewhere: &[],
            })
            .await
            .unwrap();
        ids.push(server.id);
    }
    let minute: Vec<(i64, left4me_store::Observed)> = ids
        .iter()
        .zip(minute)
        .map(|(id, (_, o))| (*id, *o))
        .collect();
    let mut took = Vec::new();
    for n in 0..5 {
        let t = Instant::now();
        store
            .record_history(1_700_000_000 + n * 60, &minute)
            .await
            .unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    println!(
        "| write a minute of history for {} servers (once a minute, beside the poller) | {:.1} ms |",
        minute.len(),
        took[2].as_secs_f64() * 1000.0
    );
}
