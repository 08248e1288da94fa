//! Build scripts in a sandbox: an admin's bash script writes a new layer
//! and nothing else.
//!
//! Inside, the script sees its layer read-write at `/overlay`, itself
//! read-only at `/script.sh`, a private `/tmp`, and the host's system
//! read-only; not the state root, `/etc/left4me`, `/home`, `/root`,
//! `/run` or `/var`. It runs as an unprivileged user without capabilities,
//! new privileges, user namespaces or mounts, with limits on memory (no
//! swap), tasks, CPUs, time and output. A limit that cannot be enforced
//! on this host is said in the build log, never silently dropped.
//!
//! [`Sandbox`] has two backends, like the supervisors: [`bubblewrap`]
//! (namespaces and cgroups, without systemd) and, in production, a
//! `left4me-build@` unit.

pub mod bubblewrap;
mod cgroup;

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::{Ctx, Event};

/// What a build may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory, without swap.
    pub memory_bytes: u64,
    pub tasks: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// What the layer may hold.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 4 << 30,
            tasks: 512,
            cpus: 2,
            timeout: Duration::from_secs(3600),
            output_bytes: 20 << 30,
        }
    }
}

impl Limits {
    pub fn describe(&self) -> String {
        format!(
            "memory {} MiB without swap, {} tasks, {} CPUs, {} s, output {} MiB",
            self.memory_bytes >> 20,
            self.tasks,
            self.cpus,
            self.timeout.as_secs(),
            self.output_bytes >> 20
        )
    }
}

/// One run of a script.
#[derive(Debug, Clone)]
pub struct BuildRun<'a> {
    /// Unique among running builds: `[a-z0-9-]`, names the cgroup.
    pub name: &'a str,
    /// The script file (bash).
    pub script: &'a Path,
    /// The directory the script fills; it becomes the layer.
    pub layer: &'a Path,
    /// Paths the script must not see besides the fixed ones (the state
    /// root, the configuration directory).
    pub hidden: &'a [PathBuf],
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the build script failed ({status})")]
    Failed { status: String },
    /// A limit stopped the build; the message names it.
    #[error("{0}")]
    LimitHit(String),
    #[error("cancelled")]
    Cancelled,
    #[error("the sandbox cannot run here: {0}")]
    Unavailable(String),
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let action = action.into();
    move |source| SandboxError::Io { action, source }
}

/// Runs build scripts.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Runs the script, its output going to `ctx` line by line, until it
    /// ends, hits a limit or is cancelled; everything it started ends
    /// with it.
    fn run(&self, run: &BuildRun<'_>, ctx: &Ctx<'_>) -> Result<(), SandboxError>;
}

/// Makes a finished layer safe to hand to the game: owned by `owner`,
/// readable by all, no setuid or setgid bits, and no symlink that points
/// outside the layer (a game serving files to players could otherwise be
/// led to a host file). Each removal is said in the log.
pub fn normalize_layer(
    layer: &Path,
    owner: Option<(u32, u32)>,
    ctx: &Ctx<'_>,
) -> Result<(), SandboxError> {
    let mut stack = vec![layer.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io(format!("reading {}", dir.display())))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(io(format!("reading {}", path.display())))?;
            let shown = path.strip_prefix(layer).unwrap_or(&path).display();
            if meta.file_type().is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(io(format!("reading {}", path.display())))?;
                if escapes(layer, &path, &target) {
                    ctx.emit(Event::Stderr(format!(
                        "removed /{shown}: a link to {} outside the layer",
                        target.display()
                    )));
                    std::fs::remove_file(&path)
                        .map_err(io(format!("removing {}", path.display())))?;
                    continue;
                }
            } else if !(meta.is_dir() || meta.is_file()) {
                ctx.emit(Event::Stderr(format!(
                    "removed /{shown}: not a file, directory or link"
                )));
                std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
                continue;
            } else {
                // Readable (and directories searchable) by all; no set-id bits.
                let mode = meta.mode() & 0o777;
                let wanted = if meta.is_dir() {
                    mode | 0o755
                } else if mode & 0o111 != 0 {
                    mode | 0o555
                } else {
                    mode | 0o444
                };
                if meta.mode() & 0o7777 != wanted {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                        .map_err(io(format!("setting the mode of {}", path.display())))?;
                }
                if meta.is_dir() {
                    stack.push(path.clone());
                }
            }
            if let Some((uid, gid)) = owner
                && (meta.uid() != uid || meta.gid() != gid)
            {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io(format!(
                    "handing {} to the state root's owner",
                    path.display()
                )))?;
            }
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(layer, Some(uid), Some(gid))
            .map_err(io("handing the layer to the state root's owner"))?;
    }
    Ok(())
}

/// Hands a tree to `uid:gid` (links themselves, not their targets).
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Whether a link at `link` (inside `layer`) to `target` resolves
/// outside the layer, judged by its text alone (the layer is mounted
/// elsewhere later, so absolute targets never stay inside).
fn escapes(layer: &Path, link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let depth = link
        .parent()
        .and_then(|p| p.strip_prefix(layer).ok())
        .map_or(0, |p| p.components().count());
    let mut level = depth as i64;
    for part in target.components() {
        match part {
            std::path::Component::ParentDir => level -= 1,
            std::path::Component::Normal(_) => level += 1,
            _ => {}
        }
        if level < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_judged_by_where_they_lead() {
        let layer = Path::new("/l");
        let at = |p: &str| layer.join(p);
        assert!(escapes(layer, &at("a"), Path::new("/etc/shadow")));
        assert!(escapes(layer, &at("a"), Path::new("../x")));
        assert!(escapes(layer, &at("d/a"), Path::new("../../x")));
        assert!(!escapes(layer, &at("d/a"), Path::new("../x")));
        assert!(!escapes(layer, &at("d/a"), Path::new("sub/../y")));
        assert!(escapes(layer, &at("a"), Path::new("sub/../../y")));
    }

    #[test]
    fn a_layer_is_made_readable_without_set_id_bits_or_escaping_links() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path();
        std::fs::create_dir(layer.join("d")).unwrap();
        std::fs::write(layer.join("d/secret"), "x").unwrap();
        std::fs::set_permissions(
            layer.join("d/secret"),
            std::fs::Permissions::from_mode(0o4700),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/shadow", layer.join("d/out")).unwrap();
        std::os::unix::fs::symlink("secret", layer.join("d/in")).unwrap();
        let lines = std::sync::Mutex::new(Vec::new());
        let sink = |e: Event| lines.lock().unwrap().push(e);
        let token = crate::events::CancellationToken::new();
        normalize_layer(layer, None, &Ctx::new(&sink, &token)).unwrap();
        let mode = std::fs::metadata(layer.join("d/secret")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        assert!(std::fs::symlink_metadata(layer.join("d/out")).is_err());
        assert!(std::fs::symlink_metadata(layer.join("d/in")).is_ok());
        let lines = lines.into_inner().unwrap();
        assert!(
            matches!(&lines[..], [Event::Stderr(l)] if l.contains("/d/out: a link to /etc/shadow")),
            "{lines:?}"
        );
    }
}
