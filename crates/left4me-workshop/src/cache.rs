//! The host's Workshop download cache: one file per item revision, shared
//! by every overlay. Layers hard-link these files, so an entry whose link
//! count is 1 belongs to no layer version any more and can go.
//!
//! ```text
//! workshop_cache/
//!   items/ID/REVISION.vpk   a checked download, never written again (0644)
//!   tmp/                    downloads in progress
//!   steamcmd/               steamcmd's scratch install directory
//!   cache.lock              shared by builds, exclusive for clean-up
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use left4me_host::events::Ctx;
use left4me_host::layout::StateRoot;

use crate::api::{ItemDetails, SteamApi, retry};

/// Every Source engine VPK starts with these bytes.
pub const VPK_MAGIC: [u8; 4] = [0x34, 0x12, 0xAA, 0x55];

/// Why an item's file could not be added to the cache.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("item {id}: the download from {url} failed")]
    Http {
        id: u64,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("item {id}: the download from {url} answered {status}")]
    Status {
        id: u64,
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("item {id}: the download ended after {got} of {expected} bytes")]
    Truncated { id: u64, got: u64, expected: u64 },
    #[error("item {id}: the download is {got} bytes, Steam said {expected}")]
    WrongSize { id: u64, got: u64, expected: u64 },
    #[error("item {id}: {what}, not a VPK")]
    NotVpk { id: u64, what: &'static str },
    #[error("item {id}: {action}")]
    Io {
        id: u64,
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

impl DownloadError {
    /// Worth another try: the network, a short body, server trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { .. } | Self::Truncated { .. } => true,
            Self::Status { status, .. } => {
                *status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            Self::WrongSize { .. } | Self::NotVpk { .. } | Self::Io { .. } | Self::Cancelled => {
                false
            }
        }
    }
}

/// The cache below a state root.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(root: &StateRoot) -> Self {
        Self {
            dir: root.workshop_cache(),
        }
    }

    /// Where an item revision's checked file lives.
    pub fn entry(&self, id: u64, revision: u64) -> PathBuf {
        self.dir
            .join("items")
            .join(id.to_string())
            .join(format!("{revision}.vpk"))
    }

    /// The cached file of this revision, if there is one.
    pub fn get(&self, item: &ItemDetails) -> Option<PathBuf> {
        let entry = self.entry(item.id, item.revision());
        entry.is_file().then_some(entry)
    }

    /// The lock builds hold shared while they use entries, so clean-up
    /// never removes a file a build is about to link.
    pub fn lock(&self, exclusive: bool) -> io::Result<File> {
        let file = self.lock_file()?;
        if exclusive {
            file.lock()?;
        } else {
            file.lock_shared()?;
        }
        Ok(file)
    }

    fn lock_file(&self) -> io::Result<File> {
        left4me_host::lock::open_lock_file(&self.dir.join("cache.lock"))
    }

    fn tmp(&self) -> io::Result<PathBuf> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        Ok(tmp)
    }

    /// Downloads the item's file into the cache, retrying network trouble
    /// and short bodies. `progress` gets the bytes received so far (it
    /// goes back to 0 when an attempt starts over).
    pub fn download(
        &self,
        api: &SteamApi,
        item: &ItemDetails,
        url: &str,
        progress: &(dyn Fn(u64) + Sync),
        ctx: &Ctx<'_>,
    ) -> Result<PathBuf, DownloadError> {
        retry(&api.backoff(), ctx, DownloadError::is_transient, || {
            self.download_once(api, item, url, progress, ctx)
        })
    }

    fn download_once(
        &self,
        api: &SteamApi,
        item: &ItemDetails,
        url: &str,
        progress: &(dyn Fn(u64) + Sync),
        ctx: &Ctx<'_>,
    ) -> Result<PathBuf, DownloadError> {
        let id = item.id;
        let io_error = |action: &str| {
            let action = action.to_owned();
            move |source| DownloadError::Io { id, action, source }
        };
        ctx.check().map_err(|_| DownloadError::Cancelled)?;
        // Responses kept between waits need the runtime when dropped.
        let _runtime = api.enter();
        let mut response = api
            .wait(async { api.client().get(url).send().await })
            .map_err(|source| DownloadError::Http {
                id,
                url: url.to_owned(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(DownloadError::Status {
                id,
                url: url.to_owned(),
                status: response.status(),
            });
        }
        let tmp = self
            .tmp()
            .map_err(io_error("creating the cache's tmp directory"))?;
        let mut file =
            tempfile::NamedTempFile::new_in(&tmp).map_err(io_error("creating a temporary file"))?;
        let mut got = 0u64;
        let mut head = Vec::with_capacity(4);
        loop {
            ctx.check().map_err(|_| DownloadError::Cancelled)?;
            let chunk = match api.wait(response.chunk()) {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(_) => {
                    return Err(DownloadError::Truncated {
                        id,
                        got,
                        expected: item.file_size,
                    });
                }
            };
            let n = chunk.len();
            if head.len() < 4 {
                head.extend(chunk.iter().take(4 - head.len()));
                if head.len() == 4 {
                    check_magic(id, &head)?;
                }
            }
            got += n as u64;
            if got > item.file_size {
                return Err(DownloadError::WrongSize {
                    id,
                    got,
                    expected: item.file_size,
                });
            }
            file.write_all(&chunk)
                .map_err(io_error("writing the download"))?;
            progress(got);
        }
        if got < item.file_size {
            return Err(DownloadError::Truncated {
                id,
                got,
                expected: item.file_size,
            });
        }
        check_magic(id, &head)?;
        self.keep(item, file)
    }

    /// Checks a file steamcmd downloaded and copies it into the cache.
    pub fn adopt(&self, item: &ItemDetails, path: &Path) -> Result<PathBuf, DownloadError> {
        let id = item.id;
        let io_error = |action: String| move |source| DownloadError::Io { id, action, source };
        let mut source =
            File::open(path).map_err(io_error(format!("opening {}", path.display())))?;
        let mut head = [0; 4];
        let n = source
            .read(&mut head)
            .map_err(io_error(format!("reading {}", path.display())))?;
        check_magic(id, &head[..n])?;
        let tmp = self
            .tmp()
            .map_err(io_error("creating the cache's tmp directory".into()))?;
        let mut file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(io_error("creating a temporary file".into()))?;
        file.write_all(&head[..n])
            .and_then(|()| io::copy(&mut source, &mut file).map(drop))
            .map_err(io_error("copying steamcmd's download".into()))?;
        self.keep(item, file)
    }

    /// Syncs the checked file and renames it into place, readable by the
    /// game and by nobody writable.
    fn keep(
        &self,
        item: &ItemDetails,
        file: tempfile::NamedTempFile,
    ) -> Result<PathBuf, DownloadError> {
        let id = item.id;
        let io_error = |action: &str| {
            let action = action.to_owned();
            move |source| DownloadError::Io { id, action, source }
        };
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| file.as_file().sync_all())
            .map_err(io_error("syncing the download"))?;
        let entry = self.entry(id, item.revision());
        let dir = entry.parent().expect("entries are in a directory");
        std::fs::create_dir_all(dir).map_err(io_error("creating the item's cache directory"))?;
        file.persist(&entry)
            .map_err(|e| e.error)
            .map_err(io_error("renaming the download into the cache"))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("syncing the cache directory"))?;
        Ok(entry)
    }

    /// Removes entries no layer links any more, and downloads a crash
    /// left behind. Only while no build runs: returns `None` without
    /// waiting when one does. Otherwise the files and bytes removed.
    pub fn remove_unused(&self) -> io::Result<Option<(u64, u64)>> {
        let lock = self.lock_file()?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        left4me_host::fsutil::remove_dir_all_if_exists(&self.dir.join("tmp"))?;
        let (mut files, mut bytes) = (0, 0);
        let items = self.dir.join("items");
        let Ok(entries) = std::fs::read_dir(&items) else {
            return Ok(Some((0, 0)));
        };
        for item in entries {
            let item = item?.path();
            for revision in std::fs::read_dir(&item)? {
                let revision = revision?;
                let meta = revision.metadata()?;
                if meta.nlink() == 1 {
                    std::fs::remove_file(revision.path())?;
                    files += 1;
                    bytes += meta.len();
                }
            }
            // Only succeeds once the item has no revisions left.
            let _ = std::fs::remove_dir(&item);
        }
        Ok(Some((files, bytes)))
    }

    /// Bytes the cache holds.
    pub fn bytes(&self) -> u64 {
        left4me_host::fsutil::disk_usage(&self.dir.join("items"))
    }
}

/// Refuses anything that does not start like a VPK, naming what it looks
/// like when that is obvious (Steam serves the preview image for items
/// kept on its content system).
fn check_magic(id: u64, head: &[u8]) -> Result<(), DownloadError> {
    if head == VPK_MAGIC {
        return Ok(());
    }
    let what = if head.starts_with(b"\x89PNG") || head.starts_with(b"\xFF\xD8\xFF") {
        "Steam sent an image (the item's preview)"
    } else if head.starts_with(b"<") {
        "Steam sent a web page"
    } else if head.len() < 4 {
        "the file is shorter than a VPK header"
    } else {
        "the file does not start with the VPK signature 34 12 AA 55"
    };
    Err(DownloadError::NotVpk { id, what })
}
