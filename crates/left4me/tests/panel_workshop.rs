//! Workshop overlays through the real panel (127.0.0.1:0, real SQLite,
//! real builds and mounts) against the loopback Steam stand-in, with the
//! simulated steamcmd for items Steam serves no direct download of.

mod common;

use std::path::Path;
use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;
use steamcmd_sim::SteamcmdSim;
use workshop_sim::{Child, Content, Fault, SimItem, Storage, WorkshopSim};

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");

/// A panel talking to `sim`, with the simulated steamcmd and an admin.
async fn workshop_app(
    sim: &WorkshopSim,
    change: impl FnOnce(&mut left4me_web::config::Config),
) -> App {
    let root = TestRoot::new();
    let mut config = test_config(&root);
    config.steam_api_url = sim.base_url();
    config.steam_api_retry_ms = 10;
    let steamcmd =
        SteamcmdSim::create(&root.path().join("steamcmd"), Path::new(STEAMCMD_SIM)).unwrap();
    config.steamcmd = steamcmd.program();
    config.system_root = fake_system_root(root.path(), &libraries_32());
    change(&mut config);
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    App::spawn_with(root, config).await
}

async fn create_workshop_overlay(client: &Client, name: &str) -> i64 {
    let res = client
        .post("/overlays", &[("name", name), ("kind", "workshop")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Client::redirect_id(&res)
}

/// Posts the add form; returns the status and the page.
async fn add_items(client: &Client, overlay: i64, ids: &str) -> (StatusCode, String) {
    let res = client
        .post(&format!("/overlays/{overlay}/items"), &[("ids", ids)])
        .await;
    (res.status(), res.text().await.unwrap())
}

/// The build job an add or a refresh queued, from the page's notice or
/// the redirect.
fn job_in(page: &str) -> i64 {
    let at = page.find("build job #").expect("a build job is named") + "build job #".len();
    page[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn refresh(client: &Client, overlay: i64) -> i64 {
    let res = client
        .post(&format!("/overlays/{overlay}/refresh"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Client::redirect_id(&res)
}

async fn job_ok(client: &Client, job: i64) -> String {
    let (lines, end) = finished_job(client, job).await;
    assert_eq!(end, "succeeded", "{lines:#?}");
    lines.join("\n")
}

fn addon(app: &App, server: i64, item: u64) -> Vec<u8> {
    let path = app
        .root
        .merged(&format!("server-{server}"))
        .join(format!("left4dead2/addons/{item}.vpk"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collection_becomes_a_layer_that_servers_mount_and_refreshes_follow_steam() {
    let sim = WorkshopSim::start().await.unwrap();
    for id in 1..=4 {
        sim.add_item(SimItem::vpk(id, 20_000 + id));
    }
    sim.add_collection(100, "Campaigns", &[Child::item(2), Child::collection(101)]);
    sim.add_collection(101, "More", &[Child::item(3), Child::item(4)]);
    // Kept on Steam's content system: only steamcmd can fetch it.
    sim.add_item(SimItem {
        storage: Storage::PreviewAsFileUrl,
        ..SimItem::vpk(5, 3_000)
    });
    let mut app = workshop_app(&sim, |_| {}).await;
    let fallback = Content::Vpk {
        size: 3_000,
        seed: 5,
    }
    .bytes();
    SteamcmdSim::open(app.config.steamcmd.parent().unwrap())
        .publish_workshop_item(5, &fallback)
        .unwrap();
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_workshop_overlay(&admin, "Maps").await;
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("Workshop overlay Maps"), "{page}");
    assert!(page.contains("no version published yet"), "{page}");

    let (status, page) = add_items(
        &admin,
        overlay,
        "1\nhttps://steamcommunity.com/sharedfiles/filedetails/?id=100, 5",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Added 3"), "{page}");
    let log = job_ok(&admin, job_in(&page)).await;
    assert!(
        log.contains("item 5: Steam gives no direct download; asking steamcmd"),
        "{log}"
    );
    assert!(log.contains("published version 1 with 5 item(s)"), "{log}");

    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    for id in 1..=5 {
        assert!(
            page.contains(&format!("data-item=\"{id}\"")),
            "item {id}: {page}"
        );
        assert!(page.contains(&format!("Map {id}")), "{page}");
    }
    assert!(page.contains("collection of 3 item(s)"), "{page}");
    assert!(!page.contains("failed"), "{page}");
    assert!(page.contains("version 1 ("), "{page}");

    let blueprint = blueprint_with(&admin, "Maps", overlay).await;
    let port = free_port();
    let server = create_server(&admin, "maps", blueprint, port).await;
    act_ok(&admin, server, "start").await;
    for id in 1..=4 {
        assert_eq!(
            addon(&app, server, id),
            Content::Vpk {
                size: 20_000 + id,
                seed: id
            }
            .bytes(),
            "the game sees item {id}"
        );
    }
    assert_eq!(addon(&app, server, 5), fallback);

    // A refresh with nothing new asks Steam and downloads nothing.
    sim.reset_counters();
    let log = job_ok(&admin, refresh(&admin, overlay).await).await;
    assert!(
        log.contains("nothing changed: version 1 stays current"),
        "{log}"
    );
    assert_eq!(sim.counters().downloads, 0);
    let (_, dashboard) = admin.get_text("/").await;
    assert!(!dashboard.contains("Workshop items updated"), "{dashboard}");

    // An author uploads a new file: the running server keeps its copy
    // until a restart, and says so.
    let updated = Content::Vpk {
        size: 25_000,
        seed: 77,
    };
    sim.update_item(3, updated.clone());
    let log = job_ok(&admin, refresh(&admin, overlay).await).await;
    assert!(log.contains("published version 2"), "{log}");
    assert_eq!(sim.counters().downloads, 1, "only the changed item");
    let note = "Workshop items updated: restart to apply";
    let (_, dashboard) = admin.get_text("/").await;
    assert!(dashboard.contains(note), "{dashboard}");
    let (_, server_page) = admin.get_text(&format!("/servers/{server}")).await;
    assert!(server_page.contains(note), "{server_page}");
    assert_eq!(
        addon(&app, server, 3),
        Content::Vpk {
            size: 20_003,
            seed: 3
        }
        .bytes(),
        "a running server's layers never change"
    );
    act_ok(&admin, server, "restart").await;
    assert_eq!(addon(&app, server, 3), updated.bytes());
    let (_, dashboard) = admin.get_text("/").await;
    assert!(!dashboard.contains(note), "{dashboard}");

    // Removing the collection rebuilds without its items.
    let res = admin
        .post(
            &format!("/overlays/{overlay}/items/remove"),
            &[("id", "100")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    job_ok(&admin, newest_build(&app).await).await;
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(
        page.contains("data-item=\"1\"") && page.contains("data-item=\"5\""),
        "{page}"
    );
    assert!(!page.contains("data-item=\"2\""), "{page}");
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

/// The newest overlay build job.
async fn newest_build(app: &App) -> i64 {
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let jobs = store.jobs(left4me_store::JobFilter::All, 10).await.unwrap();
    store.close().await;
    jobs.iter()
        .find(|j| j.kind == "overlay.build")
        .expect("a build was queued")
        .id
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_entries_are_refused_with_reasons_and_nothing_is_lost() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(9, 1_000));
    sim.add_item(SimItem {
        app_id: 730,
        title: "A CS map".into(),
        ..SimItem::vpk(7, 1_000)
    });
    sim.add_collection(50, "Nothing yet", &[]);
    let mut app = workshop_app(&sim, |_| {}).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_workshop_overlay(&admin, "Maps").await;

    let typed = "12a\nhttps://example.com/?id=1";
    let (status, page) = add_items(&admin, overlay, typed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("12a&#34; is not a Workshop item: expected a number"),
        "{page}"
    );
    assert!(
        page.contains("the link is not to steamcommunity.com"),
        "{page}"
    );
    assert!(page.contains(">12a\nhttps:"), "the text is kept: {page}");

    let (status, page) = add_items(&admin, overlay, "7 8 9 50").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("Added 1"), "{page}");
    for reason in [
        "is for app 730, not Left 4 Dead 2",
        "item 8 was not found: it is private, deleted or never existed",
        "50 (Nothing yet) has no file: a collection without items?",
    ] {
        assert!(page.contains(reason), "{reason}: {page}");
    }
    job_ok(&admin, job_in(&page)).await;

    // Adding it again changes nothing and queues nothing.
    let (status, page) = add_items(&admin, overlay, "9").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Those are in the overlay already."), "{page}");

    // Steam down: said, nothing added.
    sim.set_fault(Fault::Unavailable(100));
    let (status, page) = add_items(&admin, overlay, "1234").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Steam could not be asked about the items, nothing was added"),
        "{page}"
    );
    assert!(page.contains("503"), "{page}");
    sim.clear_faults();

    // A Workshop overlay's files come from its builds.
    let res = admin
        .post(
            &format!("/overlays/{overlay}/mkdir"),
            &[("dir", ""), ("name", "cfg")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("its files come from its builds")
    );

    // Others do not see a private overlay, let alone add to it.
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let (status, _) = add_items(&bob, overlay, "9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let sources = store.workshop_sources(overlay).await.unwrap();
    store.close().await;
    assert_eq!(
        sources.iter().map(|s| s.published_id).collect::<Vec<_>>(),
        [9]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_waits_for_a_build_of_its_overlay_and_a_failed_build_changes_nothing() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 2_000));
    let mut app = workshop_app(&sim, |_| {}).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_workshop_overlay(&admin, "Maps").await;
    let (_, page) = add_items(&admin, overlay, "1").await;
    job_ok(&admin, job_in(&page)).await;
    let blueprint = blueprint_with(&admin, "Maps", overlay).await;
    let server = create_server(&admin, "maps", blueprint, free_port()).await;

    // A slow download keeps the next build running while the server starts.
    sim.add_item(SimItem::vpk(2, 1 << 20));
    sim.set_fault(Fault::Slow {
        id: 2,
        bytes_per_second: 512 << 10,
    });
    let (_, page) = add_items(&admin, overlay, "2").await;
    let build = job_in(&page);
    let start = action(&admin, server, "start").await;
    let (_, page) = admin.get_text(&format!("/jobs/{start}")).await;
    assert!(
        page.contains(&format!("Waits for <a href=\"/jobs/{build}\""))
            && page.contains("a start waits for the builds of the overlays it mounts"),
        "{page}"
    );
    job_ok(&admin, build).await;
    job_ok(&admin, start).await;
    assert_eq!(
        addon(&app, server, 2),
        Content::Vpk {
            size: 1 << 20,
            seed: 2
        }
        .bytes()
    );

    // A truncated download fails the next build; the overlay stays.
    sim.clear_faults();
    sim.add_item(SimItem::vpk(3, 50_000));
    sim.set_fault(Fault::Truncated {
        id: 3,
        after: 1_000,
    });
    let (_, page) = add_items(&admin, overlay, "3").await;
    let (lines, end) = finished_job(&admin, job_in(&page)).await;
    assert_eq!(end, "failed", "{lines:#?}");
    let log = lines.join("\n");
    assert!(log.contains("item 3: the download ended after"), "{log}");
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("id=\"build-status\">failed"), "{page}");
    assert!(
        page.contains("version 2 ("),
        "the published version stays: {page}"
    );
    assert!(
        page.contains("the download ended after"),
        "the item says why: {page}"
    );
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_refresh_is_a_built_in_schedule_that_queues_builds() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 1_000));
    let mut app = workshop_app(&sim, |c| {
        c.workshop_refresh_at = "00:15".into();
        c.poll_interval_secs = 1;
    })
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_workshop_overlay(&admin, "Maps").await;
    let (_, page) = add_items(&admin, overlay, "1").await;
    job_ok(&admin, job_in(&page)).await;

    // Made from the configuration: at 00:15 UTC, on.
    let refresh = panel_schedule(&admin, "Refresh Workshop overlays").await;
    let (_, schedules) = admin.get_text("/schedules").await;
    assert!(schedules.contains("00:15 (UTC)"), "{schedules}");
    let run = run_schedule(&admin, refresh).await;
    let (log, end) = finished_job(&admin, run).await;
    assert_eq!(end, "succeeded", "{log:?}");
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let by_scheduler = wait_until_async(Duration::from_secs(15), || async {
        let jobs = store.jobs(left4me_store::JobFilter::All, 20).await.unwrap();
        jobs.into_iter().find(|j| {
            j.kind == "overlay.build" && j.username == "schedule Refresh Workshop overlays"
        })
    })
    .await
    .expect("the schedule queued a refresh");
    assert_eq!(by_scheduler.overlay_id, Some(overlay));
    job_ok(&admin, by_scheduler.id).await;

    // Admins refresh every Workshop overlay at once; others may not.
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let res = bob.post("/workshop/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = admin.post("/workshop/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let jobs = store.jobs(left4me_store::JobFilter::All, 1).await.unwrap();
    assert_eq!(
        (
            jobs[0].kind.as_str(),
            jobs[0].username.as_str(),
            jobs[0].overlay_id
        ),
        ("overlay.build", "admin", Some(overlay))
    );
    store.close().await;
    job_ok(&admin, jobs[0].id).await;
    app.stop().await;
}

/// Polls `check` until it gives something or `limit` passes.
async fn wait_until_async<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
