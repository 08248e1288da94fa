//! Zip upload and download of an overlay.
//!
//! Unpacking trusts nothing in the archive: every entry name must be a
//! plain relative path, links and special files are refused, and sizes are
//! counted while decompressing (headers can lie). All names are checked,
//! against each other and against what is on disk, before the first file
//! is written, so a malformed archive changes nothing.

use std::collections::HashSet;
use std::io::{self, Read, Seek, Write};

use rustix::fs::FileType;
use zip::read::ZipFileEntry;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::atomic::{CopyError, copy_limited};
use crate::error::{ByteSize, FilesError};
use crate::overlay::{Entry, EntryKind, OverlayFiles};
use crate::path::{self, RelPath};

/// Limits for [`OverlayFiles::unpack_zip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Entries in the archive, directories included.
    pub max_entries: usize,
    /// Bytes written for all files together.
    pub max_total_bytes: u64,
    /// Bytes written for any one file.
    pub max_file_bytes: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_total_bytes: 4 << 30,
            max_file_bytes: 2 << 30,
        }
    }
}

/// The file type bits of a Unix mode, and the types we care about.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// One archive entry that passed every check.
#[derive(Debug)]
struct Planned {
    index: usize,
    /// The name as stored in the archive, for messages.
    name: String,
    /// Where it goes, relative to the overlay root.
    path: RelPath,
    is_dir: bool,
}

impl OverlayFiles {
    /// Unpacks a zip archive below the directory `into` (created if
    /// missing) and returns the number of files written. Each file is
    /// written atomically; existing files of the same name are replaced.
    ///
    /// Every entry is validated before anything is written. Only the size
    /// limits can stop the unpacking halfway, because actual sizes are
    /// known only while decompressing: files unpacked before that point
    /// stay, the one being unpacked is discarded.
    pub fn unpack_zip(
        &self,
        into: &RelPath,
        archive: &mut (impl Read + Seek),
        limits: ZipLimits,
    ) -> Result<usize, FilesError> {
        let mut zip = ZipArchive::new(archive).map_err(|e| FilesError::Zip(e.to_string()))?;
        let plan = plan_unpack(&zip, into, limits)?;
        self.check_targets(into, &plan)?;
        // Created even for an archive of only files, so the upload's
        // target always exists afterwards.
        self.mkdir(into)?;
        self.extract(&mut zip, &plan, limits)
    }

    /// Writes the whole overlay as a zip archive: directories and regular
    /// files, with their modification times. Symlinks and special files
    /// are left out; files that vanish while writing are skipped.
    pub fn write_zip(&self, out: &mut (impl Write + Seek)) -> Result<(), FilesError> {
        let entries = self.walk()?;
        let mut writer = ZipWriter::new(out);
        for entry in &entries {
            match entry.kind {
                EntryKind::Dir => writer
                    .add_directory(entry.path.as_str(), dir_options(entry))
                    .map_err(|e| zip_write_error(entry, &e))?,
                EntryKind::File => self.add_file(&mut writer, entry)?,
                EntryKind::Symlink => {}
            }
        }
        writer
            .finish()
            .map_err(|e| FilesError::Zip(format!("cannot finish the archive: {e}")))?;
        Ok(())
    }

    fn add_file<W: Write + Seek>(
        &self,
        writer: &mut ZipWriter<W>,
        entry: &Entry,
    ) -> Result<(), FilesError> {
        let (mut file, size) = match self.open_file(&entry.path) {
            Ok(opened) => opened,
            // Changed since the walk, or a device/FIFO: not part of the download.
            Err(
                FilesError::NotFound(_)
                | FilesError::NotAFile(_)
                | FilesError::Symlink(_)
                | FilesError::IsADirectory(_)
                | FilesError::NotADirectory(_),
            ) => return Ok(()),
            Err(e) => return Err(e),
        };
        let options = file_options(entry, size);
        writer
            .start_file(entry.path.as_str(), options)
            .map_err(|e| zip_write_error(entry, &e))?;
        io::copy(&mut file, writer).map_err(|e| {
            FilesError::io(format!("cannot add \"{}\" to the archive", entry.path), e)
        })?;
        Ok(())
    }

    /// Compares the planned entries with what is already on disk: a file
    /// may replace a file, a directory may exist already; anything else
    /// (a directory where a file goes, a symlink anywhere) is refused
    /// before writing.
    fn check_targets(&self, into: &RelPath, plan: &[Planned]) -> Result<(), FilesError> {
        match self.probe(into)? {
            None | Some(FileType::Directory) => {}
            Some(FileType::Symlink) => return Err(FilesError::Symlink(into.clone())),
            Some(_) => return Err(FilesError::NotADirectory(into.clone())),
        }
        for entry in plan {
            let path = entry.path.clone();
            match (self.probe(&entry.path)?, entry.is_dir) {
                (None, _) | (Some(FileType::Directory), true) => {}
                (Some(FileType::RegularFile), false) => {}
                (Some(FileType::Symlink), _) => return Err(FilesError::Symlink(path)),
                (Some(FileType::Directory), false) => return Err(FilesError::IsADirectory(path)),
                (Some(_), true) => return Err(FilesError::NotADirectory(path)),
                (Some(_), false) => return Err(FilesError::NotAFile(path)),
            }
        }
        Ok(())
    }

    /// Writes the planned entries, counting decompressed bytes against the
    /// limits.
    fn extract<R: Read + Seek>(
        &self,
        zip: &mut ZipArchive<R>,
        plan: &[Planned],
        limits: ZipLimits,
    ) -> Result<usize, FilesError> {
        let mut remaining_total = limits.max_total_bytes;
        let mut files_written = 0;
        for entry in plan {
            if entry.is_dir {
                self.mkdir(&entry.path)?;
                continue;
            }
            let limit = remaining_total.min(limits.max_file_bytes);
            let mut source = zip
                .by_index(entry.index)
                .map_err(|e| FilesError::Zip(format!("cannot read entry {:?}: {e}", entry.name)))?;
            let written = self.replace_file(&entry.path, |out| {
                copy_limited(&mut source, out, limit)
                    .map_err(|e| extract_error(e, entry, limit, limits))
            })?;
            remaining_total = remaining_total.saturating_sub(written);
            files_written += 1;
        }
        Ok(files_written)
    }
}

/// Validates every entry and returns what to write, in archive order.
fn plan_unpack<R: Read + Seek>(
    zip: &ZipArchive<R>,
    into: &RelPath,
    limits: ZipLimits,
) -> Result<Vec<Planned>, FilesError> {
    if zip.len() > limits.max_entries {
        return Err(FilesError::ZipTooLarge {
            reason: format!("it has more than {} entries", limits.max_entries),
        });
    }
    if zip.has_duplicate_names() {
        return Err(FilesError::Zip(
            "the archive contains the same entry name twice".to_owned(),
        ));
    }
    let mut plan = Vec::with_capacity(zip.len());
    let mut declared_total: u64 = 0;
    for index in 0..zip.len() {
        let entry = zip
            .by_index_data(index)
            .map_err(|e| FilesError::Zip(e.to_string()))?;
        let Some(planned) = plan_entry(index, &entry, into, limits)? else {
            continue;
        };
        if !planned.is_dir {
            declared_total = declared_total.saturating_add(entry.size());
            if declared_total > limits.max_total_bytes {
                return Err(total_too_large(limits));
            }
        }
        plan.push(planned);
    }
    check_conflicts(&plan)?;
    Ok(plan)
}

/// Checks one entry's name, type and declared size. `None` for an entry
/// that names the target directory itself (`./`), which needs no action.
fn plan_entry(
    index: usize,
    entry: &ZipFileEntry<'_>,
    into: &RelPath,
    limits: ZipLimits,
) -> Result<Option<Planned>, FilesError> {
    let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
    let reject = |reason: String| FilesError::ZipEntryRejected {
        name: raw_name.clone(),
        reason,
    };
    let name = entry
        .name()
        .map_err(|_| reject("the name cannot be decoded".to_owned()))?;
    let is_dir = entry_is_dir(&name, entry.unix_mode()).map_err(|r| reject(r.to_owned()))?;
    if entry.encrypted() {
        return Err(reject("encrypted entries are not supported".to_owned()));
    }
    if !is_dir && entry.size() > limits.max_file_bytes {
        return Err(reject(file_limit_reason(limits)));
    }
    let Some(relative) = entry_path(&name, is_dir).map_err(|r| reject(r.to_owned()))? else {
        return Ok(None);
    };
    let path = into
        .join_path(&relative)
        .map_err(|e| reject(invalid_reason(e)))?;
    Ok(Some(Planned {
        index,
        name: raw_name.clone(),
        path,
        is_dir,
    }))
}

/// Whether an entry is a directory; links and special files are refused.
/// A trailing '/' or a directory mode makes a directory.
fn entry_is_dir(name: &str, unix_mode: Option<u32>) -> Result<bool, &'static str> {
    let file_type = unix_mode.map_or(0, |mode| mode & S_IFMT);
    match file_type {
        S_IFLNK => Err("symbolic links are not allowed"),
        S_IFDIR => Ok(true),
        0 | S_IFREG => Ok(name.ends_with('/')),
        _ => Err("special files (devices, FIFOs, sockets) are not allowed"),
    }
}

/// The entry's path relative to the target directory. A single leading
/// "./" is tolerated (some tools write it), and directories carry a
/// trailing '/'; everything else must be a valid [`RelPath`].
fn entry_path(name: &str, is_dir: bool) -> Result<Option<RelPath>, &'static str> {
    let name = name.strip_prefix("./").unwrap_or(name);
    if name.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    let name = if is_dir {
        name.strip_suffix('/').unwrap_or(name)
    } else {
        name
    };
    if has_drive_letter(name) {
        return Err("drive letters are not allowed");
    }
    if name.is_empty() {
        return if is_dir {
            Ok(None)
        } else {
            Err("the entry has no name")
        };
    }
    path::validate(name)?;
    RelPath::parse(name)
        .map(Some)
        .map_err(|_| "the name is not a valid path")
}

/// "C:" or "c:/..." — meaningless on Linux, and a sign of an archive made to
/// escape on Windows.
fn has_drive_letter(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default().as_bytes();
    matches!(first, [letter, b':'] if letter.is_ascii_alphabetic())
}

/// Refuses entries that would collide once unpacked: the same file twice
/// (e.g. "a" and "./a"), or a file where another entry needs a directory.
fn check_conflicts(plan: &[Planned]) -> Result<(), FilesError> {
    let mut dirs: HashSet<&RelPath> = HashSet::new();
    let mut parents: Vec<RelPath> = Vec::new();
    for entry in plan {
        if entry.is_dir {
            dirs.insert(&entry.path);
        }
        parents.extend(entry.path.parent());
    }
    let mut all_parents: HashSet<RelPath> = HashSet::new();
    for parent in parents {
        all_parents.extend(parent.prefixes());
    }
    let mut files: HashSet<&RelPath> = HashSet::new();
    for entry in plan.iter().filter(|e| !e.is_dir) {
        let reject = |reason: &str| FilesError::ZipEntryRejected {
            name: entry.name.clone(),
            reason: reason.to_owned(),
        };
        if !files.insert(&entry.path) {
            return Err(reject("another entry unpacks to the same file"));
        }
        if dirs.contains(&entry.path) || all_parents.contains(&entry.path) {
            return Err(reject("another entry needs a directory of this name"));
        }
    }
    Ok(())
}

fn extract_error(error: CopyError, entry: &Planned, limit: u64, limits: ZipLimits) -> FilesError {
    match error {
        CopyError::TooLarge if limit >= limits.max_file_bytes => FilesError::ZipEntryRejected {
            name: entry.name.clone(),
            reason: file_limit_reason(limits),
        },
        CopyError::TooLarge => total_too_large(limits),
        CopyError::Read(e) => FilesError::Zip(format!("cannot unpack entry {:?}: {e}", entry.name)),
        CopyError::Write(e) => FilesError::io(format!("cannot write \"{}\"", entry.path), e),
    }
}

fn file_limit_reason(limits: ZipLimits) -> String {
    format!(
        "it is larger than the limit of {} per file",
        ByteSize(limits.max_file_bytes)
    )
}

fn total_too_large(limits: ZipLimits) -> FilesError {
    FilesError::ZipTooLarge {
        reason: format!(
            "it unpacks to more than {}",
            ByteSize(limits.max_total_bytes)
        ),
    }
}

/// The reason of a path error, without repeating the path.
fn invalid_reason(error: FilesError) -> String {
    match error {
        FilesError::InvalidPath { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn zip_write_error(entry: &Entry, error: &zip::result::ZipError) -> FilesError {
    FilesError::Zip(format!("cannot add \"{}\": {error}", entry.path))
}

fn dir_options(entry: &Entry) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .unix_permissions(0o755)
        .last_modified_time(zip_time(entry.modified))
}

fn file_options(entry: &Entry, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644)
        .last_modified_time(zip_time(entry.modified))
        .large_file(size >= zip::ZIP64_BYTES_THR)
}

/// Unix seconds as a zip (MS-DOS) timestamp, in UTC. Times the format
/// cannot hold (before 1980, after 2107) become 1980-01-01.
fn zip_time(unix_secs: i64) -> DateTime {
    let days = unix_secs.div_euclid(86_400);
    let seconds_of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (Ok(year), Ok(month), Ok(day)) =
        (u16::try_from(year), u8::try_from(month), u8::try_from(day))
    else {
        return DateTime::default();
    };
    let hour = u8::try_from(seconds_of_day / 3600).unwrap_or(0);
    let minute = u8::try_from(seconds_of_day % 3600 / 60).unwrap_or(0);
    let second = u8::try_from(seconds_of_day % 60).unwrap_or(0);
    DateTime::from_date_and_time(year, month, day, hour, minute, second).unwrap_or_default()
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic
/// Gregorian calendar: shift to years starting in March, so the leap day
/// is the last day of the year, then count 400-year eras.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_conversion() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
    }

    #[test]
    fn zip_times() {
        let t = zip_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!(zip_time(0), DateTime::default());
    }

    #[test]
    fn entry_names() {
        let ok = |name: &str, is_dir| {
            entry_path(name, is_dir)
                .unwrap()
                .map(|p| p.as_str().to_owned())
        };
        assert_eq!(ok("a/b.txt", false).as_deref(), Some("a/b.txt"));
        assert_eq!(ok("./a/b.txt", false).as_deref(), Some("a/b.txt"));
        assert_eq!(ok("maps/", true).as_deref(), Some("maps"));
        assert_eq!(ok("./", true), None);
        for (bad, reason) in [
            ("/abs", "absolute"),
            ("../evil", "'..'"),
            ("a/../../b", "'..'"),
            ("a\\b", "backslash"),
            ("C:/x", "drive letter"),
            ("c:", "drive letter"),
            ("././a", "'.'"),
            ("", "no name"),
            ("a//b", "empty path components"),
        ] {
            let got = entry_path(bad, false).unwrap_err();
            assert!(got.contains(reason), "{bad:?}: {got}");
        }
    }

    #[test]
    fn entry_types() {
        assert_eq!(entry_is_dir("a", None), Ok(false));
        assert_eq!(entry_is_dir("a/", None), Ok(true));
        assert_eq!(entry_is_dir("a", Some(S_IFDIR | 0o755)), Ok(true));
        assert_eq!(entry_is_dir("a", Some(S_IFREG | 0o644)), Ok(false));
        assert!(entry_is_dir("a", Some(S_IFLNK | 0o777)).is_err());
        assert!(entry_is_dir("a", Some(0o010_000)).is_err()); // FIFO
    }
}
