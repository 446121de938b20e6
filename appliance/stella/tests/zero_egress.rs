//! Zero egress: the daemon runs inside an empty network namespace (`unshare --net`, loopback
//! brought up) and serves its ops endpoints; every socket it holds is on loopback. The harness
//! re-executes this test binary inside the namespace, so later end-to-end tests can reuse
//! [`in_empty_netns`] for their own scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::Daemon;

const INSIDE: &str = "STELLA_TEST_INSIDE_NETNS";

/// Runs the test named `test_name` of this binary again inside a fresh, empty network
/// namespace and asserts it passed there. Returns false when already inside (the caller then
/// does the real work).
fn in_empty_netns(test_name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let root = is_root();
    let mut cmd = Command::new("unshare");
    if !root {
        // Without root, a user namespace grants the right to make a network namespace.
        cmd.arg("--map-root-user");
    }
    cmd.arg("--net")
        .arg("--")
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1");
    let out = cmd.output().expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "inside the namespace the test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the test did not run inside the namespace:\n{stdout}\n{stderr}"
    );
    true
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Sockets in this namespace whose remote end is neither unset (listening) nor loopback, from
/// `/proc/net/{tcp,tcp6,udp,udp6}`.
fn non_loopback_sockets() -> Vec<String> {
    let mut bad = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap();
        for line in text.lines().skip(1) {
            let remote = line.split_whitespace().nth(2).unwrap_or("");
            let (ip, _port) = remote.split_once(':').unwrap_or((remote, ""));
            let ok = ip.chars().all(|c| c == '0')
                || ip == "0100007F" // 127.0.0.1, little-endian hex
                || ip.ends_with("0100007F") // v4-mapped loopback
                || ip == "00000000000000000000000001000000"; // ::1
            if !ok {
                bad.push(format!("{table}: {line}"));
            }
        }
    }
    bad
}

#[test]
fn daemon_serves_in_an_empty_network_namespace() {
    if in_empty_netns("daemon_serves_in_an_empty_network_namespace") {
        return;
    }
    // Inside: only loopback exists, and it is brought up.
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "namespace is not empty: {links}");
    assert!(links.contains("lo:"));
    assert!(
        Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success()
    );

    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    assert_eq!(daemon.get("/healthz").status, 200);
    assert_eq!(daemon.get("/readyz").status, 200);
    assert_eq!(daemon.get("/metrics").status, 200);
    let bad = non_loopback_sockets();
    assert!(bad.is_empty(), "sockets off loopback: {bad:#?}");
    let (status, stderr) = daemon.stop("TERM");
    assert!(status.success(), "{stderr}");
    println!("zero egress: daemon served inside an empty network namespace");
}
