//! A2S queries against an in-process simulator on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{A2s, Reader, info_request, parse_info};
use srcds_sim::{SimConfig, start};

#[tokio::test]
async fn info_requires_a_challenge() {
    let sim = start(SimConfig::default()).await.unwrap();
    sim.wait_ready().await;
    let mut client = A2s::connect(sim.local_addr()).await;

    // Without a challenge: S2C_CHALLENGE, not the info.
    client.send(&info_request()).await;
    let reply = client.recv(common::TIMEOUT).await.unwrap();
    assert_eq!(reply.len(), 5);
    assert_eq!(reply[0], 0x41);
    let challenge: [u8; 4] = reply[1..5].try_into().unwrap();

    // A wrong challenge gets the challenge again.
    let mut wrong = info_request();
    wrong.extend_from_slice(&(u32::from_le_bytes(challenge) ^ 1).to_le_bytes());
    client.send(&wrong).await;
    assert_eq!(client.recv(common::TIMEOUT).await.unwrap(), reply);

    let mut right = info_request();
    right.extend_from_slice(&challenge);
    client.send(&right).await;
    let info = parse_info(&client.recv(common::TIMEOUT).await.unwrap());
    assert_eq!(info.protocol, 17);
    assert_eq!(info.name, "Left 4 Dead 2");
    assert_eq!(info.map, "c1m1_hotel");
    assert_eq!(info.folder, "left4dead2");
    assert_eq!(info.game, "Left 4 Dead 2");
    assert_eq!(info.appid, 550);
    assert_eq!((info.players, info.max_players, info.bots), (0, 8, 0));
    assert_eq!((info.server_type, info.environment), (b'd', b'l'));
    assert_eq!((info.visibility, info.vac), (0, 1));
    assert_eq!(info.version, "2.2.4.3");
    assert_eq!(info.port, sim.local_addr().port());
    assert_eq!(info.steam_id >> 52, 0x14, "anonymous game server id");
    assert_eq!(info.keywords, "coop,empty");
    assert_eq!(info.game_id, 550);
    sim.shutdown().await;
}

#[tokio::test]
async fn info_reflects_cvars() {
    let config = SimConfig {
        map: "c5m1_waterfront".to_owned(),
        vac_secure: false,
        ..SimConfig::default()
    }
    .command("hostname \"Tank Party\"; sv_password hunter2")
    .command("maxplayers 12; mp_gamemode versus; sv_tags hardcore");
    let sim = start(config).await.unwrap();
    sim.wait_ready().await;
    sim.join_player("Coach", None).unwrap();
    let info = A2s::connect(sim.local_addr()).await.info().await;
    assert_eq!(info.name, "Tank Party");
    assert_eq!(info.map, "c5m1_waterfront");
    assert_eq!((info.players, info.max_players), (1, 12));
    assert_eq!((info.visibility, info.vac), (1, 0));
    assert_eq!(info.keywords, "versus,hardcore");
}

#[tokio::test]
async fn player_and_rules_require_a_challenge() {
    let sim = start(SimConfig::default()).await.unwrap();
    sim.wait_ready().await;
    let mut client = A2s::connect(sim.local_addr()).await;
    for kind in [0x55, 0x56] {
        client
            .send(&[0xFF, 0xFF, 0xFF, 0xFF, kind, 0xFF, 0xFF, 0xFF, 0xFF])
            .await;
        let reply = client.recv(common::TIMEOUT).await.unwrap();
        assert_eq!((reply[0], reply.len()), (0x41, 5), "kind {kind:#x}");
        // A request without any challenge bytes gets a challenge too.
        client.send(&[0xFF, 0xFF, 0xFF, 0xFF, kind]).await;
        assert_eq!(client.recv(common::TIMEOUT).await.unwrap()[0], 0x41);
    }
    assert!(client.players().await.is_empty());
}

#[tokio::test]
async fn players_appear_and_leave() {
    let sim = start(SimConfig::default()).await.unwrap();
    sim.wait_ready().await;
    sim.join_player("Rochelle", Some("STEAM_1:0:42")).unwrap();
    sim.execute("sim_join \"Nick the Gambler\"");
    let mut client = A2s::connect(sim.local_addr()).await;
    let players = client.players().await;
    let names: Vec<&str> = players.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Rochelle", "Nick the Gambler"]);
    assert!(players.iter().all(|(_, t)| (0.0..60.0).contains(t)));
    assert!(sim.leave_player("Rochelle"));
    assert_eq!(client.players().await.len(), 1);
    assert_eq!(client.info().await.keywords, "coop");
}

#[tokio::test]
async fn rules_arrive_split_and_reassemble() {
    let sim = start(SimConfig::default().command("sv_password x; sv_gravity 600"))
        .await
        .unwrap();
    sim.wait_ready().await;
    let mut client = A2s::connect(sim.local_addr()).await;
    let rules = client.rules().await;
    assert!(client.last_datagrams >= 2, "{}", client.last_datagrams);
    assert_eq!(rules["sv_gravity"], "600");
    assert_eq!(rules["mp_gamemode"], "coop");
    assert_eq!(rules["sv_password"], "1", "protected values are hidden");
    assert!(!rules.contains_key("rcon_password"));
}

#[tokio::test]
async fn small_packet_size_splits_every_reply() {
    let config = SimConfig {
        max_packet_size: 80,
        ..SimConfig::default()
    };
    let sim = start(config).await.unwrap();
    sim.wait_ready().await;
    let mut client = A2s::connect(sim.local_addr()).await;
    client.split_size = 68;
    let info = client.info().await;
    assert!(client.last_datagrams >= 2);
    assert_eq!(info.map, "c1m1_hotel");
    assert!(client.rules().await.len() > 50);
    assert!(client.last_datagrams > 20);
}

#[tokio::test]
async fn silent_while_booting_and_after_garbage() {
    let sim = start(SimConfig::default().command("sim_boot_delay_ms 400"))
        .await
        .unwrap();
    let mut client = A2s::connect(sim.local_addr()).await;
    client.send(&info_request()).await;
    assert!(client.recv(Duration::from_millis(150)).await.is_none());
    assert!(!sim.is_ready());
    sim.wait_ready().await;
    assert!(
        sim.console_lines()
            .iter()
            .any(|l| l == "Connection to Steam servers successful.")
    );

    for garbage in [
        &[][..],
        &[0xFF],
        &[0xFF, 0xFF, 0xFF, 0xFF],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0x54, b'S'],
        &[
            0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0xE0, 0x04,
        ],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0x99, 0x01],
    ] {
        client.send(garbage).await;
    }
    assert!(client.recv(Duration::from_millis(150)).await.is_none());
    // The legacy challenge request still works, and so does the server.
    client.send(&[0xFF, 0xFF, 0xFF, 0xFF, 0x57]).await;
    let reply = client.recv(common::TIMEOUT).await.unwrap();
    assert_eq!(Reader::new(&reply).u8(), 0x41);
    assert_eq!(client.info().await.map, "c1m1_hotel");
}
