//! The store against a real SQLite file.

use left4me_store::{
    CancelRequest, DesiredState, JobState, NewJob, NewServer, OverlayKind, ScriptEdit, ScriptRun,
    ServerRole, SharedItem, Store, StoreError, Viewer, WorkshopItem,
};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("left4me.db")).await.unwrap();
    (dir, store)
}

/// A server with the next free port of 27015-27115.
fn new_server(owner_id: i64, blueprint_id: i64, name: &str) -> NewServer<'_> {
    NewServer {
        owner_id,
        blueprint_id,
        name,
        hostname: "h",
        port: None,
        port_range: 27015..=27115,
        rcon_password: "pw",
        held_elsewhere: &[],
    }
}

fn job<'a>(kind: &'a str, locks: &'a [String]) -> NewJob<'a> {
    NewJob {
        kind,
        user_id: Some(1),
        username: "alice",
        server_id: None,
        overlay_id: None,
        subject: "test",
        locks,
        argument: None,
    }
}

#[tokio::test]
async fn opening_twice_keeps_data_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left4me.db");
    let store = Store::open(&path).await.unwrap();
    store.create_user("alice", "hash", true).await.unwrap();
    store.close().await;
    let again = Store::open(&path).await.unwrap();
    assert_eq!(again.count_users().await.unwrap(), 1);
    assert!(
        dir.path().join("left4me.db-wal").exists(),
        "WAL journal in use"
    );
}

#[tokio::test]
async fn usernames_are_unique_ignoring_case() {
    let (_d, store) = store().await;
    store.create_user("Alice", "h", false).await.unwrap();
    let err = store.create_user("alice", "h", false).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("taken")),
        "{err}"
    );
}

#[tokio::test]
async fn jobs_on_one_resource_run_one_at_a_time_in_order() {
    let (_d, store) = store().await;
    store.create_user("alice", "h", true).await.unwrap();
    let s1 = vec!["server:1".to_owned()];
    let s2 = vec!["server:2".to_owned()];
    let a = store.create_job(&job("start", &s1)).await.unwrap();
    let b = store.create_job(&job("stop", &s1)).await.unwrap();
    let c = store.create_job(&job("start", &s2)).await.unwrap();

    assert_eq!(store.claim_next_job().await.unwrap().unwrap().id, a.id);
    // b waits for a; c is free.
    assert_eq!(store.claim_next_job().await.unwrap().unwrap().id, c.id);
    assert!(store.claim_next_job().await.unwrap().is_none());
    store
        .finish_job(a.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(store.claim_next_job().await.unwrap().unwrap().id, b.id);
}

#[tokio::test]
async fn a_blocked_job_keeps_later_jobs_on_its_resources_waiting() {
    let (_d, store) = store().await;
    store.create_user("alice", "h", true).await.unwrap();
    let global = vec!["install".to_owned(), "server:1".to_owned()];
    let s1 = vec!["server:1".to_owned()];
    let install_lock = vec!["install".to_owned()];
    let running = store
        .create_job(&job("install", &install_lock))
        .await
        .unwrap();
    store.claim_next_job().await.unwrap();
    let waiting = store.create_job(&job("both", &global)).await.unwrap();
    let later = store.create_job(&job("start", &s1)).await.unwrap();
    // `later` must not overtake `waiting` on server:1.
    assert!(store.claim_next_job().await.unwrap().is_none());
    store
        .finish_job(running.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(
        store.claim_next_job().await.unwrap().unwrap().id,
        waiting.id
    );
    store
        .finish_job(waiting.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(store.claim_next_job().await.unwrap().unwrap().id, later.id);
}

#[tokio::test]
async fn jobs_using_an_overlay_share_it_and_a_build_of_it_waits_for_them() {
    let (_d, store) = store().await;
    store.create_user("alice", "h", true).await.unwrap();
    let keys = |k: &[&str]| k.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
    let start_a = keys(&["server:1", "uses:overlay:5"]);
    let start_b = keys(&["server:2", "uses:overlay:5"]);
    let build = keys(&["overlay:5"]);
    let a = store.create_job(&job("start", &start_a)).await.unwrap();
    let b = store.create_job(&job("start", &start_b)).await.unwrap();
    let built = store.create_job(&job("build", &build)).await.unwrap();
    let c = store.create_job(&job("start", &start_a)).await.unwrap();
    let claim = || async { store.claim_next_job().await.unwrap().map(|j| j.id) };
    assert_eq!(claim().await, Some(a.id));
    assert_eq!(
        claim().await,
        Some(b.id),
        "two starts use the overlay at once"
    );
    assert_eq!(claim().await, None, "the build waits for both");
    let waiting = store.job(built.id).await.unwrap();
    assert_eq!(
        store.job_ahead(&waiting).await.unwrap().map(|j| j.id),
        Some(a.id)
    );
    for done in [a.id, b.id] {
        store
            .finish_job(done, JobState::Succeeded, None)
            .await
            .unwrap();
    }
    assert_eq!(claim().await, Some(built.id));
    assert_eq!(claim().await, None, "a start waits for the build before it");
    let queued = store.job(c.id).await.unwrap();
    assert_eq!(
        store.job_ahead(&queued).await.unwrap().map(|j| j.id),
        Some(built.id)
    );
    store
        .finish_job(built.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(claim().await, Some(c.id));
}

#[tokio::test]
async fn log_lines_are_numbered_and_read_after_a_point() {
    let (_d, store) = store().await;
    store.create_user("alice", "h", true).await.unwrap();
    let j = store.create_job(&job("start", &[])).await.unwrap();
    for i in 1..=5 {
        let seq = store
            .append_job_log(j.id, "step", &format!("line {i}"))
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    let tail = store.job_log_after(j.id, 3).await.unwrap();
    let lines: Vec<_> = tail.iter().map(|l| (l.seq, l.line.as_str())).collect();
    assert_eq!(lines, [(4, "line 4"), (5, "line 5")]);
}

async fn request_cancel(store: &Store, id: i64) -> CancelRequest {
    let mut write = store.write().await.unwrap();
    let request = write.request_cancel(id).await.unwrap();
    write.commit().await.unwrap();
    request
}

#[tokio::test]
async fn cancel_and_interrupt() {
    let (_d, store) = store().await;
    store.create_user("alice", "h", true).await.unwrap();
    let a = store.create_job(&job("a", &[])).await.unwrap();
    let b = store.create_job(&job("b", &[])).await.unwrap();
    let c = store.create_job(&job("c", &[])).await.unwrap();
    store.claim_next_job().await.unwrap();
    store.claim_next_job().await.unwrap();
    assert_eq!(request_cancel(&store, c.id).await, CancelRequest::Dequeued);
    assert_eq!(store.job(c.id).await.unwrap().state, JobState::Cancelled);
    assert_eq!(request_cancel(&store, c.id).await, CancelRequest::Finished);
    // A running job asked to stop ends cancelled even if the panel stops
    // before it does; one not asked is interrupted.
    assert_eq!(request_cancel(&store, b.id).await, CancelRequest::Asked);
    let asked = store.job(b.id).await.unwrap();
    assert_eq!(asked.state, JobState::Running);
    assert!(asked.cancel_requested_at.is_some());
    assert_eq!(store.interrupt_running_jobs().await.unwrap(), 2);
    assert_eq!(store.job(a.id).await.unwrap().state, JobState::Interrupted);
    let b = store.job(b.id).await.unwrap();
    assert_eq!((b.state, b.error), (JobState::Cancelled, None));
}

#[tokio::test]
async fn ports_come_from_the_range_until_it_is_exhausted() {
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    let new = |name: &'static str, port| NewServer {
        port,
        port_range: 27015..=27016,
        ..new_server(user.id, bp.id, name)
    };
    assert_eq!(
        store.create_server(&new("a", None)).await.unwrap().port,
        27015
    );
    assert_eq!(
        store.create_server(&new("b", None)).await.unwrap().port,
        27016
    );
    let err = store.create_server(&new("c", None)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("every port from 27015 to 27016 is in use"),
        "{err}"
    );
    // Ports another program holds are skipped, and refused when asked for.
    let held = NewServer {
        held_elsewhere: &[30002, 30003],
        port_range: 30002..=30004,
        ..new("h1", None)
    };
    assert_eq!(store.create_server(&held).await.unwrap().port, 30004);
    let err = store
        .create_server(&NewServer {
            port: Some(30003),
            name: "h2",
            ..held
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("port 30003 is in use by another program"),
        "{err}"
    );
    let err = store
        .create_server(&new("d", Some(27015)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("port 27015 is already used"),
        "{err}"
    );
    assert_eq!(
        store
            .create_server(&new("e", Some(30000)))
            .await
            .unwrap()
            .port,
        30000
    );
    let err = store
        .create_server(&new("a", Some(30001)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("named \"a\" already exists"),
        "{err}"
    );
    let a = store.servers(Some(user.id)).await.unwrap()[0].clone();
    assert_eq!(a.desired_state, DesiredState::Stopped);
}

#[tokio::test]
async fn listed_servers_carry_owner_and_blueprint_names_by_name() {
    let (_d, store) = store().await;
    let alice = store.create_user("alice", "h", true).await.unwrap();
    let bob = store.create_user("bob", "h", false).await.unwrap();
    let coop = store.create_blueprint(alice.id, "coop").await.unwrap();
    let versus = store.create_blueprint(bob.id, "versus").await.unwrap();
    for (owner, blueprint, name) in [(bob.id, versus.id, "Zed"), (alice.id, coop.id, "alpha")] {
        store
            .create_server(&new_server(owner, blueprint, name))
            .await
            .unwrap();
    }
    let all: Vec<_> = store
        .listed_servers()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.server.name, l.owner_name, l.blueprint_name, l.member_role))
        .collect();
    assert_eq!(
        all,
        [
            ("alpha".into(), "alice".into(), "coop".into(), None),
            ("Zed".into(), "bob".into(), "versus".into(), None)
        ]
    );
}

#[tokio::test]
async fn used_overlays_and_blueprints_cannot_be_deleted() {
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let o = store
        .create_overlay(user.id, "maps", OverlayKind::Files)
        .await
        .unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    store
        .set_blueprint_overlays(bp.id, &[(o.id, true)])
        .await
        .unwrap();
    let err = store.delete_overlay(o.id).await.unwrap_err();
    assert!(err.to_string().contains("used by blueprint coop"), "{err}");
    store
        .create_server(&new_server(user.id, bp.id, "s1"))
        .await
        .unwrap();
    let err = store.delete_blueprint(bp.id).await.unwrap_err();
    assert!(err.to_string().contains("used by server s1"), "{err}");
    let mut write = store.write().await.unwrap();
    assert_eq!(
        write.user_possessions(user.id).await.unwrap(),
        ["1 server", "1 blueprint", "1 overlay"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_all_succeed_with_distinct_ports() {
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    // Jobs are claimed meanwhile, as the workers do.
    for i in 0..12 {
        store.create_job(&job(&format!("k{i}"), &[])).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let name = format!("s{i}");
                let server = store
                    .create_server(&new_server(user.id, bp.id, &name))
                    .await?;
                Ok::<_, StoreError>(Some(server.port))
            } else {
                store.claim_next_job().await.map(|_| None)
            }
        }));
    }
    let mut ports = Vec::new();
    for task in tasks {
        let result = task.await.unwrap();
        ports.extend(result.expect("no \"database is locked\"").into_iter());
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 12, "{ports:?}");
}

#[tokio::test]
async fn servers_with_active_jobs_are_those_with_queued_or_running_ones() {
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    let a = store
        .create_server(&new_server(user.id, bp.id, "a"))
        .await
        .unwrap();
    let b = store
        .create_server(&new_server(user.id, bp.id, "b"))
        .await
        .unwrap();
    let locks = [format!("server:{}", a.id)];
    let queued = store
        .create_job(&NewJob {
            server_id: Some(a.id),
            ..job("server.start", &locks)
        })
        .await
        .unwrap();
    let active = store.servers_with_active_jobs().await.unwrap();
    assert!(
        active.contains(&a.id) && !active.contains(&b.id),
        "{active:?}"
    );
    assert!(store.server_has_active_job(a.id).await.unwrap());
    store.claim_next_job().await.unwrap();
    assert!(
        store
            .servers_with_active_jobs()
            .await
            .unwrap()
            .contains(&a.id),
        "running counts"
    );
    store
        .finish_job(queued.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert!(store.servers_with_active_jobs().await.unwrap().is_empty());
}

/// Users alice and bob, and alice's shared overlay "maps".
async fn alice_bob_and_shared_maps(
    store: &Store,
) -> (
    left4me_store::User,
    left4me_store::User,
    left4me_store::Overlay,
) {
    let alice = store.create_user("alice", "h", false).await.unwrap();
    let bob = store.create_user("bob", "h", false).await.unwrap();
    let maps = store
        .create_overlay(alice.id, "maps", OverlayKind::Files)
        .await
        .unwrap();
    share(store, SharedItem::Overlay, maps.id, true).await;
    (alice, bob, maps)
}

/// Shares or unshares an item; it must work.
async fn share(store: &Store, item: SharedItem, id: i64, shared: bool) {
    store.set_shared(item, id, shared).await.unwrap();
}

fn conflict(err: StoreError) -> String {
    match err {
        StoreError::Conflict(message) => message,
        other => panic!("expected a conflict, got {other}"),
    }
}

#[tokio::test]
async fn shared_items_are_visible_to_everyone_and_private_ones_to_owner_and_admins() {
    let (_d, store) = store().await;
    let admin = store.create_user("admin", "h", true).await.unwrap();
    let (alice, bob, _) = alice_bob_and_shared_maps(&store).await;
    store
        .create_overlay(alice.id, "secret", OverlayKind::Files)
        .await
        .unwrap();
    let seen = |viewer: Viewer| {
        let store = store.clone();
        async move {
            store
                .visible_overlays(viewer)
                .await
                .unwrap()
                .into_iter()
                .map(|o| format!("{} ({})", o.overlay.name, o.owner_name))
                .collect::<Vec<_>>()
        }
    };
    let as_user = |id| Viewer {
        user_id: id,
        is_admin: false,
    };
    assert_eq!(seen(as_user(bob.id)).await, ["maps (alice)"]);
    assert_eq!(
        seen(as_user(alice.id)).await,
        ["maps (alice)", "secret (alice)"]
    );
    let admin_view = Viewer {
        user_id: admin.id,
        is_admin: true,
    };
    assert_eq!(seen(admin_view).await.len(), 2);

    let coop = store.create_blueprint(alice.id, "coop").await.unwrap();
    share(&store, SharedItem::Blueprint, coop.id, true).await;
    let bobs: Vec<String> = store
        .visible_blueprints(as_user(bob.id))
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.blueprint.name)
        .collect();
    assert_eq!(bobs, ["coop"]);
}

#[tokio::test]
async fn taking_back_a_share_is_refused_while_others_use_it() {
    let (_d, store) = store().await;
    let (alice, bob, maps) = alice_bob_and_shared_maps(&store).await;
    // Alice's own private blueprint does not hold the share.
    let mine = store.create_blueprint(alice.id, "mine").await.unwrap();
    store
        .set_blueprint_overlays(mine.id, &[(maps.id, false)])
        .await
        .unwrap();
    share(&store, SharedItem::Overlay, maps.id, false).await;
    share(&store, SharedItem::Overlay, maps.id, true).await;
    // Bob's blueprint does, and is named.
    let bobs = store.create_blueprint(bob.id, "bob coop").await.unwrap();
    store
        .set_blueprint_overlays(bobs.id, &[(maps.id, true)])
        .await
        .unwrap();
    let message = conflict(
        store
            .set_shared(SharedItem::Overlay, maps.id, false)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("bob coop (bob)"), "{message}");
    assert!(store.overlay(maps.id).await.unwrap().shared, "still shared");

    // A shared blueprint takes shared overlays only, so sharing one with a
    // private overlay is refused, naming it; so is adding one later.
    let secret = store
        .create_overlay(alice.id, "secret", OverlayKind::Files)
        .await
        .unwrap();
    store
        .set_blueprint_overlays(mine.id, &[(maps.id, false), (secret.id, false)])
        .await
        .unwrap();
    let message = conflict(
        store
            .set_shared(SharedItem::Blueprint, mine.id, true)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("overlay secret is private"), "{message}");
    store
        .set_blueprint_overlays(mine.id, &[(maps.id, false)])
        .await
        .unwrap();
    share(&store, SharedItem::Blueprint, mine.id, true).await;
    let message = conflict(
        store
            .set_blueprint_overlays(mine.id, &[(secret.id, false)])
            .await
            .unwrap_err(),
    );
    assert!(message.contains("secret"), "{message}");
    assert_eq!(
        store.blueprint_overlays(mine.id).await.unwrap().len(),
        1,
        "unchanged"
    );

    // Bob builds a server on Alice's shared blueprint: she cannot unshare it.
    store
        .create_server(&new_server(bob.id, mine.id, "bobs server"))
        .await
        .unwrap();
    let message = conflict(
        store
            .set_shared(SharedItem::Blueprint, mine.id, false)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("bobs server (bob)"), "{message}");
}

#[tokio::test]
async fn a_copied_blueprint_is_private_and_independent() {
    let (_d, store) = store().await;
    let (alice, bob, maps) = alice_bob_and_shared_maps(&store).await;
    let coop = store.create_blueprint(alice.id, "coop").await.unwrap();
    let mut write = store.write().await.unwrap();
    write
        .update_blueprint(coop.id, "coop", "sv_cheats 0", "+map c2m1_highway")
        .await
        .unwrap();
    write.commit().await.unwrap();
    store
        .set_blueprint_overlays(coop.id, &[(maps.id, true)])
        .await
        .unwrap();
    share(&store, SharedItem::Blueprint, coop.id, true).await;
    let copy = store
        .copy_blueprint(coop.id, bob.id, "coop (copy)")
        .await
        .unwrap();
    assert_eq!(
        (
            copy.owner_id,
            copy.shared,
            copy.config.as_str(),
            copy.arguments.as_str()
        ),
        (bob.id, false, "sv_cheats 0", "+map c2m1_highway")
    );
    let overlays = store.blueprint_overlays(copy.id).await.unwrap();
    assert_eq!(overlays.len(), 1);
    assert!(overlays[0].expose_server_cfg);
    store.set_blueprint_overlays(copy.id, &[]).await.unwrap();
    assert_eq!(store.blueprint_overlays(coop.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn members_have_one_role_each_and_leave_with_their_server() {
    let (_d, store) = store().await;
    let alice = store.create_user("alice", "h", false).await.unwrap();
    let bob = store.create_user("bob", "h", false).await.unwrap();
    let coop = store.create_blueprint(alice.id, "coop").await.unwrap();
    let server = store
        .create_server(&new_server(alice.id, coop.id, "s"))
        .await
        .unwrap();
    store
        .set_server_member(server.id, bob.id, ServerRole::Viewer)
        .await
        .unwrap();
    store
        .set_server_member(server.id, bob.id, ServerRole::Operator)
        .await
        .unwrap();
    let members = store.server_members(server.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].username.as_str(), members[0].role),
        ("bob", ServerRole::Operator)
    );
    let message = conflict(
        store
            .set_server_member(server.id, alice.id, ServerRole::Viewer)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("owner"), "{message}");
    store.remove_server_member(server.id, bob.id).await.unwrap();
    store.remove_server_member(server.id, bob.id).await.unwrap();
    assert_eq!(store.server_role(server.id, bob.id).await.unwrap(), None);
    store
        .set_server_member(server.id, bob.id, ServerRole::Viewer)
        .await
        .unwrap();
    store.delete_server(server.id).await.unwrap();
    assert_eq!(store.server_role(server.id, bob.id).await.unwrap(), None);
}

#[tokio::test]
async fn workshop_sources_and_items_follow_their_overlay() {
    let (_dir, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let overlay = store
        .create_overlay(user.id, "maps", OverlayKind::Workshop)
        .await
        .unwrap();
    let added = store
        .add_workshop_sources(
            overlay.id,
            &[(10, false, "A".into()), (20, true, "Coll".into())],
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    let again = store
        .add_workshop_sources(overlay.id, &[(10, false, "A".into())])
        .await
        .unwrap();
    assert_eq!(again, 0, "duplicates are ignored");
    let item = |id, via| WorkshopItem {
        overlay_id: overlay.id,
        item_id: id,
        via,
        title: format!("item {id}"),
        file_size: 1,
        time_updated: 1,
        state: "ok".into(),
        error: None,
    };
    for i in [item(10, None), item(21, Some(20)), item(22, Some(20))] {
        store.put_workshop_item(&i).await.unwrap();
    }
    store
        .keep_workshop_items(overlay.id, &[10, 21])
        .await
        .unwrap();
    let ids = |items: Vec<WorkshopItem>| items.iter().map(|i| i.item_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.workshop_items(overlay.id).await.unwrap()),
        [10, 21]
    );
    assert!(store.remove_workshop_source(overlay.id, 20).await.unwrap());
    assert_eq!(
        ids(store.workshop_items(overlay.id).await.unwrap()),
        [10],
        "a removed collection takes its items along"
    );
    let sources = store.workshop_sources(overlay.id).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert!(!store.remove_workshop_source(overlay.id, 20).await.unwrap());

    let locks = [format!("overlay:{}", overlay.id)];
    let queued = async |store: &Store| {
        let mut write = store.write().await.unwrap();
        write.queued_job("overlay.build", &locks).await.unwrap()
    };
    assert_eq!(queued(&store).await, None);
    let job = store
        .create_job(&NewJob {
            overlay_id: Some(overlay.id),
            ..job("overlay.build", &locks)
        })
        .await
        .unwrap();
    let found = queued(&store).await;
    assert_eq!(
        found.map(|j| (j.id, j.overlay_id)),
        Some((job.id, Some(overlay.id)))
    );
}

#[tokio::test]
async fn a_script_is_saved_with_its_overlay_and_a_scratch_request_lasts_one_build() {
    let (_dir, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let overlay = store
        .create_overlay(user.id, "sm", OverlayKind::Script)
        .await
        .unwrap();
    assert_eq!(store.overlay_script(overlay.id).await.unwrap(), None);
    assert_eq!(store.take_script_run(overlay.id).await.unwrap(), None);
    assert!(matches!(
        store.request_script_from_scratch(overlay.id).await,
        Err(StoreError::Conflict(_))
    ));
    let edit = ScriptEdit {
        script: "echo one",
        description: "first",
        from_previous: true,
    };
    store.put_overlay_script(overlay.id, edit).await.unwrap();
    store
        .put_overlay_script(
            overlay.id,
            ScriptEdit {
                script: "echo two",
                ..edit
            },
        )
        .await
        .unwrap();
    let saved = store.overlay_script(overlay.id).await.unwrap().unwrap();
    assert_eq!(
        (saved.script.as_str(), saved.description.as_str()),
        ("echo two", "first")
    );
    assert!(saved.from_previous && !saved.next_from_scratch);
    let run = |from_scratch| ScriptRun {
        script: "echo two".into(),
        from_scratch,
    };
    assert_eq!(
        store.take_script_run(overlay.id).await.unwrap(),
        Some(run(false)),
        "builds on the previous version"
    );
    store.request_script_from_scratch(overlay.id).await.unwrap();
    assert_eq!(
        store.take_script_run(overlay.id).await.unwrap(),
        Some(run(true))
    );
    assert_eq!(
        store.take_script_run(overlay.id).await.unwrap(),
        Some(run(false)),
        "only the next build starts from scratch"
    );
    store.delete_overlay(overlay.id).await.unwrap();
    assert_eq!(store.overlay_script(overlay.id).await.unwrap(), None);
}

#[tokio::test]
async fn seeding_a_script_overlay_twice_creates_it_once_and_changes_nothing() {
    let (_dir, store) = store().await;
    assert_eq!(store.first_admin().await.unwrap(), None);
    store.create_user("bob", "h", false).await.unwrap();
    let admin = store.create_user("alice", "h", true).await.unwrap();
    store.create_user("carol", "h", true).await.unwrap();
    assert_eq!(store.first_admin().await.unwrap().unwrap().id, admin.id);
    // A files overlay of the same name is another overlay.
    store
        .create_overlay(admin.id, "tickrate", OverlayKind::Files)
        .await
        .unwrap();
    let edit = ScriptEdit {
        script: "echo tick",
        description: "100 tick",
        from_previous: false,
    };
    let created = store
        .seed_script_overlay(admin.id, "tickrate", edit)
        .await
        .unwrap()
        .expect("created");
    assert!(created.shared);
    assert_eq!(created.kind, OverlayKind::Script);
    let changed = ScriptEdit {
        script: "echo changed",
        ..edit
    };
    assert_eq!(
        store
            .seed_script_overlay(admin.id, "tickrate", changed)
            .await
            .unwrap(),
        None
    );
    let script = store.overlay_script(created.id).await.unwrap().unwrap();
    assert_eq!(script.script, "echo tick", "an existing script is kept");
    assert_eq!(
        store
            .overlays_of_kind(OverlayKind::Script)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_generation_counts_committed_changes_but_not_bookkeeping() {
    let (_dir, store) = store().await;
    let start = store.generation();
    let user = store.create_user("alice", "x", false).await.unwrap();
    let after_user = store.generation();
    assert!(after_user > start, "a committed write transaction counts");

    let write = store.write().await.unwrap();
    drop(write);
    assert_eq!(store.generation(), after_user, "a rolled back one does not");

    store
        .create_session(&left4me_store::NewSessionRow {
            token_hash: "h",
            user_id: user.id,
            csrf_token: "c",
            ttl_secs: 60,
            user_agent: "",
            address: "",
        })
        .await
        .unwrap();
    let after_session = store.generation();
    assert!(after_session > after_user, "a session opened counts");
    store.delete_session("h").await.unwrap();
    let after_sign_out = store.generation();
    assert!(after_sign_out > after_session, "a session ended counts");

    let job = store.create_job(&job("check", &[])).await.unwrap();
    let after_job = store.generation();
    store.set_job_progress(job.id, 1, 2).await.unwrap();
    store.append_job_log(job.id, "out", "line").await.unwrap();
    assert_eq!(
        store.generation(),
        after_job,
        "a job's progress and log lines are bookkeeping"
    );
    store
        .finish_job(job.id, JobState::Succeeded, None)
        .await
        .unwrap();
    assert!(store.generation() > after_job, "a job's end counts");
}

/// A copy taken while another task keeps committing is one consistent
/// moment: SQLite finds nothing wrong in it, it holds every row committed
/// before it began, and the rows it holds have no gaps.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_taken_while_writes_go_on_is_whole_and_consistent() {
    let (dir, store) = store().await;
    let owner = store.create_user("alice", "hash", true).await.unwrap().id;
    let writing = tokio::spawn({
        let store = store.clone();
        async move {
            let mut committed = 0u64;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while tokio::time::Instant::now() < deadline {
                let mut write = store.write().await.unwrap();
                write
                    .record_activity(
                        Some(owner),
                        "alice",
                        None,
                        "test",
                        &format!("row {committed}"),
                    )
                    .await
                    .unwrap();
                write.commit().await.unwrap();
                committed += 1;
            }
            committed
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let reader = |path: std::path::PathBuf| async move {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    };
    let live = reader(dir.path().join("left4me.db")).await;
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity WHERE kind = 'test'")
        .fetch_one(&live)
        .await
        .unwrap();
    let copy = dir.path().join("copy.db");
    store.copy_to(&copy).await.unwrap();
    let committed = writing.await.unwrap();
    assert!(!dir.path().join("copy.partial").exists());

    let copied = reader(copy).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&copied)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM activity WHERE kind = 'test' ORDER BY id")
            .fetch_all(&copied)
            .await
            .unwrap();
    assert!(
        i64::try_from(rows.len()).unwrap() >= before,
        "every row committed before the copy began: {} < {before}",
        rows.len()
    );
    assert!(rows.len() as u64 <= committed);
    for (n, row) in rows.iter().enumerate() {
        assert_eq!(row, &format!("row {n}"), "no row missing in between");
    }
}

#[tokio::test]
async fn a_month_of_history_stays_within_its_bound_and_reads_back_by_tier() {
    use left4me_store::{MAX_ROWS_PER_SERVER, Observed, TIERS};
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    let server = store
        .create_server(&new_server(user.id, bp.id, "coop"))
        .await
        .unwrap();
    // 40 days of a minute's observations every 5 minutes: 2 players, 6
    // for the last 45 minutes, CPU 10 %, memory growing.
    let start = 1_700_000_000 - 1_700_000_000 % 86_400;
    let end = start + 40 * 86_400;
    let mut at = start;
    while at < end {
        let players = if at >= end - 2700 { 6 } else { 2 };
        let mut seen = Observed::default();
        for _ in 0..12 {
            seen.add(players, Some(10.0), Some((at - start) / 60));
        }
        store
            .record_history(at, &[(server.id, seen)])
            .await
            .unwrap();
        at += 300;
    }
    // A server deleted since it was seen is left out; the others are kept.
    store
        .record_history(end, &[(server.id + 1000, Observed::default())])
        .await
        .expect("a deleted server's minute is no error");
    assert_eq!(store.history_rows(server.id + 1000).await.unwrap(), 0);
    let rows = store.history_rows(server.id).await.unwrap();
    assert!(rows <= MAX_ROWS_PER_SERVER, "{rows}");
    assert_eq!(rows, MAX_ROWS_PER_SERVER, "every slot used once wrapped");

    let day = store.history(server.id, TIERS[0], end).await.unwrap();
    assert_eq!(
        day.len(),
        287,
        "a day in 5-minute buckets (the span is open at its start)"
    );
    assert!(day.windows(2).all(|w| w[0].at < w[1].at), "oldest first");
    assert_eq!(day.last().unwrap().players_max, 6);
    assert_eq!(day.first().unwrap().players_avg, 2.0);
    assert_eq!(day.first().unwrap().cpu_avg, Some(10.0));
    let week = store.history(server.id, TIERS[1], end).await.unwrap();
    assert_eq!(week.len(), 335);
    // The last 30-minute bucket at 6 players; the one before half at 2,
    // half at 6.
    let last = week.last().unwrap();
    assert_eq!((last.players_max, last.players_avg), (6, 6.0));
    let before = &week[week.len() - 2];
    assert_eq!((before.players_max, before.players_avg), (6, 4.0));
    let month = store.history(server.id, TIERS[2], end).await.unwrap();
    assert_eq!(month.len(), 371);
    assert!(month.first().unwrap().at > end - 31 * 86_400);
    assert_eq!(
        month.last().unwrap().memory_max,
        (end - 300 - start) / 60,
        "the largest memory of the bucket"
    );

    // A server idle for longer than a month has nothing left to show,
    // and pruning leaves no rows.
    let later = end + 32 * 86_400;
    assert!(
        store
            .history(server.id, TIERS[2], later)
            .await
            .unwrap()
            .is_empty()
    );
    store.prune_history(later).await.unwrap();
    assert_eq!(store.history_rows(server.id).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_made_at_once_never_share_a_port() {
    let (_d, store) = store().await;
    let user = store.create_user("alice", "h", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "coop").await.unwrap();
    // 40 at once for 30 ports, some asking for a port by number.
    let tasks: Vec<_> = (0..40u16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = format!("s{i}");
                store
                    .create_server(&NewServer {
                        owner_id: user.id,
                        blueprint_id: bp.id,
                        name: &name,
                        hostname: "h",
                        port: (i % 4 == 0).then_some(31_000 + i / 2),
                        port_range: 31_000..=31_029,
                        rcon_password: "pw",
                        held_elsewhere: &[],
                    })
                    .await
            })
        })
        .collect();
    let mut ports = std::collections::HashSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(server) => assert!(ports.insert(server.port), "port {} twice", server.port),
            Err(StoreError::Conflict(why)) => {
                assert!(
                    why.contains("is in use") || why.contains("already used"),
                    "{why}"
                );
                refused += 1;
            }
            Err(other) => panic!("not a clear answer: {other}"),
        }
    }
    assert_eq!(ports.len() + refused, 40);
    assert!(ports.len() <= 30 && ports.len() >= 20, "{}", ports.len());
    let stored: Vec<i64> = store
        .servers(None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.port)
        .collect();
    assert_eq!(
        stored.len(),
        ports.len(),
        "what was answered is what is stored"
    );
}
