//! The Game page (admins only): the installed and public builds, the
//! versions on disk, which server runs which, and the buttons that queue
//! an install, a check or an update.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use crate::access;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::jobs::Actor;
use crate::pages::{GamePage, Layout, render};
use crate::state::AppState;

pub(crate) async fn page(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    access::game(&user)?;
    let overview = crate::game::overview(state.store(), state.jobs())
        .await
        .map_err(AppError::internal)?;
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
    access::game(&user)?;
    let kind = crate::game::action_kind(&action).ok_or(AppError::NotFound)?;
    let job = state
        .jobs()
        .enqueue_game(kind, Actor::User(&user.user))
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}
