//! Async clients for the two network protocols a Source dedicated server
//! (here: Left 4 Dead 2) speaks to the outside world:
//!
//! * [`a2s`] — the UDP server query protocol (`A2S_INFO`, `A2S_PLAYER`,
//!   `A2S_RULES`), used to read live state without credentials;
//! * [`rcon`] — the TCP remote console, used to run console commands with the
//!   server's `rcon_password`.
//!
//! Every operation takes a timeout that bounds the *whole* operation
//! (challenge round trips and multi-packet replies included), so a caller
//! polling many servers can never be stalled by one that went silent.
//!
//! Everything here runs on tokio and needs a runtime with the `net` and
//! `time` drivers enabled.

pub mod a2s;
pub mod rcon;
mod wire;

pub use a2s::{Info, Player, QueryError, Rule};
pub use rcon::{RconClient, RconError};

#[cfg(test)]
mod test_rng {
    /// A small xorshift generator for garbage-input tests: deterministic,
    /// no extra dependency.
    pub(crate) fn xorshift(seed: u32) -> impl FnMut() -> u32 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        }
    }
}
