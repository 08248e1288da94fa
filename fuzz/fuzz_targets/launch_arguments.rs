//! Launch arguments as typed in a blueprint: what parses is written to
//! `instance.env` and read back as the very same arguments, one argv entry
//! each (what the engine is started with).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use left4me_host::instance_env::InstanceEnv;
use left4me_host::layer::Layer;
use left4me_host::layout::StateRoot;
use left4me_host::spec::Port;

fn root() -> &'static StateRoot {
    static ROOT: OnceLock<(tempfile::TempDir, StateRoot)> = OnceLock::new();
    &ROOT
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = StateRoot::open(dir.path()).unwrap();
            (dir, root)
        })
        .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(arguments) = left4me_app::domain::parse_arguments(text) else {
        return;
    };
    let env = InstanceEnv {
        port: Port::new(27015).unwrap(),
        arguments,
        lowers: vec![Layer::Installation(1)],
    };
    let rendered = env.render(root());
    let read = InstanceEnv::parse(&rendered, Path::new("instance.env"), root())
        .unwrap_or_else(|e| panic!("{rendered:?} does not read back: {e}"));
    assert_eq!(read.arguments, env.arguments, "{rendered:?}");
});
