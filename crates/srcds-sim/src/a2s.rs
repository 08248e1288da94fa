//! Source server queries (A2S) over UDP.
//!
//! L4D2 answers A2S_INFO, A2S_PLAYER and A2S_RULES only to a client that
//! echoes the challenge number it was given for its IP address; anything else
//! gets an `S2C_CHALLENGE` (`0x41`). Replies larger than one datagram use the
//! Source split format. Malformed datagrams are ignored, as srcds does.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::server::{Shared, stopped};
use crate::state::{GAME_VERSION, GameState};

const SINGLE: [u8; 4] = [0xFF; 4];
const SPLIT: [u8; 4] = [0xFE, 0xFF, 0xFF, 0xFF];
const A2S_INFO: u8 = 0x54;
const A2S_PLAYER: u8 = 0x55;
const A2S_RULES: u8 = 0x56;
/// Legacy "give me a challenge" request, still answered by srcds.
const A2S_GETCHALLENGE: u8 = 0x57;
const S2C_CHALLENGE: u8 = 0x41;
const S2A_INFO: u8 = 0x49;
const S2A_PLAYER: u8 = 0x44;
const S2A_RULES: u8 = 0x45;
const INFO_PAYLOAD: &[u8] = b"Source Engine Query\0";
/// Bytes of the split header: marker, id, total, number, size.
const SPLIT_HEADER: usize = 12;

/// Steam app id of the game (A2S reports the game, not the server app 222860).
const APP_ID: u16 = 550;

/// A parsed query. `None` challenges mean "absent or -1".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Info(Option<u32>),
    Player(Option<u32>),
    Rules(Option<u32>),
    GetChallenge,
}

fn parse_request(datagram: &[u8]) -> Option<Request> {
    let rest = datagram.strip_prefix(&SINGLE)?;
    let (&kind, payload) = rest.split_first()?;
    let challenge = |bytes: &[u8]| -> Option<u32> {
        let value = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        (value != u32::MAX).then_some(value)
    };
    match kind {
        A2S_INFO => {
            let after = payload.strip_prefix(INFO_PAYLOAD)?;
            Some(Request::Info(challenge(after)))
        }
        A2S_PLAYER => Some(Request::Player(challenge(payload))),
        A2S_RULES => Some(Request::Rules(challenge(payload))),
        A2S_GETCHALLENGE => Some(Request::GetChallenge),
        _ => None,
    }
}

/// Challenge numbers: a keyed hash of the client IP, so no per-client table
/// is needed and a spoofed source address cannot learn the answer.
#[derive(Debug, Clone)]
pub(crate) struct Challenges {
    keys: RandomState,
}

impl Challenges {
    pub(crate) fn new() -> Self {
        Self {
            keys: RandomState::new(),
        }
    }

    fn for_ip(&self, ip: IpAddr) -> u32 {
        let hash = self.keys.hash_one(ip);
        // Truncation is the point; -1 means "no challenge" on the wire.
        let value = (hash ^ (hash >> 32)) as u32;
        if value == u32::MAX { 0 } else { value }
    }
}

/// Builds the reply datagrams for one request (empty: stay silent).
fn respond(shared: &Shared, datagram: &[u8], peer: SocketAddr) -> Vec<Vec<u8>> {
    let Some(request) = parse_request(datagram) else {
        return Vec::new();
    };
    let expected = shared.challenges.for_ip(peer.ip());
    let reply = match request {
        Request::GetChallenge => challenge_reply(expected),
        Request::Info(c) | Request::Player(c) | Request::Rules(c) if c != Some(expected) => {
            challenge_reply(expected)
        }
        Request::Info(_) => info_reply(&shared.lock_state(), shared.steam_id),
        Request::Player(_) => player_reply(&shared.lock_state()),
        Request::Rules(_) => rules_reply(&shared.lock_state()),
    };
    split(reply, shared.next_split_id(), shared.max_packet_size)
}

fn challenge_reply(challenge: u32) -> Vec<u8> {
    let mut reply = SINGLE.to_vec();
    reply.push(S2C_CHALLENGE);
    reply.extend_from_slice(&challenge.to_le_bytes());
    reply
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // A NUL inside a value would end the string early for every client.
    buf.extend(s.bytes().filter(|&b| b != 0));
    buf.push(0);
}

fn saturating_u8(n: u64) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn info_reply(state: &GameState, steam_id: u64) -> Vec<u8> {
    let humans = state.human_count();
    let mut r = SINGLE.to_vec();
    r.push(S2A_INFO);
    r.push(17); // protocol
    put_str(&mut r, state.cvars.get("hostname"));
    put_str(&mut r, &state.map);
    put_str(&mut r, &state.game);
    put_str(&mut r, "Left 4 Dead 2");
    r.extend_from_slice(&APP_ID.to_le_bytes());
    r.push(saturating_u8(humans as u64));
    r.push(saturating_u8(state.max_players()));
    r.push(0); // bots
    r.push(b'd'); // dedicated
    r.push(b'l'); // Linux
    r.push(u8::from(!state.cvars.get("sv_password").is_empty()));
    r.push(u8::from(state.vac_secure));
    put_str(&mut r, GAME_VERSION);
    // Extra data: port, steam id, keywords, game id.
    r.push(0x80 | 0x10 | 0x20 | 0x01);
    r.extend_from_slice(&state.port.to_le_bytes());
    r.extend_from_slice(&steam_id.to_le_bytes());
    let mut keywords = state.cvars.get("mp_gamemode").to_owned();
    if humans == 0 {
        keywords.push_str(",empty");
    }
    let tags = state.cvars.get("sv_tags");
    if !tags.is_empty() {
        keywords.push(',');
        keywords.push_str(tags);
    }
    put_str(&mut r, &keywords);
    r.extend_from_slice(&u64::from(APP_ID).to_le_bytes());
    r
}

fn player_reply(state: &GameState) -> Vec<u8> {
    let players = state.player_list();
    let mut r = SINGLE.to_vec();
    r.push(S2A_PLAYER);
    r.push(saturating_u8(players.len() as u64));
    for (index, (name, seconds)) in players.iter().enumerate().take(255) {
        r.push(saturating_u8(index as u64));
        put_str(&mut r, name);
        r.extend_from_slice(&0i32.to_le_bytes()); // score
        r.extend_from_slice(&seconds.to_le_bytes());
    }
    r
}

fn rules_reply(state: &GameState) -> Vec<u8> {
    let rules = state.cvars.rules();
    let mut r = SINGLE.to_vec();
    r.push(S2A_RULES);
    let count = u16::try_from(rules.len()).unwrap_or(u16::MAX);
    r.extend_from_slice(&count.to_le_bytes());
    for (name, value) in rules.iter().take(usize::from(count)) {
        put_str(&mut r, name);
        put_str(&mut r, value);
    }
    r
}

/// Splits a reply that does not fit in `max_packet_size` bytes into Source
/// split packets whose payloads join back into the original reply.
fn split(reply: Vec<u8>, id: u32, max_packet_size: usize) -> Vec<Vec<u8>> {
    if reply.len() <= max_packet_size {
        return vec![reply];
    }
    let chunk_size = max_packet_size.saturating_sub(SPLIT_HEADER).max(1);
    let total = reply.len().div_ceil(chunk_size);
    let (Ok(total), Ok(size)) = (u8::try_from(total), u16::try_from(chunk_size)) else {
        // srcds cannot express this either; dropping beats sending garbage.
        return Vec::new();
    };
    reply
        .chunks(chunk_size)
        .zip(0u8..)
        .map(|(chunk, number)| {
            let mut packet = Vec::with_capacity(SPLIT_HEADER + chunk.len());
            packet.extend_from_slice(&SPLIT);
            packet.extend_from_slice(&(id & 0x7FFF_FFFF).to_le_bytes());
            packet.push(total);
            packet.push(number);
            packet.extend_from_slice(&size.to_le_bytes());
            packet.extend_from_slice(chunk);
            packet
        })
        .collect()
}

/// Source split ids count up per reply; any unique number does.
#[derive(Debug, Default)]
pub(crate) struct SplitIds(AtomicU32);

impl SplitIds {
    pub(crate) fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x7FFF_FFFF
    }
}

/// Answers queries until the server exits. Nothing is answered while the
/// server is still booting: clients must cope with a silent port.
pub(crate) async fn serve(shared: Arc<Shared>, socket: UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    let mut exit = shared.exit_watch();
    loop {
        tokio::select! {
            () = stopped(&mut exit) => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, peer)) => {
                    if !shared.is_ready() {
                        continue;
                    }
                    for datagram in respond(&shared, &buf[..len], peer) {
                        // A lost reply is what UDP clients expect to handle.
                        let _ = socket.send_to(&datagram, peer).await;
                    }
                }
                // Transient (e.g. ICMP errors surfaced by the kernel); do
                // not spin on a persistent one.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_rejects_garbage() {
        let mut info = SINGLE.to_vec();
        info.push(A2S_INFO);
        info.extend_from_slice(INFO_PAYLOAD);
        assert_eq!(parse_request(&info), Some(Request::Info(None)));
        info.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(parse_request(&info), Some(Request::Info(Some(7))));
        assert_eq!(
            parse_request(&[0xFF, 0xFF, 0xFF, 0xFF, A2S_PLAYER, 0xFF, 0xFF, 0xFF, 0xFF]),
            Some(Request::Player(None))
        );
        assert_eq!(
            parse_request(&[0xFF, 0xFF, 0xFF, 0xFF, A2S_RULES, 1, 0]),
            Some(Request::Rules(None))
        );
        assert_eq!(
            parse_request(&[0xFF, 0xFF, 0xFF, 0xFF, A2S_INFO, b'x']),
            None
        );
        assert_eq!(parse_request(&[0xFF, 0xFF, 0xFF]), None);
        assert_eq!(parse_request(&[]), None);
        assert_eq!(parse_request(&[0xFE, 0xFF, 0xFF, 0xFF, A2S_RULES]), None);
    }

    #[test]
    fn challenge_is_stable_per_ip_and_never_minus_one() {
        let c = Challenges::new();
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert_eq!(c.for_ip(ip), c.for_ip(ip));
        assert_ne!(c.for_ip(ip), u32::MAX);
    }

    #[test]
    fn split_reassembles() {
        let reply: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
        let packets = split(reply.clone(), 5, 1260);
        assert_eq!(packets.len(), 3);
        let mut joined = Vec::new();
        for (n, p) in packets.iter().enumerate() {
            assert_eq!(&p[..4], &SPLIT);
            assert_eq!(u32::from_le_bytes([p[4], p[5], p[6], p[7]]), 5);
            assert_eq!(p[8], 3);
            assert_eq!(usize::from(p[9]), n);
            assert_eq!(u16::from_le_bytes([p[10], p[11]]), 1248);
            assert!(p.len() <= 1260);
            joined.extend_from_slice(&p[12..]);
        }
        assert_eq!(joined, reply);
        assert_eq!(split(vec![1, 2, 3], 1, 1260), vec![vec![1, 2, 3]]);
        assert!(split(vec![0; 10_000], 1, 13).is_empty());
    }
}
