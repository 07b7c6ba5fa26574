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
        "329946e84b89ffa8fdc6fbfeb8c5ce1353121cf1dbf53b5478cd5b9b775ed96f",
    ),
    (
        "c1a71700-0000-4000-8000-000000000002",
        "6e925c378b5f15c0c5257a80da5f17223af38419ab3daccca982ad96e79fe40e",
    ),
    (
        "c1a71700-0000-4000-8000-000000000003",
        "02da60d8c7c41a50409c0def6e1e916703d6367f281b0a31d9e27c16ea3d4862",
    ),
    (
        "c1a71700-0000-4000-8000-000000000004",
        "3932f0d30a77e07299e067db7031ef46629b458c043f36f9b54252e73e8b124a",
    ),
    (
        "c1a71700-0000-4000-8000-000000000005",
        "7da18bf39558e83960d6c96390f9f9674701f82b5aa85bfa8fafb502785773e4",
    ),
    (
        "c1a71700-0000-4000-8000-000000000006",
        "22fdf9a0c8bc2e12800a4c390356a2833902d1eb3823f7686a85276ddfade3c9",
    ),
    (
        "c1a71700-0000-4000-8000-000000000007",
        "0fa37b7068e247993a3cb05ab84fa44c228d9487dee06bb9cd053acb446d065c",
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
