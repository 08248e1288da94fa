//! Backups below the operations: where they go, what they keep, and the
//! job that takes one (see `runner`).

use left4me_config::Config;
use left4me_host::backup::{Keep, Restic};

/// Where the panel's backups go and how many it keeps.
#[derive(Debug, Clone)]
pub struct Backups {
    pub restic: Restic,
    pub keep: Keep,
    /// The configuration file, copied into each backup.
    pub config_file: Option<std::path::PathBuf>,
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
            config_file: config.file.clone(),
        }
    }

    /// The name of the configuration's copy in `staging`.
    pub const CONFIG_COPY: &str = "left4me.toml";

    /// Where the database is copied for a backup.
    pub fn staging(config_root: &std::path::Path) -> std::path::PathBuf {
        config_root.join("backups/staging")
    }
}
