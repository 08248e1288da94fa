//! A bounds-checked little-endian reader for server replies.
//!
//! Replies come from the network, so every read can fail; the reader turns a
//! short buffer into a [`Truncated`] error naming the field that was missing
//! instead of panicking, which gives users a message that points at the
//! problem ("reply ended before the map name").

/// A reply ended before a field could be read; holds the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated(pub(crate) &'static str);

/// Cursor over a received payload. Fields are consumed front to back.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Whether every byte has been consumed (optional trailing fields absent).
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Truncated> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(Truncated(what))?;
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Truncated> {
        self.array::<1>(what).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Truncated> {
        self.array(what).map(u16::from_le_bytes)
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, Truncated> {
        self.array(what).map(i16::from_le_bytes)
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, Truncated> {
        self.array(what).map(i32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Truncated> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub(crate) fn f32(&mut self, what: &'static str) -> Result<f32, Truncated> {
        self.array(what).map(f32::from_le_bytes)
    }

    /// A NUL-terminated string. Server names, maps and player names are set by
    /// admins and players and are not guaranteed to be UTF-8, so invalid
    /// sequences are replaced rather than rejected.
    pub(crate) fn cstring(&mut self, what: &'static str) -> Result<String, Truncated> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(Truncated(what))?;
        let text = String::from_utf8_lossy(&self.rest[..end]).into_owned();
        self.rest = &self.rest[end + 1..];
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_fields_in_order() {
        let bytes = [
            7, 0x34, 0x12, 0xfe, 0xff, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f, b'h',
            b'i', 0,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a"), Ok(7));
        assert_eq!(r.u16("b"), Ok(0x1234));
        assert_eq!(r.i16("c"), Ok(-2));
        assert_eq!(r.i32("d"), Ok(1));
        assert_eq!(r.u64("e"), Ok(2));
        assert_eq!(r.f32("f"), Ok(1.0));
        assert_eq!(r.cstring("g"), Ok("hi".to_owned()));
        assert!(r.is_empty());
        assert_eq!(r.u8("h"), Err(Truncated("h")));
    }

    #[test]
    fn short_reads_name_the_missing_field_and_consume_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.i32("score"), Err(Truncated("score")));
        assert_eq!(r.rest(), &[1, 2, 3]);
        assert_eq!(r.cstring("name"), Err(Truncated("name")));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let mut r = Reader::new(&[b'a', 0xff, b'b', 0]);
        assert_eq!(r.cstring("name"), Ok("a\u{fffd}b".to_owned()));
    }
}
