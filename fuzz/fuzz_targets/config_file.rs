//! `/etc/left4me/left4me.toml`.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = left4me_config::Config::parse(text, Path::new("left4me.toml"));
    }
});
