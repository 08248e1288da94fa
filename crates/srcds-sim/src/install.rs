//! Synthetic game installations.
//!
//! A real L4D2 installation is ~15 GB from Steam; tests and demos need a
//! directory that looks like one to left4me (`srcds_linux` and `srcds_run` at
//! the top, the `left4dead2/` game folder) whose programs are the simulator. Filler
//! files give it a realistic file count and size for overlay and disk-usage
//! tests.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files per filler directory: large flat directories are slow to list.
const FILES_PER_DIR: usize = 1000;
/// Filler is written in chunks of this size.
const CHUNK: usize = 1 << 20;
/// The filler byte pattern repeats with this (prime) period.
const PERIOD: usize = 251;

const DEFAULT_SERVER_CFG: &str = "\
// server.cfg of a synthetic installation made by srcds-sim make-installation.
// srcds runs this file on every map load.
hostname \"Left 4 Dead 2 (srcds-sim)\"
// rcon_password \"\"   // RCON is disabled until a password is set
// sv_password \"\"
// exec banned_user.cfg
";

const GAMEINFO: &str = "\"GameInfo\"\n{\n\tgame\t\"Left 4 Dead 2\"\n\
    \ttype\tmultiplayer_only\n\tSteamAppId\t550\n}\n";

/// Creates (or completes) a synthetic installation in `dir`:
///
/// - `srcds_linux` and `srcds_run`: copies of `simulator` (normally the
///   simulator's own executable), mode 0755, which act as the engine and as
///   Valve's script by the name they are run as; `bin/` for the engine's
///   libraries;
/// - `steam_appid.txt` (222860), `left4dead2/gameinfo.txt`;
/// - `left4dead2/cfg/server.cfg` (a commented default), `left4dead2/addons/`,
///   `left4dead2/maps/c1m1_hotel.bsp` (a placeholder);
/// - `files` filler files totalling `bytes` bytes under `left4dead2/filler/`,
///   in subdirectories of at most 1000 files, with deterministic non-zero
///   content.
///
/// Idempotent: files that are already right are left alone (an edited
/// `server.cfg` is kept), and filler left over from a run with other numbers
/// is removed, so the filler always matches the latest call exactly.
pub fn make_installation(dir: &Path, simulator: &Path, files: usize, bytes: u64) -> io::Result<()> {
    if files == 0 && bytes > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "filler bytes need at least one filler file",
        ));
    }
    let game = dir.join("left4dead2");
    for sub in ["cfg", "addons", "maps"] {
        fs::create_dir_all(game.join(sub))?;
    }
    fs::create_dir_all(dir.join("bin"))?;
    for program in ["srcds_linux", "srcds_run"] {
        install_executable(simulator, &dir.join(program))?;
    }
    write_if_missing(&dir.join("steam_appid.txt"), b"222860\n")?;
    write_if_missing(&game.join("gameinfo.txt"), GAMEINFO.as_bytes())?;
    write_if_missing(&game.join("cfg/server.cfg"), DEFAULT_SERVER_CFG.as_bytes())?;
    write_if_missing(&game.join("maps/c1m1_hotel.bsp"), &placeholder_bsp())?;
    make_filler(&game.join("filler"), files, bytes)
}

/// Copies the executable unless an identical copy is already there. The copy
/// goes to a temporary name first and is renamed into place, so a running
/// server is never overwritten in place (that fails with ETXTBSY).
fn install_executable(source: &Path, target: &Path) -> io::Result<()> {
    if let (Ok(a), Ok(b)) = (fs::canonicalize(source), fs::canonicalize(target))
        && a == b
    {
        return Ok(());
    }
    let wanted = fs::read(source)?;
    let same = fs::read(target).is_ok_and(|current| current == wanted);
    if !same {
        let temporary = target.with_file_name(format!(".install.{}.tmp", std::process::id()));
        fs::write(&temporary, &wanted)?;
        fs::set_permissions(&temporary, fs::Permissions::from_mode(0o755))?;
        fs::rename(&temporary, target)?;
    }
    let mode = fs::metadata(target)?.permissions().mode() & 0o7777;
    if mode != 0o755 {
        fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn write_if_missing(path: &Path, contents: &[u8]) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::write(path, contents),
        Err(e) => Err(e),
    }
}

/// A few bytes with a BSP header (`VBSP`, version 21 as L4D2 uses), enough
/// for anything that only checks that the map file exists.
fn placeholder_bsp() -> Vec<u8> {
    let mut bsp = b"VBSP".to_vec();
    bsp.extend_from_slice(&21i32.to_le_bytes());
    bsp.resize(1024, 0);
    bsp
}

fn filler_dir_name(index: usize) -> String {
    format!("d{:04}", index / FILES_PER_DIR)
}

fn filler_file_name(index: usize) -> String {
    format!("f{index:07}.bin")
}

/// The size of filler file `index`: the bytes spread evenly, the remainder
/// on the first files.
fn filler_size(index: usize, files: usize, bytes: u64) -> u64 {
    let files = files as u64;
    let index = index as u64;
    bytes / files + u64::from(index < bytes % files)
}

fn make_filler(root: &Path, files: usize, bytes: u64) -> io::Result<()> {
    remove_stale_filler(root, files)?;
    if files == 0 {
        return Ok(());
    }
    let pattern: Vec<u8> = (0..CHUNK + PERIOD)
        .map(|i| (i % PERIOD) as u8 + 1)
        .collect();
    for index in 0..files {
        let dir = root.join(filler_dir_name(index));
        if index % FILES_PER_DIR == 0 {
            fs::create_dir_all(&dir)?;
        }
        let path = dir.join(filler_file_name(index));
        let size = filler_size(index, files, bytes);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size) {
            continue;
        }
        write_filler(&path, size, &pattern[index % PERIOD..])?;
    }
    Ok(())
}

fn write_filler(path: &Path, size: u64, pattern: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    let mut remaining = size;
    while remaining > 0 {
        let n = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        file.write_all(&pattern[..n])?;
        remaining -= n as u64;
    }
    Ok(())
}

/// Removes filler entries that a layout of `files` files would not contain.
fn remove_stale_filler(root: &Path, files: usize) -> io::Result<()> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let dirs = files.div_ceil(FILES_PER_DIR);
    let wanted_dirs: Vec<String> = (0..dirs)
        .map(|d| filler_dir_name(d * FILES_PER_DIR))
        .collect();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(dir_index) = wanted_dirs.iter().position(|w| *w == name) else {
            remove_any(&path)?;
            continue;
        };
        if !entry.file_type()?.is_dir() {
            remove_any(&path)?;
            continue;
        }
        let first = dir_index * FILES_PER_DIR;
        let last = files.min(first + FILES_PER_DIR);
        for file in fs::read_dir(&path)? {
            let file = file?;
            let file_name = file.file_name().to_string_lossy().into_owned();
            let wanted = parse_filler_index(&file_name).is_some_and(|i| (first..last).contains(&i))
                && file.file_type()?.is_file();
            if !wanted {
                remove_any(&file.path())?;
            }
        }
    }
    Ok(())
}

fn parse_filler_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix('f')?.strip_suffix(".bin")?;
    let index: usize = digits.parse().ok()?;
    // Only the canonical spelling counts (not "f1.bin" for "f0000001.bin").
    (filler_file_name(index) == name).then_some(index)
}

fn remove_any(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up() {
        let total: u64 = (0..7).map(|i| filler_size(i, 7, 100)).sum();
        assert_eq!(total, 100);
        assert_eq!(filler_size(0, 7, 100), 15);
        assert_eq!(filler_size(6, 7, 100), 14);
    }

    #[test]
    fn filler_names() {
        assert_eq!(filler_dir_name(1999), "d0001");
        assert_eq!(parse_filler_index("f0000042.bin"), Some(42));
        assert_eq!(parse_filler_index("f42.bin"), None);
        assert_eq!(parse_filler_index("server.cfg"), None);
    }
}
