//! The shipped systemd units, checked offline with `systemd-analyze` (systemd
//! is installed but is not PID 1 here, so nothing is started).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{LEFT4ME, TestRoot, free_port, stderr};

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
        "usr/bin/left4me",
        "bin/bash",
        "var/lib/left4me/runtime/demo/merged/srcds_linux",
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
        "left4me.service",
        "left4me-server@demo.service",
        "left4me-mount@demo.service",
        "left4me-autostart@demo.service",
        "left4me-game@update.service",
        "left4me-game@workshop-123456789.service",
        "left4me-build@9-42.service",
        "left4me-build-prepare@9-42.service",
        "left4me-build-finish@9-42.service",
        "left4me-build-net@9-42.service",
        "l4d2-game.slice",
        "l4d2-build.slice",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "verify printed warnings:\n{stderr}"
    );
}

/// The exposure level `systemd-analyze security` gives an instance of a
/// template unit (0 is best, 10 worst).
fn exposure(template: &str) -> (f32, String) {
    let root = offline_root();
    let units = root.path().join("etc/systemd/system");
    let name = template.replace("@.", "@demo.");
    let unit = units.join(&name);
    if name != template {
        std::fs::copy(units.join(template), &unit).unwrap();
    }
    let out = systemd_analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let level = stdout
        .lines()
        .find_map(|l| {
            l.split(&format!("Overall exposure level for {name}: "))
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}"));
    (level, stdout)
}

#[test]
fn the_panel_server_and_autostart_units_are_hardened() {
    // The panel and the game run unprivileged; the autostart helper runs
    // as root but may only talk to PID 1.
    for (template, limit) in [
        ("left4me.service", 2.5),
        ("left4me-server@.service", 2.0),
        ("left4me-autostart@.service", 1.5),
        ("left4me-build@.service", 2.0),
    ] {
        let (level, report) = exposure(template);
        assert!(
            level <= limit,
            "{template}: exposure {level} > {limit}:\n{report}"
        );
    }
}

/// The panel holds no privilege and cannot gain one: no sudo, no
/// capabilities, writes to the state root only.
#[test]
fn the_panel_unit_has_no_privilege() {
    let text = std::fs::read_to_string(deploy_dir().join("left4me.service")).unwrap();
    let settings = settings_of(&text);
    for expected in [
        ("User", "left4me"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/left4me"),
    ] {
        assert!(settings.contains(&expected), "{expected:?} in {settings:?}");
    }
    assert!(
        !settings.iter().any(|(_, v)| v.contains("sudo")),
        "{settings:?}"
    );
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

/// Runs the real polkitd with our rules on a private D-Bus, in a private
/// mount namespace where /etc/passwd has a `left4me` user, and asks it
/// with pkcheck on behalf of processes running as `left4me` and `nobody`.
#[test]
fn polkit_lets_the_panel_manage_its_units_and_nothing_else() {
    for (program, package) in [
        ("/usr/lib/polkit-1/polkitd", "polkitd"),
        ("/usr/bin/pkcheck", "polkitd"),
        ("/usr/bin/dbus-daemon", "dbus-daemon"),
        ("/usr/bin/dbus-send", "dbus-bin"),
    ] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install Debian's {package} (.ci/run does); this test does not skip"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(
        deploy_dir().join("../polkit/50-left4me.rules"),
        rules.join("50-left4me.rules"),
    )
    .unwrap();
    let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str("left4me:x:4242:4242::/nonexistent:/usr/sbin/nologin\n");
    std::fs::write(dir.path().join("passwd"), passwd).unwrap();
    let socket = dir.path().join("bus.sock");
    std::fs::write(
        dir.path().join("bus.conf"),
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();

    const MANAGE: &str = "org.freedesktop.systemd1.manage-units";
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (
            "left4me",
            MANAGE,
            "left4me-server@coop-1.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-server@coop-1.service",
            "stop",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-server@coop-1.service",
            "reset-failed",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-autostart@coop-1.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-autostart@coop-1.service",
            "stop",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-server@coop-1.service",
            "kill",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-mount@coop-1.service",
            "start",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@update.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@validate.service",
            "stop",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@check.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@other.service",
            "start",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@update.service",
            "kill",
            false,
        ),
        (
            "nobody",
            MANAGE,
            "left4me-game@update.service",
            "start",
            false,
        ),
        // Workshop downloads: one unit per item id, digits only.
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-123456789.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-18446744073709551615.service",
            "stop",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-123456789.service",
            "reset-failed",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-123456789.service",
            "kill",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-.service",
            "start",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-12a.service",
            "start",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-game@workshop-123456789012345678901.service",
            "start",
            false,
        ),
        (
            "nobody",
            MANAGE,
            "left4me-game@workshop-123456789.service",
            "start",
            false,
        ),
        // Script builds: one unit per build name.
        (
            "left4me",
            MANAGE,
            "left4me-build@9-42.service",
            "start",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-build@9-42.service",
            "stop",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-build@9-42.service",
            "reset-failed",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-build@9-42.service",
            "kill",
            false,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-build@-9.service",
            "start",
            false,
        ),
        ("left4me", MANAGE, "left4me-build@A.service", "start", false),
        (
            "left4me",
            MANAGE,
            "left4me-build-net@9-42.service",
            "stop",
            true,
        ),
        (
            "left4me",
            MANAGE,
            "left4me-build-net@9-42.service",
            "start",
            false,
        ),
        ("left4me", MANAGE, "left4me-build@.service", "start", false),
        (
            "nobody",
            MANAGE,
            "left4me-build@9-42.service",
            "start",
            false,
        ),
        ("left4me", MANAGE, "ssh.service", "stop", false),
        ("left4me", MANAGE, "left4me-server@.service", "start", false),
        (
            "left4me",
            MANAGE,
            "left4me-server@x.service.wants",
            "start",
            false,
        ),
        (
            "left4me",
            "org.freedesktop.systemd1.manage-unit-files",
            "",
            "",
            false,
        ),
        (
            "nobody",
            MANAGE,
            "left4me-server@coop-1.service",
            "start",
            false,
        ),
    ];
    let args: Vec<String> = cases
        .iter()
        .map(|(user, action, unit, verb, _)| format!("{user} {action} {unit} {verb}"))
        .collect();
    let script = r#"
set -eu
dir=$1; shift
mount --bind "$dir/rules.d" /etc/polkit-1/rules.d
mount --bind "$dir/passwd" /etc/passwd
dbus-daemon --config-file="$dir/bus.conf" --fork --print-pid > "$dir/dbus.pid"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus.sock"
/usr/lib/polkit-1/polkitd --no-debug > "$dir/polkitd.log" 2>&1 &
polkitd=$!
trap 'kill $polkitd $(cat "$dir/dbus.pid") 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.PolicyKit1 \
        | grep -q 'boolean true' && break
    sleep 0.05
done
for case in "$@"; do
    set -- $case
    setpriv --reuid="$1" --regid=65534 --clear-groups sleep 30 &
    subject=$!
    sleep 0.05
    if [ -n "${3:-}" ]; then
        details="--detail unit $3 --detail verb $4"
    else
        details=""
    fi
    if pkcheck --process $subject --action-id $2 $details >/dev/null 2>&1; then
        echo "yes $case"
    else
        echo "no $case"
    fi
    kill $subject
done
"#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(dir.path())
        .args(&args)
        .output()
        .expect("unshare (util-linux) must be installed; this test does not skip");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.path().join("polkitd.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "polkit harness failed ({}): {}\npolkitd: {log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<&str> = stdout.lines().collect();
    let expected: Vec<String> = cases
        .iter()
        .zip(&args)
        .map(|((.., allowed), case)| format!("{} {case}", if *allowed { "yes" } else { "no" }))
        .collect();
    assert_eq!(answers, expected, "polkitd: {log}");
}

/// The boot setting from `instance start` to the symlink systemd reads at
/// boot. A stand-in `systemctl` plays PID 1: it runs the autostart oneshot
/// with the unit's capability bounding set and hands unit-file work to the
/// real systemctl on an offline root, which creates and removes the real
/// symlinks.
#[test]
fn start_enables_the_server_unit_for_boot_and_stop_and_delete_disable_it() {
    let offline = offline_root();
    let mut t = TestRoot::new();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = t.path().join("systemctl.calls");
    std::fs::write(
        bin.join("systemctl"),
        format!(
            r#"#!/bin/sh
echo "$@" >> '{calls}'
case "$1" in
show) printf 'ActiveState=inactive\nSubState=dead\nMainPID=0\n' ;;
start)
    case "$2" in
    left4me-autostart@*.service)
        name=${{2#left4me-autostart@}}
        exec setpriv --bounding-set '{caps}' --inh-caps -all \
            '{left4me}' --root '{state}' autostart-helper "${{name%.service}}" ;;
    esac ;;
--no-reload) exec /usr/bin/systemctl --root='{offline}' "$@" ;;
esac
"#,
            calls = calls.display(),
            left4me = LEFT4ME,
            caps = bounding_set("left4me-autostart@.service"),
            state = t.path().display(),
            offline = offline.path().display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    t.env.push(("PATH".into(), path));
    let is_enabled = || {
        let out = Command::new("systemctl")
            .arg(format!("--root={}", offline.path().display()))
            .args(["is-enabled", "left4me-server@coop-1.service"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let wants = offline
        .path()
        .join("etc/systemd/system/multi-user.target.wants/left4me-server@coop-1.service");
    let marker = t.path().join("instances/coop-1/start-on-boot");
    let spec = t.spec("s.yaml", &format!("port: {}\n", free_port()));
    let systemd = ["--supervisor", "systemd", "instance"];
    let run = |args: &[&str]| t.ok(&[&systemd[..], args].concat());

    // The helper runs confined to its unit's capabilities, and the panel
    // owns the instance directory with mode 0750, as in production.
    t.ok(&[
        "instance",
        "init",
        "coop-1",
        "--spec",
        spec.to_str().unwrap(),
    ]);
    give_to_game_user(&t, &["instances", "runtime"]);
    assert_eq!(is_enabled(), "disabled");
    run(&["start", "coop-1"]);
    assert!(marker.is_file());
    assert_eq!(is_enabled(), "enabled");
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        Path::new("/etc/systemd/system/left4me-server@.service")
    );

    run(&["stop", "coop-1"]);
    assert!(!marker.exists());
    assert_eq!(is_enabled(), "disabled");
    assert!(wants.symlink_metadata().is_err());

    // A lost symlink (say the helper never ran) comes back with the next
    // start, and a repeated helper run changes nothing.
    run(&["start", "coop-1"]);
    std::fs::remove_file(&wants).unwrap();
    run(&["start", "coop-1"]);
    assert_eq!(is_enabled(), "enabled");
    let again = t.ok(&["autostart-helper", "coop-1"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "left4me-server@coop-1.service enabled\n"
    );

    run(&["delete", "coop-1"]);
    assert!(!t.path().join("instances/coop-1").exists());
    assert_eq!(is_enabled(), "disabled");

    let log = std::fs::read_to_string(&calls).unwrap();
    assert!(
        log.lines()
            .take_while(|l| !l.starts_with("start left4me-server@"))
            .any(|l| l == "start left4me-autostart@coop-1.service"),
        "the boot setting is recorded before the server starts:\n{log}"
    );

    let bad = t.run(&["autostart-helper", "../etc"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("invalid instance name"),
        "{}",
        stderr(&bad)
    );
}

/// The `CapabilityBoundingSet=` of a shipped unit, as `setpriv
/// --bounding-set` takes it (`-all,+sys_admin,...`).
fn bounding_set(unit: &str) -> String {
    let text = std::fs::read_to_string(deploy_dir().join(unit)).unwrap();
    let caps: Vec<String> = settings_of(&text)
        .into_iter()
        .filter(|(k, _)| *k == "CapabilityBoundingSet")
        .flat_map(|(_, v)| v.split_whitespace())
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(!caps.is_empty(), "{unit} sets no CapabilityBoundingSet");
    format!("-all,{}", caps.join(","))
}

/// Runs `left4me ARGS` as root confined to `unit`'s capability bounding
/// set, as systemd would run the unit's ExecStart.
fn run_confined(t: &TestRoot, unit: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", &bounding_set(unit), "--inh-caps", "-all"])
        .arg(LEFT4ME)
        .arg("--root")
        .arg(t.path())
        .args(args);
    cmd.output()
        .expect("setpriv (util-linux) must be installed; this test does not skip")
}

const GAME_UID: &str = "4242";

/// Hands an instance's files to the game user with the modes the panel's
/// umask (0027) gives them, as in production.
fn give_to_game_user(t: &TestRoot, paths: &[&str]) {
    for path in paths {
        let out = Command::new("chown")
            .args(["-R", &format!("{GAME_UID}:{GAME_UID}")])
            .arg(t.path().join(path))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = Command::new("chmod")
            .args(["-R", "o-rwx"])
            .arg(t.path().join(path))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// Runs a shell command as the game user in `dir`.
fn as_game_user(dir: &Path, script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", GAME_UID, "--regid", GAME_UID, "--clear-groups"])
        .args(["sh", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_mount_helper_with_its_units_capabilities_mounts_a_writable_overlay() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let t = TestRoot::new();
    t.overlay(
        "mods",
        &[
            ("left4dead2/addons/mod.vpk", "vpk"),
            ("left4dead2/addons/old.vpk", "old"),
        ],
    );
    let spec = t.spec(
        "s.yaml",
        &format!("port: {}\noverlays: [mods]\n", free_port()),
    );
    t.ok(&["instance", "init", "pi", "--spec", spec.to_str().unwrap()]);
    give_to_game_user(
        &t,
        &["instances", "runtime", "overlays", "overlay-versions"],
    );

    let unit = "left4me-mount@.service";
    let out = run_confined(&t, unit, &["mount-helper", "mount", "pi"]);
    assert!(out.status.success(), "mount failed: {}", stderr(&out));
    let entry = left4me_host::mount::find_mount(&t.merged("pi"))
        .unwrap()
        .expect("mounted");
    assert!(
        !entry.super_options.iter().any(|o| o == "ro"),
        "the kernel fell back to a read-only mount: {entry:?}"
    );
    // What a game does: new files, changes to an overlay's file (a copy-up
    // keeping its owner) and deleting a lower file (a whiteout).
    let out = as_game_user(
        &t.merged("pi"),
        "echo new > left4dead2/addons/new.txt \
         && echo changed >> left4dead2/addons/mod.vpk \
         && rm left4dead2/addons/old.vpk",
    );
    assert!(out.status.success(), "as the game: {}", stderr(&out));
    let upper = t.path().join("runtime/pi/upper/left4dead2/addons");
    let copied = std::fs::metadata(upper.join("mod.vpk")).unwrap();
    assert_eq!(
        copied.uid().to_string(),
        GAME_UID,
        "copied up with its owner"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("mod.vpk")).unwrap(),
        "vpkchanged\n"
    );
    let whiteout = std::fs::symlink_metadata(upper.join("old.vpk")).unwrap();
    assert!(whiteout.file_type().is_char_device(), "a whiteout hides it");
    assert_eq!(
        std::fs::read_to_string(t.path().join("overlays/mods/left4dead2/addons/mod.vpk")).unwrap(),
        "vpk",
        "the overlay itself is untouched"
    );
    let out = run_confined(&t, unit, &["mount-helper", "umount", "pi"]);
    assert!(out.status.success(), "umount failed: {}", stderr(&out));
}

/// The server unit's `ExecStart`, run the way systemd runs it (its user,
/// no new privileges, in its `WorkingDirectory`), runs the engine
/// (`srcds_linux`) with every launch argument whole (spaces and quotes
/// inside one argument stay in it, which neither `$L4D2_ARGS` in the unit
/// nor Valve's `srcds_run` could do) and the library path srcds_run would
/// have set.
#[test]
fn the_server_units_exec_start_passes_every_argument_whole() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = t.spec(
        "s.yaml",
        &format!(
            "port: {port}\narguments: ['+map', 'c1m1_hotel', '+hostname', 'My Cool Server', '\"quoted\" it''s', '$HOME']\n"
        ),
    );
    t.ok(&["instance", "init", "rho", "--spec", spec.to_str().unwrap()]);
    // A stand-in engine that writes its argv, one per line, and its
    // library path.
    let engine = t.merged("rho").join("srcds_linux");
    std::fs::write(
        &engine,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > argv\necho \"$LD_LIBRARY_PATH\" > library_path\n",
    )
    .unwrap();
    std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
    give_to_game_user(&t, &["instances", "runtime"]);
    // Like /var/lib/left4me: the game user may pass through the root.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let text = std::fs::read_to_string(deploy_dir().join("left4me-server@.service")).unwrap();
    let settings = settings_of(&text);
    let get = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no {key}= in the server unit"))
            .1
            .replace("%i", "rho")
            .replace("/usr/bin/left4me", LEFT4ME)
            .replace("/var/lib/left4me", t.path().to_str().unwrap())
    };
    let exec_start = get("ExecStart");
    // Nothing for systemd to expand or unquote: plain words.
    assert!(
        !exec_start.contains(['$', '"', '\'']),
        "ExecStart={exec_start}"
    );
    let argv: Vec<&str> = exec_start.split_whitespace().collect();
    let out = Command::new("setpriv")
        .args(["--reuid", GAME_UID, "--regid", GAME_UID, "--clear-groups"])
        .arg("--no-new-privs")
        .args(&argv)
        .current_dir(get("WorkingDirectory"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ExecStart failed: {}", stderr(&out));
    let got = std::fs::read_to_string(t.merged("rho").join("argv")).unwrap();
    let port = port.to_string();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "-game",
            "left4dead2",
            "+ip",
            "0.0.0.0",
            "-port",
            port.as_str(),
            "+map",
            "c1m1_hotel",
            "+hostname",
            "My Cool Server",
            "\"quoted\" it's",
            "$HOME",
        ]
    );
    let merged = t.merged("rho");
    let library_path = std::fs::read_to_string(merged.join("library_path")).unwrap();
    let wanted = format!("{0}:{0}/bin", merged.display());
    assert!(
        library_path.trim_end().starts_with(&wanted),
        "{library_path}"
    );
}
