//! `/api/v1/game` (admins): the installed and public builds, and the jobs
//! that install, check and update the game.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use left4me_app::ops::game::{self, GameOperation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::problem::{ApiResult, Problem};
use crate::state::AppState;

/// One version of the installation on disk.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GameVersion {
    version: u32,
    /// Steam's build id.
    build_id: Option<String>,
    created: i64,
}

/// A server and the build it runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServerBuildView {
    id: i64,
    name: String,
    runs: String,
    /// Set when it runs an older version than the current one.
    outdated: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GameView {
    installed: Option<GameVersion>,
    versions: Vec<GameVersion>,
    /// The public build at the last check.
    public_build: Option<String>,
    checked_at: Option<i64>,
    update_available: bool,
    disk_bytes: u64,
    /// Why installs and updates cannot run here, in the host's words.
    problem: Option<String>,
    servers: Vec<ServerBuildView>,
    /// Game jobs queued or running.
    active: Vec<JobView>,
}

/// The game: installed and public builds, versions on disk, who runs which.
#[utoipa::path(get, path = "/game", tag = "game",
    responses((status = 200, body = GameView), (status = 403, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<GameView>> {
    let o = game::overview(state.app(), &user).await?;
    let version = |v: &left4me_app::game::VersionInfo| GameVersion {
        version: v.version,
        build_id: v.build_id.clone(),
        created: v.created,
    };
    Ok(Json(GameView {
        update_available: o.update_available(),
        installed: o.status.installed.as_ref().map(version),
        versions: o.status.versions.iter().map(version).collect(),
        public_build: o.status.latest.as_ref().map(|c| c.public_build.clone()),
        checked_at: o.status.latest.as_ref().map(|c| c.checked),
        disk_bytes: o.status.disk_bytes,
        problem: o.problem,
        servers: o
            .servers
            .into_iter()
            .map(|s| ServerBuildView {
                id: s.id,
                name: s.name,
                runs: s.runs,
                outdated: s.outdated,
            })
            .collect(),
        active: o.active.into_iter().map(JobView::from).collect(),
    }))
}

/// What to do to the game.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Operation {
    Install,
    Check,
    Update,
    /// An update with steamcmd checking every file.
    Validate,
}

/// Queues an install, a check for updates or an update (one at a time
/// host-wide). Answers with the job.
#[utoipa::path(post, path = "/game/{operation}", tag = "game",
    params(("operation" = inline(Operation), Path, description = "install, check, update or validate")),
    responses((status = 202, body = JobView), (status = 403, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn queue(
    State(state): State<AppState>,
    user: ApiUser,
    Path(operation): Path<Operation>,
) -> ApiResult<Response> {
    let operation = match operation {
        Operation::Install => GameOperation::Install,
        Operation::Check => GameOperation::Check,
        Operation::Update => GameOperation::Update,
        Operation::Validate => GameOperation::Validate,
    };
    Ok(accepted(game::queue(state.app(), &user, operation).await?))
}
