//! A zip archive uploaded into an overlay: unpacked below a folder, never
//! outside the overlay, within small limits; the overlay emptied after.
#![no_main]

use std::sync::OnceLock;

use left4me_files::{OverlayFiles, RelPath, ZipLimits};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let overlay = dir().path().join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    let files = OverlayFiles::open(&overlay).unwrap();
    let limits = ZipLimits {
        max_entries: 64,
        max_total_bytes: 1 << 20,
        max_file_bytes: 256 << 10,
    };
    let into = RelPath::parse("maps").unwrap();
    let _ = files.unpack_zip(&into, &mut std::io::Cursor::new(data), limits);
    // Nothing lands beside the overlay.
    let beside: Vec<_> = std::fs::read_dir(dir().path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["overlay"], "written outside the overlay");
    std::fs::remove_dir_all(&overlay).unwrap();
});
