//! The game from Steam as the panel sees it, below the routes so the Game
//! page and a future JSON API share it: the overview, the build each
//! server runs, and automatic mode's restarts onto a new build.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use left4me_host::game::{
    Check, GameError, GameStatus, Installer, rebuilt_overlays, running_versions,
};
pub use left4me_host::versions::VersionInfo;
use left4me_store::{Job, OverlayKind, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::live::Live;
use crate::runner::{Actor, INSTALL_LOCK, JobKind, Jobs};

/// A check's answer in words, for the job log.
pub fn describe_check(check: &Check) -> String {
    let installed = check.installed_build.as_deref().unwrap_or("none");
    if check.update_available() {
        format!(
            "build {} is public, build {installed} is installed: update available",
            check.public_build
        )
    } else {
        format!("build {installed} is installed and public: up to date")
    }
}

/// The installation each mounted server runs, next to the current one.
#[derive(Debug, Clone, Default)]
pub struct Builds {
    pub current: Option<VersionInfo>,
    /// By server id.
    pub running: BTreeMap<i64, VersionInfo>,
    /// Servers running an older version of a rebuilt overlay, with the
    /// kinds of those overlays (what changed since they started).
    pub rebuilt: BTreeMap<i64, BTreeSet<OverlayKind>>,
}

impl Builds {
    /// "build 1001, 1002 available: restart to update" for a server that
    /// runs an older version than the current one (version numbers when
    /// the build ids do not tell them apart).
    pub fn outdated(&self, server_id: i64) -> Option<String> {
        let current = self.current.as_ref()?;
        let runs = self.running.get(&server_id)?;
        (runs.version != current.version).then(|| match (&runs.build_id, &current.build_id) {
            (Some(old), Some(new)) if old != new => {
                format!("build {old}, {new} available: restart to update")
            }
            _ => format!(
                "version {}, {} available: restart to update",
                runs.version, current.version
            ),
        })
    }

    /// What a restart brings a running server: a newer game build, newer
    /// overlay versions (named by what changed), or both; `None` when it
    /// runs the latest of all.
    pub fn restart_note(&self, server_id: i64) -> Option<String> {
        let overlays = self.rebuilt.get(&server_id).map(|kinds| {
            let changes: Vec<&str> = kinds
                .iter()
                .map(|kind| match kind {
                    OverlayKind::Files => "overlay files changed",
                    OverlayKind::Workshop => "Workshop items updated",
                    OverlayKind::Script => "overlay rebuilt",
                })
                .collect();
            format!("{}: restart to apply", changes.join(", "))
        });
        match (self.outdated(server_id), overlays) {
            (Some(game), Some(overlays)) => Some(format!("{game}; {overlays}")),
            (game, overlays) => game.or(overlays),
        }
    }

    /// A label for what a server runs: "build 1001 (version 2)".
    pub fn running_label(&self, server_id: i64) -> Option<String> {
        self.running.get(&server_id).map(version_label)
    }
}

pub fn version_label(v: &VersionInfo) -> String {
    match &v.build_id {
        Some(build) => format!("build {build} (version {})", v.version),
        None => format!("version {}", v.version),
    }
}

/// The server id of an instance named `server-<id>`.
fn server_id(name: &str) -> Option<i64> {
    name.strip_prefix("server-")?.parse().ok()
}

/// What each server runs, and for each server on an older version of an
/// overlay, those overlays' ids (kinds are the store's to tell).
fn read_builds(installer: &dyn Installer) -> Result<(Builds, BTreeMap<i64, Vec<i64>>), GameError> {
    let game = installer.game();
    let versions = game.root.installation_versions();
    let io = |error| GameError::Io {
        context: "reading the installation".into(),
        error,
    };
    let current = versions.current_info().map_err(io)?;
    let mut infos: BTreeMap<u32, VersionInfo> = BTreeMap::new();
    let mut running = BTreeMap::new();
    for (name, version) in running_versions(&game.root)? {
        let Some(id) = server_id(name.as_str()) else {
            continue;
        };
        let info = match infos.get(&version) {
            Some(info) => info.clone(),
            None => {
                let info = versions.info(version).map_err(io)?;
                infos.insert(version, info.clone());
                info
            }
        };
        running.insert(id, info);
    }
    let rebuilt = rebuilt_overlays(&game.root)?
        .into_iter()
        .filter_map(|(name, paths)| {
            let ids = paths.iter().filter_map(|p| p.as_str().parse().ok());
            Some((server_id(name.as_str())?, ids.collect()))
        })
        .collect();
    let builds = Builds {
        current,
        running,
        rebuilt: BTreeMap::new(),
    };
    Ok((builds, rebuilt))
}

/// What each server runs; empty (and logged) when it cannot be read, so
/// a server list never fails over it.
pub async fn builds(store: &Store, installer: &Arc<dyn Installer>) -> Builds {
    let installer = Arc::clone(installer);
    let read = tokio::task::spawn_blocking(move || read_builds(installer.as_ref()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    let (mut builds, rebuilt) = match read {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!("which build the servers run: {e}");
            return Builds::default();
        }
    };
    let mut kinds = BTreeMap::new();
    for (server, overlays) in rebuilt {
        let mut of_server = BTreeSet::new();
        for id in overlays {
            if let std::collections::btree_map::Entry::Vacant(entry) = kinds.entry(id) {
                entry.insert(match store.overlay(id).await {
                    Ok(overlay) => Some(overlay.kind),
                    // Deleted since: nothing to restart for.
                    Err(StoreError::NotFound) => None,
                    Err(e) => {
                        tracing::warn!("the kind of overlay {id}: {e}");
                        None
                    }
                });
            }
            of_server.extend(kinds[&id]);
        }
        if !of_server.is_empty() {
            builds.rebuilt.insert(server, of_server);
        }
    }
    builds
}

/// A server and the installation it runs.
#[derive(Debug, Clone)]
pub struct ServerBuild {
    pub id: i64,
    pub name: String,
    pub runs: String,
    /// Set when it runs an older version than the current one.
    pub outdated: Option<String>,
}

/// What the Game page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub status: GameStatus,
    /// Why installs and updates cannot run (steamcmd or 32-bit libraries
    /// missing), in the host's words.
    pub problem: Option<String>,
    pub servers: Vec<ServerBuild>,
    /// Game jobs queued or running.
    pub active: Vec<Job>,
}

impl Overview {
    pub fn update_available(&self) -> bool {
        match (&self.status.latest, &self.status.installed) {
            (Some(check), Some(installed)) => {
                installed.build_id.as_deref() != Some(&check.public_build)
            }
            _ => false,
        }
    }
}

pub async fn overview(store: &Store, jobs: &Jobs) -> Result<Overview, GameError> {
    let installer = Arc::clone(jobs.installer());
    let (status, problem) = tokio::task::spawn_blocking(move || {
        let game = installer.game();
        let problem = game.preflight().err().map(|e| e.to_string());
        game.status().map(|status| (status, problem))
    })
    .await
    .map_err(|e| GameError::Failed(e.to_string()))??;
    let builds = builds(store, jobs.installer()).await;
    let names: BTreeMap<i64, String> = store
        .servers(None)
        .await
        .map_err(|e| GameError::Failed(e.to_string()))?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let servers = builds
        .running
        .iter()
        .filter_map(|(id, info)| {
            Some(ServerBuild {
                id: *id,
                name: names.get(id)?.clone(),
                runs: version_label(info),
                outdated: builds.outdated(*id),
            })
        })
        .collect();
    let active = store
        .active_jobs_on(INSTALL_LOCK)
        .await
        .map_err(|e| GameError::Failed(e.to_string()))?;
    Ok(Overview {
        status,
        problem,
        servers,
        active,
    })
}

/// Automatic mode's restarts: each server still on an older build than
/// the installed one is restarted once nobody plays on it. (The checks
/// and the updates are the built-in schedule "Check for game updates".)
/// Every restart is a job and an activity entry by "scheduler".
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub store: Store,
    pub jobs: Jobs,
    pub live: Arc<Live>,
    /// Between looks at the running servers.
    pub tick: Duration,
}

/// How recent a poll must be to tell that nobody plays.
const LIVE_MAX_AGE_SECS: i64 = 60;

/// Whether the game is installed (a check has nothing to look at before).
pub async fn installed(installer: &Arc<dyn Installer>) -> bool {
    let installer = Arc::clone(installer);
    tokio::task::spawn_blocking(move || installer.game().status())
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|s| s.installed.is_some())
}

/// What a finished check found that automatic mode installs: "build N is
/// public, version M installed", when the public build is not the
/// installed one.
pub async fn newer_public_build(installer: &Arc<dyn Installer>) -> Option<String> {
    let installer = Arc::clone(installer);
    let status = tokio::task::spawn_blocking(move || installer.game().status())
        .await
        .ok()?
        .ok()?;
    let (check, installed) = (status.latest?, status.installed?);
    (installed.build_id.as_deref() != Some(&check.public_build)).then(|| {
        format!(
            "build {} is public, {} installed",
            check.public_build,
            version_label(&installed)
        )
    })
}

impl Scheduler {
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.restart_outdated().await {
                    tracing::error!("restarting servers onto the new build: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(self.tick) => {}
                    () = stop.cancelled() => return,
                }
            }
        })
    }

    async fn record(&self, server: Option<i64>, kind: &str, detail: &str) -> Result<(), String> {
        self.store
            .insert_activity(None, Actor::Scheduler.name(), server, kind, detail)
            .await
            .map_err(|e| e.to_string())
    }

    /// Restarts each running server on an older version than the current
    /// one, once the poller has recently seen nobody on it, unless a job
    /// of its own or of the game is pending.
    async fn restart_outdated(&self) -> Result<(), String> {
        let builds = builds(&self.store, self.jobs.installer()).await;
        let outdated: Vec<(i64, String)> = builds
            .running
            .keys()
            .filter_map(|id| Some((*id, builds.outdated(*id)?)))
            .collect();
        if outdated.is_empty() {
            return Ok(());
        }
        // An update in progress publishes yet another version: wait for it.
        if !self
            .store
            .active_jobs_on(INSTALL_LOCK)
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            return Ok(());
        }
        let busy = self
            .store
            .servers_with_active_jobs()
            .await
            .map_err(|e| e.to_string())?;
        for (id, note) in outdated {
            if busy.contains(&id) || self.live.nobody_plays(id, LIVE_MAX_AGE_SECS) != Some(true) {
                continue;
            }
            let server = match self.store.server(id).await {
                Ok(server) => server,
                Err(left4me_store::StoreError::NotFound) => continue,
                Err(e) => return Err(e.to_string()),
            };
            if server.desired_state != left4me_store::DesiredState::Running {
                continue;
            }
            let detail = format!(
                "server {} runs {note}; nobody plays on it: restarting",
                server.name
            );
            self.record(Some(id), "game.auto", &detail).await?;
            self.jobs
                .enqueue(JobKind::ServerRestart, Actor::Scheduler, &server)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: u32, build: Option<&str>) -> VersionInfo {
        VersionInfo {
            version,
            stack: vec![version],
            build_id: build.map(str::to_owned),
            created: 0,
        }
    }

    #[test]
    fn an_older_build_says_what_a_restart_brings() {
        let builds = Builds {
            current: Some(info(2, Some("1002"))),
            running: [
                (1, info(1, Some("1001"))),
                (2, info(2, Some("1002"))),
                (3, info(1, None)),
            ]
            .into_iter()
            .collect(),
            rebuilt: [
                (1, [OverlayKind::Workshop].into()),
                (2, [OverlayKind::Script, OverlayKind::Workshop].into()),
                (3, [OverlayKind::Script].into()),
            ]
            .into(),
        };
        assert_eq!(
            builds.outdated(1).as_deref(),
            Some("build 1001, 1002 available: restart to update")
        );
        assert_eq!(builds.outdated(2), None);
        assert_eq!(
            builds.outdated(3).as_deref(),
            Some("version 1, 2 available: restart to update")
        );
        assert_eq!(builds.outdated(4), None, "not running");
        assert_eq!(
            builds.restart_note(1).as_deref(),
            Some(
                "build 1001, 1002 available: restart to update; Workshop items updated: restart to apply"
            )
        );
        assert_eq!(
            builds.restart_note(2).as_deref(),
            Some("Workshop items updated, overlay rebuilt: restart to apply")
        );
        assert_eq!(
            builds.restart_note(3).as_deref(),
            Some("version 1, 2 available: restart to update; overlay rebuilt: restart to apply")
        );
        assert_eq!(builds.restart_note(4), None);
        assert_eq!(server_id("server-12"), Some(12));
        assert_eq!(server_id("demo"), None);
    }
}
