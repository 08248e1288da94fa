//! Panel-wide settings admins change in the panel, by name.

use crate::{Result, Store};

impl Store {
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

impl crate::Write {
    pub async fn set_setting(&mut self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = ?2",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
