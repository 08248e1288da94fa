use sqlx::FromRow;

use crate::{Result, Store, StoreError, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub user_id: Option<i64>,
    pub username: String,
    pub server_id: Option<i64>,
    pub subject: String,
    pub locks: String,
    pub state: JobState,
    pub error: Option<String>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub overlay_id: Option<i64>,
    /// What it works from beyond its server or overlay.
    pub argument: Option<String>,
    /// When someone asked a running job to stop (kept across restarts).
    pub cancel_requested_at: Option<i64>,
}

/// What asking a job to stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// It had not started: it is cancelled.
    Dequeued,
    /// It runs: it is asked to stop, and ends as cancelled even if the
    /// panel stops first.
    Asked,
    /// It had ended already.
    Finished,
}

impl Job {
    pub fn lock_keys(&self) -> impl Iterator<Item = &str> {
        self.locks.split_whitespace()
    }

    /// Whether the two jobs may not run at once: they hold a key in
    /// common, unless both only use it (see [`SHARED`]).
    pub fn conflicts_with(&self, other: &Job) -> bool {
        self.lock_keys()
            .any(|a| other.lock_keys().any(|b| keys_conflict(a, b)))
    }
}

/// A key with this prefix is held shared: any number of jobs may use
/// `uses:overlay:5` at once, none while a job holds `overlay:5` itself
/// (a start uses its overlays; a build of one holds it).
pub const SHARED: &str = "uses:";

fn keys_conflict(a: &str, b: &str) -> bool {
    let (a_shared, a) = a.strip_prefix(SHARED).map_or((false, a), |k| (true, k));
    let (b_shared, b) = b.strip_prefix(SHARED).map_or((false, b), |k| (true, k));
    a == b && !(a_shared && b_shared)
}

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    /// `None` for jobs the panel starts by itself.
    pub user_id: Option<i64>,
    pub username: &'a str,
    pub server_id: Option<i64>,
    pub overlay_id: Option<i64>,
    pub subject: &'a str,
    /// Resource keys; two jobs sharing one never run at the same time, and
    /// run in the order they were queued.
    pub locks: &'a [String],
    /// What it works from beyond its server or overlay (a restore's
    /// backup).
    pub argument: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    User(i64),
    Server(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct LogLine {
    pub seq: i64,
    pub stream: String,
    pub line: String,
    pub at: i64,
}

impl Store {
    pub async fn create_job(&self, new: &NewJob<'_>) -> Result<Job> {
        let mut write = self.write().await?;
        let job = write.create_job(new).await?;
        write.commit().await?;
        Ok(job)
    }

    /// When `username` last queued a job of this kind.
    pub async fn newest_job_by(&self, kind: &str, username: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(created_at) FROM jobs WHERE kind = ? AND username = ? AND user_id IS NULL",
        )
        .bind(kind)
        .bind(username)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The newest job of either kind.
    pub async fn newest_job_of_kinds(&self, kinds: [&str; 2]) -> Result<Option<Job>> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE kind IN (?, ?) ORDER BY id DESC LIMIT 1")
                .bind(kinds[0])
                .bind(kinds[1])
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The newest job of `kind` that succeeded or failed (not one
    /// cancelled or interrupted, which says nothing of either).
    pub async fn newest_concluded_job(&self, kind: &str) -> Result<Option<Job>> {
        Ok(sqlx::query_as(
            "SELECT * FROM jobs WHERE kind = ? AND state IN ('succeeded', 'failed')
             ORDER BY id DESC LIMIT 1",
        )
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn job(&self, id: i64) -> Result<Job> {
        sqlx::query_as("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Newest first.
    pub async fn jobs(&self, filter: JobFilter, limit: i64) -> Result<Vec<Job>> {
        let query = match filter {
            JobFilter::All => {
                sqlx::query_as("SELECT * FROM jobs ORDER BY id DESC LIMIT ?").bind(limit)
            }
            JobFilter::User(id) => {
                sqlx::query_as("SELECT * FROM jobs WHERE user_id = ? ORDER BY id DESC LIMIT ?")
                    .bind(id)
                    .bind(limit)
            }
            JobFilter::Server(id) => {
                sqlx::query_as("SELECT * FROM jobs WHERE server_id = ? ORDER BY id DESC LIMIT ?")
                    .bind(id)
                    .bind(limit)
            }
        };
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Marks the next runnable job running and returns it. A queued job is
    /// runnable when none of its lock keys is held by a running job or
    /// wanted by an older queued job (so jobs on one resource keep their
    /// order).
    pub async fn claim_next_job(&self) -> Result<Option<Job>> {
        let mut write = self.write().await?;
        let active: Vec<Job> = sqlx::query_as(
            "SELECT * FROM jobs WHERE state IN ('running', 'queued') ORDER BY state = 'queued', id",
        )
        .fetch_all(&mut *write.tx)
        .await?;
        let mut chosen = None;
        for (i, job) in active.iter().enumerate() {
            if job.state == JobState::Queued
                && !active[..i]
                    .iter()
                    .any(|earlier| earlier.conflicts_with(job))
            {
                chosen = Some(job.id);
                break;
            }
        }
        let Some(id) = chosen else {
            return Ok(None);
        };
        let job = sqlx::query_as(
            "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? RETURNING *",
        )
        .bind(now())
        .bind(id)
        .fetch_one(&mut *write.tx)
        .await?;
        write.commit().await?;
        Ok(Some(job))
    }

    /// Every queued or running job, oldest first.
    pub async fn active_jobs(&self) -> Result<Vec<Job>> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Whether a job for the server is queued or running.
    /// Servers with a queued or running job, in one query.
    pub async fn servers_with_active_jobs(&self) -> Result<std::collections::HashSet<i64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT server_id FROM jobs WHERE server_id IS NOT NULL AND state IN ('queued', 'running')",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }

    pub async fn server_has_active_job(&self, server_id: i64) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE server_id = ? AND state IN ('queued', 'running'))",
        )
        .bind(server_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The earliest unfinished job before `job` sharing one of its lock
    /// keys: what a queued job waits for (such jobs run in order).
    pub async fn job_ahead(&self, job: &Job) -> Result<Option<Job>> {
        let earlier: Vec<Job> = sqlx::query_as(
            "SELECT * FROM jobs WHERE id < ? AND state IN ('queued', 'running') ORDER BY id",
        )
        .bind(job.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(earlier.into_iter().find(|other| other.conflicts_with(job)))
    }

    /// Queued and running jobs holding or wanting lock `key`, oldest first.
    pub async fn active_jobs_on(&self, key: &str) -> Result<Vec<Job>> {
        let active: Vec<Job> =
            sqlx::query_as("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(active
            .into_iter()
            .filter(|job| job.lock_keys().any(|k| k == key))
            .collect())
    }

    pub async fn finish_job(&self, id: i64, state: JobState, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?")
            .bind(state)
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }

    /// After a restart: jobs that were running when the panel stopped are
    /// interrupted, or cancelled when someone had asked them to stop.
    pub async fn interrupt_running_jobs(&self) -> Result<u64> {
        let result = sqlx::query(
            "UPDATE jobs SET
                    state = CASE WHEN cancel_requested_at IS NULL THEN 'interrupted'
                                 ELSE 'cancelled' END,
                    finished_at = ?,
                    error = CASE WHEN cancel_requested_at IS NULL
                                 THEN COALESCE(error, 'the panel stopped while the job was running')
                                 ELSE error END
             WHERE state = 'running'",
        )
        .bind(now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.changed();
        Ok(result)
    }

    pub async fn set_job_progress(&self, id: i64, done: i64, total: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ?")
            .bind(done)
            .bind(total)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends a log line; returns its sequence number (1, 2, ...).
    pub async fn append_job_log(&self, job_id: i64, stream: &str, line: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO job_logs (job_id, seq, stream, line, at)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = ?1), ?2, ?3, ?4)
             RETURNING seq",
        )
        .bind(job_id)
        .bind(stream)
        .bind(line)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Log lines with a sequence number above `after`, in order.
    pub async fn job_log_after(&self, job_id: i64, after: i64) -> Result<Vec<LogLine>> {
        Ok(sqlx::query_as(
            "SELECT seq, stream, line, at FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(job_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl crate::Write {
    /// Asks job `id` to stop: a queued one is cancelled at once, a running
    /// one marked (see [`CancelRequest`]).
    pub async fn request_cancel(&mut self, id: i64) -> Result<CancelRequest> {
        let state: Option<JobState> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let request = match state.ok_or(StoreError::NotFound)? {
            JobState::Queued => {
                sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ?")
                    .bind(now())
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
                CancelRequest::Dequeued
            }
            JobState::Running => {
                sqlx::query(
                    "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?)
                     WHERE id = ?",
                )
                .bind(now())
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
                CancelRequest::Asked
            }
            _ => CancelRequest::Finished,
        };
        Ok(request)
    }

    pub async fn create_job(&mut self, new: &NewJob<'_>) -> Result<Job> {
        Ok(sqlx::query_as(
            "INSERT INTO jobs (kind, user_id, username, server_id, overlay_id, subject, locks, state, created_at, argument)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING *",
        )
        .bind(new.kind)
        .bind(new.user_id)
        .bind(new.username)
        .bind(new.server_id)
        .bind(new.overlay_id)
        .bind(new.subject)
        .bind(new.locks.join(" "))
        .bind(now())
        .bind(new.argument)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// A queued job of this kind on these locks, to reuse instead of
    /// queueing the same work twice.
    pub async fn queued_job(&mut self, kind: &str, locks: &[String]) -> Result<Option<Job>> {
        Ok(sqlx::query_as(
            "SELECT * FROM jobs WHERE state = 'queued' AND kind = ? AND locks = ? ORDER BY id LIMIT 1",
        )
        .bind(kind)
        .bind(locks.join(" "))
        .fetch_optional(&mut *self.tx)
        .await?)
    }
}
