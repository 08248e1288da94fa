//! Operations that write more than once commit all of it or nothing: a
//! trigger makes the activity line (the last write of each) fail, and the
//! change it would have described is not there either.

use std::sync::Arc;

use left4me_app::actor::Actor;
use left4me_app::config::Config;
use left4me_app::error::OpError;
use left4me_app::ops::servers::{
    self, MemberInput, MemberRole, NewServerInput, ServerSettingsInput,
};
use left4me_app::{App, test_jobs};
use left4me_store::Store;

struct World {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    app: App,
    admin: Actor,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("left4me.db");
    let store = Store::open(&db).await.unwrap();
    let root = dir.path().join("root");
    let (host, jobs) = test_jobs(&store, &root);
    let config = Config {
        root,
        ..Config::default()
    };
    let app = App::new(config, store.clone(), host, jobs, Arc::default());
    let admin = Actor::new(store.create_user("admin", "x", true).await.unwrap());
    World {
        _dir: dir,
        db,
        app,
        admin,
    }
}

/// Makes every later insert into the activity log fail, through a
/// connection of its own, as a full disk or a bug would.
async fn break_the_activity_log(db: &std::path::Path) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER break_activity BEFORE INSERT ON activity
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
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
    let w = world().await;
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
            server.id,
            &ServerSettingsInput {
                name: "renamed".into(),
                hostname: "Renamed".into(),
                blueprint_id: other.id.to_string(),
            },
        )
        .await,
    );
    let kept = store.server(server.id).await.unwrap();
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
            server.id,
            &MemberInput {
                user_id: bob.id,
                role: MemberRole::Operator,
            },
        )
        .await,
    );
    assert!(store.server_members(server.id).await.unwrap().is_empty());

    // A job: not queued without its line.
    assert_internal(
        servers::queue(&w.app, &w.admin, server.id, servers::ServerOperation::Start).await,
    );
    assert!(
        store
            .jobs(left4me_store::JobFilter::Server(server.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
