//! The one error type of this crate. Every message is written for the user
//! of the web panel: it names the path or archive entry and says what is
//! wrong with it, without internal jargon.

use std::fmt;

use crate::path::RelPath;

/// Everything that can go wrong with a file operation in an overlay.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The path text itself is unacceptable (see [`RelPath`]), or the
    /// operation makes no sense for it (e.g. removing the root).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    #[error("\"{0}\" does not exist")]
    NotFound(RelPath),

    #[error("\"{0}\" already exists")]
    AlreadyExists(RelPath),

    #[error("\"{0}\" is not a directory")]
    NotADirectory(RelPath),

    #[error("\"{0}\" is a directory")]
    IsADirectory(RelPath),

    /// A symbolic link was met where a file or directory was needed.
    #[error("\"{0}\" is a symbolic link; links are not followed")]
    Symlink(RelPath),

    /// A device, FIFO or socket: never opened, because opening one can
    /// block or have side effects.
    #[error("\"{0}\" is not a regular file")]
    NotAFile(RelPath),

    #[error("\"{path}\" is larger than the limit of {limit}", limit = ByteSize(*limit))]
    FileTooLarge { path: RelPath, limit: u64 },

    #[error("cannot move \"{from}\" into itself (to \"{to}\")")]
    MoveIntoItself { from: RelPath, to: RelPath },

    /// `walk` (and so `write_zip`) refuses trees beyond this many entries.
    #[error("the overlay has more than {limit} files and directories")]
    TooManyEntries { limit: usize },

    /// One archive entry is unacceptable; the archive was not unpacked.
    #[error("archive entry {name:?} rejected: {reason}")]
    ZipEntryRejected { name: String, reason: String },

    /// The archive as a whole exceeds a [`crate::ZipLimits`] limit.
    #[error("the archive is too large: {reason}")]
    ZipTooLarge { reason: String },

    /// The archive is damaged or uses an unsupported feature, or writing
    /// an archive failed.
    #[error("zip archive: {0}")]
    Zip(String),

    /// Any other I/O failure. The error is part of the message and
    /// deliberately not a `#[source]`, so cause-chain printers do not
    /// repeat it.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
}

impl FilesError {
    /// An [`FilesError::Io`] with a context naming the action and path.
    pub(crate) fn io(context: impl Into<String>, error: impl Into<std::io::Error>) -> Self {
        Self::Io {
            context: context.into(),
            error: error.into(),
        }
    }

    pub(crate) fn invalid(path: &RelPath, reason: impl Into<String>) -> Self {
        Self::InvalidPath {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// Formats a byte count for people: "512 bytes", "10 MiB", "1.5 GiB".
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        let bytes = self.0;
        if bytes < 1024 {
            return write!(f, "{bytes} bytes");
        }
        let mut unit = 0;
        let mut scale: u64 = 1024;
        while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
            unit += 1;
            scale *= 1024;
        }
        let whole = bytes / scale;
        // One decimal, truncated: precise enough for a limit in a message.
        let tenths = (bytes % scale) * 10 / scale;
        if tenths == 0 {
            write!(f, "{whole} {}", UNITS[unit])
        } else {
            write!(f, "{whole}.{tenths} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(ByteSize(0).to_string(), "0 bytes");
        assert_eq!(ByteSize(1023).to_string(), "1023 bytes");
        assert_eq!(ByteSize(1024).to_string(), "1 KiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(10 << 20).to_string(), "10 MiB");
        assert_eq!(ByteSize(4 << 30).to_string(), "4 GiB");
        assert_eq!(ByteSize(u64::MAX).to_string(), "16383.9 PiB");
    }

    #[test]
    fn messages_name_the_path() {
        let err = RelPath::parse("../x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path \"../x\": '..' is not allowed"
        );
        let link = RelPath::parse("cfg/link").unwrap();
        assert_eq!(
            FilesError::Symlink(link).to_string(),
            "\"cfg/link\" is a symbolic link; links are not followed"
        );
        let big = FilesError::FileTooLarge {
            path: RelPath::parse("maps/x.bsp").unwrap(),
            limit: 2 << 30,
        };
        assert_eq!(
            big.to_string(),
            "\"maps/x.bsp\" is larger than the limit of 2 GiB"
        );
    }
}
