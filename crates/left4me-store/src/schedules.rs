//! Schedules: when a server (or the panel) does something by itself.
//! Their runs are jobs with the schedule's id.

use sqlx::FromRow;

use crate::{Job, NewJob, Result, Store, StoreError, is_unique_violation, now};

/// A schedule as stored: its timing, zone and plan as the panel wrote
/// them (checked before).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    /// `None`: the panel's own.
    pub server_id: Option<i64>,
    /// Whose rights it runs with; `None` once that user is gone.
    pub owner_id: Option<i64>,
    pub timing: String,
    pub time_zone: String,
    pub plan: String,
    pub catch_up: bool,
    pub enabled: bool,
    /// The next run's time.
    pub due_at: i64,
    /// The last run skipped, and why.
    pub last_skipped: Option<String>,
    pub created_at: i64,
    /// Which of the panel's own routines it is, if it is one.
    pub builtin: Option<String>,
}

/// A schedule's settings, to make or change one.
#[derive(Debug, Clone)]
pub struct ScheduleSettings<'a> {
    pub name: &'a str,
    pub timing: &'a str,
    pub time_zone: &'a str,
    pub plan: &'a str,
    pub catch_up: bool,
    pub enabled: bool,
    pub due_at: i64,
}

fn named_twice(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("there is a schedule named {name:?} already"))
        } else {
            e.into()
        }
    }
}

impl Store {
    pub async fn schedule(&self, id: i64) -> Result<Schedule> {
        sqlx::query_as("SELECT * FROM schedules WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A server's schedules (`None`: the panel's), by name.
    pub async fn schedules_of(&self, server_id: Option<i64>) -> Result<Vec<Schedule>> {
        Ok(sqlx::query_as(
            "SELECT * FROM schedules WHERE server_id IS ? ORDER BY name COLLATE NOCASE",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The panel's own routine `builtin`, if it exists yet.
    pub async fn builtin_schedule(&self, builtin: &str) -> Result<Option<Schedule>> {
        Ok(sqlx::query_as("SELECT * FROM schedules WHERE builtin = ?")
            .bind(builtin)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Enabled schedules whose run is due at `at`, the longest due first.
    pub async fn due_schedules(&self, at: i64) -> Result<Vec<Schedule>> {
        Ok(sqlx::query_as(
            "SELECT * FROM schedules WHERE enabled = 1 AND due_at <= ? ORDER BY due_at, id",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The earliest run due of any enabled schedule.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(due_at) FROM schedules WHERE enabled = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Takes the run due at `due_at` by moving the schedule on to `next`:
    /// false when something else took it (or changed the schedule) first.
    /// `skipped` says why the run was skipped, if it was.
    pub async fn take_due_run(
        &self,
        id: i64,
        due_at: i64,
        next: i64,
        skipped: Option<&str>,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE schedules SET due_at = ?, last_skipped = COALESCE(?, last_skipped)
             WHERE id = ? AND due_at = ?",
        )
        .bind(next)
        .bind(skipped)
        .bind(id)
        .bind(due_at)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if taken {
            self.changed();
        }
        Ok(taken)
    }

    /// A schedule's runs, newest first.
    pub async fn schedule_runs(&self, schedule_id: i64, limit: i64) -> Result<Vec<Job>> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?")
                .bind(schedule_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

impl crate::Write {
    pub async fn create_schedule(
        &mut self,
        server_id: Option<i64>,
        owner_id: i64,
        settings: &ScheduleSettings<'_>,
    ) -> Result<Schedule> {
        sqlx::query_as(
            "INSERT INTO schedules
                 (name, server_id, owner_id, timing, time_zone, plan, catch_up, enabled, due_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(settings.name)
        .bind(server_id)
        .bind(owner_id)
        .bind(settings.timing)
        .bind(settings.time_zone)
        .bind(settings.plan)
        .bind(settings.catch_up)
        .bind(settings.enabled)
        .bind(settings.due_at)
        .bind(now())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(named_twice(settings.name))
    }

    /// New settings (and its next run) for a schedule.
    pub async fn update_schedule(
        &mut self,
        id: i64,
        settings: &ScheduleSettings<'_>,
    ) -> Result<Schedule> {
        sqlx::query_as(
            "UPDATE schedules SET name = ?, timing = ?, time_zone = ?, plan = ?, catch_up = ?,
                    enabled = ?, due_at = ?
             WHERE id = ? RETURNING *",
        )
        .bind(settings.name)
        .bind(settings.timing)
        .bind(settings.time_zone)
        .bind(settings.plan)
        .bind(settings.catch_up)
        .bind(settings.enabled)
        .bind(settings.due_at)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(named_twice(settings.name))?
        .ok_or(StoreError::NotFound)
    }

    /// Marks a schedule as the panel's own routine `builtin`.
    pub async fn set_builtin(&mut self, id: i64, builtin: &str) -> Result<()> {
        sqlx::query("UPDATE schedules SET builtin = ? WHERE id = ?")
            .bind(builtin)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn delete_schedule(&mut self, id: i64) -> Result<()> {
        let gone = sqlx::query("DELETE FROM schedules WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A job that starts running at once, driven by its caller rather
    /// than a worker (a schedule's run: its steps queue jobs of their own).
    pub async fn create_running_job(
        &mut self,
        new: &NewJob<'_>,
        schedule_id: Option<i64>,
    ) -> Result<Job> {
        let at = now();
        Ok(sqlx::query_as(
            "INSERT INTO jobs (kind, user_id, username, server_id, overlay_id, subject, locks,
                               state, created_at, started_at, schedule_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING *",
        )
        .bind(new.kind)
        .bind(new.user_id)
        .bind(new.username)
        .bind(new.server_id)
        .bind(new.overlay_id)
        .bind(new.subject)
        .bind(new.locks.join(" "))
        .bind(at)
        .bind(at)
        .bind(schedule_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }
}
