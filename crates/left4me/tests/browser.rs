//! End to end in headless Chromium (Debian's `chromium` and
//! `chromium-driver`): setup → login → files overlay with an uploaded
//! `cfg/server.cfg` → blueprint exposing it (the preview shows the exec
//! line) → server → start (the job log streams) → stop → delete. A
//! screenshot of each page is saved under `artifacts/e2e/` (and those
//! the docs show into `docs/images/` with `LEFT4ME_DOC_IMAGES=1`), and no page
//! may trip the Content-Security-Policy. A second test adds Workshop maps
//! (against the loopback Steam stand-in) and watches their build.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the page, which must have had no CSP violation.
/// Chromium refuses one while a page is still being attached after a
/// navigation: that is tried again, a few times.
async fn shot(browser: &Client, name: &str) {
    let mut tries = 0;
    let png = loop {
        match browser.screenshot().await {
            Ok(png) => break png,
            Err(e) if tries < 5 => {
                eprintln!("{name}: screenshot refused ({e}), trying again");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{name}: no screenshot: {e}"),
        }
    };
    std::fs::write(artifacts().join(format!("{name}.png")), &png).unwrap();
    if std::env::var_os("LEFT4ME_DOC_IMAGES").is_some_and(|v| v == "1")
        && let Some((_, file)) = DOC_IMAGES.iter().find(|(shot, _)| *shot == name)
    {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
        std::fs::write(docs.join(file), &png).unwrap();
    }
    let violations = csp_violations(browser).await;
    assert!(violations.is_empty(), "{name}: {violations:?}");
}

/// Records every Content-Security-Policy violation of every page the
/// browser opens, from before its first byte is parsed: a listener
/// installed through the DevTools protocol, as the panel's CSP forbids
/// inline script.
async fn watch_csp(browser: &Client, driver_port: u16) {
    let session = browser.session_id().await.unwrap().unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{driver_port}/session/{session}/goog/cdp/execute"
        ))
        .json(&serde_json::json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": { "source": "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`), true);" }
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

async fn csp_violations(browser: &Client) -> Vec<String> {
    let found = browser
        .execute("return window.__csp;", vec![])
        .await
        .unwrap();
    serde_json::from_value(found).expect("the CSP watcher is installed on every page")
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the element's text contains `needle`.
async fn wait_text(browser: &Client, css: &str, needle: &str, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await
            && el.text().await.is_ok_and(|t| t.contains(needle))
        {
            return;
        }
        if std::time::Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("{css} never contained {needle:?}; page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 10 s for `check`.
async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    check: impl Fn() -> F,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(browser: &Client, css: &str, value: &str) {
    let el = browser.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Whether the server page's action button `value` can be clicked.
async fn button_enabled(browser: &Client, value: &str) -> bool {
    browser
        .find(Locator::Css(&format!("button[value={value}]")))
        .await
        .unwrap()
        .is_enabled()
        .await
        .unwrap()
}

fn start_chromedriver() -> (KillOnDrop, u16) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver (.ci/run does); this test does not skip"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("chromedriver listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (KillOnDrop(child), port)
}

async fn open_browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver starts a Chromium session")
}

/// `left4me serve` on a free port with `env` set; its base URL and the
/// setup URL it printed.
fn start_panel(root: &TestRoot, env: &[(&str, String)]) -> (KillOnDrop, String, String) {
    let panel_port = free_port();
    let mut panel = KillOnDrop(
        root.cmd()
            .args(["serve", "--listen", &format!("127.0.0.1:{panel_port}")])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = BufReader::new(panel.0.stdout.take().unwrap());
    let setup_url = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains("/setup?token="))
                .map(str::to_owned)
        })
        .expect("the setup URL is printed");
    // The panel names itself localhost on loopback: cookies and passkeys
    // belong to that name.
    assert!(
        setup_url.starts_with(&format!("http://localhost:{panel_port}/")),
        "{setup_url}"
    );
    (panel, format!("http://localhost:{panel_port}"), setup_url)
}

/// One Chromium at a time: two at once on a 2-core machine slow each
/// other past the tests' waits.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Setup creates the first admin, who is then logged in; `shot_name`
/// saves the setup page first.
async fn set_up_admin(browser: &Client, setup_url: &str, shot_name: Option<&str>) {
    browser.goto(setup_url).await.unwrap();
    if let Some(name) = shot_name {
        shot(browser, name).await;
    }
    fill(browser, "input[name=username]", "friend").await;
    fill(browser, "input[name=password]", "friend-password-1").await;
    fill(browser, "input[name=confirm]", "friend-password-1").await;
    click(browser, "form button").await;
    wait_text(browser, "h1", "Servers", 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_friend_sets_up_and_runs_a_server_in_the_browser() {
    let _one_browser = ONE_BROWSER.lock().await;
    let root = TestRoot::new();
    let (_driver, driver_port) = start_chromedriver();
    // Graphs from the first seconds: history written every second.
    let (mut panel, base, setup_url) = start_panel(
        &root,
        &[
            ("LEFT4ME_HISTORY_WRITE_SECS", "1".into()),
            ("LEFT4ME_POLL_INTERVAL_SECS", "1".into()),
        ],
    );
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(driver_port, profile.path()).await;
    watch_csp(&browser, driver_port).await;

    set_up_admin(&browser, &setup_url, Some("01-setup")).await;

    // Log out and in again.
    click(&browser, "header form button").await;
    wait_text(&browser, "h1", "left4me", 10).await;
    shot(&browser, "02-login").await;
    fill(&browser, "input[name=username]", "friend").await;
    fill(&browser, "input[name=password]", "friend-password-1").await;
    click(&browser, "form button").await;
    wait_text(&browser, "h1", "Servers", 10).await;
    shot(&browser, "03-dashboard-empty").await;

    // A files overlay with left4dead2/cfg/server.cfg.
    browser.goto(&format!("{base}/overlays")).await.unwrap();
    fill(&browser, "#new-overlay input[name=name]", "Friendly config").await;
    click(&browser, "#new-overlay button").await;
    wait_text(&browser, "h1", "Overlay Friendly config", 10).await;
    let overlay_url = browser.current_url().await.unwrap().to_string();
    let overlay_id: i64 = overlay_url.rsplit('/').next().unwrap().parse().unwrap();
    fill(&browser, "input[name=name][placeholder]", "left4dead2/cfg").await;
    click(&browser, "form[action$='/mkdir'] button").await;
    browser
        .goto(&format!("{base}/overlays/{overlay_id}?path=left4dead2/cfg"))
        .await
        .unwrap();
    let local_cfg = profile.path().join("server.cfg");
    std::fs::write(&local_cfg, "sv_alltalk 1\n").unwrap();
    browser
        .find(Locator::Css("#upload-files"))
        .await
        .unwrap()
        .send_keys(local_cfg.to_str().unwrap())
        .await
        .unwrap();
    click(&browser, "#upload-form button").await;
    wait_text(&browser, "#uploaded", "Uploaded server.cfg", 10).await;
    wait_text(&browser, "#files", "server.cfg", 10).await;
    shot(&browser, "04-overlay-with-server-cfg").await;

    // A blueprint using it, with its server.cfg exposed.
    browser.goto(&format!("{base}/blueprints")).await.unwrap();
    fill(&browser, "#new-blueprint input[name=name]", "Coop").await;
    click(&browser, "#new-blueprint button").await;
    wait_text(&browser, "h1", "Blueprint Coop", 10).await;
    browser
        .find(Locator::Css("#add_overlay"))
        .await
        .unwrap()
        .select_by_value(&overlay_id.to_string())
        .await
        .unwrap();
    // Picking it adds it: the form saves without a second click.
    wait_text(&browser, "#saved", "Saved", 10).await;
    wait_text(&browser, "#overlay-rows", "Friendly config", 10).await;
    fill(&browser, "#config", "mp_gamemode coop").await;
    click(&browser, "#save-blueprint").await;
    wait_text(&browser, "#saved", "Saved", 10).await;
    click(&browser, &format!("#expose_{overlay_id}")).await;
    // The live preview follows the tick without saving.
    wait_text(
        &browser,
        "#preview",
        &format!("exec server_overlay_{overlay_id}"),
        10,
    )
    .await;
    let preview = text_of(&browser, "#preview").await;
    assert!(
        preview.starts_with(&format!(
            "exec server_overlay_{overlay_id}\nmp_gamemode coop"
        )),
        "{preview}"
    );
    shot(&browser, "05-blueprint-preview").await;
    click(&browser, "#save-blueprint").await;
    wait_text(&browser, "#saved", "Saved", 10).await;

    // A server from it.
    let game_port = free_port();
    browser.goto(&format!("{base}/")).await.unwrap();
    fill(&browser, "#new-server input[name=name]", "Friday night").await;
    fill(
        &browser,
        "#new-server input[name=hostname]",
        "Friends of left4me",
    )
    .await;
    fill(
        &browser,
        "#new-server input[name=port]",
        &game_port.to_string(),
    )
    .await;
    click(&browser, "#new-server button").await;
    wait_text(&browser, "h1", "Friday night", 10).await;
    let spec = text_of(&browser, "#spec").await;
    assert!(spec.contains("- \"+map\"\n- \"c1m1_hotel\""), "{spec}");
    assert!(
        spec.contains(&format!("alias: \"overlay_{overlay_id}\"")),
        "{spec}"
    );
    shot(&browser, "06-server").await;

    // Start: the job page streams the log until the server answers.
    click(&browser, "button[value=start]").await;
    wait_text(&browser, "#job-log", "ready: Friends of left4me", 30).await;
    wait_text(&browser, "#job-state", "succeeded", 10).await;
    shot(&browser, "07-start-job").await;
    let info = srcds_protocol::a2s::info(a2s_addr(game_port), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(info.name, "Friends of left4me");

    // The log tab shows the boot; the console answers `status`; ↑ recalls it.
    click(&browser, "a[href^='/servers/']").await;
    wait_text(&browser, "#server-state", "running", 10).await;
    // Only the actions that apply to a running server are enabled.
    for (action, enabled) in [("start", false), ("stop", true), ("restart", true)] {
        assert_eq!(button_enabled(&browser, action).await, enabled, "{action}");
    }
    shot(&browser, "08-server-running").await;
    click(&browser, "nav.tabs a[href$='/log']").await;
    wait_text(&browser, "#server-log", "] server process", 15).await;
    shot(&browser, "08a-log").await;
    // A flood of 6,000 lines: all arrive, and the tab keeps about the last
    // 5,000 (whole batches are dropped from the top).
    let url = browser.current_url().await.unwrap();
    let server_id = url.path().split('/').nth(2).unwrap().to_owned();
    let console_log = root
        .path()
        .join(format!("runtime/server-{server_id}/console.log"));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&console_log)
        .unwrap();
    for n in 0..6000 {
        use std::io::Write;
        writeln!(file, "flood {n}").unwrap();
    }
    wait_text(&browser, "#server-log", "flood 5999", 30).await;
    let shown = browser
        .execute(
            "return document.getElementById('server-log').textContent.trim().split('\\n');",
            vec![],
        )
        .await
        .unwrap();
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert!(
        (5000 - 256..=5000).contains(&shown.len()),
        "{} lines shown",
        shown.len()
    );
    assert_eq!(shown.last().map(String::as_str), Some("flood 5999"));
    let floods: Vec<usize> = shown
        .iter()
        .filter_map(|l| l.strip_prefix("flood ")?.parse().ok())
        .collect();
    assert!(
        floods.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost in between"
    );
    click(&browser, "nav.tabs a[href$='/console']").await;
    fill(&browser, "#console-input", "status").await;
    click(&browser, "#console-form button").await;
    wait_text(
        &browser,
        "#console-output",
        "hostname: Friends of left4me",
        15,
    )
    .await;
    let input = browser.find(Locator::Css("#console-input")).await.unwrap();
    input.send_keys("\u{E013}").await.unwrap(); // WebDriver's ArrowUp key
    let recalled = input.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(recalled, "status", "↑ recalls the last command");
    shot(&browser, "08b-console").await;

    // A player joins; the server page draws the players, CPU and memory
    // from the history the panel keeps (SVG, nothing the CSP refuses).
    fill(&browser, "#console-input", "sim_join Coach STEAM_1:0:42").await;
    click(&browser, "#console-form button").await;
    let server_url = format!("{base}/servers/{server_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        browser.goto(&server_url).await.unwrap();
        let drawn = browser
            .find_all(Locator::Css("#chart-players polyline.line-max"))
            .await
            .unwrap();
        let memory = browser
            .find_all(Locator::Css("#chart-memory polyline"))
            .await
            .unwrap();
        let players = browser.find_all(Locator::Css("#players")).await.unwrap();
        if !drawn.is_empty() && !memory.is_empty() && !players.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the graphs were never drawn"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ticks = browser
        .find_all(Locator::Css("#chart-players text.tick"))
        .await
        .unwrap();
    assert_eq!(ticks.len(), 8, "3 values and 5 times");
    shot(&browser, "08d-graphs").await;
    click(&browser, "p.ranges a[href='?graph=week#graphs']").await;
    wait_text(&browser, "p.ranges strong", "Last week", 10).await;
    assert!(
        !browser
            .find_all(Locator::Css("#chart-players polyline"))
            .await
            .unwrap()
            .is_empty(),
        "the week's graph has the same minutes"
    );
    shot(&browser, "08e-graphs-week").await;

    // A schedule: a nightly restart that waits for players and warns them.
    click(&browser, "nav.tabs a[href$='/schedules']").await;
    wait_text(&browser, "h1", "schedules", 10).await;
    fill(
        &browser,
        "form.schedule-form input[name=name]",
        "Nightly restart",
    )
    .await;
    fill(&browser, "form.schedule-form input[name=timing]", "04:30").await;
    fill(
        &browser,
        "form.schedule-form input[name=time_zone]",
        "Europe/Berlin",
    )
    .await;
    fill(
        &browser,
        "form.schedule-form textarea[name=steps]",
        "say Restarting for the night\nrestart",
    )
    .await;
    browser
        .find(Locator::Css(
            "form.schedule-form select[name=players] option[value=wait_for_empty]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        &browser,
        "form.schedule-form input[name=up_to_minutes]",
        "30",
    )
    .await;
    fill(
        &browser,
        "form.schedule-form input[name=warn_minutes]",
        "10, 5, 1",
    )
    .await;
    click(&browser, "form.schedule-form button").await;
    wait_text(&browser, "section.schedule", "04:30 (Europe/Berlin)", 10).await;
    wait_text(&browser, "section.schedule .next-runs", "04:30 CE", 10).await;
    shot(&browser, "08c-schedules").await;

    // Stop.
    click(&browser, "nav.tabs a:first-child").await;
    wait_text(&browser, "#server-state", "running", 10).await;
    click(&browser, "button[value=stop]").await;
    wait_text(&browser, "#job-state", "succeeded", 30).await;
    shot(&browser, "09-stop-job").await;

    // Delete (confirming the dialog).
    click(&browser, "a[href^='/servers/']").await;
    wait_text(&browser, "#server-state", "stopped", 10).await;
    for (action, enabled) in [("start", true), ("stop", false), ("restart", false)] {
        assert_eq!(button_enabled(&browser, action).await, enabled, "{action}");
    }
    click(&browser, "button[value=delete]").await;
    browser.accept_alert().await.unwrap();
    wait_text(&browser, "#job-state", "succeeded", 30).await;
    shot(&browser, "10-delete-job").await;
    browser.goto(&format!("{base}/")).await.unwrap();
    let page = browser.source().await.unwrap();
    assert!(!page.contains("Friday night"), "the server is gone");
    shot(&browser, "11-dashboard-after-delete").await;

    // Error pages too, and "Go back" returns to the page before.
    browser
        .goto(&format!("{base}/servers/999999"))
        .await
        .unwrap();
    wait_text(&browser, "h1", "Not Found", 10).await;
    shot(&browser, "12-not-found").await;
    click(&browser, "a[data-back]").await;
    wait_text(&browser, "h1", "Servers", 10).await;

    // The authenticator app's setup: its QR code is SVG the panel draws,
    // within the policy.
    browser.goto(&format!("{base}/account")).await.unwrap();
    click(&browser, "form[action='/account/totp'] button").await;
    wait_text(&browser, "h1", "Set up an authenticator app", 10).await;
    let qr = browser
        .find(Locator::Css("figure.qr svg"))
        .await
        .expect("the QR code is drawn");
    let size = qr.rectangle().await.unwrap();
    assert!(
        size.2 >= 200.0 && size.3 >= 200.0,
        "a QR code big enough to scan: {size:?}"
    );
    shot(&browser, "13-totp-setup").await;

    // The watcher sees what the policy refuses: inline script does not run.
    let ran = browser
        .execute(
            "const s = document.createElement('script'); s.textContent = 'window.__ran = true'; \
             document.body.appendChild(s); return window.__ran === true;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ran, serde_json::json!(false), "inline script is refused");
    wait_until_async("the refused inline script is reported", || async {
        csp_violations(&browser)
            .await
            .iter()
            .any(|v| v.starts_with("script-src"))
    })
    .await;

    browser.close().await.unwrap();
    let _ = panel.0.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn workshop_maps_are_added_and_listed_in_the_browser() {
    let _one_browser = ONE_BROWSER.lock().await;
    let sim = workshop_sim::WorkshopSim::start().await.unwrap();
    for id in [11, 12] {
        sim.add_item(workshop_sim::SimItem::vpk(id, 50_000));
    }
    sim.add_collection(20, "Our campaigns", &[workshop_sim::Child::item(12)]);
    let root = TestRoot::new();
    let (_driver, driver_port) = start_chromedriver();
    let (mut panel, base, setup_url) =
        start_panel(&root, &[("LEFT4ME_STEAM_API_URL", sim.base_url())]);
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(driver_port, profile.path()).await;
    watch_csp(&browser, driver_port).await;
    set_up_admin(&browser, &setup_url, None).await;

    browser.goto(&format!("{base}/overlays")).await.unwrap();
    fill(&browser, "#new-overlay input[name=name]", "Maps").await;
    browser
        .find(Locator::Css("#new-overlay select[name=kind]"))
        .await
        .unwrap()
        .select_by_value("workshop")
        .await
        .unwrap();
    click(&browser, "#new-overlay button").await;
    wait_text(&browser, "h1", "Workshop overlay Maps", 10).await;
    let overlay_url = browser.current_url().await.unwrap().to_string();
    fill(
        &browser,
        "#add-items textarea",
        "11\nhttps://steamcommunity.com/sharedfiles/filedetails/?id=20\n12abc",
    )
    .await;
    click(&browser, "#add-items button").await;
    wait_text(&browser, "[data-for=ids]", "is not a Workshop item", 10).await;
    shot(&browser, "20-workshop-refused").await;
    let kept = browser
        .find(Locator::Css("#add-items textarea"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(kept.contains("12abc"), "the text stays: {kept}");
    fill(
        &browser,
        "#add-items textarea",
        "11\nhttps://steamcommunity.com/sharedfiles/filedetails/?id=20",
    )
    .await;
    click(&browser, "#add-items button").await;
    wait_text(&browser, "#added", "Added 2", 10).await;
    // The build's job page streams to its end.
    click(&browser, "#added a").await;
    wait_text(&browser, "#job-state", "succeeded", 30).await;
    shot(&browser, "21-workshop-build").await;
    browser.goto(&overlay_url).await.unwrap();
    wait_text(&browser, "#items", "Map 11", 10).await;
    wait_text(&browser, "#items", "Map 12", 10).await;
    wait_text(&browser, "#sources", "collection of 1 item(s)", 10).await;
    wait_text(&browser, "#version", "version 1", 10).await;
    shot(&browser, "22-workshop-items").await;
    assert!(
        csp_violations(&browser).await.is_empty(),
        "{:?}",
        csp_violations(&browser).await
    );
    browser.close().await.unwrap();
    let _ = panel.0.kill();
}

/// Chromium's WebDriver virtual authenticator (a platform authenticator
/// that keeps discoverable passkeys and verifies its user): its id.
async fn add_virtual_authenticator(browser: &Client, driver_port: u16) -> String {
    let session = browser.session_id().await.unwrap().unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{driver_port}/session/{session}/webauthn/authenticator"
        ))
        .json(&serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no virtual authenticator: {body}"))
        .to_owned()
}

/// The passkeys the virtual authenticator holds.
async fn authenticator_credentials(
    browser: &Client,
    driver_port: u16,
    authenticator: &str,
) -> Vec<serde_json::Value> {
    let session = browser.session_id().await.unwrap().unwrap();
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{driver_port}/session/{session}/webauthn/authenticator/{authenticator}/credentials"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["value"].as_array().cloned().unwrap_or_default()
}

/// A look-alike address for the panel: every connection to the returned
/// port is relayed to `port`, as a phishing site relays a real one.
async fn relay_to(port: u16) -> (tokio::task::JoinHandle<()>, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (task, relay_port)
}

async fn log_out(browser: &Client) {
    click(browser, "header form button").await;
    wait_text(browser, "h1", "left4me", 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_are_added_used_to_sign_in_and_removed_in_the_browser() {
    let _one_browser = ONE_BROWSER.lock().await;
    let root = TestRoot::new();
    let (_driver, driver_port) = start_chromedriver();
    let (mut panel, base, setup_url) = start_panel(&root, &[]);
    let panel_port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(driver_port, profile.path()).await;
    watch_csp(&browser, driver_port).await;
    let authenticator = add_virtual_authenticator(&browser, driver_port).await;
    set_up_admin(&browser, &setup_url, None).await;

    // Signed in elsewhere too, until a new second factor ends that.
    let elsewhere = common::panel::Client::new(&base);
    let res = elsewhere.login("friend", "friend-password-1").await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(
        elsewhere.get("/account").await.status(),
        reqwest::StatusCode::OK
    );

    // Added from the account page: the first second factor comes with
    // recovery codes, and the other sessions end.
    browser.goto(&format!("{base}/account")).await.unwrap();
    fill(&browser, "#passkey-form input[name=name]", "laptop").await;
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "h1", "Your recovery codes", 10).await;
    let codes = browser
        .find_all(Locator::Css("#recovery-codes code"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10, "ten recovery codes");
    assert_eq!(
        elsewhere.get("/account").await.status(),
        reqwest::StatusCode::SEE_OTHER,
        "the other session ended"
    );
    let held = authenticator_credentials(&browser, driver_port, &authenticator).await;
    assert_eq!(
        held.len(),
        1,
        "the authenticator holds one passkey: {held:?}"
    );
    assert_eq!(
        held[0]["isResidentCredential"],
        serde_json::json!(true),
        "a discoverable passkey, which can sign in alone"
    );
    browser.goto(&format!("{base}/account")).await.unwrap();
    wait_text(&browser, "#passkey-list", "laptop", 10).await;
    wait_text(&browser, "#second-factor-state", "one of your passkeys", 10).await;
    shot(&browser, "14-passkeys").await;

    // The second factor after the password.
    log_out(&browser).await;
    fill(&browser, "input[name=username]", "friend").await;
    fill(&browser, "input[name=password]", "friend-password-1").await;
    click(&browser, "form[action='/login'] button").await;
    wait_text(&browser, "#passkey-form button", "Use your passkey", 10).await;
    shot(&browser, "15-passkey-second-factor").await;
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "h1", "Servers", 10).await;

    // Alone, once the user chose that: before, the passkey is refused
    // and says why.
    log_out(&browser).await;
    click(&browser, "#passkey-form button").await;
    wait_text(
        &browser,
        "#login-error",
        "sign in with your password first",
        10,
    )
    .await;
    fill(&browser, "input[name=username]", "friend").await;
    fill(&browser, "input[name=password]", "friend-password-1").await;
    click(&browser, "form[action='/login'] button").await;
    // The second step's page, not the login page it leaves (both have
    // a passkey button).
    wait_text(&browser, "#passkey-form button", "Use your passkey", 10).await;
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "h1", "Servers", 10).await;
    browser.goto(&format!("{base}/account")).await.unwrap();
    click(&browser, "#passkey-sign-in button").await;
    wait_text(&browser, "#passkey-sign-in", "sign you in alone", 10).await;
    log_out(&browser).await;
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "h1", "Servers", 10).await;

    // A look-alike address relaying the panel: the browser signs for the
    // address it shows, and the panel refuses that.
    log_out(&browser).await;
    let (relay, relay_port) = relay_to(panel_port).await;
    browser
        .goto(&format!("http://localhost:{relay_port}/login"))
        .await
        .unwrap();
    click(&browser, "#passkey-form button").await;
    wait_text(
        &browser,
        "#login-error",
        &format!(
            "made on http://localhost:{relay_port}, but this panel is http://localhost:{panel_port}"
        ),
        10,
    )
    .await;
    browser
        .goto(&format!("http://localhost:{relay_port}/"))
        .await
        .unwrap();
    wait_text(&browser, "h1", "left4me", 10).await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/login"),
        "the relayed sign-in opened no session"
    );
    relay.abort();

    // Removing the last second factor takes the password.
    browser.goto(&format!("{base}/login")).await.unwrap();
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "h1", "Servers", 10).await;
    browser.goto(&format!("{base}/activity")).await.unwrap();
    wait_text(&browser, "main", "a failed passkey sign-in as friend", 10).await;
    browser.goto(&format!("{base}/account")).await.unwrap();
    fill(
        &browser,
        "#passkey-list input[name=password]",
        "not-the-password",
    )
    .await;
    click(&browser, "#passkey-list button").await;
    wait_text(&browser, "#passkey-error", "not your password", 10).await;
    fill(
        &browser,
        "#passkey-list input[name=password]",
        "friend-password-1",
    )
    .await;
    click(&browser, "#passkey-list button").await;
    wait_text(&browser, "#second-factor-state", "Off.", 10).await;
    assert!(
        browser.find(Locator::Css("#passkey-list")).await.is_err(),
        "no passkey is listed"
    );

    // The authenticator still holds it, and the panel no longer takes it.
    log_out(&browser).await;
    click(&browser, "#passkey-form button").await;
    wait_text(&browser, "#login-error", "not registered here", 10).await;

    browser.close().await.unwrap();
    let _ = panel.0.kill();
}
