//! `spec.yaml` as an admin writes it for `left4me instance`: what parses
//! renders and parses again to the same spec.
#![no_main]

use std::path::Path;

use left4me_host::spec::Spec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(spec) = Spec::parse(text, Path::new("spec.yaml"), None)
    {
        let again =
            Spec::parse(&spec.to_yaml(), Path::new("again"), None).expect("a rendered spec parses");
        assert_eq!(again.to_yaml(), spec.to_yaml());
    }
});
