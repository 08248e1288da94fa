//! Overlays: the list, one overlay's page, creating and deleting them,
//! and the file manager of files overlays over their working copy
//! (`overlays/<id>/`). Workshop and script overlays are built, not
//! edited: their own operations are in `workshop` and `scripts`.

use std::path::PathBuf;

use left4me_files::{Entry, FilesError, OverlayFiles, RelPath, ZipLimits};
use left4me_host::versions::VersionInfo;
use left4me_store::{
    Job, ListedOverlay, Overlay, OverlayKind, OverlayScript, WorkshopItem, WorkshopSource,
};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::domain::DisplayName;
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::access::{self, ItemAccess};
use crate::ops::activity::record;
use crate::spec_builder::overlay_path;

/// Text files up to this size can be edited in the browser.
pub const EDIT_LIMIT: u64 = 1024 * 1024;

/// The overlays `actor` may see (and so use), with their owners.
pub async fn list(app: &App, actor: &Actor) -> OpResult<Vec<ListedOverlay>> {
    actor.require(Scope::Read)?;
    Ok(app.store().visible_overlays(actor.viewer()).await?)
}

/// `overlay` if it is of `kind`: each kind has its own pages and forms.
pub(crate) fn of_kind(overlay: Overlay, kind: OverlayKind) -> OpResult<Overlay> {
    if overlay.kind == kind {
        return Ok(overlay);
    }
    Err(OpError::conflict(format!(
        "overlay {} is a {} overlay, not a {} one",
        overlay.name,
        overlay.kind.as_str(),
        kind.as_str()
    )))
}

/// One overlay's page: what every kind shows, and what it holds.
#[derive(Debug, Clone)]
pub struct OverlayDetail {
    pub info: OverlayInfo,
    pub content: OverlayContent,
}

#[derive(Debug, Clone)]
pub struct OverlayInfo {
    pub overlay: Overlay,
    pub owner: String,
    pub access: ItemAccess,
    /// The blueprints using it, those `actor` may see.
    pub used_by: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum OverlayContent {
    /// One folder of a files overlay.
    Files {
        dir: RelPath,
        entries: Vec<Entry>,
    },
    Workshop(WorkshopView),
    Script(ScriptView),
}

#[derive(Debug, Clone)]
pub struct WorkshopView {
    /// The items and collections added, in that order.
    pub sources: Vec<WorkshopSource>,
    /// The items as the last build saw them.
    pub items: Vec<WorkshopItem>,
    pub built: BuildState,
}

#[derive(Debug, Clone)]
pub struct ScriptView {
    /// `None` until one is saved.
    pub script: Option<OverlayScript>,
    /// Whether `actor` may write and build it (admins).
    pub may_edit: bool,
    pub built: BuildState,
}

/// A built overlay's published version and its build in progress.
#[derive(Debug, Clone)]
pub struct BuildState {
    pub published: Published,
    /// The build queued or running, if any.
    pub build: Option<Job>,
}

#[derive(Debug, Clone)]
pub enum Published {
    NotYet,
    Version(VersionInfo),
    /// It cannot be read: why.
    Unreadable(String),
}

/// An overlay `actor` may see, with folder `dir` for a files overlay
/// (other kinds ignore it).
pub async fn detail(app: &App, actor: &Actor, id: i64, dir: &str) -> OpResult<OverlayDetail> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Use).await?;
    let store = app.store();
    let content = match overlay.kind {
        OverlayKind::Files => {
            let (dir, entries) = list_dir(app, &overlay, dir).await?;
            OverlayContent::Files { dir, entries }
        }
        OverlayKind::Workshop => OverlayContent::Workshop(WorkshopView {
            sources: store.workshop_sources(id).await?,
            items: store.workshop_items(id).await?,
            built: build_state(app, id).await?,
        }),
        OverlayKind::Script => OverlayContent::Script(ScriptView {
            script: store.overlay_script(id).await?,
            may_edit: access::scripts(actor).is_ok(),
            built: build_state(app, id).await?,
        }),
    };
    let info = OverlayInfo {
        access: actor.item_access(&overlay).ok_or(OpError::NotFound)?,
        owner: store.user(overlay.owner_id).await?.username,
        used_by: store
            .blueprints_using_overlay(id, Some(actor.viewer()))
            .await?,
        overlay,
    };
    Ok(OverlayDetail { info, content })
}

async fn build_state(app: &App, overlay_id: i64) -> OpResult<BuildState> {
    let versions = app
        .host()
        .root()
        .overlay_versions(&overlay_path(overlay_id));
    let published = match tokio::task::spawn_blocking(move || versions.current_info()).await {
        Ok(Ok(Some(info))) => Published::Version(info),
        Ok(Ok(None)) => Published::NotYet,
        Ok(Err(e)) => Published::Unreadable(e.to_string()),
        Err(e) => Published::Unreadable(e.to_string()),
    };
    let build = app
        .store()
        .active_jobs_on(&format!("overlay:{overlay_id}"))
        .await?
        .into_iter()
        .next();
    Ok(BuildState { published, build })
}

/// A new overlay, as the form and the API send it.
/// The entries of folder `dir` of a files overlay `actor` may see.
pub async fn files(
    app: &App,
    actor: &Actor,
    id: i64,
    dir: &str,
) -> OpResult<(RelPath, Vec<Entry>)> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Use).await?;
    files_kind(&overlay)?;
    list_dir(app, &overlay, dir).await
}

async fn list_dir(app: &App, overlay: &Overlay, dir: &str) -> OpResult<(RelPath, Vec<Entry>)> {
    let dir = RelPath::parse(dir)?;
    let listed = dir.clone();
    let entries = with_files(app, overlay, move |files| files.list(&listed)).await?;
    Ok((dir, entries))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewOverlayInput {
    pub name: String,
    /// `files` (the default), `workshop` or `script` (admins).
    #[serde(default)]
    pub kind: String,
}

/// Creates an overlay owned by `actor`; script overlays only for admins.
pub async fn create(app: &App, actor: &Actor, input: &NewOverlayInput) -> OpResult<Overlay> {
    actor.require(Scope::Manage)?;
    access::limited_token_creates_nothing(actor)?;
    let mut errors = FieldErrors::default();
    let name = DisplayName::parse(&input.name)
        .map_err(|e| errors.add("name", e))
        .ok();
    let kind = match input.kind.as_str() {
        "" | "files" => Some(OverlayKind::Files),
        "workshop" => Some(OverlayKind::Workshop),
        "script" => {
            access::scripts(actor)?;
            Some(OverlayKind::Script)
        }
        _ => {
            errors.add("kind", "choose files, workshop or script");
            None
        }
    };
    let (Some(name), Some(kind)) = (name, kind) else {
        return Err(OpError::Invalid(errors));
    };
    let mut write = app.store().write().await?;
    let overlay = write
        .create_overlay(actor.id(), name.as_str(), kind)
        .await?;
    let detail = format!("created overlay {}", overlay.name);
    record(&mut write, actor, None, "overlay.create", &detail).await?;
    write.commit().await?;
    if kind == OverlayKind::Files {
        // Its working copy, which a server start snapshots even empty.
        // Made after the commit: one left by a failed commit would make
        // the next overlay of this id (ids are reused) look edited.
        with_files(app, &overlay, |_| Ok(())).await?;
    }
    Ok(overlay)
}

/// Deletes an overlay no blueprint uses; versions running servers mount
/// stay until they stop.
pub async fn delete(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let mut write = app.store().write().await?;
    write.delete_overlay(id).await?;
    let detail = format!("deleted overlay {}", overlay.name);
    record(&mut write, actor, None, "overlay.delete", &detail).await?;
    write.commit().await?;
    // After the commit, so an overlay that stays keeps its files.
    let root = app.host().root().clone();
    tokio::task::spawn_blocking(move || {
        left4me_host::snapshot::forget_overlay(&root, &overlay_path(id))
    })
    .await?
    .map_err(|e| OpError::internal("removing the overlay's files", e))
}

fn overlay_dir(app: &App, id: i64) -> PathBuf {
    app.host().root().overlay(&overlay_path(id))
}

/// Refused for other kinds than files: their files come from builds.
fn files_kind(overlay: &Overlay) -> OpResult<()> {
    if overlay.kind == OverlayKind::Files {
        return Ok(());
    }
    Err(OpError::conflict(format!(
        "overlay {} is a {} overlay: its files come from its builds, not from uploads or edits",
        overlay.name,
        overlay.kind.as_str()
    )))
}

/// Runs a file operation on a files overlay's working copy, on a
/// blocking thread.
async fn with_files<T: Send + 'static>(
    app: &App,
    overlay: &Overlay,
    op: impl FnOnce(&OverlayFiles) -> Result<T, FilesError> + Send + 'static,
) -> OpResult<T> {
    files_kind(overlay)?;
    let dir = overlay_dir(app, overlay.id);
    Ok(tokio::task::spawn_blocking(move || op(&OverlayFiles::create(&dir)?)).await??)
}

/// Changes a files overlay's working copy, then marks the overlay changed
/// and records `detail` in one transaction. The files go first: the
/// filesystem is in no transaction, and an upload may take far longer
/// than the database's write lock may be held.
async fn change(
    app: &App,
    actor: &Actor,
    overlay: &Overlay,
    detail: &str,
    op: impl FnOnce(&OverlayFiles) -> Result<(), FilesError> + Send + 'static,
) -> OpResult<()> {
    with_files(app, overlay, op).await?;
    let mut write = app.store().write().await?;
    write.touch_overlay(overlay.id).await?;
    record(&mut write, actor, None, "overlay.edit", detail).await?;
    write.commit().await?;
    Ok(())
}

/// A new folder, as the form and the API send it.
#[derive(Debug, Clone, Deserialize)]
pub struct NewFolderInput {
    /// The folder it goes into.
    pub dir: String,
    pub name: String,
}

pub async fn mkdir(app: &App, actor: &Actor, id: i64, input: &NewFolderInput) -> OpResult<()> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let target = RelPath::parse(&input.dir)?.join_path(&RelPath::parse(input.name.trim())?)?;
    let detail = format!(
        "created folder /{} in overlay {}",
        target.as_str(),
        overlay.name
    );
    change(app, actor, &overlay, &detail, move |files| {
        files.mkdir(&target)
    })
    .await
}

/// A move or rename, as the form and the API send it.
#[derive(Debug, Clone, Deserialize)]
pub struct MoveInput {
    pub from: String,
    pub to: String,
}

pub async fn rename(app: &App, actor: &Actor, id: i64, input: &MoveInput) -> OpResult<()> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let (from, to) = (
        RelPath::parse(&input.from)?,
        RelPath::parse(input.to.trim())?,
    );
    let detail = format!(
        "moved /{} to /{} in overlay {}",
        from.as_str(),
        to.as_str(),
        overlay.name
    );
    change(app, actor, &overlay, &detail, move |files| {
        files.rename(&from, &to)
    })
    .await
}

/// A file or folder to delete, as the form and the API send it.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoveInput {
    pub path: String,
}

pub async fn remove(app: &App, actor: &Actor, id: i64, input: &RemoveInput) -> OpResult<()> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let path = RelPath::parse(&input.path)?;
    let detail = format!("deleted /{} in overlay {}", path.as_str(), overlay.name);
    change(app, actor, &overlay, &detail, move |files| {
        files.remove(&path)
    })
    .await
}

/// A text file's new content, as the form and the API send it.
#[derive(Debug, Clone, Deserialize)]
pub struct EditInput {
    pub path: String,
    pub content: String,
}

/// Writes a text file (Unix line ends); returns its path.
pub async fn edit(app: &App, actor: &Actor, id: i64, input: &EditInput) -> OpResult<RelPath> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let path = RelPath::parse(&input.path)?;
    let content = input.content.replace("\r\n", "\n");
    let detail = format!("edited /{} in overlay {}", path.as_str(), overlay.name);
    let written = path.clone();
    change(app, actor, &overlay, &detail, move |files| {
        files.write(&written, content.as_bytes())
    })
    .await?;
    Ok(path)
}

/// A text file to edit.
#[derive(Debug, Clone)]
pub struct TextFile {
    pub overlay: Overlay,
    pub path: RelPath,
    /// Empty for a new file.
    pub content: String,
}

/// A file of an overlay `actor` may change, to edit: text up to
/// [`EDIT_LIMIT`].
pub async fn text_file(app: &App, actor: &Actor, id: i64, path: &str) -> OpResult<TextFile> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let path = RelPath::parse(path)?;
    let read = path.clone();
    let bytes = with_files(app, &overlay, move |files| {
        match files.read(&read, EDIT_LIMIT) {
            Err(FilesError::NotFound(_)) => Ok(Vec::new()),
            other => other,
        }
    })
    .await?;
    let content = String::from_utf8(bytes).map_err(|_| {
        OpError::BadRequest("this file is not text (UTF-8); download it instead".into())
    })?;
    Ok(TextFile {
        overlay,
        path,
        content,
    })
}

/// A file opened for download.
#[derive(Debug)]
pub struct FileDownload {
    pub path: RelPath,
    pub file: std::fs::File,
}

pub async fn download(app: &App, actor: &Actor, id: i64, path: &str) -> OpResult<FileDownload> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Use).await?;
    let path = RelPath::parse(path)?;
    let opened = path.clone();
    let file = with_files(app, &overlay, move |files| files.open_read(&opened)).await?;
    Ok(FileDownload { path, file })
}

/// A files overlay as a zip archive, in a temp file nobody else sees.
#[derive(Debug)]
pub struct Archive {
    pub overlay: Overlay,
    /// At its start.
    pub file: std::fs::File,
}

pub async fn zip(app: &App, actor: &Actor, id: i64) -> OpResult<Archive> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Use).await?;
    let tmp = app.host().root().tmp();
    let file = with_files(app, &overlay, move |files| {
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
    Ok(Archive { overlay, file })
}

/// An upload into a files overlay as it arrives: [`begin_upload`] checks
/// it may go where it is to go before anything is received, each file is
/// streamed to a temp file below the state root ([`Upload::file`]), and
/// [`upload`] puts them into the overlay.
#[derive(Debug)]
pub struct Upload {
    overlay_id: i64,
    dir: RelPath,
    tmp: PathBuf,
    limit: u64,
    limit_mb: u64,
    unpack: bool,
    staged: Vec<(String, tempfile::TempPath)>,
}

/// Starts an upload into folder `dir` of a files overlay `actor` may change.
pub async fn begin_upload(app: &App, actor: &Actor, id: i64, dir: &str) -> OpResult<Upload> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    let dir = RelPath::parse(dir)?;
    files_kind(&overlay)?;
    Ok(Upload {
        overlay_id: overlay.id,
        dir,
        tmp: app.host().root().tmp(),
        limit: app.config().upload_limit_bytes(),
        limit_mb: app.config().upload_limit_mb,
        unpack: false,
        staged: Vec::new(),
    })
}

impl Upload {
    /// Unpacks `.zip` files into the folder instead of keeping them.
    pub fn unpack_zips(&mut self) {
        self.unpack = true;
    }

    /// The next file, named `name` as the client sent it.
    pub fn file(&mut self, name: String) -> OpResult<UploadFile<'_>> {
        let temp = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(|e| OpError::internal("staging the upload", e))?;
        let (file, path) = temp.into_parts();
        Ok(UploadFile {
            upload: self,
            name,
            out: tokio::fs::File::from_std(file),
            path,
            written: 0,
        })
    }
}

/// One file of an upload, being received. Dropped before
/// [`UploadFile::finish`], its temp file goes.
#[derive(Debug)]
pub struct UploadFile<'a> {
    upload: &'a mut Upload,
    name: String,
    out: tokio::fs::File,
    path: tempfile::TempPath,
    written: u64,
}

impl UploadFile<'_> {
    /// Appends a chunk; refused once the file exceeds the upload limit.
    pub async fn write(&mut self, chunk: &[u8]) -> OpResult<()> {
        self.written += chunk.len() as u64;
        if self.written > self.upload.limit {
            return Err(OpError::TooLarge(format!(
                "{} is larger than the upload limit of {} MiB",
                self.name, self.upload.limit_mb
            )));
        }
        self.out
            .write_all(chunk)
            .await
            .map_err(|e| OpError::internal("staging the upload", e))
    }

    /// The file arrived whole.
    pub async fn finish(mut self) -> OpResult<()> {
        self.out
            .flush()
            .await
            .map_err(|e| OpError::internal("staging the upload", e))?;
        self.upload.staged.push((self.name, self.path));
        Ok(())
    }
}

/// What an upload put into the overlay.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub dir: RelPath,
    /// The files' names as the client sent them.
    pub names: Vec<String>,
}

/// Writes the files received into the overlay, each atomically, or
/// unpacks `.zip` files when asked to.
pub async fn upload(app: &App, actor: &Actor, upload: Upload) -> OpResult<Uploaded> {
    // Asked again: a long upload may outlast a share.
    let overlay = access::overlay(app, actor, upload.overlay_id, ItemAccess::Change).await?;
    let Upload {
        dir,
        limit,
        unpack,
        staged,
        ..
    } = upload;
    if staged.is_empty() {
        return Err(OpError::BadRequest(
            "choose at least one file to upload".into(),
        ));
    }
    let names: Vec<String> = staged.iter().map(|(name, _)| name.clone()).collect();
    let detail = format!(
        "uploaded {} into overlay {} /{}",
        names.join(", "),
        overlay.name,
        dir.as_str()
    );
    let target = dir.clone();
    change(app, actor, &overlay, &detail, move |files| {
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
    Ok(Uploaded { dir, names })
}
