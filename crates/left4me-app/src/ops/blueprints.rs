//! Blueprints: what servers are made of (server.cfg text, launch
//! arguments and an ordered list of overlays).

use left4me_store::{Blueprint, BlueprintOverlay, ListedBlueprint, ListedOverlay};
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::domain::{DisplayName, parse_arguments};
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::access::{self, ItemAccess};
use crate::ops::activity::record;
use crate::spec_builder::server_cfg_lines;

/// The blueprints `actor` may build servers on: their own, shared ones,
/// and for admins all.
pub async fn usable(app: &App, actor: &Actor) -> OpResult<Vec<ListedBlueprint>> {
    actor.require(Scope::Read)?;
    Ok(app.store().visible_blueprints(actor.viewer()).await?)
}

/// Creates an empty blueprint of `actor`'s.
pub async fn create(app: &App, actor: &Actor, name: &str) -> OpResult<BlueprintDetail> {
    actor.require(Scope::Manage)?;
    access::limited_token_creates_nothing(actor)?;
    let name = DisplayName::parse(name).map_err(|e| OpError::invalid("name", e))?;
    let mut write = app.store().write().await?;
    let blueprint = write.create_blueprint(actor.id(), name.as_str()).await?;
    let detail = format!("created blueprint {}", blueprint.name);
    record(&mut write, actor, None, "blueprint.create", &detail).await?;
    write.commit().await?;
    detail_of(app, actor, blueprint, Vec::new()).await
}

/// A blueprint with what its page shows beside it.
#[derive(Debug, Clone)]
pub struct BlueprintDetail {
    pub blueprint: Blueprint,
    pub owner: String,
    /// Owner or admin: may save, share and delete; others use and copy.
    pub can_change: bool,
    pub overlays: Vec<BlueprintOverlay>,
    /// Overlays `actor` could add (visible, not in the list yet).
    pub available: Vec<ListedOverlay>,
    /// What a server of it gets as server.cfg.
    pub preview: String,
    /// The launch arguments as the game gets them, one per item (none
    /// when they do not parse).
    pub arguments: Vec<String>,
}

pub async fn detail(app: &App, actor: &Actor, id: i64) -> OpResult<BlueprintDetail> {
    let blueprint = access::blueprint(app, actor, id, ItemAccess::Use).await?;
    let overlays = app.store().blueprint_overlays(id).await?;
    detail_of(app, actor, blueprint, overlays).await
}

async fn detail_of(
    app: &App,
    actor: &Actor,
    blueprint: Blueprint,
    overlays: Vec<BlueprintOverlay>,
) -> OpResult<BlueprintDetail> {
    let available = app
        .store()
        .visible_overlays(actor.viewer())
        .await?
        .into_iter()
        .filter(|o| !overlays.iter().any(|bo| bo.overlay_id == o.overlay.id))
        .collect();
    Ok(BlueprintDetail {
        preview: preview_text(&blueprint.config, &overlays),
        can_change: actor.item_access(&blueprint) == Some(ItemAccess::Change),
        owner: app.store().user(blueprint.owner_id).await?.username,
        arguments: parse_arguments(&blueprint.arguments).unwrap_or_default(),
        blueprint,
        overlays,
        available,
    })
}

/// The preview text: what a server of this blueprint gets as server.cfg.
fn preview_text(config: &str, overlays: &[BlueprintOverlay]) -> String {
    server_cfg_lines(
        config,
        overlays,
        "<the server's hostname>",
        "<generated per server>",
    )
    .join("\n")
}

/// One overlay of a blueprint's list, in list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct OverlayEntry {
    pub overlay_id: i64,
    /// Stage its `cfg/server.cfg` so the server's config can exec it.
    #[serde(default)]
    pub expose_server_cfg: bool,
}

/// A blueprint as saved: every field, since it replaces what is there.
#[derive(Debug, Clone, Deserialize)]
pub struct BlueprintInput {
    pub name: String,
    #[serde(default)]
    pub config: String,
    /// Written like a shell command line; kept as typed once it parses.
    #[serde(default)]
    pub arguments: String,
    #[serde(default)]
    pub overlays: Vec<OverlayEntry>,
}

/// The overlays of `input` with their names. Only overlays `actor` can
/// see may be added; ones already in the blueprint stay, whoever put them
/// there. An overlay is in a blueprint once.
/// Where overlays are read: the store for a draft, the write transaction
/// when saving (so a share taken back or an overlay deleted meanwhile is
/// seen, not raced).
trait OverlayReads {
    async fn overlay(&mut self, id: i64) -> left4me_store::Result<left4me_store::Overlay>;
    async fn blueprint_overlays(&mut self, id: i64)
    -> left4me_store::Result<Vec<BlueprintOverlay>>;
}

impl OverlayReads for &left4me_store::Store {
    async fn overlay(&mut self, id: i64) -> left4me_store::Result<left4me_store::Overlay> {
        left4me_store::Store::overlay(self, id).await
    }
    async fn blueprint_overlays(
        &mut self,
        id: i64,
    ) -> left4me_store::Result<Vec<BlueprintOverlay>> {
        left4me_store::Store::blueprint_overlays(self, id).await
    }
}

impl OverlayReads for left4me_store::Write {
    async fn overlay(&mut self, id: i64) -> left4me_store::Result<left4me_store::Overlay> {
        left4me_store::Write::overlay(self, id).await
    }
    async fn blueprint_overlays(
        &mut self,
        id: i64,
    ) -> left4me_store::Result<Vec<BlueprintOverlay>> {
        left4me_store::Write::blueprint_overlays(self, id).await
    }
}

/// The overlays `input` names, each one the actor may use or one the
/// blueprint has already.
async fn resolve_overlays(
    reads: &mut impl OverlayReads,
    actor: &Actor,
    id: i64,
    input: &BlueprintInput,
) -> OpResult<Vec<BlueprintOverlay>> {
    let current = reads.blueprint_overlays(id).await?;
    let mut overlays: Vec<BlueprintOverlay> = Vec::new();
    for entry in &input.overlays {
        if overlays.iter().any(|o| o.overlay_id == entry.overlay_id) {
            continue;
        }
        // One the actor may not see is as missing as one that is not.
        let overlay = reads.overlay(entry.overlay_id).await?;
        if actor.item_access(&overlay).is_none()
            && !current.iter().any(|c| c.overlay_id == overlay.id)
        {
            return Err(OpError::NotFound);
        }
        overlays.push(BlueprintOverlay {
            overlay_id: overlay.id,
            name: overlay.name,
            position: i64::try_from(overlays.len()).unwrap_or(i64::MAX),
            expose_server_cfg: entry.expose_server_cfg,
        });
    }
    Ok(overlays)
}

/// The blueprint as `input` would make it, unsaved: what its page shows
/// again after a mistake, with the preview of that.
pub async fn draft(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &BlueprintInput,
) -> OpResult<BlueprintDetail> {
    let mut blueprint = access::blueprint(app, actor, id, ItemAccess::Use).await?;
    let overlays = resolve_overlays(&mut app.store(), actor, id, input).await?;
    blueprint.name.clone_from(&input.name);
    blueprint.config = input.config.replace("\r\n", "\n");
    blueprint.arguments = input.arguments.trim().to_owned();
    detail_of(app, actor, blueprint, overlays).await
}

/// Saves name, config, arguments and overlays together (owner and
/// admins). A shared blueprint takes shared overlays only.
pub async fn save(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &BlueprintInput,
) -> OpResult<BlueprintDetail> {
    access::blueprint(app, actor, id, ItemAccess::Change).await?;
    let mut errors = FieldErrors::default();
    let name = DisplayName::parse(&input.name)
        .map_err(|e| errors.add("name", e))
        .ok();
    let config = input.config.replace("\r\n", "\n");
    let arguments = input.arguments.trim();
    if let Err(problem) = parse_arguments(arguments) {
        errors.add("arguments", problem);
    }
    let (Some(name), true) = (name, errors.is_empty()) else {
        return Err(OpError::Invalid(errors));
    };
    let mut write = app.store().write().await?;
    let overlays = resolve_overlays(&mut write, actor, id, input).await?;
    let list: Vec<(i64, bool)> = overlays
        .iter()
        .map(|o| (o.overlay_id, o.expose_server_cfg))
        .collect();
    write
        .set_blueprint_overlays(id, &list)
        .await
        .map_err(|e| match OpError::from(e) {
            OpError::Conflict { message, .. } => OpError::Conflict {
                message,
                field: Some("overlays"),
            },
            other => other,
        })?;
    write
        .update_blueprint(id, name.as_str(), &config, arguments)
        .await?;
    let names: Vec<&str> = overlays.iter().map(|o| o.name.as_str()).collect();
    let detail = format!(
        "saved blueprint {} (overlays: {})",
        name.as_str(),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
    record(&mut write, actor, None, "blueprint.edit", &detail).await?;
    write.commit().await?;
    saved(app, actor, id).await
}

/// A blueprint as just written, for the one who wrote it.
async fn saved(app: &App, actor: &Actor, id: i64) -> OpResult<BlueprintDetail> {
    let blueprint = app.store().blueprint(id).await?;
    let overlays = app.store().blueprint_overlays(id).await?;
    detail_of(app, actor, blueprint, overlays).await
}

/// Deletes a blueprint no server uses (owner and admins).
pub async fn delete(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    let blueprint = access::blueprint(app, actor, id, ItemAccess::Change).await?;
    let mut write = app.store().write().await?;
    write.delete_blueprint(id).await?;
    let detail = format!("deleted blueprint {}", blueprint.name);
    record(&mut write, actor, None, "blueprint.delete", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// A private copy for `actor` of a blueprint they can see.
pub async fn copy(app: &App, actor: &Actor, id: i64) -> OpResult<BlueprintDetail> {
    actor.require(Scope::Manage)?;
    access::limited_token_creates_nothing(actor)?;
    let blueprint = access::blueprint(app, actor, id, ItemAccess::Use).await?;
    let name = format!("{} (copy)", blueprint.name);
    // A name too long for a copy keeps the original's.
    let name = DisplayName::parse(&name).map_or(blueprint.name.as_str(), |_| name.as_str());
    let mut write = app.store().write().await?;
    let copy = write.copy_blueprint(id, actor.id(), name).await?;
    let detail = format!("copied blueprint {} as {}", blueprint.name, copy.name);
    record(&mut write, actor, None, "blueprint.create", &detail).await?;
    write.commit().await?;
    saved(app, actor, copy.id).await
}
