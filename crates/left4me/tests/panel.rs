//! The web panel over HTTP: the real server on 127.0.0.1:0, a fresh state
//! root and SQLite file, the built-in supervisor and the srcds simulator.

mod common;

use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_starts_streams_its_job_log_stops_and_is_deleted() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "sv_cheats 0").await;
    let port = free_port();
    let server = create_server(&client, "alpha", bp, port).await;

    let job = action(&client, server, "start").await;
    let events = job_events(&client, job, None).await;
    let (_, page) = client.get_text(&format!("/jobs/{job}")).await;
    assert!(
        page.contains(&format!("Job #{job}: start server")),
        "{page}"
    );
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "line")
        .map(|e| e.2.as_str())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("mounting the overlay")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ready: alpha host on c1m1_hotel")),
        "{lines:?}"
    );
    assert_eq!(events.last().unwrap().1, "end");
    assert_eq!(events.last().unwrap().2, "succeeded");
    let ids: Vec<i64> = events.iter().filter_map(|e| e.0).collect();
    assert_eq!(
        ids,
        (1..=i64::try_from(ids.len()).unwrap()).collect::<Vec<_>>(),
        "contiguous ids"
    );

    let info = srcds_protocol::a2s::info(a2s_addr(port), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(info.name, "alpha host");
    let (status, page) = client.get_text(&format!("/servers/{server}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("steam://connect/127.0.0.1:{port}")),
        "{page}"
    );
    assert!(page.contains("state-running"), "{page}");

    act_ok(&client, server, "stop").await;
    act_ok(&client, server, "delete").await;
    assert_eq!(
        client.get(&format!("/servers/{server}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !app.root
            .path()
            .join(format!("instances/server-{server}"))
            .exists()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_stream_resumes_after_last_event_id_without_loss_or_repeats() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "beta", bp, free_port()).await;
    let job = action(&client, server, "start").await;
    let all = job_events(&client, job, None).await;
    let total = all.iter().filter(|e| e.1 == "line").count();
    assert!(total > 6);

    let resumed = job_events(&client, job, Some(4)).await;
    let ids: Vec<i64> = resumed.iter().filter_map(|e| e.0).collect();
    assert_eq!(ids, (5..=i64::try_from(total).unwrap()).collect::<Vec<_>>());
    assert_eq!(resumed.last().unwrap().1, "end");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_start_midway_stops_the_server_again() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    // The simulator stays silent for a minute: the job waits for it.
    let bp = create_blueprint(&client, "Slow", "sim_boot_delay_ms 60000").await;
    let server = create_server(&client, "gamma", bp, free_port()).await;
    let job = action(&client, server, "start").await;
    let page = format!("/jobs/{job}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, html) = client.get_text(&page).await;
        if html.contains("waiting for the server to answer") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never reached the wait"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A stop clicked meanwhile waits its turn, and its page says for what.
    let stop = action(&client, server, "stop").await;
    let (_, html) = client.get_text(&format!("/jobs/{stop}")).await;
    assert!(
        html.contains(&format!(
            "Waits for <a href=\"/jobs/{job}\">job #{job} (start server, running)</a>"
        )),
        "{html}"
    );
    let res = client.post(&format!("/jobs/{job}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let events = job_events(&client, job, None).await;
    assert_eq!(events.last().unwrap().2, "cancelled");
    assert!(
        events
            .iter()
            .any(|e| e.2.contains("stopping the server again"))
    );
    assert_eq!(
        job_events(&client, stop, None).await.last().unwrap().2,
        "succeeded"
    );
    let (_, activity) = client
        .get_text(&format!("/servers/{server}/activity"))
        .await;
    assert!(
        activity.contains(&format!("cancelled job #{job} (start server")),
        "{activity}"
    );
    // Cancelling again, too late, says so.
    let res = client.post(&format!("/jobs/{job}/cancel"), &[]).await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = client.get_text(&location).await;
    assert!(
        html.contains("The job had already ended (cancelled)"),
        "{html}"
    );
    let status = app.root.status(&format!("server-{server}"));
    assert_eq!(status["running"], false, "{status}");
    assert_eq!(status["mounted"], false, "{status}");
    assert!(
        !app.root
            .path()
            .join(format!("instances/server-{server}/start-on-boot"))
            .exists(),
        "not wanted after a reboot either"
    );
    let (_, html) = client.get_text("/").await;
    assert!(
        !html.contains("wanted: running"),
        "it is wanted stopped, so the reconciler leaves it: {html}"
    );
    app.stop().await;
}

/// Waits until the job's page shows `text`.
async fn wait_job_text(client: &Client, job: i64, text: &str) {
    let page = format!("/jobs/{job}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, html) = client.get_text(&page).await;
        if html.contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} never showed {text:?}:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_start_of_a_running_server_leaves_it_running() {
    let root = TestRoot::new();
    let config = test_config(&root);
    seed_user(&config, ADMIN.0, ADMIN.1, true).await;
    let mut app = App::spawn_waiting(root, config, Duration::from_secs(2)).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    // Silent for a minute: the first start gives up waiting, the server runs on.
    let bp = create_blueprint(&client, "Slow", "sim_boot_delay_ms 60000").await;
    let server = create_server(&client, "delta", bp, free_port()).await;
    let first = action(&client, server, "start").await;
    let events = job_events(&client, first, None).await;
    assert_eq!(events.last().unwrap().2, "failed");
    assert!(
        events
            .iter()
            .any(|e| e.2.contains("did not answer queries within 2 s")),
        "{events:?}"
    );
    let instance = format!("server-{server}");
    assert_eq!(app.root.status(&instance)["running"], true);

    let second = action(&client, server, "start").await;
    wait_job_text(&client, second, "waiting for the server to answer").await;
    let res = client.post(&format!("/jobs/{second}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let events = job_events(&client, second, None).await;
    assert_eq!(events.last().unwrap().2, "cancelled");
    assert!(
        events
            .iter()
            .any(|e| e.2.contains("already running and keeps running")),
        "{events:?}"
    );
    assert_eq!(app.root.status(&instance)["running"], true, "still running");
    let (_, html) = client.get_text("/").await;
    assert!(!html.contains("wanted: stopped"), "still wanted: {html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crashes_while_a_start_waits_show_in_its_log() {
    let mut app = App::spawn_configured(|c| c.max_crashes = 50).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(
        &client,
        "Crashy",
        "sim_boot_delay_ms 60000\nsim_crash_after_ms 200",
    )
    .await;
    let server = create_server(&client, "crashy", bp, free_port()).await;
    let job = action(&client, server, "start").await;
    wait_job_text(&client, job, "the server exited and is restarted (restart ").await;
    let res = client.post(&format!("/jobs/{job}/cancel"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        job_events(&client, job, None).await.last().unwrap().2,
        "cancelled"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_without_the_csrf_token_are_refused() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let raw = |path: &str, form: &[(&str, &str)]| {
        client
            .http
            .post(format!("{}{path}", client.base))
            .form(form)
            .send()
    };
    let res = raw("/blueprints", &[("name", "x")]).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = raw("/blueprints", &[("name", "x"), ("csrf", &"0".repeat(64))])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("came from another site"));
    let res = raw("/logout", &[]).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The token of another session does not work either.
    let other = app.login(ADMIN.0, ADMIN.1).await;
    let other_token = other.csrf("/account").await;
    let res = client
        .post_with_csrf("/blueprints", &[("name", "x")], &other_token)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A login form posted without the pre-session cookie is refused too.
    let fresh = reqwest::Client::new();
    let res = fresh
        .post(app.url("/login"))
        .form(&[
            ("csrf", "a".repeat(64).as_str()),
            ("username", ADMIN.0),
            ("password", ADMIN.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, list) = client.get_text("/blueprints").await;
    assert!(!list.contains("/blueprints/1\""), "nothing was created");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_slowed_per_address_and_username() {
    let mut app = App::spawn().await;
    let client = app.client();
    for _ in 0..5 {
        let res = client.login(ADMIN.0, "wrong password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("Wrong username or password")
        );
    }
    let res = client.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("Too many failed logins"));
    // Another username from the same address is not locked yet.
    seed_user(&app.config, "carol", "carol-password-1", false).await;
    let res = app.client().login("carol", "carol-password-1").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_ip_limit_counts_each_client() {
    let mut app = App::spawn_configured(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let base = app.client().base;
    let mallory = Client::forwarded_for(&base, "203.0.113.5");
    // Different usernames, so only the per-address limit applies.
    for i in 0..left4me_web::auth::ADDRESS_FREE_FAILURES {
        let res = mallory.login(&format!("guess{i}"), "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = mallory.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not locked out.
    let res = Client::forwarded_for(&base, "203.0.113.6")
        .login(ADMIN.0, ADMIN.1)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.stop().await;

    // Without the setting the header is ignored: forging it evades nothing.
    let mut app = App::spawn().await;
    let base = app.client().base;
    for i in 0..left4me_web::auth::ADDRESS_FREE_FAILURES {
        let forged = Client::forwarded_for(&base, &format!("198.51.100.{i}"));
        let res = forged.login(&format!("guess{i}"), "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = Client::forwarded_for(&base, "198.51.100.200")
        .login(ADMIN.0, ADMIN.1)
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_see_and_change_only_what_they_own() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-12").await;

    let bp = create_blueprint(&alice, "Alice's", "").await;
    let server = create_server(&alice, "alices-server", bp, free_port()).await;
    let job = action(&alice, server, "stop").await;

    for path in [
        format!("/servers/{server}"),
        format!("/blueprints/{bp}"),
        format!("/jobs/{job}"),
    ] {
        assert_eq!(
            bob.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(alice.get(&path).await.status(), StatusCode::OK, "{path}");
        assert_eq!(admin.get(&path).await.status(), StatusCode::OK, "{path}");
    }
    let res = bob
        .post(
            &format!("/servers/{server}/action"),
            &[("action", "delete")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, dashboard) = bob.get_text("/").await;
    assert!(!dashboard.contains("alices-server"));
    // Bob cannot build a server on Alice's blueprint.
    let res = bob
        .post(
            "/servers",
            &[
                ("name", "x"),
                ("hostname", "x"),
                ("blueprint_id", &bp.to_string()),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nor cancel her job.
    assert_eq!(
        bob.post(&format!("/jobs/{job}/cancel"), &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    // Non-admins have no user administration.
    assert_eq!(bob.get("/users").await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Posts a form and expects a redirect (the action was taken).
async fn post_ok(client: &Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let res = client.post(path, fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
    res
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_overlays_and_blueprints_are_used_by_all_and_changed_by_their_owner() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-12").await;

    let maps = create_overlay(&alice, "Alice maps").await;
    let res = upload(&alice, maps, "", vec![("motd.txt", b"hi".to_vec())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let coop = create_blueprint(&alice, "Alice coop", "sv_cheats 0").await;
    post_ok(
        &alice,
        &format!("/blueprints/{coop}"),
        &[
            ("name", "Alice coop"),
            ("config", "sv_cheats 0"),
            ("add_overlay", &maps.to_string()),
        ],
    )
    .await;

    // Private: Bob sees neither, anywhere.
    for path in [format!("/overlays/{maps}"), format!("/blueprints/{coop}")] {
        assert_eq!(
            bob.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert!(!bob.get_text("/overlays").await.1.contains("Alice maps"));
    // Sharing a blueprint whose overlay is private is refused, naming it.
    let res = alice
        .post(&format!("/blueprints/{coop}/share"), &[("shared", "true")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("Alice maps is private"));

    post_ok(
        &alice,
        &format!("/overlays/{maps}/share"),
        &[("shared", "true")],
    )
    .await;
    post_ok(
        &alice,
        &format!("/blueprints/{coop}/share"),
        &[("shared", "true")],
    )
    .await;

    // Shared: in Bob's lists and pickers, marked with the owner.
    let (_, list) = bob.get_text("/overlays").await;
    assert!(
        list.contains("Alice maps") && list.contains("alice"),
        "{list}"
    );
    let (_, dashboard) = bob.get_text("/").await;
    assert!(dashboard.contains("Alice coop (alice)"), "{dashboard}");
    // Bob may look and download, not change.
    let (status, page) = bob.get_text(&format!("/overlays/{maps}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("upload-form") && !page.contains("share-form"));
    let res = bob
        .get(&format!("/overlays/{maps}/download?path=motd.txt"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refused = [
        (
            format!("/overlays/{maps}/mkdir"),
            vec![("dir", ""), ("name", "x")],
        ),
        (
            format!("/overlays/{maps}/remove"),
            vec![("dir", ""), ("path", "motd.txt")],
        ),
        (format!("/overlays/{maps}/share"), vec![("shared", "false")]),
        (format!("/overlays/{maps}/delete"), vec![]),
        (format!("/blueprints/{coop}"), vec![("name", "mine now")]),
        (
            format!("/blueprints/{coop}/share"),
            vec![("shared", "false")],
        ),
        (format!("/blueprints/{coop}/delete"), vec![]),
    ];
    for (path, fields) in &refused {
        let res = bob.post(path, fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("only its owner and admins")
        );
    }
    let res = upload(&bob, maps, "", vec![("evil.txt", b"x".to_vec())]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, page) = bob.get_text(&format!("/blueprints/{coop}")).await;
    assert!(page.contains("Copy into my blueprints") && !page.contains("Delete blueprint"));

    // Bob builds a server on it; now Alice cannot take either share back.
    let server = create_server(&bob, "bobs-server", coop, free_port()).await;
    let res = alice
        .post(&format!("/blueprints/{coop}/share"), &[("shared", "false")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("bobs-server (bob)"));
    let res = alice
        .post(&format!("/overlays/{maps}/share"), &[("shared", "false")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("Alice coop (alice)"));
    let (_, page) = bob.get_text(&format!("/servers/{server}")).await;
    assert!(
        page.contains("Alice coop"),
        "the server keeps its blueprint"
    );

    // Bob copies the blueprint: his own, private, with the same overlays.
    let res = post_ok(&bob, &format!("/blueprints/{coop}/copy"), &[]).await;
    let copy = Client::redirect_id(&res);
    let (_, page) = bob.get_text(&format!("/blueprints/{copy}")).await;
    assert!(page.contains("Alice coop (copy)") && page.contains("Alice maps"));
    assert!(page.contains("Delete blueprint"), "he owns the copy");
    // The overlay's page names only the blueprints its reader may see.
    let (_, page) = alice.get_text(&format!("/overlays/{maps}")).await;
    assert!(
        page.contains("Used by: Alice coop.") && !page.contains("(copy)"),
        "{page}"
    );
    // He cannot put an overlay he cannot see into it.
    let secret = create_overlay(&alice, "Alice secret").await;
    let res = bob
        .post(
            &format!("/blueprints/{copy}"),
            &[("name", "mine"), ("add_overlay", &secret.to_string())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Admins change anyone's items.
    let res = upload(&admin, maps, "", vec![("admin.txt", b"a".to_vec())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, activity) = admin.get_text("/activity?kind=overlay.share").await;
    assert!(activity.contains("shared overlay Alice maps"), "{activity}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_members_operate_or_watch_as_their_role_allows() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-12").await;
    let bp = create_blueprint(&alice, "Coop", "").await;
    let server = create_server(&alice, "alices-server", bp, free_port()).await;
    let alices_job = act_ok(&alice, server, "stop").await;
    let bob_id = member_choice(&alice, server, "bob").await;
    let set_role = |role: &'static str| {
        let alice = alice.clone();
        let bob_id = bob_id.to_string();
        async move {
            post_ok(
                &alice,
                &format!("/servers/{server}/members"),
                &[("user_id", &bob_id), ("role", role)],
            )
            .await;
        }
    };
    let tabs = ["log", "console", "files", "activity"];
    let status_of = |path: String| {
        let bob = bob.clone();
        async move { bob.get(&path).await.status() }
    };

    // Not a member: nothing to see.
    assert_eq!(
        status_of(format!("/servers/{server}")).await,
        StatusCode::NOT_FOUND
    );

    // A viewer: the server is on his dashboard; state, players and log.
    set_role("viewer").await;
    let (_, dashboard) = bob.get_text("/").await;
    assert!(dashboard.contains("alices-server") && dashboard.contains("(you: viewer)"));
    let (status, page) = bob.get_text(&format!("/servers/{server}")).await;
    assert_eq!(status, StatusCode::OK);
    for hidden in [
        "server-actions",
        "RCON password",
        "Settings",
        "add-member",
        "/console",
    ] {
        assert!(!page.contains(hidden), "a viewer sees no {hidden}");
    }
    assert_eq!(
        status_of(format!("/servers/{server}/log")).await,
        StatusCode::OK
    );
    for tab in &tabs[1..] {
        let status = status_of(format!("/servers/{server}/{tab}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{tab}");
    }
    assert_eq!(
        status_of(format!("/jobs/{alices_job}")).await,
        StatusCode::OK
    );
    for (path, fields) in [
        (
            format!("/servers/{server}/action"),
            vec![("action", "start")],
        ),
        (
            format!("/servers/{server}/console"),
            vec![("command", "status")],
        ),
        (format!("/jobs/{alices_job}/cancel"), vec![]),
    ] {
        let res = bob.post(&path, &fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // An operator: start, stop, restart, console, log, files, activity;
    // never settings, reset, delete or members.
    set_role("operator").await;
    let (_, page) = bob.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains("server-actions") && !page.contains("Settings"));
    assert!(!page.contains("value=\"delete\"") && !page.contains("value=\"reset\""));
    for tab in tabs {
        assert_eq!(
            status_of(format!("/servers/{server}/{tab}")).await,
            StatusCode::OK,
            "{tab}"
        );
    }
    let bobs_job = act_ok(&bob, server, "stop").await;
    for (path, fields) in [
        (
            format!("/servers/{server}/action"),
            vec![("action", "delete")],
        ),
        (
            format!("/servers/{server}/action"),
            vec![("action", "reset")],
        ),
        (
            format!("/servers/{server}/settings"),
            vec![("name", "mine"), ("hostname", "h"), ("blueprint_id", "1")],
        ),
        (
            format!("/servers/{server}/members"),
            vec![("user_id", "1"), ("role", "operator")],
        ),
    ] {
        let res = bob.post(&path, &fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} {fields:?}");
        assert!(res.text().await.unwrap().contains("owner and admins"));
    }
    // Only users that exist and are active become members.
    let res = alice
        .post(
            &format!("/servers/{server}/members"),
            &[("user_id", "999999"), ("role", "viewer")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The activity log names who did what.
    let (_, activity) = alice.get_text(&format!("/servers/{server}/activity")).await;
    assert!(
        activity.contains("made bob an operator of server alices-server"),
        "{activity}"
    );
    let (_, job) = alice.get_text(&format!("/jobs/{bobs_job}")).await;
    assert!(job.contains("bob"), "{job}");

    // Removed: gone from his dashboard, and every page is "not found".
    set_role("remove").await;
    assert!(!bob.get_text("/").await.1.contains("alices-server"));
    for tab in tabs {
        let status = status_of(format!("/servers/{server}/{tab}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{tab}");
    }
    assert_eq!(
        status_of(format!("/jobs/{bobs_job}")).await,
        StatusCode::OK,
        "his own job"
    );
    app.stop().await;
}

/// A user's id, from the "add member" choices on a server's page.
async fn member_choice(owner: &Client, server: i64, name: &str) -> i64 {
    let (_, page) = owner.get_text(&format!("/servers/{server}")).await;
    let at = page
        .find(&format!("\">{name}</option>"))
        .unwrap_or_else(|| panic!("{name} offered as a member: {page}"));
    let value = page[..at].rfind("value=\"").unwrap() + "value=\"".len();
    page[value..at].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_administered_safely() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    // Validation errors keep the input.
    let res = admin
        .post("/users", &[("username", "dave"), ("password", "short")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("use at least 10 characters") && html.contains("value=\"dave\""),
        "{html}"
    );
    // Never yourself.
    let res = admin.post("/users/1/delete", &[]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = admin.post("/users/1/active", &[("active", "false")]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Never a user who owns something.
    let erin = add_user(&app, &admin, "erin", "erin-password-1").await;
    create_blueprint(&erin, "Erin's", "").await;
    let res = admin.post("/users/2/delete", &[]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("still owns 1 blueprint"));
    // Deactivating ends her sessions.
    let res = admin.post("/users/2/active", &[("active", "false")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = erin.get("/").await;
    assert_eq!(res.headers()["location"], "/login");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_password_ends_the_other_sessions() {
    let mut app = App::spawn().await;
    let first = app.login(ADMIN.0, ADMIN.1).await;
    let second = app.login(ADMIN.0, ADMIN.1).await;
    let res = first
        .post(
            "/account/password",
            &[
                ("current", ADMIN.1),
                ("password", "a-new-password-2"),
                ("confirm", "a-new-password-2"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        first.get("/").await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        second.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "the other one ends"
    );
    assert_eq!(
        app.client()
            .login(ADMIN.0, "a-new-password-2")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_port_range_is_a_clear_409() {
    let port = free_port();
    let mut app = App::spawn_configured(|c| {
        c.port_range_start = port;
        c.port_range_end = port;
    })
    .await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    assert_eq!(
        post_server(&client, "one", bp, "").await.status(),
        StatusCode::SEE_OTHER
    );
    let res = post_server(&client, "two", bp, "").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("every port from {port} to {port} is in use")),
        "{html}"
    );
    assert!(html.contains("value=\"two\""), "the form keeps its input");
    let _ = bp;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_ok() {
    let mut app = App::spawn().await;
    let res = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "ok\n");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_page_creates_the_first_admin_once_and_sigterm_is_graceful() {
    let root = TestRoot::new();
    let port = free_port();
    let panel = PanelProcess::start(&root, port);
    let path = panel.setup_path();
    let client = Client::new(&format!("http://{}", panel.addr));
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let (status, html) = client.get_text(&path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_in(&html);
    let res = client
        .post_with_csrf(
            "/setup",
            &[
                ("token", &token),
                ("username", "root-admin"),
                ("password", "short"),
                ("confirm", "short"),
            ],
            &csrf,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation errors re-render"
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("use at least 10 characters")
    );
    let res = client
        .post_with_csrf(
            "/setup",
            &[
                ("token", &token),
                ("username", "root-admin"),
                ("password", "first-admin-pw"),
                ("confirm", "first-admin-pw"),
            ],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = client.get_text("/").await;
    assert!(dashboard.contains("root-admin"), "logged in");
    let (status, html) = client.get_text(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the token works once");
    assert!(
        html.contains("was already used or has been replaced"),
        "{html}"
    );
    assert!(
        html.contains("left4me user create") && html.contains("left4me setup-url"),
        "says what to do: {html}"
    );
    panel.terminate();
}

/// An admin's `sudo left4me migrate` or `user create` on a packaged
/// install must not leave a root-owned database behind: run as root on a
/// state root that belongs to another user, they run as that user.
#[test]
fn admin_commands_run_as_root_leave_the_database_to_the_state_owner() {
    use std::os::unix::fs::MetadataExt;
    let root = TestRoot::new();
    let nobody = 65534;
    std::os::unix::fs::chown(root.path(), Some(nobody), Some(nobody)).unwrap();
    let out = root.run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let newest = left4me_store::Store::newest_migration();
    assert!(
        stdout(&out).contains(&format!("is up to date (migration {newest})")),
        "{}",
        stdout(&out)
    );
    let out = root
        .cmd()
        .args(["user", "create", "boss", "--admin"])
        .env("LEFT4ME_ADMIN_PASSWORD", "boss-password-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for entry in std::fs::read_dir(root.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("left4me.db") {
            let meta = entry.metadata().unwrap();
            assert_eq!((meta.uid(), meta.gid()), (nobody, nobody), "{name}");
        }
    }
    assert!(root.path().join("left4me.db").exists());
}

/// `left4me setup-url` on the host issues a fresh link while the panel
/// runs (the earlier one stops working), and refuses once a user exists.
#[tokio::test(flavor = "multi_thread")]
async fn setup_url_issues_a_fresh_link_that_the_running_panel_accepts() {
    let root = TestRoot::new();
    let panel = PanelProcess::start(&root, free_port());
    let printed = panel.setup_path();
    let setup_url = || {
        root.cmd()
            .arg("setup-url")
            .env("LEFT4ME_LISTEN", &panel.addr)
            .output()
            .unwrap()
    };
    let out = setup_url();
    assert!(out.status.success(), "{}", stderr(&out));
    let url = stdout(&out).trim().to_owned();
    let fresh = url
        .strip_prefix(&format!(
            "http://{}",
            panel.addr.replace("127.0.0.1", "localhost")
        ))
        .unwrap_or_else(|| panic!("a link to the panel: {url}"))
        .to_owned();
    let client = Client::new(&format!("http://{}", panel.addr));
    let (status, html) = client.get_text(&printed).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the older link is replaced");
    assert!(html.contains("has been replaced"), "{html}");
    let (status, html) = client.get_text(&fresh).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let res = client
        .post_with_csrf(
            "/setup",
            &[
                ("token", fresh.split("token=").nth(1).unwrap()),
                ("username", "first"),
                ("password", "first-admin-pw"),
                ("confirm", "first-admin-pw"),
            ],
            &csrf_in(&html),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let out = setup_url();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("setup is done: users exist"),
        "{}",
        stderr(&out)
    );
    panel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_panels_log_has_no_secret_and_no_colour_codes() {
    let root = TestRoot::new();
    let panel = PanelProcess::start(&root, free_port());
    let path = panel.setup_path();
    let setup_token = path.split("token=").nth(1).unwrap().to_owned();
    let client = Client::new(&format!("http://{}", panel.addr));
    let password = "boss-password-1";
    let csrf = csrf_in(&client.get_text(&path).await.1);
    let res = client
        .post_with_csrf(
            "/setup",
            &[
                ("token", &setup_token),
                ("username", "boss"),
                ("password", password),
                ("confirm", password),
            ],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = res.headers()["set-cookie"].to_str().unwrap();
    let session = session
        .strip_prefix("left4me_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let wrong = "a-wrong-password-9";
    let res = Client::new(&client.base).login("boss", wrong).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "alpha", bp, free_port()).await;
    let (_, html) = client.get_text(&format!("/servers/{server}")).await;
    let rcon = html
        .split("<code id=\"rcon-password\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    let csrf = csrf_in(&html);
    // RCON to a server that is not running: an error, logged or not.
    let reply = console(&client, server, "status").await;
    assert!(reply["error"].is_string(), "{reply}");
    let hash = {
        let store = left4me_web::open_store(&test_config(&root)).await.unwrap();
        let user = store.user_by_name("boss").await.unwrap().unwrap();
        store.close().await;
        user.password_hash.expose().to_owned()
    };
    let log_path = panel.log.clone();
    panel.terminate();

    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(
        log.contains("failed login") && log.contains("boss"),
        "{log}"
    );
    assert!(!log.contains("\x1b["), "no colour codes in a file: {log}");
    for (what, secret) in [
        ("the setup token", setup_token.as_str()),
        ("the password", password),
        ("the wrong password", wrong),
        ("the session token", &session),
        ("the CSRF token", &csrf),
        ("the RCON password", &rcon),
        ("the password hash", &hash),
        ("any password hash", "$argon2"),
    ] {
        assert!(!log.contains(secret), "{what} is in the log: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panel_killed_during_a_job_marks_it_interrupted_on_restart() {
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
    let bp = create_blueprint(&client, "Slow", "sim_boot_delay_ms 60000").await;
    let game_port = free_port();
    let server = create_server(&client, "delta", bp, game_port).await;
    let job = action(&client, server, "start").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !client
        .get_text(&format!("/jobs/{job}"))
        .await
        .1
        .contains("waiting for the server to answer")
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();

    let mut panel = PanelProcess::start(&root, port);
    // Sessions live in the database, so the browser is still logged in.
    let (_, html) = client.get_text(&format!("/jobs/{job}")).await;
    assert!(html.contains("id=\"job-state\">interrupted"), "{html}");
    // The game itself was not touched by the panel's death.
    let status = root.status(&format!("server-{server}"));
    assert_eq!(status["running"], true, "{status}");
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
}

async fn create_overlay(client: &Client, name: &str) -> i64 {
    let res = client.post("/overlays", &[("name", name)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Client::redirect_id(&res)
}

/// Posts a multipart upload (the CSRF token goes in the query string).
async fn upload(
    client: &Client,
    overlay: i64,
    dir: &str,
    files: Vec<(&str, Vec<u8>)>,
) -> reqwest::Response {
    let token = client.csrf("/account").await;
    let mut form = reqwest::multipart::Form::new().text("unpack", "on");
    for (name, bytes) in files {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    client
        .http
        .post(format!(
            "{}/overlays/{overlay}/upload?path={dir}&csrf={token}",
            client.base
        ))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, content) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_overlays_upload_browse_edit_download_and_zip() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_overlay(&client, "Configs").await;
    let res = upload(
        &client,
        overlay,
        "left4dead2/cfg",
        vec![
            ("server.cfg", b"sv_cheats 0\n".to_vec()),
            ("extra.cfg", b"echo hi\n".to_vec()),
        ],
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let archive = zip_of(&[
        ("left4dead2/addons/a.vpk", "vpk"),
        ("left4dead2/maps/b.bsp", "bsp"),
    ]);
    let res = upload(&client, overlay, "", vec![("content.zip", archive)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let dir = app.root.path().join(format!("overlays/{overlay}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("left4dead2/cfg/server.cfg")).unwrap(),
        "sv_cheats 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("left4dead2/addons/a.vpk")).unwrap(),
        "vpk"
    );
    assert!(
        !dir.join("content.zip").exists(),
        "zip archives are unpacked"
    );

    let (status, listing) = client
        .get_text(&format!("/overlays/{overlay}?path=left4dead2/cfg"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listing.contains("extra.cfg") && listing.contains("server.cfg"),
        "{listing}"
    );
    let res = client
        .get(&format!(
            "/overlays/{overlay}/download?path=left4dead2/cfg/extra.cfg"
        ))
        .await;
    assert_eq!(res.text().await.unwrap(), "echo hi\n");

    let res = client
        .post(
            &format!("/overlays/{overlay}/edit"),
            &[
                ("path", "left4dead2/cfg/server.cfg"),
                ("content", "sv_cheats 1\r\nsv_alltalk 1\r\n"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        std::fs::read_to_string(dir.join("left4dead2/cfg/server.cfg")).unwrap(),
        "sv_cheats 1\nsv_alltalk 1\n"
    );
    let res = client
        .post(
            &format!("/overlays/{overlay}/mkdir"),
            &[("dir", "left4dead2"), ("name", "scripts")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(dir.join("left4dead2/scripts").is_dir());
    let res = client
        .post(
            &format!("/overlays/{overlay}/move"),
            &[
                ("dir", ""),
                ("from", "left4dead2/cfg/extra.cfg"),
                ("to", "left4dead2/scripts/extra.cfg"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(dir.join("left4dead2/scripts/extra.cfg").exists());
    let res = client
        .post(
            &format!("/overlays/{overlay}/remove"),
            &[("dir", ""), ("path", "left4dead2/scripts")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!dir.join("left4dead2/scripts").exists());

    let res = client.get(&format!("/overlays/{overlay}/zip")).await;
    assert_eq!(res.headers()["content-type"], "application/zip");
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(
        names.iter().any(|n| n == "left4dead2/cfg/server.cfg"),
        "{names:?}"
    );
    assert!(zip.by_name("left4dead2/maps/b.bsp").is_ok());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn traversal_and_zip_slip_are_refused_and_write_nothing() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_overlay(&client, "Target").await;
    let dir = app.root.path().join(format!("overlays/{overlay}"));

    for bad in ["../evil.txt", "/abs.txt", "ok/../../evil.txt"] {
        let archive = zip_of(&[("fine.txt", "fine"), (bad, "evil")]);
        let res = upload(&client, overlay, "", vec![("bad.zip", archive)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let text = res.text().await.unwrap();
        assert!(
            text.contains("archive entry") && text.contains("rejected"),
            "{bad}: names the bad entry: {text}"
        );
        assert!(
            !dir.join("fine.txt").exists(),
            "a bad archive writes nothing ({bad})"
        );
    }
    assert!(!app.root.path().join("overlays/evil.txt").exists());
    assert!(!app.root.path().join("evil.txt").exists());

    let res = upload(&client, overlay, "..", vec![("x.cfg", b"x".to_vec())]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = client
        .post(
            &format!("/overlays/{overlay}/mkdir"),
            &[("dir", ""), ("name", "../x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("is not allowed"));
    let res = client
        .get(&format!(
            "/overlays/{overlay}/download?path=../../left4me.db"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = client
        .post(
            &format!("/overlays/{overlay}/edit"),
            &[("path", "/etc/passwd"), ("content", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A symlink planted in the overlay is never followed.
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let res = client
        .get(&format!("/overlays/{overlay}/download?path=etc/hostname"))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = upload(
        &client,
        overlay,
        "etc",
        vec![("hostname", b"pwned".to_vec())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_ne!(
        std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
        "pwned"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blueprint_preview_and_overlay_deletion_rules() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let first = create_overlay(&client, "First").await;
    let second = create_overlay(&client, "Second").await;
    let bp = create_blueprint(&client, "Versus", "mp_gamemode versus").await;
    let path = format!("/blueprints/{bp}");
    let first_s = first.to_string();
    let second_s = second.to_string();
    // Add both (first on top), expose both.
    client
        .post(
            &path,
            &[
                ("name", "Versus"),
                ("config", "mp_gamemode versus"),
                ("add_overlay", &first_s),
            ],
        )
        .await;
    let expose_first = format!("expose_{first}");
    let expose_second = format!("expose_{second}");
    let fields = [
        ("name", "Versus"),
        ("config", "mp_gamemode versus"),
        ("overlay", first_s.as_str()),
        (expose_first.as_str(), "on"),
        ("add_overlay", second_s.as_str()),
    ];
    assert_eq!(
        client.post(&path, &fields).await.status(),
        StatusCode::SEE_OTHER
    );
    let fields = [
        ("name", "Versus"),
        ("config", "mp_gamemode versus"),
        ("overlay", first_s.as_str()),
        (expose_first.as_str(), "on"),
        ("overlay", second_s.as_str()),
        (expose_second.as_str(), "on"),
    ];
    let res = client.post(&format!("{path}/preview"), &fields).await;
    assert_eq!(
        res.text().await.unwrap(),
        format!(
            "exec server_overlay_{second}\nexec server_overlay_{first}\nmp_gamemode versus\nhostname \"<the server's hostname>\"\nrcon_password \"<generated per server>\""
        ),
        "lowest overlay first, secrets last"
    );
    assert_eq!(
        client.post(&path, &fields).await.status(),
        StatusCode::SEE_OTHER
    );

    let res = client.post(&format!("/overlays/{first}/delete"), &[]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("used by blueprint Versus")
    );
    assert!(app.root.path().join(format!("overlays/{first}")).is_dir());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_create_migrate_and_config_default_from_the_shell() {
    let root = TestRoot::new();
    let out = root
        .cmd()
        .args(["user", "create", "shelly", "--admin"])
        .env("LEFT4ME_ADMIN_PASSWORD", "shelly-password-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "created admin shelly");
    let out = root
        .cmd()
        .args(["user", "create", "shelly"])
        .env("LEFT4ME_ADMIN_PASSWORD", "shelly-password-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the username \"shelly\" is taken"),
        "{}",
        stderr(&out)
    );
    let out = root
        .cmd()
        .args(["user", "create", "weak"])
        .env("LEFT4ME_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at least 10 characters"));

    let out = root.ok(&["migrate"]);
    assert!(stdout(&out).contains("is up to date"));

    let out = root.ok(&["config", "default"]);
    let file = root.path().join("left4me.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let parsed = left4me_web::config::Config::load_with_env(Some(&file), |_| None).unwrap();
    assert_eq!(parsed.file.as_deref(), Some(file.as_path()));
    assert_eq!(
        left4me_web::config::Config {
            file: None,
            ..parsed
        },
        left4me_web::config::Config::default()
    );
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_addr = 2\n").unwrap();
    let out = root.run(&["--config", file.to_str().unwrap(), "migrate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("listen_addr"),
        "unknown keys are errors: {}",
        stderr(&out)
    );

    let config = test_config(&root);
    let mut app = App::spawn_with(root, config).await;
    app.login("shelly", "shelly-password-1").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_another_program_holds_are_skipped_or_refused() {
    // Another program holds the first port of the range.
    let held = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let start = held.local_addr().unwrap().port();
    let mut app = App::spawn_configured(|c| {
        c.port_range_start = start;
        c.port_range_end = start.saturating_add(20);
    })
    .await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let res = post_server(&client, "next-free", bp, "").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = Client::redirect_id(&res);
    let (_, page) = client.get_text(&format!("/servers/{id}")).await;
    assert!(!page.contains(&format!("port {start} ")), "{page}");

    let res = post_server(&client, "asked-for", bp, &start.to_string()).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!("port {start} is in use by another program")),
        "{page}"
    );
    drop(held);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_requests_get_the_panels_error_page() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    for path in ["/servers/abc", "/jobs/1x", "/no/such/page"] {
        let res = client.get(path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains("<title>Not Found"), "{path}: {html}");
    }
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "eta", bp, free_port()).await;
    // A form without its fields, as a stale page or a script might send.
    let res = client
        .post(&format!("/servers/{server}/settings"), &[("name", "eta")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("The request could not be read"), "{html}");
    assert!(
        html.contains("<title>Bad Request"),
        "title and status agree: {html}"
    );
    assert!(html.contains("<title>"), "a styled page: {html}");
    app.stop().await;
}

/// A request as a script sends it: `Accept: application/json`, the form
/// with the session's CSRF token (unless `csrf` is given).
async fn json_request(
    client: &Client,
    method: reqwest::Method,
    path: &str,
    fields: &[(&str, &str)],
    csrf: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let token = match csrf {
        Some(token) => token.to_owned(),
        None => client.csrf("/account").await,
    };
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    let res = client
        .http
        .request(method, format!("{}{path}", client.base))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json", "{path}");
    (status, res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_that_accept_json_get_every_failure_as_json_with_the_form_fields() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    // (what, path, fields, the fields named in the answer, sorted)
    let cases = [
        (
            "server create",
            "/servers".to_owned(),
            vec![
                ("name", ""),
                ("hostname", "h"),
                ("port", "80"),
                ("blueprint_id", ""),
            ],
            "blueprint_id name port",
        ),
        (
            "blueprint save",
            format!("/blueprints/{bp}"),
            vec![("name", " "), ("config", ""), ("arguments", "-port 1")],
            "arguments name",
        ),
        (
            "overlay create",
            "/overlays".to_owned(),
            vec![("name", "")],
            "name",
        ),
        (
            "user create",
            "/users".to_owned(),
            vec![("username", "bob"), ("password", "short")],
            "password",
        ),
        (
            "account password",
            "/account/password".to_owned(),
            vec![
                ("current", "not-it"),
                ("password", "short"),
                ("confirm", "other"),
            ],
            "confirm current password",
        ),
    ];
    for (what, path, fields, expected) in cases {
        let (status, body) = json_request(&client, post.clone(), &path, &fields, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with("The form has mistakes"), "{what}: {body}");
        let named: Vec<&String> = body["fields"].as_object().unwrap().keys().collect();
        let expected: Vec<&str> = expected.split(' ').collect();
        assert_eq!(named, expected, "{what}: {body}");
        for field in expected {
            assert!(
                !body["fields"][field].as_str().unwrap().is_empty(),
                "{what}: {body}"
            );
        }
    }
    // Not found, refused, not logged in, a wrong password.
    let (status, body) = json_request(&client, get.clone(), "/servers/999", &[], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not found"))
    );
    let (status, body) = json_request(
        &client,
        post.clone(),
        "/overlays",
        &[("name", "x")],
        Some("forged"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let anonymous = app.client();
    let (status, body) = json_request(&anonymous, get, "/", &[], Some("")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("please log in"))
    );
    let token = anonymous.csrf("/login").await;
    let (status, body) = json_request(
        &anonymous,
        post,
        "/login",
        &[("username", ADMIN.0), ("password", "wrong")],
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Wrong username or password"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_answer_carries_the_security_headers() {
    let mut app = App::spawn().await;
    let anonymous = app.client();
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let json_error = client
        .http
        .get(app.url("/servers/999"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let answers = [
        ("a page", client.get("/").await, StatusCode::OK),
        (
            "a 404 page",
            client.get("/no/such/page").await,
            StatusCode::NOT_FOUND,
        ),
        (
            "a redirect",
            anonymous.get("/").await,
            StatusCode::SEE_OTHER,
        ),
        (
            "a static file",
            anonymous.get("/static/app.js").await,
            StatusCode::OK,
        ),
        ("a JSON error", json_error, StatusCode::NOT_FOUND),
        (
            "a refused form",
            anonymous.post_with_csrf("/login", &[], "forged").await,
            StatusCode::FORBIDDEN,
        ),
        ("plain text", anonymous.get("/health").await, StatusCode::OK),
    ];
    for (what, res, status) in answers {
        assert_eq!(res.status(), status, "{what}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .unwrap_or_else(|| panic!("{what} has no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{what}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "same-origin", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_pages_keep_the_navigation_for_a_logged_in_user() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let nav = "<a href=\"/blueprints\">Blueprints</a>";
    // A handler's "not found", an unknown path, a refused form.
    let refused = client
        .post_with_csrf("/overlays", &[("name", "x")], "forged")
        .await;
    for (what, res, status) in [
        (
            "a missing server",
            client.get("/servers/999").await,
            StatusCode::NOT_FOUND,
        ),
        (
            "an unknown path",
            client.get("/no/such/page").await,
            StatusCode::NOT_FOUND,
        ),
        ("a refused form", refused, StatusCode::FORBIDDEN),
    ] {
        assert_eq!(res.status(), status, "{what}");
        let html = res.text().await.unwrap();
        assert!(html.contains(nav), "{what}: {html}");
        assert!(
            html.contains(&format!(">{}</a>", ADMIN.0)),
            "{what}: the user's name: {html}"
        );
        assert!(html.contains("<title>"), "{what}: {html}");
        assert!(html.contains("data-back"), "{what}: {html}");
        assert!(!html.contains("javascript:"), "{what}: {html}");
    }
    // Nobody logged in: the page without the navigation.
    let (status, html) = app.client().get_text("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains("<title>Not Found") && !html.contains(nav),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spec_on_the_server_page_masks_the_rcon_password() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "sv_cheats 0").await;
    let server = create_server(&client, "alpha", bp, free_port()).await;
    let (_, html) = client.get_text(&format!("/servers/{server}")).await;
    let revealed = html
        .split("<code id=\"rcon-password\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the RCON password behind Reveal");
    assert_eq!(revealed.len(), 20, "{revealed}");
    let spec = html
        .split("<pre class=\"code\" id=\"spec\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap();
    assert!(spec.contains("sv_cheats 0"), "{spec}");
    assert!(spec.contains("rcon_password"), "{spec}");
    assert!(
        spec.contains("hidden: Reveal it under RCON password"),
        "{spec}"
    );
    assert!(!spec.contains(revealed), "{spec}");
    assert_eq!(html.matches(revealed).count(), 1, "only behind Reveal");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacker_is_slowed_by_address_while_the_owner_logs_in_elsewhere() {
    let mut app = App::spawn_configured(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let base = app.client().base;
    let attacker = Client::forwarded_for(&base, "203.0.113.5");
    for _ in 0..left4me_web::auth::PAIR_FREE_FAILURES {
        let res = attacker.login(ADMIN.0, "guessed-wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Slowed, even with the right password: the wait is in the answer.
    let res = attacker.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=left4me_web::auth::FIRST_WAIT.as_secs()).contains(&retry),
        "{retry}"
    );
    assert!(res.text().await.unwrap().contains("Too many failed logins"));
    // The owner, from their own address, is not locked out.
    let owner = Client::forwarded_for(&base, "198.51.100.20");
    assert_eq!(
        owner.login(ADMIN.0, ADMIN.1).await.status(),
        StatusCode::SEE_OTHER
    );
    // A success forgives the owner's own mistypes (a second browser).
    let laptop = || Client::forwarded_for(&base, "198.51.100.20");
    for _ in 0..left4me_web::auth::PAIR_FREE_FAILURES - 1 {
        let res = laptop().login(ADMIN.0, "typo").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        laptop().login(ADMIN.0, ADMIN.1).await.status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..left4me_web::auth::PAIR_FREE_FAILURES {
        let res = laptop().login(ADMIN.0, "typo").await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "counting starts again"
        );
    }

    // Failed logins are in the admin's activity log, never a password.
    let (_, activity) = owner.get_text("/activity?kind=login.failed").await;
    assert!(activity.contains("203.0.113.5"), "{activity}");
    assert!(activity.contains("198.51.100.20"), "{activity}");
    assert!(
        activity.contains("failed login as &#34;admin&#34;"),
        "{activity}"
    );
    assert!(
        !activity.contains("guessed-wrong") && !activity.contains("typo"),
        "{activity}"
    );
    // Other users do not see them.
    seed_user(&app.config, "carol", "carol-password-1", false).await;
    let carol = Client::forwarded_for(&base, "198.51.100.30");
    assert_eq!(
        carol.login("carol", "carol-password-1").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(carol.get("/activity").await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn launch_arguments_left4me_sets_itself_are_refused() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let res = client
        .post(
            &format!("/blueprints/{bp}"),
            &[
                ("name", "Coop"),
                ("config", "sv_cheats 0"),
                ("arguments", "+map c1m1_hotel -port 27099"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains("argument -port is set by left4me"), "{page}");
    assert!(
        page.contains("value=\"+map c1m1_hotel -port 27099\""),
        "kept: {page}"
    );
    let (_, page) = client.get_text(&format!("/blueprints/{bp}")).await;
    assert!(
        page.contains("value=\"+map c1m1_hotel\""),
        "nothing saved: {page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_arguments_repeating_left4me_start_and_conflicting_ones_never_stop_a_server() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "theta", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    let instance = format!("server-{server}");
    // Blueprints saved by an earlier version, straight in the database.
    let set_arguments = async |arguments: &str| {
        let store = left4me_web::open_store(&app.config).await.unwrap();
        let mut write = store.write().await.unwrap();
        write
            .update_blueprint(bp, "Coop", "", arguments)
            .await
            .unwrap();
        write.commit().await.unwrap();
        store.close().await;
    };
    set_arguments("+map c1m1_hotel -game left4dead2 -norestart").await;
    act_ok(&client, server, "restart").await;
    let pid = app.root.status(&instance)["pid"].as_u64().unwrap();

    set_arguments("+map c1m1_hotel -port 27099").await;
    let job = action(&client, server, "restart").await;
    let events = job_events(&client, job, None).await;
    assert_eq!(events.last().unwrap().2, "failed", "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.2.contains("argument -port is set by left4me")),
        "{events:?}"
    );
    let status = app.root.status(&instance);
    assert_eq!(status["pid"].as_u64(), Some(pid), "still running: {status}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_settings_form_keeps_input_and_an_admins_blueprint_choice() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bob = add_user(&app, &admin, "bob", "bob-password-12").await;
    let bobs = create_blueprint(&bob, "Bob's", "").await;
    let server = create_server(&bob, "bobs-server", bobs, free_port()).await;
    // The admin gives bob's server the admin's own blueprint.
    let admins = create_blueprint(&admin, "Tournament", "mp_gamemode versus").await;
    let res = post_settings(&admin, server, "bobs-server", "Bob", admins).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The admin tells blueprints apart by owner.
    let (_, dashboard) = admin.get_text("/").await;
    assert!(dashboard.contains("s (bob)</option>"), "{dashboard}");
    assert!(dashboard.contains(">Tournament</option>"), "{dashboard}");
    // Bob sees it selected (with its owner), and saving keeps it.
    let (_, page) = bob.get_text(&format!("/servers/{server}")).await;
    assert!(
        page.contains(&format!(
            "<option value=\"{admins}\" selected>Tournament (admin)</option>"
        )),
        "{page}"
    );
    let res = post_settings(&bob, server, "bobs-server", "Bob place", admins).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = bob.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains("blueprint Tournament"), "{page}");
    assert!(page.contains("Bob place"), "{page}");

    // A mistake comes back with what was typed, not the stored values.
    let res = post_settings(&bob, server, "", "Typed host", bobs).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains("value=\"Typed host\""), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{bobs}\" selected>")),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_reset_rename_and_reassign() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let coop = create_blueprint(&client, "Coop", "").await;
    let versus = create_blueprint(&client, "Versus", "mp_gamemode versus").await;
    let port = free_port();
    let server = create_server(&client, "epsilon", coop, port).await;
    let instance = format!("server-{server}");

    act_ok(&client, server, "start").await;
    let first_pid = app.root.status(&instance)["pid"].as_u64().unwrap();
    act_ok(&client, server, "restart").await;
    let second_pid = app.root.status(&instance)["pid"].as_u64().unwrap();
    assert_ne!(first_pid, second_pid, "a new process");

    // Rename and reassign: the spec for the next start follows.
    let res = post_settings(&client, server, "zeta", "Zeta Host", versus).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = client.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains("<h1>zeta"), "renamed");
    assert!(
        page.contains("mp_gamemode versus"),
        "the next start uses the new blueprint"
    );
    assert!(page.contains("Zeta Host"));
    // A blueprint in use cannot be deleted.
    let res = client
        .post(&format!("/blueprints/{versus}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("used by server zeta"));
    let res = client
        .post(&format!("/blueprints/{coop}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "an unused one can");

    act_ok(&client, server, "reset").await;
    assert!(
        !app.root
            .path()
            .join(format!("instances/{instance}"))
            .exists()
    );
    assert!(!app.root.path().join(format!("runtime/{instance}")).exists());
    // The next start initializes again, with the new blueprint.
    act_ok(&client, server, "start").await;
    let cfg = std::fs::read_to_string(
        app.root
            .path()
            .join(format!("instances/{instance}/server.cfg")),
    )
    .unwrap();
    assert!(
        cfg.contains("mp_gamemode versus") && cfg.contains("hostname \"Zeta Host\""),
        "{cfg}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blueprint_overlays_reorder_and_remove() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let a = create_overlay(&client, "A").await.to_string();
    let b = create_overlay(&client, "B").await.to_string();
    let bp = create_blueprint(&client, "Order", "").await;
    let path = format!("/blueprints/{bp}");
    client
        .post(&path, &[("name", "Order"), ("add_overlay", &a)])
        .await;
    client
        .post(
            &path,
            &[("name", "Order"), ("overlay", &a), ("add_overlay", &b)],
        )
        .await;
    let order = |html: &str| html.find("<td>A</td>").unwrap() < html.find("<td>B</td>").unwrap();
    assert!(order(&client.get_text(&path).await.1), "A first, as added");
    // Move B above A with the position fields.
    let (pos_a, pos_b) = (format!("pos_{a}"), format!("pos_{b}"));
    let res = client
        .post(
            &path,
            &[
                ("name", "Order"),
                ("overlay", &a),
                (&pos_a, "2"),
                ("overlay", &b),
                (&pos_b, "1"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        format!("/blueprints/{bp}?saved=true"),
        "redirected after the post"
    );
    let (_, html) = client.get_text(&format!("{path}?saved=true")).await;
    assert!(html.contains("Saved."), "{html}");
    assert!(!order(&html), "B first now");
    // Remove A.
    let remove_a = format!("remove_{a}");
    let res = client
        .post(
            &path,
            &[
                ("name", "Order"),
                ("overlay", &b),
                ("overlay", &a),
                (&remove_a, "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = client.get_text(&path).await.1;
    assert!(
        html.contains("<td>B</td>") && !html.contains("<td>A</td>"),
        "A removed"
    );
    // A repeated row (a hand-made request) counts once, and all is saved.
    let res = client
        .post(
            &path,
            &[("name", "Order 2"), ("overlay", &b), ("overlay", &b)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = client.get_text(&path).await.1;
    assert_eq!(html.matches("<td>B</td>").count(), 1, "{html}");
    assert!(html.contains("value=\"Order 2\""), "{html}");
    // A foreign overlay cannot be smuggled in.
    seed_user(&app.config, "mallory", "mallory-password", false).await;
    let mallory = app.login("mallory", "mallory-password").await;
    let own = create_blueprint(&mallory, "Mine", "").await;
    let res = mallory
        .post(
            &format!("/blueprints/{own}"),
            &[("name", "Mine"), ("add_overlay", &a)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_over_the_limit_are_refused_and_leave_nothing() {
    let mut app = App::spawn_configured(|c| {
        c.upload_limit_mb = 1;
    })
    .await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_overlay(&client, "Big").await;
    let res = upload(
        &client,
        overlay,
        "",
        vec![("big.vpk", vec![7u8; 2 * 1024 * 1024])],
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("larger than the upload limit of 1 MiB")
    );
    let dir = app.root.path().join(format!("overlays/{overlay}"));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(
        std::fs::read_dir(app.root.path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "no temp files left"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_runs_rcon_keeps_history_and_records_errors() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "console-test", bp, free_port()).await;

    // What a script gets when it asked for JSON: the error in JSON, with
    // the status a page would have had (401 where a page would redirect).
    let post_json = |client: &Client, command: &'static str, token: Option<String>| {
        let mut req = client
            .http
            .post(format!("{}/servers/{server}/console", client.base))
            .header("accept", "application/json")
            .form(&[("command", command)]);
        if let Some(token) = token {
            req = req.header("x-csrf-token", token);
        }
        req.send()
    };
    let token = client.csrf("/account").await;
    let res = post_json(&client, "   ", Some(token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        "type one command line (at most 1000 characters)"
    );
    let stranger = app.client();
    let token = stranger.csrf("/login").await;
    let res = post_json(&stranger, "status", Some(token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "please log in");

    // Not running yet: the error is shown and recorded.
    let entry = console(&client, server, "status").await;
    assert!(
        entry["error"].as_str().unwrap().contains("not running"),
        "{entry}"
    );

    act_ok(&client, server, "start").await;
    let entry = console(&client, server, "status").await;
    assert!(
        entry["reply"]
            .as_str()
            .unwrap()
            .contains("hostname: console-test host"),
        "{entry}"
    );
    let entry = console(&client, server, "cvarlist").await;
    assert!(
        entry["reply"].as_str().unwrap().len() > 16 * 1024,
        "a multi-packet reply arrives whole"
    );
    // Changing the password behind the panel's back: the next command says so.
    console(&client, server, "rcon_password changed-elsewhere").await;
    let entry = console(&client, server, "status").await;
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .contains("rcon_password no longer matches"),
        "{entry}"
    );

    let (_, page) = client.get_text(&format!("/servers/{server}/console")).await;
    let history_start = page.find("data-history=\"").unwrap() + "data-history=\"".len();
    let history = &page[history_start..history_start + page[history_start..].find('"').unwrap()];
    let history = history.replace("&quot;", "\"").replace("&#34;", "\"");
    let history: Vec<String> = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history,
        [
            "status",
            "status",
            "cvarlist",
            "rcon_password changed-elsewhere",
            "status"
        ]
    );
    assert!(page.contains("not running"), "errors stay visible");

    // Others cannot use it.
    seed_user(&app.config, "eve", "eve-password-12", false).await;
    let eve = app.login("eve", "eve-password-12").await;
    for tab in ["console", "log", "log/events", "files", "activity"] {
        let status = eve.get(&format!("/servers/{server}/{tab}")).await.status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{tab}");
    }
    let res = eve
        .post(
            &format!("/servers/{server}/console"),
            &[("command", "quit")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_activity_log_records_who_did_what() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let frank = add_user(&app, &admin, "frank", "frank-password-1").await;
    let overlay = create_overlay(&frank, "Maps").await;
    frank
        .post(
            &format!("/overlays/{overlay}/mkdir"),
            &[("dir", ""), ("name", "left4dead2")],
        )
        .await;
    let bp = create_blueprint(&frank, "Frank's", "").await;
    let server = create_server(&frank, "franks-server", bp, free_port()).await;
    action(&frank, server, "stop").await;

    let (status, all) = admin.get_text("/activity").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "created user frank",
        "created overlay Maps",
        "created folder /left4dead2 in overlay Maps",
        "created blueprint Frank&#x27;s",
        "created server franks-server",
        "stop server franks-server",
    ] {
        assert!(
            all.contains(needle) || all.contains(&needle.replace("&#x27;", "&#39;")),
            "{needle} missing"
        );
    }
    let (_, filtered) = admin.get_text("/activity?kind=server.stop").await;
    assert!(
        filtered.contains("stop server franks-server") && !filtered.contains("created overlay")
    );
    // The kind filter offers the kinds recorded, the chosen one selected.
    for kind in ["server.create", "overlay.create", "user.create"] {
        assert!(
            filtered.contains(&format!("<option value=\"{kind}\">")),
            "{kind}"
        );
    }
    assert!(filtered.contains("<option value=\"server.stop\" selected>"));
    // Times say their zone.
    assert!(filtered.contains(" UTC</td>"), "{filtered}");
    let (_, by_frank) = admin.get_text("/activity?actor=frank").await;
    assert!(
        !by_frank.contains("created user frank"),
        "that was the admin"
    );
    // Frank sees his server's log, not the global one.
    assert_eq!(frank.get("/activity").await.status(), StatusCode::NOT_FOUND);
    let (status, own) = frank.get_text(&format!("/servers/{server}/activity")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(own.contains("stop server franks-server") && !own.contains("created overlay"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_stream_survives_a_crash_restart_and_resumes() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let server = create_server(&client, "loggy", bp, free_port()).await;
    act_ok(&client, server, "start").await;

    let mut stream = Box::pin(open_log(&client, server, None).await.bytes_stream());
    let (mut buffer, mut seen) = (String::new(), Vec::new());
    read_lines_until(&mut stream, &mut buffer, &mut seen, |s| {
        s.iter()
            .any(|(_, l)| l.contains("] server process") && l.ends_with("started"))
    })
    .await;
    // Kill the game behind everyone's back: the supervisor restarts it and
    // the same stream shows the crash and the new boot.
    let pid = app.root.status(&format!("server-{server}"))["pid"]
        .as_u64()
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    read_lines_until(&mut stream, &mut buffer, &mut seen, |s| {
        s.iter()
            .filter(|(_, l)| l.contains("] server process") && l.ends_with("started"))
            .count()
            >= 2
    })
    .await;
    assert!(
        seen.iter()
            .any(|(_, l)| l.contains("server crashed (killed by signal 9)")),
        "{seen:#?}"
    );
    drop(stream);

    // Reconnecting with the id of a batch continues right after it.
    let middle = (0..seen.len() - 1)
        .rfind(|i| !seen[*i].0.is_empty())
        .expect("the backlog and the crash came in separate batches");
    let mut stream = Box::pin(
        open_log(&client, server, Some(&seen[middle].0))
            .await
            .bytes_stream(),
    );
    let (mut buffer, mut resumed) = (String::new(), Vec::new());
    let expected: Vec<&str> = seen[middle + 1..].iter().map(|(_, t)| t.as_str()).collect();
    read_lines_until(&mut stream, &mut buffer, &mut resumed, |s| {
        s.len() >= expected.len()
    })
    .await;
    let texts: Vec<&str> = resumed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts[..expected.len()],
        expected[..],
        "no line lost or repeated"
    );
    app.stop().await;
}

/// Kills the supervisor daemon and the game of an instance with SIGKILL,
/// as a crash of the host (or someone's `kill -9`) would.
fn kill_instance(root: &TestRoot, instance: &str) {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            root.path()
                .join(format!("runtime/{instance}/supervisor.json")),
        )
        .unwrap(),
    )
    .unwrap();
    for key in ["supervisor_pid", "pid"] {
        if let Some(pid) = state[key].as_u64() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
                rustix::process::Signal::KILL,
            );
        }
    }
}

async fn wait_for_a2s(port: u16, what: &str) {
    eventually(what, Duration::from_secs(30), async || {
        srcds_protocol::a2s::info(a2s_addr(port), Duration::from_millis(300))
            .await
            .is_ok()
    })
    .await;
}

async fn fast_reconciling_app() -> App {
    App::spawn_configured(|c| {
        c.reconcile_interval_secs = 1;
        c.max_crashes = 2;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconciler_restarts_a_server_killed_behind_the_panels_back() {
    let mut app = fast_reconciling_app().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let port = free_port();
    let server = create_server(&client, "sturdy", bp, port).await;
    act_ok(&client, server, "start").await;
    let instance = format!("server-{server}");
    let old_pid = app.root.status(&instance)["pid"].as_u64().unwrap();

    kill_instance(&app.root, &instance);
    wait_until(
        "the reconciler starts it again",
        Duration::from_secs(30),
        || {
            let status = app.root.status(&instance);
            status["running"] == true && status["pid"].as_u64() != Some(old_pid)
        },
    );
    wait_for_a2s(port, "the restarted server answers").await;
    let (_, activity) = client
        .get_text(&format!("/servers/{server}/activity"))
        .await;
    assert!(
        activity.contains("should be running but is stopped; starting it"),
        "{activity}"
    );
    assert!(activity.contains("reconciler"), "{activity}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_reboot_brings_the_running_servers_back() {
    let mut app = fast_reconciling_app().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let (up_port, down_port) = (free_port(), free_port());
    let up = create_server(&client, "wanted-up", bp, up_port).await;
    let down = create_server(&client, "wanted-down", bp, down_port).await;
    for (server, verb) in [(up, "start"), (down, "start"), (down, "stop")] {
        let job = action(&client, server, verb).await;
        assert_eq!(
            job_events(&client, job, None).await.last().unwrap().2,
            "succeeded"
        );
    }
    app.stop().await;

    // The reboot: every process and mount is gone.
    for server in [up, down] {
        let instance = format!("server-{server}");
        if app
            .root
            .path()
            .join(format!("runtime/{instance}/supervisor.json"))
            .exists()
        {
            kill_instance(&app.root, &instance);
        }
        let merged = app.root.merged(&instance);
        while rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).is_ok() {}
    }
    let config = app.config.clone();
    let root = std::mem::replace(&mut app.root, TestRoot::new());
    let mut app = App::spawn_with(root, config).await;
    wait_for_a2s(up_port, "the server that was running comes back").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        srcds_protocol::a2s::info(a2s_addr(down_port), Duration::from_millis(300))
            .await
            .is_err(),
        "the stopped one stays stopped"
    );
    assert_eq!(app.root.status(&format!("server-{down}"))["running"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_supervisor_gave_up_shows_failed_and_is_left_alone() {
    let mut app = fast_reconciling_app().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Crashy", "sim_crash_after_ms 3000").await;
    let server = create_server(&client, "crashy", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    let instance = format!("server-{server}");
    wait_until("the supervisor gives up", Duration::from_secs(30), || {
        app.root.status(&instance)["state"] == "failed"
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, activity) = client
        .get_text(&format!("/servers/{server}/activity"))
        .await;
    assert_eq!(
        activity
            .matches("server crashy failed: gave up after 2 crashes")
            .count(),
        1,
        "{activity}"
    );
    let (_, dashboard) = client.get_text("/").await;
    assert!(dashboard.contains("state-failed"), "{dashboard}");
    assert_eq!(
        app.root.status(&instance)["state"],
        "failed",
        "not restarted behind the user's back"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_files_tab_shows_the_merged_tree_read_only() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let overlay = create_overlay(&client, "Mod").await;
    upload(
        &client,
        overlay,
        "left4dead2/addons",
        vec![("mod.vpk", b"vpk".to_vec())],
    )
    .await;
    let bp = create_blueprint(&client, "Modded", "").await;
    let overlay_s = overlay.to_string();
    client
        .post(
            &format!("/blueprints/{bp}"),
            &[("name", "Modded"), ("add_overlay", &overlay_s)],
        )
        .await;
    let server = create_server(&client, "modded", bp, free_port()).await;

    let (_, page) = client.get_text(&format!("/servers/{server}/files")).await;
    assert!(page.contains("The server is not running"), "{page}");
    act_ok(&client, server, "start").await;
    let (_, page) = client
        .get_text(&format!("/servers/{server}/files?path=left4dead2/addons"))
        .await;
    assert!(
        page.contains("mod.vpk"),
        "the overlay's file is in the merged tree: {page}"
    );
    assert!(
        page.contains("<span title=\"3 bytes\">3 B</span>"),
        "sizes are readable: {page}"
    );
    let (_, page) = client.get_text(&format!("/servers/{server}/files")).await;
    assert!(page.contains("srcds_run"), "and the installation under it");
    let res = client
        .get(&format!(
            "/servers/{server}/files/download?path=left4dead2/addons/mod.vpk"
        ))
        .await;
    assert_eq!(res.text().await.unwrap(), "vpk");
    let res = client
        .get(&format!(
            "/servers/{server}/files/download?path=../../../left4me.db"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Nothing to write with: the tab has no forms.
    assert_eq!(
        client
            .post(&format!("/servers/{server}/files"), &[])
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_game_whose_supervisor_died_is_restarted_only_once_nobody_plays() {
    let mut app = App::spawn_configured(|c| {
        c.poll_interval_secs = 1;
        c.reconcile_interval_secs = 1;
    })
    .await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "maxplayers 8").await;
    let server = create_server(&client, "orphan", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    console(&client, server, "sim_join Coach STEAM_1:0:42").await;
    page_showing(&client, "/", "1/8 players", Duration::from_secs(15)).await;

    // The supervisor dies; the game and its player carry on.
    let instance = format!("server-{server}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            app.root
                .path()
                .join(format!("runtime/{instance}/supervisor.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let game = app.root.status(&instance)["pid"].as_u64().unwrap();
    let supervisor = i32::try_from(state["supervisor_pid"].as_u64().unwrap()).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(supervisor).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let activity = format!("/servers/{server}/activity");
    page_showing(
        &client,
        &activity,
        "runs without its supervisor",
        Duration::from_secs(15),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = app.root.status(&instance);
    assert_eq!(status["state"], "orphaned", "{status}");
    assert_eq!(
        status["pid"].as_u64(),
        Some(game),
        "not restarted under a player"
    );

    // A panel restart knows nothing of the players at first: it waits to
    // hear from the game rather than restart it.
    app.stop().await;
    let config = app.config.clone();
    let root = std::mem::replace(&mut app.root, TestRoot::new());
    let mut app = App::spawn_with(root, config).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = app.root.status(&instance);
    assert_eq!(
        status["pid"].as_u64(),
        Some(game),
        "not restarted blind: {status}"
    );

    // Once the player leaves, it is restarted under a new supervisor.
    console(&client, server, "sim_leave Coach").await;
    wait_until("restarted when empty", Duration::from_secs(20), || {
        let status = app.root.status(&instance);
        status["state"] == "running" && status["pid"].as_u64() != Some(game)
    });
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn players_joining_and_leaving_become_sessions() {
    let mut app = App::spawn_configured(|c| {
        c.poll_interval_secs = 1;
    })
    .await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "maxplayers 8").await;
    let server = create_server(&client, "lively", bp, free_port()).await;
    act_ok(&client, server, "start").await;

    console(&client, server, "sim_join Coach STEAM_1:0:42").await;
    console(&client, server, "sim_join Ellis STEAM_1:1:7").await;
    let page = format!("/servers/{server}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, html) = client.get_text(&page).await;
        if html.contains("STEAM_1:0:42") && html.contains("Ellis") && html.contains("2/8 players") {
            assert!(html.contains("c1m1_hotel"), "{html}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "players never showed: {html}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, dashboard) = client.get_text("/").await;
    assert!(
        dashboard.contains("c1m1_hotel · 2/8 players"),
        "{dashboard}"
    );

    console(&client, server, "sim_leave Coach").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let store = left4me_web::open_store(&app.config).await.unwrap();
        let sessions = store.recent_player_sessions(server, 10).await.unwrap();
        store.close().await;
        let coach = sessions.iter().find(|s| s.name == "Coach").unwrap();
        let ellis = sessions.iter().find(|s| s.name == "Ellis").unwrap();
        if coach.left_at.is_some() {
            assert_eq!(coach.steam_id.as_deref(), Some("STEAM_1:0:42"));
            assert!(ellis.left_at.is_none(), "Ellis is still on");
            assert_eq!(
                sessions.len(),
                2,
                "one session each, no duplicates: {sessions:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Coach's session never closed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Stopping the server ends the remaining sessions.
    act_ok(&client, server, "stop").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let store = left4me_web::open_store(&app.config).await.unwrap();
        let open = store.open_player_sessions(server).await.unwrap();
        store.close().await;
        if open.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions stayed open"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    app.stop().await;
}

/// Saves a blueprint's form with these launch arguments.
async fn save_arguments(client: &Client, bp: i64, arguments: &str) -> reqwest::Response {
    client
        .post(
            &format!("/blueprints/{bp}"),
            &[("name", "Coop"), ("config", ""), ("arguments", arguments)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_fails_at_once_naming_the_program_that_holds_its_port() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;
    let port = free_port();
    let server = create_server(&client, "kappa", bp, port).await;
    // This test program takes the game's port after the server was made.
    let held = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    let me = me.trim_end();
    let began = std::time::Instant::now();
    let job = action(&client, server, "start").await;
    let events = job_events(&client, job, None).await;
    assert_eq!(events.last().unwrap().2, "failed", "{events:?}");
    let expected = format!(
        "port {port} (UDP) is in use by another program: {me} (pid {})",
        std::process::id()
    );
    assert!(events.iter().any(|e| e.2.contains(&expected)), "{events:?}");
    // At once: not after the 20 s the start would wait for an answer.
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    let instance = format!("server-{server}");
    assert_eq!(app.root.status(&instance)["running"], false);
    let (_, page) = client.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains(&expected), "the server page says it: {page}");

    drop(held);
    act_ok(&client, server, "start").await;
    assert_eq!(app.root.status(&instance)["running"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_whose_server_gives_up_fails_with_the_reason_and_the_games_last_lines() {
    let mut app = App::spawn_configured(|c| c.max_crashes = 2).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    // Crashes before it ever answers.
    let bp = create_blueprint(
        &client,
        "Doomed",
        "sim_boot_delay_ms 60000\nsim_crash_after_ms 200",
    )
    .await;
    let server = create_server(&client, "iota", bp, free_port()).await;
    let job = action(&client, server, "start").await;
    let events = job_events(&client, job, None).await;
    assert_eq!(events.last().unwrap().2, "failed", "{events:?}");
    let error = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.2).ok())
        .find(|line| line["stream"] == "error")
        .and_then(|line| line["line"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no error in {events:?}"));
    // The reason, then what the game and its supervisor printed.
    assert!(
        error.starts_with("the server is failed and will not answer (gave up after 2 crashes"),
        "{error}"
    );
    assert!(
        error.contains("\nThe last lines of the game's console:\n")
            && error.contains("\nSegmentation fault (core dumped)\n")
            && error
                .ends_with("\n[left4me] gave up after 2 crashes within 60s; last: exit code 139"),
        "{error}"
    );
    let console_lines = error
        .lines()
        .skip_while(|l| !l.contains("console:"))
        .count()
        - 1;
    assert_eq!(console_lines, 20, "{error}");
    let (_, page) = client.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains("[left4me] gave up after 2 crashes"), "{page}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn launch_arguments_with_quotes_reach_the_game_as_one_argument() {
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "").await;

    let res = save_arguments(&client, bp, "+map c1m1_hotel +sv_contact \"My Cool").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains("a quote is not closed"), "{page}");

    let typed = "+map c1m1_hotel +sv_contact \"My Cool Server\"";
    let res = save_arguments(&client, bp, typed).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = client.get_text(&format!("/blueprints/{bp}")).await;
    assert!(
        page.contains("<li><code>+sv_contact</code></li><li><code>My Cool Server</code></li></ol>"),
        "the page lists how it understood them: {page}"
    );

    let server = create_server(&client, "lambda", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    let answer = console(&client, server, "sv_contact").await;
    assert!(
        answer
            .to_string()
            .contains("\\\"sv_contact\\\" = \\\"My Cool Server\\\""),
        "the game got one argument: {answer}"
    );
    app.stop().await;
}

/// Lines the panel's RCON put into a server's console.
fn rcon_lines(root: &TestRoot, instance: &str) -> Vec<String> {
    root.console_log(instance)
        .lines()
        .filter(|l| l.starts_with("rcon from"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poller_leaves_an_idle_servers_console_alone_and_still_learns_steam_ids() {
    let mut app = App::spawn_configured(|c| c.poll_interval_secs = 1).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "maxplayers 8").await;
    let server = create_server(&client, "mu", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    let instance = format!("server-{server}");

    // Three full passes after the poller first heard from the server.
    wait_until(
        "the poller hears the server",
        Duration::from_secs(15),
        || app.live.get(server).is_some(),
    );
    let heard = app.live.cycles();
    tokio::time::timeout(Duration::from_secs(15), app.live.wait_for_cycles(heard + 3))
        .await
        .expect("three poll cycles");
    let live = app.live.get(server).expect("polled in every cycle");
    assert_eq!((live.map.as_str(), live.players), ("c1m1_hotel", 0));
    assert!(
        app.root
            .console_log(&instance)
            .contains("Console initialized."),
        "the console log is read"
    );
    assert_eq!(rcon_lines(&app.root, &instance), Vec::<String>::new());

    // A player joins (through the Console tab: one RCON line of ours).
    console(&client, server, "sim_join Coach STEAM_1:0:42").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let store = left4me_web::open_store(&app.config).await.unwrap();
        let open = store.open_player_sessions(server).await.unwrap();
        store.close().await;
        if let Some(coach) = open.iter().find(|s| s.name == "Coach") {
            assert_eq!(coach.steam_id.as_deref(), Some("STEAM_1:0:42"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no session for Coach"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // `status` was asked once for the newcomer, not every cycle since.
    let now = app.live.cycles();
    tokio::time::timeout(Duration::from_secs(15), app.live.wait_for_cycles(now + 3))
        .await
        .expect("three poll cycles");
    let statuses = rcon_lines(&app.root, &instance)
        .into_iter()
        .filter(|l| l.ends_with("command \"status\""))
        .count();
    assert_eq!(statuses, 1, "{:?}", rcon_lines(&app.root, &instance));
    app.stop().await;
}

/// `status` lines and refused passwords the panel's RCON put into a server's console.
fn rcon_counts(root: &TestRoot, instance: &str) -> (usize, usize) {
    let lines = rcon_lines(root, instance);
    let statuses = lines
        .iter()
        .filter(|l| l.ends_with("command \"status\""))
        .count();
    let refused = lines.iter().filter(|l| l.ends_with("Bad Password")).count();
    (statuses, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poller_backs_off_and_says_when_the_rcon_password_no_longer_matches() {
    let mut app = App::spawn_configured(|c| c.poll_interval_secs = 1).await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "maxplayers 8").await;
    let server = create_server(&client, "xi", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    let instance = format!("server-{server}");
    let cycles = async |count: u64| {
        let now = app.live.cycles();
        tokio::time::timeout(
            Duration::from_secs(20),
            app.live.wait_for_cycles(now + count),
        )
        .await
        .expect("poll cycles");
    };

    // A player `status` shows without a Steam id (still connecting): asked
    // about once, then not for 15 s, though every cycle sees them lack one.
    console(&client, server, "sim_join Joining STEAM_ID_PENDING").await;
    wait_until("status is asked", Duration::from_secs(15), || {
        rcon_counts(&app.root, &instance).0 == 1
    });
    cycles(4).await;
    let live = app.live.get(server).expect("polled");
    assert_eq!(live.online.len(), 1);
    assert_eq!(live.online[0].steam_id, None);
    assert_eq!(rcon_counts(&app.root, &instance), (1, 0));

    // The password changes behind the panel's back, and a newcomer needs
    // `status`: refused once, then never asked again, however many cycles.
    console(
        &client,
        server,
        "rcon_password changed-elsewhere; sim_join Coach STEAM_1:0:42",
    )
    .await;
    wait_until("the refusal", Duration::from_secs(15), || {
        rcon_counts(&app.root, &instance).1 == 1
    });
    cycles(4).await;
    assert_eq!(rcon_counts(&app.root, &instance), (1, 1));
    let (_, page) = client.get_text(&format!("/servers/{server}")).await;
    assert!(
        page.contains("id=\"rcon-refused\"") && page.contains("rcon_password no longer matches"),
        "{page}"
    );
    let (_, json) = client.get_text(&format!("/api/v1/servers/{server}")).await;
    assert!(json.contains("\"rcon_refused\":true"), "{json}");

    // A restart puts the panel's password back: the notice goes, and the
    // new process is asked again.
    act_ok(&client, server, "restart").await;
    cycles(2).await;
    let (_, page) = client.get_text(&format!("/servers/{server}")).await;
    assert!(!page.contains("id=\"rcon-refused\""), "{page}");
    let (statuses, _) = rcon_counts(&app.root, &instance);
    console(&client, server, "sim_join Zoey STEAM_1:1:7").await;
    wait_until(
        "status is asked of the new process",
        Duration::from_secs(15),
        || rcon_counts(&app.root, &instance).0 > statuses,
    );
    eventually("Zoey's Steam id", Duration::from_secs(15), async || {
        app.live.get(server).is_some_and(|l| {
            l.online
                .iter()
                .any(|p| p.name == "Zoey" && p.steam_id.as_deref() == Some("STEAM_1:1:7"))
        })
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_shows_no_map_or_players() {
    // Every 5 s (the default): a stop fits between two passes.
    let mut app = App::spawn().await;
    let client = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&client, "Coop", "maxplayers 8").await;
    let server = create_server(&client, "nu", bp, free_port()).await;
    act_ok(&client, server, "start").await;
    console(&client, server, "sim_join Coach STEAM_1:0:42").await;
    let page = format!("/servers/{server}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let html = client.get_text(&page).await.1;
        if html.contains("id=\"players\"") && html.contains("id=\"live\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no player shown: {html}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Just after a pass, so the next one is seconds away.
    let done = app.live.cycles();
    app.live.wait_for_cycles(done + 1).await;
    let cycle = app.live.cycles();
    act_ok(&client, server, "stop").await;
    let (_, dashboard) = client.get_text("/").await;
    let (_, html) = client.get_text(&page).await;
    assert_eq!(app.live.cycles(), cycle, "no pass ran in between");
    assert!(
        app.live.get(server).is_some_and(|l| l.players == 1),
        "the poller's last answer is still there"
    );
    assert!(
        !dashboard.contains("c1m1_hotel · 1/8 players"),
        "{dashboard}"
    );
    assert!(
        !html.contains("id=\"players\"") && !html.contains("id=\"live\""),
        "{html}"
    );
    app.stop().await;
}
