//! Script overlays through the real panel (127.0.0.1:0, real SQLite):
//! who writes scripts, what others see of them, builds queued once, the
//! example scripts added from the page and from the command line, and
//! builds in the real sandbox (bubblewrap, as root) that servers mount.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::panel::*;
use common::*;
use left4me_store::{Job, JobFilter, OverlayKind};
use reqwest::StatusCode;

const TICK: &str = "set -euo pipefail\nmkdir -p /overlay/left4dead2/cfg\necho 'sv_maxrate 100000' > /overlay/left4dead2/cfg/tick.cfg\n";

/// The example scripts in the source tree (the package installs them).
fn examples_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/scripts"))
}

/// A panel whose jobs stay queued: no workers take them.
async fn idle_app() -> App {
    App::spawn_configured(|config| config.workers = 0).await
}

async fn create_script_overlay(client: &Client, name: &str) -> i64 {
    let res = client
        .post("/overlays", &[("name", name), ("kind", "script")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Client::redirect_id(&res)
}

/// Posts "Save and build"; returns the response.
async fn save(
    client: &Client,
    overlay: i64,
    script: &str,
    from_previous: bool,
) -> reqwest::Response {
    let mut fields = vec![("description", "100 tick"), ("script", script)];
    if from_previous {
        fields.push(("from_previous", "on"));
    }
    client
        .post(&format!("/overlays/{overlay}/script"), &fields)
        .await
}

/// The job a button redirected to.
fn job_of(res: &reqwest::Response) -> i64 {
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/jobs/"), "{location}");
    Client::redirect_id(res)
}

async fn build_jobs(app: &App) -> Vec<Job> {
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let jobs = store.jobs(JobFilter::All, 100).await.unwrap();
    store.close().await;
    jobs.into_iter()
        .filter(|j| j.kind == "overlay.build")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_write_scripts_and_others_use_shared_ones_read_only() {
    let mut app = idle_app().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;

    let (_, list) = bob.get_text("/overlays").await;
    assert!(!list.contains("value=\"script\""), "{list}");
    assert!(!list.contains("Add the example scripts"), "{list}");
    let res = bob
        .post("/overlays", &[("name", "Mine"), ("kind", "script")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let text = res.text().await.unwrap();
    assert!(text.contains("a script runs code on the host"), "{text}");
    let res = bob.post("/overlays/examples", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let (_, list) = admin.get_text("/overlays").await;
    assert!(list.contains("value=\"script\""), "{list}");
    assert!(list.contains("Add the example scripts"), "{list}");
    let overlay = create_script_overlay(&admin, "Tick").await;
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("Script overlay Tick"), "{page}");
    // What bob must not see below, the admin does.
    for editing in [
        "id=\"script-form\"",
        "Rebuild from scratch",
        "Delete overlay",
    ] {
        assert!(page.contains(editing), "{editing}: {page}");
    }
    assert!(page.contains("no version published yet"), "{page}");

    // Mistakes are named with the text kept.
    let res = admin
        .post(
            &format!("/overlays/{overlay}/script"),
            &[("description", "two\nlines"), ("script", "  ")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains("write a script"), "{page}");
    assert!(page.contains("one line of at most"), "{page}");
    assert!(build_jobs(&app).await.is_empty(), "nothing queued");

    job_of(&save(&admin, overlay, TICK, true).await);
    // Private: bob does not even learn it exists.
    let (status, _) = bob.get_text(&format!("/overlays/{overlay}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = admin
        .post(&format!("/overlays/{overlay}/share"), &[("shared", "true")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, page) = bob.get_text(&format!("/overlays/{overlay}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<pre class=\"code\" id=\"script\">set -euo pipefail"),
        "{page}"
    );
    assert!(page.contains("100 tick"), "the description: {page}");
    assert!(
        page.contains("starts from a copy of the previous version"),
        "{page}"
    );
    for editing in [
        "id=\"script-form\"",
        "Rebuild from scratch",
        "Delete overlay",
    ] {
        assert!(!page.contains(editing), "{editing}: {page}");
    }
    let res = save(&bob, overlay, "echo mine", false).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = bob.post(&format!("/overlays/{overlay}/rebuild"), &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let blueprint = blueprint_with(&bob, "Bob's coop", overlay).await;
    let (_, page) = bob.get_text(&format!("/blueprints/{blueprint}")).await;
    assert!(page.contains("Tick"), "{page}");

    // A script overlay has no files to upload or edit.
    let res = admin
        .post(
            &format!("/overlays/{overlay}/mkdir"),
            &[("dir", ""), ("name", "cfg")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let text = res.text().await.unwrap();
    assert!(text.contains("its files come from its builds"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn save_and_build_queues_one_build_that_later_clicks_join() {
    let mut app = idle_app().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_script_overlay(&admin, "Tick").await;
    let res = admin
        .post(&format!("/overlays/{overlay}/rebuild"), &[])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "no script to rebuild yet"
    );

    let first = job_of(&save(&admin, overlay, "echo one", true).await);
    let again = job_of(&save(&admin, overlay, TICK, true).await);
    assert_eq!(
        again, first,
        "the queued build reads the script when it starts"
    );
    let scratch = job_of(
        &admin
            .post(&format!("/overlays/{overlay}/rebuild"), &[])
            .await,
    );
    assert_eq!(scratch, first);
    let builds = build_jobs(&app).await;
    assert_eq!(builds.len(), 1, "{builds:#?}");
    assert_eq!(builds[0].overlay_id, Some(overlay));

    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains(&format!("href=\"/jobs/{first}\"")), "{page}");
    assert!(page.contains("A build is queued"), "{page}");
    assert!(
        page.contains("mkdir -p /overlay/left4dead2/cfg"),
        "the second script: {page}"
    );
    assert!(
        page.contains("name=\"from_previous\" value=\"on\" checked"),
        "{page}"
    );

    // What the build will run: the saved script, from scratch as asked.
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let run = store.take_script_run(overlay).await.unwrap().unwrap();
    store.close().await;
    assert_eq!(run.script, TICK);
    assert!(run.from_scratch);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_scripts_are_added_once_from_the_page() {
    let mut app = idle_app().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let res = admin.post("/overlays/examples", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Added sourcemod-metamod, tickrate-100."),
        "{page}"
    );
    let res = admin.post("/overlays/examples", &[]).await;
    let page = res.text().await.unwrap();
    assert!(
        page.contains("The example scripts are there already."),
        "{page}"
    );

    let store = left4me_web::open_store(&app.config).await.unwrap();
    let scripts = store.overlays_of_kind(OverlayKind::Script).await.unwrap();
    let names: Vec<&str> = scripts.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["sourcemod-metamod", "tickrate-100"]);
    assert!(scripts.iter().all(|o| o.shared));
    let script = store.overlay_script(scripts[0].id).await.unwrap().unwrap();
    store.close().await;
    assert!(script.description.contains("SourceMod"), "{script:?}");
    assert!(
        build_jobs(&app).await.is_empty(),
        "nothing runs before an admin builds it"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_command_adds_each_script_once_owned_by_the_first_admin() {
    let root = TestRoot::new();
    let dir = examples_dir().to_str().unwrap().to_owned();
    let out = root.run(&["overlays", "seed", &dir]);
    assert_eq!(out.status.code(), Some(2), "no admin yet: {}", stderr(&out));
    assert!(stderr(&out).contains("no admin"), "{}", stderr(&out));

    let config = test_config(&root);
    seed_user(&config, "zed", "zed-password-1", false).await;
    seed_user(&config, "first", "first-password-1", true).await;
    seed_user(&config, "second", "second-password-1", true).await;
    let out = root.ok(&["overlays", "seed", &dir]);
    assert_eq!(
        stdout(&out)
            .lines()
            .map(|l| l.split(" (#").next().unwrap())
            .collect::<Vec<_>>(),
        [
            "created script overlay sourcemod-metamod",
            "created script overlay tickrate-100"
        ]
    );
    let out = root.ok(&["overlays", "seed", &dir]);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "kept script overlay sourcemod-metamod: it exists",
            "kept script overlay tickrate-100: it exists"
        ]
    );

    let store = left4me_web::open_store(&config).await.unwrap();
    let first = store.user_by_name("first").await.unwrap().unwrap();
    let scripts = store.overlays_of_kind(OverlayKind::Script).await.unwrap();
    assert_eq!(scripts.len(), 2);
    assert!(scripts.iter().all(|o| o.shared && o.owner_id == first.id));
    let tick = store.overlay_script(scripts[1].id).await.unwrap().unwrap();
    assert_eq!(
        tick.script,
        std::fs::read_to_string(examples_dir().join("tickrate-100.sh")).unwrap()
    );
    assert!(tick.description.starts_with("100-tick"), "{tick:?}");
    store.close().await;

    let empty = tempfile::tempdir().unwrap();
    let out = root.run(&["overlays", "seed", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no *.sh files"),
        "{}",
        stderr(&out)
    );
}

/// The job's log and end state; it must end `end`.
async fn job_ends(client: &Client, job: i64, end: &str) -> String {
    let (lines, state) = finished_job(client, job).await;
    let log = lines.join("\n");
    assert_eq!(state, end, "{log}");
    log
}

/// A file of a server's merged tree.
fn game_file(app: &App, server: i64, path: &str) -> String {
    let path = app.root.merged(&format!("server-{server}")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `cfg/tick.cfg` with `rate`, adds a line to `cfg/builds.txt`
/// (kept from the previous version when the build starts from a copy).
fn tick_script(rate: u32) -> String {
    format!(
        "set -euo pipefail\nmkdir -p left4dead2/cfg\necho 'sv_maxrate {rate}' > left4dead2/cfg/tick.cfg\n\
         echo build >> left4dead2/cfg/builds.txt\necho \"wrote rate {rate}\"\necho 'to stderr' >&2\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_streams_its_output_and_publishes_a_version_that_servers_mount() {
    require_root();
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_script_overlay(&admin, "Tick").await;
    let blueprint = blueprint_with(&admin, "Tick", overlay).await;
    let server = create_server(&admin, "tick", blueprint, free_port()).await;

    // A start queued behind the first build waits for it.
    let build = job_of(&save(&admin, overlay, &tick_script(100_000), true).await);
    let start = action(&admin, server, "start").await;
    let log = job_ends(&admin, build, "succeeded").await;
    for line in ["wrote rate 100000", "to stderr", "published version 1"] {
        assert!(log.contains(line), "{line}: {log}");
    }
    job_ends(&admin, start, "succeeded").await;
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/tick.cfg"),
        "sv_maxrate 100000\n"
    );
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("version 1 ("), "{page}");
    assert!(page.contains("id=\"build-status\">ready<"), "{page}");

    // A rebuild while the server runs: it keeps its copy and says so.
    let build = job_of(&save(&admin, overlay, &tick_script(30_000), true).await);
    job_ends(&admin, build, "succeeded").await;
    let note = "overlay rebuilt: restart to apply";
    let (_, dashboard) = admin.get_text("/").await;
    assert!(dashboard.contains(note), "{dashboard}");
    assert!(!dashboard.contains("Workshop items updated"), "{dashboard}");
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/tick.cfg"),
        "sv_maxrate 100000\n"
    );
    act_ok(&admin, server, "restart").await;
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/tick.cfg"),
        "sv_maxrate 30000\n"
    );
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/builds.txt"),
        "build\nbuild\n",
        "built on a copy of version 1"
    );
    let (_, dashboard) = admin.get_text("/").await;
    assert!(!dashboard.contains(note), "{dashboard}");

    // From scratch: the copy's history is gone.
    let build = job_of(
        &admin
            .post(&format!("/overlays/{overlay}/rebuild"), &[])
            .await,
    );
    let log = job_ends(&admin, build, "succeeded").await;
    assert!(log.contains("building from an empty layer"), "{log}");
    act_ok(&admin, server, "restart").await;
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/builds.txt"),
        "build\n"
    );
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_or_cancelled_build_keeps_the_current_version() {
    require_root();
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_script_overlay(&admin, "Tick").await;
    let build = job_of(&save(&admin, overlay, &tick_script(100_000), false).await);
    job_ends(&admin, build, "succeeded").await;

    let failing = "echo 'half done'\nmkdir -p left4dead2/cfg\necho broken > left4dead2/cfg/tick.cfg\nexit 3\n";
    let build = job_of(&save(&admin, overlay, failing, false).await);
    let log = job_ends(&admin, build, "failed").await;
    assert!(log.contains("half done"), "{log}");
    assert!(log.contains("the build script failed"), "{log}");
    let (_, page) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("version 1 ("), "{page}");
    assert!(page.contains("id=\"build-status\">failed<"), "{page}");

    let slow = "echo started\nsleep 60\necho never\n";
    let build = job_of(&save(&admin, overlay, slow, false).await);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = admin.get_text(&format!("/jobs/{build}")).await;
        if page.contains("started\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the script never started: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = admin.post(&format!("/jobs/{build}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let log = job_ends(&admin, build, "cancelled").await;
    assert!(!log.contains("never"), "{log}");

    let blueprint = blueprint_with(&admin, "Tick", overlay).await;
    let server = create_server(&admin, "tick", blueprint, free_port()).await;
    act_ok(&admin, server, "start").await;
    assert_eq!(
        game_file(&app, server, "left4dead2/cfg/tick.cfg"),
        "sv_maxrate 100000\n",
        "version 1 is still the one servers get"
    );
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tickrate_example_builds_its_cfg() {
    require_root();
    let mut app = App::spawn().await;
    // As a new admin's state root from `mktemp -d`: nobody else may enter.
    std::fs::set_permissions(
        app.root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let res = admin.post("/overlays/examples", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let store = left4me_web::open_store(&app.config).await.unwrap();
    let scripts = store.overlays_of_kind(OverlayKind::Script).await.unwrap();
    store.close().await;
    let tick = scripts.iter().find(|o| o.name == "tickrate-100").unwrap();
    let build = job_of(
        &admin
            .post(&format!("/overlays/{}/rebuild", tick.id), &[])
            .await,
    );
    let log = job_ends(&admin, build, "succeeded").await;
    assert!(
        log.contains("wrote left4dead2/cfg/tickrate100.cfg"),
        "{log}"
    );
    let cfg = app.root.path().join(format!(
        "overlay-versions/{}/v/1/left4dead2/cfg/tickrate100.cfg",
        tick.id
    ));
    let cfg = std::fs::read_to_string(&cfg).unwrap();
    assert!(cfg.contains("sv_maxupdaterate 100"), "{cfg}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panel_killed_during_a_build_takes_the_build_along() {
    require_root();
    let root = TestRoot::new();
    let config = test_config(&root);
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    let port = free_port();
    let mut panel = PanelProcess::start(&root, port);
    let client = Client::new(&format!("http://{}", panel.addr));
    assert_eq!(
        client.login(ADMIN.0, ADMIN.1).await.status(),
        StatusCode::SEE_OTHER
    );
    let overlay = create_script_overlay(&client, "Slow").await;
    let marker = format!("left4me-killed-build-{}", std::process::id());
    let script = format!(
        "mkdir -p left4dead2 && echo half > left4dead2/half.txt\nexec -a {marker} sleep 300\n"
    );
    let build = job_of(&save(&client, overlay, &script, false).await);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !process_with_cmdline(&marker) {
        assert!(
            std::time::Instant::now() < deadline,
            "the script never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The build's network namespace, named like its scratch directory.
    let name = std::fs::read_dir(root.path().join("tmp/builds"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{overlay}-")))
        .expect("the build's scratch directory");
    let netns = Path::new("/run/netns").join(format!("left4me-build-{name}"));
    let namespace = std::fs::metadata(&netns)
        .expect("the build has its network namespace")
        .ino();
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
    // The sandbox dies with the process that started it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process_with_cmdline(&marker) {
        assert!(
            std::time::Instant::now() < deadline,
            "the build outlived the panel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut panel = PanelProcess::start(&root, port);
    let (_, html) = client.get_text(&format!("/jobs/{build}")).await;
    assert!(html.contains("id=\"job-state\">interrupted"), "{html}");
    let builds = root.path().join("tmp/builds");
    assert!(
        !builds.exists() || builds.read_dir().unwrap().next().is_none(),
        "the partial build was cleaned up"
    );
    // Its network too: the namespace, and pasta, which outlived the panel.
    assert!(!netns.exists(), "{} was removed", netns.display());
    assert_eq!(processes_with_netns(namespace), [0u32; 0], "pasta ended");
    let (_, page) = client.get_text(&format!("/overlays/{overlay}")).await;
    assert!(page.contains("no version published yet"), "{page}");
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
}
