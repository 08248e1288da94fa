//! Commands an admin runs as root on state that belongs to the service
//! user (`sudo left4me user create …` on a packaged install). Run as
//! root, they would leave root-owned files (the database, an
//! installation) that the panel, running as `left4me`, could not write
//! afterwards. So such a command first becomes the owner of the state
//! root: it executes itself again under that user's uid and gid.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Set in the re-executed process, so it never tries again.
const MARKER: &str = "LEFT4ME_AS_STATE_OWNER";

/// When running as root and `root` (the state root) exists and belongs
/// to another user, replaces this process with the same command line run
/// as that user and group (supplementary groups dropped). Otherwise
/// returns and the caller goes on as it is. Returns only an error when
/// the replacement is needed but fails.
pub fn become_state_owner(root: &Path) -> io::Result<()> {
    if !rustix::process::geteuid().is_root() || std::env::var_os(MARKER).is_some() {
        return Ok(());
    }
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| "left4me".into());
    // std drops the supplementary groups when root sets a uid.
    let error = Command::new("/proc/self/exe")
        .arg0(program)
        .args(args)
        .uid(meta.uid())
        .gid(meta.gid())
        .env(MARKER, "1")
        .exec();
    Err(io::Error::new(
        error.kind(),
        format!(
            "running again as the owner of {} (uid {}): {error}",
            root.display(),
            meta.uid()
        ),
    ))
}

/// A system user's uid and gid, from `/etc/passwd` (system users come
/// from sysusers.d, so never from a network directory).
pub fn system_user(name: &str) -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == name).then_some(())?;
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("there is no user {name} (systemd-sysusers creates it)"),
            )
        })
}
