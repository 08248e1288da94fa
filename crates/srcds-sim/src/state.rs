//! The game server's state and its console commands.
//!
//! Everything here is synchronous and runs under one lock: a console command
//! must see and change cvars, the map and the players atomically, just as the
//! single-threaded srcds main loop does.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{self, Command};
use crate::console::Console;
use crate::cvars::Cvars;

/// The version string L4D2 reports in A2S_INFO and `status`.
pub(crate) const GAME_VERSION: &str = "2.2.4.3";
/// How deeply `exec` may nest, so a cfg that execs itself terminates.
const EXEC_DEPTH_LIMIT: usize = 16;
/// Source truncates player names to 31 bytes.
const MAX_NAME_BYTES: usize = 31;

/// Why a simulated server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimExit {
    /// `quit` or `exit` on the console: a clean stop.
    Quit,
    /// [`SimHandle::shutdown`](crate::SimHandle::shutdown), or SIGINT/SIGTERM.
    Shutdown,
    /// `sim_crash` or `sim_crash_after_ms`: the process should die with
    /// this status, like srcds_run does when srcds_linux segfaults.
    Crash {
        /// The exit status (`sim_exit_code`, default 139).
        code: u8,
    },
}

impl SimExit {
    /// The process exit status this stop maps to.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Quit | Self::Shutdown => 0,
            Self::Crash { code } => code,
        }
    }
}

/// A connected (simulated) player, as [`SimHandle::players`](crate::SimHandle::players) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerInfo {
    /// The server-assigned user id shown by `status` (starts at 2).
    pub userid: u16,
    /// The player name (possibly de-duplicated as `(1)Name`).
    pub name: String,
    /// The `STEAM_1:X:Y` id shown by `status`.
    pub steam_id: String,
    /// Time since the player joined.
    pub connected: Duration,
}

/// Why a simulated player could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// All `maxplayers` slots are taken.
    #[error("server is full ({0} max)")]
    ServerFull(u64),
    /// The name is empty (after removing control characters).
    #[error("invalid player name")]
    InvalidName,
}

#[derive(Debug, Clone)]
struct Player {
    userid: u16,
    name: String,
    steam_id: String,
    joined: Instant,
    client_port: u16,
}

/// Where command output goes.
///
/// Output of an RCON command is captured for the reply ("redirected"), as in
/// srcds; other output ends up on the console. Events such as a player
/// connecting are printed on the console in any case so the server log is
/// complete, and are also part of an RCON reply.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) text: String,
    redirected: bool,
}

impl Output {
    pub(crate) fn redirected() -> Self {
        Self {
            text: String::new(),
            redirected: true,
        }
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn event(&mut self, console: &Console, line: &str) {
        console.print(line);
        if self.redirected {
            self.line(line);
        }
    }
}

/// The simulated game server.
#[derive(Debug)]
pub(crate) struct GameState {
    pub(crate) cvars: Cvars,
    pub(crate) map: String,
    /// `left4dead2` (the `-game` folder name).
    pub(crate) game: String,
    /// `<installation>/left4dead2`, where `cfg/` and `addons/` live.
    game_dir: Option<PathBuf>,
    pub(crate) vac_secure: bool,
    /// The address `status` shows (the `+ip` value and the bound port).
    pub(crate) ip: String,
    pub(crate) port: u16,
    players: Vec<Player>,
    next_userid: u16,
    /// Set by `quit` or `sim_crash`; the network layer acts on it.
    pub(crate) exit: Option<SimExit>,
    /// True while `server.cfg` runs for a map load.
    loading_map: bool,
    pub(crate) console: Console,
}

impl GameState {
    pub(crate) fn new(console: Console, game: &str, root: Option<&Path>) -> Self {
        Self {
            cvars: Cvars::new(),
            map: String::new(),
            game: game.to_owned(),
            game_dir: root.map(|r| r.join(game)),
            vac_secure: true,
            ip: "0.0.0.0".to_owned(),
            port: 0,
            players: Vec::new(),
            next_userid: 2,
            exit: None,
            loading_map: false,
            console,
        }
    }

    pub(crate) fn human_count(&self) -> usize {
        self.players.len()
    }

    pub(crate) fn max_players(&self) -> u64 {
        self.cvars.get_u64("maxplayers")
    }

    /// (name, seconds connected) for A2S_PLAYER.
    pub(crate) fn player_list(&self) -> Vec<(String, f32)> {
        self.players
            .iter()
            .map(|p| (p.name.clone(), p.joined.elapsed().as_secs_f32()))
            .collect()
    }

    pub(crate) fn players(&self) -> Vec<PlayerInfo> {
        self.players
            .iter()
            .map(|p| PlayerInfo {
                userid: p.userid,
                name: p.name.clone(),
                steam_id: p.steam_id.clone(),
                connected: p.joined.elapsed(),
            })
            .collect()
    }

    /// Runs console text (one or more commands). Stops early once a command
    /// asked the server to exit.
    pub(crate) fn execute(&mut self, text: &str, out: &mut Output) {
        self.execute_at_depth(text, out, 0);
    }

    fn execute_at_depth(&mut self, text: &str, out: &mut Output, depth: usize) {
        for command in config::parse(text) {
            if self.exit.is_some() {
                return;
            }
            self.run(&command, out, depth);
        }
    }

    fn run(&mut self, command: &Command, out: &mut Output, depth: usize) {
        let args = &command.args;
        match command.name.as_str() {
            "" => {}
            "status" => self.status(out),
            "cvarlist" => {
                let prefix = args.first().map_or("", String::as_str);
                out.text.push_str(&self.cvars.cvarlist(prefix));
            }
            "echo" => out.line(&args.join(" ")),
            "say" => {
                let line = format!("Console: {}", command.value_text());
                out.event(&self.console.clone(), &line);
            }
            "version" => {
                let _ = writeln!(
                    out.text,
                    "Protocol version 2042\nExe version {GAME_VERSION} (left4dead2)\nExe build: 00:00:00 Jan  1 2024 (8919) (550)"
                );
            }
            "exec" => match args.first() {
                Some(name) => self.exec_file(name, out, depth),
                None => out.line("exec <filename>: execute a script file"),
            },
            "map" | "changelevel" if self.loading_map => {
                // srcds would load maps forever; a config that changes the
                // map on every map load is a bug worth seeing in the log.
                out.line(&format!(
                    "{}: ignored while loading a map (from a map-load config)",
                    command.name
                ));
            }
            "map" | "changelevel" => match args.first() {
                Some(map) if valid_map_name(map) => {
                    if let Some(mode) = args.get(1) {
                        self.cvars.set("mp_gamemode", mode);
                    }
                    self.load_map(map, command.name == "changelevel");
                }
                Some(map) => out.line(&format!("map load failed: {map} not found or invalid")),
                None => out.line(&format!("Usage:  {} <map> [mode]", command.name)),
            },
            "quit" | "exit" => self.exit = Some(SimExit::Quit),
            "sim_crash" => self.exit = Some(self.crash_exit()),
            "sim_join" => match args.first() {
                Some(name) => {
                    if let Err(e) = self.join(name, args.get(1).map(String::as_str), out) {
                        out.line(&format!("sim_join: {e}"));
                    }
                }
                None => out.line("Usage: sim_join <name> [STEAM_1:X:Y]"),
            },
            "sim_leave" | "kick" => match args.first() {
                Some(name) => {
                    let reason = if command.name == "kick" {
                        "Kicked from server"
                    } else {
                        "Disconnect by user."
                    };
                    if !self.leave(name, reason, out) {
                        out.line(&format!("{}: no player named \"{name}\"", command.name));
                    }
                }
                None => out.line(&format!("Usage: {} <name>", command.name)),
            },
            "sim_addons" => self.list_addons(out),
            name if Cvars::is_known(name) => {
                if args.is_empty() {
                    if let Some(text) = self.cvars.describe(name) {
                        out.text.push_str(&text);
                    }
                } else {
                    self.cvars.set(name, command.value_text());
                }
            }
            name => out.line(&format!("Unknown command \"{name}\"")),
        }
    }

    /// The exit a simulated crash produces.
    pub(crate) fn crash_exit(&self) -> SimExit {
        let code = self.cvars.get_u64("sim_exit_code");
        // Exit status 0 would not look like a crash to any supervisor.
        let code = u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(139);
        SimExit::Crash { code }
    }

    /// `exec NAME`: runs `cfg/NAME[.cfg]`.
    fn exec_file(&mut self, name: &str, out: &mut Output, depth: usize) {
        let file = if name.to_ascii_lowercase().ends_with(".cfg") {
            name.to_owned()
        } else {
            format!("{name}.cfg")
        };
        if depth >= EXEC_DEPTH_LIMIT {
            out.line(&format!("exec {file}: recursion limit reached"));
            return;
        }
        let Some(text) = self.read_cfg(&file) else {
            out.line(&format!("exec: couldn't exec {file}"));
            return;
        };
        self.execute_at_depth(&text, out, depth + 1);
    }

    /// Reads a cfg file below `cfg/`, refusing paths that escape it.
    fn read_cfg(&self, file: &str) -> Option<String> {
        let relative = Path::new(file);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let path = self.game_dir.as_ref()?.join("cfg").join(relative);
        let bytes = std::fs::read(path).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Loads a map: prints what srcds prints and runs `server.cfg` (srcds
    /// runs it on every map load, which is why its cvars beat `+cvar`
    /// command-line values).
    pub(crate) fn load_map(&mut self, map: &str, changelevel: bool) {
        let console = self.console.clone();
        if changelevel {
            console.print("---- Host_Changelevel ----");
        } else {
            console.print("---- Host_NewGame ----");
        }
        self.map = map.to_owned();
        console.print(&format!(
            "-------- Mapchange to {map} --------\nInitializing Director's script"
        ));
        let cfg = self.cvars.get("servercfgfile").to_owned();
        let cfg = if cfg.is_empty() {
            "server.cfg".to_owned()
        } else {
            cfg
        };
        console.print(&format!("Executing dedicated server config file {cfg}"));
        let mut out = Output::default();
        self.loading_map = true;
        self.exec_file(&cfg, &mut out, 0);
        self.loading_map = false;
        if !out.text.is_empty() {
            console.print(&out.text);
        }
    }

    /// Adds a simulated player and returns its user id.
    pub(crate) fn join(
        &mut self,
        name: &str,
        steam_id: Option<&str>,
        out: &mut Output,
    ) -> Result<u16, JoinError> {
        let max = self.max_players();
        if self.players.len() as u64 >= max {
            return Err(JoinError::ServerFull(max));
        }
        let mut base: String = name.chars().filter(|c| !c.is_control()).collect();
        truncate_at_char(&mut base, MAX_NAME_BYTES);
        if base.trim().is_empty() {
            return Err(JoinError::InvalidName);
        }
        // Source renames a second "Name" to "(1)Name".
        let mut unique = base.clone();
        let mut n = 1;
        while self.players.iter().any(|p| p.name == unique) {
            unique = format!("({n}){base}");
            truncate_at_char(&mut unique, MAX_NAME_BYTES);
            n += 1;
        }
        let userid = self.next_userid;
        self.next_userid = self.next_userid.wrapping_add(1).max(2);
        let steam_id = match steam_id {
            Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
            _ => format!(
                "STEAM_1:{}:{}",
                userid % 2,
                10_000 + u32::from(userid) * 7_919
            ),
        };
        let client_port = 27005 + (userid - 2) % 1000;
        let console = self.console.clone();
        if self.players.is_empty() {
            out.event(&console, "Server waking up from hibernation");
        }
        out.event(
            &console,
            &format!("Client \"{unique}\" connected (127.0.0.1:{client_port})."),
        );
        self.players.push(Player {
            userid,
            name: unique,
            steam_id,
            joined: Instant::now(),
            client_port,
        });
        Ok(userid)
    }

    /// Removes a player by exact name; false if nobody has that name.
    pub(crate) fn leave(&mut self, name: &str, reason: &str, out: &mut Output) -> bool {
        let Some(index) = self.players.iter().position(|p| p.name == name) else {
            return false;
        };
        let player = self.players.remove(index);
        let console = self.console.clone();
        out.event(
            &console,
            &format!("Dropped {} from server ({reason})", player.name),
        );
        if self.players.is_empty() {
            out.event(&console, "Server is hibernating");
        }
        true
    }

    fn status(&self, out: &mut Output) {
        let humans = self.players.len();
        let hibernating = if humans == 0 {
            "hibernating"
        } else {
            "not hibernating"
        };
        let secure = if self.vac_secure {
            "secure"
        } else {
            "insecure"
        };
        let t = &mut out.text;
        let _ = writeln!(t, "hostname: {}", self.cvars.get("hostname"));
        let _ = writeln!(t, "version : {GAME_VERSION} 8919 {secure}  (unknown)");
        let _ = writeln!(t, "udp/ip  : {}:{} [ public n/a ]", self.ip, self.port);
        let _ = writeln!(t, "os      :  Linux Dedicated");
        let _ = writeln!(t, "map     : {}", self.map);
        let _ = writeln!(
            t,
            "players : {humans} humans, 0 bots ({} max) ({hibernating})",
            self.max_players()
        );
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "# userid name uniqueid connected ping loss state rate adr"
        );
        for p in &self.players {
            let _ = writeln!(
                t,
                "# {:>2} \"{}\" {} {} {} 0 active 30000 127.0.0.1:{}",
                p.userid,
                p.name,
                p.steam_id,
                format_connected(p.joined.elapsed()),
                40 + p.userid % 30,
                p.client_port
            );
        }
        let _ = writeln!(t, "#end");
    }

    /// `sim_addons`: what srcds would mount from `addons/`, so tests can check
    /// that overlay layers are visible to the game process.
    fn list_addons(&self, out: &mut Output) {
        let Some(dir) = self.game_dir.as_ref().map(|d| d.join("addons")) else {
            out.line("0 addons");
            return;
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.to_ascii_lowercase().ends_with(".vpk"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut loaded = 0;
        for name in &names {
            // srcds on Linux skips add-ons whose name has more than one dot.
            if name.matches('.').count() > 1 {
                out.line(&format!("{name} (not loaded: more than one dot in name)"));
            } else {
                out.line(name);
                loaded += 1;
            }
        }
        out.line(&format!("{loaded} addons"));
    }
}

/// Map names are plain file stems; anything with a path in it is refused the
/// way srcds refuses a map it cannot find.
fn valid_map_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn truncate_at_char(s: &mut String, max_bytes: usize) {
    if s.len() > max_bytes {
        let mut end = max_bytes;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `MM:SS`, or `H:MM:SS` after an hour, like `status`.
fn format_connected(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> GameState {
        GameState::new(Console::new(false), "left4dead2", None)
    }

    fn run(state: &mut GameState, text: &str) -> String {
        let mut out = Output::redirected();
        state.execute(text, &mut out);
        out.text
    }

    #[test]
    fn cvars_unknown_commands_and_echo() {
        let mut s = state();
        assert_eq!(
            run(&mut s, "hostname My Server; echo a  \"b c\""),
            "a b c\n"
        );
        assert!(run(&mut s, "hostname").starts_with("\"hostname\" = \"My Server\""));
        assert_eq!(
            run(&mut s, "frobnicate 1"),
            "Unknown command \"frobnicate\"\n"
        );
    }

    #[test]
    fn players_join_leave_and_status() {
        let mut s = state();
        s.cvars.set("maxplayers", "2");
        assert!(run(&mut s, "status").contains("(hibernating)"));
        let out = run(
            &mut s,
            "sim_join Ellis; sim_join Ellis STEAM_1:1:42; sim_join Nick",
        );
        assert!(out.contains("Client \"Ellis\" connected (127.0.0.1:27005)."));
        assert!(out.contains("Client \"(1)Ellis\" connected"));
        assert!(out.contains("sim_join: server is full (2 max)"));
        let status = run(&mut s, "status");
        assert!(status.contains("players : 2 humans, 0 bots (2 max) (not hibernating)"));
        assert!(status.contains("#  3 \"(1)Ellis\" STEAM_1:1:42 00:00 "));
        assert!(run(&mut s, "sim_leave Ellis").contains("Dropped Ellis from server"));
        assert!(run(&mut s, "sim_leave Ellis").contains("no player named"));
        assert_eq!(s.players().len(), 1);
    }

    #[test]
    fn quit_stops_execution_and_crash_code() {
        let mut s = state();
        assert_eq!(run(&mut s, "quit; echo never"), "");
        assert_eq!(s.exit, Some(SimExit::Quit));
        let mut s = state();
        s.cvars.set("sim_exit_code", "0");
        run(&mut s, "sim_crash");
        assert_eq!(s.exit, Some(SimExit::Crash { code: 139 }));
    }

    #[test]
    fn exec_without_installation_warns() {
        let mut s = state();
        assert_eq!(run(&mut s, "exec foo"), "exec: couldn't exec foo.cfg\n");
        assert!(run(&mut s, "map ../etc/passwd").contains("map load failed"));
        run(&mut s, "map c2m1_highway versus");
        assert_eq!(s.map, "c2m1_highway");
        assert_eq!(s.cvars.get("mp_gamemode"), "versus");
    }

    #[test]
    fn server_cfg_cannot_change_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("left4dead2/cfg");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(cfg.join("server.cfg"), "map c2m1_highway\nhostname x\n").unwrap();
        let console = Console::new(false);
        let mut s = GameState::new(console.clone(), "left4dead2", Some(dir.path()));
        s.load_map("c1m1_hotel", false);
        assert_eq!(s.map, "c1m1_hotel");
        assert_eq!(s.cvars.get("hostname"), "x");
        assert!(
            console
                .lines()
                .iter()
                .any(|l| l.starts_with("map: ignored"))
        );
        run(&mut s, "changelevel c3m1_plankcountry");
        assert_eq!(s.map, "c3m1_plankcountry");
    }

    #[test]
    fn connected_time_format() {
        assert_eq!(format_connected(Duration::from_secs(312)), "05:12");
        assert_eq!(format_connected(Duration::from_secs(3723)), "1:02:03");
    }
}
