//! The clients against the srcds simulator, an independent implementation
//! of the server side of both protocols.

use std::time::Duration;

use srcds_protocol::{QueryError, RconClient, RconError, a2s};
use srcds_sim::SimConfig;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn server() -> srcds_sim::SimHandle {
    let config = SimConfig::default()
        .command("hostname \"Sim Under Test\"")
        .command("rcon_password hunter2")
        .command("maxplayers 8")
        .command("sv_tags left4me,test");
    let handle = srcds_sim::start(config).await.unwrap();
    handle.wait_ready().await;
    handle
}

#[tokio::test]
async fn waiting_ends_when_a_booting_server_answers_or_at_the_limit() {
    let sim = srcds_sim::start(SimConfig::default().command("sim_boot_delay_ms 700"))
        .await
        .unwrap();
    let addr = sim.local_addr();
    let mut wait = a2s::ReadyWait::new(addr, Duration::from_secs(10));
    let mut silent = 0;
    let info = loop {
        match wait.next_try().await {
            a2s::Try::Ready(info) => break info,
            a2s::Try::NotYet => silent += 1,
            a2s::Try::TimedOut => panic!("no answer after {:?}", wait.waited()),
        }
    };
    assert_eq!(info.map, "c1m1_hotel");
    assert!(silent >= 1, "it tried while the server was silent");
    assert!(wait.waited() >= Duration::from_millis(700));
    sim.shutdown().await;

    // A silent port: tries until the limit, then says so.
    let mut wait = a2s::ReadyWait::new(addr, Duration::from_millis(600));
    let mut tries = vec![wait.next_try().await];
    while tries.last() == Some(&a2s::Try::NotYet) {
        tries.push(wait.next_try().await);
    }
    assert_eq!(tries.last(), Some(&a2s::Try::TimedOut));
    assert!(tries.len() >= 2, "{tries:?}");
    assert!(wait.waited() >= Duration::from_millis(600));
}

#[tokio::test]
async fn info_players_and_split_rules() {
    let sim = server().await;
    let addr = sim.local_addr();

    let info = a2s::info(addr, TIMEOUT).await.unwrap();
    assert_eq!(info.name, "Sim Under Test");
    assert_eq!(info.map, "c1m1_hotel");
    assert_eq!(info.folder, "left4dead2");
    assert_eq!(info.app_id, 550);
    assert_eq!((info.players, info.max_players), (0, 8));
    assert_eq!(info.port, Some(addr.port()));

    sim.join_player("Coach", None).unwrap();
    sim.join_player("Ellis", Some("STEAM_1:0:42")).unwrap();
    let players = a2s::players(addr, TIMEOUT).await.unwrap();
    let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Coach", "Ellis"]);
    assert_eq!(a2s::info(addr, TIMEOUT).await.unwrap().players, 2);

    // The rules list is longer than one datagram: the simulator splits it.
    let rules = a2s::rules(addr, TIMEOUT).await.unwrap();
    assert!(rules.len() > 50, "{}", rules.len());
    // Only notify cvars are rules, as on real servers.
    let tags = rules.iter().find(|r| r.name == "sv_tags").unwrap();
    assert_eq!(tags.value, "left4me,test");
    assert!(!rules.iter().any(|r| r.name == "rcon_password"));
}

#[tokio::test]
async fn rcon_auth_multi_packet_replies_and_wrong_password() {
    let sim = server().await;
    let addr = sim.local_addr();

    let mut client = RconClient::connect(addr, "hunter2", TIMEOUT).await.unwrap();
    let status = client.exec("status").await.unwrap();
    assert!(status.contains("hostname: Sim Under Test"), "{status}");

    // cvarlist spans many RESPONSE_VALUE packets; it must arrive whole and
    // the next command must get its own reply.
    let cvars = client.exec("cvarlist").await.unwrap();
    assert!(cvars.len() > 4096 * 4, "{} bytes", cvars.len());
    assert!(cvars.contains("hostname"));
    assert!(
        cvars.trim_end().ends_with("convars/concommands"),
        "{}",
        &cvars[cvars.len() - 200..]
    );
    let echo = client.exec("echo after the long one").await.unwrap();
    assert_eq!(echo.trim(), "after the long one");

    let err = RconClient::connect(addr, "wrong", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, RconError::AuthFailed), "{err}");
}

#[tokio::test]
async fn a_stopped_server_times_out() {
    let sim = server().await;
    let addr = sim.local_addr();
    sim.shutdown().await;
    let err = a2s::info(addr, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::Timeout { .. } | QueryError::Io(_)),
        "{err}"
    );
}
