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
    /// Space-separated server ids, or `None` for all the user's servers
    /// (a limit whose servers were all deleted is empty: it reaches none).
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
    /// Only these servers; `None`: every server of the user.
    pub servers: Option<&'a [i64]>,
    pub expires_at: Option<i64>,
}

/// A token's columns with its server limit gathered from its rows (a
/// macro, so each query stays one literal).
macro_rules! select_token {
    ($where:literal) => {
        concat!(
            "SELECT t.*, CASE WHEN t.server_limited THEN
               (SELECT COALESCE(group_concat(server_id, ' '), '')
                FROM api_token_servers WHERE token_id = t.id) END AS servers
             FROM api_tokens t ",
            $where
        )
    };
}

impl Store {
    /// The token whose hash this is, if it exists.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        Ok(sqlx::query_as(select_token!("WHERE t.token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        Ok(
            sqlx::query_as(select_token!("WHERE t.user_id = ? ORDER BY t.id DESC"))
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens
             (user_id, name, token_hash, scopes, server_limited, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.user_id)
        .bind(new.name)
        .bind(new.token_hash)
        .bind(new.scopes)
        .bind(new.servers.is_some())
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
        })?;
        // A server deleted since the caller checked it is left out (the
        // limit then reaches fewer servers, never more).
        for server in new.servers.unwrap_or_default() {
            sqlx::query(
                "INSERT OR IGNORE INTO api_token_servers (token_id, server_id)
                 SELECT ?, id FROM servers WHERE id = ?",
            )
            .bind(id)
            .bind(server)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(sqlx::query_as(select_token!("WHERE t.id = ?"))
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    /// Deletes one of the user's tokens and says its name; `NotFound` if
    /// they have no such one.
    pub async fn delete_api_token(&mut self, user_id: i64, id: i64) -> Result<String> {
        sqlx::query_scalar("DELETE FROM api_tokens WHERE id = ? AND user_id = ? RETURNING name")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
