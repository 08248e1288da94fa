//! Atomic replacement of one file: write a temp file next to it, fsync,
//! `renameat` over the target, fsync the directory. Readers (and the game
//! server) see the old contents or the new ones, never a torn file, and a
//! failure at any point removes the temp file again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, OFlags};
use rustix::io::Errno;

use crate::error::FilesError;
use crate::path::RelPath;
use crate::sys;

/// Every temp file name starts with this, so a leftover from a crash is
/// recognisable in a listing.
pub const TEMP_PREFIX: &str = ".left4me-tmp-";

/// Attempts at finding an unused temp name before giving up.
const NAME_ATTEMPTS: usize = 64;

/// A temp file in the target's directory, removed on drop unless
/// committed.
pub(crate) struct TempFile<'d> {
    dir: BorrowedFd<'d>,
    name: String,
    file: File,
    target: &'d RelPath,
    committed: bool,
}

impl<'d> TempFile<'d> {
    /// Creates a fresh temp file in `dir` with `O_EXCL`, so it can never
    /// be an existing file or a link someone planted under that name.
    pub(crate) fn create(dir: BorrowedFd<'d>, target: &'d RelPath) -> Result<Self, FilesError> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        for _ in 0..NAME_ATTEMPTS {
            let name = temp_name();
            match sys::open_beneath(dir, name.as_str(), flags, sys::FILE_MODE) {
                Ok(fd) => {
                    return Ok(Self {
                        dir,
                        name,
                        file: File::from(fd),
                        target,
                        committed: false,
                    });
                }
                Err(Errno::EXIST) => {}
                Err(error) => return Err(FilesError::io(write_context(target), error)),
            }
        }
        Err(FilesError::io(
            write_context(target),
            io::Error::new(io::ErrorKind::AlreadyExists, "no unused temporary name"),
        ))
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the contents durable and moves them to `name` in the same
    /// directory, replacing a regular file of that name whole.
    pub(crate) fn commit(mut self, name: &str) -> Result<(), FilesError> {
        self.file
            .sync_all()
            .map_err(|e| FilesError::io(write_context(self.target), e))?;
        rustix::fs::renameat(self.dir, self.name.as_str(), self.dir, name).map_err(
            |e| match e {
                Errno::ISDIR => FilesError::IsADirectory(self.target.clone()),
                _ => FilesError::io(write_context(self.target), e),
            },
        )?;
        self.committed = true;
        rustix::fs::fsync(self.dir).map_err(|e| FilesError::io(write_context(self.target), e))
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that got us here is the one to report.
            let _ = rustix::fs::unlinkat(self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

fn write_context(target: &RelPath) -> String {
    format!("cannot write \"{target}\"")
}

/// A name unlikely to be taken: process id, a per-process counter and the
/// clock. `O_EXCL` makes a collision harmless; it only costs a retry.
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TEMP_PREFIX}{}-{count}-{nanos:08x}", std::process::id())
}

/// Why a limited copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// More than the limit arrived; nothing beyond the limit was written.
    TooLarge,
    Read(io::Error),
    Write(io::Error),
}

/// Copies until end of input, failing as soon as more than `limit` bytes
/// arrived. The count is of bytes actually read, never a declared size, so
/// a lying upload or a zip bomb stops at the limit.
pub(crate) fn copy_limited(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    limit: u64,
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        total = total.saturating_add(n as u64);
        if total > limit {
            return Err(CopyError::TooLarge);
        }
        let Some(chunk) = buf.get(..n) else {
            return Err(CopyError::Read(io::Error::other(
                "the reader reported more bytes than it was given room for",
            )));
        };
        writer.write_all(chunk).map_err(CopyError::Write)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_stops_past_the_limit() {
        let mut out = Vec::new();
        let copied = copy_limited(&mut &b"12345"[..], &mut out, 5).unwrap();
        assert_eq!((copied, out.as_slice()), (5, &b"12345"[..]));
        let mut out = Vec::new();
        assert!(matches!(
            copy_limited(&mut &b"123456"[..], &mut out, 5),
            Err(CopyError::TooLarge)
        ));
    }

    #[test]
    fn temp_names_differ() {
        assert_ne!(temp_name(), temp_name());
        assert!(temp_name().starts_with(TEMP_PREFIX));
    }
}
