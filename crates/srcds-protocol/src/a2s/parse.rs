//! Decoding of reply bodies (the bytes after the reply type byte).
//!
//! Parsers read exactly the documented fields and ignore trailing bytes: some
//! servers pad replies, and extra data is harmless, whereas a short reply
//! means a field is genuinely missing and is reported as malformed.

use std::time::Duration;

use super::{Info, Player, QueryError, Rule};
use crate::wire::{Reader, Truncated};

/// Extra data flags of `A2S_INFO`, in the order their fields appear.
mod edf {
    pub(super) const PORT: u8 = 0x80;
    pub(super) const STEAM_ID: u8 = 0x10;
    pub(super) const TV: u8 = 0x40;
    pub(super) const KEYWORDS: u8 = 0x20;
    pub(super) const GAME_ID: u8 = 0x01;
}

impl From<Truncated> for QueryError {
    fn from(Truncated(what): Truncated) -> Self {
        QueryError::Malformed(format!("reply ended before the {what}"))
    }
}

pub(super) fn info(body: &[u8]) -> Result<Info, QueryError> {
    let mut r = Reader::new(body);
    let mut info = Info {
        protocol: r.u8("protocol version")?,
        name: r.cstring("server name")?,
        map: r.cstring("map name")?,
        folder: r.cstring("game folder")?,
        game: r.cstring("game description")?,
        app_id: r.u16("app id")?,
        players: r.u8("player count")?,
        max_players: r.u8("max player count")?,
        bots: r.u8("bot count")?,
        server_type: char::from(r.u8("server type")?),
        environment: char::from(r.u8("environment")?),
        visibility: r.u8("visibility flag")? != 0,
        vac: r.u8("VAC flag")? != 0,
        version: r.cstring("game version")?,
        port: None,
        steam_id: None,
        tv: None,
        keywords: None,
        game_id: None,
    };
    // Old servers stop after the version: no extra data at all.
    if !r.is_empty() {
        extra_data(&mut r, &mut info)?;
    }
    Ok(info)
}

/// Reads the flag byte and the optional fields it announces.
fn extra_data(r: &mut Reader<'_>, info: &mut Info) -> Result<(), Truncated> {
    let flags = r.u8("extra data flags")?;
    let has = |flag: u8| flags & flag != 0;
    if has(edf::PORT) {
        info.port = Some(r.u16("game port")?);
    }
    if has(edf::STEAM_ID) {
        info.steam_id = Some(r.u64("server SteamID")?);
    }
    if has(edf::TV) {
        let port = r.u16("SourceTV port")?;
        info.tv = Some((port, r.cstring("SourceTV name")?));
    }
    if has(edf::KEYWORDS) {
        info.keywords = Some(r.cstring("keywords")?);
    }
    if has(edf::GAME_ID) {
        info.game_id = Some(r.u64("game id")?);
    }
    Ok(())
}

pub(super) fn players(body: &[u8]) -> Result<Vec<Player>, QueryError> {
    let mut r = Reader::new(body);
    let count = r.u8("player count")?;
    (0..count)
        .map(|_| player(&mut r).map_err(QueryError::from))
        .collect()
}

fn player(r: &mut Reader<'_>) -> Result<Player, Truncated> {
    Ok(Player {
        index: r.u8("player index")?,
        name: r.cstring("player name")?,
        score: r.i32("player score")?,
        duration: seconds(r.f32("player duration")?),
    })
}

/// Converts the wire's float seconds; garbage (negative, NaN, huge) becomes
/// zero rather than an error, because it says nothing about the rest of the
/// reply and one odd bot entry should not hide the player list.
fn seconds(secs: f32) -> Duration {
    Duration::try_from_secs_f32(secs).unwrap_or_default()
}

pub(super) fn rules(body: &[u8]) -> Result<Vec<Rule>, QueryError> {
    let mut r = Reader::new(body);
    let count = r.i16("rule count")?;
    let count = u16::try_from(count)
        .map_err(|_| QueryError::Malformed(format!("negative rule count {count}")))?;
    // Each rule takes at least two bytes (two empty strings); never trust the
    // count alone for the allocation.
    let mut rules = Vec::with_capacity(usize::from(count).min(body.len() / 2));
    for _ in 0..count {
        rules.push(Rule {
            name: r.cstring("rule name")?,
            value: r.cstring("rule value")?,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `A2S_INFO` body up to the version string, without extra data.
    fn base_info_body() -> Vec<u8> {
        let mut b = vec![17];
        for s in ["My Server", "c1m1_hotel", "left4dead2", "Left 4 Dead 2"] {
            b.extend_from_slice(s.as_bytes());
            b.push(0);
        }
        b.extend_from_slice(&550u16.to_le_bytes());
        b.extend_from_slice(&[3, 8, 1, b'd', b'l', 1, 1]);
        b.extend_from_slice(b"2.2.4.3\0");
        b
    }

    /// A full `A2S_INFO` body with every extra data field present.
    fn full_info_body() -> Vec<u8> {
        let mut b = base_info_body();
        b.push(0xf1);
        b.extend_from_slice(&27015u16.to_le_bytes());
        b.extend_from_slice(&90_000_000_000_000_001u64.to_le_bytes());
        b.extend_from_slice(&27020u16.to_le_bytes());
        b.extend_from_slice(b"tv\0coop,versus\0");
        b.extend_from_slice(&550u64.to_le_bytes());
        b
    }

    #[test]
    fn info_without_extra_data_has_no_optional_fields() {
        let info = info(&base_info_body()).unwrap();
        assert_eq!(info.version, "2.2.4.3");
        assert_eq!(
            (info.port, info.steam_id, info.tv, info.game_id),
            (None, None, None, None)
        );
    }

    #[test]
    fn info_with_only_some_flags() {
        let mut body = base_info_body();
        body.push(0x20);
        body.extend_from_slice(b"coop\0");
        let info = info(&body).unwrap();
        assert_eq!(info.keywords.as_deref(), Some("coop"));
        assert_eq!(info.port, None);
    }

    #[test]
    fn odd_durations_become_zero() {
        for secs in [-1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(seconds(secs), Duration::ZERO);
        }
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
    }

    #[test]
    fn negative_rule_count_is_malformed() {
        assert!(matches!(
            rules(&[0xff, 0xff]),
            Err(QueryError::Malformed(_))
        ));
    }

    #[test]
    fn every_truncation_of_a_valid_reply_fails_cleanly() {
        let body = full_info_body();
        assert!(info(&body).is_ok());
        for len in 0..body.len() {
            // Some prefixes are valid replies without later optional fields;
            // what matters is that none panics.
            let _ = info(&body[..len]);
        }
        let players_body = b"\x02\x00a\x00\x01\x00\x00\x00\x00\x00\x80\x3f\x00b\x00";
        for len in 0..players_body.len() {
            assert!(players(&players_body[..len]).is_err());
        }
        let rules_body = b"\x02\x00a\x001\x00b\x002\x00";
        for len in 0..rules_body.len() {
            assert!(rules(&rules_body[..len]).is_err());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut next = crate::test_rng::xorshift(0x2545_f491);
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = info(&bytes);
            let _ = players(&bytes);
            let _ = rules(&bytes);
            let mut reassembler = super::super::packet::Reassembler::default();
            let mut split = vec![0xfe, 0xff, 0xff, 0xff];
            split.extend_from_slice(&bytes);
            let _ = reassembler.accept(&split);
            let _ = reassembler.accept(&bytes);
        }
    }
}
