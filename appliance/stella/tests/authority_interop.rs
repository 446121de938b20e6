//! Interop: an independent JOSE implementation (python `jwcrypto`) builds DPoP proofs with
//! ES256 and EdDSA keys, the appliance accepts them at the token endpoint and on an API route,
//! and jwcrypto verifies the appliance's access token against `/jwks` and agrees on the RFC 7638
//! thumbprint in `cnf.jkt`. The interpreter comes from `STELLA_TEST_PYTHON` (a venv with
//! jwcrypto); without it the test fails under `CI` and skips loudly elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;

use std::process::Command;

use authority_common::{Daemon, first_admin_login, register_client};

fn python() -> Option<String> {
    let python = std::env::var("STELLA_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let usable = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import jwcrypto"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if usable {
        return python;
    }
    let why = match &python {
        None => "STELLA_TEST_PYTHON is not set".to_owned(),
        Some(p) => format!("{p} cannot import jwcrypto"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "interop test needs a python with jwcrypto under CI: {why}"
    );
    println!("SKIP authority_interop: {why} (set it to a python with jwcrypto)");
    eprintln!("SKIP authority_interop: {why} (set it to a python with jwcrypto)");
    None
}

#[test]
fn jwcrypto_dpop_proofs_are_accepted_and_its_verifier_accepts_our_tokens() {
    let Some(python) = python() else { return };
    let data = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(data.path(), &[]);
    let session = first_admin_login(&daemon, "interop-admin-password");
    let secret = register_client(&daemon, &session, "py", "admin");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/authority_interop/dpop_client.py"
    );
    let out = Command::new(&python)
        .arg(script)
        .args([&daemon.base_url(), "py", &secret])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{stdout}");
    for result in results {
        assert_eq!(result["token_status"], 200, "{result}");
        assert_eq!(result["token_type"], "DPoP", "{result}");
        assert_eq!(result["jkt_matches"], true, "{result}");
        assert_eq!(result["api_status"], 200, "{result}");
    }
}
