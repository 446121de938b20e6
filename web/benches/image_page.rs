//! Benchmark: server-side time of `GET /console/images/{digest}` through the whole router
//! (session check, SBOM and BOM-Index read from the blob store, parse, filter, sort, page,
//! template) for a synthetic image of 5,000 components in 5 layers, against a baseline in the
//! same run: `serde_json` serialising the same inventory SBOM. Target: ≤ 50 ms per page.
//!
//! The data directory is filled directly with what a scan stores (inventory and usage SBOMs,
//! BOM-Index, image config, catalog rows), so no scan runs. Run with
//! `cargo bench -p stella-web --bench image_page -- --sample-size 10`; figures in
//! `docs/console.md` (Benchmarks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use std::hint::black_box;

use criterion::Criterion;
use serde_json::{Value, json};
use stella_scanner::Digest;
use stella_scanner::bomindex::{BomIndex, IndexedComponent};
use stella_store::rusqlite::params;

const COMPONENTS: usize = 5_000;
const LAYERS: usize = 5;
/// Components the entrypoint uses (every tenth).
const USED_EVERY: usize = 10;
const ECOSYSTEMS: [&str; 5] = ["deb", "npm", "pypi", "maven", "golang"];

fn property(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// A component as stella's CycloneDX writer shapes it (licence, hash, properties, evidence).
fn component(i: usize, layers: &[Digest], used: bool) -> Value {
    let ecosystem = ECOSYSTEMS[i % ECOSYSTEMS.len()];
    let layer = i % LAYERS;
    let name = format!("component-{i:05}");
    let version = format!("{}.{}.{}", i % 7, i % 13, i % 31);
    let purl = format!("pkg:{ecosystem}/{name}@{version}");
    let mut properties = vec![
        property("stella:ecosystem", ecosystem),
        property("stella:layerDigest", layers[layer].as_str()),
        property("stella:layerIndex", &layer.to_string()),
    ];
    if used {
        properties.push(property("stella:usedByEntrypoint", "true"));
        properties.push(property(
            "stella:usage.files",
            &format!("/usr/lib/{name}.so"),
        ));
    }
    json!({
        "type": "library",
        "bom-ref": purl,
        "name": name,
        "version": version,
        "purl": purl,
        "licenses": [{ "license": { "id": "MIT" } }],
        "hashes": [{ "alg": "SHA-256", "content": Digest::of_bytes(name.as_bytes()).hex() }],
        "properties": properties,
        "evidence": { "occurrences": [{ "location": format!("/usr/lib/{ecosystem}/{name}") }] },
    })
}

fn image_bom(image: &Digest, layers: &[Digest], components: Vec<Value>, extra: &[Value]) -> Value {
    let mut properties = vec![
        property("stella:imageId", image.as_str()),
        property("stella:platform", "linux/amd64"),
    ];
    for (i, layer) in layers.iter().enumerate() {
        properties.push(property(&format!("stella:layer:{i}"), layer.as_str()));
    }
    properties.extend_from_slice(extra);
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:00000000-0000-0000-0000-000000000000",
        "version": 1,
        "metadata": {
            "timestamp": "2026-01-01T00:00:00Z",
            "component": {
                "type": "container",
                "bom-ref": format!("image:{image}"),
                "name": "registry.bench:5000/big/app:1",
                "version": image.as_str(),
                "properties": properties,
            },
        },
        "components": components,
    })
}

struct Bench {
    _dir: tempfile::TempDir,
    router: Router,
    cookie: String,
    digest: String,
    inventory: Value,
}

/// A data directory holding one scanned image of 5,000 components and a viewer's session.
fn setup() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(dir.path());
    let stores = state.stores().clone();
    let layers: Vec<Digest> = (0..LAYERS)
        .map(|i| Digest::of_bytes(format!("layer {i}").as_bytes()))
        .collect();
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/app/start.sh"],
            "Labels": (0..10).map(|i| (format!("org.example.label{i}"), json!(format!("value {i}"))))
                .collect::<serde_json::Map<_, _>>(),
        },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(Digest::as_str).collect::<Vec<_>>() },
    });
    let config = serde_json::to_vec(&config).unwrap();
    let image = Digest::of_bytes(&config);
    let inventory = image_bom(
        &image,
        &layers,
        (0..COMPONENTS)
            .map(|i| component(i, &layers, false))
            .collect(),
        &[],
    );
    let chain = [
        property("stella:view", "usage"),
        property("stella:entrytrace:0:step:0", "config config /app/start.sh"),
        property(
            "stella:entrytrace:0:step:1",
            "shebang /app/start.sh #!/bin/sh",
        ),
        property(
            "stella:entrytrace:0:step:2",
            "exec /app/start.sh:3 /usr/bin/app --serve",
        ),
        property("stella:entrytrace:0:terminal", "/usr/bin/app"),
    ];
    let usage = image_bom(
        &image,
        &layers,
        (0..COMPONENTS)
            .step_by(USED_EVERY)
            .map(|i| component(i, &layers, true))
            .collect(),
        &chain,
    );
    let mut indexed: Vec<IndexedComponent> = inventory["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| IndexedComponent {
            bom_ref: c["bom-ref"].as_str().unwrap().to_owned(),
            purl: c["purl"].as_str().map(str::to_owned),
            layer: c["properties"][2]["value"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        })
        .collect();
    indexed.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    let mut index = BomIndex {
        image_id: image.clone(),
        layers: layers.clone(),
        components: Vec::new(),
        layer_bitmaps: vec![Default::default(); LAYERS],
        used_by_entrypoint: Default::default(),
    };
    for (position, c) in indexed.iter().enumerate() {
        let position = position as u32;
        index.layer_bitmaps[c.layer as usize].insert(position);
        // bom-refs are `pkg:ECOSYSTEM/component-NNNNN@VERSION`.
        let n: usize = c.bom_ref.split("/component-").nth(1).unwrap()[..5]
            .parse()
            .unwrap();
        if n.is_multiple_of(USED_EVERY) {
            index.used_by_entrypoint.insert(position);
        }
    }
    index.components = indexed;
    let index = index.to_bytes();

    let now = stella_core::rfc3339(common::T0);
    let digest = image.to_string();
    let mut artefacts = vec![
        ("sbom", "cdx-json", serde_json::to_vec(&inventory).unwrap()),
        (
            "usage-sbom",
            "cdx-json",
            serde_json::to_vec(&usage).unwrap(),
        ),
        ("bom-index", stella_scanner::bomindex::FORMAT, index),
        ("image-config", "oci-config-json", config),
    ];
    let conn = stores.catalog.connection();
    conn.execute(
        "INSERT INTO images (digest, reference, config, created_at) VALUES (?1, ?2, 'linux/amd64', ?3)",
        params![digest, "registry.bench:5000/big/app:1", now],
    )
    .unwrap();
    for (position, layer) in layers.iter().enumerate() {
        conn.execute(
            "INSERT INTO layers (digest, media_type, size) VALUES (?1, 'application/vnd.oci.image.layer.v1.tar+gzip', ?2)",
            params![layer.as_str(), (position as i64 + 1) * 7_340_032],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO image_layers (image_digest, position, layer_digest) VALUES (?1, ?2, ?3)",
            params![digest, position as i64, layer.as_str()],
        )
        .unwrap();
    }
    for (kind, format, bytes) in artefacts.drain(..) {
        let blob = stores.blobs.put(&bytes).unwrap();
        conn.execute(
            "INSERT INTO artifacts (kind, format, digest, size, image_digest, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kind, format, blob.to_string(), bytes.len() as i64, digest, now],
        )
        .unwrap();
    }
    // The catalog hands out one connection at a time.
    drop(conn);
    let cookie = common::viewer_cookie(&stores);
    Bench {
        _dir: dir,
        router: stella_web::router(state),
        cookie,
        digest,
        inventory,
    }
}

/// One page request through the router; returns the body length (checked to be a full page).
fn get(runtime: &tokio::runtime::Runtime, bench: &Bench, path: &str) -> usize {
    let body = runtime.block_on(common::get(&bench.router, &bench.cookie, path));
    assert!(body.len() > 10_000);
    body.len()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let bench = setup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pages = [
        ("inventory", format!("/console/images/{}", bench.digest)),
        (
            "inventory_filtered_sorted_page3",
            format!(
                "/console/images/{}?q=component-03&type=npm&sort=-layer&page=3",
                bench.digest
            ),
        ),
        (
            "usage",
            format!("/console/images/{}?view=usage", bench.digest),
        ),
    ];
    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("image_page");
        for (name, path) in &pages {
            group.bench_function(*name, |b| b.iter(|| black_box(get(&runtime, &bench, path))));
        }
        group.bench_function("baseline_serde_json_serialise_sbom", |b| {
            b.iter(|| black_box(serde_json::to_vec(&bench.inventory).unwrap().len()))
        });
        group.finish();
    }
    criterion.final_summary();

    // The ratio in one line, from 20 more runs of each (medians).
    let time = |f: &dyn Fn()| {
        median(
            (0..20)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .collect(),
        )
    };
    let baseline = time(&|| {
        black_box(serde_json::to_vec(&bench.inventory).unwrap());
    });
    let sbom_bytes = serde_json::to_vec(&bench.inventory).unwrap().len();
    println!(
        "summary: {COMPONENTS} components, inventory SBOM {:.1} MiB; baseline serde_json \
         serialise {:.2} ms",
        sbom_bytes as f64 / 1048576.0,
        baseline.as_secs_f64() * 1e3
    );
    for (name, path) in &pages {
        let page = time(&|| {
            black_box(get(&runtime, &bench, path));
        });
        println!(
            "summary: {name}: {:.2} ms per page ({:.1}x the baseline; target <= 50 ms: {})",
            page.as_secs_f64() * 1e3,
            page.as_secs_f64() / baseline.as_secs_f64(),
            if page <= Duration::from_millis(50) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
