//! The panel's Game page and game jobs: the real panel on 127.0.0.1:0,
//! real SQLite, the real steamcmd code path of the host crate.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;

/// The 32-bit libraries the install checks for, created empty in a
/// system root of the test's own.
const LIBRARIES_32: [&str; 3] = [
    "usr/lib32/libgcc_s.so.1",
    "usr/lib32/libstdc++.so.6",
    "usr/lib/i386-linux-gnu/libSDL2-2.0.so.0",
];

fn system_root(root: &TestRoot, libraries: &[&str]) -> PathBuf {
    let system = root.path().join("system");
    for lib in libraries {
        let path = system.join(lib);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    std::fs::create_dir_all(&system).unwrap();
    system
}

/// A panel with an admin whose game is not installed yet, steamcmd at
/// `steamcmd`, and the given 32-bit libraries present.
async fn game_app(steamcmd: impl FnOnce(&Path) -> PathBuf, libraries: &[&str]) -> App {
    let root = TestRoot::new();
    std::fs::remove_dir_all(root.path().join("installation")).unwrap();
    let mut config = test_config(&root);
    config.steamcmd = steamcmd(root.path());
    config.system_root = system_root(&root, libraries);
    config.steamcmd_retry_ms = 50;
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    App::spawn_with(root, config).await
}

/// Posts a Game page button; returns the job it redirects to.
async fn game_action(client: &Client, action: &str) -> i64 {
    let res = client.post(&format!("/game/{action}"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{action}");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/jobs/"), "{location}");
    Client::redirect_id(&res)
}

/// The job's log lines and its end state.
async fn finished_job(client: &Client, job: i64) -> (Vec<String>, String) {
    let events = job_events(client, job, None).await;
    let end = events.last().unwrap().clone();
    assert_eq!(end.1, "end", "{events:?}");
    let lines = events
        .iter()
        .filter(|e| e.1 == "line")
        .map(|e| {
            let line: serde_json::Value = serde_json::from_str(&e.2).unwrap();
            line["line"].as_str().unwrap().to_owned()
        })
        .collect();
    (lines, end.2)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_see_the_game_page_and_press_its_buttons() {
    let mut app = game_app(|_| "/nonexistent/steamcmd.sh".into(), &LIBRARIES_32).await;
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
    let mut app = game_app(|_| "/nonexistent/steamcmd.sh".into(), &LIBRARIES_32).await;
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
    let mut app = game_app(|_| LEFT4ME.into(), &LIBRARIES_32[1..2]).await;
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
        &LIBRARIES_32,
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
