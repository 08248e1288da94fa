//! Kernel overlayfs mounts for instances.
//!
//! The new mount API (`fsopen`/`fsconfig`) is used with one `lowerdir+` per
//! layer, each passed as an `O_PATH` descriptor opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` below the state root:
//! nothing can be swapped between the check and the mount, and path length
//! does not matter. Older kernels get fallbacks that pass the checked paths
//! as strings: `lowerdir+` strings (6.8-6.12), then a legacy `mount(2)`
//! option string (before 6.8), refused up front when it would not fit in
//! one page. With strings, a writer of the state root could swap in a
//! symlink between the check and the kernel's lookup; where untrusted code
//! can write overlays, run the mount helper on a kernel >= 6.13.
//! `lowerdir` and `lowerdir+` are never mixed.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::layer::Layer;
use crate::layout::StateRoot;

/// The kernel's overlayfs limit on lower layers.
pub const MAX_LAYERS: usize = 500;
/// `mount(2)` copies at most one page of options, NUL included.
pub const LEGACY_OPTIONS_MAX: usize = 4095;
/// `fsconfig` string values are copied with a 256-byte limit, NUL included.
const FSCONFIG_STRING_MAX: usize = 255;

/// Which kernel interface to use. `Auto` picks the best the kernel has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountApi {
    #[default]
    Auto,
    /// `fsopen`/`fsconfig`, layers as descriptors (kernel >= 6.13).
    NewWithFds,
    /// `fsopen`/`fsconfig`, layers as path strings (kernel >= 6.8).
    NewWithPaths,
    /// `mount(2)` with an option string.
    Legacy,
}

/// What to mount: lower layers top to bottom, plus the instance's dirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec {
    pub lowers: Vec<Layer>,
    /// Relative to the state root, like every other path here.
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{count} lower layers requested; the kernel stacks at most {MAX_LAYERS}")]
    TooManyLayers { count: usize },
    #[error(
        "cannot open {what} {path} beneath the state root (it must be a real directory, no symlinks): {error}"
    )]
    Open {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{0} already has a mount with other layers; refusing to stack another on it (`left4me instance stop` unmounts it)"
    )]
    ForeignMount(PathBuf),
    #[error(
        "the mount options for this kernel's legacy mount(2) would be {len} bytes, more than the {LEGACY_OPTIONS_MAX} it accepts; use fewer overlays, a shorter state root path, or a kernel >= 6.8"
    )]
    OptionsTooLong { len: usize },
    #[error("path {0} cannot be passed to the kernel: {1}")]
    UnsupportedPath(PathBuf, &'static str),
    #[error("overlayfs refused the mount: {message}")]
    Kernel { message: String },
    #[error("cannot unmount {path}: {error}")]
    Unmount {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read /proc/self/mountinfo: {0}")]
    MountInfo(std::io::Error),
}

fn open_beneath(
    root_fd: &OwnedFd,
    root: &StateRoot,
    relative: &Path,
    what: &'static str,
) -> Result<OwnedFd, MountError> {
    open_beneath::open_beneath(
        root_fd.as_fd(),
        relative,
        OFlags::PATH | OFlags::DIRECTORY,
        0,
    )
    .map_err(|e| MountError::Open {
        what,
        path: root.path().join(relative),
        error: e.into(),
    })
}

/// Descriptors for every directory of a mount, opened safely.
struct OpenedDirs {
    lowers: Vec<OwnedFd>,
    upper: OwnedFd,
    work: OwnedFd,
    target: OwnedFd,
}

fn open_dirs(root: &StateRoot, spec: &OverlaySpec) -> Result<OpenedDirs, MountError> {
    let root_fd = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| MountError::Open {
        what: "state root",
        path: root.path().to_owned(),
        error: e.into(),
    })?;
    let lowers = spec
        .lowers
        .iter()
        .map(|layer| open_beneath(&root_fd, root, &StateRoot::layer_relative(layer), "layer"))
        .collect::<Result<_, _>>()?;
    Ok(OpenedDirs {
        lowers,
        upper: open_beneath(&root_fd, root, &spec.upper, "upper dir")?,
        work: open_beneath(&root_fd, root, &spec.work, "work dir")?,
        target: open_beneath(&root_fd, root, &spec.target, "mount point")?,
    })
}

/// Mounts the overlay. The caller has checked that nothing is mounted at
/// the target (see [`mount_state`]).
pub fn mount(root: &StateRoot, spec: &OverlaySpec, api: MountApi) -> Result<(), MountError> {
    if spec.lowers.len() > MAX_LAYERS {
        return Err(MountError::TooManyLayers {
            count: spec.lowers.len(),
        });
    }
    let dirs = open_dirs(root, spec)?;
    match api {
        MountApi::Legacy => mount_legacy(root, spec),
        MountApi::NewWithFds => mount_new(root, spec, &dirs, true).map_err(Into::into),
        MountApi::NewWithPaths => mount_new(root, spec, &dirs, false).map_err(Into::into),
        MountApi::Auto => match mount_new(root, spec, &dirs, true) {
            Err(NewApiUnsupported::Fds) => match mount_new(root, spec, &dirs, false) {
                Err(NewApiUnsupported::Api) => mount_legacy(root, spec),
                other => other.map_err(Into::into),
            },
            Err(NewApiUnsupported::Api) => mount_legacy(root, spec),
            other => other.map_err(Into::into),
        },
    }
}

/// Why the new API could not be used, separated from real mount errors so
/// `Auto` can fall back without hiding them.
#[derive(Debug)]
enum NewApiUnsupported {
    /// The kernel lacks `fsopen` or `lowerdir+` (before 6.8).
    Api,
    /// The kernel does not take layers as descriptors (before 6.13).
    Fds,
    Failed(MountError),
}

impl From<MountError> for NewApiUnsupported {
    fn from(e: MountError) -> Self {
        Self::Failed(e)
    }
}

impl From<NewApiUnsupported> for MountError {
    fn from(e: NewApiUnsupported) -> Self {
        match e {
            NewApiUnsupported::Api => MountError::Kernel {
                message: "this kernel has no fsopen()/lowerdir+ support (needs 6.8)".into(),
            },
            NewApiUnsupported::Fds => MountError::Kernel {
                message: "this kernel does not take overlay layers as descriptors (needs 6.13)"
                    .into(),
            },
            NewApiUnsupported::Failed(e) => e,
        }
    }
}

/// Reads the messages the kernel queued on an fs context.
fn kernel_messages(fs_fd: &OwnedFd) -> String {
    let mut messages = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs_fd, &mut buf) {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        // Each message is prefixed "e ", "w " or "i " (error/warning/info).
        messages.push(text.get(2..).unwrap_or(&text).trim_end().to_owned());
    }
    messages.join("; ")
}

fn kernel_error(fs_fd: &OwnedFd, step: &str, errno: Errno) -> MountError {
    let text = kernel_messages(fs_fd);
    let io = std::io::Error::from(errno);
    MountError::Kernel {
        message: if text.is_empty() {
            format!("{step}: {io}")
        } else {
            format!("{step}: {text} ({io})")
        },
    }
}

fn mount_new(
    root: &StateRoot,
    spec: &OverlaySpec,
    dirs: &OpenedDirs,
    as_fds: bool,
) -> Result<(), NewApiUnsupported> {
    let fs_fd = match rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(NewApiUnsupported::Api),
        Err(e) => {
            return Err(MountError::Kernel {
                message: format!("fsopen(overlay): {}", std::io::Error::from(e)),
            }
            .into());
        }
    };
    for (i, (layer, fd)) in spec.lowers.iter().zip(&dirs.lowers).enumerate() {
        let result = if as_fds {
            rustix::mount::fsconfig_set_fd(&fs_fd, "lowerdir+", fd.as_fd())
        } else {
            let path = root.layer(layer);
            let value = path
                .to_str()
                .filter(|p| p.len() <= FSCONFIG_STRING_MAX)
                .ok_or(MountError::UnsupportedPath(
                    path.clone(),
                    "longer than 255 bytes or not UTF-8 (fsconfig string limit)",
                ))?;
            rustix::mount::fsconfig_set_string(&fs_fd, "lowerdir+", value)
        };
        match result {
            Ok(()) => {}
            // The first layer tells whether the kernel knows the key/type.
            Err(Errno::INVAL) if i == 0 => {
                let _ = kernel_messages(&fs_fd);
                return Err(if as_fds {
                    NewApiUnsupported::Fds
                } else {
                    NewApiUnsupported::Api
                });
            }
            Err(e) => return Err(kernel_error(&fs_fd, &format!("layer {layer}"), e).into()),
        }
    }
    let set_dir = |key: &str, fd: &OwnedFd, rel: &Path| {
        if as_fds {
            rustix::mount::fsconfig_set_fd(&fs_fd, key, fd.as_fd())
        } else {
            rustix::mount::fsconfig_set_string(&fs_fd, key, root.path().join(rel).as_path())
        }
        .map_err(|e| kernel_error(&fs_fd, key, e))
    };
    set_dir("upperdir", &dirs.upper, &spec.upper)?;
    set_dir("workdir", &dirs.work, &spec.work)?;
    rustix::mount::fsconfig_create(&fs_fd).map_err(|e| kernel_error(&fs_fd, "create", e))?;
    let mnt_fd = rustix::mount::fsmount(
        &fs_fd,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|e| kernel_error(&fs_fd, "fsmount", e))?;
    rustix::mount::move_mount(
        &mnt_fd,
        "",
        &dirs.target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| kernel_error(&fs_fd, "move_mount", e))?;
    // `mnt_fd` is dropped (closed) here; kept open, it would make a later
    // unmount fail with EBUSY.
    Ok(())
}

/// The option string for `mount(2)`.
pub fn legacy_options(root: &StateRoot, spec: &OverlaySpec) -> Result<String, MountError> {
    let check = |path: PathBuf| -> Result<String, MountError> {
        match path.to_str() {
            Some(s) if !s.contains([':', ',', '\\']) => Ok(s.to_owned()),
            _ => Err(MountError::UnsupportedPath(
                path,
                "legacy mount options cannot carry ':', ',', '\\' or non-UTF-8 paths",
            )),
        }
    };
    let lowers = spec
        .lowers
        .iter()
        .map(|l| check(root.layer(l)))
        .collect::<Result<Vec<_>, _>>()?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        check(root.path().join(&spec.upper))?,
        check(root.path().join(&spec.work))?,
    );
    if options.len() > LEGACY_OPTIONS_MAX {
        return Err(MountError::OptionsTooLong { len: options.len() });
    }
    Ok(options)
}

fn mount_legacy(root: &StateRoot, spec: &OverlaySpec) -> Result<(), MountError> {
    let options = legacy_options(root, spec)?;
    let data = CString::new(options).map_err(|_| {
        MountError::UnsupportedPath(root.path().to_owned(), "paths cannot contain NUL bytes")
    })?;
    rustix::mount::mount(
        "overlay",
        root.path().join(&spec.target).as_path(),
        "overlay",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| MountError::Kernel {
        message: format!("mount(2): {}", std::io::Error::from(e)),
    })
}

/// Unmounts `target`. Returns whether something was mounted there.
pub fn unmount(target: &Path) -> Result<bool, MountError> {
    if find_mount(target)?.is_none() {
        return Ok(false);
    }
    rustix::mount::unmount(target, UnmountFlags::NOFOLLOW).map_err(|e| MountError::Unmount {
        path: target.to_owned(),
        error: e.into(),
    })?;
    Ok(true)
}

/// One line of `/proc/self/mountinfo`, the parts we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Super options, split on the commas that separate them and then
    /// unescaped (a comma inside a path is octal-escaped, so splitting
    /// must come first).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// The value of `key=` among the super options.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.super_options
            .iter()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    /// Lower layer paths of an overlay mount, in the kernel's order,
    /// whether it lists them as `lowerdir=a:b` or `lowerdir+=a,lowerdir+=b`.
    pub fn overlay_lowers(&self) -> Vec<PathBuf> {
        let mut lowers = Vec::new();
        for option in &self.super_options {
            if let Some(list) = option.strip_prefix("lowerdir=") {
                lowers.extend(
                    split_unescaped(list, ':')
                        .iter()
                        .map(|l| PathBuf::from(unescape_backslashes(l))),
                );
            } else if let Some(one) = option.strip_prefix("lowerdir+=") {
                lowers.push(PathBuf::from(unescape_backslashes(one)));
            }
        }
        lowers
    }
}

/// Splits on `sep` where not escaped by a backslash (overlayfs escapes
/// ',' and ':' inside layer paths); escapes are kept for the caller.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            parts.last_mut().expect("never empty").push(c);
            if let Some(next) = chars.next() {
                parts.last_mut().expect("never empty").push(next);
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

fn unescape_backslashes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes mountinfo's octal escapes (`\040` for space and so on).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            Some(MountEntry {
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                fs_type: unescape_octal(fs_type),
                super_options: super_options.split(',').map(unescape_octal).collect(),
            })
        })
        .collect()
}

fn mounts() -> Result<Vec<MountEntry>, MountError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(MountError::MountInfo)?;
    Ok(parse_mountinfo(&text))
}

/// The topmost mount at exactly `target`, if any.
pub fn find_mount(target: &Path) -> Result<Option<MountEntry>, MountError> {
    // Later lines are mounted later, so the last match is the visible one.
    Ok(mounts()?
        .into_iter()
        .rfind(|entry| entry.mount_point == target))
}

/// Mount points at or below `dir`.
pub fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, MountError> {
    Ok(mounts()?
        .into_iter()
        .map(|entry| entry.mount_point)
        .filter(|point| point.starts_with(dir))
        .collect())
}

/// What is mounted at an instance's `merged` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountState {
    NotMounted,
    /// An overlay with exactly the expected lower layers.
    Ours,
    /// Anything else: never reuse it, never stack on it.
    Foreign,
}

pub fn mount_state(root: &StateRoot, spec: &OverlaySpec) -> Result<MountState, MountError> {
    let target = root.path().join(&spec.target);
    let Some(entry) = find_mount(&target)? else {
        return Ok(MountState::NotMounted);
    };
    let expected: Vec<PathBuf> = spec.lowers.iter().map(|l| root.layer(l)).collect();
    let upper = root.path().join(&spec.upper);
    if entry.fs_type == "overlay"
        && entry.overlay_lowers() == expected
        && entry.option("upperdir").map(Path::new) == Some(upper.as_path())
    {
        Ok(MountState::Ours)
    } else {
        Ok(MountState::Foreign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_messages_are_read_from_the_fs_context() {
        assert!(
            rustix::process::geteuid().is_root(),
            "fsopen needs root (CI runs tests as root); this test does not skip"
        );
        let fs_fd = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
        let errno = rustix::mount::fsconfig_set_string(&fs_fd, "no_such_option", "1").unwrap_err();
        let err = kernel_error(&fs_fd, "option", errno);
        let text = err.to_string();
        assert!(
            text.contains("no_such_option"),
            "kernel text missing: {text}"
        );
    }

    #[test]
    fn parses_both_mountinfo_layer_styles() {
        let text = "36 35 0:31 / /srv/a\\040b rw,relatime shared:1 - overlay overlay rw,lowerdir=/l/1:/l/a\\:b,upperdir=/u,workdir=/w\n\
                    37 35 0:32 / /srv/c rw - overlay overlay rw,lowerdir+=/l/1,lowerdir+=/l/x\\054y,upperdir=/u\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries[0].mount_point, Path::new("/srv/a b"));
        assert_eq!(
            entries[0].overlay_lowers(),
            [PathBuf::from("/l/1"), PathBuf::from("/l/a:b")]
        );
        assert_eq!(
            entries[1].overlay_lowers(),
            [PathBuf::from("/l/1"), PathBuf::from("/l/x,y")]
        );
        assert_eq!(entries[0].option("upperdir"), Some("/u"));
    }
}
