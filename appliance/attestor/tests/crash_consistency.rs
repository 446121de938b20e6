//! Durability by crashing: a child process appends entries from four threads and is SIGKILLed
//! at a varying moment, 20 times over the same log. Every acknowledged entry must be present at
//! its index, every checkpoint ever served must be consistent with the final tree, and the
//! monitor (`verify_log`) must accept the directory after every crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use stella_attestor::merkle::{leaf_hash, root_of};
use stella_attestor::{
    HashedRekord, TILE_WIDTH, TileId, TransparencyLog, parse_bundle, verify_log,
};
use stella_hsm::{KeyRole, KeySource, Pkcs11KeySource, initialize_token};
use support::appliance::{ORIGIN, build, checkpoint_signer};
use support::fixtures::{entitled, sbom_statement};
use support::{SO_PIN, SOFTHSM_MODULE, TOKEN, USER_PIN, write_softhsm_conf};

const CHILD: &str = "STELLA_CRASH_CHILD";
const ROUNDS: usize = 20;

/// The child: appends forever from four threads and prints every acknowledgement.
#[test]
fn crash_child_appends() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let marker = dir.join("token-ready");
    if !marker.exists() {
        initialize_token(Path::new(SOFTHSM_MODULE), TOKEN, SO_PIN, USER_PIN).unwrap();
    }
    let source = Pkcs11KeySource::open(&stella_hsm::Pkcs11Settings {
        module: PathBuf::from(SOFTHSM_MODULE),
        token: TOKEN.to_owned(),
        pin: USER_PIN.to_owned(),
    })
    .unwrap();
    let parts = build(&source, &dir.join("log"));
    std::fs::write(&marker, b"").unwrap();
    drop(parts.log);
    let log =
        Arc::new(TransparencyLog::open(&dir.join("log"), checkpoint_signer(&source)).unwrap());
    println!("KEY {}", hex::encode(log.signer().public_key()));
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
    let certificate = Arc::new(signed.certificate.der.clone());
    let attestation = source
        .signer(&KeyRole::Attestation.label().unwrap())
        .unwrap();
    let start = std::process::id();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let log = log.clone();
            let certificate = certificate.clone();
            let attestation = attestation.clone();
            std::thread::spawn(move || {
                for n in 0u64.. {
                    let message = format!("pid {start} thread {thread} entry {n}");
                    let entry = HashedRekord {
                        digest: Sha256::digest(message.as_bytes()).into(),
                        signature: attestation.sign(message.as_bytes()).unwrap(),
                        certificate_der: certificate.to_vec(),
                    };
                    let acknowledged = log.append(&entry).unwrap();
                    let body = STANDARD.decode(&acknowledged.canonicalized_body).unwrap();
                    println!(
                        "ACK {} {}\nCP {}",
                        acknowledged.log_index,
                        hex::encode(leaf_hash(&body)),
                        acknowledged
                            .inclusion_proof
                            .checkpoint
                            .envelope
                            .replace('\n', "|")
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn read_leaves(log_dir: &Path, size: u64) -> Vec<[u8; 32]> {
    let mut leaves = Vec::new();
    let full = size / TILE_WIDTH;
    let tail = size % TILE_WIDTH;
    for index in 0..full + u64::from(tail != 0) {
        let id = TileId {
            level: None,
            index,
            partial_width: (index == full).then_some(tail as u16),
        };
        for entry in parse_bundle(&std::fs::read(log_dir.join(id.path())).unwrap()).unwrap() {
            leaves.push(leaf_hash(&entry));
        }
    }
    leaves
}

#[test]
fn sigkill_during_appends_loses_nothing_acknowledged() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    if !Path::new(SOFTHSM_MODULE).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{SOFTHSM_MODULE} missing (CI is set)"
        );
        loud_skip!("SKIP crash test: {SOFTHSM_MODULE} missing; install Debian package softhsm2");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = write_softhsm_conf(dir.path());
    let mut acks: Vec<(u64, String)> = Vec::new();
    let mut checkpoints: Vec<String> = Vec::new();
    let mut key = String::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_appends",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a varying moment.
        let mut lines = Vec::new();
        loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("child never acknowledged");
            let first_ack = line.starts_with("ACK");
            lines.push(line);
            if first_ack {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20 + (round as u64 * 37) % 250));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(receiver.try_iter());
        // A line cut by the kill is not an acknowledgement; only whole ACK/CP pairs count.
        let mut iter = lines.iter().peekable();
        while let Some(line) = iter.next() {
            // libtest prints "test NAME ... " without a newline before the child's first line.
            if let Some(at) = line.find("KEY ") {
                key = line[at + 4..].to_owned();
            } else if let Some(rest) = line.strip_prefix("ACK ") {
                let Some(cp) = iter.next_if(|l| l.starts_with("CP ") && l.ends_with('|')) else {
                    continue;
                };
                let (index, hash) = rest.split_once(' ').unwrap();
                if hash.len() != 64 {
                    continue;
                }
                acks.push((index.parse().unwrap(), hash.to_owned()));
                checkpoints.push(cp[3..].replace('|', "\n"));
            }
        }
        let report = verify_log(&dir.path().join("log"), ORIGIN, &hex::decode(&key).unwrap())
            .unwrap_or_else(|error| panic!("monitor rejects the log after crash {round}: {error}"));
        assert!(report.size as usize >= acks.len());
    }
    let log_dir = dir.path().join("log");
    let report = verify_log(&log_dir, ORIGIN, &hex::decode(&key).unwrap()).unwrap();
    let leaves = read_leaves(&log_dir, report.size);
    assert!(acks.len() > 100, "only {} acknowledged appends", acks.len());
    for (index, hash) in &acks {
        assert_eq!(
            &hex::encode(leaves[*index as usize]),
            hash,
            "acknowledged entry {index} lost or changed"
        );
    }
    checkpoints.sort();
    checkpoints.dedup();
    for note in &checkpoints {
        let checkpoint =
            stella_attestor::verify_checkpoint(note, ORIGIN, &hex::decode(&key).unwrap()).unwrap();
        assert_eq!(
            root_of(&leaves[..checkpoint.size as usize]),
            checkpoint.root,
            "served checkpoint of size {} is inconsistent with the final tree",
            checkpoint.size
        );
    }
    println!(
        "{ROUNDS} SIGKILLs: {} acknowledged entries, {} served checkpoints, final size {}, all consistent",
        acks.len(),
        checkpoints.len(),
        report.size
    );
}
