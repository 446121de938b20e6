//! TLS end to end: with `[tls] mode = "on"` (and whenever the listener is off loopback) the
//! daemon serves HTTPS only, with a self-signed certificate made at first start whose SHA-256
//! fingerprint it prints; a client pinning that fingerprint connects and sees HSTS, a client
//! pinning another fingerprint is refused, and plain HTTP gets no answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use authority_common::{Daemon, first_admin_login, parse_response, raw_request, register_client};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// Accepts exactly the certificate whose SHA-256 is the pin; signatures are still checked.
#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Sha256::digest(end_entity.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "fingerprint {seen} is not the pinned one"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn https_get(
    addr: std::net::SocketAddr,
    pin: &str,
    path: &str,
) -> Result<authority_common::Response, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            pin: pin.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(&raw_request(addr, "GET", path, &[], ""))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // The server may close without close_notify after Connection: close.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(parse_response(&raw))
}

#[test]
fn https_with_pinned_self_signed_fingerprint_hsts_and_no_plain_http() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("stella.toml");
    std::fs::write(&config, "[tls]\nmode = \"on\"\n").unwrap();
    let daemon = Daemon::start(data.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(daemon.scheme, "https");
    let line = daemon
        .line("stella: TLS certificate (self-signed) SHA-256 fingerprint ")
        .unwrap_or_else(|| panic!("no fingerprint line in {:?}", daemon.seen));
    let pin = line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(pin.len(), 95, "{pin}");

    let health = https_get(daemon.addr, &pin, "/healthz").unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok\n");
    assert_eq!(
        health.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );

    let wrong_pin = pin.replace(&pin[..2], if &pin[..2] == "00" { "01" } else { "00" });
    let refused = https_get(daemon.addr, &wrong_pin, "/healthz");
    assert!(refused.is_err(), "a wrong pin must not connect");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(daemon.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(&raw_request(daemon.addr, "GET", "/healthz", &[], ""))
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "plain HTTP was served"
    );

    // The certificate is kept: a restart prints the same fingerprint.
    let _ = daemon.stop();
    let daemon = Daemon::start(data.path(), &["--config", config.to_str().unwrap()]);
    assert!(
        daemon
            .line(&format!(
                "stella: TLS certificate (self-signed) SHA-256 fingerprint {pin}"
            ))
            .is_some(),
        "{:?}",
        daemon.seen
    );
}

/// Listening on a non-loopback address turns TLS on even with the default `mode = "auto"`.
#[test]
fn off_loopback_listener_is_https_only() {
    let data = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(data.path(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(daemon.scheme, "https", "{:?}", daemon.seen);
    let pin = daemon
        .line("stella: TLS certificate (self-signed) SHA-256 fingerprint ")
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], daemon.addr.port()));
    let health = https_get(loopback, &pin, "/healthz").unwrap();
    assert_eq!(health.status, 200);
}

/// `stella login` over HTTPS trusting the appliance's self-signed certificate (`--ca-cert`): the
/// token endpoint sees an `https` htu and the API call works.
#[test]
fn cli_logs_in_over_https_with_the_appliance_certificate() {
    let data = tempfile::tempdir().unwrap();
    let cli = tempfile::tempdir().unwrap();
    // Register the client over loopback HTTP first, then restart with TLS on.
    let daemon = Daemon::start(data.path(), &[]);
    let session = first_admin_login(&daemon, "tls-admin-password");
    let secret = register_client(&daemon, &session, "tls-ci", "admin");
    let _ = daemon.stop();
    let config = data.path().join("stella.toml");
    std::fs::write(&config, "[tls]\nmode = \"on\"\n").unwrap();
    let daemon = Daemon::start(data.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(daemon.scheme, "https");
    let secret_file = cli.path().join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stella"))
            .args(args)
            .arg("--dir")
            .arg(cli.path().join("state"))
            .output()
            .unwrap()
    };
    let cert = data.path().join("tls/cert.pem");
    let login = run(&[
        "login",
        "--url",
        &daemon.base_url(),
        "--client-id",
        "tls-ci",
        "--client-secret-file",
        secret_file.to_str().unwrap(),
        "--ca-cert",
        cert.to_str().unwrap(),
    ]);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let api = run(&["api", "GET", "/api/audit?limit=3"]);
    assert!(
        api.status.success(),
        "{}",
        String::from_utf8_lossy(&api.stderr)
    );
    assert!(String::from_utf8_lossy(&api.stdout).contains("auth.token_issued"));
    // Without trusting the certificate the CLI refuses to talk.
    let untrusted = std::process::Command::new(env!("CARGO_BIN_EXE_stella"))
        .args([
            "login",
            "--url",
            &daemon.base_url(),
            "--client-id",
            "tls-ci",
            "--client-secret-file",
        ])
        .arg(&secret_file)
        .arg("--dir")
        .arg(cli.path().join("other"))
        .env_remove("STELLA_CA_CERT")
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}
