use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Session {
    pub token_hash: crate::Secret,
    pub user_id: i64,
    pub csrf_token: crate::Secret,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        ttl_secs: i64,
    ) -> Result<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now)
        .bind(now + ttl_secs)
        .execute(&self.pool)
        .await?;
        self.changed();
        Ok(())
    }

    /// A live session of an active user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT s.* FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.is_active = 1",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
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
