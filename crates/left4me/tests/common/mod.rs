//! Test harness: a temporary state root with a synthetic installation
//! (the srcds simulator as `srcds_linux` and `srcds_run`) and the real
//! `left4me` binary.
#![allow(dead_code, unreachable_pub)]

pub mod api;
pub mod internet;
pub mod machine;
pub mod panel;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const LEFT4ME: &str = env!("CARGO_BIN_EXE_left4me");
pub const SRCDS_SIM: &str = env!("CARGO_BIN_EXE_srcds-sim");

/// Fails the test loudly when not root: these tests mount overlayfs.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test mounts overlayfs and must run as root (CI runs it as root); it does not skip"
    );
}

/// A port free for both UDP (A2S) and TCP (RCON) right now.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The async twin of [`wait_until`]: asks `done` every 100 ms until it
/// says yes; fails naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct TestRoot {
    pub dir: tempfile::TempDir,
    /// Extra environment for every `left4me` call.
    pub env: Vec<(String, String)>,
}

impl TestRoot {
    pub fn new() -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("left4me-test-")
            .tempdir()
            .unwrap();
        let root = Self {
            dir,
            env: vec![
                ("LEFT4ME_RESTART_BACKOFF_MS".into(), "100".into()),
                ("LEFT4ME_STOP_TIMEOUT_MS".into(), "5000".into()),
            ],
        };
        let out = Command::new(SRCDS_SIM)
            .arg("make-installation")
            .arg(root.path().join("installation"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make-installation failed: {}",
            stderr(&out)
        );
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(LEFT4ME);
        cmd.arg("--root").arg(self.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env_remove("LEFT4ME_ROOT").env_remove("LEFT4ME_FAULT");
        cmd
    }

    /// Runs `left4me ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs `left4me ARGS`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "left4me {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn overlay(&self, name: &str, files: &[(&str, &str)]) {
        let dir = self.path().join("overlays").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (rel, content) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    /// Writes a spec file and returns its path.
    pub fn spec(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn status(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["instance", "status", name, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn merged(&self, name: &str) -> PathBuf {
        self.path().join("runtime").join(name).join("merged")
    }

    pub fn console_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join("runtime").join(name).join("console.log"))
            .unwrap_or_default()
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        // Leave no process or mount behind, whatever the test did.
        let Ok(out) = self.cmd().args(["instance", "list", "--json"]).output() else {
            return;
        };
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for instance in list {
            if let Some(name) = instance["name"].as_str() {
                let _ = self.cmd().args(["instance", "stop", name]).output();
            }
        }
    }
}

/// The lines a child prints on stdout, as they come.
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

pub fn a2s_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes running this test's simulated steamcmd (by its `argv[0]`:
/// other tests run simulators of their own at the same time).
pub fn steamcmd_pids(program: &Path) -> Vec<rustix::process::Pid> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next()?;
            (argv0 == program.as_os_str().as_encoded_bytes())
                .then(|| rustix::process::Pid::from_raw(pid))?
        })
        .collect()
}

/// The files of the 32-bit libraries the game install checks for.
pub fn libraries_32() -> Vec<&'static str> {
    left4me_host::game::LIBRARIES_32
        .iter()
        .map(|(file, _)| *file)
        .collect()
}

/// `dir/system`, a system root of the test's own holding `libraries`
/// (created empty): this host has no i386 architecture.
pub fn fake_system_root(dir: &Path, libraries: &[&str]) -> PathBuf {
    let system = dir.join("system");
    std::fs::create_dir_all(&system).unwrap();
    for lib in libraries {
        let path = system.join(lib);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    system
}

/// Whether a process with `marker` in its command line runs.
pub fn process_with_cmdline(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

/// PIDs of processes in, or holding open, the network namespace with
/// inode `namespace` (`stat -L /run/netns/NAME`): a build's, or its pasta.
pub fn processes_with_netns(namespace: u64) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let wanted = format!("net:[{namespace}]");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let fds = std::fs::read_dir(e.path().join("fd"));
            std::fs::metadata(e.path().join("ns/net")).is_ok_and(|m| m.ino() == namespace)
                || fds.is_ok_and(|mut fds| {
                    fds.any(|fd| {
                        fd.is_ok_and(|fd| {
                            std::fs::read_link(fd.path())
                                .is_ok_and(|l| l.as_os_str() == wanted.as_str())
                        })
                    })
                })
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The screenshots the docs show, as (browser test shot, file in
/// `docs/images/`). The browser test writes them there when
/// `LEFT4ME_DOC_IMAGES=1`, so the docs show the panel as it is; the docs
/// test checks that the docs show only these and that each is there.
pub const DOC_IMAGES: &[(&str, &str)] = &[
    ("08-server-running", "server.png"),
    ("05-blueprint-preview", "blueprint.png"),
    ("22-workshop-items", "workshop.png"),
];
