//! Overlays: the list and creation, what every kind shares (sharing,
//! deletion, the state of builds), and files overlays' file manager.

use axum::Form;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::error::OpError;
use left4me_app::ops::access::ItemAccess;
use left4me_app::ops::overlays::{
    self, EDIT_LIMIT, EditInput, MoveInput, NewFolderInput, NewOverlayInput, OverlayContent,
    OverlayDetail, OverlayInfo, Published, RemoveInput,
};
use left4me_files::{Entry, RelPath};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{
    BuildState, FileRow, FormErrors, Layout, OverlayEditPage, OverlayPage, OverlaysPage, render,
};
use crate::responses::{file_download, zip_download};
use crate::state::AppState;

/// A built overlay's builds as its page shows them.
pub(crate) fn build_state(built: overlays::BuildState) -> BuildState {
    BuildState {
        version: match built.published {
            Published::Version(info) => format!(
                "version {} ({})",
                info.version,
                crate::pages::datetime(&info.created)
            ),
            Published::NotYet => "no version published yet".into(),
            Published::Unreadable(why) => format!("the published version cannot be read: {why}"),
        },
        build: built.build,
    }
}

/// The list with the creation form (refilled after a mistake).
async fn list_page(
    state: &AppState,
    user: &CurrentUser,
    form: NewOverlayInput,
    notice: String,
    errors: FormErrors,
) -> AppResult<OverlaysPage> {
    Ok(OverlaysPage {
        l: Layout::of(user),
        overlays: overlays::list(state.app(), user).await?,
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
        NewOverlayInput::default(),
        String::new(),
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

/// Admins: adds the example scripts left4me ships as shared script
/// overlays, then shows the list saying what it did.
pub(crate) async fn add_examples(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let seeded = left4me_app::ops::scripts::add_examples(state.app(), &user).await?;
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
        NewOverlayInput::default(),
        notice,
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewOverlayInput>,
) -> AppResult<Response> {
    match overlays::create(state.app(), &user, &form).await {
        Ok(overlay) => Ok(Redirect::to(&format!("/overlays/{}", overlay.id)).into_response()),
        Err(OpError::Invalid(fields)) => {
            let page = list_page(&state, &user, form, String::new(), fields.into()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(other) => Err(other.into()),
    }
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

/// Each kind's page: a files overlay's folder, a Workshop overlay's
/// items, a script overlay's script.
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ShowQuery>,
) -> AppResult<Response> {
    let OverlayDetail { info, content } =
        overlays::detail(state.app(), &user, id, &query.path).await?;
    match content {
        OverlayContent::Files { dir, entries } => {
            let page = files_page(&state, &user, info, &dir, entries, query.uploaded);
            Ok(render(&page)?.into_response())
        }
        OverlayContent::Workshop(view) => super::workshop::show(&user, info, view),
        OverlayContent::Script(view) => super::scripts::show(&user, info, view),
    }
}

fn files_page(
    state: &AppState,
    user: &CurrentUser,
    info: OverlayInfo,
    dir: &RelPath,
    entries: Vec<Entry>,
    uploaded: String,
) -> OverlayPage {
    OverlayPage {
        l: Layout::of(user),
        used_by: info.used_by.join(", "),
        can_change: info.access == ItemAccess::Change,
        owner: info.owner,
        uploaded,
        overlay: info.overlay,
        parent: dir.parent().map(|p| p.as_str().to_owned()),
        dir: dir.as_str().to_owned(),
        rows: entries
            .into_iter()
            .map(|e| FileRow::from_entry(e, EDIT_LIMIT))
            .collect(),
        upload_limit_mb: state.app().config().upload_limit_mb,
    }
}

/// The overlay's folder `dir` again, with extra query pairs.
fn back_to(id: i64, dir: &str, extra: &[(&str, &str)]) -> Response {
    let mut pairs = vec![("path", dir)];
    pairs.extend_from_slice(extra);
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    Redirect::to(&format!("/overlays/{id}?{query}")).into_response()
}

fn cut_off(error: &MultipartError) -> AppError {
    AppError::BadRequest(format!("the upload was cut off: {error}"))
}

/// Uploads: every file field is streamed to the operation as it arrives
/// (it counts the bytes against the limit), then written into the
/// overlay, or unpacked when it is a `.zip` and unpacking is on.
pub(crate) async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let mut upload = overlays::begin_upload(state.app(), &user, id, &query.path).await?;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| cut_off(&e))? {
        if field.name() == Some("unpack") {
            upload.unpack_zips();
            continue;
        }
        let Some(name) = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let mut file = upload.file(name)?;
        while let Some(chunk) = field.chunk().await.map_err(|e| cut_off(&e))? {
            file.write(&chunk).await?;
        }
        file.finish().await?;
    }
    let uploaded = overlays::upload(state.app(), &user, upload).await?;
    Ok(back_to(
        id,
        uploaded.dir.as_str(),
        &[("uploaded", &uploaded.names.join(", "))],
    ))
}

pub(crate) async fn mkdir(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<NewFolderInput>,
) -> AppResult<Response> {
    overlays::mkdir(state.app(), &user, id, &form).await?;
    Ok(back_to(id, &form.dir, &[]))
}

/// A change to a file, and the folder to show again.
#[derive(Debug, Deserialize)]
pub(crate) struct InFolder<T> {
    dir: String,
    #[serde(flatten)]
    input: T,
}

pub(crate) async fn rename(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<InFolder<MoveInput>>,
) -> AppResult<Response> {
    overlays::rename(state.app(), &user, id, &form.input).await?;
    Ok(back_to(id, &form.dir, &[]))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<InFolder<RemoveInput>>,
) -> AppResult<Response> {
    overlays::remove(state.app(), &user, id, &form.input).await?;
    Ok(back_to(id, &form.dir, &[]))
}

pub(crate) async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let download = overlays::download(state.app(), &user, id, &query.path).await?;
    Ok(file_download(&download.path, download.file))
}

pub(crate) async fn zip(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    Ok(zip_download(overlays::zip(state.app(), &user, id).await?))
}

pub(crate) async fn edit_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<PathQuery>,
) -> AppResult<Response> {
    let file = overlays::text_file(state.app(), &user, id, &query.path).await?;
    let page = OverlayEditPage {
        l: Layout::of(&user),
        dir: folder_of(&file.path),
        path: file.path.as_str().to_owned(),
        overlay: file.overlay,
        content: file.content,
    };
    Ok(render(&page)?.into_response())
}

fn folder_of(path: &RelPath) -> String {
    path.parent()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<EditInput>,
) -> AppResult<Response> {
    let path = overlays::edit(state.app(), &user, id, &form).await?;
    Ok(back_to(id, &folder_of(&path), &[]))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    overlays::delete(state.app(), &user, id).await?;
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
