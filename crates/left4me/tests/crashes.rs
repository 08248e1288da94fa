//! kill -9 of the panel at every step of a server start, a game update, a
//! script build and a backup: the panel kills itself with SIGKILL at each
//! fault point (`left4me_host::events::fault_point`) in turn, and the next
//! panel on the same state root repairs what it left. The killed job
//! reads as interrupted, nothing half-made is left or used, and the
//! operation then succeeds.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;
use steamcmd_sim::SteamcmdSim;

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");
const SRCDS_SIM: &str = env!("CARGO_BIN_EXE_srcds-sim");

/// A state root with an admin, for panels run as processes; servers that
/// should run are started again within a second.
fn state() -> TestRoot {
    let mut root = root_with_admin();
    root.env
        .push(("LEFT4ME_RECONCILE_INTERVAL_SECS".into(), "1".into()));
    root
}

/// Runs `trigger` on a panel that kills itself at `fault`, and waits for
/// it to die there (not anywhere else); what `trigger` returned.
async fn killed_at<T>(
    root: &TestRoot,
    port: u16,
    fault: &str,
    trigger: impl AsyncFnOnce(&Client) -> T,
) -> T {
    let mut panel = PanelProcess::start_failing_at(root, port, Some(fault));
    let client = panel.admin().await;
    let made = trigger(&client).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = panel.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panel never reached {fault}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.signal(), Some(9), "killed at {fault}: {status}");
    let log = std::fs::read_to_string(&panel.log).unwrap();
    assert!(
        log.contains(&format!("LEFT4ME_FAULT: killing this process at {fault}")),
        "{log}"
    );
    made
}

/// The panel again, as it starts after a crash.
async fn again(root: &TestRoot, port: u16) -> (PanelProcess, Client) {
    let panel = PanelProcess::start(root, port);
    let client = panel.admin().await;
    (panel, client)
}

/// A job's state, from the API.
async fn job_state(client: &Client, job: i64) -> String {
    let (status, text) = client.get_text(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let job: serde_json::Value = serde_json::from_str(&text).unwrap();
    job["state"].as_str().unwrap().to_owned()
}

/// Mount points below `dir`.
fn mounts_below(dir: &Path) -> usize {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(dir)))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_killed_at_any_step_is_repaired_by_the_next_panel() {
    let root = state();
    let port = free_port();
    let (panel, admin) = again(&root, port).await;
    let bp = create_blueprint(&admin, "coop", "").await;
    panel.terminate();
    for fault in [
        "start-wanted",
        "start-initialized",
        "start-staged",
        "after-mount",
        "start-launched",
    ] {
        let game_port = free_port();
        let name = format!("s-{fault}");
        let (server, job) = killed_at(&root, port, fault, async |c| {
            let server = create_server(c, &name, bp, game_port).await;
            (server, action(c, server, "start").await)
        })
        .await;
        let (panel, admin) = again(&root, port).await;
        assert_eq!(job_state(&admin, job).await, "interrupted", "{fault}");
        // Wanted running: the reconciler starts it (or finds it started),
        // and it answers on its port.
        let answers = format!("{fault}: the server to answer");
        eventually(&answers, Duration::from_secs(30), async || {
            srcds_protocol::a2s::info(a2s_addr(game_port), Duration::from_millis(500))
                .await
                .is_ok_and(|info| info.name == format!("{name} host"))
        })
        .await;
        let merged = root.merged(&format!("server-{server}"));
        assert_eq!(mounts_below(&merged), 1, "{fault}: one overlay mount");
        let (_, page) = admin.get_text(&format!("/servers/{server}")).await;
        assert!(page.contains("state-running"), "{fault}: {page}");
        act_ok(&admin, server, "stop").await;
        assert_eq!(mounts_below(&merged), 0, "{fault}: unmounted at the stop");
        panel.terminate();
    }
}

/// The content of `file` in the current version of overlay `overlay`.
fn current_file(root: &TestRoot, overlay: i64, file: &str) -> String {
    let versions = root.path().join(format!("overlay-versions/{overlay}"));
    let current = std::fs::read_to_string(versions.join("current")).unwrap();
    std::fs::read_to_string(versions.join("v").join(current.trim()).join(file)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_build_killed_at_any_step_is_repaired_by_the_next_panel() {
    require_root();
    let root = state();
    let port = free_port();
    let (panel, admin) = again(&root, port).await;
    let res = admin
        .post("/overlays", &[("name", "made"), ("kind", "script")])
        .await;
    let overlay = Client::redirect_id(&res);
    let save_and_build = async |client: &Client, text: &str| {
        let script = format!("echo {text} > /overlay/made.txt\n");
        let res = client
            .post(
                &format!("/overlays/{overlay}/script"),
                &[("description", "made"), ("script", &script)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        Client::redirect_id(&res)
    };
    let job = save_and_build(&admin, "first").await;
    let (log, end) = finished_job(&admin, job).await;
    assert_eq!(end, "succeeded", "{log:?}");
    panel.terminate();
    let mut before = "first".to_owned();
    for fault in [
        "build-prepared",
        "build-ran",
        "publish-described",
        "publish-renamed",
    ] {
        let job = killed_at(&root, port, fault, async |c| save_and_build(c, fault).await).await;
        let (panel, admin) = again(&root, port).await;
        assert_eq!(job_state(&admin, job).await, "interrupted", "{fault}");
        // Servers still get the version from before, whole; the killed
        // build's directory is gone.
        assert_eq!(
            current_file(&root, overlay, "made.txt"),
            format!("{before}\n")
        );
        let builds = root.path().join("tmp/builds");
        let left = std::fs::read_dir(&builds).map_or(0, Iterator::count);
        assert_eq!(left, 0, "{fault}: {} left something", builds.display());
        let res = admin
            .post(&format!("/overlays/{overlay}/rebuild"), &[])
            .await;
        let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
        assert_eq!(end, "succeeded", "{fault}: {log:?}");
        assert_eq!(
            current_file(&root, overlay, "made.txt"),
            format!("{fault}\n")
        );
        before = fault.to_owned();
        panel.terminate();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_game_update_killed_at_any_step_is_repaired_by_the_next_panel() {
    let mut root = state();
    let sim = SteamcmdSim::create(&root.path().join("steamcmd"), Path::new(STEAMCMD_SIM)).unwrap();
    let system: PathBuf = fake_system_root(root.path(), &libraries_32());
    root.env.extend([
        (
            "LEFT4ME_STEAMCMD".into(),
            sim.program().display().to_string(),
        ),
        ("LEFT4ME_SYSTEM_ROOT".into(), system.display().to_string()),
        ("LEFT4ME_STEAMCMD_RETRY_MS".into(), "50".into()),
    ]);
    let publish = |build: u64| {
        sim.publish_game(build, Path::new(SRCDS_SIM), 20, 200_000)
            .unwrap();
    };
    let port = free_port();
    publish(1000);
    let (panel, admin) = again(&root, port).await;
    let (log, end) = finished_job(&admin, game_action(&admin, "update").await).await;
    assert_eq!(end, "succeeded", "{log:?}");
    panel.terminate();
    let installation = root.path().join("installation");
    for (fault, build) in [
        ("update-begun", 1001),
        ("update-downloaded", 1002),
        ("publish-described", 1003),
        ("publish-renamed", 1004),
    ] {
        publish(build);
        let job = killed_at(&root, port, fault, async |c| game_action(c, "update").await).await;
        let (panel, admin) = again(&root, port).await;
        assert_eq!(job_state(&admin, job).await, "interrupted", "{fault}");
        assert_eq!(
            mounts_below(&installation),
            0,
            "{fault}: the killed update's mount is gone when the panel is back"
        );
        assert!(
            !installation.join("build").exists()
                || std::fs::read_dir(installation.join("build"))
                    .unwrap()
                    .count()
                    == 0,
            "{fault}: and its build directory"
        );
        let (_, page) = admin.get_text("/game").await;
        assert!(
            page.contains(&format!("build {}", build - 1)),
            "{fault}: the build from before is still the installed one: {page}"
        );
        let (log, end) = finished_job(&admin, game_action(&admin, "update").await).await;
        assert_eq!(end, "succeeded", "{fault}: {log:?}");
        let (_, page) = admin.get_text("/game").await;
        assert!(page.contains(&format!("build {build}")), "{fault}: {page}");
        panel.terminate();
    }
    // Servers start on what the updates left.
    let (panel, admin) = again(&root, port).await;
    let bp = create_blueprint(&admin, "coop", "").await;
    let server = create_server(&admin, "after", bp, free_port()).await;
    act_ok(&admin, server, "start").await;
    act_ok(&admin, server, "stop").await;
    panel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_at_any_step_is_repaired_by_the_next_panel() {
    let root = state();
    let port = free_port();
    let staging = root.path().join("backups/staging");
    for fault in ["backup-database-copied", "backup-taken"] {
        let job = killed_at(&root, port, fault, async |c| {
            let res = c.post("/backups", &[]).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            Client::redirect_id(&res)
        })
        .await;
        assert!(
            staging.join("left4me.db").exists(),
            "{fault}: died with the database copy made"
        );
        let (panel, admin) = again(&root, port).await;
        assert_eq!(job_state(&admin, job).await, "interrupted", "{fault}");
        assert!(
            !staging.exists(),
            "{fault}: the database copy (every secret the database holds) is gone"
        );
        let res = admin.post("/backups", &[]).await;
        let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
        assert_eq!(end, "succeeded", "{fault}: {log:?}");
        let res = admin.post("/backups/check", &[]).await;
        let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
        assert_eq!(
            end, "succeeded",
            "{fault}: the repository checks out: {log:?}"
        );
        panel.terminate();
    }
}
