//! The SBOM reader on the scanner's golden CycloneDX of the real image fixture: distro packages
//! keep their source package, version and release; language packages get their OSV ecosystem and
//! the purl's version; layers, licences and the usage mark come from the `stella:*` properties.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use stella_decide::{SbomLimits, components_from_cyclonedx};

fn golden() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/scanner/golden/fixture.cdx.json");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn golden_fixture_sbom_reads_into_decider_components() {
    let bytes = golden();
    let input = components_from_cyclonedx(&bytes, &SbomLimits::default()).unwrap();
    assert_eq!(
        input.image_digest.as_deref(),
        Some("sha256:4cbc655dec9c1ed7c035148672ee6e4c28d984a46156468b5f52ec76c5ea9240")
    );
    assert_eq!(input.distro.as_deref(), Some("debian-12"));
    assert!(input.sbom_digest.starts_with("sha256:") && input.sbom_digest.len() == 71);
    let by_name = |name: &str| {
        input
            .components
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no component {name}"))
    };
    let zlib = by_name("zlib1g");
    assert_eq!(zlib.ecosystem, "Debian");
    assert_eq!(zlib.source_name.as_deref(), Some("zlib"));
    assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
    assert_eq!(zlib.distro.as_deref(), Some("debian:12"));
    assert_eq!(
        zlib.layer_digest.as_deref(),
        Some("sha256:c5a6fb20c86e2e40d4ae261fa91e5074fb9cba4c6b63eb9b7623b283c80c8999")
    );
    let stdlib = by_name("stdlib");
    assert_eq!(stdlib.ecosystem, "Go");
    assert_eq!(stdlib.version, "1.19.8", "the purl's version, not go1.19.8");
    assert!(!stdlib.used_by_entrypoint);
    assert_eq!(by_name("commons-cli:commons-cli").ecosystem, "Maven");
    assert_eq!(by_name("six").ecosystem, "PyPI");
    assert_eq!(by_name("@isaacs/string-locale-compare").ecosystem, "npm");
}

#[test]
fn usage_mark_and_bad_documents() {
    let mut document: serde_json::Value = serde_json::from_slice(&golden()).unwrap();
    document["components"][0]["properties"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "name": "stella:usedByEntrypoint", "value": "true" }));
    let bytes = serde_json::to_vec(&document).unwrap();
    let input = components_from_cyclonedx(&bytes, &SbomLimits::default()).unwrap();
    assert!(input.components[0].used_by_entrypoint);
    assert!(!input.components[1].used_by_entrypoint);

    let limits = SbomLimits {
        max_bytes: 100,
        ..SbomLimits::default()
    };
    let too_big = components_from_cyclonedx(&bytes, &limits).unwrap_err();
    assert!(too_big.to_string().contains("over the limit"), "{too_big}");
    let not_json = components_from_cyclonedx(b"{", &SbomLimits::default()).unwrap_err();
    assert!(not_json.to_string().contains("not JSON"), "{not_json}");
    document["components"][0]["purl"] = serde_json::json!("not a purl");
    let bad_purl = components_from_cyclonedx(
        &serde_json::to_vec(&document).unwrap(),
        &SbomLimits::default(),
    )
    .unwrap_err();
    assert!(bad_purl.to_string().contains("component 0"), "{bad_purl}");
}

/// The scanner writes the usage closure as its own view (only the closure's components, each
/// marked); the inventory takes the marks from it by purl.
#[test]
fn usage_view_marks_the_inventory() {
    let inventory = golden();
    let mut view: serde_json::Value = serde_json::from_slice(&inventory).unwrap();
    let kept: Vec<serde_json::Value> = view["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "stdlib" || c["name"] == "zlib1g")
        .cloned()
        .collect();
    view["components"] = serde_json::Value::Array(kept);
    let mut input = components_from_cyclonedx(&inventory, &SbomLimits::default()).unwrap();
    let marked = input
        .mark_used_from_cyclonedx(&serde_json::to_vec(&view).unwrap(), &SbomLimits::default())
        .unwrap();
    assert_eq!(marked, 2);
    let used: Vec<&str> = input
        .components
        .iter()
        .filter(|c| c.used_by_entrypoint)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(used, ["zlib1g", "stdlib"]);

    view["metadata"]["component"]["properties"][0]["value"] =
        serde_json::json!(format!("sha256:{}", "0".repeat(64)));
    let other = input
        .mark_used_from_cyclonedx(&serde_json::to_vec(&view).unwrap(), &SbomLimits::default())
        .unwrap_err();
    assert!(
        other.to_string().contains("usage view is of image"),
        "{other}"
    );
}

/// The BOM-Index join: a predicate over purls (the index's `usedByEntrypoint` bitmap lookup)
/// marks exactly the components it holds for.
#[test]
fn a_purl_predicate_marks_the_inventory() {
    let inventory = golden();
    let mut input = components_from_cyclonedx(&inventory, &SbomLimits::default()).unwrap();
    let marked = input.mark_used_where(|purl| purl.starts_with("pkg:golang/stdlib@"));
    assert_eq!(marked, 1);
    let used: Vec<&str> = input
        .components
        .iter()
        .filter(|c| c.used_by_entrypoint)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(used, ["stdlib"]);
}
