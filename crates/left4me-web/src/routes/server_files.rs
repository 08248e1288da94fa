//! Read-only view of a running server's merged tree: what the game sees.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use left4me_files::{FilesError, OverlayFiles, RelPath};
use serde::Deserialize;

use crate::access::{self, ServerAction};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{FileRow, Layout, ServerFilesPage, render};
use crate::routes::overlays::file_download;
use crate::spec_builder::instance_name;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct PathQuery {
    #[serde(default)]
    path: String,
}

/// Runs a read on the merged tree, if it is mounted.
async fn with_merged<T: Send + 'static>(
    state: &AppState,
    server_id: i64,
    op: impl FnOnce(&OverlayFiles) -> Result<T, FilesError> + Send + 'static,
) -> AppResult<Option<T>> {
    let merged = state
        .host()
        .root()
        .instance(&instance_name(server_id))
        .merged();
    tokio::task::spawn_blocking(move || {
        match left4me_host::mount::find_mount(&merged) {
            Ok(Some(_)) => {}
            _ => return Ok(None),
        }
        op(&OverlayFiles::open(&merged)?).map(Some)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::from)
}

pub(crate) async fn browse(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let server = access::server(&state, &user, id, ServerAction::Files)
        .await?
        .server;
    let dir = RelPath::parse(&query.path)?;
    let listed = dir.clone();
    let entries = with_merged(&state, id, move |files| files.list(&listed)).await?;
    let rows = entries.map(|entries| {
        entries
            .into_iter()
            .map(|e| FileRow::from_entry(e, 0))
            .collect()
    });
    let page = ServerFilesPage {
        l: Layout::of(&user),
        server_id: server.id,
        name: server.name,
        mounted: rows.is_some(),
        rows: rows.unwrap_or_default(),
        parent: dir.parent().map(|p| p.as_str().to_owned()),
        dir: dir.as_str().to_owned(),
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    access::server(&state, &user, id, ServerAction::Files).await?;
    let path = RelPath::parse(&query.path)?;
    let opened = path.clone();
    let file = with_merged(&state, id, move |files| files.open_read(&opened))
        .await?
        .ok_or_else(|| {
            AppError::Conflict("The server is not running, so its files are not mounted.".into())
        })?;
    Ok(file_download(&path, file))
}
