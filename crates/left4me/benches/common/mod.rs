//! What the panel benchmarks share: a seeded database and `left4me serve`
//! as its own process.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use left4me_store::{NewServer, Store};

pub const LEFT4ME: &str = env!("CARGO_BIN_EXE_left4me");
/// The session cookie of the seeded admin, and its CSRF token.
pub const TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const CSRF: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A free loopback TCP port.
pub fn loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An admin "bench" with a session (`TOKEN`), one blueprint and `servers`
/// servers named `server-000`...; `port` gives each one's port (`None`:
/// the next free one of 30000-30999).
pub async fn seed(root: &Path, servers: usize, mut port: impl FnMut() -> Option<u16>) {
    let store = Store::open(&root.join("left4me.db")).await.unwrap();
    let user = store.create_user("bench", "x", true).await.unwrap();
    let bp = store.create_blueprint(user.id, "bench").await.unwrap();
    for i in 0..servers {
        let name = format!("server-{i:03}");
        store
            .create_server(&NewServer {
                owner_id: user.id,
                blueprint_id: bp.id,
                name: &name,
                hostname: &name,
                port: port(),
                port_range: 30000..=30999,
                rcon_password: "x",
                held_elsewhere: &[],
            })
            .await
            .unwrap();
    }
    store
        .create_session(&left4me_store::NewSessionRow {
            token_hash: &left4me_web::auth::token_hash(TOKEN),
            user_id: user.id,
            csrf_token: CSRF,
            ttl_secs: 3600,
            user_agent: "the pages bench",
            address: "127.0.0.1",
        })
        .await
        .unwrap();
    store.close().await;
}

pub fn spawn_panel(root: &Path, port: u16) -> Child {
    spawn_panel_with(root, port, &[])
}

/// `left4me serve` with more environment.
pub fn spawn_panel_with(root: &Path, port: u16, env: &[(&str, String)]) -> Child {
    Command::new(LEFT4ME)
        .args([
            "--root",
            root.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn wait_listening(port: u16) {
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, then reap.
pub fn stop(mut child: Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let _ = child.wait();
}
