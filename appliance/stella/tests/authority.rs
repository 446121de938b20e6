//! The Authority end to end on the real binary: the bootstrap admin's one-time password is
//! printed once and must be changed, the admin registers an API client in the console, `stella
//! login` obtains a DPoP-bound token (DPoP key in a 0600 file) and `stella api` uses it, and the
//! audit log records each step with actor, source address and request id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use authority_common::{Daemon, first_admin_login, http, register_client};

fn stella() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stella"))
}

#[test]
fn bootstrap_admin_registers_a_client_and_the_cli_logs_in_with_dpop() {
    let data = tempfile::tempdir().unwrap();
    let cli_dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(data.path(), &[]);
    let session = first_admin_login(&daemon, "a-long-new-admin-password");
    let secret = register_client(&daemon, &session, "ci-runner", "admin scanner.read");

    let secret_file = cli_dir.path().join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let state_dir = cli_dir.path().join("state");
    let login = stella()
        .args([
            "login",
            "--url",
            &daemon.base_url(),
            "--client-id",
            "ci-runner",
        ])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--dir")
        .arg(&state_dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&login.stdout);
    assert!(
        login.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(
        out.contains("logged in to") && out.contains("scanner.read admin"),
        "{out}"
    );
    for file in ["dpop.pem", "token.json", "profile.json"] {
        let mode = std::fs::metadata(state_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let profile = std::fs::read_to_string(state_dir.join("profile.json")).unwrap();
    assert!(
        !profile.contains(&secret),
        "the profile must not hold the secret"
    );

    // The CLI calls an admin route with the cached DPoP-bound token and a fresh proof.
    let api = stella()
        .args(["api", "GET", "/api/audit?limit=200", "--dir"])
        .arg(&state_dir)
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&api.stdout);
    assert!(
        api.status.success(),
        "{body}{}",
        String::from_utf8_lossy(&api.stderr)
    );
    let events: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    let events = events["events"].as_array().unwrap();
    let find = |action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {events:?}"))
    };
    for (action, actor) in [
        ("auth.login", "admin"),
        ("user.password_change", "admin"),
        ("client.create", "admin"),
        ("auth.token_issued", "ci-runner"),
    ] {
        let event = find(action);
        assert_eq!(event["actor"], actor, "{event}");
        assert!(
            event["detail"]["source"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{event}"
        );
        assert!(
            event["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{event}"
        );
    }
    assert_eq!(find("client.create")["target"], "ci-runner");

    // The admin API registers a client from the CLI too.
    let denied = stella()
        .args([
            "api",
            "POST",
            "/api/clients",
            "--json",
            "{\"client_id\":\"x\",\"scopes\":\"admin\"}",
            "--dir",
        ])
        .arg(&state_dir)
        .output()
        .unwrap();
    assert!(
        denied.status.success(),
        "admin may register clients: {}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let created: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&denied.stdout).trim()).unwrap();
    assert_eq!(created["client_id"], "x");

    // An expired cached token is refreshed by the CLI itself.
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("token.json")).unwrap())
            .unwrap();
    let mut stale = cached.clone();
    stale["expires_at"] = 0.into();
    std::fs::write(state_dir.join("token.json"), stale.to_string()).unwrap();
    let refreshed = stella()
        .args(["api", "GET", "/api/clients", "--dir"])
        .arg(&state_dir)
        .output()
        .unwrap();
    assert!(
        refreshed.status.success(),
        "{}",
        String::from_utf8_lossy(&refreshed.stderr)
    );
    let renewed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("token.json")).unwrap())
            .unwrap();
    assert_ne!(
        renewed["access_token"], cached["access_token"],
        "token was not refreshed"
    );
    assert!(renewed["expires_at"].as_u64().unwrap() > 0);

    // A client without the admin scope is refused with 403, and the denial is audited.
    let reader_secret = register_client(&daemon, &session, "reader", "scanner.read");
    let reader_file = cli_dir.path().join("reader-secret");
    std::fs::write(&reader_file, &reader_secret).unwrap();
    let reader_dir = cli_dir.path().join("reader");
    let login = stella()
        .args([
            "login",
            "--url",
            &daemon.base_url(),
            "--client-id",
            "reader",
        ])
        .arg("--client-secret-file")
        .arg(&reader_file)
        .arg("--dir")
        .arg(&reader_dir)
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let refused = stella()
        .args(["api", "GET", "/api/audit", "--dir"])
        .arg(&reader_dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("403") && stdout.contains("insufficient_scope"),
        "{stdout}{stderr}"
    );
    let api = stella()
        .args(["api", "GET", "/api/audit?limit=5", "--dir"])
        .arg(&state_dir)
        .output()
        .unwrap();
    let recent = String::from_utf8_lossy(&api.stdout);
    assert!(
        recent.contains("auth.scope_denied") && recent.contains("reader"),
        "{recent}"
    );

    // Without a token: 401 with a DPoP challenge.
    let anonymous = http(daemon.addr, "GET", "/api/audit", &[], "");
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("DPoP")
    );

    // A restart does not print a password again, and the old one no longer works.
    let _ = daemon.stop();
    let daemon = Daemon::start(data.path(), &[]);
    assert_eq!(daemon.bootstrap_password(), None, "{:?}", daemon.seen);
}

/// Offline recovery: with the daemon running the data dir is locked; stopped, `stella
/// reset-password` prints a new one-time password that signs in and must be changed.
#[test]
fn reset_password_recovers_the_admin_offline() {
    let data = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(data.path(), &[]);
    let busy = stella()
        .args(["reset-password", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("locked by pid"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    let _ = daemon.stop();

    let reset = stella()
        .args(["reset-password", "--user", "admin", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&reset.stdout);
    assert!(
        reset.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let password = out
        .split("one-time password: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let unknown = stella()
        .args(["reset-password", "--user", "nobody", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());

    let daemon = Daemon::start(data.path(), &[]);
    assert_eq!(daemon.bootstrap_password(), None);
    let page = http(daemon.addr, "GET", "/login", &[], "");
    let cookie = page.cookie("stella_login_csrf").unwrap();
    let csrf = page.hidden("csrf");
    let login = http(
        daemon.addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        &format!("csrf={csrf}&username=admin&password={password}"),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), Some("/account/password"));
}
