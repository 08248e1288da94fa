use sqlx::FromRow;

use crate::{Result, Store, now};

/// One stay of a player on a server; `left_at` is `None` while online.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct PlayerSession {
    pub id: i64,
    pub server_id: i64,
    pub name: String,
    pub steam_id: Option<String>,
    pub joined_at: i64,
    pub left_at: Option<i64>,
}

impl Store {
    /// Sessions still open on a server.
    pub async fn open_player_sessions(&self, server_id: i64) -> Result<Vec<PlayerSession>> {
        Ok(sqlx::query_as(
            "SELECT * FROM player_sessions WHERE server_id = ? AND left_at IS NULL ORDER BY id",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every open session, of all servers.
    pub async fn open_player_sessions_all(&self) -> Result<Vec<PlayerSession>> {
        Ok(
            sqlx::query_as("SELECT * FROM player_sessions WHERE left_at IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn open_player_session(
        &self,
        server_id: i64,
        name: &str,
        steam_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO player_sessions (server_id, name, steam_id, joined_at) VALUES (?, ?, ?, ?)")
            .bind(server_id)
            .bind(name)
            .bind(steam_id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close_player_session(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE player_sessions SET left_at = ? WHERE id = ? AND left_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Newest first.
    pub async fn recent_player_sessions(
        &self,
        server_id: i64,
        limit: i64,
    ) -> Result<Vec<PlayerSession>> {
        Ok(sqlx::query_as(
            "SELECT * FROM player_sessions WHERE server_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(server_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets finished sessions older than `max_age_secs`.
    pub async fn prune_player_sessions(&self, max_age_secs: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM player_sessions WHERE left_at IS NOT NULL AND left_at < ?")
                .bind(now() - max_age_secs)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
