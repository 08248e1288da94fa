//! A2S clients against fake servers on real loopback UDP sockets.
//!
//! The fake servers build every datagram by hand from the documented byte
//! layout, independently of the crate's own encoder and parser.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srcds_protocol::a2s::{self, Info, Player, QueryError, Rule};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Limit for queries that are expected to succeed: generous, never reached.
const GENEROUS: Duration = Duration::from_secs(5);
/// Limit for queries that are expected to time out.
const SHORT: Duration = Duration::from_millis(300);
/// A timed-out query must return well within this (the bound, not a benchmark).
const RETURNS_WITHIN: Duration = Duration::from_secs(2);

const INFO_REQUEST: &[u8] = b"\xFF\xFF\xFF\xFF\x54Source Engine Query\x00";
const CHALLENGE: [u8; 4] = [0x0A, 0x0B, 0x0C, 0x0D];

async fn fake_server() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Receives one datagram; fails the test instead of hanging forever.
async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (len, from) = tokio::time::timeout(GENEROUS, socket.recv_from(&mut buf))
        .await
        .expect("fake server got no request")
        .unwrap();
    buf.truncate(len);
    (buf, from)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `FF FF FF FF 41` + the challenge.
fn challenge_reply() -> Vec<u8> {
    concat(&[b"\xFF\xFF\xFF\xFF\x41", &CHALLENGE])
}

/// The `A2S_INFO` reply with every extra data field, byte by byte.
fn full_info_reply(name: &str) -> Vec<u8> {
    concat(&[
        b"\xFF\xFF\xFF\xFF\x49",
        b"\x11",
        name.as_bytes(),
        b"\x00",
        b"c2m1_highway\x00",
        b"left4dead2\x00",
        b"Left 4 Dead 2\x00",
        b"\x26\x02", // app id 550
        b"\x03\x08\x01",
        b"dl",
        b"\x01\x01",
        b"2.2.4.3\x00",
        b"\xF1",                             // EDF: port, steamid, tv, keywords, gameid
        b"\x87\x69",                         // port 27015
        b"\x01\x00\x10\x01\x01\x00\x40\x01", // steamid 0x0140_0001_0110_0001
        b"\x8C\x69",                         // tv port 27020
        b"Relay\x00",
        b"coop,versus\x00",
        b"\x26\x02\x00\x00\x00\x00\x00\x00", // game id 550
    ])
}

fn expected_info(name: &str) -> Info {
    Info {
        protocol: 17,
        name: name.to_owned(),
        map: "c2m1_highway".to_owned(),
        folder: "left4dead2".to_owned(),
        game: "Left 4 Dead 2".to_owned(),
        app_id: 550,
        players: 3,
        max_players: 8,
        bots: 1,
        server_type: 'd',
        environment: 'l',
        visibility: true,
        vac: true,
        version: "2.2.4.3".to_owned(),
        port: Some(27015),
        steam_id: Some(0x0140_0001_0110_0001),
        tv: Some((27020, "Relay".to_owned())),
        keywords: Some("coop,versus".to_owned()),
        game_id: Some(550),
    }
}

/// Spawns a server that answers the first request with `reply` only.
fn answer_once(socket: UdpSocket, reply: Vec<u8>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (_, from) = recv(&socket).await;
        socket.send_to(&reply, from).await.unwrap();
    })
}

#[tokio::test]
async fn info_with_challenge_and_all_extra_fields() {
    let (socket, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        let (first, from) = recv(&socket).await;
        assert_eq!(first, INFO_REQUEST);
        socket.send_to(&challenge_reply(), from).await.unwrap();
        let (second, from) = recv(&socket).await;
        assert_eq!(second, concat(&[INFO_REQUEST, &CHALLENGE]));
        socket
            .send_to(&full_info_reply("My Server"), from)
            .await
            .unwrap();
    });
    let info = a2s::info(addr, GENEROUS).await.unwrap();
    assert_eq!(info, expected_info("My Server"));
    server.await.unwrap();
}

#[tokio::test]
async fn info_without_challenge_is_accepted_directly() {
    let (socket, addr) = fake_server().await;
    let server = answer_once(socket, full_info_reply("No Challenge"));
    let info = a2s::info(addr, GENEROUS).await.unwrap();
    assert_eq!(info, expected_info("No Challenge"));
    server.await.unwrap();
}

#[tokio::test]
async fn duplicate_challenge_and_stray_datagrams_are_ignored() {
    let (socket, addr) = fake_server().await;
    let (stranger, _) = fake_server().await;
    let server = tokio::spawn(async move {
        let (_, client) = recv(&socket).await;
        // The same challenge twice, as from a retransmitting server.
        socket.send_to(&challenge_reply(), client).await.unwrap();
        socket.send_to(&challenge_reply(), client).await.unwrap();
        let (answer, client) = recv(&socket).await;
        assert_eq!(answer, concat(&[INFO_REQUEST, &CHALLENGE]));
        // Another host tries to inject a reply before the real one.
        let fake = full_info_reply("Injected");
        stranger.send_to(&fake, client).await.unwrap();
        socket
            .send_to(&full_info_reply("Real"), client)
            .await
            .unwrap();
        // The duplicate challenge must not have triggered a second resend.
        let extra = tokio::time::timeout(Duration::from_millis(100), recv(&socket)).await;
        assert!(extra.is_err(), "client answered the duplicate challenge");
    });
    let info = a2s::info(addr, GENEROUS).await.unwrap();
    assert_eq!(info.name, "Real");
    server.await.unwrap();
}

#[tokio::test]
async fn players_with_challenge() {
    let (socket, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        let (first, from) = recv(&socket).await;
        assert_eq!(first, b"\xFF\xFF\xFF\xFF\x55\xFF\xFF\xFF\xFF");
        socket.send_to(&challenge_reply(), from).await.unwrap();
        let (second, from) = recv(&socket).await;
        assert_eq!(second, concat(&[b"\xFF\xFF\xFF\xFF\x55", &CHALLENGE]));
        let reply = concat(&[
            b"\xFF\xFF\xFF\xFF\x44\x03",
            b"\x00Ellis\x00\x0A\x00\x00\x00\x00\x00\x20\x41", // score 10, 10.0 s
            b"\x00Zo\xEB\x00\xFF\xFF\xFF\xFF\x00\x00\xC0\x3F", // invalid UTF-8, -1, 1.5 s
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",      // nameless, 0, 0 s
        ]);
        socket.send_to(&reply, from).await.unwrap();
    });
    let players = a2s::players(addr, GENEROUS).await.unwrap();
    let player = |name: &str, score, secs| Player {
        index: 0,
        name: name.to_owned(),
        score,
        duration: Duration::from_secs_f32(secs),
    };
    assert_eq!(
        players,
        vec![
            player("Ellis", 10, 10.0),
            player("Zo\u{FFFD}", -1, 1.5),
            player("", 0, 0.0),
        ]
    );
    server.await.unwrap();
}

/// One part of a split reply in the Source layout.
fn split_part(id: u32, total: u8, number: u8, payload: &[u8]) -> Vec<u8> {
    concat(&[
        b"\xFE\xFF\xFF\xFF",
        &id.to_le_bytes(),
        &[total, number],
        &1248u16.to_le_bytes(),
        payload,
    ])
}

#[tokio::test]
async fn rules_split_into_three_packets_out_of_order() {
    let rules: Vec<(String, String)> = (0..60)
        .map(|i| (format!("l4d2_rule_{i:02}"), format!("value number {i}")))
        .collect();
    let mut payload = b"\xFF\xFF\xFF\xFF\x45".to_vec();
    payload.extend_from_slice(&60i16.to_le_bytes());
    for (name, value) in &rules {
        payload.extend_from_slice(&concat(&[name.as_bytes(), b"\0", value.as_bytes(), b"\0"]));
    }
    let third = payload.len() / 3;
    let chunks = [
        &payload[..third],
        &payload[third..2 * third],
        &payload[2 * third..],
    ];
    let parts: Vec<Vec<u8>> = [2u8, 0, 1]
        .iter()
        .map(|&n| split_part(0x42, 3, n, chunks[usize::from(n)]))
        .collect();

    let (socket, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        let (first, from) = recv(&socket).await;
        assert_eq!(first, b"\xFF\xFF\xFF\xFF\x56\xFF\xFF\xFF\xFF");
        socket.send_to(&challenge_reply(), from).await.unwrap();
        let (second, from) = recv(&socket).await;
        assert_eq!(second, concat(&[b"\xFF\xFF\xFF\xFF\x56", &CHALLENGE]));
        for part in parts {
            socket.send_to(&part, from).await.unwrap();
        }
    });
    let got = a2s::rules(addr, GENEROUS).await.unwrap();
    let want: Vec<Rule> = rules
        .into_iter()
        .map(|(name, value)| Rule { name, value })
        .collect();
    assert_eq!(got, want);
    server.await.unwrap();
}

#[tokio::test]
async fn compressed_split_reply_is_refused() {
    let (socket, addr) = fake_server().await;
    let part = split_part(0x8000_0007, 2, 0, b"\x00\x10\x00\x00\xDE\xAD\xBE\xEFBZh9");
    let server = answer_once(socket, part);
    let result = a2s::info(addr, GENEROUS).await;
    assert!(matches!(result, Err(QueryError::Compressed)), "{result:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn silent_server_times_out_within_the_bound() {
    let (_silent, addr) = fake_server().await;
    let started = Instant::now();
    let result = a2s::info(addr, SHORT).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(QueryError::Timeout { addr: a, after }) if a == addr && after == SHORT),
        "{result:?}"
    );
    assert!(elapsed < RETURNS_WITHIN, "took {elapsed:?}");
}

/// A server that keeps the client busy with a challenge every 200 ms: each
/// single wait is shorter than the limit, so only a bound on the whole
/// operation ends the query.
#[tokio::test]
async fn timeout_bounds_the_whole_exchange_not_each_wait() {
    let (socket, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        let (_, from) = recv(&socket).await;
        for _ in 0..15 {
            socket.send_to(&challenge_reply(), from).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let result = a2s::players(addr, Duration::from_millis(500)).await;
    assert!(
        matches!(result, Err(QueryError::Timeout { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < RETURNS_WITHIN,
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

#[tokio::test]
async fn truncated_reply_is_malformed_and_names_the_field() {
    let (socket, addr) = fake_server().await;
    let server = answer_once(socket, b"\xFF\xFF\xFF\xFF\x49\x11Server\x00c1m1".to_vec());
    let error = a2s::info(addr, GENEROUS).await.unwrap_err();
    assert!(matches!(error, QueryError::Malformed(_)), "{error:?}");
    assert!(error.to_string().contains("map name"), "{error}");
    server.await.unwrap();
}

#[tokio::test]
async fn garbage_replies_are_errors_not_panics() {
    let garbage: [&[u8]; 6] = [
        b"",
        b"\xFF\xFF",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"\xFF\xFF\xFF\xFF\x41\x01",                 // short challenge
        b"\xFF\xFF\xFF\xFF\x6DGoldSrc",              // wrong reply type
        b"\xFE\xFF\xFF\xFF\x01\x00\x00\x00\x02\x05", // part number out of range
    ];
    for reply in garbage {
        let (socket, addr) = fake_server().await;
        let server = answer_once(socket, reply.to_vec());
        let result = a2s::info(addr, GENEROUS).await;
        assert!(
            matches!(result, Err(QueryError::Malformed(_))),
            "{reply:?} gave {result:?}"
        );
        server.await.unwrap();
    }
}

#[tokio::test]
async fn closed_port_reports_a_network_error() {
    let (socket, addr) = fake_server().await;
    drop(socket);
    let result = a2s::info(addr, GENEROUS).await;
    assert!(matches!(result, Err(QueryError::Io(_))), "{result:?}");
}
