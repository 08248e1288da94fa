//! One query exchange: request, challenge round trips, reply.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::QueryError;
use super::packet::{Message, Reassembler};

/// Reply type of a challenge: "resend your request with these 4 bytes".
const CHALLENGE: u8 = 0x41;
/// The placeholder sent in place of a challenge to ask for one.
const NO_CHALLENGE: [u8; 4] = [0xff; 4];
/// A server asking for ever-new challenges is broken; stop before the
/// timeout so the user gets a precise error rather than a vague timeout.
const MAX_CHALLENGES: usize = 4;
/// Largest possible UDP payload; servers can raise their packet size, and a
/// truncated datagram would silently corrupt the reply.
const MAX_DATAGRAM: usize = 65_535;

/// The three A2S queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Query {
    Info,
    Players,
    Rules,
}

impl Query {
    /// The request type byte.
    fn request_kind(self) -> u8 {
        match self {
            Query::Info => 0x54,
            Query::Players => 0x55,
            Query::Rules => 0x56,
        }
    }

    /// The type byte of the expected answer.
    fn reply_kind(self) -> u8 {
        match self {
            Query::Info => 0x49,
            Query::Players => 0x44,
            Query::Rules => 0x45,
        }
    }

    /// Encodes the request. `A2S_INFO` carries a payload and only appends a
    /// challenge once asked for one; the others always carry a challenge slot.
    fn request(self, challenge: Option<[u8; 4]>) -> Vec<u8> {
        let mut packet = vec![0xff, 0xff, 0xff, 0xff, self.request_kind()];
        if self == Query::Info {
            packet.extend_from_slice(b"Source Engine Query\0");
            if let Some(challenge) = challenge {
                packet.extend_from_slice(&challenge);
            }
        } else {
            packet.extend_from_slice(&challenge.unwrap_or(NO_CHALLENGE));
        }
        packet
    }
}

/// Runs `query` against `addr`, the whole exchange bounded by `timeout`.
pub(super) async fn exchange(
    addr: SocketAddr,
    query: Query,
    timeout: Duration,
) -> Result<Message, QueryError> {
    tokio::time::timeout(timeout, exchange_unbounded(addr, query))
        .await
        .map_err(|_| QueryError::Timeout {
            addr,
            after: timeout,
        })?
}

async fn exchange_unbounded(addr: SocketAddr, query: Query) -> Result<Message, QueryError> {
    let socket = UdpSocket::bind(unspecified_like(addr)).await?;
    // Connecting makes the kernel discard datagrams from any other address.
    socket.connect(addr).await?;
    socket.send(&query.request(None)).await?;

    let mut inbox = Inbox::new();
    let mut answered: Vec<[u8; 4]> = Vec::new();
    loop {
        let message = inbox.next_message(&socket).await?;
        match message.kind() {
            Some(CHALLENGE) => {
                let challenge = challenge_of(&message)?;
                // A late duplicate of a challenge we already answered: the
                // answer to our resend is on its way, resending again would
                // only make the server reply twice.
                if answered.contains(&challenge) {
                    continue;
                }
                if answered.len() == MAX_CHALLENGES {
                    return Err(QueryError::Malformed(format!(
                        "server sent {MAX_CHALLENGES} different challenges without answering"
                    )));
                }
                answered.push(challenge);
                socket.send(&query.request(Some(challenge))).await?;
            }
            Some(kind) if kind == query.reply_kind() => return Ok(message),
            Some(kind) => {
                return Err(QueryError::Malformed(format!(
                    "expected reply type {:#04x}, got {kind:#04x}",
                    query.reply_kind()
                )));
            }
            None => return Err(QueryError::Malformed("empty reply".to_owned())),
        }
    }
}

/// The wildcard address of the same family as `addr`, any port.
fn unspecified_like(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn challenge_of(message: &Message) -> Result<[u8; 4], QueryError> {
    message
        .body()
        .first_chunk::<4>()
        .copied()
        .ok_or_else(|| QueryError::Malformed("challenge reply shorter than 4 bytes".to_owned()))
}

/// Receive buffer plus split reassembly state for one exchange.
#[derive(Debug)]
struct Inbox {
    buf: Vec<u8>,
    reassembler: Reassembler,
}

impl Inbox {
    fn new() -> Self {
        Self {
            buf: vec![0; MAX_DATAGRAM],
            reassembler: Reassembler::default(),
        }
    }

    /// Waits for datagrams until one completes a message.
    async fn next_message(&mut self, socket: &UdpSocket) -> Result<Message, QueryError> {
        loop {
            let len = socket.recv(&mut self.buf).await?;
            let datagram = self.buf.get(..len).unwrap_or_default();
            if let Some(message) = self.reassembler.accept(datagram)? {
                return Ok(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_documented_bytes() {
        assert_eq!(
            Query::Info.request(None),
            b"\xff\xff\xff\xffTSource Engine Query\0".to_vec()
        );
        assert_eq!(
            Query::Info.request(Some([1, 2, 3, 4])),
            b"\xff\xff\xff\xffTSource Engine Query\0\x01\x02\x03\x04".to_vec()
        );
        assert_eq!(
            Query::Players.request(None),
            b"\xff\xff\xff\xffU\xff\xff\xff\xff".to_vec()
        );
        assert_eq!(
            Query::Rules.request(Some([9, 8, 7, 6])),
            b"\xff\xff\xff\xffV\x09\x08\x07\x06".to_vec()
        );
    }
}
