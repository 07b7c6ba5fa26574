//! The offline audit bundle verifier (`clarity_domain::audit::verify`).
//!
//! An input that is a bundle's JSON is verified as an auditor would: never a panic, and a bundle
//! that verifies still verifies after a round trip through its JSON form and no longer verifies
//! once any signed or hashed field changes. Any other input drives a generator: a stream of
//! arbitrary entries (arbitrary JSON data, interleaved kinds, seals) signed with a fixed key must
//! verify, agree with the consumer's incremental chain, and fail after any single change.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Duration, Utc};
use clarity_domain::audit::{
    chain_hashes, genesis, key_from_seed_hex, verify, verify_with_key, Bundle, Chain, ChainEntry,
    SigningKey, SEAL_FIELD,
};
use clarity_domain::wire::StreamKind;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use uuid::Uuid;

/// The signing key of the generated bundles (and of the committed seed bundle).
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Bounds that keep one run fast: entries per generated stream, JSON depth and width.
const MAX_ENTRIES: usize = 12;
const MAX_DEPTH: u32 = 3;
const MAX_WIDTH: usize = 4;

fn key() -> SigningKey {
    key_from_seed_hex(SEED).expect("a valid seed")
}

fuzz_target!(|data: &[u8]| {
    match serde_json::from_slice::<Bundle>(data) {
        Ok(bundle) => {
            if let Ok(verified) = verify(&bundle) {
                assert_eq!(verify(&bundle), Ok(verified), "not deterministic");
                survives_json(&bundle);
                // A bundle that verifies from JSON is rare (the seeds, and mutations that keep
                // their meaning): try a spread of every kind of change.
                let changes = changes(&bundle);
                let step = changes.len().div_ceil(64).max(1);
                for change in changes.iter().step_by(step) {
                    is_caught(&bundle, change);
                }
            }
        }
        Err(_) => {
            let mut u = Unstructured::new(data);
            if let Ok(bundle) = generated(&mut u) {
                let verified = verify_with_key(&bundle, &key().verifying_key())
                    .unwrap_or_else(|e| panic!("a freshly signed bundle fails: {e}"));
                let mut chain = Chain::new(bundle.session_id);
                for entry in &bundle.entries {
                    chain.append(entry).expect("the consumer chains the stream");
                }
                assert_eq!(
                    chain.head(),
                    verified.head,
                    "consumer and verifier disagree"
                );
                survives_json(&bundle);
                // The rest of the input picks the changes (each verification decodes the key,
                // which is slow under coverage instrumentation: a few per run).
                let changes = changes(&bundle);
                for _ in 0..3 {
                    match u.choose(&changes) {
                        Ok(change) => is_caught(&bundle, change),
                        Err(_) => break,
                    }
                }
            }
        }
    }
});

/// A verified bundle verifies the same after `to_json` and `from_json` (what an auditor gets).
fn survives_json(bundle: &Bundle) {
    let json = bundle.to_json();
    let back = Bundle::from_json(&json).expect("a bundle's JSON reads back");
    assert_eq!(
        verify(&back),
        verify(bundle),
        "the verdict changed on a JSON round trip: {json}"
    );
}

/// One change to what the chain hashes or the checkpoint signs.
#[derive(Debug, Clone, Copy)]
enum Change {
    Entry(usize, EntryField),
    CheckpointCount,
    CheckpointHead,
    CheckpointKeyId,
    CheckpointTime,
    CheckpointSession,
    Signature(usize),
    PublicKey,
    LastEntryDropped,
}

#[derive(Debug, Clone, Copy)]
enum EntryField {
    Session,
    Kind,
    Sequence,
    Type,
    Time,
    /// The nth scalar (or empty container) of `data`.
    Data(usize),
}

/// Every change worth trying on `bundle`.
fn changes(bundle: &Bundle) -> Vec<Change> {
    use EntryField::*;
    let mut all = Vec::new();
    for (i, entry) in bundle.entries.iter().enumerate() {
        all.extend([Session, Kind, Sequence, Type, Time].map(|f| Change::Entry(i, f)));
        all.extend((0..leaves(&entry.data)).map(|n| Change::Entry(i, Data(n))));
    }
    all.extend([
        Change::CheckpointCount,
        Change::CheckpointHead,
        Change::CheckpointKeyId,
        Change::CheckpointTime,
        Change::CheckpointSession,
        Change::Signature(0),
        Change::Signature(63),
        Change::PublicKey,
    ]);
    if !bundle.entries.is_empty() {
        all.push(Change::LastEntryDropped);
    }
    all
}

/// The bundle with `change` made no longer verifies.
fn is_caught(bundle: &Bundle, change: &Change) {
    let mut changed = bundle.clone();
    match *change {
        Change::Entry(i, field) => {
            let e = &mut changed.entries[i];
            match field {
                EntryField::Session => {
                    e.session_id = Uuid::from_u128(e.session_id.as_u128() ^ 1);
                }
                EntryField::Kind => {
                    e.stream_kind = match e.stream_kind {
                        StreamKind::Lifecycle => StreamKind::Telemetry,
                        StreamKind::Telemetry => StreamKind::Lifecycle,
                    }
                }
                EntryField::Sequence => e.sequence ^= 1,
                EntryField::Type => e.event_type = flip_text(&e.event_type),
                EntryField::Time => {
                    e.time = e
                        .time
                        .checked_add_signed(Duration::microseconds(1))
                        .unwrap_or(e.time - Duration::microseconds(1));
                }
                EntryField::Data(n) => change_leaf(&mut e.data, n),
            }
            assert_ne!(
                changed.entries[i], bundle.entries[i],
                "{change:?} changed nothing"
            );
        }
        Change::CheckpointCount => changed.checkpoint.count ^= 1,
        Change::CheckpointHead => {
            changed.checkpoint.head_hash = flip_text(&changed.checkpoint.head_hash);
        }
        Change::CheckpointKeyId => {
            changed.checkpoint.key_id = flip_text(&changed.checkpoint.key_id);
        }
        Change::CheckpointTime => changed.checkpoint.signed_at += Duration::microseconds(1),
        Change::CheckpointSession => {
            changed.checkpoint.session_id = Uuid::from_u128(bundle.session_id.as_u128() ^ 1);
        }
        Change::Signature(byte) => changed.signature = flip_hex_byte(&bundle.signature, byte),
        Change::PublicKey => changed.public_key = flip_hex_byte(&bundle.public_key, 0),
        Change::LastEntryDropped => {
            changed.entries.pop();
        }
    }
    if let Ok(verified) = verify(&changed) {
        panic!("{change:?}: the changed bundle still verifies: {verified:?}");
    }
}

/// `s` with one character changed (or one added to an empty string).
fn flip_text(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    match chars.first_mut() {
        Some(c) => *c = if *c == 'a' { 'b' } else { 'a' },
        None => chars.push('a'),
    }
    chars.into_iter().collect()
}

/// The hex string with byte `index` of its decoded value flipped, written in lowercase.
fn flip_hex_byte(s: &str, index: usize) -> String {
    let mut bytes = hex_decode(s);
    if let Some(b) = bytes.get_mut(index) {
        *b ^= 0x01;
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

/// How many scalars (and empty containers) `v` holds.
fn leaves(v: &Value) -> usize {
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(leaves).sum(),
        Value::Object(map) if !map.is_empty() => map.values().map(leaves).sum(),
        _ => 1,
    }
}

/// Changes the `target`th leaf of `v` to a different value.
fn change_leaf(v: &mut Value, target: usize) {
    fn walk(v: &mut Value, target: usize, seen: &mut usize) -> bool {
        match v {
            Value::Array(items) if !items.is_empty() => {
                items.iter_mut().any(|item| walk(item, target, seen))
            }
            Value::Object(map) if !map.is_empty() => {
                map.values_mut().any(|item| walk(item, target, seen))
            }
            leaf => {
                if *seen == target {
                    *leaf = different(leaf);
                    return true;
                }
                *seen += 1;
                false
            }
        }
    }
    walk(v, target, &mut 0);
}

fn different(v: &Value) -> Value {
    match v {
        Value::Null => Value::Bool(false),
        Value::Bool(b) => Value::Bool(!b),
        Value::String(s) => Value::String(flip_text(s)),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u ^ 1)
            } else if let Some(i) = n.as_i64() {
                Value::from(i ^ 1)
            } else {
                let f = n.as_f64().expect("a float");
                // Another double: the neighbour away from zero, or toward it at the maximum.
                let other = f64::from_bits(f.to_bits() ^ 1);
                Number::from_f64(other).map_or(Value::Null, Value::Number)
            }
        }
        Value::Array(_) => Value::Array(vec![Value::Null]),
        Value::Object(_) => Value::Object(Map::from_iter([("a".to_string(), Value::Null)])),
    }
}

/// A signed bundle of an arbitrary stream.
fn generated(u: &mut Unstructured<'_>) -> Result<Bundle> {
    let session_id = Uuid::from_u128(u.arbitrary()?);
    let count = u.int_in_range(0..=MAX_ENTRIES)?;
    let mut entries: Vec<ChainEntry> = Vec::with_capacity(count);
    let (mut lifecycle, mut telemetry) = (0u64, 0u64);
    for index in 0..count {
        let kind = if u.arbitrary()? {
            StreamKind::Lifecycle
        } else {
            StreamKind::Telemetry
        };
        let sequence = match kind {
            StreamKind::Lifecycle => {
                lifecycle += 1;
                lifecycle
            }
            StreamKind::Telemetry => {
                telemetry += 1;
                telemetry
            }
        };
        let event_type: String = u.arbitrary()?;
        let time = time(u)?;
        let mut data = json(u, 0)?;
        if let Value::Object(map) = &mut data {
            map.remove(SEAL_FIELD);
            // A lifecycle event may seal a head of the entries before it.
            if kind == StreamKind::Lifecycle && u.ratio(1, 4)? {
                let sealed = u.int_in_range(0..=index)?;
                let hash = match sealed {
                    0 => hex(&genesis(session_id)),
                    n => chain_hashes(session_id, &entries[..n])
                        .pop()
                        .expect("n entries"),
                };
                map.insert(
                    SEAL_FIELD.into(),
                    serde_json::json!({"count": sealed, "hash": hash}),
                );
            }
        }
        entries.push(ChainEntry::new(
            session_id, kind, sequence, event_type, time, data,
        ));
    }
    let signed_at = time(u)?;
    Ok(Bundle::sign_now(session_id, entries, signed_at, &key()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A time a record's `time` can hold (RFC 3339 with an offset reaches just past 0000–9999 UTC),
/// to the microsecond.
fn time(u: &mut Unstructured<'_>) -> Result<DateTime<Utc>> {
    let min = "0000-01-01T00:00:00+23:59"
        .parse::<DateTime<Utc>>()
        .expect("a valid time")
        .timestamp_micros();
    let max = "9999-12-31T23:59:59.999999-23:59"
        .parse::<DateTime<Utc>>()
        .expect("a valid time")
        .timestamp_micros();
    let micros = u.int_in_range(min..=max)?;
    Ok(DateTime::from_timestamp_micros(micros).expect("in range"))
}

/// An arbitrary JSON value of bounded depth and width (any number, any text).
fn json(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth >= MAX_DEPTH { 6 } else { 8 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::String(u.arbitrary()?),
        6 => {
            let n = u.int_in_range(0..=MAX_WIDTH)?;
            Value::Array((0..n).map(|_| json(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=MAX_WIDTH)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(u.arbitrary()?, json(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}
