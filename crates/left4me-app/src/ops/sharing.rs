//! Sharing overlays and blueprints with everyone, and taking a share back.

use left4me_store::SharedItem;

use crate::App;
use crate::actor::Actor;
use crate::error::OpResult;
use crate::ops::access::{self, ItemAccess};
use crate::ops::activity::record;

/// Shares the item, or takes the share back (owner and admins); refused,
/// naming what is in the way, while taking it back would break others'
/// blueprints or servers.
pub async fn set_shared(
    app: &App,
    actor: &Actor,
    item: SharedItem,
    id: i64,
    shared: bool,
) -> OpResult<()> {
    let name = match item {
        SharedItem::Overlay => {
            access::overlay(app, actor, id, ItemAccess::Change)
                .await?
                .name
        }
        SharedItem::Blueprint => {
            access::blueprint(app, actor, id, ItemAccess::Change)
                .await?
                .name
        }
    };
    let mut write = app.store().write().await?;
    write.set_shared(item, id, shared).await?;
    let noun = item.noun();
    let detail = format!(
        "{} {noun} {name}",
        if shared { "shared" } else { "unshared" }
    );
    record(&mut write, actor, None, &format!("{noun}.share"), &detail).await?;
    write.commit().await?;
    Ok(())
}
