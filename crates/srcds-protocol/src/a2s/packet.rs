//! Datagram framing: single packets and the reassembly of split replies.
//!
//! A reply that does not fit one datagram is sent as numbered parts sharing an
//! id. UDP may reorder or duplicate them, so parts are kept by number until
//! all have arrived, and several ids can be in flight at once (a resent
//! request after a challenge may produce a second, independent reply).

use super::QueryError;
use crate::wire::Reader;

/// Prefix of a reply that fits in one datagram (and of a reassembled reply).
const SINGLE: [u8; 4] = [0xff; 4];
/// Prefix of one part of a split reply.
const SPLIT: [u8; 4] = [0xfe, 0xff, 0xff, 0xff];
/// Top bit of the split id: the joined payload is bzip2-compressed.
const COMPRESSED_FLAG: u32 = 0x8000_0000;
/// How many different split ids are tracked at once. Only the server can
/// reach our connected socket, so this just bounds memory if it misbehaves.
const MAX_PENDING: usize = 4;

/// A complete reply with the 4-byte `FF FF FF FF` prefix removed: a type byte
/// followed by the type-specific body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The reply type byte (`0x41` challenge, `0x49` info, ...), if any.
    pub(super) fn kind(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    /// Everything after the type byte.
    pub(super) fn body(&self) -> &[u8] {
        self.bytes.get(1..).unwrap_or_default()
    }
}

/// Parts collected so far for one split id.
#[derive(Debug)]
struct Pending {
    id: u32,
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
}

impl Pending {
    fn new(id: u32, total: u8) -> Self {
        Self {
            id,
            parts: vec![None; usize::from(total)],
            missing: usize::from(total),
        }
    }

    /// Stores a part; a duplicate of a part already held is ignored.
    fn insert(&mut self, number: u8, payload: &[u8]) {
        if let Some(slot @ None) = self.parts.get_mut(usize::from(number)) {
            *slot = Some(payload.to_vec());
            self.missing -= 1;
        }
    }

    /// Concatenates the parts in order; one allocation, no re-copying.
    fn join(&self) -> Vec<u8> {
        let len = self.parts.iter().flatten().map(Vec::len).sum();
        let mut joined = Vec::with_capacity(len);
        for part in self.parts.iter().flatten() {
            joined.extend_from_slice(part);
        }
        joined
    }
}

/// Turns datagrams into complete [`Message`]s.
#[derive(Debug, Default)]
pub(super) struct Reassembler {
    pending: Vec<Pending>,
}

impl Reassembler {
    /// Feeds one datagram. Returns the message it completes, or `None` when it
    /// was a split part and more parts are still missing.
    pub(super) fn accept(&mut self, datagram: &[u8]) -> Result<Option<Message>, QueryError> {
        match datagram.split_first_chunk::<4>() {
            Some((&SINGLE, rest)) => Ok(Some(Message::new(rest.to_vec()))),
            Some((&SPLIT, rest)) => self.accept_part(rest),
            _ => Err(QueryError::Malformed(format!(
                "packet does not start with a Source query header ({})",
                hex_prefix(datagram)
            ))),
        }
    }

    fn accept_part(&mut self, datagram: &[u8]) -> Result<Option<Message>, QueryError> {
        let mut r = Reader::new(datagram);
        let id = r.i32("split packet id")?.cast_unsigned();
        if id & COMPRESSED_FLAG != 0 {
            return Err(QueryError::Compressed);
        }
        let total = r.u8("split packet count")?;
        let number = r.u8("split packet number")?;
        let _max_size = r.u16("split packet size")?;
        if number >= total {
            return Err(QueryError::Malformed(format!(
                "split packet number {number} is out of range for {total} parts"
            )));
        }
        let pending = self.pending_for(id, total)?;
        pending.insert(number, r.rest());
        if pending.missing > 0 {
            return Ok(None);
        }
        let done = self.take(id);
        done.map(|pending| finish(pending.join())).transpose()
    }

    /// The collection for `id`, started if new; checks the part count agrees.
    fn pending_for(&mut self, id: u32, total: u8) -> Result<&mut Pending, QueryError> {
        let index = match self.pending.iter().position(|p| p.id == id) {
            Some(index) => index,
            None => {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                }
                self.pending.push(Pending::new(id, total));
                self.pending.len() - 1
            }
        };
        let pending = &mut self.pending[index];
        if pending.parts.len() != usize::from(total) {
            return Err(QueryError::Malformed(format!(
                "split packet {id:#x} claims {total} parts after claiming {}",
                pending.parts.len()
            )));
        }
        Ok(pending)
    }

    fn take(&mut self, id: u32) -> Option<Pending> {
        let index = self.pending.iter().position(|p| p.id == id)?;
        Some(self.pending.swap_remove(index))
    }
}

/// Checks a reassembled payload carries the single-packet prefix and strips it.
fn finish(mut joined: Vec<u8>) -> Result<Message, QueryError> {
    if !joined.starts_with(&SINGLE) {
        return Err(QueryError::Malformed(format!(
            "reassembled split reply does not start with FF FF FF FF ({})",
            hex_prefix(&joined)
        )));
    }
    joined.drain(..SINGLE.len());
    Ok(Message::new(joined))
}

/// The first bytes of a packet in hex, for error messages.
fn hex_prefix(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty packet".to_owned();
    }
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02X}")).collect();
    let ellipsis = if bytes.len() > 8 { " ..." } else { "" };
    format!("starts {}{ellipsis}", shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u32, total: u8, number: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = SPLIT.to_vec();
        packet.extend_from_slice(&id.to_le_bytes());
        packet.extend_from_slice(&[total, number]);
        packet.extend_from_slice(&1248u16.to_le_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    #[test]
    fn single_packet_is_returned_without_prefix() {
        let mut r = Reassembler::default();
        let message = r
            .accept(&[0xff, 0xff, 0xff, 0xff, 0x49, 1, 2])
            .unwrap()
            .unwrap();
        assert_eq!(message.kind(), Some(0x49));
        assert_eq!(message.body(), &[1, 2]);
    }

    #[test]
    fn parts_are_joined_by_number_and_duplicates_ignored() {
        let mut r = Reassembler::default();
        assert_eq!(r.accept(&part(7, 3, 2, b"cd")).unwrap(), None);
        assert_eq!(
            r.accept(&part(7, 3, 0, &[0xff, 0xff, 0xff, 0xff, b'E']))
                .unwrap(),
            None
        );
        assert_eq!(r.accept(&part(7, 3, 2, b"XX")).unwrap(), None);
        let message = r.accept(&part(7, 3, 1, b"ab")).unwrap().unwrap();
        assert_eq!(message.kind(), Some(b'E'));
        assert_eq!(message.body(), b"abcd");
        assert!(r.pending.is_empty());
    }

    #[test]
    fn interleaved_ids_are_kept_apart() {
        let mut r = Reassembler::default();
        assert_eq!(
            r.accept(&part(1, 2, 0, &[0xff, 0xff, 0xff, 0xff, b'E']))
                .unwrap(),
            None
        );
        assert_eq!(
            r.accept(&part(2, 2, 0, &[0xff, 0xff, 0xff, 0xff, b'D']))
                .unwrap(),
            None
        );
        let second = r.accept(&part(2, 2, 1, b"2")).unwrap().unwrap();
        assert_eq!((second.kind(), second.body()), (Some(b'D'), &b"2"[..]));
    }

    #[test]
    fn compressed_flag_is_refused() {
        let mut r = Reassembler::default();
        let packet = part(0x8000_0001, 2, 0, b"BZh");
        assert!(matches!(r.accept(&packet), Err(QueryError::Compressed)));
    }

    #[test]
    fn inconsistent_or_out_of_range_parts_are_malformed() {
        let mut r = Reassembler::default();
        assert!(matches!(
            r.accept(&part(1, 2, 2, b"")),
            Err(QueryError::Malformed(_))
        ));
        assert!(matches!(
            r.accept(&part(1, 0, 0, b"")),
            Err(QueryError::Malformed(_))
        ));
        assert_eq!(r.accept(&part(3, 2, 0, b"")).unwrap(), None);
        assert!(matches!(
            r.accept(&part(3, 5, 1, b"")),
            Err(QueryError::Malformed(_))
        ));
    }

    #[test]
    fn joined_payload_without_prefix_is_malformed() {
        let mut r = Reassembler::default();
        let result = r.accept(&part(4, 1, 0, b"\x49nope"));
        assert!(matches!(result, Err(QueryError::Malformed(_))));
    }

    #[test]
    fn unknown_header_is_malformed() {
        let mut r = Reassembler::default();
        for packet in [&b""[..], b"\xff\xff", b"GET / HTTP/1.1"] {
            assert!(matches!(r.accept(packet), Err(QueryError::Malformed(_))));
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A reply split into parts arrives whole whatever the parts'
        /// order and however many are sent twice.
        #[test]
        fn split_replies_are_joined_in_any_order(
            reply in proptest::collection::vec(any::<u8>(), 1..4000),
            parts in 1usize..8,
            order in any::<u64>(),
            twice in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let mut message = SINGLE.to_vec();
            message.extend_from_slice(&reply);
            let size = message.len().div_ceil(parts);
            let chunks: Vec<&[u8]> = message.chunks(size).collect();
            let total = u8::try_from(chunks.len()).unwrap();
            let mut datagrams: Vec<Vec<u8>> = Vec::new();
            for (number, chunk) in chunks.iter().enumerate() {
                let mut packet = SPLIT.to_vec();
                packet.extend_from_slice(&42u32.to_le_bytes());
                packet.extend_from_slice(&[total, u8::try_from(number).unwrap()]);
                packet.extend_from_slice(&1248u16.to_le_bytes());
                packet.extend_from_slice(chunk);
                datagrams.push(packet.clone());
                if twice[number % twice.len()] {
                    datagrams.push(packet);
                }
            }
            // A shuffle from the seed (Fisher-Yates with a xorshift).
            let mut state = order | 1;
            for i in (1..datagrams.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (i as u64 + 1)).unwrap();
                datagrams.swap(i, j);
            }
            // (Parts sent again after the reply was complete may complete
            // it again: the caller stops listening at the first.)
            let mut reassembler = Reassembler::default();
            let mut completed = Vec::new();
            for datagram in &datagrams {
                if let Some(message) = reassembler.accept(datagram).unwrap() {
                    completed.push(message);
                }
            }
            prop_assert!(!completed.is_empty(), "the reply was completed");
            for whole in &completed {
                prop_assert_eq!(whole.kind(), reply.first().copied());
                prop_assert_eq!(whole.body(), reply.get(1..).unwrap_or_default());
            }
        }
    }
}
