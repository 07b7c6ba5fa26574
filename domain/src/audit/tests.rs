//! End-to-end tests of the audit trail: a realistic session stream, its bundle, and attackers.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::bundle::seals_of;
use super::*;
use crate::wire::StreamKind;

const SEED: &str = "4c1a0e7d92b35f68a1c0de4f3b2a19870f6e5d4c3b2a19080706050403020100";
const OTHER_SEED: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn session() -> Uuid {
    "0195f3a2-7c1e-7b2a-9c3d-4e5f60718293".parse().unwrap()
}

fn t0() -> DateTime<Utc> {
    "2026-03-01T09:00:00Z".parse().unwrap()
}

fn signed_at() -> DateTime<Utc> {
    "2026-03-01T11:00:00.250000Z".parse().unwrap()
}

/// Builds a stream the way the consumer does: appending to a [`Chain`], sealing heads into
/// lifecycle events.
struct Stream {
    chain: Chain,
    entries: Vec<ChainEntry>,
    ms: i64,
}

impl Stream {
    fn new() -> Self {
        Self {
            chain: Chain::new(session()),
            entries: Vec::new(),
            ms: 0,
        }
    }

    fn push(&mut self, kind: StreamKind, event_type: &str, data: Value) {
        self.ms += 1_357;
        let sequence = match kind {
            StreamKind::Lifecycle => self.chain.next_lifecycle(),
            StreamKind::Telemetry => self.chain.next_telemetry(),
        };
        let entry = ChainEntry::new(
            session(),
            kind,
            sequence,
            event_type,
            t0() + Duration::microseconds(self.ms * 1000 + 17),
            data,
        );
        self.chain.append(&entry).unwrap();
        self.entries.push(entry);
    }

    fn lifecycle(&mut self, name: &str, data: Value) {
        self.push(
            StreamKind::Lifecycle,
            &format!("clarity.CandidateSession.{name}.v1"),
            data,
        );
    }

    /// A lifecycle event that seals the head before it.
    fn sealed(&mut self, name: &str, mut data: Value) {
        let head = self.chain.head();
        data[SEAL_FIELD] = json!({"count": head.count, "hash": head.hash});
        self.lifecycle(name, data);
    }

    fn telemetry(&mut self, kind: &str, data: Value) {
        let mut data = data;
        data["type"] = json!(kind);
        self.push(
            StreamKind::Telemetry,
            &format!("clarity.Telemetry.{kind}.v1"),
            data,
        );
    }
}

/// A realistic session: invitation, consent, start, interleaved telemetry (nested objects,
/// unicode, floats), a sealed submission and a sealed integrity analysis.
fn realistic() -> Stream {
    let mut s = Stream::new();
    s.lifecycle(
        "CandidateInvited",
        json!({
            "session_id": session(),
            "org_id": "0195f3a2-0000-7000-8000-000000000001",
            "candidate": {"name": "Zoë Ångström-Nakamura 中村", "email": "zoe@example.com", "external_ref": null},
            "assessment": {"assessment_id": "0195f3a2-0000-7000-8000-000000000002", "version": 3,
                           "title": "Rate limiter — \"token bucket\"", "format": "take_home",
                           "time_limit_minutes": 90, "spec_digest": "9f86d081884c7d659a2feaa0c55ad015"},
            "invite_expires_at": "2026-03-08T09:00:00Z",
            "invited_by": "0195f3a2-0000-7000-8000-000000000003",
            "at": "2026-03-01T09:00:00Z"
        }),
    );
    s.lifecycle(
        "ConsentRecorded",
        json!({"notice_version": "2026-01", "scopes": {"keystroke_dynamics": true, "face_continuity": false}, "at": "2026-03-01T09:01:00Z"}),
    );
    s.lifecycle(
        "SessionStarted",
        json!({"started_at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z"}),
    );
    s.telemetry(
        "file_created",
        json!({"file": "src/lib.rs", "content": "// héllo, 世界 🌍\nfn main() {\n\tprintln!(\"hi\\n\");\n}\n"}),
    );
    for k in 0..4 {
        s.telemetry(
            "keystroke",
            json!({"down_ms": 1234.5 + f64::from(k) * 87.25, "up_ms": 1301.125 + f64::from(k) * 91.0, "key_class": "letter"}),
        );
    }
    s.telemetry(
        "edit",
        json!({"file": "src/lib.rs", "position": 42, "deleted": 0, "inserted": "naïve → ✓ 𝔘", "origin": "typed"}),
    );
    s.lifecycle(
        "DeadlineExtended",
        json!({"deadline": "2026-03-01T10:47:00Z", "minutes": 15, "reason": "accommodation"}),
    );
    s.telemetry("focus_lost", json!({}));
    s.telemetry("focus_regained", json!({}));
    s.telemetry(
        "cursor",
        json!({"file": "src/lib.rs", "position": 57, "selection_end": null}),
    );
    s.telemetry(
        "code_run",
        json!({"command": "cargo test", "exit_code": 101, "tests_passed": 3, "tests_failed": 1,
               "duration_ms": 1532.75, "env": {"toolchain": "1.85", "flags": ["--quiet", "-j2"]}}),
    );
    s.telemetry(
        "face_check",
        json!({"similarity": 0.873, "model": {"id": "arcface-lite", "version": "1.2"}, "face_count": 1, "quality": 9.1e-6}),
    );
    s.telemetry(
        "edit",
        json!({"file": "src/lib.rs", "position": 60, "deleted": 3, "inserted": "", "origin": "paste"}),
    );
    s.sealed(
        "SessionSubmitted",
        json!({"files_digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "file_count": 2, "time_used_seconds": 2712, "at": "2026-03-01T09:47:12Z"}),
    );
    s.sealed(
        "IntegrityAnalysed",
        json!({"suite_version": "2", "tier": "review",
               "reasons": ["paste burst", "tab-away 3×"],
               "reports": [{"detector": "paste", "version": 1,
                            "measured": {"paste_share": 0.35, "threshold": 0.25},
                            "findings": [{"rule": "paste_share", "evidence": [{"from_seq": 13, "to_seq": 13}]}]}]}),
    );
    s
}

fn key() -> SigningKey {
    key_from_seed_hex(SEED).unwrap()
}

/// The bundle as the export will make it: the consumer's chain head, signed as it went by.
fn bundle_of(stream: &Stream) -> Bundle {
    let key = key();
    let checkpoint = Checkpoint::new(
        session(),
        &stream.chain.head(),
        signed_at(),
        &key.verifying_key(),
    );
    let signature = sign(&checkpoint, &key);
    Bundle::assemble(
        stream.entries.clone(),
        checkpoint,
        signature,
        public_key_hex(&key),
    )
    .unwrap()
}

/// How far an attacker (without the key) goes after editing the entries.
#[derive(Debug, Clone, Copy)]
enum Attacker {
    /// Edits entries, leaves everything else.
    Naive,
    /// Also recomputes `hashes` and `sealed`.
    Recomputes,
    /// Also rewrites the checkpoint's count and head (keeping the old signature).
    RewritesCheckpoint,
}

const ATTACKERS: [Attacker; 3] = [
    Attacker::Naive,
    Attacker::Recomputes,
    Attacker::RewritesCheckpoint,
];

fn tamper(original: &Bundle, entries: Vec<ChainEntry>, attacker: Attacker) -> Bundle {
    let mut bundle = original.clone();
    if !matches!(attacker, Attacker::Naive) {
        bundle.hashes = chain_hashes(bundle.session_id, &entries);
        bundle.sealed = seals_of(&entries);
    }
    if matches!(attacker, Attacker::RewritesCheckpoint) {
        bundle.checkpoint.count = entries.len() as u64;
        bundle.checkpoint.head_hash = bundle.hashes.last().cloned().unwrap_or_default();
    }
    bundle.entries = entries;
    bundle
}

/// Every way to change one scalar of a JSON value: each string at its first, middle and last
/// character, each number (integers by one, floats by one ulp), each boolean and null.
fn scalar_mutations(data: &Value) -> Vec<Value> {
    fn leaves(v: &Value, count: &mut usize) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| leaves(x, count)),
            Value::Object(o) => o.values().for_each(|x| leaves(x, count)),
            _ => *count += 1,
        }
    }
    fn edit(v: &mut Value, target: usize, seen: &mut usize, variant: usize) -> bool {
        match v {
            Value::Array(a) => a.iter_mut().any(|x| edit(x, target, seen, variant)),
            Value::Object(o) => o.values_mut().any(|x| edit(x, target, seen, variant)),
            leaf => {
                *seen += 1;
                if *seen - 1 != target {
                    return false;
                }
                *leaf = match leaf.take() {
                    Value::String(s) => {
                        let chars: Vec<char> = s.chars().collect();
                        if chars.is_empty() {
                            if variant > 0 {
                                return false;
                            }
                            json!("x")
                        } else {
                            let pos = [0, chars.len() / 2, chars.len() - 1][variant];
                            let mut chars = chars;
                            chars[pos] = if chars[pos] == 'a' { 'b' } else { 'a' };
                            json!(chars.into_iter().collect::<String>())
                        }
                    }
                    _ if variant > 0 => return false,
                    Value::Number(n) if n.is_u64() => json!(n.as_u64().unwrap() + 1),
                    Value::Number(n) if n.is_i64() => json!(n.as_i64().unwrap() + 1),
                    Value::Number(n) => json!(f64::from_bits(n.as_f64().unwrap().to_bits() + 1)),
                    Value::Bool(b) => json!(!b),
                    Value::Null => json!(0),
                    _ => unreachable!(),
                };
                true
            }
        }
    }
    let mut count = 0;
    leaves(data, &mut count);
    let mut out = Vec::new();
    for target in 0..count {
        for variant in 0..3 {
            let mut copy = data.clone();
            if edit(&mut copy, target, &mut 0, variant) && copy != *data {
                out.push(copy);
            }
        }
    }
    out
}

fn assert_named(err: &VerifyError, index: usize, entry: &ChainEntry) {
    assert_eq!(err.index, Some(index as u64), "{err}");
    let event = err.event.as_ref().expect("the event is named");
    assert_eq!(event.stream_kind, entry.stream_kind, "{err}");
    assert_eq!(event.sequence, entry.sequence, "{err}");
    assert_eq!(event.event_type, entry.event_type, "{err}");
}

/// Whether the numbering names `entry` as the missing one.
fn names_missing(err: &VerifyError, entry: &ChainEntry) -> bool {
    err.failure
        == Failure::SequenceGap {
            expected: entry.sequence,
        }
        && err.event.as_ref().unwrap().stream_kind == entry.stream_kind
}

/// With the hashes recomputed, an edit is pinned to a range; once the checkpoint is rewritten
/// too, the signature is what fails (unless a seal or the numbering already caught it).
fn assert_caught(err: &VerifyError, index: usize, attacker: Attacker) {
    let pinned = err.points_at(index as u64);
    match attacker {
        Attacker::Naive | Attacker::Recomputes => assert!(pinned, "{attacker:?}: {err}"),
        Attacker::RewritesCheckpoint => assert!(
            pinned || err.failure == Failure::BadSignature,
            "{attacker:?}: {err}"
        ),
    }
}

#[test]
fn a_bundle_of_a_realistic_interleaved_stream_verifies() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);

    // Act
    let verified = verify_with_key(&bundle, &key().verifying_key()).unwrap();

    // Assert
    assert_eq!(verified.head, stream.chain.head());
    assert_eq!(verified.lifecycle_events, 6);
    assert_eq!(verified.telemetry_events, 12);
    assert_eq!(verified.seals, 2);
    assert!(verified.key_trusted);
    assert_eq!(verified.signed_at, signed_at());
    assert_eq!(bundle.sealed[0].at_index, 16);
    assert_eq!(bundle.sealed[0].count, 16);
    assert_eq!(bundle.sealed[1].at_index, 17);
    assert_eq!(bundle.sealed[1].count, 17);
}

#[test]
fn a_bundle_survives_its_json_form_and_matches_one_signed_at_export() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);

    // Act
    let json = bundle.to_json();
    let read = Bundle::from_json(&json).unwrap();
    let at_export = Bundle::sign_now(session(), stream.entries.clone(), signed_at(), &key());

    // Assert
    assert_eq!(read, bundle);
    assert!(verify(&read).is_ok());
    assert_eq!(at_export, bundle);
    let raw: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(raw["format"], "clarity-audit-bundle/1");
    assert_eq!(raw["entries"][3]["time"], "2026-03-01T09:00:05.428017Z");
    assert_eq!(
        raw["checkpoint"]["signed_at"],
        "2026-03-01T11:00:00.250000Z"
    );
}

#[test]
fn a_bundle_with_doubles_of_seventeen_digits_still_verifies_after_its_json_round_trip() {
    // Arrange: found by fuzzing (fuzz/fuzz_targets/audit_bundle.rs). serde_json's default
    // float parser is not correctly rounded: `9474732.860096985` (a `performance.now()`-like
    // key time) read back as `…984`, so a bundle holding it no longer verified once written
    // and read (the export and the auditor each read a JSON text).
    let mut stream = Stream::new();
    stream.lifecycle("SessionStarted", json!({"at": "2026-03-01T09:00:00Z"}));
    for down_ms in [
        9474732.860096985,
        1.177990997777467e-47,
        -2.8670328658502655e262,
    ] {
        stream.telemetry(
            "keystroke",
            json!({"down_ms": down_ms, "key_class": "letter", "type": "keystroke"}),
        );
    }
    let bundle = bundle_of(&stream);

    // Act
    let read = Bundle::from_json(&bundle.to_json()).unwrap();

    // Assert
    assert_eq!(read, bundle);
    assert_eq!(verify(&read), verify(&bundle));
    assert!(verify(&read).is_ok());
}

#[test]
fn changing_any_scalar_of_any_entrys_data_is_caught_and_pinned_to_that_entry() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut tried = 0;

    for (i, entry) in stream.entries.iter().enumerate() {
        for data in scalar_mutations(&entry.data) {
            for attacker in ATTACKERS {
                let mut entries = stream.entries.clone();
                entries[i].data = data.clone();

                // Act
                let err = verify(&tamper(&bundle, entries, attacker)).unwrap_err();

                // Assert
                if matches!(attacker, Attacker::Naive) {
                    assert_named(&err, i, entry);
                    assert!(matches!(err.failure, Failure::HashMismatch { .. }), "{err}");
                }
                assert_caught(&err, i, attacker);
                tried += 1;
            }
        }
    }
    assert!(tried > 300, "{tried} mutations");
}

#[test]
fn changing_the_type_time_sequence_kind_or_session_of_any_entry_is_caught() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let edits: [fn(&mut ChainEntry); 5] = [
        |e| e.event_type.push('x'),
        |e| e.time += Duration::microseconds(1),
        |e| e.sequence += 1,
        |e| {
            e.stream_kind = match e.stream_kind {
                StreamKind::Lifecycle => StreamKind::Telemetry,
                StreamKind::Telemetry => StreamKind::Lifecycle,
            }
        },
        |e| e.session_id = Uuid::from_u128(1),
    ];

    for (i, entry) in stream.entries.iter().enumerate() {
        for edit in edits {
            for attacker in ATTACKERS {
                let mut entries = stream.entries.clone();
                edit(&mut entries[i]);

                // Act
                let err = verify(&tamper(&bundle, entries, attacker)).unwrap_err();

                // Assert: the entry itself is named, or (its kind or number changed) the
                // numbering names the (kind, sequence) that went missing.
                if matches!(attacker, Attacker::Naive) {
                    assert_eq!(err.index, Some(i as u64), "{err}");
                }
                if !names_missing(&err, entry) {
                    assert_caught(&err, i, attacker);
                }
            }
        }
    }
}

#[test]
fn reordering_any_two_adjacent_entries_is_caught_at_the_first_of_them() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);

    for i in 0..stream.entries.len() - 1 {
        for attacker in ATTACKERS {
            let mut entries = stream.entries.clone();
            entries.swap(i, i + 1);

            // Act
            let err = verify(&tamper(&bundle, entries, attacker)).unwrap_err();

            // Assert
            if stream.entries[i].stream_kind == stream.entries[i + 1].stream_kind {
                // The numbering shows it, whatever the attacker recomputed.
                assert_named(&err, i, &stream.entries[i + 1]);
                assert_eq!(
                    err.failure,
                    Failure::SequenceGap {
                        expected: stream.entries[i].sequence
                    }
                );
            } else if matches!(attacker, Attacker::Naive) {
                assert_named(&err, i, &stream.entries[i + 1]);
            }
            assert_caught(&err, i, attacker);
        }
    }
}

#[test]
fn dropping_any_one_entry_is_caught_and_the_missing_event_named() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);

    for (i, dropped) in stream.entries.iter().enumerate() {
        for attacker in ATTACKERS {
            let mut entries = stream.entries.clone();
            entries.remove(i);

            // Act
            let err = verify(&tamper(&bundle, entries, attacker)).unwrap_err();

            // Assert: a gap names the missing (kind, sequence) exactly; otherwise the position.
            let gap_names_it = names_missing(&err, dropped);
            match attacker {
                Attacker::Naive => assert_eq!(err.index, Some(i as u64), "{err}"),
                _ => assert!(
                    gap_names_it || err.points_at(i as u64) || err.failure == Failure::BadSignature,
                    "{attacker:?} dropping {i}: {err}"
                ),
            }
            if matches!(attacker, Attacker::Recomputes) && i == stream.entries.len() - 1 {
                assert_eq!(
                    err.failure,
                    Failure::CheckpointCountMismatch {
                        checkpoint: 18,
                        entries: 17
                    }
                );
            }
        }
    }
}

#[test]
fn duplicating_any_entry_is_caught_at_the_copy() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);

    for (i, entry) in stream.entries.iter().enumerate() {
        for attacker in ATTACKERS {
            let mut entries = stream.entries.clone();
            entries.insert(i + 1, entry.clone());

            // Act
            let err = verify(&tamper(&bundle, entries, attacker)).unwrap_err();

            // Assert
            assert_named(&err, i + 1, entry);
            assert_eq!(
                err.failure,
                Failure::SequenceRegression {
                    expected: entry.sequence + 1
                }
            );
        }
    }
}

#[test]
fn an_attacker_who_recomputes_after_dropping_the_last_event_fails_on_the_signed_count() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut entries = stream.entries.clone();
    entries.pop();

    // Act
    let kept = verify(&tamper(&bundle, entries.clone(), Attacker::Recomputes)).unwrap_err();
    let rewritten = verify(&tamper(&bundle, entries, Attacker::RewritesCheckpoint)).unwrap_err();

    // Assert
    assert!(matches!(
        kept.failure,
        Failure::CheckpointCountMismatch { .. }
    ));
    assert!(kept.points_at(17));
    assert_eq!(rewritten.failure, Failure::BadSignature);
}

#[test]
fn an_attacker_who_rewrites_an_event_after_the_last_seal_and_recomputes_fails_on_the_head_or_signature(
) {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut entries = stream.entries.clone();
    entries[17].data["tier"] = json!("clear");

    // Act
    let kept = verify(&tamper(&bundle, entries.clone(), Attacker::Recomputes)).unwrap_err();
    let rewritten = verify(&tamper(&bundle, entries, Attacker::RewritesCheckpoint)).unwrap_err();

    // Assert
    assert!(
        matches!(kept.failure, Failure::HeadMismatch { .. }),
        "{kept}"
    );
    assert_eq!(kept.within, Some(0..18));
    assert_eq!(rewritten.failure, Failure::BadSignature);
}

#[test]
fn an_attacker_who_recomputes_after_an_early_edit_is_caught_by_the_first_seal() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut entries = stream.entries.clone();
    entries[8].data["inserted"] = json!("written by someone else");

    // Act
    let err = verify(&tamper(&bundle, entries, Attacker::RewritesCheckpoint)).unwrap_err();

    // Assert
    assert!(
        matches!(err.failure, Failure::SealMismatch { count: 16, .. }),
        "{err}"
    );
    assert_named(&err, 16, &stream.entries[16]);
    assert_eq!(err.within, Some(0..16));
}

#[test]
fn a_stripped_or_invented_seal_list_is_refused() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut stripped = bundle.clone();
    stripped.sealed.clear();
    let mut invented = bundle.clone();
    invented.sealed.insert(
        0,
        Seal {
            at_index: 5,
            count: 5,
            hash: bundle.hashes[4].clone(),
        },
    );

    // Act
    let stripped = verify(&stripped).unwrap_err();
    let invented = verify(&invented).unwrap_err();

    // Assert
    assert_eq!(stripped.failure, Failure::SealNotListed);
    assert_named(&stripped, 16, &stream.entries[16]);
    assert_eq!(invented.failure, Failure::SealNotClaimed);
    assert_named(&invented, 5, &stream.entries[5]);
}

#[test]
fn events_beyond_the_signed_checkpoint_are_named() {
    // Arrange: the checkpoint was signed before the integrity analysis arrived.
    let stream = realistic();
    let key = key();
    let mut prefix = Chain::new(session());
    for entry in &stream.entries[..17] {
        prefix.append(entry).unwrap();
    }
    let checkpoint = Checkpoint::new(session(), &prefix.head(), signed_at(), &key.verifying_key());
    let signature = sign(&checkpoint, &key);
    let exported = Bundle::assemble(
        stream.entries.clone(),
        checkpoint.clone(),
        signature.clone(),
        public_key_hex(&key),
    )
    .unwrap();
    let mut padded = exported.clone();
    padded.entries = stream.entries.clone();
    padded.hashes = chain_hashes(session(), &stream.entries);
    padded.sealed = seals_of(&stream.entries);

    // Act
    let verified = verify(&exported).unwrap();
    let err = verify(&padded).unwrap_err();

    // Assert: the export covers exactly the signed prefix; anything more is named.
    assert_eq!(verified.head.count, 17);
    assert_named(&err, 17, &stream.entries[17]);
    assert!(matches!(
        err.failure,
        Failure::CheckpointCountMismatch { .. }
    ));
}

#[test]
fn a_bundle_signed_by_another_key_verifies_only_as_self_consistent() {
    // Arrange: an attacker rewrites an event and re-signs everything with their own key.
    let stream = realistic();
    let mut entries = stream.entries.clone();
    entries[8].data["inserted"] = json!("forged");
    let forged = Bundle::sign_now(
        session(),
        seal_again(entries),
        signed_at(),
        &key_from_seed_hex(OTHER_SEED).unwrap(),
    );

    // Act
    let self_consistent = verify(&forged);
    let trusted = verify_with_key(&forged, &key().verifying_key());

    // Assert
    assert!(!self_consistent.unwrap().key_trusted);
    assert!(matches!(
        trusted.unwrap_err().failure,
        Failure::UnexpectedKey { .. }
    ));
}

/// Re-seals the entries' claims after an edit (what a thorough forger does).
fn seal_again(mut entries: Vec<ChainEntry>) -> Vec<ChainEntry> {
    let mut chain = Chain::new(session());
    for entry in &mut entries {
        if entry.data.get(SEAL_FIELD).is_some() {
            let head = chain.head();
            entry.data[SEAL_FIELD] = json!({"count": head.count, "hash": head.hash});
        }
        chain.append(entry).unwrap();
    }
    entries
}

#[test]
fn malformed_bundles_are_refused_with_what_is_wrong() {
    // Arrange
    let bundle = bundle_of(&realistic());
    let mut format = bundle.clone();
    format.format = "clarity-audit-bundle/2".into();
    let mut signature = bundle.clone();
    signature.signature.replace_range(0..2, "00");
    let mut key_id = bundle.clone();
    key_id.checkpoint.key_id = "0000000000000000".into();
    let mut hashes = bundle.clone();
    hashes.hashes.push("00".into());
    let mut json: Value = serde_json::to_value(&bundle).unwrap();
    json["entries"][4]["time"] = json!("2026-03-01T09:00:06.785017001Z");
    let nanos: Bundle = serde_json::from_value(json).unwrap();

    // Act / Assert
    assert!(matches!(
        verify(&format).unwrap_err().failure,
        Failure::UnsupportedFormat { .. }
    ));
    assert_eq!(
        verify(&signature).unwrap_err().failure,
        Failure::BadSignature
    );
    assert!(matches!(
        verify(&key_id).unwrap_err().failure,
        Failure::KeyIdMismatch { .. }
    ));
    let extra = verify(&hashes).unwrap_err();
    assert_eq!(extra.index, Some(18));
    assert!(matches!(extra.failure, Failure::ExtraHashes { .. }));
    let nanos = verify(&nanos).unwrap_err();
    assert_eq!(nanos.failure, Failure::NonCanonicalTime);
    assert_eq!(nanos.index, Some(4));
}

#[test]
fn an_error_reads_as_a_sentence_naming_the_event() {
    // Arrange
    let stream = realistic();
    let bundle = bundle_of(&stream);
    let mut entries = stream.entries.clone();
    entries.remove(5);

    // Act
    let err = verify(&tamper(&bundle, entries, Attacker::Recomputes)).unwrap_err();

    // Assert
    assert_eq!(
        err.to_string(),
        "entry 5 (telemetry #4, clarity.Telemetry.keystroke.v1): sequence gap: expected 3"
    );
}

#[test]
fn a_fixed_key_and_stream_give_the_pinned_head_and_signature() {
    // Arrange
    let key = key_from_seed_hex(SEED).unwrap();
    let session: Uuid = "00000000-0000-7000-8000-000000000001".parse().unwrap();
    let at: DateTime<Utc> = "2026-01-02T03:04:05.678901Z".parse().unwrap();
    let entries = vec![
        ChainEntry::new(
            session,
            StreamKind::Lifecycle,
            1,
            "clarity.CandidateSession.SessionStarted.v1",
            at,
            json!({"started_at": "2026-01-02T03:04:05Z", "deadline": "2026-01-02T04:34:05Z"}),
        ),
        ChainEntry::new(
            session,
            StreamKind::Telemetry,
            1,
            "clarity.Telemetry.edit.v1",
            at + Duration::milliseconds(1500),
            json!({"type": "edit", "file": "a.rs", "position": 0, "deleted": 0, "inserted": "é🌍", "origin": "typed"}),
        ),
        ChainEntry::new(
            session,
            StreamKind::Telemetry,
            2,
            "clarity.Telemetry.keystroke.v1",
            at + Duration::milliseconds(2000),
            json!({"type": "keystroke", "down_ms": 12.5, "up_ms": 80.25, "key_class": "letter"}),
        ),
    ];

    // Act
    let bundle = Bundle::sign_now(session, entries, signed_at(), &key);

    // Assert
    // (Reproduced independently from the module doc's specification with Python's hashlib
    // and the `cryptography` package.)
    assert!(verify_with_key(&bundle, &key.verifying_key()).is_ok());
    assert_eq!(
        bundle.public_key,
        "1fe9b4c89518086087ad96c7a96e68399c6673118482daaccad071415da03d59"
    );
    assert_eq!(bundle.checkpoint.key_id, "a6a63b1b8a878032");
    assert_eq!(
        bundle.hashes,
        [
            "1559b5c57fa5c1323f3cf48d4abfd71dd1e7568b489ff64104a103833a1f83c3",
            "ef8aea1deaf5a3f583c0db415f52b6e97fe748e2120e3448b820491d9db28b53",
            "105e2297ebc1b00b3592ed868e80d2df6c033dfda0e137f2fbfbf00b4faf8e85",
        ]
    );
    assert_eq!(
        bundle.checkpoint.head_hash,
        "105e2297ebc1b00b3592ed868e80d2df6c033dfda0e137f2fbfbf00b4faf8e85"
    );
    assert_eq!(
        bundle.signature,
        "2196283c5518b8f07f9dc39914c66207a183a29f37e51b5ad5c441197e7eeb09\
         2170fe9a0947c56df6c5f1657c134f544d41b042ff5914c9d5736bd75375050e"
    );
}

#[test]
fn the_committed_fuzz_seed_bundles_verify() {
    // The fuzz target checks its invariants on bundles that verify; these seeds (fuzz/corpus,
    // written by `--example fuzz_seeds`) are where it starts.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/audit_bundle");
    for name in ["seed-session.json", "seed-empty.json"] {
        let json = std::fs::read_to_string(dir.join(name)).unwrap();
        let bundle = Bundle::from_json(&json).unwrap();
        assert!(verify(&bundle).is_ok(), "{name}");
    }
}
