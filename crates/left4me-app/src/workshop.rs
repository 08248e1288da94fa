//! Workshop overlays: adding items (asked of Steam first, so a wrong id
//! is refused at once), removing them, refreshes (builds), running a
//! build job's host side, and the daily refresh.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_host::game::Installer;
use left4me_host::lifecycle::Host;
use left4me_store::{Job, Overlay, OverlayKind, Store, WorkshopItem};
use left4me_workshop::build::{BuildError, Built, ItemReport, ItemState};
use left4me_workshop::{ApiSettings, Builder, Source, SteamApi, WorkshopId};
use serde::Deserialize;

use crate::App;
use crate::access::{self, ItemAccess};
use crate::activity::record;
use crate::actor::Actor;
use crate::config::Config;
use crate::error::{OpError, OpResult};
use crate::jobs::{Actor as Requester, JobKind, Jobs};
use crate::overlays::of_kind;
use crate::spec_builder::overlay_path;

/// The Steam Web API client and how builds use it.
#[derive(Debug, Clone)]
pub struct Workshop {
    api: Arc<SteamApi>,
    parallel: usize,
}

impl Workshop {
    /// Needs a runtime: the client's requests run on it.
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut settings = ApiSettings::new(&config.steam_api_url);
        settings.first_retry = Duration::from_millis(config.steam_api_retry_ms);
        let api = SteamApi::new(settings, tokio::runtime::Handle::current())
            .map_err(|e| format!("setting up the Steam Web API client: {e}"))?;
        Ok(Self {
            api: Arc::new(api),
            parallel: config.workshop_downloads,
        })
    }

    /// Calls made to the Steam Web API since the panel started.
    pub fn api_calls(&self) -> u64 {
        self.api.calls()
    }

    /// Builds a Workshop overlay on this (blocking) thread, reporting
    /// each item's state to `observe`. Items without a direct download
    /// go through `installer`'s steamcmd.
    pub fn build(
        &self,
        host: &Host,
        installer: &dyn Installer,
        overlay_id: i64,
        sources: &[Source],
        observe: &(dyn Fn(&ItemReport) + Sync),
        ctx: &Ctx<'_>,
    ) -> Result<Built, BuildError> {
        let fallback = |id: WorkshopId, ctx: &Ctx<'_>| {
            installer
                .download_workshop_item(id.get(), ctx)
                .map_err(|e| left4me_workshop::describe(&e))
        };
        Builder {
            root: host.root(),
            api: &self.api,
            parallel: self.parallel,
        }
        .build(
            &overlay_path(overlay_id),
            sources,
            observe,
            Some(&fallback),
            ctx,
        )
    }
}

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
    let api = Arc::clone(&app.jobs().workshop().api);
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

/// The sources a build starts from.
pub async fn sources(store: &Store, overlay_id: i64) -> left4me_store::Result<Vec<Source>> {
    Ok(store
        .workshop_sources(overlay_id)
        .await?
        .into_iter()
        .filter_map(|s| {
            Some(Source {
                id: WorkshopId::new(u64::try_from(s.published_id).ok()?)?,
                collection: s.is_collection,
            })
        })
        .collect())
}

/// A build's item report as the store keeps it.
pub fn stored_item(overlay_id: i64, report: &ItemReport) -> WorkshopItem {
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let (state, error) = match &report.state {
        ItemState::Ok => ("ok", None),
        ItemState::Downloading => ("downloading", None),
        ItemState::Failed(why) => ("failed", Some(why.clone())),
    };
    WorkshopItem {
        overlay_id,
        item_id: as_i64(report.id),
        via: report.via.map(as_i64),
        title: report.title.clone(),
        file_size: as_i64(report.file_size),
        time_updated: as_i64(report.time_updated),
        state: state.to_owned(),
        error,
    }
}

/// The item ids of a build's reports, to drop the items it no longer has.
pub fn reported_ids(reports: &[WorkshopItem]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| r.item_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Queues a build of every Workshop overlay (a queued one is reused).
async fn queue_refreshes(
    store: &Store,
    jobs: &Jobs,
    requester: Requester<'_>,
) -> left4me_store::Result<Vec<Job>> {
    let mut queued = Vec::new();
    for overlay in store.overlays_of_kind(OverlayKind::Workshop).await? {
        queued.push(jobs.enqueue_build(requester, &overlay).await?);
    }
    Ok(queued)
}

/// The daily refresh of every Workshop overlay at `at` (seconds after
/// midnight UTC). Whether today's ran is read from the jobs the
/// scheduler queued, so a panel restarted around that time neither skips
/// nor repeats it.
#[derive(Debug, Clone)]
pub struct Refresher {
    pub store: Store,
    pub jobs: Jobs,
    pub at: u32,
    pub tick: Duration,
}

impl Refresher {
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.refresh_if_due().await {
                    tracing::error!("the daily Workshop refresh: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(self.tick) => {}
                    () = stop.cancelled() => return,
                }
            }
        })
    }

    async fn refresh_if_due(&self) -> left4me_store::Result<()> {
        let now = left4me_store::now();
        let due = last_occurrence(now, self.at);
        let last = self
            .store
            .newest_job_by(JobKind::OverlayBuild.as_str(), Requester::Scheduler.name())
            .await?;
        if last.is_some_and(|at| at >= due) {
            return Ok(());
        }
        let queued = queue_refreshes(&self.store, &self.jobs, Requester::Scheduler).await?;
        if !queued.is_empty() {
            tracing::info!("daily Workshop refresh: {} overlay build(s)", queued.len());
        }
        Ok(())
    }
}

/// The latest moment at or before `now` that is `at` seconds after a
/// midnight (UTC).
fn last_occurrence(now: i64, at: u32) -> i64 {
    let midnight = now - now.rem_euclid(86_400);
    let today = midnight + i64::from(at);
    if today <= now { today } else { today - 86_400 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_is_due_once_its_time_of_day_passed() {
        let day = 20_000 * 86_400;
        assert_eq!(
            last_occurrence(day + 5 * 3600, 4 * 3600 + 1800),
            day + 4 * 3600 + 1800
        );
        assert_eq!(
            last_occurrence(day + 3600, 4 * 3600 + 1800),
            day - 86_400 + 4 * 3600 + 1800,
            "before today's time: yesterday's"
        );
        assert_eq!(last_occurrence(day, 0), day);
    }
}
