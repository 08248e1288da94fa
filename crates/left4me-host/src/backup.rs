//! Backups with restic (Debian's `restic`): deduplicated and encrypted,
//! in a repository that is a local directory or any backend restic
//! reaches (SFTP, S3-compatible, a rest-server), its password in a file
//! outside the database.
//!
//! restic runs in a process group of its own; a cancel ends the group,
//! and the stale lock a killed run leaves is cleared before the next.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::events::{Cancelled, Ctx, Event};

/// A restic repository and how to open it.
#[derive(Debug, Clone)]
pub struct Restic {
    /// The `restic` program.
    pub program: PathBuf,
    /// A directory, or any location restic takes (`sftp:…`, `s3:…`,
    /// `rest:…`).
    pub repository: String,
    /// The file holding the repository's password.
    pub password_file: PathBuf,
    /// restic's cache (it speeds up every run after the first).
    pub cache_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("restic is not at {0}: install Debian's restic (`apt install restic`)")]
    Missing(PathBuf),
    #[error(
        "the backup repository {repository} does not take this password (the password file is {password_file})"
    )]
    WrongPassword {
        repository: String,
        password_file: PathBuf,
    },
    #[error("the backup repository {repository} is damaged: {message}")]
    Damaged { repository: String, message: String },
    #[error("restic {command} failed: {message}")]
    Failed { command: String, message: String },
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("running restic: {0}")]
    Io(#[from] std::io::Error),
}

/// What a backup did, as restic sums it up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Summary {
    pub snapshot_id: String,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    /// New data the repository keeps (after deduplication).
    pub data_added: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
}

/// A snapshot in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    /// When it was taken (RFC 3339).
    pub time: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// How many snapshots to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// One line restic prints with `--json` while backing up.
#[derive(Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
enum BackupLine {
    Status {
        #[serde(default)]
        bytes_done: u64,
        #[serde(default)]
        total_bytes: u64,
    },
    Summary(Summary),
    #[serde(other)]
    Other,
}

/// How a run of restic ended.
struct Output {
    success: bool,
    stderr: String,
}

impl Restic {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .env("RESTIC_REPOSITORY", &self.repository)
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .env("RESTIC_CACHE_DIR", &self.cache_dir)
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }

    /// Runs restic with `args`, each stdout line to `line`; ends it (and
    /// its group) when `ctx` is cancelled.
    fn run(
        &self,
        args: &[&str],
        ctx: &Ctx<'_>,
        mut line: impl FnMut(&str),
    ) -> Result<Output, BackupError> {
        if !self.program.exists() {
            return Err(BackupError::Missing(self.program.clone()));
        }
        let mut child = self.command(args).spawn()?;
        let pid = rustix::process::Pid::from_child(&child);
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut cancelled = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => line(&l),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if !cancelled && ctx.is_cancelled() {
                cancelled = true;
                end_group(pid, &mut child);
            }
        }
        let status = child.wait()?;
        let _ = reader.join();
        let stderr = errors.join().unwrap_or_default();
        if cancelled {
            return Err(BackupError::Cancelled(Cancelled));
        }
        Ok(Output {
            success: status.success(),
            stderr,
        })
    }

    /// Runs restic and fails with what it said.
    fn run_ok(&self, args: &[&str], ctx: &Ctx<'_>) -> Result<String, BackupError> {
        let mut stdout = String::new();
        let out = self.run(args, ctx, |l| {
            stdout.push_str(l);
            stdout.push('\n');
        })?;
        if out.success {
            Ok(stdout)
        } else {
            Err(self.failure(args[0], &out.stderr))
        }
    }

    fn failure(&self, command: &str, stderr: &str) -> BackupError {
        let message = last_words(stderr);
        if stderr.contains("wrong password") {
            BackupError::WrongPassword {
                repository: self.repository.clone(),
                password_file: self.password_file.clone(),
            }
        } else if command == "check" {
            BackupError::Damaged {
                repository: self.repository.clone(),
                message,
            }
        } else {
            BackupError::Failed {
                command: command.to_owned(),
                message,
            }
        }
    }

    /// Makes the repository if there is none yet; says whether it did.
    pub fn ensure_repository(&self, ctx: &Ctx<'_>) -> Result<bool, BackupError> {
        let out = self.run(&["cat", "config"], ctx, |_| {})?;
        if out.success {
            return Ok(false);
        }
        let missing = [
            "Is there a repository",
            "does not exist",
            "unable to open config",
        ]
        .iter()
        .any(|m| out.stderr.contains(m));
        if !missing {
            return Err(self.failure("cat", &out.stderr));
        }
        ctx.step(format!("making the backup repository {}", self.repository))?;
        self.run_ok(&["init"], ctx)?;
        Ok(true)
    }

    /// Clears the locks of restic runs that died (a kill -9, a reboot);
    /// those of live runs stay.
    pub fn unlock(&self, ctx: &Ctx<'_>) -> Result<(), BackupError> {
        self.run_ok(&["unlock"], ctx).map(drop)
    }

    /// Backs up `paths` (leaving out `excludes`) as one snapshot tagged
    /// `tags`, reporting progress in bytes.
    pub fn backup(
        &self,
        paths: &[&Path],
        excludes: &[&Path],
        tags: &[&str],
        ctx: &Ctx<'_>,
    ) -> Result<Summary, BackupError> {
        let mut args: Vec<String> = vec!["backup".into(), "--json".into()];
        for tag in tags {
            args.extend(["--tag".into(), (*tag).to_owned()]);
        }
        for exclude in excludes {
            args.extend(["--exclude".into(), exclude.display().to_string()]);
        }
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut summary = None;
        let out = self.run(&args, ctx, |line| match serde_json::from_str(line) {
            Ok(BackupLine::Status {
                bytes_done,
                total_bytes,
            }) if total_bytes > 0 => ctx.emit(Event::Progress {
                done: bytes_done,
                total: total_bytes,
            }),
            Ok(BackupLine::Summary(s)) => summary = Some(s),
            _ => {}
        })?;
        match summary {
            Some(summary) if out.success => Ok(summary),
            _ => Err(self.failure("backup", &out.stderr)),
        }
    }

    /// The repository's snapshots, oldest first.
    pub fn snapshots(&self, ctx: &Ctx<'_>) -> Result<Vec<Snapshot>, BackupError> {
        let json = self.run_ok(&["snapshots", "--json"], ctx)?;
        serde_json::from_str(&json).map_err(|e| BackupError::Failed {
            command: "snapshots".into(),
            message: format!("its list was not understood: {e}"),
        })
    }

    /// Checks the repository's structure, and reads back this share of
    /// its data (percent; 0 reads none).
    pub fn check(&self, read_data_percent: u8, ctx: &Ctx<'_>) -> Result<(), BackupError> {
        let subset = format!("--read-data-subset={}%", read_data_percent.clamp(1, 100));
        let mut args = vec!["check"];
        if read_data_percent > 0 {
            args.push(&subset);
        }
        self.run_ok(&args, ctx).map(drop)
    }

    /// Forgets the snapshots `keep` does not keep and frees their data.
    pub fn forget(&self, keep: Keep, ctx: &Ctx<'_>) -> Result<(), BackupError> {
        let (daily, weekly, monthly) = (
            keep.daily.to_string(),
            keep.weekly.to_string(),
            keep.monthly.to_string(),
        );
        self.run_ok(
            &[
                "forget",
                "--prune",
                "--keep-daily",
                &daily,
                "--keep-weekly",
                &weekly,
                "--keep-monthly",
                &monthly,
            ],
            ctx,
        )
        .map(drop)
    }

    /// Restores `snapshot` below `target` (paths as they were backed up,
    /// below it), only `includes` where given.
    pub fn restore(
        &self,
        snapshot: &str,
        target: &Path,
        includes: &[&Path],
        ctx: &Ctx<'_>,
    ) -> Result<(), BackupError> {
        let target = target.display().to_string();
        let mut args: Vec<String> = vec![
            "restore".into(),
            snapshot.to_owned(),
            "--target".into(),
            target,
        ];
        for include in includes {
            args.extend(["--include".into(), include.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_ok(&args, ctx).map(drop)
    }
}

/// The last lines restic printed on stderr, for an error message.
fn last_words(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    match lines[start..].join(" / ") {
        s if s.is_empty() => "it said nothing".into(),
        s => s,
    }
}

/// SIGTERM to the group (restic removes its lock), then SIGKILL if it
/// lingers.
fn end_group(pid: rustix::process::Pid, child: &mut std::process::Child) {
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// What a backup of the panel takes from the state root: the database's
/// copy in `staging`, the overlays' own files, and each server's own
/// state (its upper layer, its instance files). Not the game, nor built
/// overlay versions and the Workshop cache: those are made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSet {
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<PathBuf>,
}

impl BackupSet {
    pub fn of_panel(root: &crate::layout::StateRoot, staging: &Path) -> Self {
        let runtime = root.runtime();
        Self {
            paths: vec![
                staging.to_owned(),
                root.overlays(),
                root.instances(),
                runtime.clone(),
            ],
            // A running server's merged tree is a mount of the whole game.
            excludes: vec![runtime.join("*/merged"), runtime.join("*/work")],
        }
    }
}

/// Makes the password file with a new random password unless it exists;
/// says whether it did. Only its owner may read it.
pub fn ensure_password_file(path: &Path) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut random = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(password.as_bytes())?;
    file.sync_all()?;
    // A password made meanwhile by another run wins: it may be in use.
    match std::fs::hard_link(&partial, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&partial)?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    std::fs::remove_file(&partial)?;
    Ok(true)
}
