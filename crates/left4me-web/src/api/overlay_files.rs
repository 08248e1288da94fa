//! `/api/v1/overlays/{id}/files`, `file`, `folders`, `move` and
//! `archive`: a files overlay's files, read by those who may use it and
//! changed by those who may change it. Files go up and down as raw bytes
//! (`curl -T map.vpk …/file?path=addons/map.vpk`), each written
//! atomically.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use left4me_app::error::OpError;
use left4me_app::ops::overlays::{self, MoveInput, NewFolderInput, RemoveInput, Upload};
use left4me_files::{Entry, EntryKind, RelPath};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiJson;
use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use crate::responses::{file_download, zip_download};
use crate::state::AppState;

/// A file or folder.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EntryView {
    name: String,
    /// From the overlay's top, `/`-separated.
    path: String,
    /// `file`, `dir` or `symlink` (listed, never followed).
    kind: String,
    /// Bytes, for files.
    size: u64,
    /// Unix seconds.
    modified: i64,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        Self {
            kind: match e.kind {
                EntryKind::File => "file",
                EntryKind::Dir => "dir",
                EntryKind::Symlink => "symlink",
            }
            .to_owned(),
            path: e.path.as_str().to_owned(),
            name: e.name,
            size: e.size,
            modified: e.modified,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FileList {
    dir: String,
    entries: Vec<EntryView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InDir {
    /// A folder from the overlay's top (empty or left out: the top).
    #[serde(default)]
    dir: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FilePath {
    /// The file, from the overlay's top: `cfg/server.cfg`.
    path: String,
}

/// The folders and files of one folder of a files overlay.
#[utoipa::path(get, path = "/overlays/{id}/files", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id"), InDir),
    responses((status = 200, body = FileList), (status = 400, body = Problem),
        (status = 409, body = Problem, description = "not a files overlay")),
    security(("token" = ["read"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<InDir>,
) -> ApiResult<Json<FileList>> {
    let (dir, entries) = overlays::files(state.app(), &user, id, &query.dir).await?;
    Ok(Json(FileList {
        dir: dir.as_str().to_owned(),
        entries: entries.into_iter().map(EntryView::from).collect(),
    }))
}

/// A file's bytes.
#[utoipa::path(get, path = "/overlays/{id}/file", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id"), FilePath),
    responses((status = 200, content_type = "application/octet-stream", body = String),
        (status = 400, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn download(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<FilePath>,
) -> ApiResult<Response> {
    let download = overlays::download(state.app(), &user, id, &query.path).await?;
    Ok(file_download(&download.path, download.file))
}

/// Receives the request body into one file of an upload.
async fn receive(upload: &mut Upload, name: String, body: Body) -> ApiResult<()> {
    let mut file = upload.file(name)?;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| OpError::BadRequest(format!("the upload was cut off: {e}")))?;
        file.write(&chunk).await?;
    }
    Ok(file.finish().await?)
}

/// Writes the request body as the file (made or replaced, atomically; the
/// folders above it must exist). Up to the panel's upload limit.
#[utoipa::path(put, path = "/overlays/{id}/file", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id"), FilePath),
    request_body(content = String, content_type = "application/octet-stream",
        description = "the file's bytes"),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn put(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<FilePath>,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = RelPath::parse(&query.path).map_err(OpError::from)?;
    let Some(name) = path.file_name() else {
        return Err(OpError::BadRequest("name a file, not the overlay's top".into()).into());
    };
    let dir = path
        .parent()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut upload = overlays::begin_upload(state.app(), &user, id, &dir).await?;
    receive(&mut upload, name.to_owned(), body).await?;
    overlays::upload(state.app(), &user, upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a file, or a folder with everything in it.
#[utoipa::path(delete, path = "/overlays/{id}/file", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id"), FilePath),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<FilePath>,
) -> ApiResult<StatusCode> {
    let input = RemoveInput { path: query.path };
    overlays::remove(state.app(), &user, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewFolder {
    /// The folder to make it in (empty: the top).
    #[serde(default)]
    dir: String,
    name: String,
}

/// Makes a folder.
#[utoipa::path(post, path = "/overlays/{id}/folders", tag = "overlay files",
    request_body = NewFolder,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn mkdir(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<NewFolder>,
) -> ApiResult<StatusCode> {
    let input = NewFolderInput {
        dir: body.dir,
        name: body.name,
    };
    overlays::mkdir(state.app(), &user, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Move {
    from: String,
    /// Refused when something is there.
    to: String,
}

/// Moves or renames a file or folder.
#[utoipa::path(post, path = "/overlays/{id}/move", tag = "overlay files", request_body = Move,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn rename(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Move>,
) -> ApiResult<StatusCode> {
    let input = MoveInput {
        from: body.from,
        to: body.to,
    };
    overlays::rename(state.app(), &user, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The whole overlay as a zip archive.
#[utoipa::path(get, path = "/overlays/{id}/archive", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 200, content_type = "application/zip", body = String),
        (status = 409, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn archive(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(zip_download(overlays::zip(state.app(), &user, id).await?))
}

/// Unpacks the zip archive in the body into a folder (checked whole
/// first: nothing outside the folder, no links, within the size limits).
#[utoipa::path(post, path = "/overlays/{id}/archive", tag = "overlay files",
    params(("id" = i64, Path, description = "overlay id"), InDir),
    request_body(content = String, content_type = "application/octet-stream",
        description = "a zip archive (any content type is taken)"),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn unpack(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<InDir>,
    body: Body,
) -> ApiResult<StatusCode> {
    let mut upload = overlays::begin_upload(state.app(), &user, id, &query.dir).await?;
    upload.unpack_zips();
    receive(&mut upload, "upload.zip".to_owned(), body).await?;
    overlays::upload(state.app(), &user, upload).await?;
    Ok(StatusCode::NO_CONTENT)
}
