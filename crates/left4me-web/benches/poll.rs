//! One poll cycle over 500 simulated servers (A2S_INFO, A2S_PLAYER and RCON
//! `status` each), against polling one server alone, in the same run.
//! `cargo bench -p left4me-web --bench poll` (target: under 1 s).

use std::time::{Duration, Instant};

use left4me_store::{DesiredState, Server};
use left4me_web::live::poll_servers;
use srcds_sim::SimConfig;

const SERVERS: usize = 500;

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
            rows.push(Server {
                id: i64::try_from(i).unwrap(),
                owner_id: 1,
                blueprint_id: 1,
                name: format!("sim-{i}"),
                hostname: format!("sim {i}"),
                port: i64::from(sim.local_addr().port()),
                rcon_password: "pw".into(),
                desired_state: DesiredState::Running,
                created_at: 0,
            });
            sims.push(sim);
        }
        let timeout = Duration::from_secs(2);
        let one: Vec<&Server> = rows.iter().take(1).collect();
        let all: Vec<&Server> = rows.iter().collect();
        let mut single = Vec::new();
        let mut cycle = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            assert!(poll_servers(&one, timeout).await[0].is_some());
            single.push(t.elapsed());
            let t = Instant::now();
            let answers = poll_servers(&all, timeout).await;
            cycle.push(t.elapsed());
            let answered = answers.iter().filter(|a| a.is_some()).count();
            assert_eq!(answered, SERVERS, "every server answered");
            let with_players = answers
                .iter()
                .flatten()
                .filter(|a| !a.online.is_empty())
                .count();
            assert_eq!(with_players, SERVERS / 5);
        }
        single.sort();
        cycle.sort();
        let (one, many) = (single[2], cycle[2]);
        println!("| measurement (median of 5) | time |");
        println!("|---|---|");
        println!(
            "| poll one server (A2S_INFO + A2S_PLAYER + RCON status) | {:.1} ms |",
            one.as_secs_f64() * 1000.0
        );
        println!(
            "| poll {SERVERS} servers at once | {:.1} ms ({:.1}x one server; target under 1 s) |",
            many.as_secs_f64() * 1000.0,
            many.as_secs_f64() / one.as_secs_f64()
        );
    });
}
