//! Brings servers back to their desired state: right after the panel
//! starts (after a host reboot nothing runs) and then periodically.
//!
//! A server that should run but does not is started again, unless its
//! supervisor gave up after repeated crashes: that stays `failed`, with the
//! supervisor's reason, until someone acts. A server that runs but should
//! not is stopped. A game whose built-in supervisor died runs on
//! unsupervised; it is restarted under a new one only once nobody plays.
//! Where the supervisor keeps a boot setting (systemd's enabled units), one
//! that disagrees with the desired state is fixed. Servers with a queued
//! or running job are left alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use left4me_host::lifecycle::Host;
use left4me_store::{DesiredState, Store};
use tokio_util::sync::CancellationToken;

use crate::live::Live;
use crate::runner::{Actor, JobKind, Jobs};
use crate::spec_builder::{ask_host, instance_name};

#[derive(Debug, Clone)]
pub struct Reconciler {
    store: Store,
    host: Arc<Host>,
    jobs: Jobs,
    /// Who is playing, from the poller: a game that lost its supervisor
    /// is not restarted under players.
    live: Arc<Live>,
    /// The last drift reported per server, so a lasting one is logged once.
    reported: Arc<Mutex<HashMap<i64, String>>>,
    /// Passes in which an orphaned game was not heard from, per server.
    orphans_unheard: Arc<Mutex<HashMap<i64, u32>>>,
}

impl Reconciler {
    pub fn new(store: Store, host: Arc<Host>, jobs: Jobs, live: Arc<Live>) -> Self {
        Self {
            store,
            host,
            jobs,
            live,
            reported: Arc::default(),
            orphans_unheard: Arc::default(),
        }
    }

    /// Runs a pass now and then every `interval` until `stop`.
    pub fn spawn(self, interval: Duration, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::error!("reconciling: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = stop.cancelled() => return,
                }
            }
        })
    }

    /// Whether the newest job of the server is a start of ours that failed:
    /// then starting again would only loop.
    async fn last_auto_start_failed(&self, server_id: i64) -> Result<bool, String> {
        let last = self
            .store
            .jobs(left4me_store::JobFilter::Server(server_id), 1)
            .await
            .map_err(|e| e.to_string())?;
        Ok(last.first().is_some_and(|job| {
            job.user_id.is_none()
                && job.kind == JobKind::ServerStart.as_str()
                && job.state == left4me_store::JobState::Failed
        }))
    }

    /// Enables or disables the server for boot to match its desired state,
    /// where an earlier update failed or was cut short. A failure is
    /// logged and tried again next pass.
    async fn repair_boot_setting(&self, server: &left4me_store::Server) -> Result<(), String> {
        let host = Arc::clone(&self.host);
        let name = instance_name(server.id);
        let on = server.desired_state == DesiredState::Running;
        let repaired = tokio::task::spawn_blocking(move || {
            let cancel = left4me_host::events::CancellationToken::new();
            let ctx = left4me_host::events::Ctx::new(&left4me_host::events::discard, &cancel);
            host.repair_start_on_boot(&name, on, &ctx)
        })
        .await
        .map_err(|e| e.to_string())?;
        match repaired {
            Ok(false) => {}
            Ok(true) => {
                let drift = format!(
                    "server {} was {} to start at boot; fixed",
                    server.name,
                    if on { "not set" } else { "still set" }
                );
                tracing::warn!("{drift}");
                self.store
                    .record_activity(None, Some(server.id), "drift", &drift)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(e) => tracing::warn!("server {}: boot setting not repaired: {e}", server.name),
        }
        Ok(())
    }

    /// Why a game whose supervisor died is left running for now, if it is:
    /// restarting would kick its players, so that waits until the poller
    /// has recently seen it empty. A game nobody hears from for a few
    /// passes (hung, or not answering queries) is restarted all the same.
    fn orphan_hold(&self, server: &left4me_store::Server) -> Option<String> {
        const UNHEARD_PASSES: u32 = 3;
        let nobody_plays = self.live.nobody_plays(server.id, 60);
        let mut unheard = self.orphans_unheard.lock().expect("orphans lock");
        match nobody_plays {
            Some(false) => Some(format!(
                "server {} runs without its supervisor (it died); it is restarted under a new one once nobody is playing",
                server.name
            )),
            Some(true) => {
                unheard.remove(&server.id);
                None
            }
            None => {
                let passes = unheard.entry(server.id).or_default();
                *passes += 1;
                if *passes <= UNHEARD_PASSES {
                    Some(format!(
                        "server {} runs without its supervisor (it died); waiting to learn whether anyone plays on it",
                        server.name
                    ))
                } else {
                    unheard.remove(&server.id);
                    None
                }
            }
        }
    }

    /// Whether the server is still wanted as at the start of the pass and
    /// nobody queued a job for it meanwhile: the pass reads everything
    /// first, and a user's click since then must win.
    async fn still_as_seen(&self, seen: &left4me_store::Server) -> Result<bool, String> {
        let now = match self.store.server(seen.id).await {
            Ok(server) => server,
            Err(left4me_store::StoreError::NotFound) => return Ok(false),
            Err(e) => return Err(e.to_string()),
        };
        let busy = self
            .store
            .server_has_active_job(seen.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(now.desired_state == seen.desired_state && !busy)
    }

    /// One pass; returns what it found (for tests and logs).
    pub async fn run_once(&self) -> Result<Vec<String>, String> {
        // Expired sign-ins are refused already; nothing else removes them.
        self.store
            .delete_expired_sessions()
            .await
            .map_err(|e| e.to_string())?;
        // A restore is complete once the game and built overlays are back.
        crate::restore::finish_if_done(&self.store, &self.host)
            .await
            .map_err(|e| e.to_string())?;
        let busy = self
            .store
            .servers_with_active_jobs()
            .await
            .map_err(|e| e.to_string())?;
        let servers: Vec<_> = self
            .store
            .servers(None)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| !busy.contains(&s.id))
            .collect();
        // Two questions to the supervisor for all servers, not two each.
        let ids: Vec<i64> = servers.iter().map(|s| s.id).collect();
        let (statuses, boot) = ask_host(&self.host, &ids, |host, names| {
            (host.process_statuses(names), host.boot_settings(names))
        })
        .await
        .map_err(|e| format!("asking the host: {e}"))?;
        let mut found = Vec::new();
        // One warning per distinct problem, not one per server: a broken
        // systemctl would otherwise flood the log every pass.
        let mut unknown: HashMap<String, Vec<String>> = HashMap::new();
        for ((server, status), boot) in servers.into_iter().zip(statuses).zip(boot) {
            let wanted = server.desired_state == DesiredState::Running;
            match boot {
                Ok(Some(on)) if on != wanted => self.repair_boot_setting(&server).await?,
                Ok(_) => {}
                Err(e) => unknown
                    .entry(format!("boot setting unknown: {e}"))
                    .or_default()
                    .push(server.name.clone()),
            }
            let status = match status {
                Ok(status) => status,
                Err(e) => {
                    unknown
                        .entry(format!("state unknown: {e}"))
                        .or_default()
                        .push(server.name.clone());
                    continue;
                }
            };
            let active = status.state == "running" || status.state == "restarting";
            let (drift, action) = match (server.desired_state, active, status.state.as_str()) {
                (DesiredState::Running, false, "failed") => (
                    format!(
                        "server {} failed: {}",
                        server.name,
                        status.reason.as_deref().unwrap_or("no reason recorded")
                    ),
                    None,
                ),
                (DesiredState::Running, false, "orphaned")
                    if let Some(why) = self.orphan_hold(&server) =>
                {
                    (why, None)
                }
                (DesiredState::Running, false, state)
                    if self.last_auto_start_failed(server.id).await? =>
                {
                    (
                        format!(
                            "server {} should be running but is {state}; the last automatic start failed, so it is left for someone to look at",
                            server.name
                        ),
                        None,
                    )
                }
                (DesiredState::Running, false, state) => (
                    format!(
                        "server {} should be running but is {state}; starting it",
                        server.name
                    ),
                    Some(JobKind::ServerStart),
                ),
                (DesiredState::Stopped, true, state) => (
                    format!(
                        "server {} should be stopped but is {state}; stopping it",
                        server.name
                    ),
                    Some(JobKind::ServerStop),
                ),
                _ => {
                    self.reported
                        .lock()
                        .expect("reported lock")
                        .remove(&server.id);
                    continue;
                }
            };
            // Read everything first, act later: only what still holds is
            // acted on, and only what is acted on is said.
            if action.is_some() && !self.still_as_seen(&server).await? {
                continue;
            }
            let repeated = self
                .reported
                .lock()
                .expect("reported lock")
                .insert(server.id, drift.clone())
                .is_some_and(|previous| previous == drift);
            if !repeated || action.is_some() {
                tracing::warn!("{drift}");
                self.store
                    .record_activity(None, Some(server.id), "drift", &drift)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some(kind) = action {
                self.jobs
                    .enqueue(kind, Actor::Reconciler, &server)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            found.push(drift);
        }
        for (problem, names) in unknown {
            tracing::warn!("{problem} (servers {})", names.join(", "));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveState;

    /// The restart policy for a game whose supervisor died, without the
    /// race between the first pass and the poller that a panel test has.
    #[tokio::test]
    async fn an_orphan_waits_to_hear_whether_anyone_plays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).await.unwrap();
        let (host, jobs) = crate::test_jobs(&store, &dir.path().join("root"));
        let live = Arc::new(Live::default());
        let reconciler = Reconciler::new(store, host, jobs, Arc::clone(&live));
        let server = left4me_store::Server {
            id: 7,
            owner_id: 1,
            blueprint_id: 1,
            name: "orphan".into(),
            hostname: "h".into(),
            port: 27015,
            rcon_password: "pw".into(),
            desired_state: DesiredState::Running,
            created_at: 0,
        };
        // Nothing heard yet: wait three passes, then restart anyway.
        for _ in 0..3 {
            let why = reconciler.orphan_hold(&server).expect("held");
            assert!(
                why.contains("waiting to learn whether anyone plays"),
                "{why}"
            );
        }
        assert_eq!(
            reconciler.orphan_hold(&server),
            None,
            "a silent game is restarted"
        );

        let heard = |players| LiveState {
            players,
            at: left4me_store::now(),
            ..LiveState::default()
        };
        live.set(server.id, Some(heard(1)));
        let why = reconciler
            .orphan_hold(&server)
            .expect("held while someone plays");
        assert!(why.contains("once nobody is playing"), "{why}");
        live.set(server.id, Some(heard(0)));
        assert_eq!(reconciler.orphan_hold(&server), None, "empty: restarted");
        // An old answer is no news.
        live.set(
            server.id,
            Some(LiveState {
                at: left4me_store::now() - 3600,
                ..heard(1)
            }),
        );
        assert!(
            reconciler
                .orphan_hold(&server)
                .is_some_and(|w| w.contains("waiting to learn"))
        );
    }
}
