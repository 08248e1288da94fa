//! The JSON API (`/api/v1`) against the real panel: tokens made on the
//! account page, what each scope, member role, owner and stranger may and
//! may not do, problem+json errors, sessions with their CSRF header, jobs
//! followed to the end, and the OpenAPI document.

mod common;

use std::time::Duration;

use common::api::*;
use common::panel::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Follows a job's event stream to its end; returns the final state.
async fn job_end(bot: &Bot, job: i64) -> String {
    let res = bot
        .http
        .get(format!("{}/api/v1/jobs/{job}/events", bot.base))
        .bearer_auth(&bot.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(60), res.text())
        .await
        .expect("the job ends within a minute")
        .unwrap();
    let events = parse_sse(&body);
    assert!(
        events.iter().any(|(_, kind, _)| kind == "line"),
        "the log came along: {body}"
    );
    let (_, kind, state) = events.last().unwrap().clone();
    assert_eq!(kind, "end", "{body}");
    state
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_with_a_token_lists_starts_and_watches_a_server() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let blueprint = create_blueprint(&admin, "Coop", "").await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let token = make_token(&alice, "bot", &["read", "operate", "manage"], &[]).await;
    // Shown once: the account page lists it by name, never the token.
    let (_, account) = alice.get_text("/account").await;
    assert!(account.contains(">bot<") && !account.contains(&token));

    let bot = Bot::new(&app, &token);
    let (status, created) = bot
        .post(
            "/servers",
            json!({"name": "alpha", "hostname": "Alpha", "port": free_port(), "blueprint_id": blueprint}),
        )
        .await;
    // The admin's blueprint is private to the admin.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{created}");
    assert_eq!(created["errors"][0]["field"], "blueprint_id", "{created}");
    let own = create_blueprint(&alice, "Mine", "").await;
    let port = free_port();
    let (status, created) = bot
        .post(
            "/servers",
            json!({"name": "alpha", "hostname": "Alpha", "port": port, "blueprint_id": own}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["state"], "stopped");

    let (status, started) = bot.post(&format!("/servers/{id}/start"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let job = started["id"].as_i64().unwrap();
    assert_eq!(started["url"], format!("/api/v1/jobs/{job}"));
    assert_eq!(job_end(&bot, job).await, "succeeded");

    // Players: the poller's answer once the server is up.
    app.live.wait_for_cycles(app.live.cycles() + 2).await;
    let (status, list) = bot.get("/servers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    let server = &list["items"][0];
    assert_eq!(server["state"], "running", "{list}");
    assert!(
        server["live"]["max_players"].as_u64().unwrap() > 0,
        "{list}"
    );
    assert!(server["live"]["online"].is_array(), "{list}");

    // The console, and the activity log under the token's name.
    let (status, reply) = bot
        .post(
            &format!("/servers/{id}/console"),
            json!({"command": "status"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(
        reply["reply"].as_str().unwrap().contains("hostname"),
        "{reply}"
    );
    let (_, activity) = admin
        .get_text("/activity?actor=alice%20(token%20bot)")
        .await;
    assert!(
        activity.contains("alice (token bot)") && activity.contains("status&#34; on alpha"),
        "{activity}"
    );

    let (status, stopped) = bot.post(&format!("/servers/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        job_end(&bot, stopped["id"].as_i64().unwrap()).await,
        "succeeded"
    );
    // The server's jobs, a page at a time: the next link keeps the filter.
    let (_, jobs) = bot.get(&format!("/jobs?server={id}&limit=1")).await;
    assert_eq!(jobs["total"], 2, "{jobs}");
    assert_eq!(
        jobs["next"],
        format!("/api/v1/jobs?server={id}&limit=1&offset=1")
    );
    let (_, older) = bot
        .get(&format!("/jobs?server={id}&limit=1&offset=1"))
        .await;
    assert_eq!(older["items"][0]["kind"], "server.start", "{older}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_roles_and_server_limits_decide_what_a_token_may_do() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let owner = add_user(&app, &admin, "owner", "owner-password-1").await;
    let operator = add_user(&app, &admin, "bob", "bob-password-1").await;
    let stranger = add_user(&app, &admin, "carol", "carol-password-1").await;
    let blueprint = create_blueprint(&owner, "Coop", "").await;
    let server = create_server(&owner, "alpha", blueprint, free_port()).await;
    let other = create_server(&owner, "beta", blueprint, free_port()).await;
    let res = owner
        .post(
            &format!("/servers/{server}/members"),
            &[("user_id", "3"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let settings = json!({"name": "alpha2", "hostname": "Alpha", "blueprint_id": blueprint});
    let put = async |bot: &Bot, id: i64| {
        bot.call(
            reqwest::Method::PUT,
            &format!("/servers/{id}"),
            Some(settings.clone()),
        )
        .await
    };
    let delete = async |bot: &Bot, id: i64| {
        bot.call(reqwest::Method::DELETE, &format!("/servers/{id}"), None)
            .await
    };

    // A stranger sees nothing of it.
    let carol = Bot::new(
        &app,
        &make_token(&stranger, "all", &["read", "operate", "manage"], &[]).await,
    );
    assert_eq!(
        carol.get(&format!("/servers/{server}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        carol
            .post(&format!("/servers/{server}/start"), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(carol.get("/servers").await.1["total"], 0);

    // An operator with every scope operates but does not manage.
    let bob = Bot::new(
        &app,
        &make_token(&operator, "all", &["read", "operate", "manage"], &[]).await,
    );
    let (status, job) = bob
        .post(&format!("/servers/{server}/restart"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let (status, problem) = put(&bob, server).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("owner and admins"),
        "{problem}"
    );
    assert_eq!(delete(&bob, server).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.get(&format!("/servers/{other}")).await.0,
        StatusCode::NOT_FOUND
    );

    // An operator's token that may use the console shows the RCON
    // password; a read-only one of the same operator does not, nor can it
    // start.
    let (_, seen) = bob.get(&format!("/servers/{server}")).await;
    assert!(
        seen["rcon_password"]
            .as_str()
            .is_some_and(|p| p.len() >= 16),
        "{seen}"
    );
    let bob_reads = Bot::new(&app, &make_token(&operator, "reader", &["read"], &[]).await);
    let (status, seen) = bob_reads.get(&format!("/servers/{server}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen["rcon_password"].is_null(), "{seen}");
    let (status, problem) = bob_reads
        .post(&format!("/servers/{server}/start"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        problem["detail"].as_str().unwrap().contains("\"operate\""),
        "{problem}"
    );

    // The owner's operate-only token cannot change settings; its manage
    // token can; a token limited to the other server does not see this one.
    let owner_ops = Bot::new(
        &app,
        &make_token(&owner, "ops", &["read", "operate"], &[]).await,
    );
    assert_eq!(put(&owner_ops, server).await.0, StatusCode::FORBIDDEN);
    let owner_manage = Bot::new(
        &app,
        &make_token(&owner, "manage", &["read", "manage"], &[]).await,
    );
    let (status, changed) = put(&owner_manage, server).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "alpha2");
    let limited = Bot::new(
        &app,
        &make_token(&owner, "beta only", &["read", "operate"], &[other]).await,
    );
    assert_eq!(
        limited.get(&format!("/servers/{server}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = limited.get("/servers").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], other);

    // A limited token makes nothing new and changes nothing shared.
    let (status, problem) = limited
        .post(
            "/servers",
            json!({"name": "x", "hostname": "x", "blueprint_id": blueprint}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    // An admin acts as one through a token with the admin scope only;
    // without it the token is like any user's.
    let plain = Bot::new(
        &app,
        &make_token(&admin, "plain", &["read", "manage"], &[]).await,
    );
    assert_eq!(plain.get("/servers").await.1["total"], 0);
    assert_eq!(delete(&plain, other).await.0, StatusCode::NOT_FOUND);
    let root = Bot::new(
        &app,
        &make_token(&admin, "root", &["read", "manage", "admin"], &[]).await,
    );
    assert_eq!(root.get("/servers").await.1["total"], 2);
    let (status, job) = delete(&root, other).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(
        job_end(&root, job["id"].as_i64().unwrap()).await,
        "succeeded"
    );
    // A limit outlives its server as a limit to nothing, even when a new
    // server gets the deleted one's id.
    let (status, made) = owner_manage
        .post(
            "/servers",
            json!({"name": "delta", "hostname": "d", "blueprint_id": blueprint, "port": free_port()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        made["id"], other,
        "SQLite gives the newest server's id again"
    );
    assert_eq!(limited.get("/servers").await.1["total"], 0);
    assert_eq!(
        limited.get(&format!("/servers/{other}")).await.0,
        StatusCode::NOT_FOUND
    );
    // Only admins' tokens may have the admin scope.
    let csrf = owner.csrf("/account").await;
    let res = owner
        .post_with_csrf(
            "/account/tokens",
            &[("name", "sneaky"), ("scopes", "admin")],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nor may a token limited to some servers have it: no admin power
    // keeps to a list of servers.
    let csrf = admin.csrf("/account").await;
    let res = admin
        .post_with_csrf(
            "/account/tokens",
            &[("name", "narrow"), ("scopes", "admin"), ("servers", "1")],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("cannot have the admin scope")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_unknown_and_expired_tokens_are_refused_and_guessing_is_slowed() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let token = make_token(&admin, "short-lived", &["read"], &[]).await;
    let bot = Bot::new(&app, &token);
    assert_eq!(bot.get("/servers").await.0, StatusCode::OK);

    // Tokens never open the pages: a page wants a session.
    let res = bot
        .http
        .get(app.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login");

    // Revoked: the next request fails.
    let (_, account) = admin.get_text("/account").await;
    let id = account
        .split("/account/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let csrf = admin.csrf("/account").await;
    let res = admin
        .post_with_csrf(&format!("/account/tokens/{id}/revoke"), &[], &csrf)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = bot
        .http
        .get(app.url("/api/v1/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");

    // Expired: refused like a revoked one.
    let old = Bot::new(&app, &make_token(&admin, "old", &["read"], &[]).await);
    assert_eq!(old.get("/servers").await.0, StatusCode::OK);
    {
        // Its expiry passes, straight in the database.
        use sqlx::{ConnectOptions, Connection};
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(app.config.database_path())
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE name = 'old'")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    // A change from outside the panel is seen within its memo's time.
    let refused = async {
        while old.get("/servers").await.0 != StatusCode::UNAUTHORIZED {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("the expired token is refused within seconds");

    // Guessing: a few free tries, then 429 with Retry-After.
    let guesser = Bot::new(&app, "l4m_not-a-token");
    let mut slowed = None;
    for attempt in 0..12 {
        let res = guesser
            .http
            .get(app.url("/api/v1/servers"))
            .bearer_auth("l4m_not-a-token")
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            slowed = Some((attempt, res.headers()["retry-after"].clone()));
            break;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let (attempt, retry_after) = slowed.expect("guessing tokens is slowed down");
    // The revoked and expired tokens' refusals above were failures too.
    assert!(attempt >= 3, "a few tries are free: slowed at {attempt}");
    assert!(retry_after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_problems_and_a_browser_session_needs_its_csrf_header() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bot = Bot::new(
        &app,
        &make_token(&admin, "bot", &["read", "manage"], &[]).await,
    );
    let blueprint = create_blueprint(&admin, "Coop", "").await;

    let (status, problem) = bot
        .post(
            "/servers",
            json!({"name": "", "hostname": "x", "blueprint_id": blueprint, "port": 80}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "port"], "{problem}");
    assert_eq!(problem["status"], 422);

    let res = bot
        .http
        .post(app.url("/api/v1/servers"))
        .bearer_auth(&bot.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(bot.get("/no/such/thing").await.0, StatusCode::NOT_FOUND);
    assert_eq!(bot.get("/servers/abc").await.0, StatusCode::NOT_FOUND);

    // A conflict names its field.
    let port = free_port();
    let body = json!({"name": "alpha", "hostname": "a", "blueprint_id": blueprint, "port": port});
    assert_eq!(
        bot.post("/servers", body.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, problem) = bot.post("/servers", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["errors"][0]["field"], "port", "{problem}");

    // The browser's session reads freely, and writes only with its token
    // in the header.
    let res = admin.get("/api/v1/servers").await;
    assert_eq!(res.status(), StatusCode::OK);
    let create = json!({"name": "beta", "hostname": "b", "blueprint_id": blueprint});
    let res = admin
        .http
        .post(app.url("/api/v1/servers"))
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let csrf = admin.csrf("/account").await;
    let res = admin
        .http
        .post(app.url("/api/v1/servers"))
        .header("x-csrf-token", csrf)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_route_and_has_a_reference_page() {
    let mut app = App::spawn().await;
    let client = app.client();
    let res = client.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for path in [
        "/servers",
        "/servers/{id}",
        "/servers/{id}/{action}",
        "/jobs/{id}/events",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} in {doc}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let (status, page) = client.get_text("/api/v1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("/api/v1/servers/{id}/{action}"), "{page}");
    assert!(!page.contains("<script"), "no script: the CSP holds");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workshop_items_are_added_through_the_api_and_their_build_followed() {
    use workshop_sim::{SimItem, WorkshopSim};
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 20_001));
    let mut app = App::spawn_configured(|config| {
        config.steam_api_url = sim.base_url();
        config.steam_api_retry_ms = 10;
    })
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let res = admin
        .post("/overlays", &[("name", "Maps"), ("kind", "workshop")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let overlay = Client::redirect_id(&res);

    let reader = Bot::new(&app, &make_token(&admin, "reader", &["read"], &[]).await);
    let (_, list) = reader.get("/overlays").await;
    assert_eq!(list["items"][0]["kind"], "workshop", "{list}");
    let (status, _) = reader
        .post(&format!("/overlays/{overlay}/items"), json!({"ids": "1"}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "adding needs the manage scope"
    );

    let bot = Bot::new(
        &app,
        &make_token(&admin, "maps", &["read", "manage"], &[]).await,
    );
    let (status, added) = bot
        .post(
            &format!("/overlays/{overlay}/items"),
            json!({"ids": "https://steamcommunity.com/sharedfiles/filedetails/?id=1, 999"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["added"], 1, "{added}");
    assert_eq!(added["refused"].as_array().unwrap().len(), 1, "{added}");
    let build = added["build"]["id"].as_i64().expect("a build was queued");
    assert_eq!(job_end(&bot, build).await, "succeeded");
    let (status, problem) = bot
        .post(
            &format!("/overlays/{overlay}/items"),
            json!({"ids": "not an id"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "ids", "{problem}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blueprints_are_made_saved_shared_copied_and_kept_while_in_use() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let a = Bot::new(
        &app,
        &make_token(&alice, "a", &["read", "manage"], &[]).await,
    );
    let b = Bot::new(&app, &make_token(&bob, "b", &["read", "manage"], &[]).await);

    let (status, made) = a.post("/blueprints", json!({"name": "Coop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();
    let (status, saved) = a
        .call(
            reqwest::Method::PUT,
            &format!("/blueprints/{id}"),
            Some(json!({"name": "Coop", "config": "sv_cheats 0", "arguments": "+map \"c2m1_highway\" -tickrate 100"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(
        saved["argument_list"],
        json!(["+map", "c2m1_highway", "-tickrate", "100"])
    );
    assert!(
        saved["preview"].as_str().unwrap().contains("sv_cheats 0"),
        "{saved}"
    );
    let (status, problem) = a
        .call(
            reqwest::Method::PUT,
            &format!("/blueprints/{id}"),
            Some(json!({"name": "Coop", "arguments": "+hostname \"unclosed"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "arguments", "{problem}");

    // Private until shared; then bob copies it, but cannot change it.
    assert_eq!(
        b.get(&format!("/blueprints/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = a
        .call(
            reqwest::Method::PUT,
            &format!("/blueprints/{id}/shared"),
            Some(json!({"shared": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, seen) = b.get(&format!("/blueprints/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["can_change"], false);
    let (status, copy) = b.post(&format!("/blueprints/{id}/copy"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["name"], "Coop (copy)");
    assert_eq!(copy["owner"], "bob");
    let (status, _) = b
        .call(reqwest::Method::DELETE, &format!("/blueprints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // In use: deleting it names the server.
    let (status, _) = b
        .post(
            "/servers",
            json!({"name": "bobs", "hostname": "b", "blueprint_id": id, "port": free_port()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = a
        .call(reqwest::Method::DELETE, &format!("/blueprints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("bobs"),
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_game_is_for_admin_tokens_and_activity_for_those_who_may_see_it() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let root = Bot::new(
        &app,
        &make_token(&admin, "root", &["read", "admin"], &[]).await,
    );
    let plain = Bot::new(
        &app,
        &make_token(&admin, "plain", &["read", "manage"], &[]).await,
    );
    let a = Bot::new(
        &app,
        &make_token(&alice, "a", &["read", "manage", "operate"], &[]).await,
    );

    let (status, game) = root.get("/game").await;
    assert_eq!(status, StatusCode::OK, "{game}");
    assert!(
        game["versions"].is_array() && game["servers"].is_array(),
        "{game}"
    );
    let (status, job) = root.post("/game/check", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["kind"], "game.check");
    // Without the admin scope an admin's token is a user's; a user's never.
    assert_eq!(plain.get("/game").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        plain.post("/game/update", json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(a.get("/game").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        root.post("/game/nonsense", json!({})).await.0,
        StatusCode::NOT_FOUND
    );

    // Activity: alice's server's own log for her, everything for admins.
    let blueprint = create_blueprint(&alice, "Mine", "").await;
    let (status, server) = a
        .post(
            "/servers",
            json!({"name": "alpha", "hostname": "a", "blueprint_id": blueprint, "port": free_port()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = server["id"].as_i64().unwrap();
    let (status, log) = a.get(&format!("/servers/{id}/activity")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["items"][0]["kind"], "server.create", "{log}");
    assert_eq!(log["items"][0]["actor"], "alice (token a)", "{log}");
    assert_eq!(a.get("/activity").await.0, StatusCode::NOT_FOUND);
    assert_eq!(plain.get("/activity").await.0, StatusCode::NOT_FOUND);
    let (status, all) = root.get("/activity?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let next = all["next"].as_str().expect("older entries follow");
    let (status, older) = root.get(next.trim_start_matches("/api/v1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(older["items"][0]["id"].as_i64() < all["items"][0]["id"].as_i64());
    app.stop().await;
}
