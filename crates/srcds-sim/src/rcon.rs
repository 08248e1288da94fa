//! Source RCON over TCP.
//!
//! A packet is `i32 size, i32 id, i32 type, body, NUL, NUL` with `size`
//! counting everything after itself. The quirks reproduced here are the ones
//! clients trip over: the empty RESPONSE_VALUE before every AUTH_RESPONSE,
//! long output split over several packets with the same id, and the mirror of
//! an empty RESPONSE_VALUE followed by a strange extra packet, which clients
//! use to find where a multi-packet reply ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::server::{Shared, booted, stopped};
use crate::state::{Output, SimExit};

const SERVERDATA_AUTH: i32 = 3;
const SERVERDATA_AUTH_RESPONSE: i32 = 2;
const SERVERDATA_EXECCOMMAND: i32 = 2;
const SERVERDATA_RESPONSE_VALUE: i32 = 0;

/// Largest packet (size field included) srcds sends or accepts.
const MAX_PACKET: usize = 4096;
/// The header after the size field plus the two NULs.
const MIN_SIZE: usize = 10;
/// Largest body that keeps a packet within [`MAX_PACKET`].
const MAX_BODY: usize = MAX_PACKET - 4 - MIN_SIZE;
/// The body of the packet srcds sends after mirroring an empty RESPONSE_VALUE.
const MIRROR_TRAILER: [u8; 8] = [0, 0, 0, 1, 0, 0, 0, 0];
/// How long a quitting server waits for the client to read its last reply.
const QUIT_LINGER: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Packet {
    id: i32,
    kind: i32,
    body: Vec<u8>,
}

fn encode(out: &mut Vec<u8>, id: i32, kind: i32, body: &[u8]) {
    // Bodies are bounded by MAX_BODY, far below i32::MAX.
    let size = i32::try_from(MIN_SIZE + body.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0, 0]);
}

/// Reads one packet; `Ok(None)` on a clean end of stream, `InvalidData` on a
/// size srcds would not accept (the caller then drops the connection).
async fn read_packet<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Packet>> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = usize::try_from(i32::from_le_bytes(size))
        .ok()
        .filter(|s| (MIN_SIZE..=MAX_PACKET - 4).contains(s))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad rcon size"))?;
    let mut rest = vec![0u8; size];
    reader.read_exact(&mut rest).await?;
    let id = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let kind = i32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    // The body ends at its NUL; tolerate clients that forget the padding.
    let body = &rest[8..];
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    Ok(Some(Packet {
        id,
        kind,
        body: body[..end].to_vec(),
    }))
}

/// Accepts RCON connections until the server exits. Connections are only
/// accepted once the server has booted: before that they wait in the backlog
/// unanswered, like a srcds that is still loading.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut exit = shared.exit_watch();
    let mut ready = shared.ready_watch();
    tokio::select! {
        () = stopped(&mut exit) => return,
        () = booted(&mut ready) => {}
    }
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut exit) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(Arc::clone(&shared), stream, peer));
                }
                // Out of file descriptors and similar: back off and retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let (mut reader, mut writer) = stream.into_split();
    let mut exit = shared.exit_watch();
    let mut authenticated = false;
    let mut failures = 0u64;
    loop {
        let packet = tokio::select! {
            () = stopped(&mut exit) => return,
            packet = read_packet(&mut reader) => packet,
        };
        let packet = match packet {
            Ok(Some(packet)) => packet,
            Ok(None) => return,
            Err(_) => {
                shared
                    .console
                    .print(&format!("rcon from \"{peer}\": malformed packet, closing"));
                return;
            }
        };
        let mut reply = Vec::new();
        let mut exit_after_reply = None;
        match packet.kind {
            SERVERDATA_AUTH => {
                let (ok, max_failures) = {
                    let state = shared.lock_state();
                    let password = state.cvars.get("rcon_password");
                    // No password set means RCON is disabled: nothing matches.
                    let ok = !password.is_empty() && password.as_bytes() == packet.body;
                    (ok, state.cvars.get_u64("sv_rcon_maxfailures").max(1))
                };
                authenticated = ok;
                encode(&mut reply, packet.id, SERVERDATA_RESPONSE_VALUE, b"");
                let id = if ok { packet.id } else { -1 };
                encode(&mut reply, id, SERVERDATA_AUTH_RESPONSE, b"");
                if !ok {
                    failures += 1;
                    shared
                        .console
                        .print(&format!("rcon from \"{peer}\": Bad Password"));
                    if failures >= max_failures {
                        shared
                            .console
                            .print(&format!("Banning {} for rcon hacking attempts", peer.ip()));
                        let _ = writer.write_all(&reply).await;
                        return;
                    }
                }
            }
            SERVERDATA_EXECCOMMAND if authenticated => {
                let command = String::from_utf8_lossy(&packet.body).into_owned();
                let (output, exit_request) = shared.execute_rcon(&command, peer);
                if let Some(exit @ SimExit::Crash { .. }) = exit_request {
                    // A crashing server sends nothing more.
                    shared.request_exit(exit);
                    return;
                }
                exit_after_reply = exit_request;
                encode_output(&mut reply, packet.id, &output);
            }
            SERVERDATA_RESPONSE_VALUE if authenticated => {
                encode(&mut reply, packet.id, SERVERDATA_RESPONSE_VALUE, b"");
                encode(
                    &mut reply,
                    packet.id,
                    SERVERDATA_RESPONSE_VALUE,
                    &MIRROR_TRAILER,
                );
            }
            _ => {
                shared.console.print(&format!(
                    "rcon from \"{peer}\": ignored packet type {} (not authenticated)",
                    packet.kind
                ));
            }
        }
        if writer.write_all(&reply).await.is_err() {
            return;
        }
        if let Some(exit) = exit_after_reply {
            // Let the reply reach the client before the socket closes: closing
            // with unread input would reset the connection and lose it.
            let _ = writer.shutdown().await;
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(QUIT_LINGER, async {
                while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            shared.request_exit(exit);
            return;
        }
    }
}

/// Encodes command output as RESPONSE_VALUE packets of at most
/// [`MAX_PACKET`] bytes; a command without output still gets one empty packet.
fn encode_output(reply: &mut Vec<u8>, id: i32, output: &Output) {
    let bytes = output.text.as_bytes();
    if bytes.is_empty() {
        encode(reply, id, SERVERDATA_RESPONSE_VALUE, b"");
        return;
    }
    for chunk in bytes.chunks(MAX_BODY) {
        encode(reply, id, SERVERDATA_RESPONSE_VALUE, chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_layout() {
        let mut out = Vec::new();
        encode(&mut out, 7, SERVERDATA_AUTH_RESPONSE, b"ab");
        assert_eq!(out, [12, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0, 0]);
    }

    #[tokio::test]
    async fn read_packet_validates_size() {
        let mut ok = Vec::new();
        encode(&mut ok, 3, SERVERDATA_EXECCOMMAND, b"status");
        let packet = read_packet(&mut ok.as_slice()).await.ok().flatten();
        assert!(packet.is_some_and(|p| p.id == 3 && p.kind == 2 && p.body == b"status"));

        let huge = [0xFF, 0xFF, 0xFF, 0x7F, 0, 0];
        assert!(read_packet(&mut huge.as_slice()).await.is_err());
        let negative = (-5i32).to_le_bytes();
        assert!(read_packet(&mut negative.as_slice()).await.is_err());
        let truncated = [14, 0, 0, 0, 1, 0];
        assert!(read_packet(&mut truncated.as_slice()).await.is_err());
        assert!(
            read_packet(&mut [].as_slice())
                .await
                .is_ok_and(|p| p.is_none())
        );
    }

    #[test]
    fn long_output_is_split() {
        let mut output = Output::default();
        output.text = "x".repeat(MAX_BODY * 2 + 5);
        let mut reply = Vec::new();
        encode_output(&mut reply, 9, &output);
        assert_eq!(reply.len(), output.text.len() + 3 * 14);
        assert_eq!(reply[..4], 4092i32.to_le_bytes());
        assert_eq!(reply.len() - 2 * 4096, 5 + 14);
    }
}
