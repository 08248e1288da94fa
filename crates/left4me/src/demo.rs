//! `left4me demo`: a working server without Steam, from a synthetic
//! installation whose `srcds_run` is the simulator.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use left4me_host::name::InstanceName;
use left4me_host::spec::{Port, Spec};

use crate::{Cli, CliResult, open_host};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[arg(long, default_value = "demo")]
    name: InstanceName,
    #[arg(long, default_value_t = 27015)]
    port: u16,
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn run(cli: &Cli, args: &DemoArgs) -> CliResult {
    let host = open_host(cli)?;
    let installation = host.root().installation();
    if !installation.join("srcds_run").exists() {
        let sim: PathBuf = std::env::current_exe()?
            .parent()
            .context("locating the left4me binary")?
            .join("srcds-sim");
        eprintln!(
            "› creating a synthetic installation in {}...",
            installation.display()
        );
        let status = std::process::Command::new(&sim)
            .arg("make-installation")
            .arg(&installation)
            .status()
            .with_context(|| format!("running {} (build it with `cargo build`)", sim.display()))?;
        if !status.success() {
            return Err(anyhow::anyhow!("make-installation failed ({status})").into());
        }
    }
    let password = random_password()?;
    let port = Port::new(args.port).map_err(|e| crate::Failure::invalid(anyhow::anyhow!(e)))?;
    let spec = Spec::new(
        port,
        vec!["+map".into(), "c1m1_hotel".into()],
        vec![
            "hostname \"left4me demo\"".into(),
            format!("rcon_password {password}"),
        ],
        vec![],
    )?;
    let name = args.name.clone();
    let owned = name.clone();
    let status = crate::instance::cancellable(host, move |h, ctx| {
        h.start(&owned, Some(&spec), ctx)?;
        h.status(&owned)
    })?;
    crate::instance::wait_ready_for(&status, std::time::Duration::from_secs(20))?;
    let pw_file = cli.root.join("demo-rcon-password");
    std::fs::write(&pw_file, format!("{password}\n"))?;
    let root = cli.root.display();
    println!("server {name} is up on port {port} (steam://connect/127.0.0.1:{port})");
    println!("  left4me --root {root} query 127.0.0.1:{port} --players");
    println!(
        "  left4me --root {root} rcon 127.0.0.1:{port} --password-file {} status",
        pw_file.display()
    );
    println!("  left4me --root {root} instance logs {name} --follow");
    println!("  left4me --root {root} instance stop {name}");
    Ok(())
}
