//! Pull from a real registry: Debian's `docker-registry` (the CNCF distribution
//! server) on loopback with bearer-token auth, served by a token service in this
//! test that signs RS256 JWTs with `openssl`; the fixture is pushed with `skopeo`.
//! The SBOM pulled from the registry must equal the one from the layout.
//!
//! Needs `docker-registry`, `skopeo` and `openssl`; without them the test prints
//! a loud SKIP, unless `CI` is set, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stella_scanner::source::{Credentials, ImageReference, RegistrySource, Transport};
use stella_scanner::{NoCache, NoProgress, Platform, ScanError, ScanOptions, scan, scan_path};

const USER: &str = "stella";
const PASSWORD: &str = "s3cret-for-tests";
const SERVICE: &str = "stella-test-registry";
const ISSUER: &str = "stella-test-issuer";

fn layout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanner/fixture-oci")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn b64(bytes: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Signs a registry token (RS256, x5c = the self-signed certificate the registry trusts).
fn sign_token(dir: &Path, scopes: &[String]) -> String {
    let cert_der = std::fs::read(dir.join("cert.der")).unwrap();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [b64(&cert_der, false)]});
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 600, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes(), true),
        b64(claims.to_string().as_bytes(), true)
    );
    let input_path = dir.join(format!("jwt-input-{}", std::process::id()));
    std::fs::write(&input_path, &signing_input).unwrap();
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .arg(&input_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "openssl dgst failed");
    format!("{signing_input}.{}", b64(&output.stdout, true))
}

/// A minimal token service: checks basic credentials, returns a signed JWT.
fn serve_tokens(listener: TcpListener, dir: PathBuf) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let mut authorized = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                let value = value.trim();
                if let Some(encoded) = value.strip_prefix("Basic ") {
                    authorized = b64_decode(encoded) == format!("{USER}:{PASSWORD}").as_bytes();
                }
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("scope="))
            .flat_map(|s| {
                url_decode(s)
                    .split(' ')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let (status, body) = if authorized {
            let token = sign_token(&dir, &scopes);
            (
                "200 OK",
                serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                    .to_string(),
            )
        } else {
            (
                "401 Unauthorized",
                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_owned(),
            )
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path, token_port: u16) -> Registry {
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\n\
auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {cert}\n",
        root = dir.join("storage").display(),
        cert = dir.join("cert.pem").display(),
    );
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let log = std::fs::File::create(dir.join("registry.log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let registry = Registry { child, port };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return registry;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "docker-registry did not start; see {}",
        dir.join("registry.log").display()
    );
}

#[test]
fn pull_from_distribution_registry_with_token_auth_gives_the_same_sbom() {
    let missing: Vec<&str> = ["docker-registry", "skopeo", "openssl"]
        .into_iter()
        .filter(|tool| !have(tool))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "registry test needs {missing:?} (Debian packages docker-registry, skopeo, openssl)"
        );
        eprintln!(
            "SKIP registry_pull: missing {missing:?} (apt-get install docker-registry skopeo openssl)"
        );
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=stella-test-token",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(dir.join("cert.pem"))
        .arg("-out")
        .arg(dir.join("cert.der"))
        .status()
        .unwrap();
    assert!(status.success());

    let token_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let token_port = token_listener.local_addr().unwrap().port();
    let token_dir = dir.clone();
    std::thread::spawn(move || serve_tokens(token_listener, token_dir));
    let registry = start_registry(&dir, token_port);
    let repo = format!("127.0.0.1:{}/stella/fixture", registry.port);

    let output = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
        ])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("oci:{}:1", layout().display()))
        .arg(format!("docker://{repo}:1"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo push failed: {}\nregistry log: {}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
    );

    let credentials = Some(Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    });
    let reference = ImageReference::parse(&format!("{repo}:1")).unwrap();
    let source = RegistrySource::new(reference, Transport::InsecureHttp, credentials.clone());
    let pulled = scan(&source, &ScanOptions::default(), &NoCache, &NoProgress).unwrap();
    let local = scan_path(&layout(), &ScanOptions::default(), &NoCache, &NoProgress).unwrap();
    assert!(pulled.to_cyclonedx_json().unwrap() == local.to_cyclonedx_json().unwrap());
    assert!(pulled.to_spdx_json().unwrap() == local.to_spdx_json().unwrap());
    assert_eq!(pulled.layers.len(), 4);

    // The arm64 manifest of the same index, by platform.
    let arm = ScanOptions {
        platform: Platform::parse("linux/arm64").unwrap(),
        ..ScanOptions::default()
    };
    let pulled_arm = scan(&source, &arm, &NoCache, &NoProgress).unwrap();
    assert_eq!(pulled_arm.image.platform, "linux/arm64");

    // By manifest digest (as the registry stores it: skopeo may re-serialise manifests).
    let manifest_digest = pulled.image.manifest_digest.clone().unwrap();
    let by_digest = ImageReference::parse(&format!("{repo}@{manifest_digest}")).unwrap();
    let source = RegistrySource::new(by_digest, Transport::InsecureHttp, credentials);
    let pulled = scan(&source, &ScanOptions::default(), &NoCache, &NoProgress).unwrap();
    assert_eq!(pulled.image.image_id, local.image.image_id);

    // Wrong password: refused by the token service, named.
    let bad = Some(Credentials {
        username: USER.into(),
        password: "wrong".into(),
    });
    let source = RegistrySource::new(
        ImageReference::parse(&format!("{repo}:1")).unwrap(),
        Transport::InsecureHttp,
        bad,
    );
    let err = scan(&source, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("token service"), "{err}");

    // HTTPS is the default; a plain-HTTP registry is not silently accepted.
    let source = RegistrySource::new(
        ImageReference::parse(&format!("{repo}:1")).unwrap(),
        Transport::Https,
        None,
    );
    let err: ScanError = scan(&source, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
    assert!(err.to_string().contains(&repo), "{err}");
    drop(registry);
}
