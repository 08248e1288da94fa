//! What the poller sees of each server, gathered in memory and written
//! to the server's history (see `left4me_store::history`) once a minute
//! by [`History::spawn_writer`], so a poll cycle never waits on the
//! database for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use left4me_store::{Observed, Store};
use tokio_util::sync::CancellationToken;

use crate::live::ProcessSample;

/// The last CPU reading of a server, to turn CPU seconds into percent.
#[derive(Debug, Clone, Copy)]
struct CpuReading {
    cpu_seconds: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Gathered {
    observed: HashMap<i64, Observed>,
    cpu: HashMap<i64, CpuReading>,
}

/// The minute's observations of every server.
#[derive(Debug, Default)]
pub struct History {
    gathered: Mutex<Gathered>,
}

impl History {
    /// One poll's view of a running server: its players (when it
    /// answered) and its processes.
    pub fn observe(&self, server_id: i64, players: Option<u8>, process: &ProcessSample) {
        let now = Instant::now();
        let mut gathered = self.gathered.lock().expect("history lock");
        let cpu_percent = process.usage.and_then(|usage| {
            let reading = CpuReading {
                cpu_seconds: usage.cpu_seconds,
                at: now,
            };
            let before = gathered.cpu.insert(server_id, reading)?;
            let wall = now.duration_since(before.at).as_secs_f64();
            let used = usage.cpu_seconds - before.cpu_seconds;
            // A restarted process starts its count again: no reading.
            (wall > 0.0 && used >= 0.0).then(|| used / wall * 100.0)
        });
        let memory = process
            .usage
            .map(|u| i64::try_from(u.memory_bytes).unwrap_or(i64::MAX));
        gathered.observed.entry(server_id).or_default().add(
            i64::from(players.unwrap_or(0)),
            cpu_percent,
            memory,
        );
    }

    /// Forgets the CPU readings of servers not in `ids` (deleted).
    pub fn keep_only(&self, ids: &std::collections::HashSet<i64>) {
        self.gathered
            .lock()
            .expect("history lock")
            .cpu
            .retain(|id, _| ids.contains(id));
    }

    /// A server that stopped: its next start's CPU count begins anew.
    pub fn forget_cpu(&self, server_id: i64) {
        self.gathered
            .lock()
            .expect("history lock")
            .cpu
            .remove(&server_id);
    }

    /// Takes what was gathered since the last call.
    fn take(&self) -> Vec<(i64, Observed)> {
        let mut gathered = self.gathered.lock().expect("history lock");
        std::mem::take(&mut gathered.observed).into_iter().collect()
    }

    /// Writes what was gathered to the store every `every`, and prunes
    /// buckets past their span once an hour.
    pub fn spawn_writer(
        self: std::sync::Arc<Self>,
        store: Store,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_prune: Option<Instant> = None;
            loop {
                let stopping = tokio::select! {
                    () = tokio::time::sleep(every) => false,
                    () = stop.cancelled() => true,
                };
                // The last minute too when the panel stops.
                let observed = self.take();
                if let Err(e) = store.record_history(left4me_store::now(), &observed).await {
                    tracing::warn!("writing the servers' history: {e}");
                }
                if stopping {
                    return;
                }
                if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                    last_prune = Some(Instant::now());
                    if let Err(e) = store.prune_history(left4me_store::now()).await {
                        tracing::warn!("pruning the servers' history: {e}");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_host::usage::Usage;

    fn running(cpu_seconds: f64) -> ProcessSample {
        ProcessSample {
            state: "running".into(),
            running: true,
            restarts: 0,
            usage: Some(Usage {
                cpu_seconds,
                memory_bytes: 1000,
            }),
        }
    }

    #[test]
    fn cpu_seconds_become_percent_between_readings() {
        let history = History::default();
        history.observe(1, Some(3), &running(10.0));
        std::thread::sleep(Duration::from_millis(100));
        history.observe(1, Some(5), &running(10.05));
        let taken = history.take();
        let seen = taken[0].1;
        assert_eq!(
            (seen.samples, seen.players_sum, seen.players_max),
            (2, 8, 5)
        );
        assert_eq!(
            seen.cpu_samples, 1,
            "the first reading has nothing to compare"
        );
        assert!(
            seen.cpu_sum > 20.0 && seen.cpu_sum <= 50.0,
            "0.05 s in about 0.1 s: {}",
            seen.cpu_sum
        );
        assert!(history.take().is_empty(), "taken once");
        // A restart counts from zero again: no negative use.
        history.observe(1, None, &running(0.1));
        assert_eq!(history.take()[0].1.cpu_samples, 0);
    }
}
