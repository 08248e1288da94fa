//! The Source server query protocol (A2S) over UDP.
//!
//! Each query opens its own ephemeral UDP socket connected to the server, so
//! the kernel drops datagrams from any other address and concurrent queries
//! never see each other's replies. A query is one request, at most a few
//! challenge round trips (Left 4 Dead 2 answers every query with a challenge
//! first, as an anti-spoofing measure), and a reply that may be split over
//! several datagrams.
//!
//! ```no_run
//! # async fn demo() -> Result<(), srcds_protocol::QueryError> {
//! use std::time::Duration;
//! let addr = "127.0.0.1:27015".parse().unwrap();
//! let info = srcds_protocol::a2s::info(addr, Duration::from_secs(2)).await?;
//! println!("{} on {} ({}/{})", info.name, info.map, info.players, info.max_players);
//! # Ok(()) }
//! ```

mod packet;
mod parse;
mod transport;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use transport::Query;

/// A server's answer to `A2S_INFO`: what it runs and how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Network protocol version of the server (17 for current Source games).
    pub protocol: u8,
    /// The server's `hostname`.
    pub name: String,
    /// The map currently loaded, e.g. `c1m1_hotel`.
    pub map: String,
    /// The game directory, `left4dead2` for L4D2.
    pub folder: String,
    /// The game's description, e.g. `Left 4 Dead 2`.
    pub game: String,
    /// Steam application id, truncated to 16 bits by the protocol (550 for L4D2).
    pub app_id: u16,
    /// Players currently connected, bots included.
    pub players: u8,
    /// Player slots.
    pub max_players: u8,
    /// How many of `players` are bots.
    pub bots: u8,
    /// `'d'` dedicated, `'l'` listen (non-dedicated), `'p'` SourceTV relay.
    pub server_type: char,
    /// Host operating system: `'l'` Linux, `'w'` Windows, `'m'`/`'o'` macOS.
    pub environment: char,
    /// Whether joining requires a password (`sv_password` is set).
    pub visibility: bool,
    /// Whether the server is VAC-secured.
    pub vac: bool,
    /// Game version string, e.g. `2.2.4.3`.
    pub version: String,
    /// Game port the server listens on (extra data, may be absent).
    pub port: Option<u16>,
    /// The server's SteamID (extra data, may be absent).
    pub steam_id: Option<u64>,
    /// SourceTV port and name, when SourceTV is enabled.
    pub tv: Option<(u16, String)>,
    /// The `sv_tags` keywords, comma separated.
    pub keywords: Option<String>,
    /// 64-bit game id; its low 24 bits are the full app id.
    pub game_id: Option<u64>,
}

/// One entry of an `A2S_PLAYER` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Player {
    /// Chunk index; many Source games, L4D2 included, send 0 for everybody,
    /// so do not use it as an identifier.
    pub index: u8,
    /// Player name (may be empty for players still connecting).
    pub name: String,
    /// Score (frags); game-specific meaning.
    pub score: i32,
    /// Time connected to the server. Serialized as seconds (a float), which is
    /// what a human or a script reading `--json` output expects.
    #[serde(serialize_with = "serialize_secs")]
    pub duration: Duration,
}

/// One console variable from an `A2S_RULES` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Cvar name, e.g. `mp_gamemode`.
    pub name: String,
    /// Its current value, as text.
    pub value: String,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The server did not complete its answer in time: it is down, the port is
    /// wrong, or a firewall drops the packets.
    #[error("no answer from {addr} within {after:?} (is the server running and the port right?)")]
    Timeout {
        /// The server that was queried.
        addr: SocketAddr,
        /// The time limit that ran out.
        after: Duration,
    },
    /// The operating system reported a network failure (e.g. connection
    /// refused when nothing listens on the port).
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with bytes that are not a valid reply.
    #[error("malformed reply from the server: {0}")]
    Malformed(String),
    /// The server sent a bzip2-compressed multi-packet reply. Only old Source
    /// engine builds do that; Left 4 Dead 2 never does, so it is not supported.
    #[error("the server sent a compressed reply, which is not supported")]
    Compressed,
}

/// Asks a server who it is, what it runs and how many players it has.
pub async fn info(addr: SocketAddr, timeout: Duration) -> Result<Info, QueryError> {
    let reply = transport::exchange(addr, Query::Info, timeout).await?;
    parse::info(reply.body())
}

/// Lists the players connected to a server.
pub async fn players(addr: SocketAddr, timeout: Duration) -> Result<Vec<Player>, QueryError> {
    let reply = transport::exchange(addr, Query::Players, timeout).await?;
    parse::players(reply.body())
}

/// Lists a server's public console variables (those flagged as notify).
pub async fn rules(addr: SocketAddr, timeout: Duration) -> Result<Vec<Rule>, QueryError> {
    let reply = transport::exchange(addr, Query::Rules, timeout).await?;
    parse::rules(reply.body())
}

/// For the fuzz targets: `data` as datagrams (each after a byte giving
/// its length) fed to the reassembler, every message it completes parsed
/// as INFO, PLAYER and RULES. Whatever the bytes, this returns.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_replies(data: &[u8]) {
    let mut reassembler = packet::Reassembler::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let Ok(Some(message)) = reassembler.accept(datagram) {
            let _ = message.kind();
            let _ = parse::info(message.body());
            let _ = parse::players(message.body());
            let _ = parse::rules(message.body());
        }
    }
}

fn serialize_secs<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Waits for a booting server to answer `A2S_INFO`. The caller drives
/// the loop, so it can report progress or give up between tries:
///
/// ```no_run
/// # async fn demo(addr: std::net::SocketAddr) {
/// use srcds_protocol::a2s::{ReadyWait, Try};
/// let mut wait = ReadyWait::new(addr, std::time::Duration::from_secs(60));
/// loop {
///     match wait.next_try().await {
///         Try::Ready(info) => break println!("{} is up", info.name),
///         Try::TimedOut => break eprintln!("no answer"),
///         Try::NotYet => eprintln!("waited {:?}", wait.waited()),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ReadyWait {
    addr: SocketAddr,
    limit: Duration,
    started: tokio::time::Instant,
    tried: bool,
}

/// The outcome of one [`ReadyWait::next_try`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Try {
    /// The server answered.
    Ready(Box<Info>),
    /// No answer yet; there is time left.
    NotYet,
    /// No answer within the limit.
    TimedOut,
}

impl ReadyWait {
    const PAUSE: Duration = Duration::from_millis(200);
    const TRY: Duration = Duration::from_millis(500);

    pub fn new(addr: SocketAddr, limit: Duration) -> Self {
        Self {
            addr,
            limit,
            started: tokio::time::Instant::now(),
            tried: false,
        }
    }

    /// How long this wait has lasted.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// Pauses 200 ms after an earlier try, then asks once, bounded by
    /// what is left of the limit.
    pub async fn next_try(&mut self) -> Try {
        if std::mem::replace(&mut self.tried, true) {
            let left = self.limit.saturating_sub(self.waited());
            tokio::time::sleep(Self::PAUSE.min(left)).await;
        }
        let left = self.limit.saturating_sub(self.waited());
        if left.is_zero() {
            return Try::TimedOut;
        }
        match info(self.addr, left.min(Self::TRY)).await {
            Ok(info) => Try::Ready(Box::new(info)),
            Err(_) if self.waited() >= self.limit => Try::TimedOut,
            Err(_) => Try::NotYet,
        }
    }

    /// Tries until the server answers or the limit passes: never `NotYet`.
    pub async fn finish(mut self) -> Try {
        loop {
            match self.next_try().await {
                Try::NotYet => {}
                done => return done,
            }
        }
    }
}
