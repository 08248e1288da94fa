//! An RCON stream as the game server sends it, in reads of any size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    srcds_protocol::rcon::fuzz_stream(data);
});
