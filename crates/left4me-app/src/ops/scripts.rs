//! Script overlays: saving a script and building it, building one from
//! scratch, and the example scripts. Admins only: a script runs code on
//! the host.

use left4me_store::{Job, Overlay, OverlayKind, ScriptEdit};
use serde::Deserialize;

use crate::App;
use crate::actor::Actor;
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::access::{self, ItemAccess};
use crate::ops::activity::record;
use crate::ops::overlays::of_kind;
use crate::scripts::{ScriptText, Seeded, bundled, seed};

/// A script as the form and the API send it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScriptInput {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub script: String,
    /// Builds start from a copy of the current version.
    #[serde(default, deserialize_with = "crate::input::checkbox")]
    pub from_previous: bool,
}

/// A script overlay whose script `actor` may write and build.
async fn script_overlay(app: &App, actor: &Actor, id: i64) -> OpResult<Overlay> {
    let overlay = access::overlay(app, actor, id, ItemAccess::Change).await?;
    access::scripts(actor)?;
    of_kind(overlay, OverlayKind::Script)
}

/// Saves a script overlay's script and queues its build (a queued build
/// is reused: it reads the script when it starts).
pub async fn save_and_build(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &ScriptInput,
) -> OpResult<Job> {
    let overlay = script_overlay(app, actor, id).await?;
    let text = ScriptText::parse(&input.script, &input.description).map_err(|mistakes| {
        let mut errors = FieldErrors::default();
        for mistake in mistakes {
            errors.add(mistake.field(), mistake.to_string());
        }
        OpError::Invalid(errors)
    })?;
    let edit = ScriptEdit {
        script: &text.script,
        description: &text.description,
        from_previous: input.from_previous,
    };
    let mut write = app.store().write().await?;
    write.put_overlay_script(overlay.id, edit).await?;
    let detail = format!("saved the script of overlay {}", overlay.name);
    record(&mut write, actor, None, "overlay.script", &detail).await?;
    Ok(app
        .jobs()
        .commit_with_build(write, actor.requester(), &overlay)
        .await?)
}

/// Queues a build that starts from an empty layer, whatever the
/// overlay's setting says.
pub async fn rebuild_from_scratch(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    let overlay = script_overlay(app, actor, id).await?;
    let mut write = app.store().write().await?;
    write.request_script_from_scratch(overlay.id).await?;
    Ok(app
        .jobs()
        .commit_with_build(write, actor.requester(), &overlay)
        .await?)
}

/// Admins: adds the example scripts left4me ships as shared script
/// overlays (those there already are left alone).
pub async fn add_examples(app: &App, actor: &Actor) -> OpResult<Seeded> {
    access::scripts(actor)?;
    Ok(seed(app.store(), actor.requester(), actor.id(), &bundled()).await?)
}
