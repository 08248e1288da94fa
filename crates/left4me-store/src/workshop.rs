use sqlx::FromRow;

use crate::{Result, Store, now};

/// An item or collection a user added to a Workshop overlay.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WorkshopSource {
    pub overlay_id: i64,
    pub published_id: i64,
    pub is_collection: bool,
    pub title: String,
    pub added_at: i64,
}

/// One item of a Workshop overlay as its last build saw it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WorkshopItem {
    pub overlay_id: i64,
    pub item_id: i64,
    pub via: Option<i64>,
    pub title: String,
    pub file_size: i64,
    pub time_updated: i64,
    /// `ok`, `downloading` or `failed` (with `error`).
    pub state: String,
    pub error: Option<String>,
}

impl Store {
    /// Adds sources, ignoring those the overlay has. Returns how many were new.
    pub async fn add_workshop_sources(
        &self,
        overlay_id: i64,
        sources: &[(i64, bool, String)],
    ) -> Result<u64> {
        let mut write = self.write().await?;
        let added = write.add_workshop_sources(overlay_id, sources).await?;
        write.commit().await?;
        Ok(added)
    }

    /// Removes a source and the items it brought. False when it was not there.
    pub async fn remove_workshop_source(&self, overlay_id: i64, published_id: i64) -> Result<bool> {
        let mut write = self.write().await?;
        let removed = write
            .remove_workshop_source(overlay_id, published_id)
            .await?;
        write.commit().await?;
        Ok(removed)
    }

    /// In the order they were added.
    pub async fn workshop_sources(&self, overlay_id: i64) -> Result<Vec<WorkshopSource>> {
        Ok(sqlx::query_as(
            "SELECT * FROM workshop_sources WHERE overlay_id = ? ORDER BY added_at, rowid",
        )
        .bind(overlay_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// By title.
    pub async fn workshop_items(&self, overlay_id: i64) -> Result<Vec<WorkshopItem>> {
        Ok(sqlx::query_as(
            "SELECT * FROM workshop_items WHERE overlay_id = ? ORDER BY title COLLATE NOCASE, item_id",
        )
        .bind(overlay_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn put_workshop_item(&self, item: &WorkshopItem) -> Result<()> {
        sqlx::query(
            "INSERT INTO workshop_items
             (overlay_id, item_id, via, title, file_size, time_updated, state, error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (overlay_id, item_id) DO UPDATE SET
               via = excluded.via, title = excluded.title, file_size = excluded.file_size,
               time_updated = excluded.time_updated, state = excluded.state, error = excluded.error",
        )
        .bind(item.overlay_id)
        .bind(item.item_id)
        .bind(item.via)
        .bind(&item.title)
        .bind(item.file_size)
        .bind(item.time_updated)
        .bind(&item.state)
        .bind(&item.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drops the overlay's items a build no longer resolved.
    pub async fn keep_workshop_items(&self, overlay_id: i64, ids: &[i64]) -> Result<()> {
        let mut query = sqlx::QueryBuilder::new("DELETE FROM workshop_items WHERE overlay_id = ");
        query.push_bind(overlay_id);
        if !ids.is_empty() {
            query.push(" AND item_id NOT IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            query.push(")");
        }
        query.build().execute(&self.pool).await?;
        Ok(())
    }
}

impl crate::Write {
    /// Adds sources, ignoring those the overlay has. Returns how many were new.
    pub async fn add_workshop_sources(
        &mut self,
        overlay_id: i64,
        sources: &[(i64, bool, String)],
    ) -> Result<u64> {
        let mut added = 0;
        for (id, collection, title) in sources {
            added += sqlx::query(
                "INSERT OR IGNORE INTO workshop_sources
                 (overlay_id, published_id, is_collection, title, added_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(overlay_id)
            .bind(id)
            .bind(collection)
            .bind(title)
            .bind(now())
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        }
        Ok(added)
    }

    /// Removes a source and the items it brought. False when it was not there.
    pub async fn remove_workshop_source(
        &mut self,
        overlay_id: i64,
        published_id: i64,
    ) -> Result<bool> {
        let removed =
            sqlx::query("DELETE FROM workshop_sources WHERE overlay_id = ? AND published_id = ?")
                .bind(overlay_id)
                .bind(published_id)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        sqlx::query("DELETE FROM workshop_items WHERE overlay_id = ? AND (item_id = ? OR via = ?)")
            .bind(overlay_id)
            .bind(published_id)
            .bind(published_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(removed > 0)
    }
}
