//! The executable's behaviour: the srcds command line, signals and the
//! `make-installation` tool.

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::quote_arg;
use crate::install::make_installation;
use crate::server::{SimConfig, start};
use crate::state::SimExit;

/// A srcds command line that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// An option that needs a value was last on the line.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// `-port` is not a port number.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// `+ip` is not an IP address.
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
}

impl SimConfig {
    /// Builds a configuration from a srcds command line (without the program
    /// name), e.g. `-game left4dead2 +ip 0.0.0.0 -port 27015 +map c1m1_hotel`.
    ///
    /// `-name [value]` are engine parameters (`-game`, `-port`, `-ip`,
    /// `-maxplayers`, `-insecure`; others such as `-tickrate` are accepted and
    /// ignored). `+name value` are console commands run at start-up, except
    /// `+map`, which picks the first map. Like the engine's `stuffcmds`, a
    /// `+command` takes one argument as its value: `+hostname My Server`
    /// names the server "My" (the value must be one argv entry, as
    /// `+hostname "My Server"` gives it from a shell). Defaults follow srcds: IP 0.0.0.0,
    /// port 27015, and stdout output.
    pub fn from_srcds_args(root: impl Into<PathBuf>, args: &[String]) -> Result<Self, ArgsError> {
        let mut config = Self {
            root: Some(root.into()),
            ip: IpAddr::from([0, 0, 0, 0]),
            port: 27015,
            echo_stdout: true,
            ..Self::default()
        };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            // The values following this argument, up to the next option.
            let values: Vec<&String> = args[i + 1..].iter().take_while(|a| !is_option(a)).collect();
            let first = || {
                values
                    .first()
                    .map(|v| v.as_str())
                    .ok_or_else(|| ArgsError::MissingValue(arg.clone()))
            };
            if let Some(name) = arg.strip_prefix('+') {
                match name.to_ascii_lowercase().as_str() {
                    "map" => config.map = first()?.to_owned(),
                    "ip" => config.ip = parse_ip(first()?)?,
                    _ => {}
                }
                if !name.eq_ignore_ascii_case("map") {
                    let mut line = name.to_owned();
                    if let Some(value) = values.first() {
                        line.push(' ');
                        line.push_str(&quote_arg(value));
                    }
                    config.commands.push(line);
                }
                i += 1 + values.len();
                continue;
            }
            let mut consumed = 0;
            match arg.to_ascii_lowercase().as_str() {
                "-game" => {
                    config.game = first()?.to_owned();
                    consumed = 1;
                }
                "-port" => {
                    let value = first()?;
                    config.port = value
                        .parse()
                        .map_err(|_| ArgsError::InvalidPort(value.to_owned()))?;
                    consumed = 1;
                }
                "-ip" => {
                    config.ip = parse_ip(first()?)?;
                    consumed = 1;
                }
                "-maxplayers" => {
                    config
                        .commands
                        .push(format!("maxplayers {}", quote_arg(first()?)));
                    consumed = 1;
                }
                "-insecure" => config.vac_secure = false,
                // Other parameters (-tickrate 100, -norestart, ...) do nothing
                // in the simulator; their values are skipped with them.
                _ => consumed = values.len(),
            }
            i += 1 + consumed;
        }
        Ok(config)
    }
}

/// `+name` or `-name`; `-1` is a value (e.g. `+sv_region -1`).
fn is_option(arg: &str) -> bool {
    arg.starts_with('+')
        || arg
            .strip_prefix('-')
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn parse_ip(value: &str) -> Result<IpAddr, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::InvalidIp(value.to_owned()))
}

#[derive(Debug, Parser)]
#[command(
    name = "srcds-sim",
    about = "Left 4 Dead 2 dedicated server simulator",
    long_about = "Left 4 Dead 2 dedicated server simulator. Copied into a game \
                  installation as `srcds_linux` (and `srcds_run`), it behaves like the real server."
)]
struct Cli {
    #[command(subcommand)]
    command: Tool,
}

#[derive(Debug, Subcommand)]
enum Tool {
    /// Run a simulated server in the current directory with a srcds command line.
    Run {
        /// srcds arguments, e.g. `-game left4dead2 -port 27015 +map c1m1_hotel`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Create a synthetic game installation whose `srcds_run` is this simulator.
    MakeInstallation {
        /// The installation directory (created if missing).
        dir: PathBuf,
        /// Number of filler files under `left4dead2/filler/`.
        #[arg(long, default_value_t = 0)]
        files: usize,
        /// Total size of the filler files (suffixes K, M, G: powers of 1024).
        #[arg(long, default_value = "0", value_parser = parse_size)]
        bytes: u64,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown size unit {unit:?}")),
    };
    let value: u64 = digits.parse().map_err(|e| format!("{e}"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| "size too large".to_owned())
}

/// Runs the executable with the given argv (program name first). See
/// [`main_from_env`](crate::main_from_env).
pub fn run_from_args(args: Vec<OsString>) -> ExitCode {
    let argv0 = args.first().cloned().unwrap_or_default();
    let invoked_as = Path::new(&argv0).file_name().and_then(OsStr::to_str);
    if let Some(program @ ("srcds_run" | "srcds_linux")) = invoked_as {
        let rest = match utf8_args(&args[1..]) {
            Ok(rest) => rest,
            Err(code) => return code,
        };
        return if program == "srcds_run" {
            run_srcds_run(&argv0, &rest)
        } else {
            run_srcds_linux(&rest)
        };
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        Tool::Run { args } => match std::env::current_dir() {
            Ok(root) => run_with_args(root, &args),
            Err(e) => fail(&format!("cannot read the current directory: {e}")),
        },
        Tool::MakeInstallation { dir, files, bytes } => {
            let result =
                std::env::current_exe().and_then(|exe| make_installation(&dir, &exe, files, bytes));
            match result {
                Ok(()) => {
                    println!(
                        "installation ready in {} ({files} filler files, {bytes} bytes)",
                        dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("make-installation {}: {e}", dir.display())),
            }
        }
    }
}

fn utf8_args(args: &[OsString]) -> Result<Vec<String>, ExitCode> {
    args.iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| fail(&format!("argument {a:?} is not UTF-8")))
        })
        .collect()
}

fn fail(message: &str) -> ExitCode {
    eprintln!("srcds-sim: {message}");
    ExitCode::FAILURE
}

/// The directory `srcds_run` lives in, as the real script computes it: the
/// directory part of how it was invoked, else the executable's location.
fn own_directory(argv0: &OsStr) -> io::Result<PathBuf> {
    let invoked = Path::new(argv0);
    match invoked.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::path::absolute(parent),
        _ => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| io::Error::other("executable has no parent directory")),
    }
}

/// `srcds_run ARGS` as Valve's script runs it: change into its own
/// directory, put that directory and its `bin/` first on the library path,
/// drop the script's own options, join the rest into one string and let
/// the shell split it again at whitespace (`$HL_CMD` unquoted), so an
/// argument with spaces reaches `srcds_linux` as several. The script's
/// restart loop is not simulated: it only ever runs once here.
fn run_srcds_run(argv0: &OsStr, args: &[String]) -> ExitCode {
    let dir = match own_directory(argv0) {
        Ok(dir) => dir,
        Err(e) => return fail(&format!("cannot find the installation directory: {e}")),
    };
    if let Err(e) = std::env::set_current_dir(&dir) {
        return fail(&format!("cannot change into {}: {e}", dir.display()));
    }
    let mut library_path = OsString::from(dir.as_os_str());
    library_path.push(":");
    library_path.push(dir.join("bin"));
    if let Some(inherited) = std::env::var_os("LD_LIBRARY_PATH") {
        library_path.push(":");
        library_path.push(inherited);
    }
    run_engine(dir, &library_path, &srcds_run_params(args))
}

/// What `srcds_run` hands the engine: its own options removed (with their
/// values), everything else joined with single spaces and split again at
/// whitespace.
fn srcds_run_params(args: &[String]) -> Vec<String> {
    const FLAGS: [&str; 6] = [
        "-debug",
        "-norestart",
        "-autoupdate",
        "-steamerr",
        "-ignoresigint",
        "-notrap",
    ];
    const WITH_VALUE: [&str; 7] = [
        "-pidfile",
        "-binary",
        "-timeout",
        "-gdb",
        "-debuglog",
        "-steam_dir",
        "-steamcmd_script",
    ];
    let mut params = String::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if FLAGS.contains(&arg.as_str()) {
            continue;
        }
        if WITH_VALUE.contains(&arg.as_str()) {
            rest.next();
            continue;
        }
        if !params.is_empty() {
            params.push(' ');
        }
        params.push_str(arg);
    }
    params.split_whitespace().map(str::to_owned).collect()
}

/// `srcds_linux ARGS`: the engine itself, run in the current directory. Like
/// the real one it cannot load its libraries unless `LD_LIBRARY_PATH` holds
/// the installation's `bin/` (what `srcds_run` sets).
fn run_srcds_linux(args: &[String]) -> ExitCode {
    match std::env::current_dir() {
        Ok(dir) => run_engine(
            dir,
            &std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default(),
            args,
        ),
        Err(e) => fail(&format!("cannot read the current directory: {e}")),
    }
}

fn run_engine(dir: PathBuf, library_path: &OsStr, args: &[String]) -> ExitCode {
    let bin = dir.join("bin");
    let finds_libraries = std::env::split_paths(library_path)
        .any(|entry| entry == bin || (entry.is_relative() && dir.join(&entry) == bin));
    if !finds_libraries {
        return fail(
            "Failed to open dedicated_srv.so (libtier0_srv.so: cannot open shared object \
             file: No such file or directory)",
        );
    }
    run_with_args(dir, args)
}

fn run_with_args(root: PathBuf, args: &[String]) -> ExitCode {
    match SimConfig::from_srcds_args(root, args) {
        Ok(config) => run_server(config),
        Err(e) => fail(&e.to_string()),
    }
}

/// Runs a server until `quit`, a crash, SIGINT or SIGTERM; the exit code is
/// 0 for clean stops and `sim_exit_code` for crashes.
pub fn run_server(config: SimConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(serve_until_exit(config));
    // Do not wait for stragglers: srcds exits promptly.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(exit) => ExitCode::from(exit.exit_code()),
        Err(e) => fail(&e.to_string()),
    }
}

async fn serve_until_exit(config: SimConfig) -> io::Result<SimExit> {
    // Install the handlers before binding, so a stop request that arrives as
    // soon as the port answers is never fatal.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut handle = start(config).await?;
    let signal_name = tokio::select! {
        _ = handle.exited() => None,
        _ = interrupt.recv() => Some("SIGINT"),
        _ = terminate.recv() => Some("SIGTERM"),
    };
    if let Some(name) = signal_name {
        handle.print(&format!("Received {name}, shutting down"));
        return Ok(handle.shutdown().await);
    }
    Ok(handle.wait().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn srcds_command_line() {
        let config = SimConfig::from_srcds_args(
            "/srv/merged",
            &args(
                "-game left4dead2 +ip 127.0.0.2 -port 27020 +map c2m1_highway versus \
                 +maxplayers 12 -tickrate 100 -insecure +hostname My Server +sv_region -1",
            ),
        );
        let config = config.unwrap_or_default();
        assert_eq!(config.root, Some(PathBuf::from("/srv/merged")));
        assert_eq!(config.ip, IpAddr::from([127, 0, 0, 2]));
        assert_eq!(config.port, 27020);
        assert_eq!(config.map, "c2m1_highway");
        assert!(!config.vac_secure);
        assert_eq!(
            config.commands,
            [
                "ip 127.0.0.2",
                "maxplayers 12",
                // One value per +command: "Server" is a stray word.
                "hostname My",
                "sv_region -1"
            ]
        );
    }

    #[test]
    fn srcds_run_drops_its_options_and_splits_again_at_spaces() {
        let given: Vec<String> = [
            "-game",
            "left4dead2",
            "-norestart",
            "-timeout",
            "3",
            "+hostname",
            "My  Cool Server",
            "-autoupdate",
            "+sv_tags",
            "a\tb",
        ]
        .map(str::to_owned)
        .into();
        assert_eq!(
            srcds_run_params(&given),
            [
                "-game",
                "left4dead2",
                "+hostname",
                "My",
                "Cool",
                "Server",
                "+sv_tags",
                "a",
                "b"
            ]
        );
        let config = SimConfig::from_srcds_args(".", &srcds_run_params(&given));
        assert_eq!(
            config.map(|c| c.commands),
            Ok(vec!["hostname My".to_owned(), "sv_tags a".to_owned()])
        );
    }

    #[test]
    fn quoted_command_line_values() {
        let config = SimConfig::from_srcds_args(".", &["+hostname".to_owned(), "A b".to_owned()]);
        assert_eq!(
            config.map(|c| c.commands),
            Ok(vec!["hostname \"A b\"".to_owned()])
        );
    }

    #[test]
    fn bad_command_lines() {
        assert_eq!(
            SimConfig::from_srcds_args(".", &args("-port nope")),
            Err(ArgsError::InvalidPort("nope".to_owned()))
        );
        assert_eq!(
            SimConfig::from_srcds_args(".", &args("-port")),
            Err(ArgsError::MissingValue("-port".to_owned()))
        );
        assert_eq!(
            SimConfig::from_srcds_args(".", &args("+ip x")),
            Err(ArgsError::InvalidIp("x".to_owned()))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("1X").is_err());
    }
}
