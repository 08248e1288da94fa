//! Whether the panel can work: its database answers and its state root
//! is there.

use crate::App;

/// `Err` says what is wrong, for the health check's answer.
pub async fn check(app: &App) -> Result<(), String> {
    app.store()
        .ping()
        .await
        .map_err(|e| format!("database: {e}"))?;
    let root = app
        .host()
        .root()
        .installation()
        .parent()
        .map(std::path::Path::is_dir);
    if root == Some(true) {
        Ok(())
    } else {
        Err("state root missing".to_owned())
    }
}
