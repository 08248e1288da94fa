//! RCON client against a fake Source server on a real loopback TCP socket.
//!
//! The fake server frames packets by hand from the documented layout and
//! mimics Source's quirks: an empty RESPONSE_VALUE before the auth verdict,
//! long output split over several packets, and an extra trailer packet after
//! mirroring the client's empty end marker.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srcds_protocol::{RconClient, RconError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PASSWORD: &str = "hunter2";
const GENEROUS: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);
const RETURNS_WITHIN: Duration = Duration::from_secs(2);

const RESPONSE_VALUE: i32 = 0;
const AUTH_RESPONSE: i32 = 2;
const EXEC_COMMAND: i32 = 2;
const AUTH: i32 = 3;
/// Source's per-packet body limit for output.
const CHUNK: usize = 4000;

/// `size, id, type, body, NUL, NUL` with `size = 10 + body length`.
fn packet(id: i32, kind: i32, body: &[u8]) -> Vec<u8> {
    let size = i32::try_from(10 + body.len()).unwrap();
    [
        &size.to_le_bytes()[..],
        &id.to_le_bytes(),
        &kind.to_le_bytes(),
        body,
        b"\0\0",
    ]
    .concat()
}

/// Reads one client packet: `(id, type, body)`, or `None` at end of stream.
async fn read_packet(stream: &mut TcpStream) -> Option<(i32, i32, Vec<u8>)> {
    let mut size = [0; 4];
    stream.read_exact(&mut size).await.ok()?;
    let size = usize::try_from(i32::from_le_bytes(size)).unwrap();
    assert!(size >= 10, "client sent size {size}");
    let mut rest = vec![0; size];
    stream.read_exact(&mut rest).await.ok()?;
    assert_eq!(&rest[size - 2..], b"\0\0", "packet must end with two NULs");
    let id = i32::from_le_bytes(rest[0..4].try_into().unwrap());
    let kind = i32::from_le_bytes(rest[4..8].try_into().unwrap());
    Some((id, kind, rest[8..size - 2].to_vec()))
}

/// What the fake server does with a command's text.
type Handler = fn(&str) -> Reply;

enum Reply {
    Output(String),
    /// Sleep, then answer.
    Delayed(Duration, String),
    /// Hang up without answering.
    Hangup,
    /// Send raw bytes instead of a proper reply.
    Raw(Vec<u8>),
}

/// The default command set: `echo X` prints `X\n`, `cvarlist` prints a lot.
fn console(command: &str) -> Reply {
    match command.split_once(' ') {
        Some(("echo", text)) => Reply::Output(format!("{text}\n")),
        Some(("sleep", text)) => Reply::Delayed(Duration::from_millis(600), format!("{text}\n")),
        _ if command == "cvarlist" => Reply::Output(long_output()),
        _ if command == "quit" => Reply::Hangup,
        _ if command == "garbage" => Reply::Raw(1_000_000i32.to_le_bytes().to_vec()),
        _ => Reply::Output(format!("Unknown command \"{command}\"\n")),
    }
}

/// About 20 KB, with a two-byte character straddling the first packet
/// boundary so joining must happen before decoding.
fn long_output() -> String {
    let mut text = "a".repeat(CHUNK - 1);
    text.push('é');
    for i in 0..500 {
        text.push_str(&format!("sv_cvar_{i:04} : 1 : , \"sv\" : line {i}\n"));
    }
    assert!(text.len() > 20_000);
    text
}

/// Accepts one connection and serves it like srcds until the client leaves.
async fn serve(listener: TcpListener, handler: Handler) {
    let (mut stream, _) = listener.accept().await.unwrap();
    while let Some((id, kind, body)) = read_packet(&mut stream).await {
        let out = match kind {
            AUTH => authenticate(id, &body),
            RESPONSE_VALUE => [
                packet(id, RESPONSE_VALUE, b""),
                packet(id, RESPONSE_VALUE, b"\x00\x00\x00\x01\x00\x00\x00\x00"),
            ]
            .concat(),
            EXEC_COMMAND => match handler(&String::from_utf8_lossy(&body)) {
                Reply::Output(text) => output(id, &text),
                Reply::Delayed(pause, text) => {
                    tokio::time::sleep(pause).await;
                    output(id, &text)
                }
                Reply::Hangup => return,
                Reply::Raw(bytes) => bytes,
            },
            other => panic!("client sent packet type {other}"),
        };
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn authenticate(id: i32, password: &[u8]) -> Vec<u8> {
    let verdict = if password == PASSWORD.as_bytes() {
        id
    } else {
        -1
    };
    [
        packet(id, RESPONSE_VALUE, b""),
        packet(verdict, AUTH_RESPONSE, b""),
    ]
    .concat()
}

/// Output split into packets of at most [`CHUNK`] bytes, cut by bytes.
fn output(id: i32, text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(CHUNK)
        .flat_map(|chunk| packet(id, RESPONSE_VALUE, chunk))
        .collect()
}

async fn start(handler: Handler) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(serve(listener, handler)))
}

#[tokio::test]
async fn auth_success_then_command() {
    let (addr, server) = start(console).await;
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    assert_eq!(rcon.exec("echo hello").await.unwrap(), "hello\n");
    assert_eq!(rcon.exec("echo again").await.unwrap(), "again\n");
    drop(rcon);
    server.await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_auth_failed() {
    let (addr, server) = start(console).await;
    let error = RconClient::connect(addr, "wrong", GENEROUS)
        .await
        .unwrap_err();
    assert!(matches!(error, RconError::AuthFailed), "{error:?}");
    assert_eq!(error.to_string(), "wrong RCON password");
    server.await.unwrap();
}

#[tokio::test]
async fn long_reply_is_joined_and_next_command_gets_its_own_reply() {
    let (addr, server) = start(console).await;
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    assert_eq!(rcon.exec("cvarlist").await.unwrap(), long_output());
    // The trailer packet Source sends after the end marker is still in
    // flight here; it must not leak into this reply.
    assert_eq!(rcon.exec("echo after").await.unwrap(), "after\n");
    assert_eq!(rcon.exec("cvarlist").await.unwrap(), long_output());
    drop(rcon);
    server.await.unwrap();
}

#[tokio::test]
async fn server_closing_is_closed_and_the_client_stays_closed() {
    let (addr, server) = start(console).await;
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    let error = rcon.exec("quit").await.unwrap_err();
    assert!(matches!(error, RconError::Closed), "{error:?}");
    assert_eq!(error.to_string(), "server closed the connection");
    let again = rcon.exec("echo hi").await.unwrap_err();
    assert!(matches!(again, RconError::Unusable), "{again:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn silent_server_times_out_within_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and read, never answer.
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    let started = Instant::now();
    let error = RconClient::connect(addr, PASSWORD, SHORT)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, RconError::Timeout { after, .. } if after == SHORT),
        "{error:?}"
    );
    assert!(elapsed < RETURNS_WITHIN, "took {elapsed:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn timed_out_command_leaves_the_connection_usable() {
    let (addr, server) = start(console).await;
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    rcon.set_timeout(SHORT);
    let started = Instant::now();
    let error = rcon.exec("sleep late").await.unwrap_err();
    assert!(matches!(error, RconError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < RETURNS_WITHIN);
    rcon.set_timeout(GENEROUS);
    // The late "late\n" output arrives first and must be skipped.
    assert_eq!(rcon.exec("echo fresh").await.unwrap(), "fresh\n");
    drop(rcon);
    server.await.unwrap();
}

#[tokio::test]
async fn absurd_packet_size_is_malformed() {
    let (addr, server) = start(console).await;
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    let error = rcon.exec("garbage").await.unwrap_err();
    assert!(matches!(error, RconError::Malformed(_)), "{error:?}");
    drop(rcon);
    server.await.unwrap();
}

#[tokio::test]
async fn non_rcon_peer_is_malformed_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let error = RconClient::connect(addr, PASSWORD, GENEROUS)
        .await
        .unwrap_err();
    assert!(matches!(error, RconError::Malformed(_)), "{error:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn truncated_stream_is_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // Half a packet, then hang up.
        let whole = packet(1, RESPONSE_VALUE, b"");
        let _ = stream.write_all(&whole[..7]).await;
    });
    let error = RconClient::connect(addr, PASSWORD, GENEROUS)
        .await
        .unwrap_err();
    assert!(matches!(error, RconError::Closed), "{error:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn unsendable_input_is_refused_locally() {
    let (addr, server) = start(console).await;
    let error = RconClient::connect(addr, "a\0b", GENEROUS)
        .await
        .unwrap_err();
    assert!(matches!(error, RconError::InvalidInput(_)), "{error:?}");
    let mut rcon = RconClient::connect(addr, PASSWORD, GENEROUS).await.unwrap();
    let error = rcon.exec(&"x".repeat(5000)).await.unwrap_err();
    assert!(matches!(error, RconError::InvalidInput(_)), "{error:?}");
    // Refusing input does not spoil the connection.
    assert_eq!(rcon.exec("echo still here").await.unwrap(), "still here\n");
    drop(rcon);
    server.await.unwrap();
}
