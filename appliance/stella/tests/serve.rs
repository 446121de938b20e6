//! The daemon end to end: the real binary on an ephemeral port with a temporary data dir, its
//! three ops endpoints, a clean stop on SIGTERM/SIGINT, a restart that finds its catalog intact,
//! the data-dir lock, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{Daemon, request, stella};

#[test]
fn serves_ops_endpoints_stops_cleanly_and_restarts_intact() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);

    let health = daemon.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok\n");

    let ready = daemon.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let ready = ready.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["starts"], 1);
    assert_eq!(ready["stores"]["catalog"]["status"], "ok");
    let instance = ready["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(instance.len(), 32);

    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200);
    for needle in [
        "stella_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "stella_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1",
        "stella_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/healthz\"} 1",
        "stella_store_size_bytes{store=\"catalog\"}",
        "stella_store_size_bytes{store=\"blobs\"}",
        "stella_build_info{version=\"",
    ] {
        assert!(
            metrics.body.contains(needle),
            "missing {needle} in\n{}",
            metrics.body
        );
    }
    // Unknown paths are counted under one label, never under the raw path.
    assert_eq!(daemon.get("/no/such/path").status, 404);
    let metrics = daemon.get("/metrics").body;
    assert!(
        metrics.contains("route=\"unmatched\",status=\"404\""),
        "{metrics}"
    );
    assert!(!metrics.contains("/no/such/path"));

    let (status, stderr) = daemon.stop("TERM");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("SIGTERM: draining"), "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");

    // The restart reuses the same catalog: same instance, two recorded starts.
    let daemon = Daemon::start(dir.path(), &[]);
    let ready = daemon.get("/readyz").json();
    assert_eq!(ready["instance_id"], instance.as_str());
    assert_eq!(ready["starts"], 2);
    let (status, stderr) = daemon.stop("INT");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("SIGINT: draining"), "{stderr}");
}

#[test]
fn request_id_is_echoed_or_assigned() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &["--log-format", "json"]);
    let given = request(
        daemon.addr,
        "GET",
        "/healthz",
        &[("x-request-id", "abc-123")],
    );
    assert_eq!(given.header("x-request-id"), Some("abc-123"));
    let fresh = daemon.get("/healthz");
    let id = fresh.header("x-request-id").unwrap().to_owned();
    assert!(!id.is_empty() && id != "abc-123");
    // A hostile id is replaced, not reflected.
    let hostile = request(
        daemon.addr,
        "GET",
        "/healthz",
        &[("x-request-id", "a b<c>")],
    );
    assert_ne!(hostile.header("x-request-id"), Some("a b<c>"));
    let (_, stderr) = daemon.stop("TERM");
    // JSON logs: every line is an object, and the request carries its id.
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(stderr.contains("abc-123"), "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
}

#[test]
fn in_flight_request_is_drained_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    // Send a request head without its final blank line: the request is in flight.
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    common::send_signal(daemon.child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(b"\r\n").unwrap();
    let response = common::read_response(&mut stream);
    assert_eq!(response.status, 200, "{}", response.body);
    let (status, stderr) = daemon.stop("TERM");
    assert!(status.success(), "{stderr}");
}

#[test]
fn second_daemon_on_same_data_dir_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(dir.path(), &[]);
    let second = stella()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    let expected = format!(
        "data dir {} is locked by pid {}",
        dir.path().display(),
        first.child.id()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The first daemon is unharmed.
    assert_eq!(first.get("/readyz").status, 200);
}

#[test]
fn unknown_config_key_is_rejected_with_name_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stella.toml");
    std::fs::write(&config, "[storage]\ndata_dri = \"/tmp/x\"\n").unwrap();
    let out = stella()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data_dri"), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
}

#[test]
fn config_file_and_env_set_the_listener_and_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-config");
    let config = dir.path().join("stella.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = stella()
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("STELLA_DATA")
        .env("STELLA_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.starts_with("stella: listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(data.join("catalog.sqlite").exists());
    assert!(data.join("blobs.redb").exists());
    assert!(data.join("feeds").is_dir());
    let daemon = Daemon {
        addr: line
            .trim()
            .trim_start_matches("stella: listening on http://")
            .parse()
            .unwrap(),
        child,
    };
    let (status, stderr) = daemon.stop("TERM");
    assert!(status.success());
    assert!(stderr.lines().all(|l| l.starts_with('{')), "{stderr}");
}
