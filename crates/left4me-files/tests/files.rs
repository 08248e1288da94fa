//! File operations on real directories: round trips, atomicity, and the
//! refusal of every path through a symlink.

mod common;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::symlink;

use common::{Fixture, Node, assert_no_temp_files, rel};
use left4me_files::{EntryKind, FilesError, OverlayFiles, RelPath};

#[test]
fn open_requires_a_real_directory() {
    let fx = Fixture::new();
    let missing = fx.overlay.join("nope");
    assert!(matches!(
        OverlayFiles::open(&missing),
        Err(FilesError::Io { .. })
    ));
    fs::write(fx.overlay.join("file"), b"x").unwrap();
    assert!(OverlayFiles::open(&fx.overlay.join("file")).is_err());
    let link = fx.overlay.join("link");
    symlink(&fx.outside, &link).unwrap();
    let err = OverlayFiles::open(&link).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn write_then_read_round_trips_and_creates_parents() {
    let fx = Fixture::new();
    let path = rel("addons/sourcemod/configs/admins.cfg");
    fx.files.write(&path, b"\"admins\" {}").unwrap();
    assert_eq!(fx.files.read(&path, 1024).unwrap(), b"\"admins\" {}");
    let mut streamed = Vec::new();
    fx.files
        .open_read(&path)
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, b"\"admins\" {}");
    assert_eq!(
        fs::read(fx.overlay.join("addons/sourcemod/configs/admins.cfg")).unwrap(),
        b"\"admins\" {}"
    );
    assert_no_temp_files(&fx.overlay);
}

#[test]
fn write_replaces_an_existing_file_whole() {
    let fx = Fixture::new();
    let path = rel("server.cfg");
    fx.files.write(&path, &vec![b'a'; 10_000]).unwrap();
    fx.files.write(&path, b"short").unwrap();
    assert_eq!(fx.files.read(&path, 100).unwrap(), b"short");
    let mut reader: &[u8] = b"streamed";
    assert_eq!(fx.files.write_from(&path, &mut reader, 100).unwrap(), 8);
    assert_eq!(fx.files.read(&path, 100).unwrap(), b"streamed");
    let names: Vec<String> = fx.tree().into_keys().collect();
    assert_eq!(names, ["server.cfg"]);
}

/// A reader that yields some bytes, then fails, like a dropped upload.
struct BrokenUpload(usize);

impl Read for BrokenUpload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failed_write_keeps_the_old_file_and_leaves_no_temp() {
    let fx = Fixture::new();
    let path = rel("motd.txt");
    fx.files.write(&path, b"old").unwrap();
    let err = fx
        .files
        .write_from(&path, &mut BrokenUpload(100_000), 1 << 20)
        .unwrap_err();
    assert!(matches!(err, FilesError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("gone"), "{err}");
    assert_eq!(fx.files.read(&path, 100).unwrap(), b"old");
    assert_no_temp_files(&fx.overlay);
}

#[test]
fn write_from_over_the_limit_leaves_no_file_no_temp_and_no_new_dirs() {
    let fx = Fixture::new();
    let path = rel("maps/new/c1m1.bsp");
    let mut data: &[u8] = &[7u8; 5000];
    let err = fx.files.write_from(&path, &mut data, 4999).unwrap_err();
    assert!(
        matches!(err, FilesError::FileTooLarge { limit: 4999, .. }),
        "{err:?}"
    );
    assert!(fx.tree().is_empty(), "{:?}", fx.tree());

    // Over the limit onto an existing file: the old one stays.
    let existing = rel("motd.txt");
    fx.files.write(&existing, b"old").unwrap();
    let mut data: &[u8] = &[7u8; 11];
    assert!(fx.files.write_from(&existing, &mut data, 10).is_err());
    assert_eq!(fx.files.read(&existing, 100).unwrap(), b"old");
    assert_no_temp_files(&fx.overlay);

    // Exactly at the limit is fine.
    let mut data: &[u8] = &[7u8; 10];
    assert_eq!(fx.files.write_from(&existing, &mut data, 10).unwrap(), 10);
}

#[test]
fn read_refuses_large_files_directories_and_missing_paths() {
    let fx = Fixture::new();
    fx.files.write(&rel("big.txt"), &[1u8; 101]).unwrap();
    assert!(matches!(
        fx.files.read(&rel("big.txt"), 100),
        Err(FilesError::FileTooLarge { limit: 100, .. })
    ));
    assert_eq!(fx.files.read(&rel("big.txt"), 101).unwrap().len(), 101);
    fx.files.mkdir(&rel("dir")).unwrap();
    assert!(matches!(
        fx.files.read(&rel("dir"), 100),
        Err(FilesError::IsADirectory(p)) if p.as_str() == "dir"
    ));
    assert!(matches!(
        fx.files.read(&RelPath::root(), 100),
        Err(FilesError::IsADirectory(_))
    ));
    assert!(matches!(
        fx.files.read(&rel("dir/nope.txt"), 100),
        Err(FilesError::NotFound(p)) if p.as_str() == "dir/nope.txt"
    ));
    assert!(matches!(
        fx.files.read(&rel("big.txt/x"), 100),
        Err(FilesError::NotADirectory(p)) if p.as_str() == "big.txt"
    ));
}

#[test]
fn write_refuses_a_directory_target() {
    let fx = Fixture::new();
    fx.files.mkdir(&rel("cfg")).unwrap();
    assert!(matches!(
        fx.files.write(&rel("cfg"), b"x"),
        Err(FilesError::IsADirectory(_))
    ));
    assert!(matches!(
        fx.files.write(&RelPath::root(), b"x"),
        Err(FilesError::InvalidPath { .. })
    ));
    assert_eq!(fx.tree().len(), 1);
}

#[test]
fn mkdir_works_like_mkdir_p() {
    let fx = Fixture::new();
    fx.files.mkdir(&rel("a/b/c")).unwrap();
    fx.files.mkdir(&rel("a/b/c")).unwrap();
    fx.files.mkdir(&rel("a")).unwrap();
    fx.files.mkdir(&RelPath::root()).unwrap();
    assert!(fx.overlay.join("a/b/c").is_dir());
    fx.files.write(&rel("a/file"), b"x").unwrap();
    assert!(matches!(
        fx.files.mkdir(&rel("a/file")),
        Err(FilesError::NotADirectory(p)) if p.as_str() == "a/file"
    ));
    assert!(matches!(
        fx.files.mkdir(&rel("a/file/sub")),
        Err(FilesError::NotADirectory(p)) if p.as_str() == "a/file"
    ));
}

#[test]
fn rename_moves_files_and_directories() {
    let fx = Fixture::new();
    fx.files.write(&rel("a.txt"), b"a").unwrap();
    fx.files.rename(&rel("a.txt"), &rel("b.txt")).unwrap();
    assert_eq!(fx.files.read(&rel("b.txt"), 10).unwrap(), b"a");
    assert!(!fx.overlay.join("a.txt").exists());

    fx.files.write(&rel("dir/inner.txt"), b"i").unwrap();
    fx.files.rename(&rel("dir"), &rel("new/place/dir")).unwrap();
    assert_eq!(
        fx.files.read(&rel("new/place/dir/inner.txt"), 10).unwrap(),
        b"i"
    );

    assert!(matches!(
        fx.files.rename(&rel("missing"), &rel("x")),
        Err(FilesError::NotFound(p)) if p.as_str() == "missing"
    ));
    assert!(matches!(
        fx.files.rename(&RelPath::root(), &rel("x")),
        Err(FilesError::InvalidPath { .. })
    ));
    assert!(matches!(
        fx.files.rename(&rel("b.txt"), &RelPath::root()),
        Err(FilesError::InvalidPath { .. })
    ));
}

#[test]
fn rename_never_overwrites() {
    let fx = Fixture::new();
    fx.files.write(&rel("a.txt"), b"a").unwrap();
    fx.files.write(&rel("b.txt"), b"b").unwrap();
    fx.files.mkdir(&rel("d")).unwrap();
    assert!(matches!(
        fx.files.rename(&rel("a.txt"), &rel("b.txt")),
        Err(FilesError::AlreadyExists(p)) if p.as_str() == "b.txt"
    ));
    assert!(matches!(
        fx.files.rename(&rel("a.txt"), &rel("d")),
        Err(FilesError::AlreadyExists(_))
    ));
    assert!(matches!(
        fx.files.rename(&rel("a.txt"), &rel("a.txt")),
        Err(FilesError::AlreadyExists(_))
    ));
    assert_eq!(fx.files.read(&rel("a.txt"), 10).unwrap(), b"a");
    assert_eq!(fx.files.read(&rel("b.txt"), 10).unwrap(), b"b");
}

#[test]
fn rename_refuses_moving_a_directory_into_itself() {
    let fx = Fixture::new();
    fx.files.mkdir(&rel("a/b")).unwrap();
    let err = fx.files.rename(&rel("a"), &rel("a/b/c")).unwrap_err();
    assert!(matches!(err, FilesError::MoveIntoItself { .. }), "{err:?}");
    assert!(matches!(
        fx.files.rename(&rel("a"), &rel("a/x")),
        Err(FilesError::MoveIntoItself { .. })
    ));
    // A sibling whose name merely starts the same is fine.
    fx.files.rename(&rel("a"), &rel("ab")).unwrap();
    assert_eq!(fx.tree().into_keys().collect::<Vec<_>>(), ["ab", "ab/b"]);
}

#[test]
fn remove_files_directories_and_links() {
    let fx = Fixture::new().with_planted_links();
    fx.files.write(&rel("a.txt"), b"a").unwrap();
    fx.files.remove(&rel("a.txt")).unwrap();
    assert!(!fx.overlay.join("a.txt").exists());

    // A tree with links inside, pointing outside: the links go, the
    // targets stay.
    fx.files.write(&rel("tree/x/y/z.txt"), b"z").unwrap();
    symlink(&fx.outside, fx.overlay.join("tree/x/out")).unwrap();
    symlink(
        fx.outside.join("secret.txt"),
        fx.overlay.join("tree/secret"),
    )
    .unwrap();
    fx.files.remove(&rel("tree")).unwrap();
    assert!(!fx.overlay.join("tree").exists());
    fx.assert_outside_untouched();

    // The links themselves.
    fx.files.remove(&rel("escape")).unwrap();
    fx.files.remove(&rel("cfg/link.cfg")).unwrap();
    fx.assert_outside_untouched();
    assert_eq!(fx.tree().into_keys().collect::<Vec<_>>(), ["cfg"]);

    assert!(matches!(
        fx.files.remove(&rel("cfg/gone")),
        Err(FilesError::NotFound(_))
    ));
    assert!(matches!(
        fx.files.remove(&RelPath::root()),
        Err(FilesError::InvalidPath { .. })
    ));
    assert!(fx.overlay.is_dir());
}

#[test]
fn planted_symlinks_are_listed_but_never_followed() {
    let fx = Fixture::new().with_planted_links();
    let files = &fx.files;

    let root = files.list(&RelPath::root()).unwrap();
    let kinds: Vec<(&str, EntryKind)> = root.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        kinds,
        [("cfg", EntryKind::Dir), ("escape", EntryKind::Symlink)]
    );
    let cfg = files.list(&rel("cfg")).unwrap();
    assert_eq!(cfg[0].kind, EntryKind::Symlink);

    let is_link = |result: Result<_, FilesError>, at: &str| match result {
        Err(FilesError::Symlink(p)) => assert_eq!(p.as_str(), at),
        Err(other) => panic!("expected Symlink({at}), got {other:?}"),
        Ok(_) => panic!("expected Symlink({at}), got success"),
    };
    // The directory link: not listable, not a way to read or write.
    is_link(files.list(&rel("escape")).map(drop), "escape");
    is_link(
        files.read(&rel("escape/secret.txt"), 1000).map(drop),
        "escape",
    );
    is_link(
        files.open_read(&rel("escape/secret.txt")).map(drop),
        "escape",
    );
    is_link(files.write(&rel("escape/secret.txt"), b"pwned"), "escape");
    is_link(files.write(&rel("escape/new.txt"), b"pwned"), "escape");
    is_link(files.write(&rel("escape/sub/new.txt"), b"pwned"), "escape");
    let mut upload: &[u8] = b"pwned";
    is_link(
        files
            .write_from(&rel("escape/up.txt"), &mut upload, 100)
            .map(drop),
        "escape",
    );
    is_link(files.mkdir(&rel("escape/dir")), "escape");
    is_link(files.remove(&rel("escape/secret.txt")), "escape");
    is_link(files.rename(&rel("cfg"), &rel("escape/cfg")), "escape");
    is_link(
        files.rename(&rel("escape/secret.txt"), &rel("stolen")),
        "escape",
    );

    // The file link: not readable, not writable through, not a parent.
    is_link(
        files.read(&rel("cfg/link.cfg"), 1000).map(drop),
        "cfg/link.cfg",
    );
    is_link(
        files.open_read(&rel("cfg/link.cfg")).map(drop),
        "cfg/link.cfg",
    );
    is_link(files.write(&rel("cfg/link.cfg"), b"pwned"), "cfg/link.cfg");
    is_link(
        files.write(&rel("cfg/link.cfg/x"), b"pwned"),
        "cfg/link.cfg",
    );
    is_link(files.list(&rel("cfg/link.cfg")).map(drop), "cfg/link.cfg");

    // The walk lists the links and does not descend.
    let walked: Vec<String> = files
        .walk()
        .unwrap()
        .into_iter()
        .map(|e| e.path.as_str().to_owned())
        .collect();
    assert_eq!(walked, ["cfg", "cfg/link.cfg", "escape"]);

    fx.assert_outside_untouched();
    assert_eq!(
        fx.tree().into_keys().collect::<Vec<_>>(),
        ["cfg", "cfg/link.cfg", "escape"]
    );
    assert!(matches!(fx.tree()["escape"], Node::Link(_)));
    assert_no_temp_files(&fx.overlay);
}

#[test]
fn list_sorts_directories_first_then_by_name() {
    let fx = Fixture::new();
    fx.files.write(&rel("b.txt"), b"12345").unwrap();
    fx.files.write(&rel("a.txt"), b"1").unwrap();
    fx.files.mkdir(&rel("zdir")).unwrap();
    fx.files.mkdir(&rel("cdir/inner")).unwrap();
    let listed = fx.files.list(&RelPath::root()).unwrap();
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["cdir", "zdir", "a.txt", "b.txt"]);
    assert_eq!(listed[3].size, 5);
    assert_eq!(listed[3].path.as_str(), "b.txt");
    assert_eq!(listed[0].size, 0);
    assert!(listed[3].modified > 1_600_000_000);
    let inner = fx.files.list(&rel("cdir")).unwrap();
    assert_eq!(inner[0].path.as_str(), "cdir/inner");
    assert!(matches!(
        fx.files.list(&rel("a.txt")),
        Err(FilesError::NotADirectory(_))
    ));
    assert!(matches!(
        fx.files.list(&rel("nope")),
        Err(FilesError::NotFound(_))
    ));
}

#[test]
fn walk_is_depth_first_and_sorted() {
    let fx = Fixture::new();
    for path in ["b/2.txt", "b/a/1.txt", "a.txt", "c/d/e/f.txt"] {
        fx.files.write(&rel(path), path.as_bytes()).unwrap();
    }
    let walked: Vec<String> = fx
        .files
        .walk()
        .unwrap()
        .into_iter()
        .map(|e| e.path.as_str().to_owned())
        .collect();
    assert_eq!(
        walked,
        [
            "b",
            "b/a",
            "b/a/1.txt",
            "b/2.txt",
            "c",
            "c/d",
            "c/d/e",
            "c/d/e/f.txt",
            "a.txt"
        ]
    );
}

#[test]
fn special_files_are_never_opened() {
    let fx = Fixture::new();
    let dir = fs::File::open(&fx.overlay).unwrap();
    rustix::fs::mkfifoat(&dir, "pipe", rustix::fs::Mode::from_raw_mode(0o644)).unwrap();
    let listed = fx.files.list(&RelPath::root()).unwrap();
    assert_eq!(listed[0].kind, EntryKind::File);
    // Would block forever if the FIFO were opened for a blocking read.
    assert!(matches!(
        fx.files.read(&rel("pipe"), 100),
        Err(FilesError::NotAFile(_))
    ));
    assert!(matches!(
        fx.files.write(&rel("pipe"), b"x"),
        Err(FilesError::NotAFile(_))
    ));
    fx.files.remove(&rel("pipe")).unwrap();
}

#[test]
fn odd_names_on_disk_are_skipped_in_listings() {
    let fx = Fixture::new();
    fs::write(fx.overlay.join("back\\slash"), b"x").unwrap();
    fs::write(fx.overlay.join("ok.txt"), b"x").unwrap();
    let names: Vec<String> = fx
        .files
        .list(&RelPath::root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["ok.txt"]);
}
