//! `left4me game`: the game from Steam, through the real steamcmd code
//! path against the steamcmd simulator.

mod common;

use std::path::{Path, PathBuf};

use common::{stderr, stdout};

/// A state root without a game, and the 32-bit libraries the install
/// checks for, in a system root of its own.
struct GameRoot {
    dir: tempfile::TempDir,
}

impl GameRoot {
    fn new() -> Self {
        common::require_root();
        let dir = tempfile::Builder::new()
            .prefix("left4me-game-")
            .tempdir()
            .unwrap();
        for lib in [
            "system/usr/lib32/libgcc_s.so.1",
            "system/usr/lib32/libstdc++.so.6",
            "system/usr/lib/i386-linux-gnu/libSDL2-2.0.so.0",
        ] {
            let path = dir.path().join(lib);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn left4me(&self, steamcmd: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(common::LEFT4ME)
            .arg("--root")
            .arg(self.state())
            .args(args)
            .env("LEFT4ME_STEAMCMD", steamcmd)
            .env("LEFT4ME_SYSTEM_ROOT", self.dir.path().join("system"))
            .env("LEFT4ME_STEAMCMD_RETRY_MS", "50")
            .env("LEFT4ME_STEAMCMD_STALL_SECS", "3")
            .env_remove("LEFT4ME_ROOT")
            .output()
            .unwrap()
    }
}

#[test]
fn a_missing_steamcmd_says_how_to_get_it() {
    let root = GameRoot::new();
    let out = root.left4me(Path::new("/nonexistent/steamcmd.sh"), &["game", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    for hint in [
        "steamcmd is not at /nonexistent/steamcmd.sh",
        "apt install steamcmd",
        "steamcmd_linux.tar.gz",
        "LEFT4ME_STEAMCMD",
    ] {
        assert!(text.contains(hint), "{hint} in {text}");
    }
    let status = root.left4me(Path::new("/nonexistent/steamcmd.sh"), &["game", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("installed: no"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn missing_32_bit_libraries_are_named_by_package() {
    let root = GameRoot::new();
    std::fs::remove_file(root.dir.path().join("system/usr/lib32/libgcc_s.so.1")).unwrap();
    std::fs::remove_file(
        root.dir
            .path()
            .join("system/usr/lib/i386-linux-gnu/libSDL2-2.0.so.0"),
    )
    .unwrap();
    // Any existing file will do as steamcmd: the check comes first.
    let out = root.left4me(Path::new(common::LEFT4ME), &["game", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("install lib32gcc-s1 libsdl2-2.0-0:i386"),
        "{text}"
    );
    assert!(
        !text.contains("lib32stdc++6"),
        "present ones are not named: {text}"
    );
    assert!(text.contains("dpkg --add-architecture i386"), "{text}");
}
