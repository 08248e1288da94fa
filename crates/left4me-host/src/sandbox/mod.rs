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
pub mod network;
pub mod systemd;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags};

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
    /// Free space the build must leave on the layer's file system (where
    /// the state root is): another build, a game or the database must not
    /// find the disk full, even below the output limit.
    pub disk_reserve_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 4 << 30,
            tasks: 512,
            cpus: 2,
            timeout: Duration::from_secs(3600),
            output_bytes: 20 << 30,
            disk_reserve_bytes: 2 << 30,
        }
    }
}

impl Limits {
    pub fn describe(&self) -> String {
        format!(
            "memory {} MiB without swap, {} tasks, {} CPUs, {} s, output {} MiB, {} MiB kept free",
            self.memory_bytes >> 20,
            self.tasks,
            self.cpus,
            self.timeout.as_secs(),
            self.output_bytes >> 20,
            self.disk_reserve_bytes >> 20
        )
    }
}

/// One run of a script.
#[derive(Debug, Clone)]
pub struct BuildRun<'a> {
    /// Unique among running builds: `[a-z0-9-]`, names the cgroup.
    pub name: &'a str,
    /// The build's directory: `script.sh` (bash) and `layer/`, which the
    /// script fills and which becomes the layer; the sandbox adds the
    /// build's `resolv.conf`.
    pub dir: &'a Path,
    /// Paths the script must not see besides the fixed ones (the state
    /// root, the configuration directory).
    pub hidden: &'a [PathBuf],
}

impl BuildRun<'_> {
    pub fn script(&self) -> PathBuf {
        self.dir.join("script.sh")
    }

    pub fn layer(&self) -> PathBuf {
        self.dir.join("layer")
    }

    /// Writes the build's `/etc/resolv.conf` (see [`network`]).
    fn write_resolv_conf(&self) -> Result<(), SandboxError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("resolv.conf");
        std::fs::write(&path, network::resolv_conf())
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
            .map_err(io("writing the build's resolv.conf"))?;
        Ok(())
    }
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

/// Removes the empty cgroups of builds named `*-TAG` (the tag after the
/// last dash), which builds that died with their panel left.
pub fn sweep_cgroups(name: &str) {
    cgroup::sweep(Path::new("/sys/fs/cgroup"), name);
}

/// What the watch from outside the sandbox stopped a build for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overrun {
    /// The layer held this many bytes, reaching the output limit.
    Output(u64),
    /// Its file system had this many bytes free, below the reserve.
    Disk(u64),
}

impl Overrun {
    pub(crate) fn describe(self, limits: &Limits) -> String {
        match self {
            Self::Output(used) => format!(
                "it wrote {} MiB, reaching its output limit ({} MiB)",
                used >> 20,
                limits.output_bytes >> 20
            ),
            Self::Disk(free) => format!(
                "the disk it writes to had {} MiB free, less than the {} MiB kept free for the host",
                free >> 20,
                limits.disk_reserve_bytes >> 20
            ),
        }
    }
}

/// A layer's size and its disk's free space, watched from outside the
/// sandbox: no kernel mechanism limits a directory tree. The free space
/// also counts what the panel cannot read (under systemd the script may
/// make a directory unreadable to it).
pub(crate) struct OutputWatch {
    layer: PathBuf,
    limits: Limits,
    last: std::time::Instant,
}

impl OutputWatch {
    pub(crate) fn new(layer: PathBuf, limits: &Limits) -> Self {
        Self {
            layer,
            limits: limits.clone(),
            last: std::time::Instant::now(),
        }
    }

    /// A limit passed; looks at most once a second.
    pub(crate) fn over(&mut self) -> Option<Overrun> {
        if self.last.elapsed() < Duration::from_secs(1) {
            return None;
        }
        self.last = std::time::Instant::now();
        self.reached()
    }

    /// A limit reached, now (after the run: a file cut at the size limit
    /// ends its writer, not the script).
    pub(crate) fn reached(&self) -> Option<Overrun> {
        if let Ok(fs) = rustix::fs::statvfs(&self.layer) {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            if free < self.limits.disk_reserve_bytes {
                return Some(Overrun::Disk(free));
            }
        }
        let used = crate::fsutil::disk_usage(&self.layer);
        (used >= self.limits.output_bytes).then_some(Overrun::Output(used))
    }
}

/// Runs build scripts.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Runs the script, its output going to `ctx` line by line, until it
    /// ends, hits a limit or is cancelled; everything it started ends
    /// with it.
    fn run(&self, run: &BuildRun<'_>, ctx: &Ctx<'_>) -> Result<(), SandboxError>;
}

/// Makes a finished layer safe to hand to the game: owned by `owner`,
/// readable by all, no setuid or setgid bits, nothing but files,
/// directories and links, and no link that points outside the layer (a
/// game serving files to players could otherwise be led to a host file).
/// Each removal is said in the log.
pub fn normalize_layer(
    layer: &Path,
    owner: Option<(u32, u32)>,
    ctx: &Ctx<'_>,
) -> Result<(), SandboxError> {
    let fd = open_dir(layer).map_err(io(format!("opening {}", layer.display())))?;
    normalize_layer_at(fd.as_fd(), owner, ctx)
}

/// [`normalize_layer`] on a directory already opened (beneath the state
/// root, by a privileged helper). Works on descriptors and never follows
/// a link, so a tree that others can write cannot redirect it.
pub fn normalize_layer_at(
    layer: BorrowedFd<'_>,
    owner: Option<(u32, u32)>,
    ctx: &Ctx<'_>,
) -> Result<(), SandboxError> {
    let fix = Fix {
        owner,
        normalize: Some(ctx),
    };
    fix.tree(layer, Path::new(""))
        .map_err(io("checking the layer's files"))?;
    fix.node(layer, true).map_err(io("checking the layer"))
}

/// Hands a tree to `uid:gid` (links themselves, never their targets).
pub fn chown_tree_at(dir: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let fix = Fix {
        owner: Some((uid, gid)),
        normalize: None,
    };
    fix.tree(dir, Path::new(""))?;
    fix.node(dir, true)
}

pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// What a walk does to each entry.
struct Fix<'a> {
    owner: Option<(u32, u32)>,
    /// Modes, links and odd files fixed, each removal said here.
    normalize: Option<&'a Ctx<'a>>,
}

impl Fix<'_> {
    fn chown_at(&self, dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }

    fn tree(&self, dir: BorrowedFd<'_>, shown: &Path) -> io::Result<()> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(dir)? {
            let name = entry?.file_name().to_owned();
            if name.as_bytes() != b"." && name.as_bytes() != b".." {
                names.push(name);
            }
        }
        for name in names {
            let here = shown.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
            let stat = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
            match (kind, self.normalize) {
                (rustix::fs::FileType::Symlink, Some(ctx)) => {
                    let target = rustix::fs::readlinkat(dir, &name, Vec::new())?;
                    let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                    if escapes(Path::new("/"), &Path::new("/").join(&here), target) {
                        ctx.emit(Event::Stderr(format!(
                            "removed /{}: a link to {} outside the layer",
                            here.display(),
                            target.display()
                        )));
                        rustix::fs::unlinkat(dir, &name, AtFlags::empty())?;
                    } else {
                        self.chown_at(dir, &name)?;
                    }
                }
                (rustix::fs::FileType::Directory | rustix::fs::FileType::RegularFile, _) => {
                    let is_dir = kind == rustix::fs::FileType::Directory;
                    let flags =
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
                    let child = rustix::fs::openat(
                        dir,
                        &name,
                        if is_dir {
                            flags | OFlags::DIRECTORY
                        } else {
                            flags
                        },
                        Mode::empty(),
                    )?;
                    if is_dir {
                        self.tree(child.as_fd(), &here)?;
                    }
                    self.node(child.as_fd(), is_dir)?;
                }
                (_, Some(ctx)) => {
                    ctx.emit(Event::Stderr(format!(
                        "removed /{}: not a file, directory or link",
                        here.display()
                    )));
                    rustix::fs::unlinkat(dir, &name, AtFlags::empty())?;
                }
                (_, None) => self.chown_at(dir, &name)?,
            }
        }
        Ok(())
    }

    /// Mode and owner of one open file or directory.
    fn node(&self, fd: BorrowedFd<'_>, is_dir: bool) -> io::Result<()> {
        let stat = rustix::fs::fstat(fd)?;
        if self.normalize.is_some() {
            // Readable (and directories searchable) by all; no set-id bits.
            let mode = stat.st_mode & 0o777;
            let wanted = if is_dir {
                mode | 0o755
            } else if mode & 0o111 != 0 {
                mode | 0o555
            } else {
                mode | 0o444
            };
            if stat.st_mode & 0o7777 != wanted {
                rustix::fs::fchmod(fd, Mode::from_raw_mode(wanted))?;
            }
        }
        if let Some((uid, gid)) = self.owner
            && (stat.st_uid != uid || stat.st_gid != gid)
        {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
        }
        Ok(())
    }
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
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
