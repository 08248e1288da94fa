//! RCON against an in-process simulator on 127.0.0.1.

mod common;

use common::{A2s, Packet, Rcon};
use srcds_sim::{SimConfig, SimExit, SimHandle, start};

async fn server_with_password() -> SimHandle {
    let sim = start(SimConfig::default().command("rcon_password s3cret"))
        .await
        .unwrap();
    sim.wait_ready().await;
    sim
}

#[tokio::test]
async fn auth_accepts_the_password_only() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(!rcon.auth("wrong").await);
    assert!(rcon.auth("s3cret").await);
    let (output, _) = rcon.exec("echo hi").await;
    assert_eq!(output, "hi\n");
    let peer = sim
        .console_lines()
        .into_iter()
        .find(|l| l.ends_with("command \"echo hi\""));
    assert!(peer.is_some_and(|l| l.starts_with("rcon from \"127.0.0.1:")));
    assert!(
        sim.console_lines()
            .iter()
            .any(|l| l.ends_with("Bad Password"))
    );
}

#[tokio::test]
async fn commands_before_auth_are_ignored() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    rcon.send(1, 2, b"sim_join Intruder").await;
    assert!(rcon.auth("s3cret").await);
    assert!(sim.players().is_empty());
}

#[tokio::test]
async fn no_password_means_no_rcon_and_failures_close() {
    let sim = start(SimConfig::default()).await.unwrap();
    sim.wait_ready().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(!rcon.auth("").await);
    for _ in 1..5 {
        assert!(!rcon.auth("guess").await);
    }
    // sv_rcon_maxfailures (5) reached: the server hangs up.
    assert_eq!(rcon.recv().await, None);
    assert!(
        sim.console_lines()
            .iter()
            .any(|l| l.starts_with("Banning 127.0.0.1"))
    );
}

#[tokio::test]
async fn malformed_packets_close_the_connection() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    rcon.send(1, 3, &vec![b'x'; 5000]).await;
    assert_eq!(rcon.recv().await, None);
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
}

#[tokio::test]
async fn cvarlist_spans_packets_until_the_mirror() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    let (output, packets) = rcon.exec("cvarlist").await;
    assert!(output.len() > 60_000, "{}", output.len());
    assert!(packets >= 15, "{packets} packets");
    assert!(output.starts_with("cvar list\n"));
    assert!(output.contains("\nhostname "));
    assert!(output.trim_end().ends_with("total convars/concommands"));
    // The connection is still in step afterwards.
    assert_eq!(rcon.exec("echo after").await.0, "after\n");
}

#[tokio::test]
async fn empty_output_gets_one_empty_packet() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    rcon.send(7, 2, b"sv_cheats 1").await;
    assert_eq!(
        rcon.recv().await,
        Some(Packet {
            id: 7,
            kind: 0,
            body: Vec::new()
        })
    );
    assert_eq!(sim.cvar("sv_cheats").as_deref(), Some("1"));
}

#[tokio::test]
async fn commands_and_cvars() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    assert_eq!(rcon.exec("hostname Bile Bomb").await.0, "");
    assert!(
        rcon.exec("hostname")
            .await
            .0
            .starts_with("\"hostname\" = \"Bile Bomb\"")
    );
    assert_eq!(
        rcon.exec("nosuch 1").await.0,
        "Unknown command \"nosuch\"\n"
    );
    assert_eq!(rcon.exec("say hello all").await.0, "Console: hello all\n");
    assert!(
        sim.console_lines()
            .iter()
            .any(|l| l == "Console: hello all")
    );
    assert_eq!(
        rcon.exec("exec missing").await.0,
        "exec: couldn't exec missing.cfg\n"
    );
    assert_eq!(
        A2s::connect(sim.local_addr()).await.info().await.name,
        "Bile Bomb"
    );
}

#[tokio::test]
async fn sim_join_shows_in_status_and_players() {
    let sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    let (status, _) = rcon.exec("status").await;
    assert!(status.contains("players : 0 humans, 0 bots (8 max) (hibernating)"));

    let (joined, _) = rcon.exec("sim_join Ellis STEAM_1:0:12345").await;
    assert!(joined.contains("Client \"Ellis\" connected (127.0.0.1:27005)."));
    let (status, _) = rcon.exec("status").await;
    let port = sim.local_addr().port();
    let expected_head = format!(
        "hostname: Left 4 Dead 2\nversion : 2.2.4.3 8919 secure  (unknown)\n\
         udp/ip  : 127.0.0.1:{port} [ public n/a ]\nos      :  Linux Dedicated\n\
         map     : c1m1_hotel\nplayers : 1 humans, 0 bots (8 max) (not hibernating)\n\n\
         # userid name uniqueid connected ping loss state rate adr\n"
    );
    assert!(status.starts_with(&expected_head), "{status}");
    let line = status.lines().nth(8).unwrap();
    assert!(
        line.starts_with("#  2 \"Ellis\" STEAM_1:0:12345 00:0"),
        "{line}"
    );
    assert!(line.ends_with(" 0 active 30000 127.0.0.1:27005"), "{line}");
    assert!(status.ends_with("#end\n"));

    let players = A2s::connect(sim.local_addr()).await.players().await;
    assert_eq!(players.len(), 1);
    assert_eq!(players[0].0, "Ellis");

    let (left, _) = rcon.exec("sim_leave Ellis").await;
    assert!(left.starts_with("Dropped Ellis from server"));
    assert!(sim.players().is_empty());
}

#[tokio::test]
async fn map_change_reruns_server_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("left4dead2/cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("server.cfg"),
        "rcon_password s3cret\nsay cfg ran\n",
    )
    .unwrap();
    let config = SimConfig {
        root: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let sim = start(config).await.unwrap();
    sim.wait_ready().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    rcon.exec("changelevel c2m1_highway").await;
    assert_eq!(sim.map(), "c2m1_highway");
    rcon.exec("map c3m1_plankcountry versus").await;
    let info = A2s::connect(sim.local_addr()).await.info().await;
    assert_eq!(info.map, "c3m1_plankcountry");
    assert_eq!(info.keywords, "versus,empty");
    let console = sim.console_lines();
    let count = |needle: &str| console.iter().filter(|l| l.as_str() == needle).count();
    assert_eq!(count("Console: cfg ran"), 3);
    assert_eq!(count("-------- Mapchange to c2m1_highway --------"), 1);
    assert_eq!(count("---- Host_Changelevel ----"), 1);
    assert_eq!(
        count("Executing dedicated server config file server.cfg"),
        3
    );
    assert!(
        rcon.exec("map ../../etc/passwd")
            .await
            .0
            .starts_with("map load failed")
    );
}

#[tokio::test]
async fn quit_replies_then_exits_cleanly() {
    let mut sim = server_with_password().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    rcon.send(5, 2, b"quit").await;
    let reply = rcon.recv().await.unwrap();
    assert_eq!((reply.id, reply.kind), (5, 0));
    assert_eq!(sim.wait().await, SimExit::Quit);
    assert_eq!(rcon.recv().await, None);
    assert!(
        tokio::net::TcpStream::connect(sim.local_addr())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sim_crash_drops_everything() {
    let mut sim = start(SimConfig::default().command("rcon_password s3cret; sim_exit_code 134"))
        .await
        .unwrap();
    sim.wait_ready().await;
    let mut rcon = Rcon::connect(sim.local_addr()).await;
    assert!(rcon.auth("s3cret").await);
    rcon.send(5, 2, b"sim_crash").await;
    assert_eq!(rcon.recv().await, None);
    let exit = sim.wait().await;
    assert_eq!(exit, SimExit::Crash { code: 134 });
    assert_eq!(exit.exit_code(), 134);
}

#[tokio::test]
async fn crash_after_a_delay() {
    let mut sim = start(SimConfig::default().command("sim_crash_after_ms 100"))
        .await
        .unwrap();
    let exit = tokio::time::timeout(common::TIMEOUT, sim.wait()).await;
    assert_eq!(exit.ok(), Some(SimExit::Crash { code: 139 }));
    assert!(
        sim.console_lines()
            .iter()
            .any(|l| l.contains("Segmentation fault"))
    );
}

#[tokio::test]
async fn shutdown_closes_the_ports() {
    let sim = server_with_password().await;
    let addr = sim.local_addr();
    assert_eq!(sim.shutdown().await, SimExit::Shutdown);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The port is free again for the next server.
    let config = SimConfig {
        port: addr.port(),
        ..SimConfig::default()
    };
    let again = start(config).await.unwrap();
    assert_eq!(again.local_addr(), addr);
}
