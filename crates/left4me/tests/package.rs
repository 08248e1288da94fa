//! The Debian package under a real systemd: built from this tree with
//! cargo-deb, installed with apt into a throwaway copy of this machine
//! booted with systemd as PID 1 (`common::machine`), and checked as an
//! admin would: the predecessor's six checks, then an upgrade with a game
//! running, a reboot, a backup, removal and purge, and the whole panel
//! restored from its backup onto the purged host as onto a new one.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::machine::{Bind, Machine};
use common::panel::{
    Client, act_ok, console, create_blueprint, create_server, csrf_in, finished_job, game_action,
    page_showing,
};
use reqwest::StatusCode;
use steamcmd_sim::SteamcmdSim;

const PANEL: &str = "http://127.0.0.1:8000";
/// The game server's port inside the machine (its network is its own).
const GAME_PORT: u16 = 27015;
const STATE: &str = "/var/lib/left4me";
const CONFIG: &str = "/etc/left4me/left4me.toml";
const ADMIN_PASSWORD: &str = "admin-password-1";
/// A local backup repository outside the state root (a purge leaves it),
/// which the panel's unit may write by a drop-in, as docs/backups.md says.
const REPOSITORY: &str = "/srv/left4me-backups";
/// Where the admin keeps the backup password and the sealing key apart.
const KEPT: &str = "/root/kept";

/// What the package puts on the system besides the configuration.
const CODE: &[&str] = &[
    "/usr/bin/left4me",
    "/usr/lib/left4me/srcds-sim",
    "/usr/lib/systemd/system/left4me.service",
    "/usr/lib/systemd/system/left4me-server@.service",
    "/usr/lib/systemd/system/left4me-mount@.service",
    "/usr/lib/systemd/system/left4me-autostart@.service",
    "/usr/lib/systemd/system/left4me-game@.service",
    "/usr/lib/systemd/system/l4d2-game.slice",
    "/usr/lib/systemd/system/left4me-build@.service",
    "/usr/lib/systemd/system/left4me-build-prepare@.service",
    "/usr/lib/systemd/system/left4me-build-finish@.service",
    "/usr/lib/systemd/system/left4me-build-net@.service",
    "/usr/lib/systemd/system/l4d2-build.slice",
    "/usr/share/polkit-1/rules.d/50-left4me.rules",
    "/usr/lib/sysusers.d/left4me.conf",
    "/usr/lib/tmpfiles.d/left4me.conf",
    "/usr/share/left4me/scripts/sourcemod-metamod.sh",
    "/usr/share/left4me/scripts/tickrate-100.sh",
    "/usr/share/left4me/monitoring/left4me-alerts.yml",
    "/usr/share/left4me/monitoring/left4me-grafana.json",
];

/// Two packages of this tree: the current version and a higher one (the
/// same build), for the upgrade. Built as the README says, with
/// `cargo deb`; `--fast` only compresses less.
fn build_packages(out: &Path) -> (String, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let upgrade = format!("{version}+upgrade1");
    for (v, extra) in [(&version, None), (&upgrade, Some("--no-build"))] {
        let out = Command::new(&cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["deb", "-p", "left4me", "--fast", "--deb-version", v, "-o"])
            .arg(out)
            .args(extra)
            .output()
            .expect("running cargo");
        assert!(
            out.status.success(),
            "cargo deb failed (is cargo-deb installed? `cargo install cargo-deb`; .ci/run \
             does): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let file = |v: &str| format!("/srv/packages/left4me_{v}_amd64.deb");
    (file(&version), file(&upgrade))
}

/// A simulated steamcmd serving build 1001 of the synthetic game, and a
/// system root with the 32-bit libraries (this host has no i386
/// architecture). Seen inside the machine at /srv/steam; its program is
/// the simulator bound in at /srv/bin.
fn simulated_steam() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sim = SteamcmdSim::create(
        &dir.path().join("steamcmd"),
        Path::new("/srv/bin/steamcmd-sim"),
    )
    .unwrap();
    sim.publish_game(1001, Path::new(common::SRCDS_SIM), 20, 200_000)
        .unwrap();
    common::fake_system_root(dir.path(), &common::libraries_32());
    // steamcmd runs as left4me, which must read all of it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `owner:group mode path` of each path.
fn stat(machine: &Machine, paths: &[&str]) -> Vec<String> {
    machine
        .ok(&format!("stat -c '%U:%G %a %n' {}", paths.join(" ")))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether user left4me may write `path`.
fn left4me_can_write(machine: &Machine, path: &str) -> bool {
    machine
        .sh(&format!("runuser -u left4me -- test -w {path}"))
        .status
        .success()
}

fn main_pid(machine: &Machine, unit: &str) -> u32 {
    machine
        .ok(&format!("systemctl show -P MainPID {unit}"))
        .trim()
        .parse()
        .unwrap()
}

/// The newest migration recorded in the machine's database: a copy of
/// its files, taken from the host through the machine's root, opened
/// read-only (SQLite resolves `/proc/PID/root` to the host's `/`).
fn schema_version(machine: &Machine) -> i64 {
    let copy = tempfile::tempdir().unwrap();
    for file in ["left4me.db", "left4me.db-wal", "left4me.db-shm"] {
        let from = format!("/proc/{}/root{STATE}/{file}", machine.leader());
        if Path::new(&from).exists() {
            std::fs::copy(&from, copy.path().join(file)).unwrap();
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(copy.path().join("left4me.db"))
            .read_only(true)
            .connect()
            .await
            .unwrap();
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    })
}

/// Runs `f` with a tokio runtime inside the machine's network.
fn in_machine<T: Send>(machine: &Machine, f: impl AsyncFnOnce() -> T + Send) -> T {
    machine.in_network(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

/// The panel's admin, logged in (inside the machine's network).
async fn admin() -> Client {
    let client = Client::new(PANEL);
    let res = client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the admin logs in");
    client
}

async fn wait_for_page(client: &Client, path: &str, what: &str) -> String {
    page_showing(client, path, what, Duration::from_secs(30)).await
}

/// Package files and their owners, the user, the configuration, the
/// enablement and the running processes: what "changes nothing" means.
/// (dpkg writes every file anew, so directories' times change.)
fn snapshot(machine: &Machine, unit: &str) -> String {
    machine.ok(&format!(
        "stat -c '%U:%G %a %s %Y %n' {code} {CONFIG}; stat -c '%U:%G %a %n' /etc/left4me {STATE}; \
         sha256sum {CONFIG}; getent passwd left4me; getent group left4me; \
         systemctl is-enabled left4me.service {unit}; \
         systemctl show -P MainPID left4me.service {unit}; \
         dpkg-statoverride --list {CONFIG}; dpkg-query -W left4me",
        code = CODE.join(" ")
    ))
}

#[test]
fn the_package_installs_runs_games_under_systemd_and_upgrades_without_stopping_them() {
    common::require_root();
    let debs = tempfile::tempdir().unwrap();
    let (current, upgrade) = build_packages(debs.path());
    let steam = simulated_steam();
    let mut machine = Machine::boot(&[
        Bind::read_only(debs.path(), "/srv/packages"),
        Bind::read_only(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/debug")
                .as_path(),
            "/srv/bin",
        ),
        Bind::read_write(steam.path(), "/srv/steam"),
        Bind::disk(STATE),
    ]);

    let installed = machine.install(&current);
    assert!(
        installed.contains("Setting up left4me"),
        "apt installs it with its dependencies: {installed}"
    );
    assert!(!installed.contains("policy-rc.d"), "{installed}");

    // 1. Ownership and modes.
    for line in stat(&machine, CODE) {
        let (owner, rest) = line.split_once(' ').unwrap();
        let (mode, path) = rest.split_once(' ').unwrap();
        assert_eq!(owner, "root:root", "{line}");
        let mode = u32::from_str_radix(mode, 8).unwrap();
        assert_eq!(mode & 0o022, 0, "only root writes {path}: {line}");
        assert!(
            !left4me_can_write(&machine, path),
            "left4me can write {path}"
        );
    }
    for dir in ["/usr/bin", "/usr/lib/left4me", "/usr/lib/systemd/system"] {
        assert!(!left4me_can_write(&machine, dir), "left4me can write {dir}");
    }
    // The key that seals second factors: root's, in the configuration;
    // the panel gets it as a systemd credential and keeps no copy in its
    // state.
    assert_eq!(
        machine
            .ok("stat -c '%U:%G %a' /etc/left4me/secrets.key")
            .trim(),
        "root:root 600"
    );
    assert_eq!(
        machine.ok("stat -c %s /etc/left4me/secrets.key").trim(),
        "32"
    );
    machine.ok("runuser -u left4me -- sh -c 'test ! -r /etc/left4me/secrets.key'");
    machine.ok("systemctl is-active left4me.service");
    machine.ok("test ! -e /var/lib/left4me/secrets.key");
    assert_eq!(
        stat(&machine, &[CONFIG, STATE]),
        [
            format!("root:left4me 640 {CONFIG}"),
            format!("left4me:left4me 750 {STATE}")
        ]
    );
    assert!(!left4me_can_write(&machine, CONFIG));
    machine.ok(&format!("runuser -u left4me -- cat {CONFIG} >/dev/null"));
    assert!(
        machine
            .ok(&format!("cat {CONFIG}"))
            .contains("supervisor = \"systemd\""),
        "the packaged configuration chooses systemd"
    );

    // 2. What runs is what the package installed.
    assert_eq!(machine.ok("dpkg --verify left4me"), "", "files as packaged");
    let panel = main_pid(&machine, "left4me.service");
    assert_eq!(
        machine.ok(&format!("readlink /proc/{panel}/exe")).trim(),
        "/usr/bin/left4me"
    );
    assert_eq!(
        machine
            .ok("readlink -f $(systemctl show -P FragmentPath left4me.service)")
            .trim(),
        "/usr/lib/systemd/system/left4me.service"
    );
    assert_eq!(
        machine.ok(&format!("ps -o user= -p {panel}")).trim(),
        "left4me"
    );

    // 3. The panel is active and answers /health.
    assert_eq!(
        machine.ok("systemctl is-active left4me.service").trim(),
        "active"
    );
    in_machine(&machine, async || {
        let health = Client::new(PANEL).get("/health").await;
        assert_eq!(health.status(), StatusCode::OK);
    });

    // 4. The database is at the newest migration.
    let newest = left4me_store::Store::newest_migration();
    assert_eq!(schema_version(&machine), newest);

    // 5. A server made and started in the panel runs the simulator under
    // the hardened unit, started through polkit.
    let journal = machine.ok("journalctl -u left4me.service --no-pager");
    assert!(
        journal.contains("/setup?token="),
        "the setup link is in the journal: {journal}"
    );
    // The admin points the panel at steamcmd (here the simulator; the
    // 32-bit libraries in a system root of its own: this host has no
    // i386 architecture) and installs the game from the panel.
    machine.ok(&format!(
        "sed -i -e 's|^steamcmd = .*|steamcmd = \"/srv/steam/steamcmd/steamcmd.sh\"|' \
                -e 's|^system_root = .*|system_root = \"/srv/steam/system\"|' {CONFIG} && \
         systemctl restart left4me.service"
    ));
    let setup = machine.ok("left4me setup-url");
    // Printed with the name browsers use (localhost on loopback).
    let setup = setup
        .trim()
        .strip_prefix(&PANEL.replace("127.0.0.1", "localhost"))
        .unwrap_or_else(|| panic!("a setup link on localhost: {setup}"))
        .to_owned();
    let (server, unit) = in_machine(&machine, async || {
        let client = Client::new(PANEL);
        let (status, page) = client.get_text(&setup).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let token = setup.split("token=").nth(1).unwrap();
        let res = client
            .post_with_csrf(
                "/setup",
                &[
                    ("token", token),
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                    ("confirm", ADMIN_PASSWORD),
                ],
                &csrf_in(&page),
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let job = game_action(&client, "install").await;
        let (lines, end) = finished_job(&client, job).await;
        assert_eq!(end, "succeeded", "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("version 1 (build 1001) is current")),
            "{lines:?}"
        );
        let blueprint = create_blueprint(&client, "Coop", "sv_cheats 0").await;
        let server = create_server(&client, "alpha", blueprint, GAME_PORT).await;
        act_ok(&client, server, "start").await;
        (server, format!("left4me-server@server-{server}.service"))
    });
    assert_eq!(
        machine.ok(&format!("systemctl is-active {unit}")).trim(),
        "active"
    );
    let game = main_pid(&machine, &unit);
    assert_eq!(
        machine.ok(&format!("ps -o user= -p {game}")).trim(),
        "left4me"
    );
    assert!(
        machine
            .ok(&format!("readlink /proc/{game}/exe"))
            .contains("/runtime/server-"),
        "the game runs from its merged overlay"
    );
    let sandbox = machine.ok(&format!(
        "systemctl show -p NoNewPrivileges,ProtectSystem,PrivateUsers,CapabilityBoundingSet {unit}"
    ));
    for expected in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateUsers=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(
            format!("{sandbox}\n").contains(expected),
            "{expected}: {sandbox}"
        );
    }
    // The game sees its own runtime directory, not the rest of the state
    // root (the database, other servers' secrets), nor the system bus.
    let view = |path: &str| {
        machine
            .sh(&format!("nsenter -t {game} -m test -e {path}"))
            .status
            .success()
    };
    assert!(view(&format!(
        "{STATE}/runtime/server-{server}/merged/srcds_linux"
    )));
    assert!(
        !view(&format!("{STATE}/left4me.db")),
        "the game sees the database"
    );
    assert!(
        !view(&format!("{STATE}/overlays")),
        "the game sees the overlays"
    );
    assert_eq!(
        machine
            .ok(&format!(
                "nsenter -t {game} -m stat -c %a /run/dbus/system_bus_socket"
            ))
            .trim(),
        "0",
        "the bus is inaccessible to the game"
    );
    // The panel's user gets exactly its units from polkit, nothing else.
    let denied =
        machine.sh("runuser -u left4me -- systemctl --no-ask-password restart left4me.service");
    let why = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && why.contains("Interactive authentication required"),
        "polkit must refuse left4me a restart of the panel: {why}"
    );
    assert_eq!(
        machine.ok(&format!("systemctl is-enabled {unit}")).trim(),
        "enabled",
        "the panel set the server to start on boot through left4me-autostart@"
    );
    in_machine(&machine, async || {
        let client = admin().await;
        let page = wait_for_page(&client, &format!("/servers/{server}"), "c1m1_hotel").await;
        assert!(page.contains("state-running"), "{page}");
        let reply = console(&client, server, "status").await;
        assert!(
            reply["reply"]
                .as_str()
                .unwrap_or_default()
                .contains("hostname: alpha host"),
            "{reply}"
        );
        console(&client, server, "sim_join Coach STEAM_1:0:42").await;
        wait_for_page(&client, "/", "1/8 players").await;
        let mut log = Box::pin(
            common::panel::open_log(&client, server, None)
                .await
                .bytes_stream(),
        );
        let (mut buffer, mut lines) = (String::new(), Vec::new());
        common::panel::read_lines_until(&mut log, &mut buffer, &mut lines, |seen| {
            seen.iter()
                .any(|(_, l)| l.contains("Mapchange to c1m1_hotel"))
        })
        .await;
    });
    let stray = machine.ok(&format!(
        "find {STATE} ! -user left4me ! -path '{STATE}/runtime/*/work/work'"
    ));
    assert_eq!(
        stray, "",
        "everything in the state root belongs to left4me (but overlayfs's own work/work)"
    );

    // 6. Installing the same package again changes nothing.
    let before = snapshot(&machine, &unit);
    let again = machine.ok(&format!("apt-get install -y --reinstall {current} 2>&1"));
    assert!(again.contains("Setting up left4me"), "{again}");
    assert_eq!(snapshot(&machine, &unit), before);

    // An upgrade migrates and restarts the panel; the game keeps running,
    // its player connected.
    let upgraded = machine.install(&upgrade);
    assert!(
        upgraded.contains(&format!("is up to date (migration {newest})")),
        "the upgrade runs the migrations: {upgraded}"
    );
    assert_eq!(
        main_pid(&machine, &unit),
        game,
        "the game was not restarted"
    );
    assert_ne!(
        main_pid(&machine, "left4me.service"),
        panel,
        "the panel restarted"
    );
    assert_eq!(schema_version(&machine), newest);
    assert!(machine.ok("dpkg-query -W left4me").contains("+upgrade1"));
    in_machine(&machine, async || {
        let client = admin().await;
        wait_for_page(&client, "/", "1/8 players").await;
    });

    // A reboot brings the panel and the server back by themselves.
    machine.reboot();
    assert_eq!(
        machine.ok("systemctl is-active left4me.service").trim(),
        "active"
    );
    machine.wait_active(
        &unit,
        "the server is back after the reboot",
        Duration::from_secs(30),
    );
    in_machine(&machine, async || {
        let client = admin().await;
        wait_for_page(&client, &format!("/servers/{server}"), "c1m1_hotel").await;
    });

    // The game from "Steam" while the server runs: the panel starts
    // left4me-game@update through polkit, the unit mounts and runs the
    // simulated steamcmd as left4me, and the running server sees nothing
    // change until it restarts.
    SteamcmdSim::open(&steam.path().join("steamcmd"))
        .derive_build(
            1002,
            &[
                ("left4dead2/cfg/server.cfg", Some("// build 1002\n")),
                ("left4dead2/added-in-1002.txt", Some("new")),
            ],
        )
        .unwrap();
    let game = main_pid(&machine, &unit);
    let merged = format!("{STATE}/runtime/server-{server}/merged");
    let tree = |m: &Machine| {
        m.ok(&format!(
            "cd {merged} && find . -type f | sort | xargs sha256sum"
        ))
    };
    let before = tree(&machine);
    in_machine(&machine, async || {
        let client = admin().await;
        let job = game_action(&client, "update").await;
        let (lines, end) = finished_job(&client, job).await;
        assert_eq!(end, "succeeded", "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("starting left4me-game@update.service")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("(build 1002) is current")),
            "{lines:?}"
        );
    });
    assert_eq!(
        main_pid(&machine, &unit),
        game,
        "the game ran through the update"
    );
    assert_eq!(tree(&machine), before, "its files did not change under it");
    let steamcmd_user = machine.ok("stat -c %U /var/lib/left4me/installation/v/2");
    assert_eq!(steamcmd_user.trim(), "left4me", "steamcmd ran as left4me");
    in_machine(&machine, async || {
        let client = admin().await;
        act_ok(&client, server, "restart").await;
    });
    assert_eq!(
        machine.ok(&format!("cat {merged}/build.txt")).trim(),
        "1002"
    );

    // A backup into a repository outside the state root, taken while the
    // game runs; the password and the sealing key kept apart.
    machine.ok(&format!(
        "install -d -o left4me -g left4me -m 700 {REPOSITORY} && \
         mkdir -p /etc/systemd/system/left4me.service.d && \
         printf '[Service]\nReadWritePaths={REPOSITORY}\n' \
           >/etc/systemd/system/left4me.service.d/backups.conf && \
         echo 'backup_repository = \"{REPOSITORY}\"' >>{CONFIG} && \
         systemctl daemon-reload && systemctl restart left4me.service"
    ));
    in_machine(&machine, async || {
        let client = admin().await;
        let res = client.post("/backups", &[]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let (lines, end) = finished_job(&client, Client::redirect_id(&res)).await;
        assert_eq!(end, "succeeded", "{lines:?}");
    });
    machine.ok(&format!(
        "install -d -m 700 {KEPT} && cp {STATE}/backups/password /etc/left4me/secrets.key {KEPT}/"
    ));

    // Removing stops the games and keeps the state; purging deletes it
    // and says so.
    let removed = machine.ok("apt-get remove -y left4me 2>&1");
    assert!(removed.contains("stopping the game servers"), "{removed}");
    assert!(
        !machine
            .sh(&format!("systemctl is-active {unit}"))
            .status
            .success()
    );
    assert_eq!(
        machine
            .ok(&format!("grep -c ' {STATE}/' /proc/self/mountinfo || true"))
            .trim(),
        "0"
    );
    machine.ok(&format!("test -f {STATE}/left4me.db && test -f {CONFIG}"));
    let purged = machine.ok("apt-get purge -y left4me 2>&1");
    assert!(
        purged.contains(&format!("purging deletes {STATE}")),
        "{purged}"
    );
    assert_eq!(machine.ok(&format!("ls -A {STATE}")), "");
    machine.ok("test ! -e /etc/left4me");

    // The host as new: the package installed afresh, the admin puts the
    // kept sealing key and password back, points the panel at the
    // repository (and at Steam), stops it and restores; the panel comes
    // back with its people, blueprints and servers, installs the game
    // and starts the server that ran.
    machine.install(&current);
    machine.ok(&format!(
        "install -m 600 {KEPT}/secrets.key /etc/left4me/secrets.key && \
         install -d -o left4me -g left4me -m 700 {STATE}/backups && \
         install -o left4me -g left4me -m 600 {KEPT}/password {STATE}/backups/password && \
         sed -i -e 's|^steamcmd = .*|steamcmd = \"/srv/steam/steamcmd/steamcmd.sh\"|' \
                -e 's|^system_root = .*|system_root = \"/srv/steam/system\"|' {CONFIG} && \
         echo 'backup_repository = \"{REPOSITORY}\"' >>{CONFIG}"
    ));
    let refused = machine.sh("left4me restore");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is running on /var/lib/left4me"),
        "{refused:?}"
    );
    machine.ok("systemctl stop left4me.service");
    let restored = machine.ok("left4me restore 2>&1");
    assert!(
        restored.contains("1 server(s), 1 blueprint(s)"),
        "{restored}"
    );
    assert_eq!(
        machine.ok(&format!("find {STATE} ! -user left4me")),
        "",
        "everything restored belongs to left4me"
    );
    machine.ok("systemctl start left4me.service");
    machine.wait_active(
        &unit,
        "the restored server runs again",
        Duration::from_secs(120),
    );
    in_machine(&machine, async || {
        let client = admin().await;
        let (_, blueprints) = client.get_text("/blueprints").await;
        assert!(blueprints.contains("Coop"), "{blueprints}");
        wait_for_page(&client, &format!("/servers/{server}"), "c1m1_hotel").await;
        let (_, game) = client.get_text("/game").await;
        assert!(
            game.contains("1002"),
            "the game is Steam's build again: {game}"
        );
    });
    machine.ok("apt-get purge -y left4me 2>&1");

    // The host is as it was: no process of the machine, no mount of it
    // in any namespace, no directory left.
    let dir = machine.directory().to_owned();
    let pids = machine.host_pids();
    drop(machine);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} lives on"
        );
    }
    let name = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(mounts) = std::fs::read_to_string(entry.path().join("mountinfo")) {
            assert!(
                !mounts.contains(&name),
                "{} still sees a mount",
                entry.path().display()
            );
        }
    }
    assert!(!dir.exists());
}
