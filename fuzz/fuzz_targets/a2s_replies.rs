//! A2S replies as a game server (or anyone) sends them: datagrams
//! reassembled, then read as INFO, PLAYER and RULES.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    srcds_protocol::a2s::fuzz_replies(data);
});
