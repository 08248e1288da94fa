//! Backups below the operations: where they go, what they keep, and the
//! job that takes one (see `runner`).

use left4me_config::Config;
use left4me_host::backup::{Keep, Restic};

/// Where the panel's backups go and how many it keeps.
#[derive(Debug, Clone)]
pub struct Backups {
    pub restic: Restic,
    pub keep: Keep,
}

impl Backups {
    pub fn new(config: &Config) -> Self {
        Self {
            restic: Restic {
                program: config.restic.clone(),
                repository: config.backup_repository(),
                password_file: config.backup_password_file(),
                cache_dir: config.root.join("backups/cache"),
            },
            keep: Keep {
                daily: config.backup_keep_daily,
                weekly: config.backup_keep_weekly,
                monthly: config.backup_keep_monthly,
            },
        }
    }

    /// Where the database is copied for a backup.
    pub fn staging(config_root: &std::path::Path) -> std::path::PathBuf {
        config_root.join("backups/staging")
    }
}
