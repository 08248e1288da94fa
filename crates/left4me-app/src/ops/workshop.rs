//! Workshop overlays: adding items and collections (asked of Steam
//! first), removing them, and the builds that refresh them.

use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_store::{Job, Overlay, OverlayKind};
use serde::Deserialize;

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::access::{self, ItemAccess};
use crate::ops::activity::record;
use crate::ops::overlays::of_kind;
use crate::workshop::queue_refreshes;

/// What adding items did.
#[derive(Debug)]
pub struct Added {
    /// New sources (duplicates of existing ones are not counted).
    pub added: u64,
    /// Entries Steam ruled out, each with its reason.
    pub refused: Vec<String>,
    /// The build that will fetch them (reused when one was queued).
    pub build: Option<Job>,
}

/// Items to add, as the form and the API send them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AddItemsInput {
    /// Ids and links, separated by spaces, commas or lines.
    pub ids: String,
}

/// A Workshop overlay `actor` may change.
async fn workshop_overlay(app: &App, actor: &Actor, id: i64) -> OpResult<Overlay> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    of_kind(overlay, OverlayKind::Workshop)
}

/// Adds the ids and links of `input` to a Workshop overlay and queues a
/// build when anything is new. Steam is asked first: items of another
/// game, missing, private, banned or without a file are refused, the
/// rest added. Nothing is added when an entry is no id or link, or when
/// Steam cannot be asked (a mistake of field `ids`).
pub async fn add_items(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &AddItemsInput,
) -> OpResult<Added> {
    let overlay = workshop_overlay(app, actor, id).await?;
    let ids = left4me_workshop::id::parse_batch(&input.ids).map_err(|bad| {
        let bad: Vec<String> = bad.iter().map(ToString::to_string).collect();
        OpError::invalid("ids", bad.join("; "))
    })?;
    let steam = |why: String| {
        OpError::invalid(
            "ids",
            format!("Steam could not be asked about the items, nothing was added: {why}"),
        )
    };
    let api = std::sync::Arc::clone(app.jobs().workshop().api());
    let (collections, details) = tokio::task::spawn_blocking(move || {
        let token = CancellationToken::new();
        let ctx = Ctx::new(&discard, &token);
        Ok::<_, left4me_workshop::api::ApiError>((
            api.collections(&ids, &ctx)?,
            api.details(&ids, &ctx)?,
        ))
    })
    .await?
    .map_err(|e| steam(left4me_workshop::describe(&e)))?;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for item in details {
        let collection = collections.contains_key(&item.id);
        if let Some(problem) = item.problem() {
            refused.push(problem.to_string());
        } else if !collection && item.file_size == 0 && item.filename.is_empty() {
            refused.push(format!(
                "{} ({}) has no file: a collection without items?",
                item.id, item.title
            ));
        } else {
            let id = i64::try_from(item.id)
                .map_err(|_| steam(format!("Steam answered an id out of range: {}", item.id)))?;
            accepted.push((id, collection, item.title));
        }
    }
    let mut write = app.store().write().await?;
    let added = write.add_workshop_sources(overlay.id, &accepted).await?;
    let build = if added > 0 {
        let detail = format!("added {added} Workshop item(s) to {}", overlay.name);
        record(&mut write, actor, None, "overlay.workshop_add", &detail).await?;
        Some(
            app.jobs()
                .commit_with_build(write, actor.requester(), &overlay)
                .await?,
        )
    } else {
        None
    };
    Ok(Added {
        added,
        refused,
        build,
    })
}

/// An item or collection to remove, as the form and the API send it.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoveItemInput {
    pub id: i64,
}

/// Removes an item or collection (with the items it brought) and
/// queues the build without it.
pub async fn remove_item(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &RemoveItemInput,
) -> OpResult<Job> {
    let overlay = workshop_overlay(app, actor, id).await?;
    let mut write = app.store().write().await?;
    if !write.remove_workshop_source(overlay.id, input.id).await? {
        return Err(OpError::NotFoundBecause(format!(
            "{} is not in overlay {}",
            input.id, overlay.name
        )));
    }
    let detail = format!("removed Workshop item {} from {}", input.id, overlay.name);
    record(&mut write, actor, None, "overlay.workshop_remove", &detail).await?;
    Ok(app
        .jobs()
        .commit_with_build(write, actor.requester(), &overlay)
        .await?)
}

/// Queues a refresh (a build) of one Workshop overlay.
pub async fn refresh(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    let overlay = workshop_overlay(app, actor, id).await?;
    Ok(app
        .jobs()
        .enqueue_build(actor.requester(), &overlay)
        .await?)
}

/// Admins: queues a refresh of every Workshop overlay.
pub async fn refresh_all(app: &App, actor: &Actor) -> OpResult<Vec<Job>> {
    access::admin(actor, "refresh every Workshop overlay")?;
    Ok(queue_refreshes(app.store(), app.jobs(), actor.requester()).await?)
}
