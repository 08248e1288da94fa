//! The executable's behaviour through `run_from_args`, as `main_from_env`
//! runs it. This file holds a single test on purpose: running as
//! `srcds_run` changes the process's working directory and installs signal
//! handlers, which must not disturb other tests of the same binary. (The
//! engine, `srcds_linux`, run with its library path, is exercised by
//! left4me's own tests, which start servers the way the supervisors do.)

mod common;

use std::ffi::OsString;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use common::{A2s, Rcon};
use rustix::process::{Signal, getpid, kill_process};
use srcds_sim::{make_installation, run_from_args};

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_in_thread(argv: Vec<&str>) -> thread::JoinHandle<ExitCode> {
    let argv: Vec<OsString> = argv.into_iter().map(OsString::from).collect();
    thread::spawn(move || run_from_args(argv))
}

async fn wait_for_info(addr: SocketAddr) -> common::Info {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = A2s::connect(addr).await;
    loop {
        client.send(&common::info_request()).await;
        if client.recv(Duration::from_millis(100)).await.is_some() {
            return client.info().await;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srcds_run_changes_into_its_directory_and_stops_on_signals() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("binary");
    fs::write(&exe, b"placeholder").unwrap();
    let root = tmp.path().join("runtime/alpha/merged");
    make_installation(&root, &exe, 0, 0).unwrap();
    fs::write(
        root.join("left4dead2/cfg/server.cfg"),
        "hostname \"Alpha\"\nexec server_extra\nrcon_password pw\n",
    )
    .unwrap();
    fs::write(
        root.join("left4dead2/cfg/server_extra.cfg"),
        "maxplayers 6\n",
    )
    .unwrap();

    // Started by absolute path from another directory: files are still found.
    let srcds_run = root.join("srcds_run");
    let srcds_run = srcds_run.to_str().unwrap().to_owned();
    let port = free_port();
    let port_arg = port.to_string();
    let server = run_in_thread(vec![
        &srcds_run,
        "-game",
        "left4dead2",
        "+ip",
        "127.0.0.1",
        "-port",
        &port_arg,
        "+map",
        "c1m2_streets",
        "-norestart",
        "+sv_contact",
        "Two Words",
    ]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let info = wait_for_info(addr).await;
    assert_eq!(info.name, "Alpha");
    assert_eq!(info.map, "c1m2_streets");
    assert_eq!(info.max_players, 6);
    assert_eq!(
        std::env::current_dir().unwrap(),
        std::path::absolute(&root).unwrap()
    );
    // Valve's script splits its arguments again at spaces: the engine got
    // `+sv_contact Two Words` and took "Two" as the value.
    let mut rcon = Rcon::connect(addr).await;
    assert!(rcon.auth("pw").await);
    let (contact, _) = rcon.exec("sv_contact").await;
    assert!(contact.contains("\"sv_contact\" = \"Two\""), "{contact}");

    // SIGTERM: a clean stop with status 0, promptly.
    let sent = Instant::now();
    kill_process(getpid(), Signal::TERM).unwrap();
    let code = server.join().unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(sent.elapsed() < Duration::from_secs(1));

    // SIGINT likewise; then `quit` over RCON; then a crash.
    let server = run_in_thread(vec!["./srcds_run", "-port", &port_arg, "+ip", "127.0.0.1"]);
    wait_for_info(addr).await;
    kill_process(getpid(), Signal::INT).unwrap();
    assert_eq!(server.join().unwrap(), ExitCode::SUCCESS);

    let server = run_in_thread(vec!["./srcds_run", "-port", &port_arg, "+ip", "127.0.0.1"]);
    wait_for_info(addr).await;
    let mut rcon = Rcon::connect(addr).await;
    assert!(rcon.auth("pw").await);
    rcon.send(1, 2, b"quit").await;
    assert_eq!(server.join().unwrap(), ExitCode::SUCCESS);

    let server = run_in_thread(vec![
        "./srcds_run",
        "-port",
        &port_arg,
        "+ip",
        "127.0.0.1",
        "+sim_exit_code",
        "7",
    ]);
    wait_for_info(addr).await;
    let mut rcon = Rcon::connect(addr).await;
    assert!(rcon.auth("pw").await);
    rcon.send(1, 2, b"sim_crash").await;
    assert_eq!(server.join().unwrap(), ExitCode::from(7));

    // Usage errors are reported, not run.
    let code = run_from_args(vec!["srcds-sim".into(), "bogus".into()]);
    assert_eq!(code, ExitCode::from(2));
    let code = run_from_args(vec!["./srcds_run".into(), "-port".into(), "x".into()]);
    assert_eq!(code, ExitCode::FAILURE);

    // The engine alone cannot find its libraries without the library path
    // srcds_run sets (this test process has none naming `bin/`).
    let bin = std::path::absolute(root.join("bin")).unwrap();
    assert!(
        std::env::var_os("LD_LIBRARY_PATH")
            .is_none_or(|p| std::env::split_paths(&p)
                .all(|entry| entry != bin && entry != Path::new("bin"))),
        "the test needs a library path without {}",
        bin.display()
    );
    let code = run_from_args(vec![
        "./srcds_linux".into(),
        "-port".into(),
        port_arg.clone().into(),
    ]);
    assert_eq!(code, ExitCode::FAILURE);
}
