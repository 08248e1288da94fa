//! Safe file operations inside one overlay directory, for the web panel's
//! file manager: list, read, write, upload, create directories, move,
//! delete, and zip/unzip.
//!
//! Threat model: the overlay's contents come from users (uploads, zip
//! archives) and may contain symlinks planted by other tools. The panel
//! must never read or write outside the overlay, never follow a symlink,
//! and never leave a half-written file. Hence:
//!
//! - user paths are validated as text once ([`RelPath`]);
//! - the overlay is opened once as a directory descriptor, and every path
//!   is resolved below it with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`;
//! - changes are `*at` calls on one name inside an opened directory
//!   (`mkdirat` per component, `renameat`, `unlinkat`);
//! - files are replaced atomically (temp file, fsync, rename, fsync dir);
//! - symlinks are listed (as [`EntryKind::Symlink`]) and can be moved or
//!   removed, but are never read, written or descended through.
//!
//! All calls block on the filesystem; from async code run them with
//! `spawn_blocking`. One [`OverlayFiles`] can be shared between threads.
//!
//! ```
//! use left4me_files::{OverlayFiles, RelPath};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let files = OverlayFiles::open(dir.path())?;
//! let cfg = RelPath::parse("cfg/server.cfg")?;
//! files.write(&cfg, b"hostname \"left4me\"\n")?;
//! assert_eq!(files.read(&cfg, 64 * 1024)?, b"hostname \"left4me\"\n");
//!
//! let err = RelPath::parse("../../etc/passwd").unwrap_err();
//! assert_eq!(err.to_string(), "invalid path \"../../etc/passwd\": '..' is not allowed");
//! # Ok(())
//! # }
//! ```

mod archive;
mod atomic;
mod error;
mod overlay;
mod path;
mod sys;

pub use archive::ZipLimits;
pub use atomic::TEMP_PREFIX;
pub use error::FilesError;
pub use overlay::{Entry, EntryKind, MAX_WALK_ENTRIES, OverlayFiles};
pub use path::{MAX_NAME_BYTES, MAX_PATH_BYTES, RelPath};
