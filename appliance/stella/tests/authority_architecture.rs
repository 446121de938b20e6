//! The Authority's place in the architecture: `stella-authority` is domain logic — it knows
//! neither HTTP (axum, hyper, the web crate) nor the stores; `stella-web` and `stella-store`
//! carry it to the wire and to disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn dependencies(package: &str) -> Vec<String> {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "-p",
            package,
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn authority_knows_neither_http_nor_stores() {
    let deps = dependencies("stella-authority");
    assert!(deps.iter().any(|d| d == "stella-authority"), "{deps:?}");
    let forbidden = [
        "stella-web",
        "axum",
        "hyper",
        "tower-http",
        "askama",
        "stella-store",
        "rusqlite",
        "redb",
        "tantivy",
        "rustls",
        "ureq",
    ];
    let found: Vec<_> = forbidden
        .iter()
        .filter(|f| deps.iter().any(|d| d == *f))
        .collect();
    assert!(found.is_empty(), "stella-authority depends on {found:?}");
}
