//! The Game page (admins only): the installed and public builds, the
//! versions on disk, which server runs which, and the buttons that queue
//! an install, a check or an update.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::ops::game::{self, GameOperation};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{GamePage, Layout, render};
use crate::state::AppState;

pub(crate) async fn page(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let overview = game::overview(state.app(), &user).await?;
    let page = GamePage {
        l: Layout::of(&user),
        update_available: overview.update_available(),
        o: overview,
    };
    Ok(render(&page)?.into_response())
}

/// `install`, `check`, `update` or `validate`: queues the job and shows it.
pub(crate) async fn action(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(action): Path<String>,
) -> AppResult<Response> {
    // Any other word is no page of ours.
    let operation: GameOperation = serde_json::from_value(serde_json::Value::String(action))
        .map_err(|_| AppError::NotFound)?;
    let job = game::queue(state.app(), &user, operation).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}
