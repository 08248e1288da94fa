//! Each server's history for its graphs: players, CPU and memory, at
//! three resolutions (a day in 5-minute buckets, a week in 30-minute
//! buckets, a month in 2-hour buckets). Buckets live in round-robin slots,
//! so the history of a server never exceeds [`MAX_ROWS_PER_SERVER`] rows
//! however long it runs; buckets older than their tier's span are not
//! read and are written over.

use sqlx::FromRow;

use crate::{Result, Store};

/// A resolution of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub id: i64,
    /// Seconds per bucket.
    pub bucket: i64,
    /// Buckets kept: the tier's span is `bucket * slots`.
    pub slots: i64,
}

impl Tier {
    pub fn span(self) -> i64 {
        self.bucket * self.slots
    }
}

/// A day, a week and a month (31 days).
pub const TIERS: [Tier; 3] = [
    Tier {
        id: 0,
        bucket: 300,
        slots: 288,
    },
    Tier {
        id: 1,
        bucket: 1800,
        slots: 336,
    },
    Tier {
        id: 2,
        bucket: 7200,
        slots: 372,
    },
];

/// The most rows one server's history takes.
pub const MAX_ROWS_PER_SERVER: i64 = 288 + 336 + 372;

/// What the poller saw of a server over a while (a minute, say).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observed {
    pub samples: i64,
    pub players_sum: i64,
    pub players_max: i64,
    pub cpu_sum: f64,
    pub cpu_samples: i64,
    pub memory_max: i64,
}

impl Observed {
    pub fn add(&mut self, players: i64, cpu_percent: Option<f64>, memory: Option<i64>) {
        self.samples += 1;
        self.players_sum += players;
        self.players_max = self.players_max.max(players);
        if let Some(cpu) = cpu_percent {
            self.cpu_sum += cpu;
            self.cpu_samples += 1;
        }
        if let Some(memory) = memory {
            self.memory_max = self.memory_max.max(memory);
        }
    }
}

/// One bucket as the graphs read it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct HistoryPoint {
    /// The bucket's start (Unix seconds).
    pub at: i64,
    pub players_avg: f64,
    pub players_max: i64,
    /// `None` when no sample had it (the server was not running).
    pub cpu_avg: Option<f64>,
    pub memory_max: i64,
}

impl Store {
    /// Adds what was observed at `at` to every tier's bucket of that time,
    /// for each server, in one transaction.
    pub async fn record_history(&self, at: i64, observed: &[(i64, Observed)]) -> Result<()> {
        if observed.is_empty() {
            return Ok(());
        }
        let mut write = self.write().await?;
        for (server_id, o) in observed {
            for tier in TIERS {
                let start = at - at.rem_euclid(tier.bucket);
                let slot = (start / tier.bucket).rem_euclid(tier.slots);
                // A slot still holding an older bucket starts over; a server
                // deleted since it was observed is left out.
                sqlx::query(
                    "INSERT INTO server_history (server_id, tier, slot, at, samples, players_sum,
                                                 players_max, cpu_sum, cpu_samples, memory_max)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                     WHERE EXISTS (SELECT 1 FROM servers WHERE id = ?1)
                     ON CONFLICT (server_id, tier, slot) DO UPDATE SET
                        samples     = CASE WHEN at = ?4 THEN samples + ?5 ELSE ?5 END,
                        players_sum = CASE WHEN at = ?4 THEN players_sum + ?6 ELSE ?6 END,
                        players_max = CASE WHEN at = ?4 THEN MAX(players_max, ?7) ELSE ?7 END,
                        cpu_sum     = CASE WHEN at = ?4 THEN cpu_sum + ?8 ELSE ?8 END,
                        cpu_samples = CASE WHEN at = ?4 THEN cpu_samples + ?9 ELSE ?9 END,
                        memory_max  = CASE WHEN at = ?4 THEN MAX(memory_max, ?10) ELSE ?10 END,
                        at          = ?4",
                )
                .bind(server_id)
                .bind(tier.id)
                .bind(slot)
                .bind(start)
                .bind(o.samples)
                .bind(o.players_sum)
                .bind(o.players_max)
                .bind(o.cpu_sum)
                .bind(o.cpu_samples)
                .bind(o.memory_max)
                .execute(&mut *write.tx)
                .await?;
            }
        }
        write.commit().await
    }

    /// A server's buckets of `tier` within its span before `now`, oldest
    /// first.
    pub async fn history(&self, server_id: i64, tier: Tier, now: i64) -> Result<Vec<HistoryPoint>> {
        Ok(sqlx::query_as(
            "SELECT at,
                    CAST(players_sum AS REAL) / samples AS players_avg,
                    players_max,
                    CASE WHEN cpu_samples > 0 THEN cpu_sum / cpu_samples END AS cpu_avg,
                    memory_max
             FROM server_history
             WHERE server_id = ? AND tier = ? AND at > ? AND samples > 0
             ORDER BY at",
        )
        .bind(server_id)
        .bind(tier.id)
        .bind(now - tier.span())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Rows a server's history takes (for tests of its bound).
    pub async fn history_rows(&self, server_id: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM server_history WHERE server_id = ?")
                .bind(server_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Forgets buckets older than their tier's span (a server that has
    /// not run for a month keeps no history).
    pub async fn prune_history(&self, now: i64) -> Result<u64> {
        let mut removed = 0;
        for tier in TIERS {
            removed += sqlx::query("DELETE FROM server_history WHERE tier = ? AND at <= ?")
                .bind(tier.id)
                .bind(now - tier.span())
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }
}
