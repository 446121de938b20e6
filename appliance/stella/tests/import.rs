//! `stella import` end to end: direct and through a running daemon, every documented exit code,
//! the HTTP upload, the watch folder, search and freshness in `/readyz`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::kits::{self, KitKey};
use common::{Daemon, stella};

/// Bearer tokens, so that these tests need no DPoP client (the Authority's own tests cover that).
const BEARER: &str = "[auth]\nallow_bearer_tokens = true\n";

/// Logs in as the bootstrap admin, registers a client with `scopes` and returns a bearer token
/// (the configuration allows bearer tokens; DPoP is covered by the Authority's own tests).
fn bearer_token(daemon: &authority_common::Daemon, scopes: &str) -> String {
    let session = authority_common::first_admin_login(daemon, "a-long-new-password-1");
    authority_common::bearer_token(daemon, &session, "importer", scopes)
}

fn import(config: &Path, data: &Path, kit: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = stella()
        .arg("import")
        .arg(kit)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_import_without_daemon_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = KitKey::new(dir.path(), "vendor");
    let stranger = KitKey::new(dir.path(), "stranger");
    let config = kits::config(dir.path(), &[&key], "");
    let contents = kits::sample_contents();
    let v2 = kits::save(
        dir.path(),
        "kit-2.tar.zst",
        &kits::build(&key, &contents, 2, 0, 30, None),
    );

    // Dry run verifies and loads nothing.
    let (code, out, err) = import(&config, &data, &v2, &["--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VERIFIED (dry run"), "{out}");
    assert!(
        !data.join("feeds").exists() || std::fs::read_dir(data.join("feeds")).unwrap().count() == 0
    );

    let (code, out, err) = import(&config, &data, &v2, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("LOADED"), "{out}");
    assert!(out.contains("feed generation 1"), "{out}");

    let (code, out, _) = import(&config, &data, &v2, &["--json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["outcome"], "already-imported");

    let cases = [
        ("missing", dir.path().join("nope.tar.zst"), 3),
        (
            "unknown key",
            kits::save(
                dir.path(),
                "s.tar.zst",
                &kits::build(&stranger, &contents, 3, 0, 30, None),
            ),
            4,
        ),
        (
            "rollback",
            kits::save(
                dir.path(),
                "k1.tar.zst",
                &kits::build(&key, &contents, 1, 0, 30, None),
            ),
            6,
        ),
        (
            "expired",
            kits::save(
                dir.path(),
                "old.tar.zst",
                &kits::build(&key, &contents, 4, 40, 30, None),
            ),
            7,
        ),
    ];
    for (name, path, expected) in cases {
        let (code, out, err) = import(&config, &data, &path, &[]);
        assert_eq!(code, expected, "{name}: {out}{err}");
    }
    // A kit whose content file was swapped after signing.
    let mut swapped = kits::build(&key, &contents, 5, 0, 30, None).archive;
    let at = swapped.len() - 20;
    swapped[at] ^= 1;
    let swapped_path = dir.path().join("swapped.tar.zst");
    std::fs::write(&swapped_path, &swapped).unwrap();
    let (code, out, err) = import(&config, &data, &swapped_path, &[]);
    assert!([4, 5, 8].contains(&code), "{code}: {out}{err}");
    assert!(out.contains("REJECTED"), "{out}");
    // Rejected kits wait in quarantine with a report.
    let quarantined = std::fs::read_dir(data.join("quarantine")).unwrap().count();
    assert_eq!(
        quarantined,
        2 * 4,
        "a kit and a report per rejection (missing never read)"
    );
}

#[test]
fn import_through_daemon_upload_search_and_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = KitKey::new(dir.path(), "vendor");
    let config = kits::config(dir.path(), &[&key], BEARER);
    let daemon = authority_common::Daemon::start(&data, &["--config", config.to_str().unwrap()]);
    let token = bearer_token(&daemon, "kit.import scanner.read");
    let auth = format!("Bearer {token}");
    let get = |path: &str| {
        authority_common::http(
            daemon.addr,
            "GET",
            path,
            &[("Authorization", auth.as_str())],
            "",
        )
    };
    let ready = get("/readyz").json();
    assert_eq!(
        ready["stores"]["feeds"]["generation"],
        serde_json::Value::Null
    );
    // Without a token the API refuses.
    assert_eq!(
        authority_common::http(daemon.addr, "GET", "/api/kits", &[], "").status,
        401
    );

    let first = kits::build(&key, &kits::sample_contents(), 1, 0, 30, None);
    let path = kits::save(dir.path(), "kit-1.tar.zst", &first);
    let (code, out, err) = import(&config, &data, &path, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("importing through it"), "{err}");
    assert!(out.contains("LOADED"), "{out}");

    let ready = get("/readyz").json();
    assert_eq!(ready["stores"]["feeds"]["generation"], 1);
    assert_eq!(ready["stores"]["feeds"]["channels"][0]["channel"], "stable");
    assert_eq!(ready["stores"]["feeds"]["stale"], false);

    let hits = get("/api/advisories?q=proxy%20credentials").json();
    assert_eq!(hits["hits"][0]["id"], "CVE-2024-1002", "{hits}");

    // Upload over HTTP (multipart, as the console sends it): a delta-free newer full kit.
    let mut second = kits::sample_contents();
    second.advisories.push(kits::advisory(
        "CVE-2024-1003",
        "flask",
        "Session fixation in flask",
    ));
    let built = kits::build(&key, &second, 2, 0, 30, None);
    let response = upload(daemon.addr, &auth, &built.archive);
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.json()["generation"], 2);
    // The same bytes again: a no-op that says so.
    let again = upload(daemon.addr, &auth, &built.archive);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["outcome"], "already-imported");
    // Garbage: rejected with a reason, nothing changes.
    let bad = upload(daemon.addr, &auth, b"definitely not a kit");
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["outcome"], "rejected");
    let trail = get("/api/kits").json();
    let verdicts: Vec<&str> = trail["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts[..3],
        ["rejected:compression", "already-imported", "loaded"],
        "{trail}"
    );
    assert_eq!(get("/readyz").json()["stores"]["feeds"]["generation"], 2);
}

fn upload(addr: std::net::SocketAddr, auth: &str, bytes: &[u8]) -> common::Response {
    let boundary = "stellaboundary7MA4YWxk";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"kit\"; filename=\"kit.tar.zst\"\r\nContent-Type: application/zstd\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    common::request_with_body(
        addr,
        "POST",
        "/api/kits",
        &[
            (
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
            ("Authorization", auth),
        ],
        &body,
    )
}

#[test]
fn watch_folder_imports_new_kits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let key = KitKey::new(dir.path(), "vendor");
    let config = kits::config(
        dir.path(),
        &[&key],
        &format!(
            "watch_dir = {:?}\nwatch_interval_secs = 1\n{BEARER}",
            media.display().to_string()
        ),
    );
    let daemon = authority_common::Daemon::start(&data, &["--config", config.to_str().unwrap()]);
    let auth = format!("Bearer {}", bearer_token(&daemon, "scanner.read"));
    kits::save(
        &media,
        "kit-1.tar.zst",
        &kits::build(&key, &kits::sample_contents(), 1, 0, 30, None),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trail = authority_common::http(
            daemon.addr,
            "GET",
            "/api/kits",
            &[("Authorization", auth.as_str())],
            "",
        )
        .json();
        if trail["imports"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(trail["imports"][0]["verdict"], "loaded", "{trail}");
            assert_eq!(trail["imports"][0]["actor"], "watch-folder");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watch folder never imported the kit"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn stale_feed_shows_in_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = KitKey::new(dir.path(), "vendor");
    let config = kits::config(dir.path(), &[&key], "stale_after_days = 7\n");
    // Built 10 days ago and valid for 60: unexpired, but old (a freeze attack looks like this).
    let old = kits::save(
        dir.path(),
        "old.tar.zst",
        &kits::build(&key, &kits::sample_contents(), 1, 10, 60, None),
    );
    let (code, out, err) = import(&config, &data, &old, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let daemon = Daemon::start(&data, &["--config", config.to_str().unwrap()]);
    let ready = daemon.get("/readyz").json();
    assert_eq!(ready["stores"]["feeds"]["stale"], true, "{ready}");
    assert_eq!(ready["stores"]["feeds"]["channels"][0]["stale"], true);
}

/// The console: the kit page shows the empty state, the upload goes through the verification
/// report (CSRF token required, file name escaped), and the page then shows freshness and trail.
#[test]
fn console_upload_shows_the_verification_report_and_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = KitKey::new(dir.path(), "vendor");
    let config = kits::config(dir.path(), &[&key], "");
    let daemon = authority_common::Daemon::start(&data, &["--config", config.to_str().unwrap()]);
    let session = authority_common::first_admin_login(&daemon, "a-long-new-password-1");
    let page = authority_common::http(
        daemon.addr,
        "GET",
        "/console/kits",
        &[("Cookie", &session)],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No kit imported yet"), "{}", page.body);
    // The upload form's action (the page also has the sign-out form's).
    let action = page
        .body
        .split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|action| action.starts_with("/console/kits"))
        .unwrap()
        .replace("&amp;", "&");
    assert!(action.starts_with("/console/kits?csrf="), "{action}");

    let built = kits::build(&key, &kits::sample_contents(), 1, 0, 30, None);
    let form = |csrf_action: &str, name: &str| {
        let boundary = "consoleboundary42";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"kit\"; filename=\"{name}\"\r\nContent-Type: application/zstd\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&built.archive);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        common::request_with_body(
            daemon.addr,
            "POST",
            csrf_action,
            &[
                (
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                ),
                ("Cookie", &session),
            ],
            &body,
        )
    };
    // Without the CSRF token: refused, nothing loaded.
    let forged = form("/console/kits", "kit.tar.zst");
    assert_eq!(forged.status, 403, "{}", forged.body);
    let hostile_name = "<script>alert(1)</script>.tar.zst";
    let report = form(&action, hostile_name);
    assert_eq!(report.status, 200, "{}", report.body);
    // The upload is verified and staged, not loaded: the report offers the load.
    assert!(
        report
            .body
            .contains("<strong>Verified: ready to load</strong>"),
        "{}",
        report.body
    );
    assert!(!report.body.contains("<script>"), "{}", report.body);
    // askama escapes with numeric entities.
    assert!(report.body.contains("&#60;script&#62;"), "{}", report.body);
    let staged = report
        .body
        .split("name=\"staged\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a Load this kit form")
        .to_owned();
    let csrf = action.split_once("csrf=").unwrap().1.to_owned();
    let loaded = common::request_with_body(
        daemon.addr,
        "POST",
        "/console/kits/load",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &session),
        ],
        format!("csrf={csrf}&staged={staged}").as_bytes(),
    );
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert!(
        loaded.body.contains("<strong>Loaded</strong>"),
        "{}",
        loaded.body
    );

    let page = authority_common::http(
        daemon.addr,
        "GET",
        "/console/kits",
        &[("Cookie", &session)],
        "",
    );
    assert!(page.body.contains("fresh, built"), "{}", page.body);
    assert!(page.body.contains(">loaded<"), "{}", page.body);
    // The trail names who imported (the page header names the signed-in user too).
    assert!(page.body.contains("<td>admin</td>"), "{}", page.body);
}
