//! Read-only view of a running server's merged tree: what the game sees.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use left4me_app::ops::server_files;
use left4me_files::RelPath;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{FileRow, Layout, ServerFilesPage, render};
use crate::responses::file_download;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct PathQuery {
    #[serde(default)]
    path: String,
}

pub(crate) async fn browse(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let dir = RelPath::parse(&query.path)?;
    let (server, entries) = server_files::list(state.app(), &user, id, &dir).await?;
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
    let path = RelPath::parse(&query.path)?;
    let file = server_files::open(state.app(), &user, id, &path).await?;
    Ok(file_download(&path, file))
}
