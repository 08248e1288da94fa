//! Schedules against the real panel and the simulated game: a run that
//! warns a player, waits for them to leave and restarts the server; a
//! failed step that stops the run and says why; a cancelled run; runs
//! missed while the panel was down (run once, or skipped as the schedule
//! says); and what each user may do. When runs come round (time zones,
//! DST) is tested with the timing itself, in `left4me-app`.

mod common;

use std::time::Duration;

use common::api::*;
use common::panel::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A plan: the steps, and the players' part (`{"players": …}`).
fn plan(steps: Value, players: Value) -> Value {
    let Value::Object(mut plan) = players else {
        panic!("the players' part is an object")
    };
    plan.insert("steps".into(), steps);
    Value::Object(plan)
}

fn schedule(name: &str, plan: &Value) -> Value {
    json!({"name": name, "timing": "04:00", "time_zone": "Europe/Berlin", "plan": plan})
}

/// The run's log and how it ended, once it has.
async fn run_log(client: &Client, job: i64) -> (String, String) {
    let (lines, end) = finished_job(client, job).await;
    (lines.join("\n"), end)
}

/// Waits until the panel has polled the server and seen `players`.
async fn wait_for_players(app: &App, server: i64, players: u8) {
    eventually(
        &format!("the panel to see {players} player(s)"),
        Duration::from_secs(20),
        async || app.live.get(server).map(|l| l.players) == Some(players),
    )
    .await;
}

async fn running_server(client: &Client, name: &str) -> i64 {
    let bp = create_blueprint(client, name, "maxplayers 8").await;
    let server = create_server(client, name, bp, free_port()).await;
    act_ok(client, server, "start").await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_warns_the_players_waits_for_them_to_leave_and_restarts_the_server() {
    let mut app = App::spawn_configured(|c| c.poll_interval_secs = 1).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let server = running_server(&admin, "coop").await;
    let bot = Bot::new(
        &app,
        &make_token(&admin, "bot", &["read", "operate", "manage"], &[]).await,
    );

    let (status, made) = bot
        .post(
            &format!("/servers/{server}/schedules"),
            schedule(
                "nightly restart",
                &plan(
                    json!([{"step": "say", "text": "Restarting now"}, {"step": "restart"}]),
                    json!({"players": "wait_for_empty", "up_to_minutes": 10, "warn_minutes": [5, 10]}),
                ),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();
    // The next runs: 04:00 in Berlin, a day apart.
    let next: Vec<i64> = serde_json::from_value(made["next_runs"].clone()).unwrap();
    assert_eq!(next.len(), 3, "{made}");
    assert_eq!(next[1] - next[0], 86_400, "{made}");
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let first = jiff::Timestamp::from_second(next[0])
        .unwrap()
        .to_zoned(berlin);
    assert_eq!((first.hour(), first.minute()), (4, 0), "{first}");

    // A player is on: the run warns them and waits.
    console(&admin, server, "sim_join Coach STEAM_1:0:42").await;
    wait_for_players(&app, server, 1).await;
    let (status, job) = bot.post(&format!("/schedules/{id}/run"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = job["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, history) = bot.get(&format!("/servers/{server}/console")).await;
        let warned = history["items"].as_array().unwrap().iter().any(|c| {
            c["command"] == "say \"nightly restart in 10 minutes\""
                && c["by"] == "schedule nightly restart"
                && c["error"].is_null()
        });
        if warned {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning reached the game: {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, again) = bot.post(&format!("/schedules/{id}/run"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "one run at a time: {again}");

    // Once the player leaves it goes ahead: the message, then the restart.
    console(&admin, server, "sim_leave Coach").await;
    let (log, end) = run_log(&admin, job).await;
    assert_eq!(end, "succeeded", "{log}");
    for expected in [
        "warning the players: nightly restart in 10 minutes",
        "waiting for 1 player(s) to leave",
        "nobody plays: going ahead",
        "step 1/2: say \"Restarting now\"",
        "step 2/2: restart",
    ] {
        assert!(log.contains(expected), "{expected:?} in:\n{log}");
    }
    let (_, jobs) = bot.get(&format!("/jobs?server={server}")).await;
    let restart = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "server.restart")
        .unwrap_or_else(|| panic!("a restart job: {jobs}"));
    assert_eq!(restart["state"], "succeeded", "{restart}");
    assert_eq!(restart["by"], "schedule nightly restart");

    // The schedule lists the run; the activity log names the schedule.
    let (_, shown) = bot.get(&format!("/schedules/{id}")).await;
    assert_eq!(shown["runs"][0]["id"], job, "{shown}");
    assert_eq!(shown["runs"][0]["state"], "succeeded", "{shown}");
    let (_, activity) = admin.get_text(&format!("/servers/{server}/activity")).await;
    assert!(activity.contains("schedule nightly restart"), "{activity}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_stops_the_run_and_a_cancelled_run_stops_between_steps() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "stopped", "maxplayers 8").await;
    let server = create_server(&admin, "stopped", bp, free_port()).await;
    let bot = Bot::new(
        &app,
        &make_token(&admin, "bot", &["read", "operate", "manage"], &[]).await,
    );
    let make = async |name: &str, steps: Value| -> i64 {
        let (status, made) = bot
            .post(
                &format!("/servers/{server}/schedules"),
                schedule(name, &plan(steps, json!({"players": "ignore"}))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        made["id"].as_i64().unwrap()
    };

    // The server is not running: its console does not answer, and the
    // restart after it is never queued.
    let failing = make(
        "broken",
        json!([{"step": "command", "command": "status"}, {"step": "restart"}]),
    )
    .await;
    let (_, job) = bot
        .post(&format!("/schedules/{failing}/run"), json!({}))
        .await;
    let (log, end) = run_log(&admin, job["id"].as_i64().unwrap()).await;
    assert_eq!(end, "failed", "{log}");
    assert!(log.contains("step 1 (console: status) failed"), "{log}");
    assert!(!log.contains("step 2/2"), "{log}");
    let (_, jobs) = bot.get(&format!("/jobs?server={server}")).await;
    assert!(
        !jobs.to_string().contains("server.restart"),
        "no restart was queued: {jobs}"
    );

    // Cancelled during a long wait: the steps after it never happen.
    let waiting = make(
        "slow",
        json!([{"step": "wait", "seconds": 3600}, {"step": "start"}]),
    )
    .await;
    let (_, job) = bot
        .post(&format!("/schedules/{waiting}/run"), json!({}))
        .await;
    let job = job["id"].as_i64().unwrap();
    let (status, cancelled) = bot.post(&format!("/jobs/{job}/cancel"), json!({})).await;
    assert!(status.is_success(), "{cancelled}");
    let (log, end) = run_log(&admin, job).await;
    assert_eq!(end, "cancelled", "{log}");
    assert!(!log.contains("step 2/2"), "{log}");
    let (_, jobs) = bot.get(&format!("/jobs?server={server}")).await;
    assert!(
        !jobs.to_string().contains("server.start"),
        "no start was queued: {jobs}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_missed_while_the_panel_was_down_runs_once_or_is_skipped() {
    let mut app = App::spawn_configured(|c| c.poll_interval_secs = 1).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let server = create_server(&admin, "coop", bp, free_port()).await;
    let bot = Bot::new(
        &app,
        &make_token(&admin, "bot", &["read", "manage"], &[]).await,
    );
    let mut ids = Vec::new();
    for (name, catch_up) in [("catches up", true), ("skips", false)] {
        let mut body = schedule(
            name,
            &plan(
                json!([{"step": "wait", "seconds": 1}]),
                json!({"players": "ignore"}),
            ),
        );
        body["catch_up"] = json!(catch_up);
        let (status, made) = bot
            .post(&format!("/servers/{server}/schedules"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        ids.push(made["id"].as_i64().unwrap());
    }

    // Down over both schedules' runs: their runs were due hours ago.
    app.stop().await;
    let database = app.config.database_path();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    let hours_ago = left4me_store::now() - 3 * 3600;
    sqlx::query("UPDATE schedules SET due_at = ?")
        .bind(hours_ago)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let config = app.config.clone();
    let root = std::mem::replace(&mut app.root, TestRoot::new());
    let mut app = App::spawn_with(root, config).await;
    let bot = Bot::new(&app, &bot.token);

    // Both runs are taken (moved on to tomorrow); one ran, once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let mut shown = Vec::new();
        for id in &ids {
            shown.push(bot.get(&format!("/schedules/{id}")).await.1);
        }
        let moved_on = shown
            .iter()
            .all(|s| s["next_runs"][0].as_i64().unwrap() > left4me_store::now());
        let ran = shown[0]["runs"][0]["state"] == "succeeded";
        if moved_on && ran {
            break shown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missed runs were not handled: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        shown[0]["runs"].as_array().unwrap().len(),
        1,
        "once: {}",
        shown[0]
    );
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (log, _) = run_log(&admin, shown[0]["runs"][0]["id"].as_i64().unwrap()).await;
    assert!(log.contains("missed while the panel was down"), "{log}");
    assert_eq!(shown[1]["runs"], json!([]), "{}", shown[1]);
    assert!(
        shown[1]["last_skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("missed while the panel was down"),
        "{}",
        shown[1]
    );
    let (_, activity) = admin.get_text(&format!("/servers/{server}/activity")).await;
    assert!(activity.contains("skipped a run"), "{activity}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_checked_and_kept_to_who_may_run_them() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let owner = add_user(&app, &admin, "olive", "olive-password-1").await;
    let bp = create_blueprint(&owner, "coop", "maxplayers 8").await;
    let server = create_server(&owner, "coop", bp, free_port()).await;
    let bot = Bot::new(
        &app,
        &make_token(&owner, "bot", &["read", "operate", "manage"], &[]).await,
    );

    // Mistakes are named by field.
    let (status, problem) = bot
        .post(
            &format!("/servers/{server}/schedules"),
            json!({"name": "", "timing": "25:00", "time_zone": "Mars/Olympus",
                   "plan": {"steps": [{"step": "say", "text": "a; quit"}], "players": "ignore"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["name", "timing", "time_zone", "steps"] {
        assert!(fields.contains(&field), "{field}: {problem}");
    }

    // Updating the game is for admins; panel-wide schedules too.
    let (status, problem) = bot
        .post(
            &format!("/servers/{server}/schedules"),
            schedule(
                "update",
                &plan(
                    json!([{"step": "update_game"}]),
                    json!({"players": "ignore"}),
                ),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, problem) = bot
        .post(
            "/schedules",
            schedule(
                "panel",
                &plan(
                    json!([{"step": "refresh_workshop"}]),
                    json!({"players": "ignore"}),
                ),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    // A stranger does not see the server's schedules.
    let (status, made) = bot
        .post(
            &format!("/servers/{server}/schedules"),
            schedule(
                "nightly",
                &plan(
                    json!([{"step": "restart"}]),
                    json!({"players": "only_when_empty"}),
                ),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();
    let (status, twice) = bot
        .post(
            &format!("/servers/{server}/schedules"),
            schedule(
                "nightly",
                &plan(json!([{"step": "restart"}]), json!({"players": "ignore"})),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{twice}");
    let stranger = add_user(&app, &admin, "sam", "sam-password-1").await;
    let snoop = Bot::new(
        &app,
        &make_token(&stranger, "snoop", &["read", "manage"], &[]).await,
    );
    assert_eq!(
        snoop.get(&format!("/schedules/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        snoop.get(&format!("/servers/{server}/schedules")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        snoop
            .call(reqwest::Method::DELETE, &format!("/schedules/{id}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_page_makes_changes_runs_and_deletes_them() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let server = create_server(&admin, "coop", bp, free_port()).await;
    let page = format!("/servers/{server}/schedules");
    let (status, html) = admin.get_text(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"no-schedules\""), "{html}");

    // A step the form cannot read is named, and what was typed stays.
    let fields = |steps: &'static str| {
        vec![
            ("name", "nightly"),
            ("timing", "04:30"),
            ("time_zone", "Europe/Berlin"),
            ("steps", steps),
            ("players", "wait_for_empty"),
            ("up_to_minutes", "15"),
            ("warn_minutes", "10, 5"),
            ("catch_up", "on"),
            ("enabled", "on"),
        ]
    };
    let res = admin.post(&page, &fields("say Restart soon\nreboot")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("&quot;reboot&quot; is not a step")
            || html.contains("&#34;reboot&#34; is not a step"),
        "{html}"
    );
    assert!(
        html.contains("say Restart soon\nreboot"),
        "what was typed stays: {html}"
    );

    let res = admin
        .post(&page, &fields("say Restart soon\nwait 1\nrestart"))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = admin.get_text(&page).await;
    for expected in [
        "04:30 (Europe/Berlin)",
        "waits up to 15 minutes for the server to empty; warns 10, 5 minutes before",
        "say &quot;Restart soon&quot;",
        // CET or CEST, as the season has it.
        "04:30 CE",
    ] {
        assert!(
            html.contains(expected) || html.contains(&expected.replace("&quot;", "&#34;")),
            "{expected}: {html}"
        );
    }
    let id: i64 = between(&html, "id=\"schedule-", "\"").parse().unwrap();

    // Changed: now off, at another time.
    let mut changed = fields("stop");
    changed.retain(|(k, _)| *k != "enabled");
    changed[1] = ("timing", "0 6 * * 1");
    let res = admin.post(&format!("/schedules/{id}"), &changed).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = admin.get_text(&page).await;
    assert!(html.contains("0 6 * * 1 (Europe/Berlin)"), "{html}");
    assert!(html.contains("<span class=\"state\">off</span>"), "{html}");
    assert!(
        !html.contains("Next:"),
        "an off schedule has no next runs: {html}"
    );

    // Run now leads to the run's job; then it is deleted.
    let res = admin.post(&format!("/schedules/{id}/run"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job: i64 = res.headers()["location"]
        .to_str()
        .unwrap()
        .strip_prefix("/jobs/")
        .unwrap()
        .parse()
        .unwrap();
    let (log, _) = run_log(&admin, job).await;
    assert!(log.contains("started by admin"), "{log}");
    let res = admin.post(&format!("/schedules/{id}/delete"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = admin.get_text(&page).await;
    assert!(html.contains("id=\"no-schedules\""), "{html}");
    app.stop().await;
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in:\n{text}"))
        + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_panels_own_routines_are_built_in_schedules_admins_change_but_keep() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let check = panel_schedule(&admin, "Check for game updates").await;
    panel_schedule(&admin, "Refresh Workshop overlays").await;
    let root = Bot::new(
        &app,
        &make_token(&admin, "root", &["read", "manage", "admin"], &[]).await,
    );
    let (status, listed) = root.get("/schedules").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let builtins: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["builtin"].as_str())
        .collect();
    assert_eq!(builtins, ["game_check", "workshop_refresh"], "{listed}");

    // Kept: turned off, not deleted.
    let (status, problem) = root
        .call(
            reqwest::Method::DELETE,
            &format!("/schedules/{check}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("turn it off"),
        "{problem}"
    );
    let (status, changed) = root
        .call(
            reqwest::Method::PUT,
            &format!("/schedules/{check}"),
            Some(json!({"name": "Check for game updates", "timing": "0 6 * * 1", "time_zone": "UTC",
                   "enabled": false, "plan": {"steps": [{"step": "check_game"}], "players": "ignore"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["next_runs"], json!([]), "{changed}");

    // Run by hand even while off; with no steamcmd here the check fails,
    // and the run says which step and why.
    let run = run_schedule(&admin, check).await;
    let (log, end) = run_log(&admin, run).await;
    assert_eq!(end, "failed", "{log}");
    assert!(
        log.contains("step 1 (check for game updates) failed")
            && log.contains("steamcmd is not at"),
        "{log}"
    );

    // Users see none of it.
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    assert_eq!(bob.get("/schedules").await.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}
