use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Session {
    /// The row's id: what the account page names it by (never the hash).
    pub id: i64,
    pub token_hash: crate::Secret,
    pub user_id: i64,
    pub csrf_token: crate::Secret,
    pub created_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub address: String,
    pub last_seen_at: i64,
    /// When the user last proved who they are in it.
    pub verified_at: i64,
}

/// Where a session is opened from.
#[derive(Debug, Clone, Copy)]
pub struct NewSessionRow<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub ttl_secs: i64,
    pub user_agent: &'a str,
    pub address: &'a str,
}

impl Store {
    pub async fn create_session(&self, new: &NewSessionRow<'_>) -> Result<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO sessions
             (token_hash, user_id, csrf_token, created_at, expires_at, user_agent, address,
              last_seen_at, verified_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.token_hash)
        .bind(new.user_id)
        .bind(new.csrf_token)
        .bind(now)
        .bind(now + new.ttl_secs)
        .bind(new.user_agent)
        .bind(new.address)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.changed();
        Ok(())
    }

    /// A live session of an active user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT s.rowid AS id, s.* FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.is_active = 1",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A user's live sessions, the one seen last first.
    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<Session>> {
        Ok(sqlx::query_as(
            "SELECT rowid AS id, * FROM sessions WHERE user_id = ? AND expires_at > ?
             ORDER BY last_seen_at DESC, rowid DESC",
        )
        .bind(user_id)
        .bind(now())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Notes that the session was used, at most once a minute (no change
    /// the panel keeps in memory).
    pub async fn touch_session(&self, token_hash: &str) -> Result<()> {
        let now = now();
        sqlx::query(
            "UPDATE sessions SET last_seen_at = ?1 WHERE token_hash = ?2 AND last_seen_at < ?1 - 60",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user proved who they are again in this session.
    pub async fn verify_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET verified_at = ? WHERE token_hash = ?")
            .bind(now())
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }

    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now())
            .execute(&self.pool)
            .await?
            .rows_affected();
        if result > 0 {
            self.changed();
        }
        Ok(result)
    }
}

impl crate::Write {
    /// Ends one of the user's sessions; `NotFound` when they have no such
    /// one. Says where it was opened from.
    pub async fn delete_session_of(&mut self, user_id: i64, id: i64) -> Result<Session> {
        sqlx::query_as(
            "DELETE FROM sessions WHERE rowid = ? AND user_id = ? RETURNING rowid AS id, *",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(crate::StoreError::NotFound)
    }

    /// Ends every session of the user except `keep` (after a password change).
    pub async fn delete_other_sessions(&mut self, user_id: i64, keep: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?")
            .bind(user_id)
            .bind(keep)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
