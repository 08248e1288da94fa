//! `left4me query` and `left4me rcon`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use srcds_protocol::{a2s, rcon::RconClient};

use crate::{CliResult, Failure};

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// HOST:PORT of the game server.
    address: String,
    /// Also list the players.
    #[arg(long)]
    players: bool,
    /// Also list the server's rules (cvars).
    #[arg(long)]
    rules: bool,
    #[arg(long)]
    json: bool,
    /// Seconds per request.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct RconArgs {
    /// HOST:PORT of the game server.
    address: String,
    /// File holding the RCON password (keeps it out of `ps`).
    #[arg(long)]
    password_file: PathBuf,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn resolve(address: &str) -> Result<SocketAddr, Failure> {
    address
        .to_socket_addrs()
        .map_err(|e| {
            Failure::invalid(anyhow::anyhow!(
                "invalid address {address:?} (want HOST:PORT): {e}"
            ))
        })?
        .next()
        .ok_or_else(|| Failure::invalid(anyhow::anyhow!("{address:?} resolves to no address")))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn query(args: &QueryArgs) -> CliResult {
    let addr = resolve(&args.address)?;
    let timeout = Duration::from_secs(args.timeout);
    runtime()?.block_on(async {
        let info = a2s::info(addr, timeout)
            .await
            .with_context(|| format!("A2S_INFO to {addr}"))?;
        let players = if args.players {
            Some(
                a2s::players(addr, timeout)
                    .await
                    .with_context(|| format!("A2S_PLAYER to {addr}"))?,
            )
        } else {
            None
        };
        let rules = if args.rules {
            Some(
                a2s::rules(addr, timeout)
                    .await
                    .with_context(|| format!("A2S_RULES to {addr}"))?,
            )
        } else {
            None
        };
        if args.json {
            let value = serde_json::json!({ "info": info, "players": players, "rules": rules });
            println!("{}", serde_json::to_string_pretty(&value)?);
            return Ok(());
        }
        println!("name:    {}", info.name);
        println!("map:     {}", info.map);
        println!(
            "players: {}/{} ({} bots)",
            info.players, info.max_players, info.bots
        );
        println!("version: {}", info.version);
        println!("password: {}", if info.visibility { "yes" } else { "no" });
        for p in players.iter().flatten() {
            println!(
                "player:  {:<32} score {:>4}  {:>6.0}s",
                p.name,
                p.score,
                p.duration.as_secs_f32()
            );
        }
        for r in rules.iter().flatten() {
            println!("rule:    {} = {}", r.name, r.value);
        }
        Ok::<_, Failure>(())
    })
}

pub(crate) fn rcon(args: &RconArgs) -> CliResult {
    let addr = resolve(&args.address)?;
    let password = std::fs::read_to_string(&args.password_file)
        .with_context(|| format!("reading {}", args.password_file.display()))
        .map_err(Failure::invalid)?;
    let password = password.trim_end_matches(['\n', '\r']);
    let timeout = Duration::from_secs(args.timeout);
    let command = args.command.join(" ");
    runtime()?.block_on(async {
        let mut client = RconClient::connect(addr, password, timeout)
            .await
            .with_context(|| format!("RCON to {addr}"))?;
        let reply = client
            .exec(&command)
            .await
            .with_context(|| format!("RCON command {command:?}"))?;
        print!("{reply}");
        if !reply.is_empty() && !reply.ends_with('\n') {
            println!();
        }
        Ok::<_, Failure>(())
    })
}
