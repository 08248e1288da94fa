//! `left4me demo`: a working server without Steam, from a synthetic
//! installation whose `srcds_linux` is the simulator.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use left4me_host::layout::StateRoot;
use left4me_host::name::InstanceName;
use left4me_host::spec::{Port, Spec};

use crate::{Cli, CliResult, Failure, open_host};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[arg(long, default_value = "demo")]
    name: InstanceName,
    #[arg(long, default_value_t = 27015)]
    port: u16,
    /// Only create the synthetic installation, start nothing: servers
    /// made in the panel then run the simulator.
    #[arg(long)]
    installation_only: bool,
}

/// Where the packaged simulator lives (`/usr/lib/left4me`), for a
/// `left4me` in `/usr/bin`; a build has it next to the binary.
const PACKAGED_SIMULATOR: &str = "/usr/lib/left4me/srcds-sim";

/// Publishes a synthetic installation (the simulator, found next to this
/// binary, as `srcds_linux`) unless a version of the game is installed.
pub(crate) fn ensure_synthetic_installation(root: &StateRoot) -> CliResult {
    let versions = root.installation_versions();
    if versions.current()?.is_some() {
        return Ok(());
    }
    let beside: PathBuf = std::env::current_exe()?
        .parent()
        .context("locating the left4me binary")?
        .join("srcds-sim");
    let Some(sim) = [beside.as_path(), Path::new(PACKAGED_SIMULATOR)]
        .into_iter()
        .find(|p| p.is_file())
    else {
        return Err(anyhow::anyhow!(
            "the simulator is missing from {} and {PACKAGED_SIMULATOR}; build it with \
             `cargo build` (it becomes the demo's srcds_linux)",
            beside.display()
        )
        .into());
    };
    eprintln!(
        "› creating a synthetic installation in {}...",
        root.installation().display()
    );
    versions
        .publish_tree(Some("simulator".into()), |dir| {
            srcds_sim::make_installation(dir, sim, 0, 0)
        })
        .with_context(|| format!("creating {}", root.installation().display()))?;
    Ok(())
}

/// 24 hex digits from the OS's random source.
fn random_password() -> Result<String, Failure> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS random source: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn run(cli: &Cli, args: &DemoArgs) -> CliResult {
    // On a packaged install the state belongs to the service user.
    left4me_host::privilege::become_state_owner(&crate::settings(cli)?.root)?;
    let host = open_host(cli)?;
    ensure_synthetic_installation(host.root())?;
    if args.installation_only {
        println!(
            "synthetic installation ready in {}",
            host.root().installation().display()
        );
        return Ok(());
    }
    let password = random_password()?;
    let port = Port::new(args.port).map_err(|e| Failure::invalid(anyhow::anyhow!(e)))?;
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
    let root_dir = crate::settings(cli)?.root;
    let pw_file = root_dir.join("demo-rcon-password");
    std::fs::write(&pw_file, format!("{password}\n"))?;
    let root = root_dir.display();
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
