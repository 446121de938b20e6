//! The signer in the daemon, end to end on the real binaries and a real SoftHSM2 token:
//! `stella hsm init|status|keys`, `stella licence request` → `stella-kit licence issue` → kit →
//! `stella import` → `POST /sign/dsse` allowed (the DSSE signature checked by `openssl` with
//! the key of the returned certificate), the signing audited and the monthly quota enforced;
//! and the refusals the daemon derives from imported kits: no proof, another installation's
//! licence, an unknown vendor key, a revoked licence. `/readyz` and `/api/signer/status`
//! report the HSM and the licence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod common;
mod signer_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use authority_common::{Daemon, first_admin_login, http, register_client};
use base64::Engine as _;
use common::stella_kit;
use signer_common::{Appliance, ok};

/// An API client logged in with `stella login` (DPoP-bound token).
struct Client {
    state: PathBuf,
    /// The admin's console session cookie.
    session: String,
}

impl Client {
    fn new(daemon: &Daemon, dir: &Path) -> Client {
        let session = first_admin_login(daemon, "a-long-new-admin-password");
        let secret = register_client(
            daemon,
            &session,
            "release-bot",
            "signer.sign scanner.read scanner.scan admin",
        );
        let secret_file = dir.join("client-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let state = dir.join("cli");
        ok(
            Command::new(env!("CARGO_BIN_EXE_stella"))
                .args([
                    "login",
                    "--url",
                    &daemon.base_url(),
                    "--client-id",
                    "release-bot",
                ])
                .arg("--client-secret-file")
                .arg(&secret_file)
                .arg("--dir")
                .arg(&state)
                .output()
                .unwrap(),
            "stella login",
        );
        Client { state, session }
    }

    /// `stella ARGS --dir STATE` as this client: (success, stdout + stderr).
    fn cli(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_stella"))
            .args(args)
            .arg("--dir")
            .arg(&self.state)
            .output()
            .unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// `stella api METHOD PATH [--json BODY]`: (success, stdout + stderr).
    fn api(&self, method: &str, path: &str, body: Option<&str>) -> (bool, String) {
        let mut args = vec!["api", method, path];
        if let Some(body) = body {
            args.extend(["--json", body]);
        }
        self.cli(&args)
    }

    fn status(&self) -> serde_json::Value {
        let (success, out) = self.api("GET", "/api/signer/status", None);
        assert!(success, "{out}");
        serde_json::from_str(&out).unwrap()
    }
}

fn sign_request() -> String {
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}"#;
    let digest = |bytes: &[u8]| {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
    };
    serde_json::json!({
        "imageName": "registry.local/app:1.0",
        "imageDigest": digest(b"image"),
        "subjects": [{ "name": "sbom.cdx.json", "digest": digest(sbom) }],
        "predicateKind": "cyclonedx",
        "predicate": serde_json::from_slice::<serde_json::Value>(sbom).unwrap(),
    })
    .to_string()
}

/// The DSSE pre-authentication encoding of an envelope (what is signed).
fn pae_of(envelope: &serde_json::Value) -> Vec<u8> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let payload_type = envelope["payloadType"].as_str().unwrap();
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    pae
}

/// Checks the DSSE signature with `openssl`, using the public key of the returned certificate.
fn openssl_verifies(dir: &Path, signed: &serde_json::Value) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = &signed["dsseEnvelope"];
    let mut pae = pae_of(envelope);
    let signature = b64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("pae.bin"), &pae).unwrap();
    std::fs::write(dir.join("sig.der"), &signature).unwrap();
    std::fs::write(
        dir.join("leaf.pem"),
        signed["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let pubkey = ok(
        Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(dir.join("leaf.pem"))
            .output()
            .unwrap(),
        "openssl x509 -pubkey",
    );
    std::fs::write(dir.join("leaf.pub.pem"), pubkey).unwrap();
    let verify = |data: &Path| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(dir.join("leaf.pub.pem"))
            .arg("-signature")
            .arg(dir.join("sig.der"))
            .arg(data)
            .output()
            .unwrap()
    };
    let out = ok(verify(&dir.join("pae.bin")), "openssl dgst -verify");
    assert!(out.contains("Verified OK"), "{out}");
    pae[10] ^= 1;
    std::fs::write(dir.join("pae-tampered.bin"), &pae).unwrap();
    assert!(!verify(&dir.join("pae-tampered.bin")).status.success());
}

#[test]
fn enrolment_end_to_end_then_signing_is_allowed_audited_and_quota_bound() {
    let Some(app) = Appliance::new() else { return };
    let init = app.hsm_init();
    for label in [
        "stella-ca",
        "stella-attestation",
        "stella-tlog-checkpoint",
        "stella-timestamping",
        "stella-installation-identity",
        "stella-ct-log",
    ] {
        assert!(init.contains(label), "{init}");
    }
    assert!(
        init.contains("created") && init.contains("BEGIN PUBLIC KEY"),
        "{init}"
    );
    // Idempotent: a second ceremony reuses every key.
    let again = app.hsm_init();
    assert!(
        !again.contains("created") && again.contains("existing"),
        "{again}"
    );
    let data = app.data().display().to_string();
    let status = ok(
        app.stella(&["hsm", "status", "--data-dir", &data]),
        "stella hsm status",
    );
    assert!(status.contains("ready:"), "{status}");
    let keys = ok(app.stella(&["hsm", "keys", "--json"]), "stella hsm keys");
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 6);
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["protection"]["exportable"] == false)
    );

    let request = app.enrol();
    let licence = app.licence(
        "licence.json",
        &request,
        "vendor",
        &["--expires", "365d", "--quota", "signatures_per_month=2"],
    );
    app.import(1, &[format!("licence={}", licence.display())]);

    let daemon = app.serve();
    let ready = http(daemon.addr, "GET", "/readyz", &[], "");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["hsm"]["status"], "ok", "{}", ready.body);

    let client = Client::new(&daemon, app.dir.path());
    let status = client.status();
    assert_eq!(status["entitlement"]["entitled"], true, "{status}");
    assert_eq!(status["mode"], "entitled");
    let licence_id = status["licence"]["licence_id"].as_str().unwrap().to_owned();

    let (success, out) = client.api("POST", "/sign/dsse", Some(&sign_request()));
    if !success {
        panic!("{out}\n--- daemon:\n{}", daemon.stop());
    }
    let signed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(signed["licenceId"], licence_id.as_str());
    assert_eq!(signed["devSigned"], false);
    openssl_verifies(app.dir.path(), &signed);
    // The attestor logged it: the answer carries the Sigstore bundle with its log entry.
    assert_eq!(signed["logIndex"], 0, "{signed}");
    assert_eq!(
        signed["bundle"]["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );

    // Every signing is audited with licence, image digest, key id and certificate serial.
    let (success, audit) = client.api("GET", "/api/audit?limit=200", None);
    assert!(success, "{audit}");
    assert!(audit.contains("signer.sign"), "{audit}");
    assert!(audit.contains(&licence_id), "{audit}");
    assert!(
        audit.contains(signed["certificateSerial"].as_str().unwrap()),
        "{audit}"
    );
    // ... and the transparency-log index the attestor gave it.
    assert!(audit.contains(r#""log_index":0"#), "{audit}");

    // The plan allows two signatures a month: the second passes, the third is refused.
    let (success, out) = client.api("POST", "/sign/dsse", Some(&sign_request()));
    assert!(success, "{out}");
    let (success, out) = client.api("POST", "/sign/dsse", Some(&sign_request()));
    assert!(
        !success && out.contains("403") && out.contains("quota-spent"),
        "{out}"
    );
    daemon.stop();
}

/// Starts the daemon and asks it to sign: the refusal's code must be `reason`, in the 403 and
/// (for the gate's refusals) in the status.
fn refused(app: &Appliance, reason: &str) {
    let daemon = app.serve();
    let client = Client::new(&daemon, app.dir.path());
    if reason != "release-integrity" {
        let status = client.status();
        assert_eq!(status["entitlement"]["entitled"], false, "{status}");
        assert_eq!(status["entitlement"]["reason"], reason, "{status}");
        assert_eq!(status["mode"], "community");
    }
    let (success, out) = client.api("POST", "/sign/dsse", Some(&sign_request()));
    assert!(
        !success && out.contains("403") && out.contains(reason),
        "{out}"
    );
    // Community mode still scans and reports: the daemon is ready.
    let ready = http(daemon.addr, "GET", "/readyz", &[], "");
    assert_eq!(ready.status, 200, "{}", ready.body);
    daemon.stop();
}

#[test]
fn without_a_licence_the_appliance_signs_nothing() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    refused(&app, "no-proof");
}

#[test]
fn a_licence_for_another_installation_is_refused() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    // Another appliance's enrolment request (its own Ed25519 installation key).
    let foreign = stella_importer::licence::ed25519_enrolment_request(
        &[7u8; 32],
        "other-appliance",
        "2026-11-01T00:00:00Z",
    )
    .unwrap();
    let request = app.path("foreign-req.json");
    std::fs::write(&request, serde_json::to_vec(&foreign).unwrap()).unwrap();
    let licence = app.licence("foreign.json", &request, "vendor", &["--expires", "365d"]);
    app.import(1, &[format!("licence={}", licence.display())]);
    refused(&app, "bound-to-another-key");
}

#[test]
fn a_licence_from_an_unknown_vendor_key_is_refused() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    let request = app.enrol();
    let licence = app.licence(
        "licence.json",
        &request,
        "other-vendor",
        &["--expires", "365d"],
    );
    app.import(1, &[format!("licence={}", licence.display())]);
    refused(&app, "unknown-vendor-key");
}

#[test]
fn a_revoked_licence_is_refused() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    let request = app.enrol();
    let licence = app.licence("licence.json", &request, "vendor", &["--expires", "365d"]);
    let licence_id = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&licence).unwrap())
        .unwrap()["licence"]["licence_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revocations = app.path("revocations.json");
    ok(
        Command::new(stella_kit())
            .args(["licence", "revoke", "--licence-id", &licence_id, "--key"])
            .arg(app.path("vendor/kit.key"))
            .arg("-o")
            .arg(&revocations)
            .output()
            .unwrap(),
        "stella-kit licence revoke",
    );
    app.import(
        1,
        &[
            format!("licence={}", licence.display()),
            format!("revocations={}", revocations.display()),
        ],
    );
    refused(&app, "revoked");
}

#[test]
fn with_a_release_key_an_unsigned_binary_signs_nothing() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    let request = app.enrol();
    let licence = app.licence("licence.json", &request, "vendor", &["--expires", "365d"]);
    app.import(1, &[format!("licence={}", licence.display())]);
    let mut config = std::fs::read_to_string(&app.config).unwrap();
    config.push_str(&format!(
        "\n[signer]\nrelease_public_key = {:?}\n",
        app.path("vendor/kit.pub").display().to_string()
    ));
    std::fs::write(&app.config, config).unwrap();
    // The test binary has no STELLA.minisig beside it: the release check fails at start.
    refused(&app, "release-integrity");
}

#[test]
fn a_development_key_file_is_allowed_only_in_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stella.toml");
    std::fs::write(
        &config,
        format!(
            "[hsm]\nbackend = \"file\"\nmode = \"dev\"\nkey_dir = {:?}\n",
            dir.path().join("dev-keys").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(["hsm", "init", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let init = ok(out, "stella hsm init (file backend)");
    assert!(
        init.contains("EXTRACTABLE"),
        "software keys must say so: {init}"
    );
    // Without mode = "dev" the file backend is refused at start, naming the problem.
    let prod = dir.path().join("prod.toml");
    std::fs::write(
        &prod,
        format!(
            "[hsm]\nbackend = \"file\"\nkey_dir = {:?}\n",
            dir.path().join("dev-keys").display().to_string()
        ),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(["hsm", "status", "--config"])
        .arg(&prod)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("dev"), "{message}");
}

/// The python with sigstore 4.x (`STELLA_TEST_PYTHON`); `None` (after a loud SKIP) outside CI.
fn sigstore_python() -> Option<PathBuf> {
    match std::env::var_os("STELLA_TEST_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "STELLA_TEST_PYTHON is not set (CI is set, so this fails)"
            );
            eprintln!("SKIP sigstore-python part: STELLA_TEST_PYTHON is not set");
            None
        }
    }
}

fn stella_verify(out: &Path, name: &str, artifact: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stella"))
        .arg("verify")
        .arg(out.join(format!("{name}.sigstore.json")))
        .arg("--artifact")
        .arg(artifact)
        .arg("--trust-root")
        .arg(out.join("trusted_root.json"))
        .arg("--json")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn exports_from_the_daemon_verify_offline_with_stella_verify_and_sigstore_python() {
    let Some(app) = Appliance::new() else { return };
    app.hsm_init();
    let request = app.enrol();
    let licence = app.licence("licence.json", &request, "vendor", &["--expires", "365d"]);
    app.import(1, &[format!("licence={}", licence.display())]);
    let daemon = app.serve();
    let client = Client::new(&daemon, app.dir.path());

    // Scan the fixture image in the daemon.
    let fixture = common::repo().join("tests/data/scanner/fixture-oci");
    let body = serde_json::json!({ "path": fixture.display().to_string() }).to_string();
    let (success, out) = client.api("POST", "/api/scans", Some(&body));
    assert!(success, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["scanId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let image = loop {
        let (success, out) = client.api("GET", &format!("/api/scans/{id}"), None);
        assert!(success, "{out}");
        let scan: serde_json::Value = serde_json::from_str(&out).unwrap();
        if scan["status"] != "running" {
            assert_eq!(scan["status"], "done", "{scan}");
            break scan["imageDigest"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "scan did not finish");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };

    // Carry out: SBOMs and report, each beside its bundle, and the trust documents.
    let out = app.path("carry");
    let (success, text) = client.cli(&[
        "attest",
        "export",
        &image,
        "--report",
        "-o",
        &out.display().to_string(),
    ]);
    assert!(success, "{text}");
    for name in [
        "sbom.cdx.json",
        "sbom.spdx.json",
        "report.json",
        "trusted_root.json",
        "trust-config.json",
    ] {
        assert!(out.join(name).is_file(), "{name} missing: {text}");
    }

    // `stella verify`, fully offline, with the claims.
    for name in ["sbom.cdx.json", "sbom.spdx.json", "report.json"] {
        let (success, text) = stella_verify(&out, name, &out.join(name));
        assert!(success, "{name}: {text}");
        let verified: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(verified["identity"], "https://stella-ops.local/appliance");
        if name == "report.json" {
            assert!(verified["claims"]["license_id"].is_string(), "{verified}");
            assert!(
                verified["claims"]["policy_digest"].is_string(),
                "{verified}"
            );
        }
    }
    // A changed artefact is not what was signed.
    let tampered = app.path("tampered.json");
    let mut bytes = std::fs::read(out.join("sbom.cdx.json")).unwrap();
    bytes.push(b' ');
    std::fs::write(&tampered, &bytes).unwrap();
    let (success, text) = stella_verify(&out, "sbom.cdx.json", &tampered);
    assert!(!success && text.contains("artefact"), "{text}");

    // Rekor v2's write side: a hashedrekord entry for that same signature is checked against
    // its certificate and logged; a wrong digest is refused.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sbom.cdx.json.sigstore.json")).unwrap())
            .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let digest = {
        use sha2::Digest as _;
        sha2::Sha256::digest(pae_of(&bundle["dsseEnvelope"])).to_vec()
    };
    let entry = |digest: &[u8]| {
        serde_json::json!({ "hashedRekordRequestV002": {
            "digest": b64.encode(digest),
            "signature": {
                "content": bundle["dsseEnvelope"]["signatures"][0]["sig"],
                "verifier": {
                    "x509Certificate": {
                        "rawBytes": bundle["verificationMaterial"]["certificate"]["rawBytes"]
                    },
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                },
            },
        }})
        .to_string()
    };
    let (success, text) = client.api("POST", "/api/v2/log/entries", Some(&entry(&digest)));
    assert!(success, "{text}");
    let logged: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(logged["logIndex"], "3", "{logged}");
    assert!(
        logged["inclusionProof"]["checkpoint"]["envelope"].is_string(),
        "{logged}"
    );
    let (success, text) = client.api("POST", "/api/v2/log/entries", Some(&entry(&[7u8; 32])));
    assert!(!success && text.contains("400"), "{text}");

    // The monitor recomputes the tree and checks every checkpoint.
    let (success, text) = {
        let output = Command::new(env!("CARGO_BIN_EXE_stella"))
            .args(["log", "verify", "--data-dir"])
            .arg(app.data())
            .arg("--trust-root")
            .arg(out.join("trusted_root.json"))
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert!(success && text.contains("holds 4 entries"), "{text}");

    // The log's read side is public: checkpoint and tiles.
    let checkpoint = http(daemon.addr, "GET", "/api/v2/checkpoint", &[], "");
    assert_eq!(checkpoint.status, 200);
    assert!(
        checkpoint.body.contains(".stella-ops.local/log\n4\n"),
        "{}",
        checkpoint.body
    );
    let tile = http(daemon.addr, "GET", "/api/v2/tile/entries/000.p/4", &[], "");
    assert_eq!(tile.status, 200);
    let missing = http(daemon.addr, "GET", "/api/v2/tile/entries/000.p/9", &[], "");
    assert_eq!(missing.status, 404);

    // The console lists the attestations and hands out bundles and the trust documents.
    let page = http(
        daemon.addr,
        "GET",
        "/console/attestations",
        &[("Cookie", &client.session)],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    for text in ["sbom.cdx.json", "report.json", "trusted_root.json", &image] {
        assert!(
            page.body.contains(text),
            "{text} not on the page: {}",
            page.body
        );
    }
    let bundle = http(
        daemon.addr,
        "GET",
        "/console/attestations/1/bundle",
        &[("Cookie", &client.session)],
        "",
    );
    assert_eq!(bundle.status, 200);
    assert!(
        bundle
            .body
            .contains("application/vnd.dev.sigstore.bundle.v0.3+json")
    );
    let root = http(daemon.addr, "GET", "/api/trust/trusted_root.json", &[], "");
    assert_eq!(root.status, 200);
    assert_eq!(
        root.body,
        std::fs::read_to_string(out.join("trusted_root.json")).unwrap()
    );

    // The bar: stock sigstore-python verifies the carried-out SBOM offline, and refuses a
    // changed artefact.
    if let Some(python) = sigstore_python() {
        let sigstore = |artifact: &Path| {
            Command::new(&python)
                .args(["-m", "sigstore", "--trust-config"])
                .arg(out.join("trust-config.json"))
                .args(["verify", "identity", "--offline", "--bundle"])
                .arg(out.join("sbom.cdx.json.sigstore.json"))
                .args([
                    "--cert-identity",
                    "https://stella-ops.local/appliance",
                    "--cert-oidc-issuer",
                    "https://stella-ops.local/oidc",
                ])
                .arg(artifact)
                .output()
                .unwrap()
        };
        let good = sigstore(&out.join("sbom.cdx.json"));
        assert!(
            good.status.success(),
            "{}{}",
            String::from_utf8_lossy(&good.stdout),
            String::from_utf8_lossy(&good.stderr)
        );
        let copy = app.path("sbom.cdx.json");
        std::fs::write(&copy, &bytes).unwrap();
        assert!(!sigstore(&copy).status.success());
    }
    daemon.stop();
}
