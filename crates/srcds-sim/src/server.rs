//! Starting, running and stopping one simulated server.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::a2s::{self, Challenges, SplitIds};
use crate::console::Console;
use crate::rcon;
use crate::state::{GameState, JoinError, Output, PlayerInfo, SimExit};

/// How a simulated server is started.
///
/// [`SimConfig::default`] suits in-process tests: loopback, an ephemeral
/// port, no installation (every `exec` then fails like a missing file) and no
/// stdout. [`SimConfig::from_srcds_args`] builds one from a real srcds command
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The installation root (the directory holding `srcds_linux` and
    /// `left4dead2/`), or `None` to run without files.
    pub root: Option<PathBuf>,
    /// The game folder (`-game`), also reported by A2S_INFO.
    pub game: String,
    /// The address to bind (`+ip`).
    pub ip: IpAddr,
    /// UDP and TCP port (`-port`); 0 picks a free port usable for both.
    pub port: u16,
    /// The first map (`+map`).
    pub map: String,
    /// Console commands run at start-up before the map loads (the `+name
    /// value` command-line arguments), so `server.cfg` overrides them.
    pub commands: Vec<String>,
    /// Largest A2S datagram; longer replies are split into packets of this
    /// size (Source uses 1260: a 12-byte split header and 1248 bytes of data).
    pub max_packet_size: usize,
    /// VAC status reported by A2S_INFO and `status` (`-insecure` clears it).
    pub vac_secure: bool,
    /// Print the console on stdout (the real server does; tests need not).
    pub echo_stdout: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            root: None,
            game: "left4dead2".to_owned(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            map: "c1m1_hotel".to_owned(),
            commands: Vec::new(),
            max_packet_size: 1260,
            vac_secure: true,
            echo_stdout: false,
        }
    }
}

impl SimConfig {
    /// Adds a start-up console command such as `rcon_password secret`.
    #[must_use]
    pub fn command(mut self, line: impl Into<String>) -> Self {
        self.commands.push(line.into());
        self
    }
}

/// State shared by the network tasks of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<GameState>,
    pub(crate) console: Console,
    pub(crate) challenges: Challenges,
    split_ids: SplitIds,
    pub(crate) max_packet_size: usize,
    pub(crate) steam_id: u64,
    exit: watch::Sender<Option<SimExit>>,
    ready: watch::Sender<bool>,
}

impl Shared {
    /// Locks the game state; a panic elsewhere must not wedge the server.
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, GameState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_split_id(&self) -> u32 {
        self.split_ids.next()
    }

    pub(crate) fn exit_watch(&self) -> watch::Receiver<Option<SimExit>> {
        self.exit.subscribe()
    }

    pub(crate) fn ready_watch(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub(crate) fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Stops the server; the first reason wins.
    pub(crate) fn request_exit(&self, exit: SimExit) {
        let first = self.exit.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(exit);
            true
        });
        if !first {
            return;
        }
        match exit {
            SimExit::Crash { code } => self.console.print(&format!(
                "Segmentation fault (core dumped)\n\
                 srcds-sim: simulated crash, exiting with status {code}"
            )),
            SimExit::Quit | SimExit::Shutdown => self.console.print("Server shutting down"),
        }
    }

    /// Runs console text on behalf of an RCON client; returns the captured
    /// output and any exit the commands asked for.
    pub(crate) fn execute_rcon(&self, text: &str, peer: SocketAddr) -> (Output, Option<SimExit>) {
        let mut state = self.lock_state();
        if state.cvars.get_u64("sv_rcon_log") != 0 {
            self.console
                .print(&format!("rcon from \"{peer}\": command \"{text}\""));
        }
        let mut out = Output::redirected();
        state.execute(text, &mut out);
        let exit = state.exit.take();
        (out, exit)
    }
}

/// Resolves once the server stops. (Unlike `wait_for`, holds no borrow of
/// the watched value across the caller's `.await`s, which would make the
/// task `!Send`.)
pub(crate) async fn stopped(exit: &mut watch::Receiver<Option<SimExit>>) {
    // An error means the server state is gone: stopped as well.
    let _ = exit.wait_for(Option::is_some).await;
}

/// Resolves once the server has booted.
pub(crate) async fn booted(ready: &mut watch::Receiver<bool>) {
    let _ = ready.wait_for(|r| *r).await;
}

/// A running simulated server. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds UDP and TCP on the same port. With port 0 the kernel picks the UDP
/// port and TCP may find it taken, so a few ports are tried.
async fn bind(ip: IpAddr, port: u16) -> io::Result<(UdpSocket, TcpListener)> {
    if port != 0 {
        let udp = UdpSocket::bind((ip, port)).await?;
        let tcp = TcpListener::bind((ip, port)).await?;
        return Ok((udp, tcp));
    }
    let mut last_error = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind((ip, 0)).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((ip, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// An anonymous game server Steam id (`[A:1:account:instance]`) that differs
/// between servers, for the A2S_INFO extra data.
fn anonymous_steam_id(port: u16) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let account = 0x4000_0000
        + u64::from(std::process::id() % 0x10_0000) * 16
        + COUNTER.fetch_add(1, Ordering::Relaxed) % 16;
    let instance = u64::from(port) % 0x10_0000;
    (1 << 56) | (4 << 52) | (instance << 32) | account
}

/// Starts a simulated server: binds its ports, prints the start-up console,
/// runs the start-up commands and `server.cfg`, and serves A2S and RCON in
/// background tasks (after `sim_boot_delay_ms`).
///
/// Must be called within a Tokio runtime with I/O and time enabled.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    let console = Console::new(config.echo_stdout);
    console.print(
        "Auto detecting CPU\nUsing default binary: ./srcds_linux\n\
         Using breakpad crash handler\nSetting breakpad minidump AppID = 550\n\
         Console initialized.",
    );
    let (udp, tcp) = match bind(config.ip, config.port).await {
        Ok(sockets) => sockets,
        Err(e) => {
            console.print(&format!(
                "WARNING: UDP_OpenSocket: port: {} bind: {e}",
                config.port
            ));
            return Err(e);
        }
    };
    let local_addr = udp.local_addr()?;
    let port = local_addr.port();
    console.print("Game.dll loaded for \"Left 4 Dead 2\"");

    let mut state = GameState::new(console.clone(), &config.game, config.root.as_deref());
    state.vac_secure = config.vac_secure;
    state.ip = config.ip.to_string();
    state.port = port;
    state.cvars.set("ip", &state.ip.clone());
    state.cvars.set("hostport", &port.to_string());
    let mut out = Output::default();
    for command in &config.commands {
        state.execute(command, &mut out);
    }
    if !out.text.is_empty() {
        console.print(&out.text);
    }
    console.print(&format!(
        "maxplayers set to {}\nNetwork: IP {}, mode MP, dedicated Yes, ports {port} SV / 27005 CL",
        state.max_players(),
        config.ip
    ));
    if state.exit.is_none() {
        state.load_map(&config.map, false);
    }
    let boot_delay = Duration::from_millis(state.cvars.get_u64("sim_boot_delay_ms"));
    let crash_after = state.cvars.get_u64("sim_crash_after_ms");
    let early_exit = state.exit.take();

    let (exit, _) = watch::channel(None);
    let (ready, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        console,
        challenges: Challenges::new(),
        split_ids: SplitIds::default(),
        max_packet_size: config.max_packet_size.max(64),
        steam_id: anonymous_steam_id(port),
        exit,
        ready,
    });
    if let Some(exit) = early_exit {
        shared.request_exit(exit);
    }
    let mut tasks = vec![
        tokio::spawn(a2s::serve(Arc::clone(&shared), udp)),
        tokio::spawn(rcon::serve(Arc::clone(&shared), tcp)),
        tokio::spawn(boot(Arc::clone(&shared), boot_delay)),
    ];
    if crash_after > 0 {
        tasks.push(tokio::spawn(crash_later(
            Arc::clone(&shared),
            Duration::from_millis(crash_after),
        )));
    }
    Ok(SimHandle {
        shared,
        local_addr,
        tasks,
    })
}

/// Finishes booting after the configured delay: from then on the server
/// answers queries and RCON, and says so on the console like srcds does once
/// it has logged on to Steam.
async fn boot(shared: Arc<Shared>, delay: Duration) {
    let mut exit = shared.exit_watch();
    tokio::select! {
        () = stopped(&mut exit) => return,
        () = tokio::time::sleep(delay) => {}
    }
    let (vac, empty) = {
        let state = shared.lock_state();
        (state.vac_secure, state.human_count() == 0)
    };
    let account = shared.steam_id & 0xFFFF_FFFF;
    let instance = (shared.steam_id >> 32) & 0xF_FFFF;
    shared.console.print(&format!(
        "Connection to Steam servers successful.\n\
         Assigned anonymous gameserver Steam ID [A:1:{account}:{instance}]."
    ));
    shared.console.print(if vac {
        "VAC secure mode is activated."
    } else {
        "VAC secure mode disabled."
    });
    if empty {
        shared.console.print("Server is hibernating");
    }
    shared.ready.send_replace(true);
}

async fn crash_later(shared: Arc<Shared>, after: Duration) {
    let mut exit = shared.exit_watch();
    tokio::select! {
        () = stopped(&mut exit) => {}
        () = tokio::time::sleep(after) => {
            let crash = shared.lock_state().crash_exit();
            shared.request_exit(crash);
        }
    }
}

impl SimHandle {
    /// The bound address; UDP (A2S) and TCP (RCON) share its port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the server has finished booting and answers queries.
    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// Waits until the server answers queries (or has stopped).
    pub async fn wait_ready(&self) {
        let mut ready = self.shared.ready_watch();
        let mut exit = self.shared.exit_watch();
        tokio::select! {
            () = booted(&mut ready) => {}
            () = stopped(&mut exit) => {}
        }
    }

    /// Adds a simulated player, as if `sim_join NAME [STEAMID]` was typed;
    /// returns its user id.
    pub fn join_player(&self, name: &str, steam_id: Option<&str>) -> Result<u16, JoinError> {
        self.shared
            .lock_state()
            .join(name, steam_id, &mut Output::default())
    }

    /// Removes a simulated player by name; false if there is none.
    pub fn leave_player(&self, name: &str) -> bool {
        self.shared
            .lock_state()
            .leave(name, "Disconnect by user.", &mut Output::default())
    }

    /// The connected players.
    pub fn players(&self) -> Vec<PlayerInfo> {
        self.shared.lock_state().players()
    }

    /// Runs console text as if typed on the server console and returns its
    /// output. `quit` and `sim_crash` stop the server as usual.
    pub fn execute(&self, text: &str) -> String {
        let (out, exit) = {
            let mut state = self.shared.lock_state();
            let mut out = Output::redirected();
            state.execute(text, &mut out);
            (out, state.exit.take())
        };
        if let Some(exit) = exit {
            self.shared.request_exit(exit);
        }
        out.text
    }

    /// The current value of a cvar (`None` if the simulator does not know it).
    pub fn cvar(&self, name: &str) -> Option<String> {
        crate::cvars::Cvars::is_known(name)
            .then(|| self.shared.lock_state().cvars.get(name).to_owned())
    }

    /// The current map.
    pub fn map(&self) -> String {
        self.shared.lock_state().map.clone()
    }

    /// Every console line printed so far.
    pub fn console_lines(&self) -> Vec<String> {
        self.shared.console.lines()
    }

    /// Console lines printed from now on.
    pub fn subscribe_console(&self) -> broadcast::Receiver<String> {
        self.shared.console.subscribe()
    }

    /// Prints a line on the server console (e.g. about a received signal).
    pub fn print(&self, line: &str) {
        self.shared.console.print(line);
    }

    /// Why the server stopped, if it has.
    pub fn exit_status(&self) -> Option<SimExit> {
        *self.shared.exit.borrow()
    }

    /// Waits until the server stops for any reason, without waiting for its
    /// sockets to close (see [`SimHandle::wait`]).
    pub async fn exited(&self) -> SimExit {
        let mut exit = self.shared.exit_watch();
        let result = exit.wait_for(Option::is_some).await.map(|e| *e);
        // The sender lives as long as `self`, so an error cannot happen.
        result.ok().flatten().unwrap_or(SimExit::Shutdown)
    }

    /// Waits until the server stops and its sockets are closed.
    pub async fn wait(&mut self) -> SimExit {
        let exit = self.exited().await;
        for task in self.tasks.drain(..) {
            // A task that panicked has stopped all the same.
            let _ = task.await;
        }
        exit
    }

    /// Stops the server (a clean stop, as on SIGINT) and waits until its
    /// sockets are closed. Returns the first exit reason, which may be an
    /// earlier `quit` or crash.
    pub async fn shutdown(mut self) -> SimExit {
        self.shared.request_exit(SimExit::Shutdown);
        self.wait().await
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.request_exit(SimExit::Shutdown);
    }
}
