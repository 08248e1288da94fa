//! The operation layer: one operation per use case of the panel, each
//! taking the acting user and typed input, checking access itself,
//! writing in one transaction with its line in the activity log, and
//! answering with a typed result or an [`OpError`](crate::error::OpError).
//! The pages, the API and the schedulers call these and nothing below.
//!
//! Operations sit above everything else in this crate: the runner, the
//! poller and the game and Workshop schedulers never call them, so no
//! module circles back. `schedule_runs` starts the runs of users'
//! schedules in the background and calls the other operations for their
//! steps; none calls it.

pub mod access;
pub mod activity;
pub mod backups;
pub mod blueprints;
pub mod console;
pub mod game;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod overlays;
pub mod passkeys;
pub mod schedule_runs;
pub mod schedules;
pub mod scripts;
pub mod second_factor;
pub mod server_files;
pub mod server_log;
pub mod servers;
pub mod sessions;
pub mod sharing;
pub mod tokens;
pub mod users;
pub mod workshop;
