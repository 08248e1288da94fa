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
