//! steamcmd's KeyValues text: app manifests and `app_info_print` output.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    left4me_host::game::fuzz_vdf(&String::from_utf8_lossy(data));
});
