//! The instance lifecycle end to end: the real `left4me` binary, real
//! overlayfs mounts, the built-in supervisor and the srcds simulator.

mod common;

use std::time::Duration;

use common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn a2s_name(port: u16) -> String {
    runtime()
        .block_on(srcds_protocol::a2s::info(
            a2s_addr(port),
            Duration::from_secs(2),
        ))
        .expect("A2S_INFO answered")
        .name
}

fn basic_spec(t: &TestRoot, port: u16, hostname: &str) -> String {
    t.spec(
        "spec.yaml",
        &format!("port: {port}\narguments: ['+map', c1m1_hotel]\nconfig:\n- hostname \"{hostname}\"\n- rcon_password secret\noverlays: []\n"),
    )
    .display()
    .to_string()
}

#[test]
fn start_query_and_sigint_stop() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Left4Me Test");
    t.ok(&[
        "instance",
        "start",
        "alpha",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);

    let status = t.status("alpha");
    assert_eq!(status["state"], "running");
    assert_eq!(status["running"], true);
    assert_eq!(status["mounted"], true);
    assert_eq!(status["port"], port);
    assert!(status["pid"].as_u64().is_some());
    assert_eq!(a2s_name(port), "Left4Me Test");

    // The game runs from the merged tree, which shows the installation.
    assert!(t.merged("alpha").join("srcds_run").exists());

    t.ok(&["instance", "stop", "alpha"]);
    let status = t.status("alpha");
    assert_eq!(status["running"], false);
    assert_eq!(status["mounted"], false);
    assert_eq!(status["state"], "stopped");
    let log = t.console_log("alpha");
    assert!(log.contains("stopping server process"), "{log}");
    assert!(
        !log.contains("killing it"),
        "SIGINT alone must stop it:\n{log}"
    );
    assert!(log.contains("server stopped on request"), "{log}");

    // Stop is idempotent.
    t.ok(&["instance", "stop", "alpha"]);
    t.ok(&["instance", "stop", "never-existed"]);
}

#[test]
fn the_server_outlives_the_cli_and_start_is_idempotent() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Persistent");
    t.ok(&[
        "instance",
        "start",
        "beta",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);
    let pid = t.status("beta")["pid"].as_u64().unwrap();
    let again = t.ok(&["instance", "start", "beta"]);
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        t.status("beta")["pid"].as_u64().unwrap(),
        pid,
        "same process"
    );
    assert_eq!(a2s_name(port), "Persistent");
}

#[test]
fn cfg_staging_with_aliases_and_layer_precedence() {
    let t = TestRoot::new();
    let port = free_port();
    t.overlay(
        "top",
        &[
            ("left4dead2/cfg/server.cfg", "hostname \"From Top\"\n"),
            ("left4dead2/who.txt", "top"),
        ],
    );
    t.overlay(
        "middle",
        &[
            ("left4dead2/cfg/server.cfg", "sv_password middle\n"),
            ("left4dead2/who.txt", "middle"),
            ("left4dead2/mid.txt", "middle"),
        ],
    );
    t.overlay(
        "bottom",
        &[
            ("left4dead2/who.txt", "bottom"),
            ("left4dead2/mid.txt", "bottom"),
            ("left4dead2/low.txt", "bottom"),
        ],
    );
    // A stale staged file from an earlier run must disappear.
    let upper_cfg = t.path().join("runtime/gamma/upper/left4dead2/cfg");
    std::fs::create_dir_all(&upper_cfg).unwrap();
    std::fs::write(upper_cfg.join("server_old.cfg"), "stale").unwrap();

    let spec = t.spec(
        "spec.yaml",
        &format!(
            "port: {port}\nconfig:\n- exec server_top\n- exec server_middle\n- rcon_password pw\noverlays:\n- {{path: top, alias: top}}\n- {{path: middle, alias: middle}}\n- {{path: bottom, alias: bottom}}\n"
        ),
    );
    t.ok(&[
        "instance",
        "start",
        "gamma",
        "--spec",
        spec.to_str().unwrap(),
        "--wait-ready",
        "10",
    ]);

    let merged = t.merged("gamma").join("left4dead2");
    let read = |rel: &str| std::fs::read_to_string(merged.join(rel)).unwrap();
    assert_eq!(read("who.txt"), "top", "the first overlay wins");
    assert_eq!(read("mid.txt"), "middle");
    assert_eq!(read("low.txt"), "bottom");
    assert!(
        merged.join("maps/c1m1_hotel.bsp").exists(),
        "the installation is the bottom layer"
    );
    assert_eq!(read("cfg/server_top.cfg"), "hostname \"From Top\"\n");
    assert_eq!(read("cfg/server_middle.cfg"), "sv_password middle\n");
    assert!(
        !merged.join("cfg/server_bottom.cfg").exists(),
        "no cfg in that overlay, nothing staged"
    );
    assert!(
        !merged.join("cfg/server_old.cfg").exists(),
        "stale staged cfg removed"
    );
    assert_eq!(
        read("cfg/server.cfg"),
        "exec server_top\nexec server_middle\nrcon_password pw\n"
    );
    // Staged files live in upper, so they belong to us, not to a layer.
    assert!(upper_cfg.join("server_top.cfg").exists());
    // And the game reads them through exec.
    assert_eq!(a2s_name(port), "From Top");
}

#[test]
fn bad_input_exits_2_with_a_located_message() {
    let t = TestRoot::new();
    let bad = t.spec("bad.yaml", "port: 27015\noverlays:\n- ../etc\n");
    let out = t.run(&["instance", "init", "delta", "--spec", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml:3:3: overlay path \"../etc\" contains '..'"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one readable line: {err}");

    let out = t.run(&["instance", "start", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid instance name"),
        "{}",
        stderr(&out)
    );

    let out = t.run(&["instance", "start", "uninitialized"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not initialized"), "{}", stderr(&out));

    let missing = t.spec("missing.yaml", "port: 27015\noverlays: [nope]\n");
    let out = t.run(&[
        "instance",
        "init",
        "delta",
        "--spec",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing.yaml:2:12: overlay \"nope\" does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(
        !t.path().join("instances/delta").exists(),
        "nothing written for invalid input"
    );
}

#[test]
fn a_held_lock_makes_start_busy_and_concurrent_starts_run_one_server() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Busy");
    t.ok(&["instance", "init", "eps", "--spec", &spec]);

    let name = left4me_host::name::InstanceName::parse("eps").unwrap();
    let lock_path = t.path().join("locks/eps.lock");
    let held = left4me_host::lock::InstanceLock::try_acquire(&name, &lock_path).unwrap();
    let out = t.run(&["instance", "start", "eps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("instance eps is busy"),
        "{}",
        stderr(&out)
    );
    drop(held);

    let (first, second) = std::thread::scope(|s| {
        let one = s.spawn(|| t.cmd().args(["instance", "start", "eps"]).output().unwrap());
        let two = s.spawn(|| t.cmd().args(["instance", "start", "eps"]).output().unwrap());
        (one.join().unwrap(), two.join().unwrap())
    });
    for out in [&first, &second] {
        assert!(
            out.status.success() || stderr(out).contains("is busy"),
            "either started, found it running, or was told busy: {}",
            stderr(out)
        );
    }
    assert!(first.status.success() || second.status.success());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let merged = t.merged("eps");
    assert_eq!(
        mounts.matches(merged.to_str().unwrap()).count(),
        1,
        "exactly one mount, never stacked"
    );
    assert_eq!(a2s_name(port), "Busy");
}

#[test]
fn kill_9_between_mount_and_spawn_is_repaired_by_the_next_start() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Recovered");
    let out = t
        .cmd()
        .args(["instance", "start", "zeta", "--spec", &spec])
        .env("LEFT4ME_FAULT", "after-mount")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fault point aborts the CLI");
    let status = t.status("zeta");
    assert_eq!(status["mounted"], true, "died after mounting");
    assert_eq!(status["running"], false, "and before spawning");

    t.ok(&["instance", "start", "zeta", "--wait-ready", "10"]);
    assert_eq!(a2s_name(port), "Recovered");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts.matches(t.merged("zeta").to_str().unwrap()).count(),
        1
    );

    // The same state is also repaired by stop and by delete.
    t.ok(&["instance", "stop", "zeta"]);
    let out = t
        .cmd()
        .args(["instance", "start", "zeta"])
        .env("LEFT4ME_FAULT", "after-mount")
        .output()
        .unwrap();
    assert!(!out.status.success());
    t.ok(&["instance", "delete", "zeta"]);
    assert!(!t.path().join("instances/zeta").exists());
    assert!(!t.path().join("runtime/zeta").exists());
}

#[test]
fn crashes_restart_with_backoff_then_give_up() {
    let mut t = TestRoot::new();
    t.env.push(("LEFT4ME_MAX_CRASHES".into(), "3".into()));
    t.env
        .push(("LEFT4ME_RESTART_BACKOFF_MS".into(), "50".into()));
    let port = free_port();
    let spec = t.spec(
        "crash.yaml",
        &format!("port: {port}\nconfig:\n- sim_crash_after_ms 300\n"),
    );
    t.ok(&["instance", "start", "eta", "--spec", spec.to_str().unwrap()]);
    wait_until("the supervisor gives up", Duration::from_secs(20), || {
        t.status("eta")["state"] == "failed"
    });
    let status = t.status("eta");
    assert_eq!(status["restarts"], 2, "{status}");
    assert_eq!(status["running"], false);
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("gave up after 3 crashes within 60s; last: exit code"),
        "{reason}"
    );
    let log = t.console_log("eta");
    assert_eq!(log.matches("server crashed").count(), 2, "{log}");
    // The game's last words before each crash are kept.
    assert_eq!(log.matches("Segmentation fault").count(), 3, "{log}");
    assert_eq!(log.matches("] server process").count(), 3, "{log}");
    // A failed instance can be started again.
    t.ok(&["instance", "stop", "eta"]);
    assert_eq!(t.status("eta")["mounted"], false);
}

#[test]
fn a_crash_is_restarted_and_keeps_serving() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Phoenix");
    t.ok(&[
        "instance",
        "start",
        "theta",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);
    let first = t.status("theta")["pid"].as_u64().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("a new game process", Duration::from_secs(10), || {
        let s = t.status("theta");
        s["running"] == true && s["pid"].as_u64() != Some(first)
    });
    assert_eq!(t.status("theta")["restarts"], 1);
    wait_until("A2S answers again", Duration::from_secs(10), || {
        runtime()
            .block_on(srcds_protocol::a2s::info(
                a2s_addr(port),
                Duration::from_millis(300),
            ))
            .is_ok()
    });
    assert!(t.console_log("theta").contains("killed by signal 9"));
}

#[test]
fn a_killed_supervisor_leaves_an_orphan_that_stop_ends() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Orphan");
    t.ok(&[
        "instance",
        "start",
        "iota",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join("runtime/iota/supervisor.json")).unwrap(),
    )
    .unwrap();
    let daemon = state["supervisor_pid"].as_u64().unwrap() as i32;
    let game = state["pid"].as_u64().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(daemon).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("status notices", Duration::from_secs(5), || {
        t.status("iota")["state"] == "orphaned"
    });
    t.ok(&["instance", "stop", "iota"]);
    assert!(
        !std::path::Path::new(&format!("/proc/{game}")).exists()
            || std::fs::read_to_string(format!("/proc/{game}/stat"))
                .unwrap()
                .contains(") Z")
    );
    assert_eq!(t.status("iota")["mounted"], false);
}

#[test]
fn reset_and_delete_remove_everything_and_list_shows_the_rest() {
    let t = TestRoot::new();
    let (p1, p2) = (free_port(), free_port());
    let s1 = basic_spec(&t, p1, "One");
    t.ok(&["instance", "start", "kappa", "--spec", &s1]);
    let s2 = t.spec("two.yaml", &format!("port: {p2}\n"));
    t.ok(&["instance", "init", "lambda", "--spec", s2.to_str().unwrap()]);

    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&t.ok(&["instance", "list", "--json"]).stdout).unwrap();
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kappa", "lambda"]);
    assert_eq!(list[0]["running"], true);
    assert_eq!(list[1]["initialized"], true);
    assert_eq!(list[1]["running"], false);

    t.ok(&["instance", "reset", "kappa"]);
    assert!(!t.path().join("instances/kappa").exists());
    assert!(!t.path().join("runtime/kappa").exists());
    let out = t.run(&["instance", "start", "kappa"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "reset forgets the spec: {}",
        stderr(&out)
    );

    t.ok(&["instance", "delete", "lambda"]);
    t.ok(&["instance", "delete", "lambda"]);
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&t.ok(&["instance", "list", "--json"]).stdout).unwrap();
    assert!(list.is_empty(), "{list:?}");
}

#[test]
fn logs_show_the_console() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Chatty");
    t.ok(&[
        "instance",
        "start",
        "mu",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);
    let out = t.ok(&["instance", "logs", "mu", "--lines", "200"]);
    let text = stdout(&out);
    assert!(text.contains("[left4me] server process"), "{text}");
    assert!(
        text.contains("server.cfg"),
        "the simulator's boot lines are there: {text}"
    );
    let out = t.ok(&["instance", "logs", "mu", "--lines", "1"]);
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[test]
fn query_and_rcon_commands_talk_to_the_server() {
    let t = TestRoot::new();
    let port = free_port();
    let spec = basic_spec(&t, port, "Talkative");
    t.ok(&[
        "instance",
        "start",
        "nu",
        "--spec",
        &spec,
        "--wait-ready",
        "10",
    ]);
    let addr = format!("127.0.0.1:{port}");
    let out = t.ok(&["query", &addr, "--players", "--rules", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["info"]["name"], "Talkative");
    assert!(json["rules"].as_array().unwrap().len() > 10);

    let pw = t.spec("pw", "secret\n");
    let out = t.ok(&[
        "rcon",
        &addr,
        "--password-file",
        pw.to_str().unwrap(),
        "status",
    ]);
    assert!(
        stdout(&out).contains("hostname: Talkative"),
        "{}",
        stdout(&out)
    );
    let wrong = t.spec("wrong", "nope\n");
    let out = t.run(&[
        "rcon",
        &addr,
        "--password-file",
        wrong.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong RCON password"),
        "{}",
        stderr(&out)
    );
}

mod in_process {
    //! The library called directly, to cancel at exact steps.
    use super::common::*;
    use left4me_host::events::{CancellationToken, Ctx, Event};
    use left4me_host::lifecycle::Host;
    use left4me_host::mount::MountApi;
    use left4me_host::name::InstanceName;
    use left4me_host::spec::{Port, Spec};
    use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy};

    fn host(t: &TestRoot) -> Host {
        Host::open(
            t.path(),
            Box::new(BuiltinSupervisor {
                program: LEFT4ME.into(),
                policy: RestartPolicy::default(),
                mount_api: MountApi::Auto,
            }),
        )
        .unwrap()
    }

    /// Runs `start`, cancelling when the step `at` is reported.
    fn start_cancelled_at(t: &TestRoot, name: &str, at: &str) {
        let host = host(t);
        let token = CancellationToken::new();
        let sink = |event: Event| {
            if event == Event::Step(at.to_owned()) {
                token.cancel();
            }
        };
        let ctx = Ctx::new(&sink, &token);
        let spec = Spec::new(Port::new(free_port()).unwrap(), vec![], vec![], vec![]).unwrap();
        let name = InstanceName::parse(name).unwrap();
        let err = host.start(&name, Some(&spec), &ctx).unwrap_err();
        assert!(err.is_cancelled(), "{err}");
    }

    #[test]
    fn cancelling_after_the_mount_unmounts_again() {
        let t = TestRoot::new();
        start_cancelled_at(&t, "xi", "mounting the overlay...");
        let status = t.status("xi");
        assert_eq!(status["mounted"], false, "{status}");
        assert_eq!(status["running"], false);
        assert_eq!(status["initialized"], true, "initialization had finished");
        t.ok(&["instance", "start", "xi"]);
        assert_eq!(t.status("xi")["running"], true);
    }

    #[test]
    fn cancelling_a_first_initialize_leaves_nothing() {
        let t = TestRoot::new();
        start_cancelled_at(&t, "omicron", "creating instance directories...");
        assert!(!t.path().join("instances/omicron").exists());
        assert!(!t.path().join("runtime/omicron").exists());
    }
}

#[test]
fn mount_helper_mounts_from_instance_env_and_refuses_foreign_layers() {
    let t = TestRoot::new();
    t.overlay("maps", &[("left4dead2/maps/extra.bsp", "bsp")]);
    let spec = t.spec(
        "s.yaml",
        &format!("port: {}\noverlays: [maps]\n", free_port()),
    );
    t.ok(&["instance", "init", "pi", "--spec", spec.to_str().unwrap()]);
    t.ok(&["mount-helper", "mount", "pi"]);
    t.ok(&["mount-helper", "mount", "pi"]);
    assert_eq!(t.status("pi")["mounted"], true);
    assert!(t.merged("pi").join("left4dead2/maps/extra.bsp").exists());
    assert!(t.merged("pi").join("srcds_run").exists());
    t.ok(&["mount-helper", "umount", "pi"]);
    t.ok(&["mount-helper", "umount", "pi"]);
    assert_eq!(t.status("pi")["mounted"], false);

    let env_file = t.path().join("instances/pi/instance.env");
    let env = std::fs::read_to_string(&env_file).unwrap();
    let tampered: String = env
        .lines()
        .map(|l| {
            if l.starts_with("L4D2_LOWERDIRS=") {
                format!("L4D2_LOWERDIRS=/etc:{}/installation\n", t.path().display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&env_file, tampered).unwrap();
    let out = t.run(&["mount-helper", "mount", "pi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"/etc\" is neither the installation nor below"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.status("pi")["mounted"], false);
}

#[test]
fn a_symlinked_overlay_is_refused_before_anything_is_written() {
    let t = TestRoot::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("overlays")).unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("overlays/evil")).unwrap();
    let spec = t.spec(
        "s.yaml",
        &format!("port: {}\noverlays: [evil]\n", free_port()),
    );
    let out = t.run(&["instance", "start", "rho", "--spec", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("s.yaml:2:12: overlay \"evil\" is a symlink"),
        "{}",
        stderr(&out)
    );
    assert!(!t.path().join("instances/rho").exists());
    assert!(!t.path().join("runtime/rho").exists());
}

#[test]
fn a_missing_engine_fails_the_start_and_leaves_nothing_mounted() {
    let t = TestRoot::new();
    std::fs::remove_file(t.path().join("installation/srcds_linux")).unwrap();
    let spec = basic_spec(&t, free_port(), "Nothing");
    let out = t.run(&["instance", "start", "sigma", "--spec", &spec]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the server did not start: cannot run"),
        "{err}"
    );
    assert!(err.contains("runtime/sigma/merged/srcds_linux"), "{err}");
    let status = t.status("sigma");
    assert_eq!(status["mounted"], false);
    assert_eq!(status["state"], "failed");
}

#[test]
fn a_state_root_behind_a_symlink_is_handled_like_the_real_path() {
    let t = TestRoot::new();
    let link_dir = tempfile::tempdir().unwrap();
    let link = link_dir.path().join("root-link");
    std::os::unix::fs::symlink(t.path(), &link).unwrap();
    let via_link = |args: &[&str]| {
        let out = std::process::Command::new(LEFT4ME)
            .arg("--root")
            .arg(&link)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    let spec = basic_spec(&t, free_port(), "Linked");
    via_link(&["instance", "start", "tau", "--spec", &spec]);
    let status: serde_json::Value =
        serde_json::from_slice(&via_link(&["instance", "status", "tau", "--json"]).stdout).unwrap();
    assert_eq!(status["mounted"], true);
    via_link(&["instance", "stop", "tau"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("runtime/tau/merged"),
        "stop through the link unmounted"
    );
    via_link(&["instance", "delete", "tau"]);
}

#[test]
fn status_and_logs_of_an_unknown_instance_say_so() {
    let t = TestRoot::new();
    for args in [
        &["instance", "status", "typo"][..],
        &["instance", "logs", "typo"][..],
    ] {
        let out = t.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("there is no instance typo"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn logs_follow_prints_new_lines_across_a_rotation() {
    use std::io::Write;
    let t = TestRoot::new();
    let log = t.path().join("runtime/omega/console.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "old one\nold two\n").unwrap();
    let mut child = t
        .cmd()
        .args(["instance", "logs", "omega", "--lines", "1", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let next = || rx.recv_timeout(Duration::from_secs(5)).expect("a line");
    assert_eq!(next(), "old two", "the tail first");
    writeln!(
        std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        "new one"
    )
    .unwrap();
    assert_eq!(next(), "new one");
    std::fs::rename(&log, t.path().join("runtime/omega/console.log.1")).unwrap();
    std::fs::write(&log, "after rotation\n").unwrap();
    assert_eq!(next(), "after rotation");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Overlays are mounted as snapshots: an edit of the working copy (as the
/// panel's file manager makes it, a new file renamed over the old)
/// applies at the next start and never under a running server; an
/// unchanged overlay reuses its snapshot; an unused one is removed.
#[test]
fn an_overlay_edit_applies_at_the_next_start_and_never_under_a_running_server() {
    let t = TestRoot::new();
    t.overlay("mine", &[("left4dead2/cfg/mine.cfg", "one")]);
    let port = free_port();
    let spec = t.spec(
        "snap.yaml",
        &format!("port: {port}\narguments: ['+map', c1m1_hotel]\noverlays:\n- mine\n"),
    );
    let spec = spec.to_str().unwrap();
    t.ok(&["instance", "start", "snap", "--spec", spec]);
    let merged = t.merged("snap");
    let cfg = merged.join("left4dead2/cfg/mine.cfg");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "one");
    let working = t.path().join("overlays/mine/left4dead2/cfg");
    std::fs::write(working.join(".mine.cfg.tmp"), "two").unwrap();
    std::fs::rename(working.join(".mine.cfg.tmp"), working.join("mine.cfg")).unwrap();
    std::fs::write(working.join("added.cfg"), "new").unwrap();
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "one",
        "not under a running server"
    );
    assert!(!merged.join("left4dead2/cfg/added.cfg").exists());
    let env = || std::fs::read_to_string(t.path().join("instances/snap/instance.env")).unwrap();
    assert!(env().contains("/overlay-versions/mine/v/1:"), "{}", env());

    t.ok(&["instance", "stop", "snap"]);
    t.ok(&["instance", "start", "snap"]);
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "two",
        "at the next start"
    );
    assert!(merged.join("left4dead2/cfg/added.cfg").exists());
    assert!(env().contains("/overlay-versions/mine/v/2:"), "{}", env());
    t.ok(&["instance", "stop", "snap"]);
    assert!(
        !t.path().join("overlay-versions/mine/v/1").exists(),
        "the old snapshot goes once nothing runs it"
    );
    t.ok(&["instance", "start", "snap"]);
    assert!(
        env().contains("/overlay-versions/mine/v/2:"),
        "unchanged: reused"
    );
    t.ok(&["instance", "delete", "snap"]);
}
