use sqlx::FromRow;

use crate::overlays::{insert_overlay, touch_overlay_on};
use crate::{Overlay, OverlayKind, Result, Store, StoreError, now};

/// The script of a script overlay and how its builds start.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OverlayScript {
    pub overlay_id: i64,
    pub script: String,
    pub description: String,
    /// Builds start from a copy of the current version.
    pub from_previous: bool,
    /// The next build starts from an empty layer anyway.
    pub next_from_scratch: bool,
    pub updated_at: i64,
}

/// What a user writes of a script overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptEdit<'a> {
    pub script: &'a str,
    pub description: &'a str,
    pub from_previous: bool,
}

/// What a build runs, read when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    pub script: String,
    pub from_scratch: bool,
}

impl Store {
    /// `None` for an overlay that has no script yet.
    pub async fn overlay_script(&self, overlay_id: i64) -> Result<Option<OverlayScript>> {
        Ok(
            sqlx::query_as("SELECT * FROM overlay_scripts WHERE overlay_id = ?")
                .bind(overlay_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Saves the script and marks the overlay changed.
    pub async fn put_overlay_script(&self, overlay_id: i64, edit: ScriptEdit<'_>) -> Result<()> {
        let mut write = self.write().await?;
        write.put_overlay_script(overlay_id, edit).await?;
        write.commit().await
    }

    /// Makes the next build start from an empty layer; refused while
    /// the overlay has no script.
    pub async fn request_script_from_scratch(&self, overlay_id: i64) -> Result<()> {
        let mut write = self.write().await?;
        write.request_script_from_scratch(overlay_id).await?;
        write.commit().await
    }

    /// What a starting build runs; takes back a "from scratch" request,
    /// which this build fulfils. `None` when the overlay has no script.
    pub async fn take_script_run(&self, overlay_id: i64) -> Result<Option<ScriptRun>> {
        let mut write = self.write().await?;
        let row: Option<(String, bool, bool)> = sqlx::query_as(
            "SELECT script, from_previous, next_from_scratch FROM overlay_scripts
             WHERE overlay_id = ?",
        )
        .bind(overlay_id)
        .fetch_optional(&mut *write.tx)
        .await?;
        sqlx::query("UPDATE overlay_scripts SET next_from_scratch = 0 WHERE overlay_id = ?")
            .bind(overlay_id)
            .execute(&mut *write.tx)
            .await?;
        write.commit().await?;
        Ok(row.map(|(script, from_previous, scratch)| ScriptRun {
            script,
            from_scratch: scratch || !from_previous,
        }))
    }

    /// Creates a shared script overlay named `name` owned by `owner_id`,
    /// unless a script overlay of that name exists: then nothing changes
    /// and the answer is `None`. For shipping example scripts.
    pub async fn seed_script_overlay(
        &self,
        owner_id: i64,
        name: &str,
        edit: ScriptEdit<'_>,
    ) -> Result<Option<Overlay>> {
        let mut write = self.write().await?;
        let seeded = write.seed_script_overlay(owner_id, name, edit).await?;
        write.commit().await?;
        Ok(seeded)
    }
}

impl crate::Write {
    /// Saves the script and marks the overlay changed.
    pub async fn put_overlay_script(
        &mut self,
        overlay_id: i64,
        edit: ScriptEdit<'_>,
    ) -> Result<()> {
        let now = now();
        write_script(&mut self.tx, overlay_id, &edit, now).await?;
        touch_overlay_on(&mut self.tx, overlay_id, now).await
    }

    /// Makes the next build start from an empty layer; refused while
    /// the overlay has no script.
    pub async fn request_script_from_scratch(&mut self, overlay_id: i64) -> Result<()> {
        let found =
            sqlx::query("UPDATE overlay_scripts SET next_from_scratch = 1 WHERE overlay_id = ?")
                .bind(overlay_id)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        if found == 0 {
            return Err(StoreError::Conflict(
                "the overlay has no script yet: save one first".into(),
            ));
        }
        Ok(())
    }

    /// Creates a shared script overlay named `name` owned by `owner_id`,
    /// unless a script overlay of that name exists: then nothing changes
    /// and the answer is `None`.
    pub async fn seed_script_overlay(
        &mut self,
        owner_id: i64,
        name: &str,
        edit: ScriptEdit<'_>,
    ) -> Result<Option<Overlay>> {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM overlays WHERE name = ? AND kind = ?")
                .bind(name)
                .bind(OverlayKind::Script)
                .fetch_optional(&mut *self.tx)
                .await?;
        if exists.is_some() {
            return Ok(None);
        }
        let overlay =
            insert_overlay(&mut self.tx, owner_id, name, OverlayKind::Script, true).await?;
        write_script(&mut self.tx, overlay.id, &edit, overlay.created_at).await?;
        Ok(Some(overlay))
    }
}

/// Writes (or replaces) an overlay's script inside a transaction.
async fn write_script(
    tx: &mut sqlx::SqliteConnection,
    overlay_id: i64,
    edit: &ScriptEdit<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO overlay_scripts (overlay_id, script, description, from_previous, updated_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (overlay_id) DO UPDATE SET script = excluded.script,
           description = excluded.description, from_previous = excluded.from_previous,
           updated_at = excluded.updated_at",
    )
    .bind(overlay_id)
    .bind(edit.script)
    .bind(edit.description)
    .bind(edit.from_previous)
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}
