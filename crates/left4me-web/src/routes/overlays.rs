//! Overlays: the list and creation, what every kind shares (sharing,
//! deletion, the state of builds), and files overlays' file manager
//! over `overlays/<id>/`.

use std::path::PathBuf;

use axum::Form;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_files::{FilesError, OverlayFiles, RelPath, ZipLimits};
use left4me_store::{Overlay, OverlayKind, Store};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::access::{self, ItemAccess};
use crate::auth::CurrentUser;
use crate::domain::DisplayName;
use crate::error::{AppError, AppResult};
use crate::pages::{
    BuildState, FileRow, FormErrors, Layout, OverlayEditPage, OverlayPage, OverlaysPage, render,
};
use crate::runner::Actor;
use crate::spec_builder::overlay_path;
use crate::state::AppState;

/// Text files up to this size can be edited in the browser.
const EDIT_LIMIT: u64 = 1024 * 1024;

fn overlay_dir(state: &AppState, id: i64) -> PathBuf {
    state.host().root().overlay(&overlay_path(id))
}

/// Runs a file operation on a files overlay on a blocking thread. Other
/// kinds are built, not edited: their files come from their builds.
async fn with_files<T: Send + 'static>(
    state: &AppState,
    overlay: &Overlay,
    op: impl FnOnce(&OverlayFiles) -> Result<T, FilesError> + Send + 'static,
) -> AppResult<T> {
    if overlay.kind != OverlayKind::Files {
        return Err(AppError::Conflict(format!(
            "overlay {} is a {} overlay: its files come from its builds, not from uploads or edits",
            overlay.name,
            overlay.kind.as_str()
        )));
    }
    let dir = overlay_dir(state, overlay.id);
    tokio::task::spawn_blocking(move || op(&OverlayFiles::create(&dir)?))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::from)
}

/// `overlay` if it is of `kind`: each kind has its own pages and forms.
pub(crate) fn of_kind(overlay: Overlay, kind: OverlayKind) -> AppResult<Overlay> {
    if overlay.kind == kind {
        return Ok(overlay);
    }
    Err(AppError::Conflict(format!(
        "overlay {} is a {} overlay, not a {} one",
        overlay.name,
        overlay.kind.as_str(),
        kind.as_str()
    )))
}

/// The published version of a built overlay and its build in progress.
pub(crate) async fn build_state(state: &AppState, overlay_id: i64) -> AppResult<BuildState> {
    Ok(BuildState {
        version: published_version(state, overlay_id).await,
        build: active_build(state.store(), overlay_id).await?,
    })
}

/// The overlay's build, queued or running.
async fn active_build(store: &Store, overlay_id: i64) -> AppResult<Option<left4me_store::Job>> {
    Ok(store
        .active_jobs_on(&format!("overlay:{overlay_id}"))
        .await?
        .into_iter()
        .next())
}

/// "version 3 (2026-11-28 10:00:00 UTC)", or that none is published yet.
async fn published_version(state: &AppState, overlay_id: i64) -> String {
    let versions = state
        .host()
        .root()
        .overlay_versions(&overlay_path(overlay_id));
    match tokio::task::spawn_blocking(move || versions.current_info()).await {
        Ok(Ok(Some(info))) => format!(
            "version {} ({})",
            info.version,
            crate::pages::datetime(&info.created)
        ),
        Ok(Ok(None)) => "no version published yet".into(),
        Ok(Err(e)) => format!("the published version cannot be read: {e}"),
        Err(e) => format!("the published version cannot be read: {e}"),
    }
}

fn rel(path: &str) -> AppResult<RelPath> {
    RelPath::parse(path).map_err(AppError::from)
}

/// The list with the creation form (refilled after a mistake).
async fn list_page(
    state: &AppState,
    user: &CurrentUser,
    form: CreateForm,
    notice: String,
    errors: FormErrors,
) -> AppResult<OverlaysPage> {
    Ok(OverlaysPage {
        l: Layout::of(user),
        overlays: state.store().visible_overlays(user.viewer()).await?,
        me: user.id(),
        name: form.name,
        kind: form.kind,
        notice,
        errors,
    })
}

pub(crate) async fn index(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let page = list_page(
        &state,
        &user,
        CreateForm::default(),
        String::new(),
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

/// Admins: adds the example scripts left4me ships as shared script
/// overlays (those there already are left alone).
pub(crate) async fn add_examples(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    access::scripts(&user)?;
    let examples = crate::scripts::bundled();
    let seeded =
        crate::scripts::seed(state.store(), Actor::User(&user.user), user.id(), &examples).await?;
    let created: Vec<&str> = seeded.created.iter().map(|o| o.name.as_str()).collect();
    let notice = match (created.is_empty(), seeded.kept.is_empty()) {
        (false, true) => format!("Added {}.", created.join(", ")),
        (false, false) => format!(
            "Added {}; {} were there already.",
            created.join(", "),
            seeded.kept.join(", ")
        ),
        (true, _) => "The example scripts are there already.".to_owned(),
    };
    let page = list_page(
        &state,
        &user,
        CreateForm::default(),
        notice,
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateForm {
    name: String,
    /// `files` (the default), `workshop` or `script` (admins).
    #[serde(default)]
    kind: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<CreateForm>,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    let name = DisplayName::parse(&form.name)
        .map_err(|message| errors.add("name", message))
        .ok();
    let kind = match form.kind.as_str() {
        "" | "files" => Some(OverlayKind::Files),
        "workshop" => Some(OverlayKind::Workshop),
        "script" => {
            access::scripts(&user)?;
            Some(OverlayKind::Script)
        }
        _ => {
            errors.add("kind", "choose files, workshop or script");
            None
        }
    };
    let (Some(name), Some(kind)) = (name, kind) else {
        let page = list_page(&state, &user, form, String::new(), errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let overlay = state
        .store()
        .create_overlay(user.id(), name.as_str(), kind)
        .await?;
    if kind == OverlayKind::Files {
        with_files(&state, &overlay, |_| Ok(())).await?;
    }
    let detail = format!("created overlay {}", overlay.name);
    super::record(&state, &user, None, "overlay.create", detail).await?;
    Ok(Redirect::to(&format!("/overlays/{}", overlay.id)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PathQuery {
    #[serde(default)]
    path: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    path: String,
    /// Names of the files just uploaded, to confirm them.
    #[serde(default)]
    uploaded: String,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ShowQuery>,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Use).await?;
    match overlay.kind {
        OverlayKind::Workshop => return super::workshop::show(&state, &user, overlay).await,
        OverlayKind::Script => return super::scripts::show(&state, &user, overlay).await,
        OverlayKind::Files => {}
    }
    let dir = rel(&query.path)?;
    let listed = dir.clone();
    let entries = with_files(&state, &overlay, move |files| files.list(&listed)).await?;
    let rows = entries
        .into_iter()
        .map(|e| FileRow::from_entry(e, EDIT_LIMIT))
        .collect();
    let page = OverlayPage {
        l: Layout::of(&user),
        used_by: state
            .store()
            .blueprints_using_overlay(id, Some(user.viewer()))
            .await?
            .join(", "),
        can_change: user.item_access(&overlay) == Some(ItemAccess::Change),
        owner: state.store().user(overlay.owner_id).await?.username,
        uploaded: query.uploaded,
        overlay,
        parent: dir.parent().map(|p| p.as_str().to_owned()),
        dir: dir.as_str().to_owned(),
        rows,
        upload_limit_mb: state.config().upload_limit_mb,
    };
    Ok(render(&page)?.into_response())
}

/// The overlay's folder `dir` again, with extra query pairs.
fn back_to(id: i64, dir: &str, extra: &[(&str, &str)]) -> Response {
    let mut pairs = vec![("path", dir)];
    pairs.extend_from_slice(extra);
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    Redirect::to(&format!("/overlays/{id}?{query}")).into_response()
}

/// Uploads: every file field is streamed to a temp file below the state
/// root (counting bytes against the limit), then written into the overlay
/// atomically, or unpacked when it is a `.zip` and unpacking is on.
pub(crate) async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Change).await?;
    let dir = rel(&query.path)?;
    let limit = state.config().upload_limit_bytes();
    let mut unpack = false;
    let mut staged: Vec<(String, tempfile::TempPath)> = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("the upload was cut off: {e}")))?
    {
        if field.name() == Some("unpack") {
            unpack = true;
            continue;
        }
        let Some(file_name) = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let temp = tempfile::NamedTempFile::new_in(state.host().root().tmp())
            .map_err(AppError::internal)?;
        let (std_file, path) = temp.into_parts();
        let mut out = tokio::fs::File::from_std(std_file);
        let mut written: u64 = 0;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| AppError::BadRequest(format!("the upload was cut off: {e}")))?
        {
            written += chunk.len() as u64;
            if written > limit {
                return Err(AppError::PayloadTooLarge(format!(
                    "{file_name} is larger than the upload limit of {} MiB",
                    state.config().upload_limit_mb
                )));
            }
            out.write_all(&chunk).await.map_err(AppError::internal)?;
        }
        out.flush().await.map_err(AppError::internal)?;
        staged.push((file_name, path));
    }
    if staged.is_empty() {
        return Err(AppError::BadRequest(
            "choose at least one file to upload".into(),
        ));
    }
    let uploaded: Vec<String> = staged.iter().map(|(name, _)| name.clone()).collect();
    let target = dir.clone();
    with_files(&state, &overlay, move |files| {
        for (name, temp) in &staged {
            // Browsers send a bare file name; anything else is refused.
            let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
            let mut source = std::fs::File::open(temp).map_err(|error| FilesError::Io {
                context: "reading the upload".into(),
                error,
            })?;
            if unpack && base.to_ascii_lowercase().ends_with(".zip") {
                files.unpack_zip(&target, &mut source, ZipLimits::default())?;
            } else {
                files.write_from(&target.join(base)?, &mut source, limit)?;
            }
        }
        Ok(())
    })
    .await?;
    state.store().touch_overlay(id).await?;
    let detail = format!(
        "uploaded {} into overlay {} /{}",
        uploaded.join(", "),
        overlay.name,
        dir.as_str()
    );
    super::record(&state, &user, None, "overlay.edit", detail).await?;
    Ok(back_to(
        id,
        dir.as_str(),
        &[("uploaded", &uploaded.join(", "))],
    ))
}

/// Applies one change to the overlay's files, records it, then shows the
/// folder again.
async fn change(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    dir: &str,
    what: String,
    op: impl FnOnce(&OverlayFiles) -> Result<(), FilesError> + Send + 'static,
) -> AppResult<Response> {
    let overlay = access::overlay(state, user, id, ItemAccess::Change).await?;
    with_files(state, &overlay, op).await?;
    state.store().touch_overlay(id).await?;
    let detail = format!("{what} in overlay {}", overlay.name);
    super::record(state, user, None, "overlay.edit", detail).await?;
    Ok(back_to(id, dir, &[]))
}

#[derive(Debug, Deserialize)]
pub(crate) struct MkdirForm {
    dir: String,
    name: String,
}

pub(crate) async fn mkdir(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MkdirForm>,
) -> AppResult<Response> {
    let target = rel(&form.dir)?.join_path(&rel(form.name.trim())?)?;
    let what = format!("created folder /{}", target.as_str());
    change(&state, &user, id, &form.dir, what, move |files| {
        files.mkdir(&target)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct MoveForm {
    dir: String,
    from: String,
    to: String,
}

pub(crate) async fn rename(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MoveForm>,
) -> AppResult<Response> {
    let (from, to) = (rel(&form.from)?, rel(form.to.trim())?);
    let what = format!("moved /{} to /{}", from.as_str(), to.as_str());
    change(&state, &user, id, &form.dir, what, move |files| {
        files.rename(&from, &to)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    dir: String,
    path: String,
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> AppResult<Response> {
    let path = rel(&form.path)?;
    let what = format!("deleted /{}", path.as_str());
    change(&state, &user, id, &form.dir, what, move |files| {
        files.remove(&path)
    })
    .await
}

pub(crate) fn attachment(name: &str, content_type: &str, body: Body) -> Response {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A file of an overlay or of a server's merged tree, downloaded under
/// its own name.
pub(crate) fn file_download(path: &RelPath, file: std::fs::File) -> Response {
    attachment(
        path.file_name().unwrap_or("file"),
        "application/octet-stream",
        file_body(file),
    )
}

fn file_body(file: std::fs::File) -> Body {
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Body::from_stream(stream)
}

pub(crate) async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Use).await?;
    let path = rel(&query.path)?;
    let opened = path.clone();
    let file = with_files(&state, &overlay, move |files| files.open_read(&opened)).await?;
    Ok(file_download(&path, file))
}

pub(crate) async fn zip(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Use).await?;
    let tmp = state.host().root().tmp();
    let file = with_files(&state, &overlay, move |files| {
        // An unnamed temp file: nothing to clean up, whatever happens.
        let mut out = tempfile::tempfile_in(&tmp).map_err(|error| FilesError::Io {
            context: "creating the archive".into(),
            error,
        })?;
        files.write_zip(&mut out)?;
        use std::io::Seek;
        out.rewind().map_err(|error| FilesError::Io {
            context: "reading the archive".into(),
            error,
        })?;
        Ok(out)
    })
    .await?;
    let name = format!("overlay-{}-{}.zip", overlay.id, overlay.name);
    Ok(attachment(&name, "application/zip", file_body(file)))
}

pub(crate) async fn edit_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Change).await?;
    let path = rel(&query.path)?;
    let read = path.clone();
    let bytes = with_files(&state, &overlay, move |files| {
        match files.read(&read, EDIT_LIMIT) {
            // A new file starts empty.
            Err(FilesError::NotFound(_)) => Ok(Vec::new()),
            other => other,
        }
    })
    .await?;
    let content = String::from_utf8(bytes).map_err(|_| {
        AppError::BadRequest("this file is not text (UTF-8); download it instead".into())
    })?;
    let page = OverlayEditPage {
        l: Layout::of(&user),
        dir: path
            .parent()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        path: path.as_str().to_owned(),
        overlay,
        content,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditForm {
    path: String,
    content: String,
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> AppResult<Response> {
    let path = rel(&form.path)?;
    let dir = path
        .parent()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let content = form.content.replace("\r\n", "\n");
    let what = format!("edited /{}", path.as_str());
    change(&state, &user, id, &dir, what, move |files| {
        files.write(&path, content.as_bytes())
    })
    .await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let overlay = access::overlay(&state, &user, id, ItemAccess::Change).await?;
    state.store().delete_overlay(id).await?;
    let root = state.host().root().clone();
    // Versions that running servers mount stay until they stop.
    tokio::task::spawn_blocking(move || {
        left4me_host::snapshot::forget_overlay(&root, &overlay_path(id))
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    let detail = format!("deleted overlay {}", overlay.name);
    super::record(&state, &user, None, "overlay.delete", detail).await?;
    Ok(Redirect::to("/overlays").into_response())
}

pub(crate) async fn share(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<super::ShareForm>,
) -> AppResult<Response> {
    super::share(&state, &user, left4me_store::SharedItem::Overlay, id, &form).await
}
