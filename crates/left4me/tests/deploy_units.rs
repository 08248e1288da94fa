//! The shipped systemd units, checked offline with `systemd-analyze` (systemd
//! is installed but is not PID 1 here, so nothing is started).

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

/// A throwaway filesystem root with our units, systemd's own units (for
/// the default dependencies) and stand-ins for the executables the units
/// name, so `verify` checks everything but the binaries' contents.
fn offline_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), units.join(entry.file_name())).unwrap();
    }
    copy_tree(
        Path::new("/usr/lib/systemd/system"),
        &root.path().join("usr/lib/systemd/system"),
    );
    for exe in [
        "opt/left4me/bin/left4me",
        "var/lib/left4me/runtime/demo/merged/srcds_run",
    ] {
        let path = root.path().join(exe);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

/// Copies a tree keeping symlinks as symlinks; entries that vanish while
/// copying (a package upgrade in progress) are skipped.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(&src) {
                std::os::unix::fs::symlink(target, &dst).unwrap();
            }
        } else if meta.is_dir() {
            copy_tree(&src, &dst);
        } else if let Err(e) = std::fs::copy(&src, &dst) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::NotFound,
                "copying {}: {e}",
                src.display()
            );
        }
    }
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().expect(
        "systemd-analyze must be installed (.ci/run installs systemd); this test does not skip",
    )
}

#[test]
fn units_verify_cleanly() {
    let root = offline_root();
    let root_arg = format!("--root={}", root.path().display());
    let out = systemd_analyze(&[
        "verify",
        "--man=no",
        &root_arg,
        "left4me-server@demo.service",
        "left4me-mount@demo.service",
        "l4d2-game.slice",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "verify printed warnings:\n{stderr}"
    );
}

#[test]
fn the_server_unit_is_hardened() {
    let root = offline_root();
    let unit = root
        .path()
        .join("etc/systemd/system/left4me-server@demo.service");
    std::fs::copy(
        root.path()
            .join("etc/systemd/system/left4me-server@.service"),
        &unit,
    )
    .unwrap();
    let out = systemd_analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let level: f32 = stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for left4me-server@demo.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}"));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{stdout}");
}

#[test]
fn the_mount_unit_never_gets_a_private_mount_namespace() {
    let text = std::fs::read_to_string(deploy_dir().join("left4me-mount@.service")).unwrap();
    let settings = settings_of(&text);
    for forbidden in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateMounts",
        "ReadOnlyPaths",
        "ReadWritePaths",
        "InaccessiblePaths",
        "TemporaryFileSystem",
        "BindPaths",
        "ProtectKernelModules",
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectProc",
        "MountAPIVFS",
    ] {
        assert!(
            !settings.iter().any(|(k, _)| *k == forbidden),
            "{forbidden} would hide the mount from the game unit"
        );
    }
    assert!(
        settings.contains(&("StopWhenUnneeded", "yes")),
        "the mount must go when the server stops"
    );
    let server = std::fs::read_to_string(deploy_dir().join("left4me-server@.service")).unwrap();
    let server = settings_of(&server);
    assert!(server.contains(&("Requires", "left4me-mount@%i.service")));
    assert!(
        server
            .iter()
            .any(|(k, v)| *k == "After" && v.contains("left4me-mount@%i.service"))
    );
    assert!(server.contains(&("KillSignal", "SIGINT")));
    assert!(
        !server.iter().any(|(k, _)| *k == "ProcSubset"),
        "ProcSubset=pid drops srcds to LAN-only"
    );
}

/// `(key, value)` of every setting, comments skipped.
fn settings_of(unit: &str) -> Vec<(&str, &str)> {
    unit.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
        .collect()
}
