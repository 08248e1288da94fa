//! A simulator of the Left 4 Dead 2 dedicated server (srcds).
//!
//! left4me runs, queries and administers srcds processes. Tests (and people
//! trying left4me without a 15 GB Steam download) need a stand-in that
//! behaves the same on the outside: it is started as
//! `<merged tree>/srcds_linux -game left4dead2 +ip … -port …`, reads
//! `left4dead2/cfg/server.cfg` (following `exec`) relative to its own
//! directory, answers A2S queries on UDP and RCON on TCP on the same port,
//! prints an srcds-like console and stops cleanly on SIGINT/SIGTERM.
//!
//! The wire formats are written independently of the project's own client
//! (`srcds-protocol`) on purpose: the simulator is that client's test peer,
//! and sharing code would hide bugs on both sides.
//!
//! Simulator-only controls:
//!
//! - cvars `sim_boot_delay_ms N` (stay silent N ms after start-up),
//!   `sim_crash_after_ms N` (crash N ms after start-up), `sim_exit_code N`
//!   (exit status of a crash, default 139);
//! - commands `sim_join NAME [STEAMID]`, `sim_leave NAME`, `sim_crash`,
//!   `sim_addons` (lists the `.vpk` files srcds would load from `addons/`).
//!
//! Entry points: [`main_from_env`] for the `srcds-sim` binary, [`start`] for
//! in-process tests, [`make_installation`] for synthetic installations.

mod a2s;
mod cli;
mod config;
mod console;
mod cvars;
mod install;
mod rcon;
mod server;
mod state;

use std::process::ExitCode;

pub use cli::{ArgsError, run_from_args, run_server};
pub use install::make_installation;
pub use server::{SimConfig, SimHandle, start};
pub use state::{JoinError, PlayerInfo, SimExit};

/// The simulator's `main`.
///
/// - Invoked as `srcds_linux` (argv\[0\]'s file name): the engine, run in
///   the current directory; like the real one it fails unless
///   `LD_LIBRARY_PATH` holds the installation's `bin/`.
/// - Invoked as `srcds_run`: Valve's script, which changes into its own
///   directory, sets the library path, and splits its arguments again at
///   whitespace before it runs the engine.
/// - `srcds-sim run ARGS…`: the same in the current directory.
/// - `srcds-sim make-installation DIR [--files N] [--bytes B]`: see
///   [`make_installation`].
///
/// The exit code is 0 after `quit`, SIGINT or SIGTERM, `sim_exit_code`
/// (default 139) after a simulated crash, and 1 or 2 for start-up and usage
/// errors.
pub fn main_from_env() -> ExitCode {
    run_from_args(std::env::args_os().collect())
}
