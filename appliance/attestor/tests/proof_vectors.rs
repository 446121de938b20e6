//! Inclusion and consistency proofs against the transparency-dev/merkle vectors, Google's
//! argon2020 CT log proofs, and a Rekor v2 entry from sigstore-conformance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stella_attestor::merkle::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, root_of, verify_consistency,
    verify_inclusion,
};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/attestor")
}

fn hash(value: &serde_json::Value) -> Option<Hash> {
    STANDARD.decode(value.as_str()?).ok()?.try_into().ok()
}

fn hashes(value: &serde_json::Value) -> Option<Vec<Hash>> {
    match value {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(vector_files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The RFC 6962 test leaves transparency-dev/merkle builds its trees from.
fn rfc6962_leaves() -> Vec<Hash> {
    let leaves: [&[u8]; 8] = [
        b"",
        &[0x00],
        &[0x10],
        &[0x20, 0x21],
        &[0x30, 0x31],
        &[0x40, 0x41, 0x42, 0x43],
        &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        &[
            0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
            0x6e, 0x6f,
        ],
    ];
    leaves.iter().map(|l| leaf_hash(l)).collect()
}

#[test]
fn transparency_dev_inclusion_vectors() {
    let files = vector_files(&data().join("merkle/inclusion"));
    assert!(files.len() > 60, "only {} vectors", files.len());
    let leaves = rfc6962_leaves();
    for file in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let index = v["leafIdx"].as_u64().unwrap();
        let size = v["treeSize"].as_u64().unwrap();
        let result = match (hash(&v["root"]), hash(&v["leafHash"]), hashes(&v["proof"])) {
            (Some(root), Some(leaf), Some(proof)) => {
                verify_inclusion(index, size, &leaf, &proof, &root)
            }
            _ => Err(stella_attestor::AttestorError::Proof("undecodable".into())),
        };
        assert_eq!(result.is_err(), want_err, "{}: {result:?}", file.display());
        // Happy paths within the 8 known leaves: our generator yields the same proof.
        if !want_err && size <= 8 && size > 0 && v["desc"] == "happy path" {
            let tree = &leaves[..size as usize];
            if leaf_hash(&[]) == leaves[0] && hash(&v["root"]) == Some(root_of(tree)) {
                assert_eq!(
                    Some(inclusion_proof(tree, index, size).unwrap()),
                    hashes(&v["proof"]),
                    "{}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn transparency_dev_consistency_vectors() {
    let files = vector_files(&data().join("merkle/consistency"));
    assert!(files.len() > 60, "only {} vectors", files.len());
    let leaves = rfc6962_leaves();
    let mut generated = 0;
    for file in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let (old, new) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
        // Some vectors use short "don't care" roots; map them injectively onto 32 bytes.
        let root = |value: &serde_json::Value| {
            hash(value).or_else(|| {
                use sha2::Digest as _;
                let bytes = STANDARD.decode(value.as_str()?).ok()?;
                Some(sha2::Sha256::digest(bytes).into())
            })
        };
        let result = match (root(&v["root1"]), root(&v["root2"]), hashes(&v["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => verify_consistency(old, new, &r1, &r2, &proof),
            _ => Err(stella_attestor::AttestorError::Proof("undecodable".into())),
        };
        assert_eq!(result.is_err(), want_err, "{}: {result:?}", file.display());
        if !want_err
            && new <= 8
            && old > 0
            && hash(&v["root2"]) == Some(root_of(&leaves[..new as usize]))
        {
            assert_eq!(
                Some(consistency_proof(&leaves[..new as usize], old, new).unwrap()),
                hashes(&v["proof"]),
                "{}",
                file.display()
            );
            generated += 1;
        }
    }
    assert!(generated > 0);
}

fn argon(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data().join("argon2020").join(name)).unwrap()).unwrap()
}

#[test]
fn argon2020_inclusion_and_consistency_proofs_verify() {
    let sth = argon("sth.json");
    let size = sth["tree_size"].as_u64().unwrap();
    let root = hash(&sth["sha256_root_hash"]).unwrap();
    let proof = argon("proof.json");
    let entry = argon("entries.json");
    let leaf_input = STANDARD
        .decode(entry["entries"][0]["leaf_input"].as_str().unwrap())
        .unwrap();
    let audit = hashes(&proof["audit_path"]).unwrap();
    let index = proof["leaf_index"].as_u64().unwrap();
    verify_inclusion(index, size, &leaf_hash(&leaf_input), &audit, &root).unwrap();
    assert!(verify_inclusion(index + 1, size, &leaf_hash(&leaf_input), &audit, &root).is_err());
    let mut wrong = leaf_input.clone();
    wrong[20] ^= 1;
    assert!(verify_inclusion(index, size, &leaf_hash(&wrong), &audit, &root).is_err());

    let consistency = hashes(&argon("consistency.json")["consistency"]).unwrap();
    let old_root = hash(&serde_json::json!(
        "AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ="
    ))
    .unwrap();
    verify_consistency(3654490, size, &old_root, &root, &consistency).unwrap();
    let mut bad = consistency.clone();
    bad[3][0] ^= 1;
    assert!(verify_consistency(3654490, size, &old_root, &root, &bad).is_err());
    assert!(verify_consistency(3654491, size, &old_root, &root, &consistency).is_err());
}

#[test]
fn rekor_v2_conformance_entry_is_reproduced_and_included() {
    let dir = data().join("sigstore-conformance/rekor2-dsse-happy-path");
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    let body = STANDARD
        .decode(entry["canonicalizedBody"].as_str().unwrap())
        .unwrap();
    // Our hashedrekord v0.0.2 encoder reproduces the log's canonical body byte for byte from
    // the DSSE envelope and the certificate (hashedrekord over the PAE digest).
    let envelope: stella_signer::Envelope =
        serde_json::from_value(bundle["dsseEnvelope"].clone()).unwrap();
    let certificate = STANDARD
        .decode(
            bundle["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let rekord = stella_attestor::HashedRekord::for_dsse(&envelope, &certificate).unwrap();
    assert_eq!(rekord.canonical_body().unwrap(), body);
    assert_eq!(
        stella_attestor::HashedRekord::from_canonical_body(&body).unwrap(),
        rekord
    );
    let proof = &entry["inclusionProof"];
    verify_inclusion(
        proof["logIndex"].as_str().unwrap().parse().unwrap(),
        proof["treeSize"].as_str().unwrap().parse().unwrap(),
        &leaf_hash(&body),
        &hashes(&proof["hashes"]).unwrap(),
        &hash(&proof["rootHash"]).unwrap(),
    )
    .unwrap();
    // The checkpoint's log signature verifies with the staging key from the trusted root.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("trusted_root.json")).unwrap()).unwrap();
    let key_der = STANDARD
        .decode(root["tlogs"][3]["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let key = &key_der[key_der.len() - 32..];
    let note = proof["checkpoint"]["envelope"].as_str().unwrap();
    let checkpoint =
        stella_attestor::verify_checkpoint(note, "log2025-alpha3.rekor.sigstage.dev", key).unwrap();
    assert_eq!(Some(checkpoint.root), hash(&proof["rootHash"]));
    assert_eq!(
        STANDARD.encode(stella_attestor::note_key_id(
            "log2025-alpha3.rekor.sigstage.dev",
            key
        )),
        entry["logId"]["keyId"].as_str().unwrap(),
        "log id = signed-note key id of the checkpoint key"
    );
}
