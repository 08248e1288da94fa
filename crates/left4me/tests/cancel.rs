//! A Cancel outlives the panel: the panel dies right after recording a
//! Cancel of a running start (a fault point, as a kill -9 would), and the
//! job ends as cancelled when the panel is back, not as interrupted.

mod common;

use std::time::Duration;

use common::panel::*;
use common::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_recorded_before_the_panel_died_ends_the_job_as_cancelled() {
    let mut root = TestRoot::new();
    root.env
        .push(("LEFT4ME_ADMIN_PASSWORD".into(), ADMIN.1.into()));
    root.ok(&["user", "create", ADMIN.0, "--admin"]);
    let port = free_port();
    let mut panel = PanelProcess::start_failing_at(&root, port, Some("cancel-recorded"));
    let admin = Client::new(&format!("http://{}", panel.addr));
    admin.login(ADMIN.0, ADMIN.1).await;
    // A server that stays silent for a minute: its start waits for it.
    let bp = create_blueprint(&admin, "slow", "sim_boot_delay_ms 60000").await;
    let server = create_server(&admin, "slow", bp, free_port()).await;
    let job = action(&admin, server, "start").await;
    page_showing(
        &admin,
        &format!("/jobs/{job}"),
        "waiting for the server",
        Duration::from_secs(30),
    )
    .await;
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
    let admin = Client::new(&format!("http://{}", panel.addr));
    admin.login(ADMIN.0, ADMIN.1).await;
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
