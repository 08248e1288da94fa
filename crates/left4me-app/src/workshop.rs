//! Workshop overlays: adding items (asked of Steam first, so a wrong id
//! is refused at once), removing them, refreshes (builds), running a
//! build job's host side.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use left4me_host::events::Ctx;
use left4me_host::game::Installer;
use left4me_host::lifecycle::Host;
use left4me_store::{Job, OverlayKind, Store, WorkshopItem};
use left4me_workshop::build::{BuildError, Built, ItemReport, ItemState};
use left4me_workshop::{ApiSettings, Builder, Source, SteamApi, WorkshopId};

use crate::config::Config;
use crate::runner::{Actor as Requester, Jobs};
use crate::spec_builder::overlay_path;

/// The Steam Web API client and how builds use it.
#[derive(Debug, Clone)]
pub struct Workshop {
    api: Arc<SteamApi>,
    parallel: usize,
}

impl Workshop {
    /// The Steam Web API client, for asking about items before adding them.
    pub fn api(&self) -> &Arc<SteamApi> {
        &self.api
    }

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
pub(crate) async fn queue_refreshes(
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
