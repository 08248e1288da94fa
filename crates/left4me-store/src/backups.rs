//! The panel's backups: which restic snapshot each backup job made.

use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Backup {
    pub id: i64,
    pub job_id: Option<i64>,
    pub snapshot_id: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub files: i64,
    /// What the backup looked at.
    pub bytes_processed: i64,
    /// What it added to the repository (after deduplication).
    pub data_added: i64,
}

/// A backup just taken.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub job_id: i64,
    pub snapshot_id: &'a str,
    pub started_at: i64,
    pub files: i64,
    pub bytes_processed: i64,
    pub data_added: i64,
}

impl Store {
    pub async fn record_backup(&self, new: &NewBackup<'_>) -> Result<Backup> {
        let backup = sqlx::query_as(
            "INSERT INTO backups (job_id, snapshot_id, started_at, finished_at, files,
                                  bytes_processed, data_added)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.job_id)
        .bind(new.snapshot_id)
        .bind(new.started_at)
        .bind(now())
        .bind(new.files)
        .bind(new.bytes_processed)
        .bind(new.data_added)
        .fetch_one(&self.pool)
        .await?;
        self.changed();
        Ok(backup)
    }

    pub async fn backup(&self, id: i64) -> Result<Backup> {
        sqlx::query_as("SELECT * FROM backups WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(crate::StoreError::NotFound)
    }

    /// The newest backups first.
    pub async fn backups(&self, limit: i64) -> Result<Vec<Backup>> {
        Ok(
            sqlx::query_as("SELECT * FROM backups ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// The setting that marks a database put back by `left4me restore` whose
/// panel has not started since: the snapshot it came from.
pub const RESTORED_FROM: &str = "restored_from";

/// What a panel's database holds, in numbers (said after a restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromRow)]
pub struct Holdings {
    pub users: i64,
    pub servers: i64,
    pub blueprints: i64,
    pub overlays: i64,
    /// Users with an authenticator app, whose keys open only with the
    /// sealing key of the host that sealed them.
    pub authenticators: i64,
}

impl Holdings {
    /// Nothing a restore over it could lose.
    pub fn is_empty(&self) -> bool {
        self.users == 0 && self.servers == 0 && self.blueprints == 0 && self.overlays == 0
    }
}

impl Store {
    pub async fn holdings(&self) -> Result<Holdings> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM users) AS users,
                    (SELECT COUNT(*) FROM servers) AS servers,
                    (SELECT COUNT(*) FROM blueprints) AS blueprints,
                    (SELECT COUNT(*) FROM overlays) AS overlays,
                    (SELECT COUNT(*) FROM totp_keys WHERE confirmed_at IS NOT NULL)
                        AS authenticators",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Readies a database restored from `snapshot` for its first start on
    /// this host: the jobs the copy caught running or queued end (they
    /// were the old host's), and the mark tells the next start to bring
    /// the game, the built overlays and the servers back. Idempotent.
    pub async fn prepare_restored(&self, snapshot: &str) -> Result<Holdings> {
        let mut write = self.write().await?;
        sqlx::query(
            "UPDATE jobs SET state = CASE state WHEN 'running' THEN 'interrupted' ELSE 'cancelled' END,
                    finished_at = ?,
                    error = COALESCE(error, CASE state
                        WHEN 'running' THEN 'the backup was taken while the job was running'
                        ELSE 'queued when the backup was taken; not run after the restore' END)
             WHERE state IN ('running', 'queued')",
        )
        .bind(now())
        .execute(&mut *write.tx)
        .await?;
        write.set_setting(RESTORED_FROM, snapshot).await?;
        write.commit().await?;
        self.holdings().await
    }
}

impl crate::Write {
    /// Removes the restore mark: its start has queued what it asks for.
    pub async fn clear_restored_from(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE name = ?")
            .bind(RESTORED_FROM)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
