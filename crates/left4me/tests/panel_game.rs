//! The panel's Game page and game jobs: the real panel on 127.0.0.1:0,
//! real SQLite, the real steamcmd code path of the host crate.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;
use steamcmd_sim::{SimConfig, SteamcmdSim};

/// A panel with an admin whose game is not installed yet, steamcmd at
/// `steamcmd`, and the given 32-bit libraries present.
async fn game_app(steamcmd: impl FnOnce(&Path) -> PathBuf, libraries: &[&str]) -> App {
    let root = TestRoot::new();
    std::fs::remove_dir_all(root.path().join("installation")).unwrap();
    let mut config = test_config(&root);
    config.steamcmd = steamcmd(root.path());
    config.system_root = fake_system_root(root.path(), libraries);
    config.steamcmd_retry_ms = 50;
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    App::spawn_with(root, config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_see_the_game_page_and_press_its_buttons() {
    let mut app = game_app(|_| "/nonexistent/steamcmd.sh".into(), &libraries_32()).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;

    let (status, page) = admin.get_text("/game").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("href=\"/game\""), "a nav link for admins");
    assert!(page.contains("not installed"), "{page}");
    assert!(page.contains("action=\"/game/install\""), "{page}");

    let (status, page) = bob.get_text("/game").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("Only admins install and update the game"),
        "{page}"
    );
    let (_, account) = bob.get_text("/account").await;
    assert!(
        !account.contains("href=\"/game\""),
        "no nav link for others"
    );
    for action in ["install", "check", "update", "validate"] {
        let res = bob.post(&format!("/game/{action}"), &[]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{action}");
    }
    // A state change without the CSRF token is refused, admin or not.
    let res = admin
        .post_with_csrf("/game/check", &[], &"0".repeat(64))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let jobs = store.jobs(left4me_store::JobFilter::All, 10).await.unwrap();
    assert!(jobs.is_empty(), "nothing was queued: {jobs:?}");
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_steamcmd_is_named_on_the_page_and_fails_the_install() {
    let mut app = game_app(|_| "/nonexistent/steamcmd.sh".into(), &libraries_32()).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (_, page) = admin.get_text("/game").await;
    assert!(
        page.contains("steamcmd is not at /nonexistent/steamcmd.sh"),
        "{page}"
    );

    let job = game_action(&admin, "install").await;
    let (lines, end) = finished_job(&admin, job).await;
    assert_eq!(end, "failed", "{lines:?}");
    let log = lines.join("\n");
    for hint in [
        "steamcmd is not at /nonexistent/steamcmd.sh",
        "apt install steamcmd",
        "LEFT4ME_STEAMCMD",
    ] {
        assert!(log.contains(hint), "{hint} in {log}");
    }
    // A job without a server renders on its page and in the lists.
    let (status, page) = admin.get_text(&format!("/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("Job #{job}: install the game")),
        "{page}"
    );
    assert!(page.contains("steamcmd is not at"), "the error: {page}");
    let (_, list) = admin.get_text("/jobs").await;
    assert!(list.contains("install the game"), "{list}");
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains(&format!("install the game (job #{job})")),
        "{activity}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_32_bit_libraries_are_named_by_package_on_the_page_and_in_the_job() {
    // Any existing file will do as steamcmd: the library check comes first.
    let mut app = game_app(|_| LEFT4ME.into(), &libraries_32()[1..2]).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (_, page) = admin.get_text("/game").await;
    assert!(
        page.contains("install lib32gcc-s1 libsdl2-2.0-0:i386"),
        "{page}"
    );
    let job = game_action(&admin, "check").await;
    let (lines, end) = finished_job(&admin, job).await;
    assert_eq!(end, "failed", "{lines:?}");
    let log = lines.join("\n");
    assert!(
        log.contains("install lib32gcc-s1 libsdl2-2.0-0:i386"),
        "{log}"
    );
    assert!(log.contains("dpkg --add-architecture i386"), "{log}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_game_jobs_never_run_at_once() {
    // A steamcmd that answers nothing for a second: each check asks a
    // few times and fails, long enough to overlap if nothing stopped it.
    let mut app = game_app(
        |root| {
            let script = root.join("slow-steamcmd.sh");
            std::fs::write(&script, "#!/bin/sh\nsleep 1\n").unwrap();
            let mut perms = std::fs::metadata(&script).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&script, perms).unwrap();
            script
        },
        &libraries_32(),
    )
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let first = game_action(&admin, "check").await;
    let second = game_action(&admin, "install").await;
    // While the first runs, the second waits for it and says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = admin.get_text(&format!("/jobs/{second}")).await;
        if page.contains(&format!("Waits for <a href=\"/jobs/{first}\"")) {
            assert!(
                page.contains("installs, updates and checks of the game run one at a time"),
                "{page}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second job never waited:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, page) = admin.get_text("/game").await;
    assert!(
        page.contains(&format!("#{second} install the game")),
        "{page}"
    );
    finished_job(&admin, first).await;
    finished_job(&admin, second).await;
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let a = store.job(first).await.unwrap();
    let b = store.job(second).await.unwrap();
    store.close().await;
    assert_eq!(a.locks, "install");
    assert_eq!(a.server_id, None);
    assert!(
        a.finished_at.unwrap() <= b.started_at.unwrap(),
        "the second started after the first ended: {a:?} {b:?}"
    );
    app.stop().await;
}

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");

/// A simulated steamcmd in `dir` serving the synthetic game as
/// `public_build` (`None`: checks get no answer, as steamcmd sometimes
/// gives).
fn simulated_steamcmd(dir: &Path, public_build: Option<u64>) -> PathBuf {
    let sim = SteamcmdSim::create(&dir.join("steamcmd"), Path::new(STEAMCMD_SIM)).unwrap();
    if let Some(build) = public_build {
        publish(&sim.program(), build);
    }
    sim.program()
}

/// Makes `build` Steam's public build.
fn publish(steamcmd: &Path, build: u64) {
    SteamcmdSim::open(steamcmd.parent().unwrap())
        .publish_game(build, Path::new(SRCDS_SIM), 20, 200_000)
        .unwrap();
}

/// A panel on a test root whose synthetic installation is version 1 (no
/// build id), steamcmd the simulator.
async fn installed_app(
    public_build: Option<u64>,
    change: impl FnOnce(&mut left4me_web::config::Config),
) -> App {
    let root = TestRoot::new();
    let mut config = test_config(&root);
    config.steamcmd = simulated_steamcmd(root.path(), public_build);
    config.system_root = fake_system_root(root.path(), &libraries_32());
    config.steamcmd_retry_ms = 50;
    change(&mut config);
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    App::spawn_with(root, config).await
}

async fn game_job_ok(client: &Client, action: &str) -> Vec<String> {
    let job = game_action(client, action).await;
    let (lines, end) = finished_job(client, job).await;
    assert_eq!(end, "succeeded", "{action}: {lines:?}");
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_install_through_the_panel_shows_its_build() {
    let mut app = game_app(|root| simulated_steamcmd(root, Some(1001)), &libraries_32()).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    // A download of a few seconds: the progress bar moves meanwhile
    // (steamcmd runs under a terminal, or it would say nothing till the end).
    SteamcmdSim::open(app.config.steamcmd.parent().unwrap())
        .set_config(&SimConfig {
            bytes_per_second: 10_000_000,
            ..SimConfig::default()
        })
        .unwrap();
    let job = game_action(&admin, "install").await;
    let events = job_events(&admin, job, None).await;
    assert_eq!(events.last().unwrap().2, "succeeded", "{events:?}");
    let progress: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "progress")
        .map(|e| e.2.as_str())
        .collect();
    assert!(
        progress.len() >= 3,
        "progress while downloading: {events:?}"
    );
    let (_, page) = admin.get_text("/game").await;
    assert!(page.contains("build 1001 (version 1)"), "{page}");
    assert!(!page.contains("action=\"/game/install\""), "{page}");
    // Installing again is refused with a reason.
    let job = game_action(&admin, "install").await;
    let (lines, end) = finished_job(&admin, job).await;
    assert_eq!(end, "failed");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the game is installed (version 1)")),
        "{lines:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_while_a_server_runs_keeps_it_on_its_build_until_a_restart() {
    let mut app = installed_app(Some(1002), |_| {}).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "Coop", "sv_cheats 0").await;
    let port = free_port();
    let server = create_server(&admin, "alpha", bp, port).await;
    act_ok(&admin, server, "start").await;

    let lines = game_job_ok(&admin, "check").await;
    assert!(
        lines.iter().any(|l| l.contains("build 1002 is public")),
        "{lines:?}"
    );
    let (_, page) = admin.get_text("/game").await;
    assert!(page.contains("id=\"update-available\""), "{page}");
    assert!(page.contains("build 1002, checked"), "{page}");

    game_job_ok(&admin, "update").await;
    let (_, page) = admin.get_text("/game").await;
    assert!(page.contains("build 1002 (version 2)"), "{page}");
    assert!(!page.contains("id=\"update-available\""), "{page}");
    let note = "version 1, 2 available: restart to update";
    assert!(page.contains(note), "the server runs version 1: {page}");
    let (_, dashboard) = admin.get_text("/").await;
    assert!(dashboard.contains(note), "{dashboard}");
    let (_, server_page) = admin.get_text(&format!("/servers/{server}")).await;
    assert!(server_page.contains(note), "{server_page}");
    // It kept running through the update.
    srcds_protocol::a2s::info(a2s_addr(port), Duration::from_secs(2))
        .await
        .expect("the server answers after the update");

    act_ok(&admin, server, "restart").await;
    let (_, dashboard) = admin.get_text("/").await;
    assert!(!dashboard.contains("restart to update"), "{dashboard}");
    let (_, page) = admin.get_text("/game").await;
    assert!(
        page.contains(&format!(
            "<a href=\"/servers/{server}\">alpha</a></td><td>build 1002 (version 2)"
        )),
        "{page}"
    );
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_an_update_mid_download_leaves_the_current_version() {
    let mut app = installed_app(Some(1002), |_| {}).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    SteamcmdSim::open(app.config.steamcmd.parent().unwrap())
        .set_config(&SimConfig {
            bytes_per_second: 10_000,
            ..SimConfig::default()
        })
        .unwrap();
    let job = game_action(&admin, "update").await;
    wait_for_job_line(&admin, job, "steamcmd: downloading").await;
    let res = admin.post(&format!("/jobs/{job}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (lines, end) = finished_job(&admin, job).await;
    assert_eq!(end, "cancelled", "{lines:?}");
    let (_, page) = admin.get_text("/game").await;
    assert!(
        page.contains("<td id=\"game-installed\">version 1,"),
        "{page}"
    );
    assert!(!page.contains("version 2"), "{page}");
    app.stop().await;
}

async fn wait_for_job_line(client: &Client, job: i64, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = client.get_text(&format!("/jobs/{job}")).await;
        if page.contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} never logged {text:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_mode_checks_updates_and_restarts_an_empty_server() {
    let mut app = installed_app(None, |c| {
        c.auto_update = true;
        c.poll_interval_secs = 1;
    })
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "Coop", "sv_cheats 0").await;
    let port = free_port();
    let server = create_server(&admin, "alpha", bp, port).await;
    act_ok(&admin, server, "start").await;

    // The built-in schedule's check, with no public build yet: the check
    // fails, and so does the run, saying so.
    let check = panel_schedule(&admin, "Check for game updates").await;
    let run = run_schedule(&admin, check).await;
    let (log, end) = finished_job(&admin, run).await;
    assert_eq!(end, "failed", "{log:?}");

    // Once Valve publishes a build, the next check updates and the empty
    // server moves onto it.
    publish(&app.config.steamcmd, 1002);
    run_schedule(&admin, check).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (_, page) = admin.get_text("/game").await;
        if page.contains(&format!(
            "<a href=\"/servers/{server}\">alpha</a></td><td>build 1002 (version 2)"
        )) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never moved to the new build:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, activity) = admin.get_text("/activity").await;
    for step in [
        "check for game updates (job #",
        "build 1002 is public, version 1 installed: updating automatically",
        "update the game (job #",
        "server alpha runs version 1, 2 available: restart to update; nobody plays on it: restarting",
        "restart server alpha (job #",
    ] {
        assert!(activity.contains(step), "{step} in {activity}");
    }
    assert!(activity.contains("scheduler"), "{activity}");
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

/// kill -9 of the panel in the middle of an update: the current version
/// stays, the job is marked interrupted when the panel is back, and the
/// next update clears what the dead one left (a mounted build) and works.
#[tokio::test(flavor = "multi_thread")]
async fn a_panel_killed_during_an_update_leaves_the_current_version() {
    let mut root = TestRoot::new();
    let steamcmd = simulated_steamcmd(root.path(), Some(1002));
    let sim = SteamcmdSim::open(steamcmd.parent().unwrap());
    sim.set_config(&SimConfig {
        bytes_per_second: 500_000,
        ..SimConfig::default()
    })
    .unwrap();
    let system = fake_system_root(root.path(), &libraries_32());
    root.env.extend([
        ("LEFT4ME_STEAMCMD".into(), steamcmd.display().to_string()),
        ("LEFT4ME_SYSTEM_ROOT".into(), system.display().to_string()),
        ("LEFT4ME_ADMIN_PASSWORD".into(), ADMIN.1.into()),
    ]);
    root.ok(&["user", "create", ADMIN.0, "--admin"]);
    let port = free_port();
    let mut panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let job = game_action(&admin, "update").await;
    wait_for_job_line(&admin, job, "steamcmd: downloading").await;
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
    // steamcmd runs in its own process group and outlives the panel.
    for pid in steamcmd_pids(&steamcmd) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let installation = root.path().join("installation");
    assert_eq!(
        std::fs::read_to_string(installation.join("current")).unwrap(),
        "1\n"
    );

    sim.set_config(&SimConfig::default()).unwrap();
    let panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let (_, page) = admin.get_text(&format!("/jobs/{job}")).await;
    assert!(page.contains("interrupted"), "{page}");
    let lines = game_job_ok(&admin, "update").await;
    assert!(
        lines.iter().any(|l| l.contains("(build 1002) is current")),
        "{lines:?}"
    );
    assert!(
        !installation.join("build").exists()
            || steamcmd_sim::files_below(&installation.join("build"))
                .unwrap()
                .is_empty()
    );
    panel.terminate();
}
