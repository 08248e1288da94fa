//! The bubblewrap sandbox for real: real namespaces, cgroups and limits.
//! Each test runs a script that tries something it must not manage and
//! checks both that the script got there (its own output says so) and
//! that it failed. Needs root and Debian's `bubblewrap`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::sandbox::bubblewrap::Bubblewrap;
use left4me_host::sandbox::{BuildRun, Limits, Sandbox, SandboxError};

struct Run {
    result: Result<(), SandboxError>,
    lines: Vec<String>,
    layer: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn out(&self) -> String {
        self.lines.join("\n")
    }

    fn says(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }
}

fn sandbox(limits: Limits) -> Bubblewrap {
    let sandbox = Bubblewrap::new(limits);
    assert!(
        sandbox.bwrap.exists(),
        "these tests need bubblewrap at {} (apt install bubblewrap)",
        sandbox.bwrap.display()
    );
    sandbox
}

fn small() -> Limits {
    Limits {
        memory_bytes: 256 << 20,
        tasks: 64,
        cpus: 1,
        timeout: Duration::from_secs(20),
        output_bytes: 64 << 20,
    }
}

fn run_with(script: &str, limits: Limits, hidden: &[PathBuf], cancel: &CancellationToken) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    std::fs::create_dir(&layer).unwrap();
    let script_file = dir.path().join("script.sh");
    std::fs::write(&script_file, script).unwrap();
    let lines = Mutex::new(Vec::new());
    let sink = |e: Event| match e {
        Event::Stdout(l) | Event::Stderr(l) | Event::Step(l) => lines.lock().unwrap().push(l),
        Event::Progress { .. } => {}
    };
    let name = format!("test-{}-{}", std::process::id(), rand_suffix());
    let result = sandbox(limits).run(
        &BuildRun {
            name: &name,
            script: &script_file,
            layer: &layer,
            hidden,
        },
        &Ctx::new(&sink, cancel),
    );
    Run {
        result,
        lines: lines.into_inner().unwrap(),
        layer,
        _dir: dir,
    }
}

fn run(script: &str, limits: Limits) -> Run {
    run_with(script, limits, &[], &CancellationToken::new())
}

fn rand_suffix() -> u64 {
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
    assert!(
        !run.says("\n0\n") && !run.lines.iter().any(|l| l == "0"),
        "not root: {}",
        run.out()
    );
    assert_eq!(
        std::fs::read_to_string(run.layer.join("left4dead2/cfg/x.cfg")).unwrap(),
        "sv_cheats 0\n"
    );
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
    let secret_dir = tempfile::tempdir_in("/usr/local").unwrap();
    std::fs::write(secret_dir.path().join("left4me.db"), "secret rows").unwrap();
    let db = secret_dir.path().join("left4me.db");
    let script = format!(
        r#"
try() {{ if "$@" 2>/dev/null; then echo "BROKE OUT: $*"; else echo "refused: $1 $2"; fi; }}
try cat {db}
try cat /etc/shadow
try ls /etc/left4me/left4me.toml
try touch /usr/local/x
try touch /etc/x
try touch /x
try mkdir /tmp/../usr/y
try unshare -U true
try mount -t tmpfs none /tmp
try ls /root /home/*
echo tmp-is-private > /tmp/mine && echo wrote-tmp
"#,
        db = db.display()
    );
    let run = run_with(
        &script,
        small(),
        &[secret_dir.path().to_owned()],
        &CancellationToken::new(),
    );
    assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
    assert!(!run.says("BROKE OUT"), "{}", run.out());
    for attempt in [
        "refused: cat ".to_owned() + &db.display().to_string(),
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
            "if timeout 3 bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null; then echo CONNECTED; else echo no-connection; fi\n"
        ),
        small(),
    );
    assert!(run.result.is_ok(), "{:?}\n{}", run.result, run.out());
    assert!(
        run.says("no-connection") && !run.says("CONNECTED"),
        "{}",
        run.out()
    );
    assert!(panel.accept().is_err(), "nothing reached the port");
}

#[test]
fn an_endless_loop_is_stopped_at_the_time_limit() {
    let limits = Limits {
        timeout: Duration::from_secs(2),
        ..small()
    };
    let started = Instant::now();
    let run = run("echo looping\nwhile :; do :; done\n", limits);
    let message = limit_message(&run);
    assert!(message.contains("time limit (2 s)"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_fork_bomb_meets_the_task_limit() {
    let limits = Limits {
        tasks: 32,
        timeout: Duration::from_secs(5),
        ..small()
    };
    let run = run("echo bombing\nb() { b | b; }; b\n", limits);
    let message = limit_message(&run);
    assert!(message.contains("task limit (32 processes)"), "{message}");
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
    let message = limit_message(&run);
    assert!(
        message.contains("memory limit (64 MiB)"),
        "{message}\n{}",
        run.out()
    );
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
    assert!(limit_message(&run_big).contains("output limit (16 MiB)"));
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

#[test]
fn a_cancel_ends_the_script_and_everything_it_started() {
    let cancel = CancellationToken::new();
    let marker = format!("left4me-sandbox-cancel-{}", std::process::id());
    let script = format!("echo started\nsleep 300 & exec -a {marker} sleep 300\n");
    let thread = {
        let cancel = cancel.clone();
        std::thread::spawn(move || run_with(&script, small(), &[], &cancel))
    };
    // Cancel once the script runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_named(&marker) {
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
    assert!(!processes_named(&marker), "the script's processes ended");
}

/// Whether a process with `name` in its command line runs.
fn processes_named(name: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(name))
    })
}
