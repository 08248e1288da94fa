//! Secrets the database keeps but must not give away by itself (TOTP
//! keys): sealed with XChaCha20-Poly1305 under a key kept outside the
//! database. Under systemd the key is the unit's credential
//! `left4me-secrets` (`LoadCredential=`); otherwise `secrets.key` in the
//! state root, mode 0600, made on the first start. A copy of the database
//! alone opens nothing; a copy without the key is no backup of them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The systemd credential's name.
pub const CREDENTIAL: &str = "left4me-secrets";
/// The key's file in the state root when no credential is given.
pub const KEY_FILE: &str = "secrets.key";

#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} holds {len} bytes; a key is {KEY_LEN} random bytes")]
    WrongLength { path: PathBuf, len: usize },
    #[error(
        "{path} may be read by others (mode {mode:o}): run `chmod 600 {path}` (the panel's user must own it)"
    )]
    Readable { path: PathBuf, mode: u32 },
    #[error(
        "the panel runs with systemd credentials but without {0}: add `LoadCredential={CREDENTIAL}:/etc/left4me/secrets.key` to its unit"
    )]
    MissingCredential(PathBuf),
    /// Not sealed under this key, or changed since.
    #[error("a sealed secret does not open with this key (was secrets.key replaced?)")]
    Tampered,
}

/// The key. Its `Debug` shows nothing of it.
pub struct SealingKey(Key);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// The key from systemd's credentials directory when the panel has
    /// one, else from `root/secrets.key` (made when missing).
    pub fn load(root: &Path) -> Result<Self, SealingError> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            // systemd keeps its credentials from others itself (and may
            // grant the service's user a group or ACL read): no mode check.
            // A unit that passes credentials but not this one is a mistake
            // to say, not to paper over with a key the sealed ones do not
            // open with.
            let path = Path::new(&dir).join(CREDENTIAL);
            if !path.exists() {
                return Err(SealingError::MissingCredential(path));
            }
            return Self::read(&path, false);
        }
        let path = root.join(KEY_FILE);
        if !path.exists() {
            make_key_file(&path)?;
        }
        Self::read(&path, true)
    }

    fn read(path: &Path, check_mode: bool) -> Result<Self, SealingError> {
        let io = |error| SealingError::Io {
            path: path.to_owned(),
            error,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if check_mode && mode & 0o077 != 0 {
            return Err(SealingError::Readable {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let key =
            <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| SealingError::WrongLength {
                path: path.to_owned(),
                len: bytes.len(),
            })?;
        Ok(Self(Key::from(key)))
    }

    /// `plain` sealed for `context` (what it belongs to, e.g. the user):
    /// a sealed secret moved to another context does not open.
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .expect("sealing a short secret cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// A keyed hash (HMAC-SHA-256, hex) of `data` for `purpose`: what is
    /// kept of a secret that is only ever compared (recovery codes), so a
    /// copy of the database alone cannot be searched for them.
    pub fn keyed_hash(&self, purpose: &[u8], data: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        type HmacSha256 = hmac::Hmac<sha2::Sha256>;
        // A key of its own per purpose, derived from the sealing key.
        let mut derive =
            <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        derive.update(purpose);
        let subkey = derive.finalize().into_bytes();
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&subkey).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealingError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealingError::Tampered);
        }
        let (nonce, sealed) = sealed.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| SealingError::Tampered)?;
        XChaCha20Poly1305::new(&self.0)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map_err(|_| SealingError::Tampered)
    }
}

/// A new random key, written whole or not at all (temp file, fsync,
/// rename): a crash never leaves a short key behind.
fn make_key_file(path: &Path) -> Result<(), SealingError> {
    let io = |error| SealingError::Io {
        path: path.to_owned(),
        error,
    };
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).expect("the OS random source works");
    let temp = path.with_extension("key.new");
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io)?;
    file.write_all(&key).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_opens_with_its_key_and_context_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealingKey::load(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal(b"user 1", b"totp key");
        assert!(!sealed.windows(8).any(|w| w == b"totp key"));
        assert_eq!(key.open(b"user 1", &sealed).unwrap(), b"totp key");
        assert!(matches!(
            key.open(b"user 2", &sealed),
            Err(SealingError::Tampered)
        ));
        let again = SealingKey::load(dir.path()).unwrap();
        assert_eq!(again.open(b"user 1", &sealed).unwrap(), b"totp key");
        let other = tempfile::tempdir().unwrap();
        let other = SealingKey::load(other.path()).unwrap();
        assert!(other.open(b"user 1", &sealed).is_err());
        let hash = key.keyed_hash(b"codes", b"abcd");
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, again.keyed_hash(b"codes", b"abcd"));
        assert_ne!(hash, other.keyed_hash(b"codes", b"abcd"));
        assert_ne!(hash, key.keyed_hash(b"other", b"abcd"));
    }

    #[test]
    fn a_key_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        SealingKey::load(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = SealingKey::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
