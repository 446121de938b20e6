//! Architecture invariants that the dependency graph must keep (see ARCHITECTURE.md):
//! `stella-kit` links neither the daemon, the web stack nor the stores; only `stella-web` knows
//! axum/askama; `stella-hsm` knows nothing of the domain; `stella-authority` knows neither HTTP
//! nor the stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The set of package names that `package` depends on (normal and build edges, all features).
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
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    assert!(names.contains(&package.to_owned()), "{names:?}");
    names
}

fn assert_absent(package: &str, forbidden: &[&str]) {
    let deps = dependencies(package);
    let found: Vec<_> = forbidden
        .iter()
        .filter(|f| deps.iter().any(|d| d == *f))
        .collect();
    assert!(found.is_empty(), "{package} depends on {found:?}");
}

const WEB_STACK: &[&str] = &["stella-web", "axum", "askama", "hyper", "tower-http"];
const STORES: &[&str] = &["stella-store", "redb", "rusqlite", "tantivy"];

#[test]
fn kit_builder_links_no_daemon_web_or_store() {
    let mut forbidden = vec!["stella-appliance"];
    forbidden.extend(WEB_STACK);
    forbidden.extend(STORES);
    assert_absent("stella-kit-builder", &forbidden);
}

#[test]
fn domain_crates_do_not_know_the_web() {
    for domain in [
        "stella-core",
        "stella-store",
        "stella-feeds",
        "stella-scanner",
        "stella-decide",
        "stella-signer",
        "stella-attestor",
        "stella-authority",
        "stella-importer",
        "stella-hsm",
    ] {
        assert_absent(domain, WEB_STACK);
    }
}

#[test]
fn hsm_knows_nothing_of_the_domain() {
    let deps = dependencies("stella-hsm");
    let domain: Vec<_> = deps
        .iter()
        .filter(|d| d.starts_with("stella-") && *d != "stella-hsm")
        .collect();
    assert!(domain.is_empty(), "stella-hsm depends on {domain:?}");
}

#[test]
fn authority_knows_neither_http_nor_stores() {
    let mut forbidden = vec!["rustls", "ureq"];
    forbidden.extend(WEB_STACK);
    forbidden.extend(STORES);
    assert_absent("stella-authority", &forbidden);
}
