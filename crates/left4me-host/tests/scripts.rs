//! Script overlay builds through the real sandbox into published
//! versions. Needs root and Debian's `bubblewrap`.

use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::Duration;

use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::layer::OverlayPath;
use left4me_host::layout::StateRoot;
use left4me_host::sandbox::Limits;
use left4me_host::sandbox::bubblewrap::Bubblewrap;
use left4me_host::scripts::{ScriptBuild, ScriptError, build_script_overlay};
use left4me_host::versions::VersionInfo;

fn build(
    root: &StateRoot,
    script: &str,
    from_scratch: bool,
    id: &str,
    cancel: &CancellationToken,
) -> (Result<VersionInfo, ScriptError>, String) {
    let sandbox = Bubblewrap::new(Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    });
    let lines = Mutex::new(Vec::new());
    let sink = |e: Event| {
        if let Event::Stdout(l) | Event::Stderr(l) | Event::Step(l) = e {
            lines.lock().unwrap().push(l);
        }
    };
    let overlay = OverlayPath::parse("9").unwrap();
    let result = build_script_overlay(
        root,
        &sandbox,
        &ScriptBuild {
            overlay: &overlay,
            script,
            from_scratch,
            build_id: id.to_owned(),
            hidden: &[],
        },
        &Ctx::new(&sink, cancel),
    );
    (result, lines.into_inner().unwrap().join("\n"))
}

fn file(root: &StateRoot, version: u32, path: &str) -> String {
    let layer = root
        .overlay_versions(&OverlayPath::parse("9").unwrap())
        .layer_dir(version);
    std::fs::read_to_string(layer.join(path)).unwrap()
}

fn current(root: &StateRoot) -> Option<u32> {
    root.overlay_versions(&OverlayPath::parse("9").unwrap())
        .current()
        .unwrap()
}

#[test]
fn builds_publish_versions_and_failures_keep_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::open(dir.path().join("root")).unwrap();
    let never = CancellationToken::new();

    let (first, log) = build(
        &root,
        "set -e\nmkdir -p left4dead2/cfg\necho 'sv_tickrate 100' > left4dead2/cfg/tick.cfg\nchmod 600 left4dead2/cfg/tick.cfg\necho done\n",
        true,
        "1",
        &never,
    );
    let v1 = first.unwrap_or_else(|e| panic!("{e}\n{log}")).version;
    assert!(log.contains("done"), "{log}");
    assert_eq!(
        file(&root, v1, "left4dead2/cfg/tick.cfg"),
        "sv_tickrate 100\n"
    );
    let meta = std::fs::metadata(
        root.overlay_versions(&OverlayPath::parse("9").unwrap())
            .layer_dir(v1)
            .join("left4dead2/cfg/tick.cfg"),
    )
    .unwrap();
    assert_eq!(
        meta.uid(),
        std::fs::metadata(root.path()).unwrap().uid(),
        "handed to the root's owner"
    );
    assert_eq!(meta.mode() & 0o444, 0o444, "readable by the game");

    // On a copy of version 1: the script changes a file in place, and
    // version 1 keeps its content.
    let (second, log) = build(
        &root,
        "echo 'fps_max 0' >> left4dead2/cfg/tick.cfg\n",
        false,
        "2",
        &never,
    );
    let v2 = second.unwrap_or_else(|e| panic!("{e}\n{log}")).version;
    assert!(v2 > v1);
    assert_eq!(
        file(&root, v2, "left4dead2/cfg/tick.cfg"),
        "sv_tickrate 100\nfps_max 0\n"
    );
    assert_eq!(
        file(&root, v1, "left4dead2/cfg/tick.cfg"),
        "sv_tickrate 100\n"
    );

    // A failure publishes nothing and leaves no scratch directory.
    let (failed, log) = build(&root, "echo half > half.txt\nexit 7\n", true, "3", &never);
    let error = failed.unwrap_err().to_string();
    assert!(error.contains("the build script failed"), "{error}\n{log}");
    assert_eq!(current(&root), Some(v2));
    assert!(!root.tmp().join("builds").read_dir().unwrap().any(|_| true));

    // So does a cancel.
    let cancel = CancellationToken::new();
    let handle = {
        let (root, cancel) = (root.clone(), cancel.clone());
        std::thread::spawn(move || {
            build(&root, "touch started\nexec sleep 300\n", true, "4", &cancel)
        })
    };
    // Cancel once the script runs.
    let builds = root.tmp().join("builds");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !builds
        .read_dir()
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("layer/started").exists())))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the script never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cancel.cancel();
    let (cancelled, log) = handle.join().unwrap();
    assert!(cancelled.unwrap_err().is_cancelled(), "{log}");
    assert_eq!(current(&root), Some(v2));
    assert!(!builds.read_dir().unwrap().any(|_| true));
}
