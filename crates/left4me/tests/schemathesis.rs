//! Schemathesis (from PyPI, installed by `./run-tests` into
//! `target/schemathesis`) against the served OpenAPI document, with a
//! real token of every scope: no 5xx, every answer of the documented
//! status, content type and schema. Bounded to a couple of minutes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::panel::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    let st = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/schemathesis/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: ./run-tests installs schemathesis from PyPI (python3 -m venv target/schemathesis && target/schemathesis/bin/pip install schemathesis)",
        st.display()
    );
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    // Something to find: a blueprint and a server of the admin's.
    let blueprint = create_blueprint(&admin, "Coop", "").await;
    create_server(&admin, "alpha", blueprint, common::free_port()).await;
    let csrf = admin.csrf("/account").await;
    let res = admin
        .post_with_csrf(
            "/account/tokens",
            &[
                ("name", "schemathesis"),
                ("scopes", "read"),
                ("scopes", "operate"),
                ("scopes", "manage"),
                ("scopes", "admin"),
            ],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let start = page.find("<code id=\"new-token\">").unwrap() + 21;
    let token = page[start..].split('<').next().unwrap().to_owned();

    // The token works: a run where every call got 401 would still pass
    // the schema checks (401 is documented), so prove it gets through.
    let listed: serde_json::Value = reqwest::Client::new()
        .get(app.url("/api/v1/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");

    let schema = app.url("/api/v1/openapi.json");
    let base = app.url("/api/v1");
    // Its caches land in its working directory: a scratch one.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_owned();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(cwd)
            .args(["run", &schema, "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            // Job and console logs stream until their job ends or the
            // panel stops; the rest answers at once. The second-factor
            // policy would lock the run's own token out (a 403 for
            // everything after, as documented), testing nothing more.
            .args([
                "--exclude-path-regex",
                "(/events|/log|/settings/second-factor)$",
            ])
            .args(["--max-examples", "25", "--max-time", "90", "--seed", "1"])
            .args(["--request-timeout", "10", "--workers", "1", "--no-color"])
            .args(["--generation-database", "none"])
            // Guessing slows down like a login would: keep within it.
            .args(["--rate-limit", "auto"])
            .output()
            .expect("schemathesis runs")
    });
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis ends within five minutes")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    // Its summary: "Test cases: 9447 generated, 9447 passed".
    let passed: u64 = text
        .lines()
        .find_map(|line| line.split(" generated, ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed > 100,
        "schemathesis ran its test cases ({passed}):\n{text}"
    );
    // Its summary, for `--nocapture`.
    eprintln!(
        "{}",
        text.lines().rev().take(25).collect::<Vec<_>>().join("\n")
    );
    app.stop().await;
}
