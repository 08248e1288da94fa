use sqlx::FromRow;

use crate::{Result, Store, now};

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Activity {
    pub id: i64,
    pub at: i64,
    pub user_id: Option<i64>,
    pub actor: String,
    pub server_id: Option<i64>,
    pub kind: String,
    pub detail: String,
}

/// Which entries to list; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    pub server_id: Option<i64>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    /// Entries with an id below this (the next page).
    pub before: Option<i64>,
}

/// A console command and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct ConsoleCommand {
    pub id: i64,
    pub server_id: i64,
    pub user_id: Option<i64>,
    pub username: String,
    pub command: String,
    pub reply: Option<String>,
    pub error: Option<String>,
    pub at: i64,
}

impl Store {
    pub async fn record_activity(
        &self,
        user: Option<(i64, &str)>,
        server_id: Option<i64>,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        let actor = user.map_or("reconciler", |u| u.1);
        self.insert_activity(user.map(|u| u.0), actor, server_id, kind, detail)
            .await
    }

    /// Something no logged-in user did (a failed login): `actor` says who
    /// it came from, e.g. the client's address. Only admins see it, as it
    /// concerns no server.
    pub async fn record_anonymous_activity(
        &self,
        actor: &str,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        self.insert_activity(None, actor, None, kind, detail).await
    }

    /// Something done by `actor`: a user (`user_id`) or the panel itself
    /// ("reconciler", "scheduler").
    pub async fn insert_activity(
        &self,
        user_id: Option<i64>,
        actor: &str,
        server_id: Option<i64>,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_activity_on(&mut conn, user_id, actor, server_id, kind, detail).await
    }

    /// Newest first, at most `limit`.
    pub async fn activity(&self, filter: &ActivityFilter, limit: i64) -> Result<Vec<Activity>> {
        Ok(sqlx::query_as(
            "SELECT * FROM activity
             WHERE (?1 IS NULL OR server_id = ?1)
               AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR actor = ?3)
               AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(filter.server_id)
        .bind(filter.kind.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The kinds of entries recorded, of one server or of all.
    pub async fn activity_kinds(&self, server_id: Option<i64>) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT kind FROM activity WHERE ?1 IS NULL OR server_id = ?1 ORDER BY kind",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The last `limit` commands of a server, oldest first.
    pub async fn console_commands(
        &self,
        server_id: i64,
        limit: i64,
    ) -> Result<Vec<ConsoleCommand>> {
        let mut rows: Vec<ConsoleCommand> = sqlx::query_as(
            "SELECT * FROM console_commands WHERE server_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(server_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}

async fn insert_activity_on(
    conn: &mut sqlx::SqliteConnection,
    user_id: Option<i64>,
    actor: &str,
    server_id: Option<i64>,
    kind: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity (at, user_id, actor, server_id, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now())
    .bind(user_id)
    .bind(actor)
    .bind(server_id)
    .bind(kind)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

impl crate::Write {
    /// A command typed into a server's console and what came of it.
    pub async fn record_console_command(
        &mut self,
        server_id: i64,
        user: (i64, &str),
        command: &str,
        outcome: std::result::Result<&str, &str>,
    ) -> Result<ConsoleCommand> {
        let (reply, error) = match outcome {
            Ok(reply) => (Some(reply), None),
            Err(error) => (None, Some(error)),
        };
        Ok(sqlx::query_as(
            "INSERT INTO console_commands (server_id, user_id, username, command, reply, error, at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(server_id)
        .bind(user.0)
        .bind(user.1)
        .bind(command)
        .bind(reply)
        .bind(error)
        .bind(now())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// What `actor` (a user, or the panel itself with no `user_id`) did,
    /// committed with the change it describes.
    pub async fn record_activity(
        &mut self,
        user_id: Option<i64>,
        actor: &str,
        server_id: Option<i64>,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        insert_activity_on(&mut self.tx, user_id, actor, server_id, kind, detail).await
    }
}
