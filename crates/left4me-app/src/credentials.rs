//! Passwords and tokens: hashing, checking, making random ones.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{OpError, OpResult};

/// Hashes with argon2id (default parameters). Slow on purpose: call it on
/// a blocking thread.
pub fn hash_password(password: &str) -> OpResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| OpError::internal("hashing a password", e))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex(&bytes)
}

/// A new one-time setup token, stored (as its hash) in place of any
/// earlier one; refused once a user exists.
pub async fn issue_setup_token(store: &left4me_store::Store) -> left4me_store::Result<String> {
    let token = random_token();
    store.replace_setup_token(&token_hash(&token)).await?;
    Ok(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sessions are stored by the hash of their token, so a copy of the
/// database does not let anyone in.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
