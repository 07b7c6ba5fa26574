//! The built-in catalogue's content, pinned. Seeding publishes a new version whenever an entry's
//! digest changes, so moving or re-encoding the catalogue must leave every digest (SHA-256 of the
//! spec's JSON) byte-identical: an existing event store must not see a "changed" assessment.
//! Change a pin only together with a deliberate change to the content.

use clarity_domain::catalogue::builtin;

/// (id, digest) of every entry, in presentation order, as published before the catalogue moved
/// out of the Rust source into `catalogue/`.
const PINNED: [(&str, &str); 7] = [
    (
        "c1a71700-0000-4000-8000-000000000001",
        "2bbc510f49e6644cec885259906c481c949e852e75af5f694a408820e541f15f",
    ),
    (
        "c1a71700-0000-4000-8000-000000000002",
        "6e925c378b5f15c0c5257a80da5f17223af38419ab3daccca982ad96e79fe40e",
    ),
    (
        "c1a71700-0000-4000-8000-000000000003",
        "ca14d08e9d0d0e411d2974a56cac066bca44b394062eda3ac7c826657b6d91e6",
    ),
    (
        "c1a71700-0000-4000-8000-000000000004",
        "5ed7b5ea69a1bedb0f735848febe625e3a926141c1bfc8396cd9086db9312e4c",
    ),
    (
        "c1a71700-0000-4000-8000-000000000005",
        "19bb3694f9a910ffc597f7a1a5b2b09110f8d4db1fef5372ae5fe77db97321e6",
    ),
    (
        "c1a71700-0000-4000-8000-000000000006",
        "7bec7c745b929e4790767fdbc059d187ab121c8f061915980bc5c2d3a071b3a3",
    ),
    (
        "c1a71700-0000-4000-8000-000000000007",
        "d6034c4df5d29aff87da2482a3a221be87c282dd00690d13e50e492a98c3d9a7",
    ),
];

#[test]
fn every_entry_keeps_its_id_and_digest() {
    let got: Vec<(String, String)> = builtin()
        .into_iter()
        .map(|e| (e.id.to_string(), e.spec.digest()))
        .collect();
    let expected: Vec<(String, String)> = PINNED
        .iter()
        .map(|(id, digest)| (id.to_string(), digest.to_string()))
        .collect();
    assert_eq!(got, expected);
}
