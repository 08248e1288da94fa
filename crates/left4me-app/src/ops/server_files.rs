//! A running server's merged tree, read-only: what the game sees.

use left4me_files::{Entry, FilesError, OverlayFiles, RelPath};
use left4me_store::Server;

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::access::{self, ServerAction};
use crate::spec_builder::instance_name;

/// Runs a read on the merged tree, if it is mounted.
async fn with_merged<T: Send + 'static>(
    app: &App,
    server_id: i64,
    read: impl FnOnce(&OverlayFiles) -> Result<T, FilesError> + Send + 'static,
) -> OpResult<Option<T>> {
    let merged = app
        .host()
        .root()
        .instance(&instance_name(server_id))
        .merged();
    Ok(tokio::task::spawn_blocking(move || {
        match left4me_host::mount::find_mount(&merged) {
            Ok(Some(_)) => {}
            _ => return Ok(None),
        }
        read(&OverlayFiles::open(&merged)?).map(Some)
    })
    .await??)
}

/// The entries of `dir` in the server's tree; `None` while it is not
/// mounted (the server is not running).
pub async fn list(
    app: &App,
    actor: &Actor,
    id: i64,
    dir: &RelPath,
) -> OpResult<(Server, Option<Vec<Entry>>)> {
    let server = access::server(app, actor, id, ServerAction::Files)
        .await?
        .server;
    let listed = dir.clone();
    let entries = with_merged(app, id, move |files| files.list(&listed)).await?;
    Ok((server, entries))
}

/// A file of the server's tree, opened for reading.
pub async fn open(app: &App, actor: &Actor, id: i64, path: &RelPath) -> OpResult<std::fs::File> {
    access::server(app, actor, id, ServerAction::Files).await?;
    let opened = path.clone();
    with_merged(app, id, move |files| files.open_read(&opened))
        .await?
        .ok_or_else(|| {
            OpError::conflict("The server is not running, so its files are not mounted.")
        })
}
