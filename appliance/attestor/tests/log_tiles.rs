//! The log on disk: C2SP tile and entry-bundle layout, serving only what a checkpoint covers,
//! proofs between every stored checkpoint, reopening, and the monitor catching corruption.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use stella_attestor::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use stella_attestor::{
    CHECKPOINT_HISTORY_FILE, HashedRekord, TransparencyLog, parse_bundle, verify_checkpoint,
    verify_log,
};
use stella_hsm::{KeyRole, KeySource, Pkcs11KeySource};
use support::appliance::{ORIGIN, build, checkpoint_signer};
use support::fixtures::{entitled, sbom_statement};
use support::softhsm_token;

#[test]
fn tiles_checkpoints_proofs_reopen_and_monitor() {
    let Some(settings) = softhsm_token("tiles_checkpoints_proofs_reopen_and_monitor") else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let work = tempfile::tempdir().unwrap();
    let log_dir = work.path().join("log");
    let parts = build(&source, &log_dir);
    let (_, statement) = sbom_statement();
    let installation = source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key
        .key_id();
    let signed = parts
        .signer
        .sign_statement(statement, &entitled(&installation))
        .unwrap();
    let attestation = source
        .signer(&KeyRole::Attestation.label().unwrap())
        .unwrap();
    let entry = |n: u32| {
        let message = format!("entry {n}");
        HashedRekord {
            digest: Sha256::digest(message.as_bytes()).into(),
            signature: attestation.sign(message.as_bytes()).unwrap(),
            certificate_der: signed.certificate.der.clone(),
        }
    };
    let entries: Vec<HashedRekord> = (0..600).map(entry).collect();
    // A wrong signature is refused before logging.
    let mut forged = entries[0].clone();
    forged.digest[0] ^= 1;
    assert!(parts.log.append(&forged).is_err());
    // Batches of uneven sizes, crossing tile boundaries.
    let mut acknowledged = Vec::new();
    let mut start = 0;
    for batch in [1usize, 99, 156, 200, 56, 88] {
        acknowledged.extend(
            parts
                .log
                .append_batch(&entries[start..start + batch])
                .unwrap(),
        );
        start += batch;
    }
    assert_eq!(start, 600);
    let log = &parts.log;
    assert_eq!(log.size().unwrap(), 600);
    let key = log.signer().public_key().to_vec();
    let checkpoint = verify_checkpoint(&log.checkpoint().unwrap(), ORIGIN, &key).unwrap();
    assert_eq!(checkpoint.size, 600);

    // Layout: level-0 tiles 000, 001 full, 002.p/88; level-1 tile 000.p/2; entry bundles alike.
    for path in [
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
    ] {
        let served = log.read_tile(path).unwrap();
        assert_eq!(served, std::fs::read(log_dir.join(path)).unwrap(), "{path}");
    }
    assert_eq!(log.read_tile("tile/0/000").unwrap().len(), 256 * 32);
    // Partial tiles superseded by a full tile were deleted (allowed by tlog-tiles).
    assert!(!log_dir.join("tile/0/000.p").exists());
    assert!(
        log.read_tile("tile/0/002.p/89").is_err(),
        "beyond the checkpoint"
    );
    assert!(log.read_tile("tile/0/003").is_err());
    assert!(log.read_tile("tile/2/000.p/1").is_err());
    let bundle = parse_bundle(&log.read_tile("tile/entries/002.p/88").unwrap()).unwrap();
    assert_eq!(bundle[87], entries[599].canonical_body().unwrap());
    let level0 = log.read_tile("tile/0/002.p/88").unwrap();
    assert_eq!(&level0[87 * 32..], &leaf_hash(&bundle[87]));

    // Every acknowledgement's proof verifies against its own checkpoint, and that checkpoint
    // is consistent with the latest one.
    for response in &acknowledged {
        let index = response.index().unwrap();
        let proof = &response.inclusion_proof;
        let size: u64 = proof.tree_size.parse().unwrap();
        let root: [u8; 32] = STANDARD
            .decode(&proof.root_hash)
            .unwrap()
            .try_into()
            .unwrap();
        let hashes: Vec<[u8; 32]> = proof
            .hashes
            .iter()
            .map(|h| STANDARD.decode(h).unwrap().try_into().unwrap())
            .collect();
        let body = STANDARD.decode(&response.canonicalized_body).unwrap();
        verify_inclusion(index, size, &leaf_hash(&body), &hashes, &root).unwrap();
        let cp = verify_checkpoint(&proof.checkpoint.envelope, ORIGIN, &key).unwrap();
        assert_eq!((cp.size, cp.root), (size, root));
        let consistency = log.consistency_proof(size, 600).unwrap();
        if size < 600 {
            verify_consistency(size, 600, &root, &checkpoint.root, &consistency).unwrap();
        }
        assert_eq!(
            response.log_id.key_id,
            STANDARD.encode(log.signer().log_id())
        );
    }
    // Serving proofs later: inclusion in the latest tree.
    let proof = log.inclusion_proof(300, 600).unwrap();
    verify_inclusion(
        300,
        600,
        &leaf_hash(&entries[300].canonical_body().unwrap()),
        &proof,
        &checkpoint.root,
    )
    .unwrap();

    let report = verify_log(&log_dir, ORIGIN, &key).unwrap();
    assert_eq!(report.size, 600);
    assert_eq!(report.checkpoints_checked, 7, "empty log + six batches");
    assert!(report.latest_in_history);

    // Reopening gives the same tree and continues it.
    let reopened = TransparencyLog::open(&log_dir, checkpoint_signer(&source)).unwrap();
    assert_eq!(reopened.checkpoint().unwrap(), log.checkpoint().unwrap());
    let next = reopened.append(&entry(600)).unwrap();
    assert_eq!(next.log_index, "600");
    verify_log(&log_dir, ORIGIN, &key).unwrap();

    // The monitor catches a changed byte in an entry bundle, in a hash tile, and in history.
    let original = std::fs::read(log_dir.join("tile/entries/001")).unwrap();
    let mut corrupted = original.clone();
    corrupted[100] ^= 1;
    std::fs::write(log_dir.join("tile/entries/001"), &corrupted).unwrap();
    assert!(verify_log(&log_dir, ORIGIN, &key).is_err());
    std::fs::write(log_dir.join("tile/entries/001"), &original).unwrap();
    let original = std::fs::read(log_dir.join("tile/0/001")).unwrap();
    let mut corrupted = original.clone();
    corrupted[5] ^= 1;
    std::fs::write(log_dir.join("tile/0/001"), &corrupted).unwrap();
    assert!(verify_log(&log_dir, ORIGIN, &key).is_err());
    assert!(
        TransparencyLog::open(&log_dir, checkpoint_signer(&source)).is_err(),
        "open checks tiles against the checkpoint"
    );
    std::fs::write(log_dir.join("tile/0/001"), &original).unwrap();
    let history = std::fs::read(log_dir.join(CHECKPOINT_HISTORY_FILE)).unwrap();
    let mut corrupted = history.clone();
    let at = corrupted.len() / 2;
    corrupted[at] ^= 1;
    std::fs::write(log_dir.join(CHECKPOINT_HISTORY_FILE), &corrupted).unwrap();
    assert!(verify_log(&log_dir, ORIGIN, &key).is_err());
    std::fs::write(log_dir.join(CHECKPOINT_HISTORY_FILE), &history).unwrap();
    verify_log(&log_dir, ORIGIN, &key).unwrap();

    // A history record beyond the checkpoint (its rename lost in a power cut, never
    // acknowledged) is reported by the monitor and dropped by the next open.
    let unacknowledged = checkpoint_signer(&source)
        .sign(&stella_attestor::Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 700,
            root: [7u8; 32],
        })
        .unwrap();
    let mut extended = history.clone();
    extended.extend_from_slice(&(unacknowledged.len() as u32).to_be_bytes());
    extended.extend_from_slice(unacknowledged.as_bytes());
    std::fs::write(log_dir.join(CHECKPOINT_HISTORY_FILE), &extended).unwrap();
    assert!(verify_log(&log_dir, ORIGIN, &key).is_err());
    let repaired = TransparencyLog::open(&log_dir, checkpoint_signer(&source)).unwrap();
    assert_eq!(repaired.size().unwrap(), 601);
    assert_eq!(
        std::fs::read(log_dir.join(CHECKPOINT_HISTORY_FILE)).unwrap(),
        history
    );
    verify_log(&log_dir, ORIGIN, &key).unwrap();

    // Opening with another key (or origin) is refused: the stored checkpoint does not verify.
    let other = stella_attestor::CheckpointSigner::new(
        source
            .signer(&KeyRole::TlogCheckpoint.label().unwrap())
            .unwrap(),
        "other.origin/log",
    )
    .unwrap();
    assert!(TransparencyLog::open(&log_dir, other).is_err());
}

#[test]
fn attestor_reopens_with_identical_trust_documents() {
    let Some(settings) = softhsm_token("attestor_reopens_with_identical_trust_documents") else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let work = tempfile::tempdir().unwrap();
    let parts = build(&source, &work.path().join("unused"));
    let config = stella_attestor::AttestorConfig {
        origin: ORIGIN.to_owned(),
        base_url: "https://appliance.stella.test".to_owned(),
        organization: support::appliance::ORGANIZATION.to_owned(),
        ca_common_name: support::appliance::CA_NAME.to_owned(),
        valid_from: support::fixtures::NOW - time::Duration::days(1),
    };
    let clock = std::sync::Arc::new(stella_signer::FixedClock(support::fixtures::NOW));
    let first = stella_attestor::Attestor::open(
        work.path(),
        &source,
        &parts.signer,
        clock.clone(),
        &config,
    )
    .unwrap();
    let (sbom, statement) = sbom_statement();
    let installation = source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key
        .key_id();
    let signed = parts
        .signer
        .sign_statement(statement, &entitled(&installation))
        .unwrap();
    let exported = first.attest(&signed).unwrap();
    let root = first.trusted_root_json().unwrap();
    let trust_config = first.client_trust_config_json().unwrap();
    drop(first);
    let second =
        stella_attestor::Attestor::open(work.path(), &source, &parts.signer, clock, &config)
            .unwrap();
    assert_eq!(
        second.trusted_root_json().unwrap(),
        root,
        "trusted root changed across a restart"
    );
    assert_eq!(second.client_trust_config_json().unwrap(), trust_config);
    assert_eq!(second.log().size().unwrap(), 1);
    let trust = stella_attestor::TrustMaterial::from_trusted_root(&trust_config).unwrap();
    stella_attestor::verify_bundle(&exported.json, Some(&sbom), &trust).unwrap();
    let signing_config: serde_json::Value =
        serde_json::from_slice(&second.signing_config_json().unwrap()).unwrap();
    assert_eq!(
        signing_config["mediaType"],
        stella_attestor::SIGNING_CONFIG_MEDIA_TYPE
    );
    assert_eq!(signing_config["rekorTlogUrls"][0]["majorApiVersion"], 2);
}
