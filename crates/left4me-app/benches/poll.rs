//! One poll cycle over 500 simulated servers (the panel's poller code, in
//! its steady state: each server with its previous answer), against
//! polling one server alone, in the same run; then the lines the poller
//! adds to an idle server's console per hour, against the previous poller
//! (A2S_INFO, A2S_PLAYER and RCON `status` every cycle).
//! `cargo bench -p left4me-web --bench poll` (target: under 1 s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use left4me_app::live::{LiveState, poll_servers};
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
    let server = row(0, &sim);
    let lines = || sim.console_lines().len() as u64;

    let start = lines();
    for _ in 0..IDLE_CYCLES {
        previous_poller_cycle(sim.local_addr(), "pw", timeout).await;
    }
    let before = lines() - start;

    let start = lines();
    let mut last: Option<LiveState> = None;
    for _ in 0..IDLE_CYCLES {
        last = poll_servers(&[(&server, last.as_ref())], timeout)
            .await
            .pop()
            .flatten();
        assert!(last.is_some(), "the idle server answered");
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
        let first: Vec<(&Server, Option<&LiveState>)> = rows.iter().map(|r| (r, None)).collect();
        let previous = poll_servers(&first, timeout).await;
        let all: Vec<(&Server, Option<&LiveState>)> = rows
            .iter()
            .zip(&previous)
            .map(|(r, p)| (r, p.as_ref()))
            .collect();
        let one = &all[..1];
        let mut single = Vec::new();
        let mut cycle = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            assert!(poll_servers(one, timeout).await[0].is_some());
            single.push(t.elapsed());
            let t = Instant::now();
            let answers = poll_servers(&all, timeout).await;
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
        drop(sims);
        let (before, after) = idle_console_lines(timeout).await;
        println!();
        println!("| idle server's console, lines per hour from the poller | lines |");
        println!("|---|---|");
        println!("| previous poller (A2S_INFO, A2S_PLAYER, RCON status every 5 s) | {before} |");
        println!("| this poller | {after} |");
    });
}
