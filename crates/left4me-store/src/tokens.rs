//! Personal API tokens, stored by the hash of the token.

use sqlx::FromRow;

use crate::{Result, Secret, Store, StoreError, is_unique_violation, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub token_hash: Secret,
    /// Space-separated scope names.
    pub scopes: String,
    /// Space-separated server ids, or `None` for all the user's servers.
    pub servers: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What making a token stores.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scopes: &'a str,
    pub servers: Option<&'a str>,
    pub expires_at: Option<i64>,
}

impl Store {
    /// The token whose hash this is, if it exists.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        Ok(
            sqlx::query_as("SELECT * FROM api_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        Ok(
            sqlx::query_as("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id DESC")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Notes a use of the token, at most once a minute (a busy bot would
    /// otherwise write on every request).
    pub async fn touch_api_token(&self, id: i64) -> Result<()> {
        let now = now();
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ?1
             WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1 - 60)",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl crate::Write {
    pub async fn create_api_token(&mut self, new: &NewApiToken<'_>) -> Result<ApiToken> {
        sqlx::query_as(
            "INSERT INTO api_tokens (user_id, name, token_hash, scopes, servers, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.user_id)
        .bind(new.name)
        .bind(new.token_hash)
        .bind(new.scopes)
        .bind(new.servers)
        .bind(new.expires_at)
        .bind(now())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("you have a token named {:?} already", new.name))
            } else {
                e.into()
            }
        })
    }

    /// Deletes one of the user's tokens; `NotFound` if they have no such one.
    pub async fn delete_api_token(&mut self, user_id: i64, id: i64) -> Result<ApiToken> {
        sqlx::query_as("DELETE FROM api_tokens WHERE id = ? AND user_id = ? RETURNING *")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
