//! Blueprints: what servers are made of.

use left4me_store::ListedBlueprint;

use crate::App;
use crate::actor::Actor;
use crate::error::OpResult;

/// The blueprints `actor` may build servers on: their own, shared ones,
/// and for admins all.
pub async fn usable(app: &App, actor: &Actor) -> OpResult<Vec<ListedBlueprint>> {
    Ok(app.store().visible_blueprints(actor.viewer()).await?)
}
