//! Operations that write more than once commit all of it or nothing: a
//! trigger makes the activity line (the last write of each) fail, and the
//! change it would have described is not there either.

use std::sync::Arc;
use std::time::Duration;

use left4me_app::actor::Actor;
use left4me_app::config::Config;
use left4me_app::error::OpError;
use left4me_app::ops::overlays::{self, EditInput, NewOverlayInput};
use left4me_app::ops::scripts::{self, ScriptInput};
use left4me_app::ops::servers::{
    self, MemberInput, MemberRole, NewServerInput, ServerSettingsInput,
};
use left4me_app::ops::workshop::{self, AddItemsInput, RemoveItemInput};
use left4me_app::runner::Jobs;
use left4me_app::scripts::ScriptBuilder;
use left4me_app::workshop::Workshop;
use left4me_app::{App, test_host};
use left4me_store::{JobFilter, OverlayKind, Store};
use workshop_sim::{SimItem, WorkshopSim};

struct World {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    app: App,
    admin: Actor,
}

/// The panel without workers (jobs stay queued), asking Steam at
/// `steam_api_url`.
async fn world(steam_api_url: Option<String>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("left4me.db");
    let store = Store::open(&db).await.unwrap();
    let root = dir.path().join("root");
    let host = test_host(&root);
    let mut config = Config {
        root,
        steamcmd: "/nonexistent/steamcmd".into(),
        ..Config::default()
    };
    if let Some(url) = steam_api_url {
        config.steam_api_url = url;
    }
    let jobs = Jobs::new(
        store.clone(),
        Arc::clone(&host),
        Arc::new(config.game().unwrap()),
        Workshop::new(&config).unwrap(),
        ScriptBuilder::new(&config),
        left4me_app::backups::Backups::new(&config),
        Duration::from_secs(1),
    );
    let app = App::new(config, store.clone(), host, jobs, Arc::default());
    let admin = Actor::new(store.create_user("admin", "x", true).await.unwrap());
    World {
        _dir: dir,
        db,
        app,
        admin,
    }
}

/// Runs `statement` on the database through a connection of its own.
async fn execute(db: &std::path::Path, statement: &'static str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// Makes every later insert into the activity log fail, as a full disk
/// or a bug would.
async fn break_the_activity_log(db: &std::path::Path) {
    execute(
        db,
        "CREATE TRIGGER break_activity BEFORE INSERT ON activity
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .await;
}

fn assert_internal(result: Result<impl std::fmt::Debug, OpError>) {
    match result {
        Err(e @ OpError::Internal { .. }) => {
            assert!(e.chain().contains("injected failure"), "{}", e.chain());
        }
        other => panic!("expected the injected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_activity_line_leaves_nothing_half_saved() {
    let w = world(None).await;
    let store = w.app.store();
    let blueprint = store.create_blueprint(w.admin.id(), "coop").await.unwrap();
    let other = store
        .create_blueprint(w.admin.id(), "versus")
        .await
        .unwrap();
    let bob = store.create_user("bob", "x", false).await.unwrap();
    let server = servers::create(
        &w.app,
        &w.admin,
        &NewServerInput {
            name: "alpha".into(),
            hostname: "Alpha".into(),
            port: String::new(),
            blueprint_id: blueprint.id.to_string(),
        },
    )
    .await
    .unwrap();
    let activity_before = store
        .activity(&Default::default(), 100)
        .await
        .unwrap()
        .len();
    assert_eq!(activity_before, 1, "the creation was recorded");

    break_the_activity_log(&w.db).await;

    // Create: no server without its line.
    assert_internal(
        servers::create(
            &w.app,
            &w.admin,
            &NewServerInput {
                name: "beta".into(),
                hostname: "Beta".into(),
                port: String::new(),
                blueprint_id: blueprint.id.to_string(),
            },
        )
        .await,
    );
    assert_eq!(store.servers(None).await.unwrap().len(), 1);

    // Settings: name, hostname and blueprint all stay.
    assert_internal(
        servers::change(
            &w.app,
            &w.admin,
            server.server().id,
            &ServerSettingsInput {
                name: "renamed".into(),
                hostname: "Renamed".into(),
                blueprint_id: other.id.to_string(),
            },
        )
        .await,
    );
    let kept = store.server(server.server().id).await.unwrap();
    assert_eq!(
        (
            kept.name.as_str(),
            kept.hostname.as_str(),
            kept.blueprint_id
        ),
        ("alpha", "Alpha", blueprint.id)
    );

    // Members: bob is not added.
    assert_internal(
        servers::set_member(
            &w.app,
            &w.admin,
            server.server().id,
            &MemberInput {
                user_id: bob.id,
                role: MemberRole::Operator,
            },
        )
        .await,
    );
    assert!(
        store
            .server_members(server.server().id)
            .await
            .unwrap()
            .is_empty()
    );

    // A job: not queued without its line.
    assert_internal(
        servers::queue(
            &w.app,
            &w.admin,
            server.server().id,
            servers::ServerOperation::Start,
        )
        .await,
    );
    assert!(
        store
            .jobs(left4me_store::JobFilter::Server(server.server().id), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_activity_line_leaves_no_overlay_change_half_saved() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 1_000));
    sim.add_item(SimItem::vpk(2, 1_000));
    let w = world(Some(sim.base_url())).await;
    let (app, admin, store) = (&w.app, &w.admin, w.app.store());
    let create = async |name: &str, kind: &str| {
        let input = NewOverlayInput {
            name: name.into(),
            kind: kind.into(),
        };
        overlays::create(app, admin, &input).await
    };
    let files = create("files", "files").await.unwrap();
    let edit = |content: &str| EditInput {
        path: "server.cfg".into(),
        content: content.into(),
    };
    overlays::edit(app, admin, files.id, &edit("sv_cheats 0"))
        .await
        .unwrap();
    let maps = create("maps", "workshop").await.unwrap();
    let ids = |ids: &str| AddItemsInput { ids: ids.into() };
    let added = workshop::add_items(app, admin, maps.id, &ids("1"))
        .await
        .unwrap();
    assert_eq!(added.added, 1);
    let tick = create("tick", "script").await.unwrap();
    let script = |script: &str| ScriptInput {
        description: String::new(),
        script: script.into(),
        from_previous: false,
    };
    scripts::save_and_build(app, admin, tick.id, &script("echo one"))
        .await
        .unwrap();
    // No build waits: each change below would queue its own, with a line.
    for job in store.jobs(JobFilter::All, 10).await.unwrap() {
        let mut write = store.write().await.unwrap();
        let request = write.request_cancel(job.id).await.unwrap();
        write.commit().await.unwrap();
        assert_eq!(request, left4me_store::CancelRequest::Dequeued);
    }
    // Older than any change below could mark it.
    execute(&w.db, "UPDATE overlays SET updated_at = 1").await;
    let overlays_before = store.visible_overlays(admin.viewer()).await.unwrap();
    let activity_before = store.activity(&Default::default(), 100).await.unwrap();

    break_the_activity_log(&w.db).await;

    // Create: no overlay without its line.
    assert_internal(create("more", "files").await);
    assert_internal(create("more maps", "workshop").await);

    // Delete: the overlay stays, with its files.
    assert_internal(overlays::delete(app, admin, files.id).await);
    store.overlay(files.id).await.unwrap();
    let working_copy = app
        .host()
        .root()
        .overlay(&left4me_app::spec_builder::overlay_path(files.id));
    assert!(working_copy.join("server.cfg").is_file());

    // A file edit: the file is written first (the filesystem is in no
    // transaction), but the overlay is not marked changed without its line.
    assert_internal(overlays::edit(app, admin, files.id, &edit("sv_cheats 1")).await);
    assert_eq!(store.overlay(files.id).await.unwrap().updated_at, 1);

    // Workshop: no item added or removed, no build queued.
    assert_internal(workshop::add_items(app, admin, maps.id, &ids("2")).await);
    assert_internal(workshop::remove_item(app, admin, maps.id, &RemoveItemInput { id: 1 }).await);
    let sources = store.workshop_sources(maps.id).await.unwrap();
    assert_eq!(
        sources.iter().map(|s| s.published_id).collect::<Vec<_>>(),
        [1]
    );

    // Scripts: the script and its build setting stay, no build is queued.
    assert_internal(scripts::save_and_build(app, admin, tick.id, &script("echo two")).await);
    assert_internal(scripts::rebuild_from_scratch(app, admin, tick.id).await);
    let saved = store.overlay_script(tick.id).await.unwrap().unwrap();
    assert_eq!(
        (saved.script.as_str(), saved.next_from_scratch),
        ("echo one", false)
    );

    // The examples: none added without its line.
    assert_internal(scripts::add_examples(app, admin).await);

    assert_eq!(
        store.visible_overlays(admin.viewer()).await.unwrap(),
        overlays_before
    );
    assert!(
        store
            .jobs(JobFilter::All, 10)
            .await
            .unwrap()
            .iter()
            .all(|j| j.state == left4me_store::JobState::Cancelled),
        "no build queued"
    );
    assert_eq!(
        store.activity(&Default::default(), 100).await.unwrap(),
        activity_before
    );
    assert_eq!(
        store
            .overlays_of_kind(OverlayKind::Script)
            .await
            .unwrap()
            .len(),
        1
    );
}
