//! The game from Steam (admins only): its state, and the jobs that
//! install, check and update it.

use left4me_store::Job;
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::{OpError, OpResult};
use crate::game::Overview;
use crate::ops::access;
use crate::runner::JobKind;

/// The installed and public builds, the versions on disk and which
/// server runs which.
pub async fn overview(app: &App, actor: &Actor) -> OpResult<Overview> {
    access::game(actor)?;
    actor.require(Scope::Read)?;
    crate::game::overview(app.store(), app.jobs())
        .await
        .map_err(|e| OpError::internal("reading the game's state", e))
}

/// What can be done to the game through a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameOperation {
    Install,
    Check,
    Update,
    /// An update with steamcmd checking every file.
    Validate,
}

impl GameOperation {
    pub fn job_kind(self) -> JobKind {
        match self {
            Self::Install => JobKind::GameInstall,
            Self::Check => JobKind::GameCheck,
            Self::Update => JobKind::GameUpdate,
            Self::Validate => JobKind::GameValidate,
        }
    }
}

/// Queues an install, check or update (one at a time host-wide).
pub async fn queue(app: &App, actor: &Actor, operation: GameOperation) -> OpResult<Job> {
    access::game(actor)?;
    Ok(app
        .jobs()
        .enqueue_game(operation.job_kind(), actor.requester())
        .await?)
}
