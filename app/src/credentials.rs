//! Credentials Clarity issues (API keys, session tokens): `<prefix>_<id>_<secret>` strings of
//! which only SHA-256 of the secret is stored. Issued here because members are created outside
//! HTTP too (`clarity org create`); checked by the HTTP layer's authentication.

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A freshly issued credential: the full secret (shown once) and what to store.
pub struct Issued {
    pub id: Uuid,
    pub token: String,
    pub secret_hash: Vec<u8>,
}

/// Issues `<prefix>_<id>_<secret>` with a 256-bit random secret.
pub fn issue(prefix: &str, id: Uuid) -> Issued {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    Issued {
        id,
        token: format!("{prefix}_{}_{secret}", id.simple()),
        secret_hash: hash(&secret),
    }
}

/// What is stored of a secret: its SHA-256.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
