//! Signed checkpoints of a chain head, and the Ed25519 keys that sign them.

use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::canonical::{canonical_time, canonical_time_serde, put_field, put_u64};
use super::chain::ChainHead;

/// Domain-separation prefix of the checkpoint bytes; names the checkpoint format version.
pub const CHECKPOINT_DOMAIN: &str = "clarity-audit-checkpoint/1";

/// A claim "session `session_id`'s chain had `count` entries and head `head_hash`", made at
/// `signed_at` by key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub session_id: Uuid,
    pub count: u64,
    /// Lowercase hex.
    pub head_hash: String,
    #[serde(with = "canonical_time_serde")]
    pub signed_at: DateTime<Utc>,
    /// First 16 hex characters of SHA-256(public key).
    pub key_id: String,
}

impl Checkpoint {
    /// A checkpoint of `head` to be signed by `key` (`signed_at` truncated to the microsecond).
    pub fn new(
        session_id: Uuid,
        head: &ChainHead,
        signed_at: DateTime<Utc>,
        key: &VerifyingKey,
    ) -> Self {
        Self {
            session_id,
            count: head.count,
            head_hash: head.hash.clone(),
            signed_at: signed_at.trunc_subsecs(6),
            key_id: key_id(key),
        }
    }

    /// The signed bytes (see the module doc).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        put_field(&mut out, CHECKPOINT_DOMAIN.as_bytes());
        put_field(
            &mut out,
            self.session_id.hyphenated().to_string().as_bytes(),
        );
        put_u64(&mut out, self.count);
        put_field(&mut out, self.head_hash.as_bytes());
        put_field(&mut out, canonical_time(&self.signed_at).as_bytes());
        put_field(&mut out, self.key_id.as_bytes());
        out
    }
}

/// A key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing key seed is 64 hex characters (32 bytes)")]
    MalformedSeed,
    #[error("a public key is 64 hex characters (32 bytes)")]
    MalformedPublicKey,
    #[error("the public key is not a valid Ed25519 point")]
    InvalidPublicKey,
}

/// The signing key of a 32-byte seed written as 64 hex characters (surrounding whitespace
/// ignored), e.g. from configuration.
pub fn key_from_seed_hex(seed_hex: &str) -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(seed_hex.trim(), &mut seed).map_err(|_| KeyError::MalformedSeed)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Lowercase hex of the 32-byte public key.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().as_bytes())
}

/// A public key from its hex form.
pub fn verifying_key_from_hex(public_key_hex: &str) -> Result<VerifyingKey, KeyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(public_key_hex, &mut bytes).map_err(|_| KeyError::MalformedPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)
}

/// First 16 lowercase hex characters of SHA-256(the 32-byte public key).
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// The Ed25519 signature of the checkpoint's bytes, as 128 lowercase hex characters.
pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> String {
    hex::encode(key.sign(&checkpoint.bytes()).to_bytes())
}

/// Whether `signature_hex` is `key`'s signature of the checkpoint (strict RFC 8032 checks:
/// no small-order keys, canonical `s`). `None` when the signature is not 64 bytes of hex.
pub(crate) fn signature_valid(
    checkpoint: &Checkpoint,
    signature_hex: &str,
    key: &VerifyingKey,
) -> Option<bool> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(signature_hex, &mut bytes).ok()?;
    let signature = Signature::from_bytes(&bytes);
    Some(key.verify_strict(&checkpoint.bytes(), &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    #[test]
    fn a_seed_gives_the_rfc_8032_public_key() {
        // Arrange: RFC 8032 section 7.1, test 1.
        let key = key_from_seed_hex(&format!("  {SEED}\n")).unwrap();

        // Act
        let public = public_key_hex(&key);

        // Assert
        assert_eq!(
            public,
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(key_id(&key.verifying_key()).len(), 16);
        assert_eq!(
            verifying_key_from_hex(&public).unwrap(),
            key.verifying_key()
        );
    }

    #[test]
    fn malformed_seeds_and_public_keys_are_refused() {
        // Arrange / Act / Assert
        assert_eq!(
            key_from_seed_hex("abcd").unwrap_err(),
            KeyError::MalformedSeed
        );
        assert_eq!(
            key_from_seed_hex(&"zz".repeat(32)).unwrap_err(),
            KeyError::MalformedSeed
        );
        assert_eq!(
            verifying_key_from_hex("00").unwrap_err(),
            KeyError::MalformedPublicKey
        );
    }

    #[test]
    fn a_signature_verifies_only_for_the_exact_checkpoint() {
        // Arrange
        let key = key_from_seed_hex(SEED).unwrap();
        let head = ChainHead {
            count: 3,
            hash: "ab".repeat(32),
        };
        let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let checkpoint = Checkpoint::new(Uuid::from_u128(9), &head, at, &key.verifying_key());

        // Act
        let signature = sign(&checkpoint, &key);

        // Assert
        assert_eq!(
            signature_valid(&checkpoint, &signature, &key.verifying_key()),
            Some(true)
        );
        let mut later = checkpoint.clone();
        later.count = 4;
        assert_eq!(
            signature_valid(&later, &signature, &key.verifying_key()),
            Some(false)
        );
        assert_eq!(
            signature_valid(&checkpoint, "00", &key.verifying_key()),
            None
        );
    }
}
