//! Fixtures shared by the integration tests: an overlay directory next to
//! an "outside" directory holding a secret the overlay must never reach.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use left4me_files::{OverlayFiles, RelPath, TEMP_PREFIX};

pub const SECRET: &[u8] = b"outside, do not touch";

pub struct Fixture {
    _base: tempfile::TempDir,
    pub overlay: PathBuf,
    pub outside: PathBuf,
    pub files: OverlayFiles,
}

impl Fixture {
    pub fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let overlay = base.path().join("overlay");
        let outside = base.path().join("outside");
        fs::create_dir(&overlay).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.txt"), SECRET).unwrap();
        let files = OverlayFiles::open(&overlay).unwrap();
        Self {
            _base: base,
            overlay,
            outside,
            files,
        }
    }

    /// Plants `escape -> <outside>` (a directory link leaving the overlay)
    /// and `cfg/link.cfg -> <outside>/secret.txt` (a file link).
    pub fn with_planted_links(self) -> Self {
        symlink(&self.outside, self.overlay.join("escape")).unwrap();
        fs::create_dir(self.overlay.join("cfg")).unwrap();
        symlink(
            self.outside.join("secret.txt"),
            self.overlay.join("cfg/link.cfg"),
        )
        .unwrap();
        self
    }

    /// Asserts the outside directory still holds exactly the secret.
    pub fn assert_outside_untouched(&self) {
        let tree = tree(&self.outside);
        assert_eq!(
            tree.keys().cloned().collect::<Vec<_>>(),
            vec!["secret.txt".to_owned()]
        );
        assert_eq!(fs::read(self.outside.join("secret.txt")).unwrap(), SECRET);
    }

    pub fn tree(&self) -> BTreeMap<String, Node> {
        tree(&self.overlay)
    }
}

pub fn rel(path: &str) -> RelPath {
    RelPath::parse(path).unwrap()
}

/// What a test sees of a file system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>),
    Dir,
    Link(PathBuf),
}

/// Every entry below `dir` (not following links), by relative path.
pub fn tree(dir: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    collect(dir, dir, &mut out);
    out
}

fn collect(base: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let key = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            out.insert(key, Node::Link(fs::read_link(&path).unwrap()));
        } else if meta.is_dir() {
            out.insert(key, Node::Dir);
            collect(base, &path, out);
        } else {
            out.insert(key, Node::File(fs::read(&path).unwrap()));
        }
    }
}

/// Asserts no temp file of ours is left anywhere below `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<String> = tree(dir)
        .into_keys()
        .filter(|k| k.rsplit('/').next().unwrap().starts_with(TEMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}
