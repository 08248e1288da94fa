//! RCON packet encoding and incremental decoding.
//!
//! A packet is `i32 size, i32 id, i32 type, body, NUL, NUL`, where `size`
//! counts everything after itself. Decoding works on a buffer that persists
//! across reads, so an interrupted read (a timeout) loses no bytes and the
//! stream stays in step for the next command.

use super::RconError;

/// Client → server: log in with the body as password.
pub(super) const AUTH: i32 = 3;
/// Server → client: the verdict on [`AUTH`] (same value as [`EXEC_COMMAND`]).
pub(super) const AUTH_RESPONSE: i32 = 2;
/// Client → server: run the body as a console command.
pub(super) const EXEC_COMMAND: i32 = 2;
/// Server → client: (part of) a command's output. Also sent by the client as
/// an empty end-of-output marker that the server mirrors.
pub(super) const RESPONSE_VALUE: i32 = 0;

/// Smallest valid `size`: id, type and the two terminating NULs.
const MIN_SIZE: usize = 10;
/// Source caps packets at 4096 bytes; twice that leaves slack for forks and
/// mods while still rejecting a peer that is not speaking RCON at all (an
/// HTTP server's "HTTP" read as a size would be ~1.3 billion).
pub(super) const MAX_SIZE: usize = 8192;
/// The largest body the server accepts (its 4096-byte cap minus framing).
pub(super) const MAX_BODY: usize = 4096 - MIN_SIZE;
/// How much to read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A decoded packet. The body is cut at its first NUL: the server writes a C
/// string, and this also neutralises the odd trailer packets Source emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Packet {
    pub(super) id: i32,
    pub(super) kind: i32,
    pub(super) body: Vec<u8>,
}

/// Appends one encoded packet to `out`.
pub(super) fn encode(out: &mut Vec<u8>, id: i32, kind: i32, body: &[u8]) {
    // Callers check `body.len() <= MAX_BODY`, so this cannot overflow.
    let size = i32::try_from(body.len() + MIN_SIZE).unwrap_or(i32::MAX);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0, 0]);
}

/// Bytes received but not yet decoded.
#[derive(Debug, Default)]
pub(super) struct Inbound {
    buf: Vec<u8>,
    /// Start of the first undecoded byte; everything before it is consumed.
    start: usize,
}

impl Inbound {
    /// Decodes the next complete packet, if the buffer holds one.
    pub(super) fn next_packet(&mut self) -> Result<Option<Packet>, RconError> {
        let pending = &self.buf[self.start..];
        let Some((size, rest)) = pending.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let size = i32::from_le_bytes(*size);
        let size = usize::try_from(size)
            .ok()
            .filter(|size| (MIN_SIZE..=MAX_SIZE).contains(size))
            .ok_or_else(|| {
                RconError::Malformed(format!(
                    "packet size {size} is outside {MIN_SIZE}..={MAX_SIZE} (is this really an RCON port?)"
                ))
            })?;
        let Some(payload) = rest.get(..size) else {
            return Ok(None);
        };
        let packet = decode_payload(payload);
        self.start += 4 + size;
        Ok(Some(packet))
    }

    /// Space to read into: drops consumed bytes first so the buffer never
    /// holds more than one partial packet plus one read, keeping long replies
    /// linear in time and bounded in memory.
    pub(super) fn read_space(&mut self) -> &mut Vec<u8> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        &mut self.buf
    }
}

/// Splits a payload of at least [`MIN_SIZE`] bytes into its fields.
fn decode_payload(payload: &[u8]) -> Packet {
    let field = |at: usize| {
        payload
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i32::from_le_bytes)
    };
    let body = payload.get(8..).unwrap_or_default();
    let body = body.split(|&b| b == 0).next().unwrap_or_default();
    Packet {
        id: field(0),
        kind: field(4),
        body: body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(inbound: &mut Inbound, bytes: &[u8]) {
        inbound.read_space().extend_from_slice(bytes);
    }

    #[test]
    fn encodes_the_documented_layout() {
        let mut out = Vec::new();
        encode(&mut out, 7, EXEC_COMMAND, b"status");
        assert_eq!(
            out,
            b"\x10\0\0\0\x07\0\0\0\x02\0\0\0status\0\0".to_vec(),
            "size 16 = 10 + 6"
        );
    }

    #[test]
    fn decodes_packets_split_across_reads() {
        let mut wire = Vec::new();
        encode(&mut wire, 1, RESPONSE_VALUE, b"hello");
        encode(&mut wire, 2, RESPONSE_VALUE, b"");
        let mut inbound = Inbound::default();
        let mut got = Vec::new();
        for byte in wire {
            feed(&mut inbound, &[byte]);
            while let Some(packet) = inbound.next_packet().unwrap() {
                got.push(packet);
            }
        }
        let bodies: Vec<_> = got.iter().map(|p| (p.id, p.body.as_slice())).collect();
        assert_eq!(bodies, vec![(1, &b"hello"[..]), (2, &b""[..])]);
    }

    #[test]
    fn body_stops_at_the_first_nul() {
        let mut inbound = Inbound::default();
        feed(
            &mut inbound,
            b"\x10\0\0\0\x05\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0",
        );
        let packet = inbound.next_packet().unwrap().unwrap();
        assert_eq!(
            (packet.id, packet.kind, packet.body.len()),
            (5, RESPONSE_VALUE, 0)
        );
    }

    #[test]
    fn rejects_impossible_sizes() {
        for size in [-1i32, 0, 9, 8193, i32::MAX] {
            let mut inbound = Inbound::default();
            feed(&mut inbound, &size.to_le_bytes());
            assert!(
                matches!(inbound.next_packet(), Err(RconError::Malformed(_))),
                "{size}"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut next = crate::test_rng::xorshift(0x9e37_79b9);
        for _ in 0..2000 {
            let mut inbound = Inbound::default();
            let mut bytes: Vec<u8> = (0..next() % 40).map(|_| next() as u8).collect();
            // Make plausible sizes common so bodies get decoded too.
            if let Some(first) = bytes.get_mut(0..4) {
                first.copy_from_slice(&(10 + next() % 20).to_le_bytes());
            }
            feed(&mut inbound, &bytes);
            while let Ok(Some(_)) = inbound.next_packet() {}
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn packet() -> impl Strategy<Value = Packet> {
        (
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(1u8..=255, 0..MAX_BODY),
        )
            .prop_map(|(id, kind, body)| Packet { id, kind, body })
    }

    proptest! {
        /// Whatever the packets and however the stream is cut into reads,
        /// what is decoded is what was encoded, in order.
        #[test]
        fn packets_come_back_as_encoded(
            packets in proptest::collection::vec(packet(), 1..6),
            cuts in proptest::collection::vec(1usize..600, 1..40),
        ) {
            let mut wire = Vec::new();
            for p in &packets {
                encode(&mut wire, p.id, p.kind, &p.body);
            }
            let mut inbound = Inbound::default();
            let mut got = Vec::new();
            let mut rest = wire.as_slice();
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (read, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                inbound.read_space().extend_from_slice(read);
                while let Some(p) = inbound.next_packet().unwrap() {
                    got.push(p);
                }
            }
            prop_assert_eq!(got, packets);
        }
    }
}
