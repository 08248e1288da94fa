//! Metrics for Prometheus against the real panel: Debian's `promtool`
//! finds the exposition well-formed and named by the conventions, Debian's
//! `prometheus` scrapes the panel's metrics address and its query API
//! returns the player who joined a simulated server and the job that ran;
//! on the panel's own address only an admin's read token gets them; every
//! request carries an id that its log lines name.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::api::make_token;
use common::panel::*;
use common::*;
use reqwest::StatusCode;

/// Debian's Prometheus on loopback, scraping `target` every second.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: left4me\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("Debian's prometheus is installed (run-tests installs it)");
        let url = format!("http://127.0.0.1:{port}");
        Self {
            child,
            url,
            _dir: dir,
        }
    }

    /// The value of the one series `query` selects, once it has one.
    async fn value(&self, query: &str) -> Option<String> {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        let result = body["data"]["result"].as_array()?;
        Some(result.first()?["value"][1].as_str()?.to_owned())
    }

    /// Waits until `query` gives `expected`.
    async fn wait_for(&self, query: &str, expected: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.value(query).await;
            if value.as_deref() == Some(expected) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus never said {expected} for {query} (last: {value:?}); its log: {}",
                std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn promtool_check(exposition: &str) -> String {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn monitoring() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

/// The metrics the packaged Grafana dashboard and alert rules name.
fn shipped_metric_names() -> std::collections::BTreeSet<String> {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("left4me-grafana.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let rules = std::fs::read_to_string(monitoring().join("left4me-alerts.yml")).unwrap();
    exprs.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr: "))
            .map(str::to_owned),
    );
    assert!(exprs.len() > 10, "{exprs:?}");
    exprs
        .iter()
        .flat_map(|e| {
            e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("left4me_") || w.starts_with("process_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_packaged_alert_rules_pass_promtool_and_their_own_tests() {
    for args in [
        &["check", "rules", "left4me-alerts.yml"][..],
        &["test", "rules", "left4me-alerts.test.yml"][..],
    ] {
        let out = Command::new("/usr/bin/promtool")
            .args(args)
            .current_dir(monitoring())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_players_and_jobs_of_the_panel() {
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut app = App::spawn_configured(|c| {
        c.poll_interval_secs = 1;
        c.metrics_listen = Some(metrics_addr.parse().unwrap());
    })
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let server = create_server(&admin, "coop", bp, free_port()).await;
    act_ok(&admin, server, "start").await;
    // A poll after the start, so the server has its series.
    app.live.wait_for_cycles(app.live.cycles() + 2).await;

    // The exposition as Prometheus reads it: well-formed, and named as
    // promtool's lint wants (units, _total, help).
    let res = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let mut text = res.text().await.unwrap();
    // The disk is measured by a task of its own, soon after the start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("# TYPE left4me_disk_used_bytes gauge") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disk use was never measured"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = reqwest::get(format!("http://{metrics_addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert!(
        text.contains("left4me_disk_used_bytes{part=\"game\"}"),
        "{text}"
    );
    for family in [
        "left4me_server_up",
        "left4me_server_players",
        "left4me_server_cpu_seconds_total",
        "left4me_jobs_total",
        "left4me_job_duration_seconds",
        "left4me_http_requests_total",
        "left4me_backup_last_failed",
        "process_resident_memory_bytes",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} with its help: {text}"
        );
    }
    let lint = promtool_check(&text);
    assert_eq!(lint.trim(), "", "promtool finds nothing to say: {lint}");
    // What the packaged dashboard and alert rules ask for is what the
    // panel exports.
    for name in shipped_metric_names() {
        assert!(
            text.contains(&format!("\n{name}")) || text.contains(&format!("# TYPE {name} ")),
            "{name}, which the dashboard or the alerts use, is exported: {text}"
        );
    }

    // Prometheus sees a player join and the start that ran.
    let prometheus = Prometheus::start(&metrics_addr);
    prometheus
        .wait_for("left4me_server_players{server=\"coop\"}", "0")
        .await;
    prometheus
        .wait_for("left4me_server_up{server=\"coop\"}", "1")
        .await;
    console(&admin, server, "sim_join Coach STEAM_1:0:42").await;
    prometheus
        .wait_for("left4me_server_players{server=\"coop\"}", "1")
        .await;
    prometheus
        .wait_for("left4me_server_max_players{server=\"coop\"}", "8")
        .await;
    prometheus
        .wait_for(
            "left4me_jobs_total{kind=\"server.start\",outcome=\"succeeded\"}",
            "1",
        )
        .await;
    prometheus
        .wait_for(
            "left4me_server_map_info{server=\"coop\",map=\"c1m1_hotel\"}",
            "1",
        )
        .await;
    let memory = prometheus
        .value("left4me_server_memory_bytes{server=\"coop\"}")
        .await
        .expect("the server's memory");
    assert!(
        memory.parse::<f64>().unwrap() > 1e6,
        "the simulator's resident memory: {memory}"
    );
    // A stop is a job too, and the server is down after it.
    act_ok(&admin, server, "stop").await;
    prometheus
        .wait_for(
            "left4me_jobs_total{kind=\"server.stop\",outcome=\"succeeded\"}",
            "1",
        )
        .await;
    prometheus
        .wait_for("left4me_server_up{server=\"coop\"}", "0")
        .await;
    prometheus
        .wait_for(
            "sum(left4me_http_requests_total{route=\"/servers/{id}/action\",method=\"POST\",status=\"303\"})",
            "2",
        )
        .await;
    // A backup: when it succeeded, for the alert on old backups.
    prometheus
        .wait_for("left4me_backup_last_success_timestamp_seconds", "0")
        .await;
    let res = admin.post("/backups", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
    assert_eq!(end, "succeeded", "{log:?}");
    prometheus
        .wait_for(
            "left4me_backup_last_success_timestamp_seconds > bool (time() - 600)",
            "1",
        )
        .await;
    prometheus.wait_for("left4me_backup_last_failed", "0").await;
    app.stop().await;
}

/// `/metrics` on the panel's address, with `token` if given.
async fn scrape(app: &App, token: Option<&str>) -> (StatusCode, String) {
    let mut req = reqwest::Client::new().get(app.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_panels_address_only_an_admins_read_token_gets_the_metrics() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let token = make_token(&admin, "prometheus", &["read"], &[]).await;
    // Off by default: said, not served.
    let (status, body) = scrape(&app, Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("metrics_on_panel"), "{body}");
    app.stop().await;

    let config = left4me_web::config::Config {
        metrics_on_panel: true,
        ..app.config.clone()
    };
    let mut app = App::spawn_with(app.root, config).await;
    let bob = {
        let _ = bob;
        app.login("bob", "bob-password-1").await
    };
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = scrape(&app, Some("l4m_not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bobs = make_token(&bob, "bob's", &["read"], &[]).await;
    let (status, body) = scrape(&app, Some(&bobs)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = scrape(&app, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("# TYPE left4me_http_requests_total counter"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_has_an_id_that_its_log_lines_name() {
    let root = TestRoot::new();
    let panel = PanelProcess::start(&root, free_port());
    let res = reqwest::get(format!("http://{}/health", panel.addr))
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    let res = reqwest::get(format!("http://{}/health", panel.addr))
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"].to_str().unwrap(), id);
    let log = panel.log.clone();
    wait_until(
        "the request's log line names its id",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log).is_ok_and(|l| {
                l.lines().any(|line| {
                    line.contains(&format!("request{{id={id}"))
                        && line.contains("route=/health")
                        && line.contains("answered")
                })
            })
        },
    );
    panel.terminate();
}
