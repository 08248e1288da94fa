//! The host layer of left4me: everything that touches the machine.
//!
//! Only this crate mounts filesystems and starts or signals processes; the
//! CLI and the panel call the [`lifecycle`] functions.

pub mod backup;
pub mod events;
pub mod fsutil;
pub mod game;
pub mod instance_env;
pub mod journal;
pub mod layer;
pub mod layout;
pub mod lifecycle;
pub mod lock;
pub mod log_follow;
pub mod mount;
pub mod name;
pub mod ports;
pub mod privilege;
pub mod sandbox;
pub mod scripts;
pub mod snapshot;
pub mod spawn;
pub mod spec;
pub mod supervisor;
pub mod units;
pub mod usage;
pub mod versions;
