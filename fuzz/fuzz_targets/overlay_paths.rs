//! Paths in an overlay as the file manager and uploads name them: what
//! parses stays inside the overlay, whatever it is joined with.
#![no_main]

use left4me_files::RelPath;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (first, second) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(path) = RelPath::parse(first) else {
        return;
    };
    for component in path.components() {
        assert!(
            !component.is_empty() && component != "." && component != "..",
            "{path:?}"
        );
    }
    assert!(!path.as_str().starts_with('/'), "{path:?}");
    if let Ok(joined) = path.join(second) {
        assert!(joined.is_inside(&path), "{joined:?} left {path:?}");
    }
    if let Some(parent) = path.parent() {
        assert!(path.is_inside(&parent));
    }
});
