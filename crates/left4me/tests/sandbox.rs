//! The build sandbox for real, both backends with the same tests: each
//! test runs a script that tries something it must not manage and checks
//! both that the script got there (its own output says so) and that it
//! failed, or that a limit stopped it and said which.
//!
//! Run here, the tests use bubblewrap (root, Debian's `bubblewrap`).
//! `systemd_runs_the_same_tests` boots a real systemd in a throwaway copy
//! of this machine (`common::machine`), installs the build unit, slice,
//! user and polkit rule, and runs this test binary inside as user
//! `left4me` with `LEFT4ME_TEST_SANDBOX=systemd`: then each test starts
//! `left4me-build@` units through polkit.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::internet::{self, Servers};
use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::sandbox::bubblewrap::Bubblewrap;
use left4me_host::sandbox::systemd::SystemdSandbox;
use left4me_host::sandbox::{BuildRun, Limits, Sandbox, SandboxError};

/// Set inside the machine: the tests drive `left4me-build@` units.
const BACKEND: &str = "LEFT4ME_TEST_SANDBOX";
/// Set where the network test runs in a world of test namespaces (the
/// machine, or a namespace of the outer test's): the greeters' port.
const NET_PORT: &str = "LEFT4ME_TEST_NET_PORT";
/// The greeters' port: the namespaces are the test's own.
const GREETER_PORT: u16 = 27080;
/// The machine's state root (the unit binds builds from below it).
const STATE: &str = "/var/lib/left4me";

fn under_systemd() -> bool {
    std::env::var(BACKEND).is_ok_and(|v| v == "systemd")
}

struct Run {
    result: Result<(), SandboxError>,
    lines: Vec<String>,
    layer: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Run {
    fn out(&self) -> String {
        self.lines.join("\n")
    }

    fn says(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }
}

/// The backend under test with `limits`. Under systemd the unit's own
/// limits apply (the machine's drop-in sets small ones); the output limit
/// is watched by the panel's side from `limits`.
fn sandbox(limits: Limits) -> Box<dyn Sandbox> {
    if under_systemd() {
        return Box::new(SystemdSandbox {
            units: left4me_host::units::Systemctl::default(),
            limits,
        });
    }
    let sandbox = Bubblewrap::new(limits);
    assert!(
        sandbox.bwrap.exists(),
        "these tests need bubblewrap at {} (apt install bubblewrap)",
        sandbox.bwrap.display()
    );
    Box::new(sandbox)
}

fn small() -> Limits {
    Limits {
        memory_bytes: 256 << 20,
        tasks: 64,
        cpus: 1,
        timeout: Duration::from_secs(20),
        output_bytes: 64 << 20,
        disk_reserve_bytes: 1 << 20,
    }
}

/// A new build's name and directory (kept while the `TempDir` lives).
fn new_build() -> (String, PathBuf, Option<tempfile::TempDir>) {
    let name = format!("test-{}-{}", std::process::id(), next_number());
    // Under systemd the unit binds the build from the state root.
    if under_systemd() {
        let dir = Path::new(STATE).join("tmp/builds").join(&name);
        (name, dir, None)
    } else {
        let temp = tempfile::tempdir().unwrap();
        (name, temp.path().to_owned(), Some(temp))
    }
}

fn run_with(script: &str, limits: Limits, hidden: &[PathBuf], cancel: &CancellationToken) -> Run {
    let (name, dir, keep) = new_build();
    let mut run = run_at(&dir, &name, script, limits, hidden, cancel);
    run._dir = keep;
    run
}

/// A build named `name` in `dir`.
fn run_at(
    dir: &Path,
    name: &str,
    script: &str,
    limits: Limits,
    hidden: &[PathBuf],
    cancel: &CancellationToken,
) -> Run {
    let layer = dir.join("layer");
    std::fs::create_dir_all(&layer).unwrap();
    std::fs::write(dir.join("script.sh"), script).unwrap();
    let (result, lines) = start(dir, name, limits, hidden, cancel);
    Run {
        result,
        lines,
        layer,
        _dir: None,
    }
}

/// Runs the build prepared in `dir`; its result and log lines.
fn start(
    dir: &Path,
    name: &str,
    limits: Limits,
    hidden: &[PathBuf],
    cancel: &CancellationToken,
) -> (Result<(), SandboxError>, Vec<String>) {
    let lines = Mutex::new(Vec::new());
    let sink = |e: Event| match e {
        Event::Stdout(l) | Event::Stderr(l) | Event::Step(l) => lines.lock().unwrap().push(l),
        Event::Progress { .. } => {}
    };
    let result = sandbox(limits).run(&BuildRun { name, dir, hidden }, &Ctx::new(&sink, cancel));
    (result, lines.into_inner().unwrap())
}

fn run(script: &str, limits: Limits) -> Run {
    run_with(script, limits, &[], &CancellationToken::new())
}

fn next_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn limit_message(run: &Run) -> String {
    match &run.result {
        Err(SandboxError::LimitHit(message)) => message.clone(),
        other => panic!(
            "expected a limit to stop the build, got {other:?}:\n{}",
            run.out()
        ),
    }
}

#[test]
fn a_script_writes_its_layer_and_its_output_streams() {
    let run = run(
        "set -e\necho building\nmkdir -p left4dead2/cfg\necho 'sv_cheats 0' > /overlay/left4dead2/cfg/x.cfg\necho oops >&2\nid -u\n",
        small(),
    );
    assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
    assert!(run.says("building") && run.says("oops"), "{}", run.out());
    let uid = run
        .lines
        .iter()
        .find_map(|l| l.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("id -u printed a uid: {}", run.out()));
    assert_ne!(uid, 0, "not root: {}", run.out());
    assert_eq!(
        std::fs::read_to_string(run.layer.join("left4dead2/cfg/x.cfg")).unwrap(),
        "sv_cheats 0\n"
    );
}

/// A new admin's host is not the test machine: a state root made by
/// `mktemp -d` (mode 0700), or a checkout under /root, keeps the build
/// user out of everything below it. Builds run all the same.
#[test]
fn builds_run_whatever_the_modes_above_their_directory() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let (name, dir, closed) = if under_systemd() {
        // The unit's directory is fixed: the build's own is closed.
        let (name, dir, _) = new_build();
        (name, dir.clone(), dir)
    } else {
        // As root the build runs as nobody, who is the one kept out.
        common::require_root();
        let name = format!("test-{}-{}", std::process::id(), next_number());
        let state = temp.path().join("state");
        (name.clone(), state.join("tmp/builds").join(&name), state)
    };
    std::fs::create_dir_all(dir.join("layer")).unwrap();
    std::fs::write(dir.join("script.sh"), "echo made > /overlay/made.txt\n").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (result, lines) = start(&dir, &name, small(), &[], &CancellationToken::new());
    assert!(result.is_ok(), "{result:?}\n{}", lines.join("\n"));
    assert!(
        !lines.iter().any(|l| l.contains("Permission denied")),
        "{}",
        lines.join("\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("layer/made.txt")).unwrap(),
        "made\n"
    );
    if under_systemd() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_failing_script_fails_the_build_with_its_status() {
    let run = run("echo before; exit 3\n", small());
    match &run.result {
        Err(SandboxError::Failed { status }) => assert!(status.contains('3'), "{status}"),
        other => panic!("{other:?}"),
    }
    assert!(run.says("before"));
}

#[test]
fn secrets_and_the_rest_of_the_host_stay_out_of_reach() {
    // A state root with a database and another overlay: the machine's
    // own under systemd; here one in a system directory the sandbox
    // shows, hidden as the build's caller hides the state root.
    let (root, temp) = if under_systemd() {
        (PathBuf::from(STATE), None)
    } else {
        let temp = tempfile::tempdir_in("/usr/local").unwrap();
        (temp.path().to_owned(), Some(temp))
    };
    let db = root.join("left4me.db");
    std::fs::write(&db, "secret rows").unwrap();
    let other = root.join("overlays/7/left4dead2/cfg/server.cfg");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, "rcon_password hunter2").unwrap();
    let hidden: Vec<PathBuf> = temp.iter().map(|t| t.path().to_owned()).collect();
    let script = format!(
        r#"
try() {{ if "$@" 2>/dev/null; then echo "BROKE OUT: $*"; else echo "refused: $1 $2"; fi; }}
try cat {db}
try cat {other}
try cat /etc/shadow
try ls /etc/left4me/left4me.toml
try touch /usr/local/x
try touch /etc/x
try touch /x
try mkdir /tmp/../usr/y
try unshare -U true
try mount -t tmpfs none /tmp
try ls /root /home/*
# Other services' files and sockets (the private /var/tmp aside).
echo "var: $(ls -A /var 2>/dev/null | grep -vx tmp | tr '\n' ' ')"
echo tmp-is-private > /tmp/mine && echo wrote-tmp
"#,
        db = db.display(),
        other = other.display()
    );
    let run = run_with(&script, small(), &hidden, &CancellationToken::new());
    assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
    assert!(!run.says("BROKE OUT"), "{}", run.out());
    for attempt in [
        "refused: cat ".to_owned() + &db.display().to_string(),
        "refused: cat ".to_owned() + &other.display().to_string(),
        "refused: cat /etc/shadow".into(),
        "refused: touch /usr/local/x".into(),
        "refused: touch /x".into(),
        "refused: unshare -U".into(),
        "refused: mount -t".into(),
    ] {
        assert!(run.says(&attempt), "{attempt}:\n{}", run.out());
    }
    assert!(run.says("wrote-tmp"));
    assert!(
        run.lines.iter().any(|l| l.trim_end() == "var:"),
        "{}",
        run.out()
    );
    assert!(
        !Path::new("/tmp/mine").exists(),
        "the sandbox's /tmp is its own"
    );
    assert!(!Path::new("/usr/local/x").exists());
}

#[test]
fn the_panels_port_on_loopback_is_out_of_reach() {
    let panel = TcpListener::bind("127.0.0.1:0").unwrap();
    panel.set_nonblocking(true).unwrap();
    let port = panel.local_addr().unwrap().port();
    let run = run(
        &format!(
            "if out=$(timeout 3 bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>&1); then echo CONNECTED; else echo \"no-connection: $out\"; fi\n"
        ),
        small(),
    );
    assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
    // Refused by the build's own loopback, not failing for another reason.
    assert!(
        run.says("no-connection") && run.says("Connection refused") && !run.says("CONNECTED"),
        "{}",
        run.out()
    );
    assert!(panel.accept().is_err(), "nothing reached the port");
}

/// The build reaches the public internet, by address and by name, but
/// not a private address, the host's own or its loopback. Here the test
/// makes a world of namespaces (`common::internet`) and runs itself in
/// it; in the machine, the machine's test made that world around it.
#[test]
fn a_build_reaches_the_internet_but_nothing_private_or_local() {
    if let Ok(port) = std::env::var(NET_PORT) {
        let run = run(&internet::probe_script(port.parse().unwrap()), small());
        assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
        assert!(run.says("network: the public internet"), "{}", run.out());
        internet::check_probes(&run.lines);
        return;
    }
    assert!(
        !under_systemd(),
        "the machine's test sets {NET_PORT} for the copy inside"
    );
    common::require_root();
    let world = TestWorld::new();
    let servers = Servers::start(
        std::fs::File::open(world.netns(&world.inet)).unwrap(),
        std::fs::File::open(world.netns(&world.host)).unwrap(),
        GREETER_PORT,
    );
    let me = std::env::current_exe().unwrap();
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &world.host])
        .arg(&me)
        .args([
            "--exact",
            "a_build_reaches_the_internet_but_nothing_private_or_local",
            "--nocapture",
        ])
        .env(NET_PORT, GREETER_PORT.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `ip netns exec` execs the test in place: the builds' names carry this.
    let inner = child.id();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the build in the test's world:\n{text}"
    );
    internet::check_reached(&servers);
    // Its namespace and pasta went with the build.
    let leftover = format!("left4me-build-test-{inner}-");
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&leftover))
        .collect();
    assert!(namespaces.is_empty(), "left behind: {namespaces:?}");
    // Nothing runs in the test's host any more (pasta did, beside the
    // build): only this process holds it, for its servers.
    let host = std::fs::metadata(world.netns(&world.host)).unwrap().ino();
    let others: Vec<u32> = common::processes_with_netns(host)
        .into_iter()
        .filter(|&pid| pid != std::process::id())
        .collect();
    assert_eq!(others, [0u32; 0], "pasta ended with the build");
}

/// Two namespaces of this test: the host the sandbox runs on, and the
/// internet beside it; removed (with the host's resolver file) on drop.
struct TestWorld {
    host: String,
    inet: String,
}

impl TestWorld {
    fn new() -> Self {
        let id = std::process::id();
        let world = Self {
            host: format!("left4me-test-host-{id}"),
            inet: format!("left4me-test-inet-{id}"),
        };
        world.remove();
        for name in [&world.host, &world.inet] {
            let made = std::process::Command::new("ip")
                .args(["netns", "add", name])
                .status()
                .unwrap();
            assert!(made.success(), "ip netns add {name} (apt install iproute2)");
        }
        // `ip netns exec` shows the host namespace this resolv.conf.
        let script = internet::setup_script(
            &world.inet,
            &format!("/etc/netns/{}/resolv.conf", world.host),
        );
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &world.host, "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "making the test's world: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        world
    }

    fn netns(&self, name: &str) -> PathBuf {
        Path::new("/run/netns").join(name)
    }

    fn remove(&self) {
        for name in [&self.inet, &self.host] {
            if self.netns(name).exists() {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "delete", name])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.host));
    }
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn an_endless_loop_is_stopped_at_the_time_limit() {
    let limits = Limits {
        timeout: Duration::from_secs(2),
        ..small()
    };
    let started = Instant::now();
    let run = run("echo looping\nwhile :; do :; done\n", limits);
    assert!(run.says("looping"), "the script ran: {}", run.out());
    let message = limit_message(&run);
    assert!(message.contains("time limit"), "{message}");
    // Stopped, not left looping: the loop never ends by itself. The bound
    // is loose because under a full test run the unit's journal can take
    // seconds to show its end (waited for, up to 10 s, before the build
    // reports), which says nothing of the limit itself.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped after {:?}:\n{}",
        started.elapsed(),
        run.out()
    );
}

#[test]
fn a_fork_bomb_meets_the_task_limit() {
    let limits = Limits {
        tasks: 32,
        timeout: Duration::from_secs(5),
        ..small()
    };
    let run = run("echo bombing\nb() { b | b; }; b\n", limits);
    assert!(run.says("bombing"), "the script ran: {}", run.out());
    let message = limit_message(&run);
    assert!(message.contains("task limit"), "{message}");
}

#[test]
fn a_memory_hog_meets_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..small()
    };
    // One endless line: `tail -n 1` keeps all of it in memory.
    let run = run(
        "echo hogging\nhead -c 512M /dev/zero | tail -n 1 > /dev/null\necho survived\n",
        limits,
    );
    assert!(run.says("hogging"), "the script ran: {}", run.out());
    // Where this host gives systemd no memory cgroup (a container on the
    // legacy hierarchy, as in CI), the build must say so, not pretend.
    if run.says("warning: the memory limit is not enforced on this host") {
        assert!(
            under_systemd(),
            "bubblewrap enforces it here:\n{}",
            run.out()
        );
        eprintln!("the memory limit is not enforced under this systemd; the build said so");
        return;
    }
    let message = limit_message(&run);
    assert!(message.contains("memory limit"), "{message}\n{}", run.out());
}

#[test]
fn filling_the_disk_meets_the_output_limit() {
    let limits = Limits {
        output_bytes: 16 << 20,
        ..small()
    };
    // One big file, then many small ones.
    let run_big = run(
        "head -c 100M /dev/zero > /overlay/big\necho after\n",
        limits.clone(),
    );
    assert!(
        limit_message(&run_big).contains("output limit (16 MiB)"),
        "{}",
        run_big.out()
    );
    let run_many = run(
        "for i in $(seq 1 100); do head -c 1M /dev/zero > /overlay/f$i; sleep 0.05; done\n",
        limits,
    );
    assert!(
        limit_message(&run_many).contains("output limit (16 MiB)"),
        "{}",
        run_many.out()
    );
}

/// The build that the machine's test gives a small disk of its own.
const SMALL_DISK_BUILD: &str = "small-disk";

/// A disk nearly full stops the build before the host runs out, below
/// the output limit, counting what the script hid from the panel too.
#[test]
fn a_nearly_full_disk_stops_the_build() {
    let limits = Limits {
        output_bytes: 1 << 30,
        disk_reserve_bytes: 16 << 20,
        ..small()
    };
    let script = "mkdir /overlay/hidden && chmod 700 /overlay/hidden\n\
                  for i in $(seq 1 64); do head -c 1M /dev/zero > /overlay/hidden/f$i || exit 1; sleep 0.05; done\n\
                  echo FILLED\n";
    let run = if under_systemd() {
        // A 48 MiB file system, mounted there by the machine's test.
        let dir = Path::new(STATE).join("tmp/builds").join(SMALL_DISK_BUILD);
        run_at(
            &dir,
            SMALL_DISK_BUILD,
            script,
            limits,
            &[],
            &CancellationToken::new(),
        )
    } else {
        common::require_root();
        let disk = SmallDisk::mount(48);
        run_at(
            &disk.0.path().join("build"),
            &format!("test-{}-{}", std::process::id(), next_number()),
            script,
            limits,
            &[],
            &CancellationToken::new(),
        )
    };
    let message = limit_message(&run);
    assert!(
        message.contains("less than the 16 MiB kept free for the host"),
        "{message}\n{}",
        run.out()
    );
    assert!(!run.says("FILLED"), "{}", run.out());
}

/// A tmpfs of `mb` MiB on a temporary directory, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(mb: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a small tmpfs");
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_cancel_ends_the_script_and_everything_it_started() {
    let cancel = CancellationToken::new();
    let marker = format!("left4me-sandbox-cancel-{}", std::process::id());
    let script =
        format!("echo started\n(exec -a {marker}-child sleep 300) &\nexec -a {marker} sleep 300\n");
    let thread = {
        let cancel = cancel.clone();
        std::thread::spawn(move || run_with(&script, small(), &[], &cancel))
    };
    // Cancel once the script runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::process_with_cmdline(&marker) {
        assert!(Instant::now() < deadline, "the script never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    cancel.cancel();
    let run = thread.join().unwrap();
    assert!(
        matches!(run.result, Err(SandboxError::Cancelled)),
        "{:?}",
        run.result
    );
    assert!(
        !common::process_with_cmdline(&marker),
        "the script's processes ended"
    );
}

/// A layer swapped for a link to a host directory (by a compromised
/// panel, say) is refused before the script runs, and the directory
/// stays root's. Under systemd the root helper refuses it, and the build
/// says which unit failed.
#[test]
fn a_layer_that_is_a_link_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::MetadataExt;
    let (name, dir, _keep) = new_build();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("script.sh"), "echo RAN\n").unwrap();
    let target = Path::new("/usr/share/doc");
    std::os::unix::fs::symlink(target, dir.join("layer")).unwrap();
    let (result, lines) = start(&dir, &name, small(), &[], &CancellationToken::new());
    let message = match &result {
        Err(e @ (SandboxError::Unavailable(_) | SandboxError::Io { .. })) => e.to_string(),
        other => panic!("the build must be refused, got {other:?}: {lines:?}"),
    };
    if under_systemd() {
        assert!(
            message.contains(&format!("left4me-build-prepare@{name}.service failed")),
            "{message}"
        );
    } else {
        assert!(message.contains("handing the layer"), "{message}");
    }
    assert!(!lines.iter().any(|l| l == "RAN"), "{lines:?}");
    assert_eq!(std::fs::metadata(target).unwrap().uid(), 0);
}

/// The same tests under a real systemd, through the packaged build unit
/// and polkit, as user left4me in group systemd-journal like the panel
/// (with small limits from a drop-in).
#[test]
fn systemd_runs_the_same_tests() {
    if under_systemd() {
        return; // This is the copy running inside the machine.
    }
    use common::machine::{Bind, Machine};
    // The machine has a /tmp of its own: the tree and the build come in
    // as binds, wherever this checkout lives.
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .canonicalize()
        .unwrap();
    let build = Path::new(common::LEFT4ME).parent().unwrap().to_owned();
    let machine = Machine::boot(&[
        Bind::read_only(&deploy, "/srv/deploy"),
        Bind::read_only(&build, "/srv/build"),
        Bind::disk(STATE),
    ]);
    machine.ok(&format!(
        r#"set -e
mkdir -p /etc/sysusers.d && cp /srv/deploy/sysusers.d/left4me.conf /etc/sysusers.d/left4me.conf
systemd-sysusers
install -m 0755 /srv/build/left4me /usr/bin/left4me
cp /srv/deploy/systemd/left4me-build@.service /srv/deploy/systemd/left4me-build-prepare@.service \
   /srv/deploy/systemd/left4me-build-finish@.service /srv/deploy/systemd/left4me-build-net@.service \
   /srv/deploy/systemd/l4d2-build.slice /etc/systemd/system/
mkdir -p /etc/systemd/system/left4me-build@.service.d
printf '[Service]\nMemoryMax=64M\nTasksMax=32\nLimitNPROC=32\nRuntimeMaxSec=5\nLimitFSIZE=16M\n' \
    > /etc/systemd/system/left4me-build@.service.d/test-limits.conf
mkdir -p /etc/polkit-1/rules.d
cp /srv/deploy/polkit/50-left4me.rules /etc/polkit-1/rules.d/
# A stand-in for the panel, which builds are bound to.
printf '[Service]\nExecStart=/bin/sleep infinity\n' > /etc/systemd/system/left4me.service
systemctl daemon-reload
systemctl restart polkit
systemctl start left4me.service
mkdir -p {STATE}/tmp/builds/{SMALL_DISK_BUILD}
mount -t tmpfs -o size=48m,mode=0755 tmpfs {STATE}/tmp/builds/{SMALL_DISK_BUILD}
chown -R left4me:left4me {STATE}
chmod 750 {STATE}
"#
    ));
    // The machine is the host of the test's internet.
    machine.ok(&format!(
        "ip netns add inet\n{}",
        internet::setup_script("inet", "/etc/resolv.conf")
    ));
    let servers = Servers::start(
        std::fs::File::open(format!("/proc/{}/root/run/netns/inet", machine.leader())).unwrap(),
        std::fs::File::open(format!("/proc/{}/ns/net", machine.leader())).unwrap(),
        GREETER_PORT,
    );
    let me = std::env::current_exe().unwrap();
    let inside = Path::new("/srv/build").join(me.strip_prefix(&build).unwrap());
    let out = machine.sh(&format!(
        "cd / && runuser -u left4me -G systemd-journal -- env {BACKEND}=systemd {NET_PORT}={GREETER_PORT} \
         RUST_BACKTRACE=1 {} --test-threads=1 --show-output --skip systemd_runs_the_same_tests 2>&1",
        inside.display()
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the tests under systemd:\n{text}");
    // Every test of this file but this one.
    let listed = std::process::Command::new(&me)
        .args(["--list", "--format", "terse"])
        .output()
        .unwrap();
    let others = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.ends_with(": test") && !l.starts_with("systemd_runs_the_same_tests"))
        .count();
    assert!(
        text.contains(&format!("test result: ok. {others} passed")),
        "every test ran under systemd ({others}):\n{text}"
    );
    // The memory test passes there on the build's own warning alone.
    if text.contains("the memory limit is not enforced under this systemd") {
        eprintln!(
            "note: this machine's systemd cannot enforce the build's memory limit; the build said so"
        );
    }
    internet::check_reached(&servers);
    // Every build's network went with it: left4me-build-net@ stops once
    // its build unit has (StopWhenUnneeded=, a moment after), so wait
    // for that, then say what is left if anything is.
    machine.ok(
        "for i in $(seq 100); do \
           if ! ls /run/netns | grep -q left4me-build- && ! pgrep -f '^[^ ]*pasta --netns' >/dev/null; \
           then exit 0; fi; sleep 0.1; \
         done; ls /run/netns; pgrep -af pasta; systemctl list-units 'left4me-build*'; exit 1",
    );

    // The panel dies during a build: the build ends with it.
    machine.ok(&format!(
        r#"set -e
b={STATE}/tmp/builds/orphan
mkdir -p $b/layer
printf 'exec -a left4me-orphaned-build sleep 300\n' > $b/script.sh
chown -R left4me:left4me $b
runuser -u left4me -- systemctl start --no-block left4me-build@orphan.service
for i in $(seq 100); do pgrep -f left4me-orphaned-build >/dev/null && break; sleep 0.1; done
pgrep -f left4me-orphaned-build
systemctl kill -s KILL left4me.service
for i in $(seq 100); do pgrep -f left4me-orphaned-build >/dev/null || break; sleep 0.1; done
! pgrep -f left4me-orphaned-build
systemctl is-active left4me-build@orphan.service && exit 1 || true
"#
    ));
}
