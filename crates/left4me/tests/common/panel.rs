//! spawn_app(): the real panel on 127.0.0.1:0 with a fresh state root and
//! SQLite file, driven over HTTP with a cookie-keeping client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use left4me_web::config::Config;
use left4me_web::live::Live;
use left4me_web::{Launch, launch_with_listener};
use reqwest::StatusCode;
use tokio::sync::oneshot;

use std::process::{Child, Stdio};

use super::{LEFT4ME, TestRoot, stdout_lines, wait_until};

pub struct App {
    pub root: TestRoot,
    pub addr: SocketAddr,
    pub config: Config,
    /// The panel's live state: wait for poll cycles with it.
    pub live: Arc<Live>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");

pub fn test_config(root: &TestRoot) -> Config {
    Config {
        root: root.path().to_owned(),
        workers: 2,
        restart_backoff_ms: 100,
        stop_timeout_ms: 5000,
        // Tests that want the daily Workshop refresh turn it on.
        workshop_refresh_at: String::new(),
        ..Config::default()
    }
}

/// Creates a user straight in the database (like `left4me user create`).
pub async fn seed_user(config: &Config, name: &str, password: &str, admin: bool) {
    let store = left4me_web::open_store(config).await.unwrap();
    let hash = left4me_web::auth::hash_password(password).unwrap();
    store.create_user(name, &hash, admin).await.unwrap();
    store.close().await;
}

impl App {
    /// A running panel with an admin account (`ADMIN`).
    pub async fn spawn() -> Self {
        let root = TestRoot::new();
        let config = test_config(&root);
        seed_user(&config, ADMIN.0, ADMIN.1, true).await;
        Self::spawn_with(root, config).await
    }

    /// A running panel with an admin account and a changed configuration.
    pub async fn spawn_configured(change: impl FnOnce(&mut Config)) -> Self {
        let root = TestRoot::new();
        let mut config = test_config(&root);
        change(&mut config);
        seed_user(&config, ADMIN.0, ADMIN.1, true).await;
        Self::spawn_with(root, config).await
    }

    pub async fn spawn_with(root: TestRoot, config: Config) -> Self {
        Self::spawn_waiting(root, config, Duration::from_secs(20)).await
    }

    /// Start jobs wait up to `ready_timeout` for a server to answer.
    pub async fn spawn_waiting(root: TestRoot, config: Config, ready_timeout: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let live = Arc::new(Live::default());
        let launch = Launch {
            supervisor_program: LEFT4ME.into(),
            ready_timeout,
            live: Arc::clone(&live),
        };
        let server = tokio::spawn({
            let config = config.clone();
            async move {
                launch_with_listener(config, launch, listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            }
        });
        Self {
            root,
            addr,
            config,
            live,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A new browser-like client (own cookie jar, no redirects followed).
    pub fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.addr))
    }

    /// A client logged in as `user`.
    pub async fn login(&self, user: &str, password: &str) -> Client {
        let client = self.client();
        let res = client.login(user, password).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "login as {user} failed"
        );
        client
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("the panel shuts down within 30 s, open streams or not")
                .unwrap();
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

/// The value of `name="csrf"` or the csrf meta tag in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = ["name=\"csrf\" value=\"", "name=\"csrf-token\" content=\""]
        .iter()
        .find_map(|m| html.find(m).map(|i| i + m.len()))
        .expect("a CSRF token on the page");
    html[marker..marker + 64].to_owned()
}

impl Client {
    /// A browser-like client of `base` (own cookie jar, no redirects).
    pub fn new(base: &str) -> Self {
        Self::with_headers(base, reqwest::header::HeaderMap::new())
    }

    /// A client that sends `X-Forwarded-For: CLIENT`, as a reverse proxy
    /// in front of the panel would.
    pub fn forwarded_for(base: &str, client: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().unwrap());
        Self::with_headers(base, headers)
    }

    /// A client that says it is the browser `user_agent`.
    pub fn with_user_agent(base: &str, user_agent: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("user-agent", user_agent.parse().unwrap());
        Self::with_headers(base, headers)
    }

    fn with_headers(base: &str, headers: reqwest::header::HeaderMap) -> Self {
        Self {
            http: reqwest::Client::builder()
                .default_headers(headers)
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let res = self.get(path).await;
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// The CSRF token, from a page that has one.
    pub async fn csrf(&self, page: &str) -> String {
        csrf_in(&self.get_text(page).await.1)
    }

    /// Posts a form with this session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf("/account").await;
        self.post_with_csrf(path, fields, &token).await
    }

    pub async fn post_with_csrf(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        token: &str,
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", token)];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, user: &str, password: &str) -> reqwest::Response {
        let token = self.csrf("/login").await;
        self.post_with_csrf(
            "/login",
            &[("username", user), ("password", password)],
            &token,
        )
        .await
    }

    /// The id at the end of a redirect like `/servers/7`.
    pub fn redirect_id(res: &reqwest::Response) -> i64 {
        let location = res.headers()["location"].to_str().unwrap();
        location.rsplit('/').next().unwrap().parse().unwrap()
    }
}

/// SSE events of a finished stream: (id, event, data).
pub fn parse_sse(body: &str) -> Vec<(Option<i64>, String, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let (mut id, mut event, mut data) = (None, "message".to_owned(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (!block.starts_with(':')).then_some((id, event, data))
        })
        .collect()
}

/// Reads a job's event stream to its end.
pub async fn job_events(
    client: &Client,
    job: i64,
    last_event_id: Option<i64>,
) -> Vec<(Option<i64>, String, String)> {
    let mut req = client
        .http
        .get(format!("{}/jobs/{job}/events", client.base));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let res = tokio::time::timeout(Duration::from_secs(60), req.send())
        .await
        .expect("events answered")
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(60), res.text())
        .await
        .expect("the job ends")
        .unwrap();
    parse_sse(&body)
}

pub async fn create_blueprint(client: &Client, name: &str, config: &str) -> i64 {
    let res = client.post("/blueprints", &[("name", name)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = Client::redirect_id(&res);
    let res = client
        .post(
            &format!("/blueprints/{id}"),
            &[
                ("name", name),
                ("config", config),
                ("arguments", "+map c1m1_hotel"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    id
}

/// A blueprint named `name` with `overlay` in it.
pub async fn blueprint_with(client: &Client, name: &str, overlay: i64) -> i64 {
    let blueprint = create_blueprint(client, name, "").await;
    let overlay = overlay.to_string();
    let res = client
        .post(
            &format!("/blueprints/{blueprint}"),
            &[("name", name), ("config", ""), ("add_overlay", &overlay)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    blueprint
}

/// An admin creates a user, who logs in; returns that user's client.
pub async fn add_user(app: &App, admin: &Client, name: &str, password: &str) -> Client {
    let res = admin
        .post("/users", &[("username", name), ("password", password)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.login(name, password).await
}

/// Posts a server's settings form.
pub async fn post_settings(
    client: &Client,
    server: i64,
    name: &str,
    hostname: &str,
    blueprint: i64,
) -> reqwest::Response {
    client
        .post(
            &format!("/servers/{server}/settings"),
            &[
                ("name", name),
                ("hostname", hostname),
                ("blueprint_id", &blueprint.to_string()),
            ],
        )
        .await
}

/// Posts the new-server form; `port` empty takes the next free one.
pub async fn post_server(
    client: &Client,
    name: &str,
    blueprint: i64,
    port: &str,
) -> reqwest::Response {
    client
        .post(
            "/servers",
            &[
                ("name", name),
                ("hostname", &format!("{name} host")),
                ("blueprint_id", &blueprint.to_string()),
                ("port", port),
            ],
        )
        .await
}

pub async fn create_server(client: &Client, name: &str, blueprint: i64, port: u16) -> i64 {
    let res = post_server(client, name, blueprint, &port.to_string()).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    Client::redirect_id(&res)
}

/// Runs a server action to the end; it must succeed. Returns the job.
pub async fn act_ok(client: &Client, server: i64, what: &str) -> i64 {
    let job = action(client, server, what).await;
    let events = job_events(client, job, None).await;
    assert_eq!(events.last().unwrap().2, "succeeded", "{what}: {events:?}");
    job
}

pub async fn action(client: &Client, server: i64, what: &str) -> i64 {
    let res = client
        .post(&format!("/servers/{server}/action"), &[("action", what)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Client::redirect_id(&res)
}

pub async fn console(client: &Client, server: i64, command: &str) -> serde_json::Value {
    let token = client.csrf("/account").await;
    let res = client
        .http
        .post(format!("{}/servers/{server}/console", client.base))
        .header("accept", "application/json")
        .header("x-csrf-token", token)
        .form(&[("command", command)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Reads the log stream's SSE `lines` events until `done` says so: one
/// `(id, text)` per line, where only a batch's last line carries the id.
pub async fn read_lines_until<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
    seen: &mut Vec<(String, String)>,
    done: impl Fn(&[(String, String)]) -> bool,
) {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(seen) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; lines so far: {seen:#?}"))
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut data, mut is_lines) = (String::new(), Vec::new(), false);
            for l in block.lines() {
                if let Some(v) = l.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = l.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                } else if l == "event: lines" {
                    is_lines = true;
                }
            }
            if is_lines {
                let last = data.len().saturating_sub(1);
                for (i, text) in data.into_iter().enumerate() {
                    let id = if i == last { id.clone() } else { String::new() };
                    seen.push((id, text));
                }
            }
        }
    }
}

pub async fn open_log(
    client: &Client,
    server: i64,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .http
        .get(format!("{}/servers/{server}/log/events", client.base));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

/// Posts a Game page button; returns the job it redirects to.
pub async fn game_action(client: &Client, action: &str) -> i64 {
    let res = client.post(&format!("/game/{action}"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{action}");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/jobs/"), "{location}");
    Client::redirect_id(&res)
}

/// The job's log lines and its end state.
pub async fn finished_job(client: &Client, job: i64) -> (Vec<String>, String) {
    let events = job_events(client, job, None).await;
    let end = events.last().unwrap().clone();
    assert_eq!(end.1, "end", "{events:?}");
    let lines = events
        .iter()
        .filter(|e| e.1 == "line")
        .map(|e| {
            let line: serde_json::Value = serde_json::from_str(&e.2).unwrap();
            line["line"].as_str().unwrap().to_owned()
        })
        .collect();
    (lines, end.2)
}

/// The page at `path` once it answers 200 and shows `text`, asked every
/// 200 ms for up to `timeout`.
pub async fn page_showing(client: &Client, path: &str, text: &str, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (status, page) = client.get_text(path).await;
        if status == StatusCode::OK && page.contains(text) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {text:?} within {timeout:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A state root with the test's admin in its database, made by the
/// command line, for panels run as processes.
pub fn root_with_admin() -> TestRoot {
    let mut root = TestRoot::new();
    root.env
        .push(("LEFT4ME_ADMIN_PASSWORD".into(), ADMIN.1.into()));
    root.ok(&["user", "create", ADMIN.0, "--admin"]);
    root
}

/// `left4me serve` as its own process, with its stdout lines.
pub struct PanelProcess {
    pub child: Child,
    pub addr: String,
    pub stdout: std::sync::mpsc::Receiver<String>,
    /// Its log (stderr, at debug level), a file: not a terminal.
    pub log: std::path::PathBuf,
}

impl PanelProcess {
    pub fn start(root: &TestRoot, port: u16) -> Self {
        Self::start_failing_at(root, port, None)
    }

    /// The panel, aborting at the fault point `fault` when it is reached
    /// (`left4me_host::events::fault_point`).
    pub fn start_failing_at(root: &TestRoot, port: u16, fault: Option<&str>) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let log = root.path().join("panel-stderr.log");
        let mut cmd = root.cmd();
        if let Some(fault) = fault {
            cmd.env("LEFT4ME_FAULT", fault);
        }
        let mut child = cmd
            .args(["serve", "--listen", &addr])
            .env("LEFT4ME_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let rx = stdout_lines(&mut child);
        wait_until("the panel listens", Duration::from_secs(20), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        Self {
            child,
            addr,
            stdout: rx,
            log,
        }
    }

    /// The path and query of the setup URL the panel prints.
    pub fn setup_path(&self) -> String {
        let line = std::iter::from_fn(|| self.stdout.recv_timeout(Duration::from_secs(10)).ok())
            .find(|l| l.contains("/setup?token="))
            .expect("the setup URL is printed");
        let url = line.split_whitespace().last().unwrap();
        // On loopback the panel names itself localhost.
        let prefix = format!(
            "http://{}/setup?token=",
            self.addr.replace("127.0.0.1", "localhost")
        );
        assert!(url.starts_with(&prefix), "{line}");
        url[prefix.len() - "/setup?token=".len()..].to_owned()
    }

    /// A client of this panel, signed in as the test's admin.
    pub async fn admin(&self) -> Client {
        let client = Client::new(&format!("http://{}", self.addr));
        client.login(ADMIN.0, ADMIN.1).await;
        client
    }

    /// SIGTERM; the panel must stop cleanly.
    pub fn terminate(mut self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "SIGTERM shuts down cleanly: {status}");
    }
}

/// The id of the panel's schedule `name` (the panel makes its built-in
/// ones on its first pass once an admin exists: waited for).
pub async fn panel_schedule(admin: &Client, name: &str) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, page) = admin.get_text("/schedules").await;
        if let Some(at) = page.find(&format!("<h2>{name}")) {
            let marker = "id=\"schedule-";
            let start = page[..at].rfind(marker).expect("a schedule's section") + marker.len();
            return page[start..].split('"').next().unwrap().parse().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no schedule {name:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a schedule now from its page; the run's job.
pub async fn run_schedule(client: &Client, id: i64) -> i64 {
    let res = client.post(&format!("/schedules/{id}/run"), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "run schedule {id}");
    Client::redirect_id(&res)
}
