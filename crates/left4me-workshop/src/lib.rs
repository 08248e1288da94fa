//! Steam Workshop overlays: layers made of Workshop items (app 550).
//!
//! Users add items and collections by id or link ([`id`]); a build
//! ([`build`]) asks the Steam Web API ([`api`]) about them, downloads
//! what the host's shared cache ([`cache`]) lacks, and publishes the
//! overlay's next immutable version through `left4me-host`. This crate
//! starts no process and mounts nothing: steamcmd, for items without a
//! direct download, is the caller's `Fallback`.

pub mod api;
pub mod build;
pub mod cache;
pub mod id;

pub use api::{ApiSettings, SteamApi};
pub use build::{Builder, Source};
pub use cache::Cache;
pub use id::WorkshopId;

/// An error with its causes, one line: "a: b: c".
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
