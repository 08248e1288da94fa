//! The Steam Web API's answers about Workshop items and collections.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    left4me_workshop::api::fuzz_answers(data);
});
