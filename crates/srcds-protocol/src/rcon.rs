//! The Source RCON protocol over TCP.
//!
//! A connection is authenticated once and then runs commands one at a time.
//! Source splits long output over several packets without saying how many,
//! so after each command the client sends an empty `RESPONSE_VALUE` packet;
//! the server processes packets in order and mirrors that one back, which
//! marks the end of the command's output.
//!
//! ```no_run
//! # async fn demo() -> Result<(), srcds_protocol::RconError> {
//! use std::time::Duration;
//! use srcds_protocol::RconClient;
//! let addr = "127.0.0.1:27015".parse().unwrap();
//! let mut rcon = RconClient::connect(addr, "secret", Duration::from_secs(5)).await?;
//! println!("{}", rcon.exec("status").await?);
//! # Ok(()) }
//! ```

mod packet;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use packet::{AUTH, AUTH_RESPONSE, EXEC_COMMAND, Inbound, MAX_BODY, Packet, RESPONSE_VALUE};

/// Why an RCON operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RconError {
    /// The server did not answer in time. A timed-out command leaves the
    /// connection usable: its late output is recognised and skipped.
    #[error("no answer from {addr} within {after:?} (is the server running and the port right?)")]
    Timeout {
        /// The server's address.
        addr: SocketAddr,
        /// The time limit that ran out.
        after: Duration,
    },
    /// The operating system reported a network failure (e.g. connection
    /// refused when nothing listens on the port).
    #[error("network error: {0}")]
    Io(#[source] io::Error),
    /// The server rejected the password.
    #[error("wrong RCON password")]
    AuthFailed,
    /// The server sent bytes that are not valid RCON.
    #[error("malformed RCON reply: {0}")]
    Malformed(String),
    /// The server hung up (also what Source does to an address it banned
    /// for too many wrong passwords).
    #[error("server closed the connection")]
    Closed,
    /// The password or command cannot be sent as an RCON packet.
    #[error("cannot send over RCON: {0}")]
    InvalidInput(String),
    /// An earlier call failed in a way that leaves the stream's framing
    /// unknown (network error, malformed reply, interrupted write).
    #[error("this RCON connection failed earlier and cannot be reused; reconnect")]
    Unusable,
}

impl From<io::Error> for RconError {
    /// A peer going away shows up as several I/O error kinds; they all mean
    /// the same thing to a user.
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => RconError::Closed,
            _ => RconError::Io(error),
        }
    }
}

/// An authenticated RCON connection.
#[derive(Debug)]
pub struct RconClient {
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    inbound: Inbound,
    next_id: i32,
    /// Set when the byte stream can no longer be trusted to be in step.
    unusable: bool,
}

impl RconClient {
    /// Connects to `addr` and logs in with `password`. `timeout` bounds the
    /// connect and login together, and later becomes each [`exec`]'s limit.
    ///
    /// [`exec`]: RconClient::exec
    pub async fn connect(
        addr: SocketAddr,
        password: &str,
        timeout: Duration,
    ) -> Result<Self, RconError> {
        check_body("password", password)?;
        bounded(addr, timeout, async {
            let stream = TcpStream::connect(addr).await?;
            // Commands are tiny and latency-bound; don't let Nagle hold them.
            stream.set_nodelay(true)?;
            let mut client = RconClient {
                stream,
                addr,
                timeout,
                inbound: Inbound::default(),
                next_id: 1,
                unusable: false,
            };
            client.authenticate(password).await?;
            Ok(client)
        })
        .await
    }

    /// Runs a console command and returns its whole output, however many
    /// packets it spans. Output is decoded as UTF-8, invalid bytes replaced.
    pub async fn exec(&mut self, command: &str) -> Result<String, RconError> {
        check_body("command", command)?;
        if self.unusable {
            return Err(RconError::Unusable);
        }
        let result = bounded(self.addr, self.timeout, self.exec_unbounded(command)).await;
        // A timeout only interrupts reading, which resumes cleanly next time
        // (an interrupted write keeps `unusable` set by `send`); anything
        // else means the stream is dead or out of step.
        if let Err(error) = &result
            && !matches!(error, RconError::Timeout { .. })
        {
            self.unusable = true;
        }
        result
    }

    /// The server this client talks to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The limit applied to each [`exec`](RconClient::exec).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the limit for later commands (e.g. a longer one for
    /// `changelevel`, which blocks the server while the map loads).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    async fn authenticate(&mut self, password: &str) -> Result<(), RconError> {
        let id = self.fresh_id();
        let mut request = Vec::new();
        packet::encode(&mut request, id, AUTH, password.as_bytes());
        self.send(&request).await?;
        loop {
            let reply = self.read_packet().await?;
            match reply.kind {
                // Source sends an empty RESPONSE_VALUE before the verdict.
                RESPONSE_VALUE => {}
                AUTH_RESPONSE if reply.id == id => return Ok(()),
                AUTH_RESPONSE if reply.id == -1 => return Err(RconError::AuthFailed),
                kind => {
                    return Err(RconError::Malformed(format!(
                        "unexpected packet (id {}, type {kind}) while logging in",
                        reply.id
                    )));
                }
            }
        }
    }

    async fn exec_unbounded(&mut self, command: &str) -> Result<String, RconError> {
        let id = self.fresh_id();
        let end_marker = self.fresh_id();
        let mut request = Vec::new();
        packet::encode(&mut request, id, EXEC_COMMAND, command.as_bytes());
        packet::encode(&mut request, end_marker, RESPONSE_VALUE, b"");
        self.send(&request).await?;

        let mut output = Vec::new();
        loop {
            let reply = self.read_packet().await?;
            if reply.id == end_marker {
                break;
            }
            // Anything with another id is left over from an earlier command:
            // output that arrived after a timeout, or the second packet
            // Source sends in answer to each end marker.
            if reply.id == id && reply.kind == RESPONSE_VALUE {
                output.extend_from_slice(&reply.body);
            }
        }
        Ok(into_text(output))
    }

    /// Ids are positive and never repeat within a connection's practical
    /// lifetime, so stale replies can't be mistaken for current ones; -1 is
    /// reserved by the server for "wrong password".
    fn fresh_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = id.checked_add(1).unwrap_or(1);
        id
    }

    /// Writes whole packets. If the write is interrupted half-way (error or
    /// timeout), the server would read garbage framing, so the connection is
    /// marked unusable until the write completes.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), RconError> {
        self.unusable = true;
        self.stream.write_all(bytes).await?;
        self.unusable = false;
        Ok(())
    }

    /// Reads until a whole packet is buffered. Cancel-safe: bytes already
    /// read stay in `inbound`.
    async fn read_packet(&mut self) -> Result<Packet, RconError> {
        loop {
            if let Some(packet) = self.inbound.next_packet()? {
                return Ok(packet);
            }
            let read = self.stream.read_buf(self.inbound.read_space()).await?;
            if read == 0 {
                return Err(RconError::Closed);
            }
        }
    }
}

/// Runs `operation` with a time limit, reporting expiry as [`RconError::Timeout`].
async fn bounded<T>(
    addr: SocketAddr,
    timeout: Duration,
    operation: impl Future<Output = Result<T, RconError>>,
) -> Result<T, RconError> {
    tokio::time::timeout(timeout, operation)
        .await
        .map_err(|_| RconError::Timeout {
            addr,
            after: timeout,
        })?
}

/// Rejects text the server would misread: a NUL ends the body early, and a
/// body over the server's packet limit makes it drop the connection.
/// For the fuzz targets: `data` as reads (each after a byte giving its
/// length) into the decoder, every packet decoded until it refuses the
/// stream. Whatever the bytes, this returns.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_stream(data: &[u8]) {
    let mut inbound = Inbound::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (read, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        inbound.read_space().extend_from_slice(read);
        loop {
            match inbound.next_packet() {
                Ok(Some(packet)) => {
                    let _ = into_text(packet.body);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

fn check_body(what: &str, text: &str) -> Result<(), RconError> {
    if text.contains('\0') {
        return Err(RconError::InvalidInput(format!(
            "the {what} contains a NUL character"
        )));
    }
    if text.len() > MAX_BODY {
        return Err(RconError::InvalidInput(format!(
            "the {what} is {} bytes; the server accepts at most {MAX_BODY}",
            text.len()
        )));
    }
    Ok(())
}

/// Output as text without copying when it is valid UTF-8 (the usual case).
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}
