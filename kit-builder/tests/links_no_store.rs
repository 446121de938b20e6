//! Architecture invariant: `stella-kit` links no store, web stack or async runtime (the importer
//! contract stays free of them), checked on the resolved dependency graph.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn stella_kit_links_no_store_web_or_async_runtime() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--manifest-path",
            manifest,
        ])
        .args(["-p", "stella-kit-builder", "-p", "stella-importer"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("stella-importer"), "{tree}");
    for forbidden in [
        "redb ",
        "rusqlite ",
        "tantivy ",
        "axum ",
        "tokio ",
        "hyper ",
        "askama ",
        "stella-store ",
        "stella-web ",
    ] {
        assert!(
            !tree.lines().any(|line| line.starts_with(forbidden)),
            "stella-kit links {forbidden}"
        );
    }
}
