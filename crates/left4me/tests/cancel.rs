//! A Cancel outlives the panel: the panel dies right after recording a
//! Cancel of a running start (a fault point, as a kill -9 would), and the
//! job ends as cancelled when the panel is back, not as interrupted.

mod common;

use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;

/// A server that stays silent for a minute, and its start, once that is
/// waiting for it.
async fn slow_start(admin: &Client) -> (i64, i64) {
    let bp = create_blueprint(admin, "slow", "sim_boot_delay_ms 60000").await;
    let server = create_server(admin, "slow", bp, free_port()).await;
    let job = action(admin, server, "start").await;
    page_showing(
        admin,
        &format!("/jobs/{job}"),
        "waiting for the server",
        Duration::from_secs(30),
    )
    .await;
    (server, job)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_recorded_before_the_panel_died_ends_the_job_as_cancelled() {
    let root = root_with_admin();
    let port = free_port();
    let mut panel = PanelProcess::start_failing_at(&root, port, Some("cancel-recorded"));
    let admin = panel.admin().await;
    let (server, job) = slow_start(&admin).await;
    // The Cancel is recorded, then the panel dies before the job hears it.
    let csrf = admin.csrf("/account").await;
    let _ = admin
        .http
        .post(format!("{}/jobs/{job}/cancel", admin.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await;
    let status = panel.child.wait().unwrap();
    assert!(
        !status.success(),
        "the fault point ended the panel: {status}"
    );

    let panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let (status, page) = admin.get_text(&format!("/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    let state = &page[page.find("id=\"job-state\"").expect("the job's state")..];
    assert!(state[..80].contains("cancelled"), "{state}");
    assert!(!page.contains("interrupted"), "{page}");
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains(&format!("cancelled job #{job}")),
        "the Cancel's line was kept with it: {activity}"
    );
    act_ok(&admin, server, "stop").await;
    panel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_cancelled_from_the_shell_while_the_panel_is_down_ends_as_cancelled() {
    let root = root_with_admin();
    let port = free_port();
    let mut panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    // A start that waits for a silent server, and a stop queued behind it.
    let (server, start) = slow_start(&admin).await;
    let stop = action(&admin, server, "stop").await;
    let text = |out: std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // While the panel runs, its jobs are its own to cancel.
    let out = root.run(&["jobs", "cancel", &start.to_string()]);
    assert_eq!(out.status.code(), Some(2), "refused as a usage error");
    assert!(text(out).contains("the panel is running"));

    // The panel dies; the shell sees both jobs and cancels them.
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
    let listed = text(root.ok(&["jobs", "list"]));
    assert!(
        listed.contains(&format!("#{start}  running  start server"))
            && listed.contains(&format!("#{stop}  queued  stop server")),
        "{listed}"
    );
    let said = text(root.ok(&["jobs", "cancel", &stop.to_string()]));
    assert!(said.contains("was queued: cancelled"), "{said}");
    let said = text(root.ok(&["jobs", "cancel", &start.to_string()]));
    assert!(
        said.contains("ends as cancelled when the panel starts, and its server is wanted stopped"),
        "{said}"
    );
    let out = root.run(&["jobs", "cancel", "999999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(out).contains("there is no job #999999"));
    let listed = text(root.ok(&["jobs", "list"]));
    assert!(listed.contains("(cancel asked)"), "{listed}");

    // Back up: the start ended as cancelled and was undone, so the
    // server that kept booting without the panel is stopped.
    let panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let state_of = async |job: i64| {
        let (_, text) = admin.get_text(&format!("/api/v1/jobs/{job}")).await;
        let job: serde_json::Value = serde_json::from_str(&text).unwrap();
        job["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state_of(start).await, "cancelled");
    assert_eq!(state_of(stop).await, "cancelled");
    let page = page_showing(
        &admin,
        &format!("/servers/{server}"),
        "state-stopped",
        Duration::from_secs(40),
    )
    .await;
    assert!(page.contains("wanted: stopped"), "{page}");
    let status = root.status(&format!("server-{server}"));
    assert_eq!(status["running"], false, "{status}");
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains(&format!("cancelled job #{start}")) && activity.contains("command line"),
        "{activity}"
    );
    panel.terminate();
}
