//! The game from Steam (admins only): its state, and the jobs that
//! install, check and update it.

use left4me_store::Job;
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::{OpError, OpResult};
use crate::game::Overview;
use crate::ops::access;
use crate::ops::activity::record;
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

/// After a check, in automatic mode: queues the update when the public
/// build is not the installed one, and says so in the activity log.
pub(crate) async fn update_if_newer(app: &App, actor: &Actor) -> OpResult<Option<Job>> {
    if !app.config().auto_update {
        return Ok(None);
    }
    let Some(found) = crate::game::newer_public_build(app.jobs().installer()).await else {
        return Ok(None);
    };
    let mut write = app.store().write().await?;
    let detail = format!("{found}: updating automatically");
    record(&mut write, actor, None, "game.auto", &detail).await?;
    write.commit().await?;
    queue(app, actor, GameOperation::Update).await.map(Some)
}
