//! Tamper-evident audit trail of a candidate session: a hash chain over the session's stream,
//! signed checkpoints of its head, and a self-contained bundle that an auditor verifies offline,
//! without trusting the database and without a network.
//!
//! Everything here is pure: no I/O, no clock (times are passed in), no randomness (keys come
//! from a 32-byte seed).
//!
//! # What is chained
//!
//! A session's Kafka partition carries its lifecycle events (sequence 1, 2, 3 … from the event
//! store) and its telemetry (client sequence 1, 2, 3 …) interleaved. The chain covers that whole
//! stream **as one consumer sees it in partition order after de-duplication** by
//! (`subject`, `streamkind`, `sequence`): entry 1 is the first record of the session in the
//! partition, entry 2 the next one that is not a duplicate, and so on. Each entry is a
//! [`ChainEntry`]: session id, stream kind, sequence, CloudEvents `type`, `time` and `data` of
//! one [`WireEvent`](crate::wire::WireEvent).
//!
//! # Canonical encoding (version 1)
//!
//! This section is the specification; a verifier in another language reimplements exactly this.
//! `u64be(n)` is `n` as 8 bytes, big-endian. `lp(x)` is `u64be(len(x)) || x` (length in bytes).
//! Text is UTF-8.
//!
//! **Canonical JSON** (`canonical_json`) of a JSON value:
//! * `null`, `true`, `false` as such.
//! * Objects: `{`, members `"key":value` separated by `,`, `}`; members sorted by their key's
//!   **UTF-8 bytes** compared lexicographically (= Unicode code point order; note: *not* the
//!   UTF-16 order of RFC 8785, which differs only for keys mixing U+E000–U+FFFF with
//!   characters above U+FFFF). Keys are unique.
//! * Arrays: `[`, elements in order separated by `,`, `]`.
//! * No whitespace anywhere outside strings.
//! * Strings (keys too): `"` … `"` with minimal escaping, as serde_json writes them: `"` → `\"`,
//!   `\` → `\\`, U+0008 → `\b`, U+000C → `\f`, U+000A → `\n`, U+000D → `\r`, U+0009 → `\t`,
//!   every other code point below U+0020 → `\u00XX` with **lowercase** hex; everything else
//!   (including `/`, U+007F, U+2028, non-ASCII) is written as its raw UTF-8 bytes.
//! * Numbers (the form serde_json 1.0.154 prints; pinned here, not delegated to serde_json,
//!   whose float printer changed within 1.x):
//!   * a number written without `.`, `e` or `E` that fits in i64 (if negative) or u64 is an
//!     *integer* and is printed in plain decimal (`0`, `-7`, `18446744073709551615`), except
//!     `-0`, which is the double -0.0;
//!   * every other number is an IEEE-754 double (the nearest to its decimal text) and is printed from its **shortest round-trip digits** `d1 d2 … dn` (no
//!     trailing zeros; when several are shortest, the closest to the exact value, and of two
//!     equally close the one whose last digit is even — as Ryū chooses) and the
//!     exponent `e` of `d1`, so that `|v| = d1.d2…dn × 10^e`, after a `-` if negative:
//!     * zero: `0.0` (`-0.0`);
//!     * if `-5 <= e <= 15` and `n - 1 <= e` (integral): the digits, `e - n + 1` zeros, `.0`
//!       (`1.0`, `1000000000000000.0`, `123456789.0`);
//!     * else if `0 <= e <= 15`: the first `e + 1` digits, `.`, the rest (`12.34`, `873.25`);
//!     * else if `-5 <= e < 0`: `0.`, `-e - 1` zeros, the digits (`0.1`, `0.00001`, `0.000012`);
//!     * else: `d1`, then `.d2…dn` if `n > 1`, then `e`, the exponent's sign (`+` or `-`, always)
//!       and its absolute value in decimal without leading zeros (`1e+16`, `1.5e-7`,
//!       `1.2345678901234568e+20`, `5e-324`).
//!
//!   Consequently `1` and `1.0` are different canonical forms (an integer and a double), while
//!   `1.0`, `1e0` and `100e-2` are the same one: the canonical form is a function of the parsed
//!   value. serde_json (the version locked in `Cargo.lock`) writes bundles, so their number
//!   tokens are already canonical text (a test checks that it still prints this form). NaN and
//!   infinities cannot occur (JSON has none).
//!
//! **Time**: RFC 3339 in UTC with exactly six fractional digits and `Z`:
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` (years 0000–9999). Times are truncated to the microsecond when
//! an entry is built (what PostgreSQL keeps), and a bundle whose times carry sub-microsecond
//! precision is rejected.
//!
//! **Entry bytes** (`entry_bytes`):
//! ```text
//! lp(session id: 36-char lowercase hyphenated UUID, as in the `subject`)
//! || lp(stream kind: "lifecycle" | "telemetry")
//! || u64be(sequence)
//! || lp(event type: the CloudEvents `type`)
//! || lp(time)
//! || lp(canonical_json(data))
//! ```
//!
//! **Chain** (`Chain`, `chain_hashes`), with SHA-256 over raw bytes (32-byte digests):
//! ```text
//! hash_0 = genesis = SHA-256("clarity-audit-chain/1" || session id (36 ASCII bytes))
//! hash_n = SHA-256(hash_{n-1} || u64be(n) || entry_bytes(entry_n))      for n = 1, 2, …
//! ```
//! The head after `n` entries is `(count = n, hash = lowercase hex of hash_n)`.
//!
//! **Checkpoint bytes** (`Checkpoint::bytes`), signed with Ed25519 (RFC 8032, pure, no prehash):
//! ```text
//! lp("clarity-audit-checkpoint/1") || lp(session id) || u64be(count)
//! || lp(head hash: 64 lowercase hex chars) || lp(signed_at: time as above) || lp(key id)
//! ```
//! `key id` is the first 16 lowercase hex characters of SHA-256(the 32-byte public key).
//! Signatures (64 bytes) and public keys (32 bytes) travel as lowercase hex.
//!
//! **Seals.** A lifecycle event may claim a chain head in its `data`, as the top-level member
//! [`SEAL_FIELD`] = `{"count": <u64>, "hash": "<hex>"}`: "when I was written, the chain of this
//! session had this head". A seal in the entry at 0-based index `i` may only claim a head with
//! `count <= i` (entries before itself). The bundle's `sealed` list repeats every claim, in entry
//! order, as `{at_index, count, hash}`; telemetry (written by the client) cannot seal.
//!
//! # Verification
//!
//! [`verify`] recomputes everything from the entries alone, in this order, and stops at the
//! first failure, which it names ([`VerifyError`]): the bundle's format; the public key and
//! signature encodings (and, with [`verify_with_key`], that the key is the expected one); the
//! checkpoint's session id; then entry by entry: the entry's session id, its canonical time, its
//! sequence (within each stream kind exactly 1, 2, 3 …: a gap, a duplicate or a reordering is
//! named at the first entry where it shows), its hash against the bundle's `hashes`, its seal
//! claim against `sealed` and against the recomputed head; then the length of `hashes`, the
//! checkpoint's count and head against the recomputed chain, the key id, and the signature.
//!
//! # What it proves, and what it doesn't
//!
//! A bundle that verifies proves: the holder of the private key whose public key is in the bundle
//! (with [`verify_with_key`]: the key the auditor trusts) signed, at `signed_at`, a head that
//! commits to exactly these entries, byte for byte (every field above, `data` up to its canonical
//! form), in exactly this order, with no entry missing, added or repeated within the checkpointed
//! prefix. An attacker who edits an event and recomputes every hash must also change the signed
//! head (the signature fails) or leave it (the head fails); one who drops the last events and
//! recomputes fails on the signed count. Seals add checks that are independent of the key when
//! their values were also handed out elsewhere (a receipt, a webhook).
//!
//! A hash chain only tells *that* a recomputed prefix differs, not where: when the attacker also
//! recomputed `hashes`, an edit is only pinned to the entries before the first seal, or the
//! checkpoint, that fails (`VerifyError::within`); without recomputation, and for any change to
//! the numbering (a dropped, duplicated or reordered event), the exact entry is named.
//!
//! # What the callers must do
//!
//! * The consumer keeps a [`Chain`] per session, appends every record of the partition in order
//!   ([`ChainError::AlreadyChained`] = a duplicate: skip it), persists the head and next
//!   sequences with the read model in one transaction, and signs checkpoints (at least at every
//!   terminal or sealed event) with the key from configuration, storing them.
//! * It stores each event's chain position (`count`) and its `data` exactly (a JSON text, not
//!   `jsonb`, which rewrites numbers such as `1e+16`), so the export can rebuild the entries in
//!   chain order and [`Bundle::assemble`] them with the latest stored checkpoint: signing at
//!   export time ([`Bundle::sign_now`]) would vouch for whatever the database then holds.
//!
//! It does **not** prove:
//! * anything if the signing key leaked: whoever holds the seed can sign any history (rotate the
//!   key, publish key ids with validity periods; only seals disclosed elsewhere still constrain);
//! * that the public key in the bundle is Clarity's: use [`verify_with_key`] with a key obtained
//!   out of band;
//! * that events *after* the checkpoint exist or not: only the checkpointed prefix is covered;
//! * that the stream was truthful when it reached Kafka (the chain starts at the consumer: a
//!   compromised API or event store before it, or a client lying about its own telemetry, is
//!   chained faithfully), or that the consumer saw every record — records expired by Kafka
//!   retention before the consumer read them are not in the chain;
//! * anything about fields outside the entry (CloudEvents `id`, `source`, `orgid`, `dataschema`,
//!   Kafka offsets) or about the meaning of `data` beyond its canonical JSON;
//! * when events happened: `time` is the producer's claim (the client's clock for telemetry), and
//!   `signed_at` is the signer's clock.

mod bundle;
mod canonical;
mod chain;
mod checkpoint;
mod verify;

pub use bundle::{Bundle, BundleError, Seal, BUNDLE_FORMAT, SEAL_FIELD};
pub use canonical::{canonical_json, canonical_time, entry_bytes, ChainEntry, EntryError};
pub use chain::{chain_hashes, genesis, Chain, ChainError, ChainHead, CHAIN_DOMAIN};
pub use checkpoint::{
    key_from_seed_hex, key_id, public_key_hex, sign, verifying_key_from_hex, Checkpoint, KeyError,
    CHECKPOINT_DOMAIN,
};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use verify::{verify, verify_with_key, EventRef, Failure, Verified, VerifyError};

#[cfg(test)]
mod tests;
