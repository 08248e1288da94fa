use sqlx::FromRow;

use crate::{Result, Store, StoreError, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    Files,
    Workshop,
    Script,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Overlay {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub kind: OverlayKind,
    pub build_status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    pub async fn create_overlay(
        &self,
        owner_id: i64,
        name: &str,
        kind: OverlayKind,
    ) -> Result<Overlay> {
        let now = now();
        Ok(sqlx::query_as(
            "INSERT INTO overlays (owner_id, name, kind, build_status, created_at, updated_at)
             VALUES (?, ?, ?, 'ready', ?, ?) RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(kind)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn overlay(&self, id: i64) -> Result<Overlay> {
        sqlx::query_as("SELECT * FROM overlays WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// All overlays, or those of one owner.
    pub async fn overlays(&self, owner: Option<i64>) -> Result<Vec<Overlay>> {
        Ok(sqlx::query_as(
            "SELECT * FROM overlays WHERE ?1 IS NULL OR owner_id = ?1 ORDER BY name COLLATE NOCASE, id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn touch_overlay(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE overlays SET updated_at = ? WHERE id = ?")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn rename_overlay(&self, id: i64, name: &str) -> Result<()> {
        sqlx::query("UPDATE overlays SET name = ?, updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Names of the blueprints that use the overlay.
    pub async fn blueprints_using_overlay(&self, id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT b.name FROM blueprints b JOIN blueprint_overlays bo ON bo.blueprint_id = b.id
             WHERE bo.overlay_id = ? ORDER BY b.name",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the overlay unless a blueprint uses it.
    pub async fn delete_overlay(&self, id: i64) -> Result<()> {
        let users = self.blueprints_using_overlay(id).await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the overlay is used by blueprint{} {}; remove it there first",
                if users.len() == 1 { "" } else { "s" },
                users.join(", ")
            )));
        }
        sqlx::query("DELETE FROM overlays WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
